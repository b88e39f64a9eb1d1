//! What other code holds of a session: its settings, the registry of running sessions, the
//! mailbox a session task reads, and the [`SessionHandle`] that sends into it.
//!
//! This module and `page` import each other, the one cycle in the runtime, inside the model
//! layer: a page is handed its session's handle (`Mount::session`, `Ctx::session`), and a
//! handle carries page values (a `Message` for `info`, a navigation target to mount). They are
//! one model seen from two sides; splitting either would only move the cycle. `pubsub` and
//! `page` are linked the same way (a page publishes; PubSub delivers a page's `Message`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use slab::Slab;
use tokio::sync::{Notify, oneshot};

use super::outcomes::{Ended, Outcomes};
use super::page::LiveTarget;
use super::queue::StreamQueue;
use crate::error::Result;
use crate::page::{Message, SessionEnd};
use crate::protocol::History;

/// Live session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Most sessions at once; over it, live page loads answer 503.
    pub max_sessions: usize,
    /// How long a session waits for its stream to connect before it is reaped.
    pub connect_deadline: Duration,
    /// How long a session waits for a dropped stream to reconnect before it terminates.
    pub reconnect_grace: Duration,
    /// How long a tab stays hidden before its live stream pauses, giving the browser's
    /// connection back (pages marked `background` keep streaming). The tab resumes when it is
    /// shown again, catching up from where it stopped.
    pub hidden_pause: Duration,
    /// How long a session outlives a paused stream (a hidden tab, or one paused to keep the
    /// browser under its connection limit). A tab shown again later is re-mounted in place.
    pub hidden_grace: Duration,
    /// How many live streams the tabs of one browser keep open to this site at once over
    /// HTTP/1.1, where a browser allows six connections per site: past it, the tab focused
    /// least recently pauses (and says so until it is focused). HTTP/2 shares one connection
    /// and has no such limit. 0 turns the coordination off.
    pub browser_streams: usize,
    /// How often an idle stream gets a heartbeat comment.
    pub heartbeat: Duration,
    /// How many recent events a session keeps for replay after a reconnect.
    pub replay_events: usize,
    /// How many bytes of recent events a session keeps for replay, at most (events as sent,
    /// shared broadcast bodies counted in full). A reconnect that missed more than the ring
    /// holds gets one full render instead, so this bounds a busy session's memory, not what a
    /// client sees: with the default, a session whose page renders ~1 KB keeps its last few
    /// events (BENCHMARKS.md has the curve).
    pub replay_bytes: usize,
    /// How many encoded batches may wait for a slow client before they are replaced by one
    /// full re-render.
    pub stream_queue: usize,
    /// How many events and messages may wait for a busy session; more are refused (events
    /// with 503, messages dropped).
    pub mailbox: usize,
    /// How long live event tokens are valid; they are renewed through a signal before then.
    pub token_ttl: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_sessions: 100_000,
            connect_deadline: Duration::from_secs(30),
            reconnect_grace: Duration::from_secs(30),
            hidden_pause: Duration::from_secs(5),
            hidden_grace: Duration::from_secs(600),
            browser_streams: 4,
            heartbeat: Duration::from_secs(15),
            replay_events: 64,
            replay_bytes: 4096,
            stream_queue: 64,
            mailbox: 256,
            token_ttl: Duration::from_secs(3600),
        }
    }
}

/// The registry of running sessions: a slab of slots, capped.
///
/// A new session's id carries its slab index in its low 32 bits, so finding it is one index
/// and one comparison. A session re-mounted in place takes back the id its tab already holds
/// tokens for (the session module's docs say when); a slab cannot insert at a chosen index,
/// so those sessions live in a map beside it, empty (and allocation-free) until a re-mount.
#[derive(Debug)]
pub struct Registry {
    config: SessionConfig,
    slots: Mutex<Slots>,
    outcomes: Outcomes,
    ended: Ended,
    tasks: AtomicUsize,
    /// Woken when the last task ends, for [`shutdown`](Self::shutdown).
    idle: Notify,
    /// The last event's signals of sessions whose page keeps them (`keep_signals`): beside
    /// the sessions rather than in them, so pages that do not ask pay nothing.
    kept: Mutex<HashMap<u128, Bytes>>,
    tags: Mutex<Tags>,
}

/// Sessions by tag ([`Mount::tag`](crate::page::Mount::tag)). Ended sessions are dropped
/// lazily, as PubSub drops them: when their tag is used again, and from the whole map once it
/// has doubled since the last sweep, so it stays within twice its live size.
#[derive(Debug, Default)]
struct Tags {
    sessions: HashMap<String, Vec<SessionHandle>>,
    swept_at: usize,
}

#[derive(Debug)]
struct Slot {
    id: u128,
    mailbox: Arc<Mailbox>,
}

/// New sessions by slab index, and sessions that took back an earlier id.
#[derive(Debug, Default)]
struct Slots {
    slab: Slab<Slot>,
    taken_back: HashMap<u128, Arc<Mailbox>>,
}

impl Slots {
    fn len(&self) -> usize {
        self.slab.len() + self.taken_back.len()
    }

    fn mailbox(&self, id: u128) -> Option<&Arc<Mailbox>> {
        match self.slab.get(slot_index(id)) {
            Some(slot) if slot.id == id => Some(&slot.mailbox),
            _ if self.taken_back.is_empty() => None,
            _ => self.taken_back.get(&id),
        }
    }
}

/// Why [`Registry::reserve_id`] gave no reservation.
#[derive(Debug)]
pub(crate) enum Unavailable {
    /// A session with that id is running (a concurrent re-mount won): use it.
    Running(SessionHandle),
    /// The registry is full.
    Full,
}

impl Registry {
    pub(crate) fn new(config: SessionConfig) -> Self {
        Registry {
            config,
            slots: Mutex::new(Slots::default()),
            outcomes: Outcomes::default(),
            ended: Ended::default(),
            tasks: AtomicUsize::new(0),
            idle: Notify::new(),
            tags: Mutex::default(),
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// Tags `session` with each of `tags`.
    pub(crate) fn tag(&self, session: &SessionHandle, tags: Vec<String>) {
        if tags.is_empty() {
            return;
        }
        let mut all = self.tags.lock().unwrap_or_else(|e| e.into_inner());
        for tag in tags {
            let sessions = all.sessions.entry(tag).or_default();
            sessions.retain(|s| !s.is_closed() && s.id() != session.id());
            sessions.push(session.clone());
        }
        if all.sessions.len() >= 64 && all.sessions.len() >= 2 * all.swept_at {
            all.sessions.retain(|_, sessions| {
                sessions.retain(|s| !s.is_closed());
                !sessions.is_empty()
            });
            all.swept_at = all.sessions.len();
        }
    }

    /// Ends every running session tagged `tag` on purpose, as a handler's
    /// [`Ctx::end_session`](crate::page::Ctx::end_session) would: each tab gets `ending` (the
    /// login page after a logout), `terminate` runs, and the tabs are never re-mounted by
    /// their retries (see the session module's table). Returns how many were told.
    pub fn end_tagged(&self, tag: &str, ending: SessionEnd) -> usize {
        let sessions = self
            .tags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sessions
            .remove(tag)
            .unwrap_or_default();
        sessions
            .iter()
            .filter(|session| session.push_control(Command::End(ending.clone())))
            .count()
    }

    /// Keeps `signals`, the last event's, for session `id` (a `keep_signals` page).
    pub(crate) fn keep_signals(&self, id: u128, signals: Bytes) {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, signals);
    }

    /// The signals kept for session `id`, if any.
    pub(crate) fn kept_signals(&self, id: u128) -> Option<Bytes> {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// The settings sessions run with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The answers of recent clicks (see the `outcomes` module).
    pub(crate) fn outcomes(&self) -> &Outcomes {
        &self.outcomes
    }

    /// The sessions ended on purpose recently (see the `outcomes` module).
    pub(crate) fn ended(&self) -> &Ended {
        &self.ended
    }

    /// How many sessions are registered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many session tasks are running (a task outlives its slot briefly while it
    /// terminates).
    pub fn tasks(&self) -> usize {
        self.tasks.load(Ordering::SeqCst)
    }

    /// A handle to the session `id`, if it is running.
    pub fn handle(&self, id: u128) -> Option<SessionHandle> {
        let slots = self.lock();
        slots.mailbox(id).map(|mailbox| SessionHandle {
            id,
            mailbox: mailbox.clone(),
        })
    }

    /// Cuts every attached stream as a network failure would, keeping the sessions: browsers
    /// reconnect and get what they missed. For failure drills and tests of reconnection.
    pub fn disconnect_streams(&self) {
        self.tell_all(|| Command::Disconnect);
    }

    /// Sends a control command to every session (outside the registry's lock).
    /// Tells every session to render its page again and send it whole: live reload, when a
    /// template file changed (debug builds).
    pub(crate) fn rerender_all(&self) {
        self.tell_all(|| Command::Rerender);
    }

    fn tell_all(&self, command: impl Fn() -> Command) {
        let mailboxes: Vec<Arc<Mailbox>> = {
            let slots = self.lock();
            slots
                .slab
                .iter()
                .map(|(_, slot)| &slot.mailbox)
                .chain(slots.taken_back.values())
                .cloned()
                .collect()
        };
        for mailbox in mailboxes {
            mailbox.push_control(command());
        }
    }

    /// Ends every session: streams end with a retry hint, `terminate` runs. Returns once every
    /// session task has finished (or `timeout` passed).
    pub async fn shutdown(&self, timeout: Duration) {
        self.tell_all(|| Command::Shutdown);
        let all_ended = async {
            loop {
                // Registered before the count is read, so an end between the two still wakes.
                let ended = self.idle.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                if self.tasks() == 0 {
                    return;
                }
                ended.await;
            }
        };
        let _ = tokio::time::timeout(timeout, all_ended).await;
    }

    /// Counts a session task in; [`task_ended`](Self::task_ended) counts it out.
    pub(crate) fn task_started(&self) {
        self.tasks.fetch_add(1, Ordering::SeqCst);
        crate::metrics::live_sessions(1.0);
    }

    pub(crate) fn task_ended(&self) {
        crate::metrics::live_sessions(-1.0);
        if self.tasks.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a new session with `mailbox`; `None` when the registry is full. The
    /// slot is freed again when the returned reservation is dropped without
    /// [`keep`](Reservation::keep), so a start that fails half-way cannot leak it.
    pub(crate) fn reserve(&self, mailbox: Arc<Mailbox>) -> Option<Reservation<'_>> {
        let mut slots = self.lock();
        if slots.len() >= self.config.max_sessions {
            return None;
        }
        let entry = slots.slab.vacant_entry();
        let index = entry.key() as u128;
        if index > u128::from(u32::MAX) {
            return None;
        }
        // The low 32 bits locate the slot; the other 96 are random.
        let id = (crate::token::random_id() << 32) | index;
        entry.insert(Slot {
            id,
            mailbox: mailbox.clone(),
        });
        Some(Reservation {
            registry: self,
            handle: SessionHandle { id, mailbox },
            kept: false,
        })
    }

    /// Takes the slot of session `id` back for a session re-mounted in place (its tab holds
    /// tokens for that id; the session that had it is gone). Atomic: of two re-mounts of one
    /// id, one reserves it and the other is handed the winner's session.
    pub(crate) fn reserve_id(
        &self,
        id: u128,
        mailbox: Arc<Mailbox>,
    ) -> std::result::Result<Reservation<'_>, Unavailable> {
        let mut slots = self.lock();
        if let Some(running) = slots.mailbox(id) {
            return Err(Unavailable::Running(SessionHandle {
                id,
                mailbox: running.clone(),
            }));
        }
        if slots.len() >= self.config.max_sessions {
            return Err(Unavailable::Full);
        }
        slots.taken_back.insert(id, mailbox.clone());
        Ok(Reservation {
            registry: self,
            handle: SessionHandle { id, mailbox },
            kept: false,
        })
    }

    pub(crate) fn remove(&self, id: u128) {
        {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.remove(&id).is_some() && kept.is_empty() {
                *kept = HashMap::new();
            }
        }
        let mut slots = self.lock();
        let index = slot_index(id);
        if slots.slab.get(index).is_some_and(|slot| slot.id == id) {
            slots.slab.remove(index);
        } else if slots.taken_back.remove(&id).is_some() && slots.taken_back.is_empty() {
            // Back to no allocation once the last re-mounted session ends.
            slots.taken_back = HashMap::new();
        }
    }
}

/// A registry slot taken for a session that is still starting.
#[derive(Debug)]
pub(crate) struct Reservation<'r> {
    registry: &'r Registry,
    handle: SessionHandle,
    kept: bool,
}

impl Reservation<'_> {
    /// The session's handle.
    pub(crate) fn handle(&self) -> &SessionHandle {
        &self.handle
    }

    /// The session started: its task owns the slot from now on.
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.registry.remove(self.handle.id);
        }
    }
}

/// The answer to an event for a session that is not running: a tab whose session is gone
/// gets it back through its stream (re-mounted in place), so the event, which was not
/// applied, can be sent again shortly (the event endpoint adds `Retry-After`).
pub(crate) fn session_unavailable() -> crate::error::Error {
    crate::error::Error::new(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "the session is not running (its page is being restored); send the event again",
    )
}

/// The answer to an event for a session ended on purpose.
pub(crate) fn session_ended() -> crate::error::Error {
    crate::error::Error::new(
        http::StatusCode::GONE,
        "the session has ended; reload the page to start a new one",
    )
}

/// The short form of a session id for logs: its first 32 random bits (the low bits are the
/// slot, reused by later sessions).
pub(crate) fn short_id(id: u128) -> ShortId {
    ShortId((id >> 96) as u32)
}

/// See [`short_id`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShortId(u32);

impl std::fmt::Display for ShortId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

fn slot_index(id: u128) -> usize {
    (id & u128::from(u32::MAX)) as usize
}

/// What a session task is asked to do.
pub(crate) enum Command {
    Event(Box<EventCommand>),
    Message(Message),
    /// Events encoded once for many sessions; each session only adds its ids.
    Shared(Bytes),
    Attach(Box<Attach>),
    Detached(u64),
    Navigate(Box<Navigate>),
    /// Render the page again and send it whole (a template changed, in debug builds; the tab
    /// may have missed PubSub messages, see `SessionHandle::resync`).
    Rerender,
    /// End the session on purpose, as a handler's `Ctx::end_session` does.
    End(SessionEnd),
    /// The tab paused its stream (hidden, or over the browser's connection limit): the
    /// stream ends cleanly and the session waits the hidden-tab grace.
    Pause,
    Disconnect,
    Shutdown,
    /// Render the page and answer with it (`SessionHandle::snapshot`).
    Snapshot(oneshot::Sender<Result<Snapshot>>),
}

/// A live session's page as it is now, taken without subscribing to its stream
/// ([`SessionHandle::snapshot`]): for a debug page, an admin view, a test.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The page body rendered from the page's current state (the root's content).
    pub html: String,
    /// The page's URL as the browser sees it (with the mount prefix and the query).
    pub url: String,
    /// The signals the session's last event carried, when the page keeps them
    /// (`keep_signals`); `None` otherwise and before the first event. The browser's signals
    /// live in the browser: the server knows only what events send it.
    pub signals: Option<serde_json::Value>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Event(_) => "Event",
            Command::Message(_) => "Message",
            Command::Shared(_) => "Shared",
            Command::Attach(_) => "Attach",
            Command::Detached(_) => "Detached",
            Command::Navigate(_) => "Navigate",
            Command::Rerender => "Rerender",
            Command::Snapshot(_) => "Snapshot",
            Command::End(_) => "End",
            Command::Pause => "Pause",
            Command::Disconnect => "Disconnect",
            Command::Shutdown => "Shutdown",
        })
    }
}

/// A soft navigation to another live page of the session's group.
pub(crate) struct Navigate {
    pub(crate) target: LiveTarget,
    /// The target as the browser sees it (under the mount prefix).
    pub(crate) url: String,
    /// How much of `url` is the mount prefix.
    pub(crate) prefix_len: usize,
    pub(crate) parts: http::request::Parts,
    pub(crate) history: History,
    /// `Ok(false)`: the target is in another group; load it in full.
    pub(crate) reply: oneshot::Sender<Result<bool>>,
}

/// An event for the session's page, answered once its handler has run.
pub(crate) struct EventCommand {
    pub(crate) name: String,
    pub(crate) signals: Bytes,
    /// The event request's headers: the handler reads its cookies.
    pub(crate) headers: http::HeaderMap,
    /// The handler's answer: the cookies it set, or its error.
    pub(crate) reply: oneshot::Sender<Result<Vec<http::HeaderValue>>>,
    /// The request that sent it, so the handler's span can point back at the POST.
    pub(crate) request: tracing::Span,
}

/// A stream connecting to the session.
pub(crate) struct Attach {
    pub(crate) queue: Arc<StreamQueue>,
    /// Tells streams apart, so a late drop of a replaced stream is not taken for the current
    /// one.
    pub(crate) generation: u64,
    pub(crate) last_event_id: Option<u64>,
}

/// A session's inbox: allocation-free while empty.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    state: Mutex<MailState>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct MailState {
    items: VecDeque<Command>,
    closed: bool,
    capacity: usize,
}

impl Mailbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Mailbox {
            state: Mutex::new(MailState {
                capacity,
                ..MailState::default()
            }),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MailState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an event or message; refused when closed or full.
    pub(crate) fn push(&self, command: Command) -> std::result::Result<(), Command> {
        {
            let mut state = self.lock();
            if state.closed || state.items.len() >= state.capacity {
                return Err(command);
            }
            state.items.push_back(command);
        }
        self.notify.notify_one();
        Ok(())
    }

    /// Queues a control command, which is never refused for being full.
    pub(crate) fn push_control(&self, command: Command) {
        {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            state.items.push_back(command);
        }
        self.notify.notify_one();
    }

    pub(crate) async fn recv(&self) -> Command {
        loop {
            if let Some(command) = self.lock().items.pop_front() {
                return command;
            }
            self.notify.notified().await;
        }
    }

    /// Refuses everything from now on and hands back what was still queued.
    pub(crate) fn close(&self) -> VecDeque<Command> {
        let mut state = self.lock();
        state.closed = true;
        std::mem::take(&mut state.items)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// A handle that sends messages to one running session.
#[derive(Clone)]
pub struct SessionHandle {
    id: u128,
    mailbox: Arc<Mailbox>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("id", &format_args!("{:032x}", self.id))
            .finish()
    }
}

impl SessionHandle {
    pub(crate) fn new(id: u128, mailbox: Arc<Mailbox>) -> Self {
        SessionHandle { id, mailbox }
    }

    /// The session's id.
    pub fn id(&self) -> u128 {
        self.id
    }

    /// The id by reference, for sets of handles probed by id.
    pub(crate) fn id_ref(&self) -> &u128 {
        &self.id
    }

    /// Sends a message to the session's `info`. Returns `false` if the session is gone or its
    /// mailbox is full.
    pub fn send<T: std::any::Any + Send + Sync>(&self, payload: T) -> bool {
        self.send_message(Message::new(payload))
    }

    pub(crate) fn send_message(&self, message: Message) -> bool {
        self.mailbox.push(Command::Message(message)).is_ok()
    }

    /// Sends already-encoded events (from the `sse` builders' `to_bytes`) straight to the
    /// session's stream, without running `info` or rendering: the bytes are shared, not copied,
    /// and the session adds only its event ids. Returns `false` if the session is gone or its
    /// mailbox is full.
    pub fn send_events(&self, events: Bytes) -> bool {
        self.mailbox.push(Command::Shared(events)).is_ok()
    }

    /// The page as it is now: its body rendered from the current state, its URL and the
    /// signals it keeps, without subscribing to its stream. Asked in turn with the events and
    /// messages already sent to the session, so it reflects them.
    ///
    /// ```ignore
    /// let snapshot = handle.snapshot().await?;
    /// assert!(snapshot.html.contains("Count: 3"));
    /// ```
    ///
    /// # Errors
    ///
    /// `503` when the session has ended or its mailbox is full; the page's render error when
    /// it does not render.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let (reply, answer) = oneshot::channel();
        if self.mailbox.push(Command::Snapshot(reply)).is_err() {
            return Err(session_unavailable());
        }
        answer.await.unwrap_or_else(|_| Err(session_unavailable()))
    }

    /// Asks the session for one full render of its page, as after its stream queue overflowed:
    /// for a multi-node PubSub that knows the session may have missed messages (another node's
    /// sequence skipped some, or the connection to the other nodes was down). The render shows
    /// the page's state as it is now: whatever the missed messages would have changed in
    /// shared state (a database, a store other nodes write to) appears; what `info` would have
    /// kept in the page's own fields does not. Never refused for a full mailbox; returns
    /// `false` if the session has ended.
    pub fn resync(&self) -> bool {
        // The render live reload sends, which is the one a stream-queue overflow sends.
        let asked = self.push_control(Command::Rerender);
        if asked {
            crate::metrics::resync();
        }
        asked
    }

    /// Queues an event or message for the task; refused when the mailbox is closed or full.
    pub(crate) fn push(&self, command: Command) -> std::result::Result<(), Command> {
        self.mailbox.push(command)
    }

    /// Queues a control command; `false` when the session has ended.
    pub(crate) fn push_control(&self, command: Command) -> bool {
        self.mailbox.push_control(command);
        !self.mailbox.is_closed()
    }

    pub(crate) fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    /// Whether `other` is a handle of this very session, not only of its id (a session
    /// re-mounted in place takes back its tab's id).
    pub(crate) fn same_session(&self, other: &SessionHandle) -> bool {
        Arc::ptr_eq(&self.mailbox, &other.mailbox)
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.mailbox.is_closed()
    }
}
