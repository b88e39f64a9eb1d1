//! A Redis backplane for [dstar](https://docs.rs/dstar): the [`PubSub`] of an app that runs on
//! several nodes behind a load balancer, so that a message published on one node reaches the
//! live sessions of every node.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! #[derive(serde::Serialize, serde::Deserialize)]
//! enum RoomChanged { Posted, Presence }
//!
//! let backplane = dstar_redis::RedisPubSub::builder("redis://127.0.0.1:6379", "chat")
//!     .message::<RoomChanged>("room-changed")
//!     .connect()
//!     .await?;
//! let app = dstar::App::builder().pubsub(backplane).build()?;
//! # Ok(()) }
//! ```
//!
//! Pages do not change: `cx.publish(topic, RoomChanged::Posted)` in one node's handler runs
//! `info` in every subscribed session of every node, where `message.get::<RoomChanged>()`
//! reads it as usual. Without this crate nothing changes either: an app gets the in-process
//! [`LocalPubSub`], and the `dstar` crate does not depend on Redis.
//!
//! # What crosses nodes
//!
//! - **Messages** whose payload's type is registered with
//!   [`message::<T>(name)`](RedisPubSubBuilder::message) on every node: `T` is
//!   `Serialize + DeserializeOwned`, travels as JSON under `name`, and is decoded back into a
//!   `T` on each receiving node at most once, by the first session whose `info` asks for it
//!   (none is decoded on a node where nobody reads it). The name, not the Rust path, is what
//!   nodes agree on, so a type can move between modules without breaking a rolling deploy.
//!   A message of any other type reaches this node's sessions only; the backplane logs that
//!   once per topic (`WARN`), naming the topic.
//! - **Broadcasts** ([`PubSub::broadcast`], pre-encoded SSE events) cross unchanged.
//!
//! # Guarantees
//!
//! - **Local first.** A publish reaches this node's subscribers at once, through an inner
//!   [`LocalPubSub`], whether Redis is up or not; the node skips its own frames when Redis
//!   hands them back. [`PubSub::publish`] and [`PubSub::broadcast`] return how many sessions
//!   of this node got the message.
//! - **Once, in order.** Each node publishes its frames in the order they were published, on
//!   one connection, numbered `1, 2, 3, ...`: a receiving node delivers a frame at most once
//!   and drops one whose number it has seen.
//! - **Nothing lost silently.** Redis pub/sub keeps nothing for a node that was not listening,
//!   so what a node missed cannot be replayed; instead it is noticed and repaired. A gap in an
//!   origin's numbers (frames that origin failed to publish, its queue overflowing), or this
//!   node's own connection to Redis dropping, makes every session subscribed through this
//!   backplane on this node *resync*: one full render of its page
//!   ([`SessionHandle::resync`](dstar_runtime::session::SessionHandle::resync), the
//!   same render that replaces a slow stream's backlog). The render shows the page as its
//!   state is now: whatever the missed messages changed in shared storage (a database, a
//!   store in Redis) appears, what `info` would have kept in the page's own fields does not.
//!   So on several nodes, keep shared state shared and let messages say "look again".
//!   Losses close together cost one render, not one each: after a resync for lost frames,
//!   frames lost within the next half second are repaired by one more resync at its end.
//! - **Logged once, not per message.** Losing the connection logs one `WARN`; getting it back
//!   one `INFO` with how long it was out and how many sessions resync. During an outage
//!   messages reach this node's sessions only: frames are dropped at once, never held back
//!   and delivered late. Each resync for lost frames logs one `WARN` naming the origins and
//!   how many frames were missed.
//! - **Reconnecting** starts at once and backs off to one attempt a second; the connection is
//!   also pinged every few seconds, so a dead peer that never closed the socket is noticed.
//! - **Sessions to resync** are every session that subscribed to a topic through this
//!   backplane on this node and has not ended (a session that later left all its topics may
//!   get one render more than it needed).
//!
//! # Wire format
//!
//! One Redis channel per namespace, `dstar:{namespace}`, carries every topic of the
//! namespace; nodes of one app share a namespace, apps sharing a Redis use different ones.
//! Each node takes an id at start with `INCR dstar:{namespace}:node-ids`. A frame is one
//! binary Redis message (integers big-endian):
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | version, `1` (a frame of another version is dropped and logged once) |
//! | 1 | kind: `1` message, `2` events (a broadcast), `3` mark |
//! | 8 | origin: the id of the node that published it |
//! | 8 | sequence number, per origin: `1` for its first frame, then one more for each |
//! | 2 | topic length `n` |
//! | `n` | topic, UTF-8 |
//!
//! then, for a **message**: 1 byte of flags (bit 0: a sender follows), the sending session's
//! id (16 bytes, only with bit 0; PubSub skips that session, see `Ctx::publish_others`), the
//! type name's length `m` (1 byte), the type name (`m` bytes, UTF-8), and the payload's JSON
//! up to the end; for **events**: the SSE bytes up to the end; a **mark** has no body and an
//! empty topic. A node sends a mark each time it connects, so that a peer sees at once the
//! frames it could not publish while it was cut off, rather than at its next publish.
//!
//! [`PubSub`]: dstar_runtime::pubsub::PubSub
//! [`PubSub::publish`]: dstar_runtime::pubsub::PubSub::publish
//! [`PubSub::broadcast`]: dstar_runtime::pubsub::PubSub::broadcast
//! [`LocalPubSub`]: dstar_runtime::pubsub::LocalPubSub
#![deny(missing_docs)]

mod frame;
mod link;
mod types;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use dstar_runtime::page::Message;
use dstar_runtime::pubsub::{LocalPubSub, PubSub};
use dstar_runtime::session::SessionHandle;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::types::{Registration, Types};

/// How many frames may wait for the connection; more are dropped, and other nodes resync.
const OUTBOX: usize = 4096;

/// A [`PubSub`] whose messages reach the live sessions of every node connected to the same
/// Redis namespace; see the [crate docs](crate).
///
/// Made with [`RedisPubSub::connect`] or [`RedisPubSub::builder`]; pass it to
/// `App::builder().pubsub(..)`. Dropping the last reference (the app holds one) closes its
/// connection.
pub struct RedisPubSub {
    shared: Arc<Shared>,
    tasks: [tokio::task::AbortHandle; 2],
}

impl fmt::Debug for RedisPubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisPubSub")
            .field("channel", &self.shared.channel)
            .field("node", &self.shared.node)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisPubSub {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RedisPubSub {
    /// Connects to the Redis at `url` (`redis://host:port/db`; the connection always speaks
    /// RESP3) for `namespace`, with no message types registered: broadcasts cross nodes,
    /// messages stay on their node. Fails when Redis cannot be reached.
    pub async fn connect(url: &str, namespace: &str) -> Result<Arc<RedisPubSub>, Error> {
        RedisPubSub::builder(url, namespace).connect().await
    }

    /// Starts configuring a backplane for the Redis at `url` and `namespace`.
    pub fn builder(url: impl Into<String>, namespace: impl Into<String>) -> RedisPubSubBuilder {
        RedisPubSubBuilder {
            url: url.into(),
            namespace: namespace.into(),
            types: Vec::new(),
        }
    }

    /// This node's id among the namespace's nodes (the origin of its frames).
    pub fn node_id(&self) -> u64 {
        self.shared.node
    }

    /// The Redis channel the namespace's frames travel on.
    pub fn channel(&self) -> &str {
        &self.shared.channel
    }

    /// Whether the connection to Redis is up: subscribed, and publishes go out. For readiness
    /// checks.
    pub fn is_connected(&self) -> bool {
        self.shared.link.is_up()
    }
}

/// Configures a [`RedisPubSub`]: made by [`RedisPubSub::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `connect`"]
pub struct RedisPubSubBuilder {
    url: String,
    namespace: String,
    types: Vec<Registration>,
}

impl RedisPubSubBuilder {
    /// Lets messages whose payload is a `T` cross nodes, as JSON named `name` (1 to 255 bytes,
    /// the same on every node). Register the same types on every node: a node receiving a
    /// name it does not know logs it once and its sessions miss that message.
    pub fn message<T: Serialize + DeserializeOwned + Send + Sync + 'static>(
        mut self,
        name: &str,
    ) -> Self {
        self.types.push(Registration::of::<T>(name));
        self
    }

    /// Connects, subscribes to the namespace's channel and takes a node id. Fails, listing
    /// every problem, on registrations that clash (a type twice, a name for two types), a
    /// bad URL, an empty namespace, or when Redis cannot be reached.
    pub async fn connect(self) -> Result<Arc<RedisPubSub>, Error> {
        let types = Types::new(self.types).map_err(Error::config)?;
        if self.namespace.is_empty() {
            return Err(Error::config("the namespace is empty".to_owned()));
        }
        let client = link::client(&self.url)?;
        let channel = format!("dstar:{}", self.namespace);
        let (connection, pushes) = link::connect(&client, &channel).await?;
        let node = link::node_id(&connection, &self.namespace).await?;
        let (outbox, frames) = mpsc::channel(OUTBOX);
        let shared = Arc::new(Shared {
            local: LocalPubSub::default(),
            node,
            channel,
            types,
            outbox,
            dropped: AtomicU64::new(0),
            sessions: Mutex::new(Sessions::default()),
            warned: Mutex::new(HashSet::new()),
            link: link::Link::new(connection.clone()),
        });
        shared.mark();
        let publisher = tokio::spawn(link::publish(shared.clone(), frames));
        let listener = tokio::spawn(link::listen(shared.clone(), client, (connection, pushes)));
        tracing::debug!(channel = %shared.channel, node, "connected to Redis");
        Ok(Arc::new(RedisPubSub {
            shared,
            tasks: [publisher.abort_handle(), listener.abort_handle()],
        }))
    }
}

/// Why a [`RedisPubSub`] could not start.
#[derive(Debug)]
pub struct Error {
    message: String,
    source: Option<redis::RedisError>,
}

impl Error {
    fn config(message: String) -> Self {
        Error {
            message,
            source: None,
        }
    }

    pub(crate) fn redis(what: &str, err: redis::RedisError) -> Self {
        Error {
            message: format!("{what}: {err}"),
            source: Some(err),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|err| err as &(dyn std::error::Error + 'static))
    }
}

/// What the backplane's handle and its two tasks (the publisher and the listener) share.
pub(crate) struct Shared {
    local: LocalPubSub,
    pub(crate) node: u64,
    pub(crate) channel: String,
    types: Types,
    /// Frames waiting for the publisher, numbered by it as it sends them.
    outbox: mpsc::Sender<Vec<u8>>,
    /// Frames dropped before the publisher saw them (outbox full): it skips their numbers.
    pub(crate) dropped: AtomicU64,
    sessions: Mutex<Sessions>,
    /// Warnings given once (a topic whose messages stay local, an unknown type name, ...).
    warned: Mutex<HashSet<String>>,
    pub(crate) link: link::Link,
}

/// Every session subscribed through this backplane on this node: the ones to resync.
#[derive(Default)]
struct Sessions {
    by_id: HashMap<u128, SessionHandle>,
    /// The map's size after its last sweep of ended sessions.
    swept_at: usize,
}

/// The most warnings remembered as given; past it, no more are given (a flood of distinct
/// topics must not grow memory).
const MAX_WARNINGS: usize = 1024;

impl Shared {
    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the warning `key` is given for the first time.
    pub(crate) fn first_warning(&self, key: String) -> bool {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        warned.len() < MAX_WARNINGS && warned.insert(key)
    }

    /// Queues a frame for the other nodes; a full queue drops it (its number is skipped, so
    /// the other nodes see the gap).
    fn send(&self, frame: Vec<u8>) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.outbox.try_send(frame) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if self.link.is_up() && self.first_warning("outbox full".to_owned()) {
                tracing::warn!(
                    channel = %self.channel,
                    node = self.node,
                    "Redis is not keeping up: frames are dropped (other nodes resync); \
                     logged once"
                );
            }
        }
    }

    /// Queues a mark: a frame with only a number, so peers see at once the numbers this
    /// node skipped while it was cut off.
    pub(crate) fn mark(&self) {
        if let Some(frame) = frame::mark(self.node) {
            self.send(frame);
        }
    }

    /// The frame that carries `message` to other nodes, if it can cross.
    fn message_frame(&self, topic: &str, message: &Message) -> Option<Vec<u8>> {
        let Some((name, encode)) = self.types.sending(message) else {
            if self.first_warning(format!("unregistered\0{topic}")) {
                tracing::warn!(
                    channel = %self.channel,
                    topic,
                    "a message on this topic has a payload type not registered with \
                     `RedisPubSub::builder(..).message::<T>(name)`: it reached this node's \
                     sessions only (logged once per topic)"
                );
            }
            return None;
        };
        match frame::message(self.node, topic, message.sender(), name, |out| {
            encode(message, out)
        }) {
            Some(Ok(frame)) => Some(frame),
            Some(Err(err)) => {
                if self.first_warning(format!("unserialisable\0{topic}\0{name}")) {
                    tracing::warn!(
                        channel = %self.channel,
                        topic,
                        name,
                        %err,
                        "a message could not be serialised: it reached this node's sessions \
                         only (logged once per topic and type)"
                    );
                }
                None
            }
            None => {
                self.topic_too_long(topic);
                None
            }
        }
    }

    fn topic_too_long(&self, topic: &str) {
        if self.first_warning(format!("long\0{topic}")) {
            tracing::warn!(
                channel = %self.channel,
                topic_bytes = topic.len(),
                "a topic longer than {} bytes cannot cross nodes: its messages reach this \
                 node's sessions only (logged once per topic)",
                frame::MAX_TOPIC
            );
        }
    }

    /// Delivers a message from another node to this node's subscribers of `topic`.
    pub(crate) fn deliver(&self, topic: &str, message: Message) -> usize {
        self.local.publish(topic, message)
    }

    /// Delivers events from another node to this node's subscribers of `topic`.
    pub(crate) fn deliver_events(&self, topic: &str, events: Bytes) -> usize {
        self.local.broadcast(topic, events)
    }

    /// How to decode messages named `name` (and a warning, once, when this node does not know
    /// it).
    pub(crate) fn decoder(
        &self,
        name: &str,
        topic: &str,
    ) -> Option<dstar_runtime::page::DecodePayload> {
        let decode = self.types.receiving(name);
        if decode.is_none() && self.first_warning(format!("unknown\0{name}")) {
            tracing::warn!(
                channel = %self.channel,
                name,
                topic,
                "a message arrived whose type name is not registered on this node (register it \
                 with `.message::<T>(name)` on every node): its sessions miss it (logged once \
                 per name)"
            );
        }
        decode
    }

    /// Asks every session subscribed through this backplane for one full render; forgets the
    /// ones that have ended. Returns how many were asked.
    pub(crate) fn resync_all(&self) -> usize {
        let mut sessions = self.sessions();
        sessions.by_id.retain(|_, session| session.resync());
        sessions.swept_at = sessions.by_id.len();
        sessions.by_id.len()
    }
}

/// Below this many sessions the set is never swept on subscribe.
const SWEEP_FLOOR: usize = 64;

impl PubSub for RedisPubSub {
    fn subscribe(&self, topic: &str, session: SessionHandle) {
        {
            let mut sessions = self.shared.sessions();
            sessions.by_id.insert(session.id(), session.clone());
            // Ended sessions go at resyncs, and here once the set has doubled since the last
            // sweep, so it stays within twice the live ones (as `LocalPubSub`'s topics do).
            let len = sessions.by_id.len();
            if len >= SWEEP_FLOOR && len >= 2 * sessions.swept_at {
                sessions.by_id.retain(|_, s| !s.is_closed());
                sessions.swept_at = sessions.by_id.len();
            }
        }
        self.shared.local.subscribe(topic, session);
    }

    fn unsubscribe(&self, topic: &str, session: u128) {
        self.shared.local.unsubscribe(topic, session);
    }

    fn publish(&self, topic: &str, message: Message) -> usize {
        let frame = self.shared.message_frame(topic, &message);
        let delivered = self.shared.local.publish(topic, message);
        if let Some(frame) = frame {
            self.shared.send(frame);
        }
        delivered
    }

    fn broadcast(&self, topic: &str, events: Bytes) -> usize {
        match frame::events(self.shared.node, topic, &events) {
            Some(frame) => self.shared.send(frame),
            None => self.shared.topic_too_long(topic),
        }
        self.shared.local.broadcast(topic, events)
    }
}
