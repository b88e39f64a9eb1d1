//! The connection to Redis: one RESP3 connection per node, subscribed to the namespace's
//! channel and used to publish on it too.
//!
//! Two tasks share it. The listener owns its life: it reads frames and hands them to this
//! node's sessions, pings, notices when the connection drops, reconnects, and then resyncs
//! the sessions. The publisher numbers queued frames and sends them, in order, over whatever
//! connection is up, and drops them while none is (their numbers stay used, so other nodes
//! see the gap). The reconnect loop is ours rather than the `redis` crate's
//! `ConnectionManager`: that one hides when it is down and holds commands back across its
//! retries, while a resync needs the exact moments the link went down and came back, and a
//! message published during an outage must not reach other nodes seconds late, after they
//! resynced.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use dstar_runtime::page::Message;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::frame::{self, Body};
use crate::{Error, Shared};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Redis may take to answer a command (a publish, a ping).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often an idle connection is pinged, to notice a peer gone without closing it.
const PING_EVERY: Duration = Duration::from_secs(5);
/// The first wait between reconnection attempts, doubled up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);
/// The most frames sent in one pipeline.
const BATCH: usize = 256;
/// Resyncs for lost frames come at most this often: frames lost soon after a resync are
/// repaired by one more at the end of this window, not by one each.
const RESYNC_EVERY: Duration = Duration::from_millis(500);

/// Pushes from Redis: the channel's messages, and the client's own disconnection notice.
pub(crate) type Pushes = mpsc::UnboundedReceiver<PushInfo>;

/// A client for `url` that always speaks RESP3 (pub/sub and commands share one connection).
pub(crate) fn client(url: &str) -> Result<Client, Error> {
    let info = url
        .into_connection_info()
        .map_err(|err| Error::redis("the Redis URL is not valid", err))?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Client::open(info.set_redis_settings(settings))
        .map_err(|err| Error::redis("the Redis URL is not valid", err))
}

/// Connects and subscribes to `channel`.
pub(crate) async fn connect(
    client: &Client,
    channel: &str,
) -> Result<(MultiplexedConnection, Pushes), Error> {
    let (sender, pushes) = mpsc::unbounded_channel();
    let config = AsyncConnectionConfig::new()
        .set_push_sender(sender)
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|err| Error::redis("cannot connect to Redis", err))?;
    connection
        .subscribe(channel)
        .await
        .map_err(|err| Error::redis(&format!("cannot subscribe to `{channel}`"), err))?;
    Ok((connection, pushes))
}

/// A new node id for the namespace.
pub(crate) async fn node_id(
    connection: &MultiplexedConnection,
    namespace: &str,
) -> Result<u64, Error> {
    redis::cmd("INCR")
        .arg(format!("dstar:{namespace}:node-ids"))
        .query_async(&mut connection.clone())
        .await
        .map_err(|err| Error::redis("cannot take a node id", err))
}

/// The connection as the publisher sees it, and how long it has been down.
pub(crate) struct Link {
    state: Mutex<LinkState>,
}

struct LinkState {
    connection: Option<MultiplexedConnection>,
    down_since: Option<Instant>,
    /// Redis refused a publish (an error answer, not a dropped connection) and has not
    /// accepted one since: logged once.
    refusing: bool,
}

impl Link {
    pub(crate) fn new(connection: MultiplexedConnection) -> Self {
        Link {
            state: Mutex::new(LinkState {
                connection: Some(connection),
                down_since: None,
                refusing: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_up(&self) -> bool {
        self.lock().connection.is_some()
    }

    fn connection(&self) -> Option<MultiplexedConnection> {
        self.lock().connection.clone()
    }

    fn down(&self) {
        let mut state = self.lock();
        state.connection = None;
        state.down_since.get_or_insert_with(Instant::now);
    }

    /// Back up; returns how long it was down.
    fn up(&self, connection: MultiplexedConnection) -> Duration {
        let mut state = self.lock();
        state.connection = Some(connection);
        state
            .down_since
            .take()
            .map_or(Duration::ZERO, |since| since.elapsed())
    }
}

/// The publisher: numbers frames in the order they were queued and sends them in pipelines.
pub(crate) async fn publish(shared: Arc<Shared>, mut frames: mpsc::Receiver<Vec<u8>>) {
    let mut seq = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    while frames.recv_many(&mut batch, BATCH).await > 0 {
        for frame in &mut batch {
            seq += 1 + shared.dropped.swap(0, Ordering::Relaxed);
            frame::stamp(frame, seq);
        }
        // With no connection the frames are dropped here, their numbers used: the outage is
        // logged by the listener, and other nodes resync.
        if let Some(mut connection) = shared.link.connection() {
            let mut pipe = redis::pipe();
            for frame in &batch {
                pipe.cmd("PUBLISH")
                    .arg(&shared.channel)
                    .arg(frame.as_slice())
                    .ignore();
            }
            let result = pipe.exec_async(&mut connection).await;
            published(&shared, result);
        }
        batch.clear();
    }
}

fn published(shared: &Shared, result: redis::RedisResult<()>) {
    let mut state = shared.link.lock();
    match result {
        Ok(()) => {
            if std::mem::take(&mut state.refusing) {
                tracing::info!(channel = %shared.channel, node = shared.node, "Redis accepts publishes again");
            }
        }
        // A connection that fails is the listener's to notice, log and replace.
        Err(err) if err.is_io_error() || err.is_timeout() || err.is_unrecoverable_error() => {}
        Err(err) => {
            if !std::mem::replace(&mut state.refusing, true) {
                tracing::warn!(
                    channel = %shared.channel,
                    node = shared.node,
                    %err,
                    "Redis refused a publish: messages reach this node's sessions only (other \
                     nodes resync) until it accepts them again"
                );
            }
        }
    }
}

/// The listener: reads frames until the connection drops, then reconnects, for as long as
/// the backplane lives.
pub(crate) async fn listen(
    shared: Arc<Shared>,
    client: Client,
    (mut connection, mut pushes): (MultiplexedConnection, Pushes),
) {
    let mut seqs = Seqs::default();
    let mut losses = Losses::default();
    loop {
        let reason = read(&shared, &mut seqs, &mut losses, &connection, &mut pushes).await;
        shared.link.down();
        tracing::warn!(
            channel = %shared.channel,
            node = shared.node,
            reason,
            "lost the connection to Redis: messages reach this node's sessions only until it \
             is back, then its sessions resync"
        );
        let mut retry = RETRY_MIN;
        (connection, pushes) = loop {
            match connect(&client, &shared.channel).await {
                Ok(up) => break up,
                Err(err) => {
                    tracing::debug!(channel = %shared.channel, %err, "Redis is still unreachable");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        };
        // Whatever an origin sent while this node was away is repaired by the resync below:
        // numbering starts afresh for every origin.
        seqs.0.clear();
        let out_for = shared.link.up(connection.clone());
        shared.mark();
        let sessions = shared.resync_all();
        losses.repaired();
        tracing::info!(
            channel = %shared.channel,
            node = shared.node,
            ?out_for,
            sessions,
            "reconnected to Redis: messages cross nodes again, and this node's subscribed \
             sessions resync"
        );
    }
}

/// Reads frames until the connection drops; returns why it is considered gone.
async fn read(
    shared: &Shared,
    seqs: &mut Seqs,
    losses: &mut Losses,
    connection: &MultiplexedConnection,
    pushes: &mut Pushes,
) -> String {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let due = losses.due();
        tokio::select! {
            push = pushes.recv() => match push {
                None => return "the connection closed".to_owned(),
                Some(push) => match push.kind {
                    PushKind::Disconnection => return "the connection closed".to_owned(),
                    PushKind::Message => {
                        if let Some((origin, missed)) = receive(shared, seqs, push) {
                            losses.lost(shared, origin, missed);
                        }
                    }
                    _ => {}
                },
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                losses.resync(shared);
            }
            _ = ping.tick() => {
                if let Err(err) = redis::cmd("PING").exec_async(&mut connection.clone()).await {
                    return format!("no answer to a ping: {err}");
                }
            }
        }
    }
}

/// Hands one frame from the channel to this node's sessions; returns its origin and how many
/// of its frames were lost before it, if any were.
fn receive(shared: &Shared, seqs: &mut Seqs, push: PushInfo) -> Option<(u64, u64)> {
    // A message push is `[channel, payload]`.
    let Some(redis::Value::BulkString(payload)) = push.data.into_iter().nth(1) else {
        return None;
    };
    let bytes = Bytes::from(payload);
    let frame = match frame::parse(&bytes) {
        Ok(frame) => frame,
        Err(err) => {
            if shared.first_warning(format!("malformed\0{err}")) {
                tracing::warn!(
                    channel = %shared.channel,
                    %err,
                    "dropped a frame this node cannot read (logged once per problem)"
                );
            }
            return None;
        }
    };
    if frame.origin == shared.node {
        // Delivered here when it was published.
        return None;
    }
    let missed = match seqs.check(frame.origin, frame.seq) {
        Seen::Old => {
            tracing::debug!(
                origin = frame.origin,
                seq = frame.seq,
                "dropped a frame seen before"
            );
            return None;
        }
        Seen::Next => 0,
        Seen::After(missed) => missed,
    };
    let topic = frame.topic;
    match frame.body {
        Body::Message {
            sender,
            type_name,
            json,
        } => {
            if let Some(decode) = shared.decoder(type_name, topic) {
                let message = Message::from_other_node(sender, bytes.slice(json), decode);
                shared.deliver(topic, message);
            }
        }
        Body::Events(events) => {
            shared.deliver_events(topic, bytes.slice(events));
        }
        Body::Mark => {}
    }
    (missed > 0).then_some((frame.origin, missed))
}

/// Frames lost and not yet repaired, and when sessions last resynced: a node that keeps
/// losing frames (an origin that Redis cannot keep up with) makes them render once per
/// [`RESYNC_EVERY`], not once per gap.
#[derive(Debug, Default)]
struct Losses {
    missed: u64,
    origins: BTreeSet<u64>,
    last_resync: Option<Instant>,
}

impl Losses {
    /// `missed` frames of `origin` were lost: resync now, or at the end of the window when
    /// the last resync was recent.
    fn lost(&mut self, shared: &Shared, origin: u64, missed: u64) {
        self.missed += missed;
        self.origins.insert(origin);
        if self.due().is_some_and(|due| due <= Instant::now()) {
            self.resync(shared);
        }
    }

    /// When the pending losses are to be repaired, if there are any.
    fn due(&self) -> Option<Instant> {
        (self.missed > 0).then(|| {
            self.last_resync
                .map_or_else(Instant::now, |last| last + RESYNC_EVERY)
        })
    }

    fn resync(&mut self, shared: &Shared) {
        let sessions = shared.resync_all();
        tracing::warn!(
            channel = %shared.channel,
            node = shared.node,
            origins = ?self.origins,
            missed = self.missed,
            sessions,
            "frames from other nodes were lost: this node's subscribed sessions resync"
        );
        self.repaired();
    }

    /// Every session has just resynced (after a reconnection too): nothing is pending.
    fn repaired(&mut self) {
        self.missed = 0;
        self.origins.clear();
        self.last_resync = Some(Instant::now());
    }
}

/// The last sequence number seen from each origin since this connection was made.
#[derive(Debug, Default)]
struct Seqs(HashMap<u64, u64>);

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// The next frame (or an origin's first since this node connected).
    Next,
    /// A later frame: this many were missed before it.
    After(u64),
    /// A number seen already: a duplicate, dropped.
    Old,
}

impl Seqs {
    fn check(&mut self, origin: u64, seq: u64) -> Seen {
        match self.0.entry(origin) {
            Entry::Vacant(first) => {
                first.insert(seq);
                Seen::Next
            }
            Entry::Occupied(mut last) => {
                let previous = *last.get();
                if seq <= previous {
                    return Seen::Old;
                }
                last.insert(seq);
                match seq - previous - 1 {
                    0 => Seen::Next,
                    missed => Seen::After(missed),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_show_gaps_and_repeats_per_origin() {
        let mut seqs = Seqs::default();
        assert_eq!(
            seqs.check(1, 5),
            Seen::Next,
            "an origin's first frame sets the start"
        );
        assert_eq!(seqs.check(1, 6), Seen::Next);
        assert_eq!(seqs.check(2, 1), Seen::Next, "origins are numbered apart");
        assert_eq!(seqs.check(1, 9), Seen::After(2));
        assert_eq!(seqs.check(1, 9), Seen::Old);
        assert_eq!(seqs.check(1, 7), Seen::Old);
        assert_eq!(seqs.check(1, 10), Seen::Next);
        assert_eq!(seqs.check(2, 2), Seen::Next);
    }

    #[test]
    fn losses_soon_after_a_resync_wait_for_the_end_of_its_window() {
        let mut losses = Losses::default();
        assert_eq!(losses.due(), None, "nothing lost, nothing to do");
        losses.missed = 2;
        assert!(
            losses.due().unwrap() <= Instant::now(),
            "the first loss is repaired at once"
        );
        losses.repaired();
        assert_eq!((losses.due(), losses.missed), (None, 0));
        losses.missed = 1;
        let last = losses.last_resync.unwrap();
        assert_eq!(losses.due(), Some(last + RESYNC_EVERY));
    }
}
