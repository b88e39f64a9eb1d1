//! Live sessions: one tokio task per browser tab that owns the page state.
//!
//! ```text
//!  GET /page ──► mount + render ──► spawn session task ──► HTML with tokens
//!                                         │
//!  POST /__dstar/stream ──attach──────────┤ (one stream per session; a new one replaces the old)
//!  POST /__dstar/event ───event──────────►│──► handler ──► patches ──► stream queue ──► SSE
//!  PubSub / SessionHandle ──message──────►│──► info    ──► patches ──┘
//! ```
//!
//! # Lifecycle
//!
//! - A session whose stream never connects is reaped after `connect_deadline`.
//! - When the stream drops, the session waits `reconnect_grace`; a reconnect within it resumes
//!   the same state, otherwise `terminate` runs and the session is removed.
//! - Every event sent on the stream has an `id`. The session keeps a bounded ring of recent
//!   events; a reconnect carrying `Last-Event-ID` gets exactly the events it missed, or a full
//!   re-render when the ring no longer has them.
//! - A reconnect to a session that is gone (expired, server restarted) gets `200` and an event
//!   that reloads the page: the Datastar client ignores most error statuses, which would leave
//!   the tab frozen.
//! - A panic in a handler ends that session only: its stream gets a reload instruction,
//!   `terminate` is skipped (the state may be half-updated), the slot is freed.
//! - A slow client cannot block its session: the stream queue is bounded, and when it overflows
//!   the queued patches are dropped and replaced by one full re-render.
//! - [`Registry::shutdown`] ends every stream with a retry hint and runs `terminate`.
//!
//! # Why the stream is a POST
//!
//! The Datastar client closes `GET` streams while a tab is hidden (and reopens them when it is
//! shown); a non-GET stream stays open, so state and PubSub messages keep flowing to background
//! tabs and nothing is replayed on every tab switch. The token travels in a header either way.
//!
//! # Memory
//!
//! An idle session is its page state plus: one slab slot, an `Arc`'d mailbox (a mutex-guarded
//! `VecDeque` that allocates nothing until a message arrives, and a `Notify`), the task and its
//! future. The event ring is empty until events are sent.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{Html as HtmlResponse, IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::StatusCode;
use http_body::Frame;
use slab::Slab;
use tokio::sync::{Notify, oneshot};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::app::App;
use crate::error::{Error, Result};
use crate::page::{
    Ctx, Event, Html, Message, Mount, Page, PageData, Render, Route, View, page_value,
};
use crate::response::HEARTBEAT;
use crate::router::Entry;
use crate::sse::{ExecuteScript, PatchSignals};
use crate::stateless::{
    EVENT_HEADER, EVENT_NAME, TOKEN_HEADER, TOKEN_NAME, document, error_response, header,
    write_root_patch,
};
use crate::token::Purpose;

/// The path of the stream endpoint.
pub const STREAM_PATH: &str = "/__dstar/stream";
/// The path of the live event endpoint.
pub const EVENT_PATH: &str = "/__dstar/event";

/// Live session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Most sessions at once; over it, live page loads answer 503.
    pub max_sessions: usize,
    /// How long a session waits for its stream to connect before it is reaped.
    pub connect_deadline: Duration,
    /// How long a session waits for a dropped stream to reconnect before it terminates.
    pub reconnect_grace: Duration,
    /// How often an idle stream gets a heartbeat comment.
    pub heartbeat: Duration,
    /// How many recent events a session keeps for replay after a reconnect.
    pub replay_events: usize,
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
            heartbeat: Duration::from_secs(15),
            replay_events: 64,
            stream_queue: 64,
            mailbox: 256,
            token_ttl: Duration::from_secs(3600),
        }
    }
}

/// The registry of running sessions: a slab of slots, capped.
#[derive(Debug)]
pub struct Registry {
    config: SessionConfig,
    slots: Mutex<Slab<Slot>>,
    tasks: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct Slot {
    id: u128,
    mailbox: Arc<Mailbox>,
}

impl Registry {
    pub(crate) fn new(config: SessionConfig) -> Self {
        Registry {
            config,
            slots: Mutex::new(Slab::new()),
            tasks: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The settings sessions run with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
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
        let slot = slots.get(slot_index(id))?;
        (slot.id == id).then(|| SessionHandle {
            id,
            mailbox: slot.mailbox.clone(),
        })
    }

    /// Cuts every attached stream as a network failure would, keeping the sessions: browsers
    /// reconnect and get what they missed. For failure drills and tests of reconnection.
    pub fn disconnect_streams(&self) {
        self.tell_all(|| Command::Disconnect);
    }

    /// Sends a control command to every session (outside the registry's lock).
    fn tell_all(&self, command: impl Fn() -> Command) {
        let mailboxes: Vec<Arc<Mailbox>> = self
            .lock()
            .iter()
            .map(|(_, slot)| slot.mailbox.clone())
            .collect();
        for mailbox in mailboxes {
            mailbox.push_control(command());
        }
    }

    /// Ends every session: streams end with a retry hint, `terminate` runs. Returns once every
    /// session task has finished (or `timeout` passed).
    pub async fn shutdown(&self, timeout: Duration) {
        self.tell_all(|| Command::Shutdown);
        let deadline = Instant::now() + timeout;
        while self.tasks() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slab<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, mailbox: Arc<Mailbox>) -> Option<u128> {
        let mut slots = self.lock();
        if slots.len() >= self.config.max_sessions {
            return None;
        }
        let entry = slots.vacant_entry();
        let index = entry.key() as u128;
        if index > u128::from(u32::MAX) {
            return None;
        }
        // The low 32 bits locate the slot; the other 96 are random.
        let id = (crate::token::random_id() << 32) | index;
        entry.insert(Slot { id, mailbox });
        Some(id)
    }

    fn remove(&self, id: u128) {
        let mut slots = self.lock();
        let index = slot_index(id);
        if slots.get(index).is_some_and(|slot| slot.id == id) {
            slots.remove(index);
        }
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
    Disconnect,
    Shutdown,
}

/// A soft navigation to another live page of the session's group.
pub(crate) struct Navigate {
    pub(crate) entry: &'static Route,
    pub(crate) live: LiveEntry,
    pub(crate) params: Vec<(&'static str, String)>,
    pub(crate) url: String,
    pub(crate) parts: http::request::Parts,
    pub(crate) history: crate::nav::History,
    /// `Ok(false)`: the target is in another group; load it in full.
    pub(crate) reply: oneshot::Sender<Result<bool>>,
}

pub(crate) struct EventCommand {
    name: String,
    signals: Bytes,
    reply: oneshot::Sender<Result<()>>,
}

pub(crate) struct Attach {
    queue: Arc<StreamQueue>,
    generation: u64,
    last_event_id: Option<u64>,
}

/// Tells streams apart, so a late drop of a replaced stream is not taken for the current one.
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

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

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Event(_) => "Event",
            Command::Message(_) => "Message",
            Command::Shared(_) => "Shared",
            Command::Attach(_) => "Attach",
            Command::Detached(_) => "Detached",
            Command::Navigate(_) => "Navigate",
            Command::Disconnect => "Disconnect",
            Command::Shutdown => "Shutdown",
        })
    }
}

impl Mailbox {
    fn new(capacity: usize) -> Self {
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
    fn push(&self, command: Command) -> std::result::Result<(), Command> {
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
    fn push_control(&self, command: Command) {
        {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            state.items.push_back(command);
        }
        self.notify.notify_one();
    }

    async fn recv(&self) -> Command {
        loop {
            if let Some(command) = self.lock().items.pop_front() {
                return command;
            }
            self.notify.notified().await;
        }
    }

    fn close(&self) -> VecDeque<Command> {
        let mut state = self.lock();
        state.closed = true;
        std::mem::take(&mut state.items)
    }

    fn is_closed(&self) -> bool {
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
    /// The session's id.
    pub fn id(&self) -> u128 {
        self.id
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

    pub(crate) fn push_control(&self, command: Command) -> bool {
        self.mailbox.push_control(command);
        !self.mailbox.is_closed()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.mailbox.is_closed()
    }
}

// ---------------------------------------------------------------------------------------------
// The stream queue and body.

/// Encoded batches waiting for one stream, shared by the session (writer) and the response
/// body (reader).
#[derive(Debug)]
pub(crate) struct StreamQueue {
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    items: VecDeque<Bytes>,
    end: Option<End>,
    waker: Option<Waker>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Finish the response normally: the client does not reconnect.
    Close,
    /// Abort the connection: the client treats it as a network error and reconnects.
    Abort,
}

impl StreamQueue {
    fn new() -> Self {
        StreamQueue {
            state: Mutex::new(QueueState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a batch. Returns `false` when the queue was full: it is then emptied, and the
    /// caller sends a full re-render instead.
    fn push(&self, bytes: Bytes, capacity: usize) -> bool {
        self.push_all([bytes], capacity)
    }

    /// Queues pieces that belong together (an event's own head and its shared body): all of
    /// them, or, when the queue is full, none.
    fn push_all(&self, pieces: impl IntoIterator<Item = Bytes>, capacity: usize) -> bool {
        let waker = {
            let mut state = self.lock();
            if state.end.is_some() {
                return true;
            }
            if state.items.len() >= capacity {
                state.items.clear();
                return false;
            }
            state
                .items
                .extend(pieces.into_iter().filter(|piece| !piece.is_empty()));
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    fn end(&self, end: End, last: Option<Bytes>) {
        let waker = {
            let mut state = self.lock();
            if let Some(last) = last {
                state.items.push_back(last);
            }
            state.end = Some(end);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The live stream's response body.
struct LiveBody {
    queue: Arc<StreamQueue>,
    mailbox: Arc<Mailbox>,
    generation: u64,
    heartbeat: Interval,
    /// Before aborting, the body waits a moment so the last frames are flushed first: hyper
    /// drops what it has buffered when a body fails.
    abort_after: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The error that aborts a stream so the client reconnects.
#[derive(Debug)]
struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream aborted for reconnection")
    }
}

impl std::error::Error for Aborted {}

impl http_body::Body for LiveBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Aborted>>> {
        {
            let mut state = self.queue.lock();
            if let Some(bytes) = state.items.pop_front() {
                drop(state);
                self.heartbeat.reset();
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            match state.end {
                Some(End::Close) => return Poll::Ready(None),
                Some(End::Abort) => {}
                None => state.waker = Some(cx.waker().clone()),
            }
            if state.end == Some(End::Abort) {
                drop(state);
                let delay = self
                    .abort_after
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(20))));
                return match delay.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Aborted))),
                    Poll::Pending => Poll::Pending,
                };
            }
        }
        if self.heartbeat.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(HEARTBEAT)))));
        }
        Poll::Pending
    }
}

impl Drop for LiveBody {
    fn drop(&mut self) {
        self.mailbox
            .push_control(Command::Detached(self.generation));
    }
}

// ---------------------------------------------------------------------------------------------
// Type-erased pages, so a session can hold any page of its group.

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A live page behind a pointer.
pub(crate) trait LivePage: Send {
    fn route(&self) -> &'static Route;
    fn render(&self, view: &View<'_>) -> Result<Html>;
    fn event<'a>(&'a mut self, cx: &'a mut Ctx<'_>, event: Event<'a>) -> BoxFuture<'a, Result<()>>;
    fn info<'a>(&'a mut self, cx: &'a mut Ctx<'_>, message: Message) -> BoxFuture<'a, Result<()>>;
    fn terminate(&mut self) -> BoxFuture<'_, ()>;
}

impl<P: Page> LivePage for P {
    fn route(&self) -> &'static Route {
        &P::ROUTE
    }

    fn render(&self, view: &View<'_>) -> Result<Html> {
        Page::render(self, view)
    }

    fn event<'a>(&'a mut self, cx: &'a mut Ctx<'_>, event: Event<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(Page::event(self, cx, event))
    }

    fn info<'a>(&'a mut self, cx: &'a mut Ctx<'_>, message: Message) -> BoxFuture<'a, Result<()>> {
        Box::pin(Page::info(self, cx, message))
    }

    fn terminate(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(Page::terminate(self))
    }
}

type MountFn = for<'m, 'a> fn(&'m mut Mount<'a>) -> BoxFuture<'m, Result<Box<dyn LivePage>>>;

/// The type-erased entry points of a live page (used by soft navigation).
#[derive(Clone, Copy)]
pub struct LiveEntry {
    pub(crate) mount: MountFn,
}

impl std::fmt::Debug for LiveEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEntry").finish_non_exhaustive()
    }
}

impl LiveEntry {
    pub(crate) fn of<P: Page>() -> Self {
        LiveEntry {
            mount: mount_boxed::<P>,
        }
    }
}

fn mount_boxed<'m, 'a, P: Page>(
    mount: &'m mut Mount<'a>,
) -> BoxFuture<'m, Result<Box<dyn LivePage>>> {
    Box::pin(async move { Ok(Box::new(P::mount(mount).await?) as Box<dyn LivePage>) })
}

// ---------------------------------------------------------------------------------------------
// HTTP endpoints.

pub(crate) fn register(router: Router<()>, app: &App, table: &'static [Entry]) -> Router<()> {
    let on_stream = app.clone();
    let on_event = app.clone();
    let on_nav = app.clone();
    router
        .route(
            crate::nav::NAV_PATH,
            post(move |req: Request| crate::nav::navigate(on_nav.clone(), table, req)),
        )
        .route(
            STREAM_PATH,
            post(move |req: Request| stream(on_stream.clone(), req)),
        )
        .route(
            EVENT_PATH,
            post(move |req: Request| event(on_event.clone(), req)),
        )
}

/// The tokens a live page carries, as the signals the layout sets.
fn token_signals(app: &App, id: u128) -> serde_json::Value {
    let ttl = app.sessions().config().token_ttl;
    serde_json::json!({
        "_dstarToken": app.keys().sign(Purpose::Csrf, id, ttl),
        "_dstarStream": app.keys().sign(Purpose::Stream, id, Duration::from_secs(7 * 24 * 3600)),
    })
}

fn nav_token(app: &App, id: u128) -> String {
    app.keys()
        .sign(Purpose::Navigation, id, app.sessions().config().token_ttl)
}

/// The attributes of a live page's root: its token signals and the stream it opens.
fn root_attributes(app: &App, id: u128) -> String {
    let signals = token_signals(app, id).to_string();
    let stream = format!(
        "@post('{STREAM_PATH}', {{headers: {{'{TOKEN_HEADER}': $_dstarStream}}, openWhenHidden: true, retryMaxCount: 1000}})"
    );
    let mut attributes = String::from(" data-signals=\"");
    crate::sse::escape_html_into(&mut attributes, &signals);
    attributes.push_str("\" data-init=\"");
    crate::sse::escape_html_into(&mut attributes, &stream);
    attributes.push('"');
    attributes
}

pub(crate) async fn get<P: Page>(app: App, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    match start::<P>(&app, &parts).await {
        Ok(html) => HtmlResponse(html).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn start<P: Page>(app: &App, parts: &http::request::Parts) -> Result<String> {
    let registry = app.sessions();
    let mailbox = Arc::new(Mailbox::new(registry.config.mailbox));
    let id = registry.insert(mailbox.clone()).ok_or_else(|| {
        Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live sessions; try again later",
        )
    })?;
    let handle = SessionHandle {
        id,
        mailbox: mailbox.clone(),
    };
    let params = crate::stateless::route_params(&P::ROUTE, parts.uri.path());
    let mut mount = Mount::new(app, parts, &params, Some(handle.clone()));
    let page = match P::mount(&mut mount).await {
        Ok(page) => page,
        Err(err) => {
            registry.remove(id);
            return Err(err);
        }
    };
    let mut subscriptions = std::mem::take(&mut mount.subscriptions);
    // Kept for the session's life: without spare capacity (a first push reserves four).
    subscriptions.shrink_to_fit();
    let title = mount.title.take();
    let url = crate::stateless::path_and_query(parts);
    let view = View {
        app,
        route: &P::ROUTE,
        page: live_page_value(&url),
    };
    let body = match page.render(&view) {
        Ok(body) => body,
        Err(err) => {
            registry.remove(id);
            return Err(err);
        }
    };
    let html = document(
        app,
        &P::ROUTE,
        title.as_deref(),
        &body,
        &root_attributes(app, id),
        &crate::nav::client_script(&nav_token(app, id)),
    );
    if html.is_err() {
        registry.remove(id);
    }
    let html = html?;
    for topic in &subscriptions {
        app.pubsub().subscribe(topic, handle.clone());
    }
    let session = Session {
        id,
        app: app.clone(),
        page: Box::new(page),
        mailbox,
        stream: None,
        generation: 0,
        seq: 0,
        ring: VecDeque::new(),
        subscriptions,
        url,
        renew_at: Instant::now() + registry.config.token_ttl / 2,
    };
    registry.tasks.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(session.run());
    Ok(html)
}

fn live_page_value(url: &str) -> minijinja::Value {
    minijinja::context! { url => url, ..page_value(EVENT_PATH.into(), "", true) }
}

async fn stream(app: App, req: Request) -> Response {
    let version = req.version();
    let token = req
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let claims = match app.keys().verify(token, Purpose::Stream) {
        Ok(claims) => claims,
        Err(err) => {
            return (StatusCode::UNAUTHORIZED, format!("stream refused: {err}")).into_response();
        }
    };
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(handle) = app.sessions().handle(claims.session) else {
        return gone(version);
    };
    let queue = Arc::new(StreamQueue::new());
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    handle
        .mailbox
        .push_control(Command::Attach(Box::new(Attach {
            queue: queue.clone(),
            generation,
            last_event_id,
        })));
    if handle.mailbox.is_closed() {
        return gone(version);
    }
    let heartbeat = app.sessions().config().heartbeat;
    let mut interval = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let body = LiveBody {
        queue,
        mailbox: handle.mailbox.clone(),
        generation,
        heartbeat: interval,
        abort_after: None,
    };
    let mut response = crate::response::Sse::once(Bytes::new())
        .version(version)
        .into_response();
    *response.body_mut() = axum::body::Body::new(body);
    response
}

/// The answer to a stream for a session that no longer exists: reload the page.
fn gone(version: http::Version) -> Response {
    let mut out = Vec::new();
    ExecuteScript::new("window.location.reload()").write_to(&mut out);
    crate::response::Sse::once(out)
        .version(version)
        .into_response()
}

async fn event(app: App, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let version = parts.version;
    match send_event(&app, &parts, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => error_response(err, version),
    }
}

async fn send_event(app: &App, parts: &http::request::Parts, body: axum::body::Body) -> Result<()> {
    let claims = app
        .keys()
        .verify(header(parts, &TOKEN_NAME), Purpose::Csrf)
        .map_err(|err| {
            Error::forbidden(format!(
                "event refused: {err} (the `{TOKEN_HEADER}` header must carry the page's token)"
            ))
        })?;
    let name = header(parts, &EVENT_NAME);
    if name.is_empty() {
        return Err(Error::bad_request(format!(
            "event refused: no `{EVENT_HEADER}` header"
        )));
    }
    let raw = crate::signals::read_raw_parts(parts, body).await?;
    let raw = crate::stateless::merge_args(raw, parts)?;
    crate::signals::parse::<serde::de::IgnoredAny>(&raw)?;
    let handle = app
        .sessions()
        .handle(claims.session)
        .ok_or_else(|| Error::new(StatusCode::GONE, "the session has ended; reload the page"))?;
    let (reply, answer) = oneshot::channel();
    let command = Command::Event(Box::new(EventCommand {
        name: name.to_owned(),
        signals: raw,
        reply,
    }));
    if handle.mailbox.push(command).is_err() {
        return Err(Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the session is busy; try again",
        ));
    }
    match answer.await {
        Ok(result) => result,
        Err(_) => Err(Error::internal(
            "the session ended while handling the event",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The session task.

struct Session {
    id: u128,
    app: App,
    page: Box<dyn LivePage>,
    mailbox: Arc<Mailbox>,
    stream: Option<Arc<StreamQueue>>,
    generation: u64,
    seq: u64,
    /// Recent events for replay: id, the session's own bytes, and a shared body (empty for
    /// events the session encoded itself).
    ring: VecDeque<(u64, Bytes, Bytes)>,
    subscriptions: Vec<String>,
    url: String,
    renew_at: Instant,
}

/// Frees the slot and counts the task out however the task ends, and on a panic tells the
/// browser to reload. (On `Session` itself rather than a guard holding copies of its fields:
/// whatever the task keeps across an await is paid by every idle session.)
impl Drop for Session {
    fn drop(&mut self) {
        let pending = self.mailbox.close();
        for command in pending {
            if let Command::Event(event) = command {
                let _ = event.reply.send(Err(Error::new(
                    StatusCode::GONE,
                    "the session has ended; reload the page",
                )));
            }
        }
        for topic in &self.subscriptions {
            self.app.pubsub().unsubscribe(topic, self.id);
        }
        self.app.sessions().remove(self.id);
        if let Some(stream) = &self.stream {
            if std::thread::panicking() {
                let mut out = Vec::new();
                ExecuteScript::new("window.location.reload()").write_to(&mut out);
                stream.end(End::Close, Some(Bytes::from(out)));
            } else {
                stream.end(End::Close, None);
            }
        }
        self.app.sessions().tasks.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Waiting {
    /// No stream has connected yet.
    Connect,
    /// A stream is attached.
    Attached,
    /// The stream dropped.
    Reconnect,
}

impl Session {
    async fn run(mut self) {
        // Every local held across the loop's await is part of every idle session's task, so
        // there are few: the settings are read where they are needed, not copied.
        let mut waiting = Waiting::Connect;
        let mut deadline = Instant::now() + self.app.sessions().config().connect_deadline;
        let mailbox = self.mailbox.clone();
        loop {
            let command = tokio::select! {
                command = mailbox.recv() => command,
                () = tokio::time::sleep_until(match waiting {
                    Waiting::Attached => self.renew_at,
                    Waiting::Connect | Waiting::Reconnect => deadline.min(self.renew_at),
                }) => {
                    if !matches!(waiting, Waiting::Attached) && Instant::now() >= deadline {
                        break;
                    }
                    self.renew_tokens();
                    continue;
                }
            };
            match command {
                Command::Event(event) => {
                    let result = Box::pin(self.handle_event(&event.name, &event.signals)).await;
                    let _ = event.reply.send(result);
                }
                Command::Shared(events) => self.send_shared(&events),
                Command::Message(message) => {
                    if let Err(err) = Box::pin(self.handle_info(message)).await {
                        eprintln!(
                            "dstar: `info` of `{}` failed: {err}",
                            self.page.route().name
                        );
                    }
                }
                Command::Attach(attach) => {
                    self.attach(*attach);
                    waiting = Waiting::Attached;
                }
                Command::Detached(generation) => {
                    if generation == self.generation && self.stream.is_some() {
                        self.stream = None;
                        waiting = Waiting::Reconnect;
                        deadline = Instant::now() + self.app.sessions().config().reconnect_grace;
                    }
                }
                Command::Navigate(mut nav) => {
                    // Unboxed only inside the boxed future: a `Navigate` local would sit in
                    // every session's task for good.
                    let reply = std::mem::replace(&mut nav.reply, oneshot::channel().0);
                    let result = Box::pin(self.navigate(*nav)).await;
                    let _ = reply.send(result);
                }
                Command::Disconnect => {
                    if let Some(stream) = self.stream.take() {
                        stream.end(End::Abort, None);
                        waiting = Waiting::Reconnect;
                        deadline = Instant::now() + self.app.sessions().config().reconnect_grace;
                    }
                }
                Command::Shutdown => {
                    if let Some(stream) = self.stream.take() {
                        let mut out = Vec::new();
                        out.extend_from_slice(b"retry: 1000\n\n");
                        stream.end(End::Abort, Some(Bytes::from(out)));
                    }
                    break;
                }
            }
        }
        // Dropping `self` then frees the slot and closes the stream.
        self.page.terminate().await;
    }

    fn attach(&mut self, attach: Attach) {
        if let Some(old) = self.stream.take() {
            old.end(End::Close, None);
        }
        self.generation = attach.generation;
        let capacity = self.app.sessions().config().stream_queue;
        let last = attach.last_event_id.unwrap_or(0);
        if last < self.seq {
            let oldest = self.ring.front().map_or(u64::MAX, |(id, _, _)| *id);
            if oldest <= last + 1 {
                for (id, head, body) in &self.ring {
                    if *id > last {
                        attach
                            .queue
                            .push_all([head.clone(), body.clone()], usize::MAX);
                    }
                }
            } else if let Ok(bytes) = self.full_render() {
                attach.queue.push(bytes, capacity);
            }
        }
        self.stream = Some(attach.queue);
    }

    async fn handle_event(&mut self, name: &str, signals: &[u8]) -> Result<()> {
        if !self.page.route().events.contains(&name) {
            return Err(Event::new(name, b"").unknown());
        }
        let app = self.app.clone();
        let route = self.page.route();
        let mut cx = Ctx::new(&app, route, PageData::Value(live_page_value(&self.url)));
        cx.session = Some(self.handle());
        let result = self.page.event(&mut cx, Event::new(name, signals)).await;
        let result = match result {
            Err(err) if err.location().is_some() => {
                cx.execute_script(&crate::sse::redirect_script(err.location().unwrap_or("/")));
                Ok(())
            }
            other => other,
        };
        let rerender = result.is_ok() && cx.render != Render::Never;
        self.finish(cx, rerender);
        result
    }

    async fn handle_info(&mut self, message: Message) -> Result<()> {
        let app = self.app.clone();
        let route = self.page.route();
        let mut cx = Ctx::new(&app, route, PageData::Value(live_page_value(&self.url)));
        cx.session = Some(self.handle());
        let result = self.page.info(&mut cx, message).await;
        let rerender = result.is_ok() && cx.render != Render::Never;
        self.finish(cx, rerender);
        result
    }

    fn handle(&self) -> SessionHandle {
        SessionHandle {
            id: self.id,
            mailbox: self.mailbox.clone(),
        }
    }

    /// Sends what a handler queued, then the re-render.
    fn finish(&mut self, mut cx: Ctx<'_>, rerender: bool) {
        if let Some(query) = cx.url.take() {
            let path = self.url.split('?').next().unwrap_or("/").to_owned();
            self.url = format!("{path}{query}");
            cx.page = PageData::Value(live_page_value(&self.url));
        }
        if rerender {
            let view = cx.view();
            match self.page.render(&view) {
                Ok(body) => write_root_patch(&mut cx.out, &body),
                Err(err) => eprintln!(
                    "dstar: render of `{}` failed: {err}",
                    self.page.route().name
                ),
            }
        }
        let out = std::mem::take(&mut cx.out);
        drop(cx);
        self.send(&out);
    }

    /// Gives each event of `batch` the next id, keeps it for replay, and queues it.
    fn send(&mut self, batch: &[u8]) {
        if batch.is_empty() {
            return;
        }
        let stamped = self.stamp(batch);
        let capacity = self.app.sessions().config().stream_queue;
        if let Some(stream) = &self.stream
            && !stream.push(stamped, capacity)
        {
            // The client is too slow: what it missed is replaced by one full render.
            if let Ok(bytes) = self.full_render()
                && let Some(stream) = &self.stream
            {
                stream.push(bytes, usize::MAX);
            }
        }
    }

    /// Inserts `id: n` after each event's first line and records the events in the ring.
    fn stamp(&mut self, batch: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(batch.len() + 16);
        let mut ranges = Vec::new();
        for event in batch.split_inclusive_events() {
            let start = out.len();
            let first_line = event
                .iter()
                .position(|&b| b == b'\n')
                .map_or(event.len(), |i| i + 1);
            self.seq += 1;
            out.extend_from_slice(&event[..first_line]);
            out.extend_from_slice(b"id: ");
            crate::sse::push_u128(&mut out, u128::from(self.seq));
            out.push(b'\n');
            out.extend_from_slice(&event[first_line..]);
            ranges.push((self.seq, start..out.len()));
        }
        let bytes = Bytes::from(out);
        for (id, range) in ranges {
            self.remember(id, bytes.slice(range), Bytes::new());
        }
        bytes
    }

    fn remember(&mut self, id: u64, head: Bytes, body: Bytes) {
        self.ring.push_back((id, head, body));
        while self.ring.len() > self.app.sessions().config().replay_events {
            self.ring.pop_front();
        }
    }

    /// Queues events encoded once for many sessions: each gets this session's next id in a
    /// small head of its own (`event:` line and `id:` line); the rest is the shared bytes.
    fn send_shared(&mut self, shared: &Bytes) {
        let capacity = self.app.sessions().config().stream_queue;
        let mut pieces = Vec::with_capacity(2);
        let mut start = 0;
        for event in shared[..].split_inclusive_events() {
            let first_line = event
                .iter()
                .position(|&b| b == b'\n')
                .map_or(event.len(), |i| i + 1);
            self.seq += 1;
            let mut head = Vec::with_capacity(first_line + 24);
            head.extend_from_slice(&event[..first_line]);
            head.extend_from_slice(b"id: ");
            crate::sse::push_u128(&mut head, u128::from(self.seq));
            head.push(b'\n');
            let head = Bytes::from(head);
            let body = shared.slice(start + first_line..start + event.len());
            start += event.len();
            self.remember(self.seq, head.clone(), body.clone());
            pieces.push(head);
            pieces.push(body);
        }
        if let Some(stream) = &self.stream
            && !stream.push_all(pieces, capacity)
            && let Ok(bytes) = self.full_render()
            && let Some(stream) = &self.stream
        {
            stream.push(bytes, usize::MAX);
        }
    }

    /// The whole page body as one root patch (with the next id).
    fn full_render(&mut self) -> Result<Bytes> {
        let view = View {
            app: &self.app,
            route: self.page.route(),
            page: live_page_value(&self.url),
        };
        let body = self.page.render(&view)?;
        let mut out = Vec::new();
        write_root_patch(&mut out, &body);
        Ok(self.stamp(&out))
    }

    fn renew_tokens(&mut self) {
        let ttl = self.app.sessions().config().token_ttl;
        self.renew_at = Instant::now() + ttl / 2;
        let json = token_signals(&self.app, self.id).to_string();
        let mut out = Vec::new();
        PatchSignals::raw(&json).write_to(&mut out);
        let script = format!(
            "window.__dstar.nav = {}",
            crate::template::js_string(&nav_token(&self.app, self.id))
        );
        ExecuteScript::new(&script).write_to(&mut out);
        self.send(&out);
    }

    /// Mounts the target page (its authorization runs here), then swaps it in.
    async fn navigate(&mut self, nav: Navigate) -> Result<bool> {
        if nav.entry.group != self.page.route().group {
            return Ok(false);
        }
        let app = self.app.clone();
        let mut mount = Mount::new(&app, &nav.parts, &nav.params, Some(self.handle()));
        let page = match (nav.live.mount)(&mut mount).await {
            Ok(page) => page,
            Err(err) if err.location().is_some() => {
                let mut out = Vec::new();
                ExecuteScript::new(&crate::sse::redirect_script(err.location().unwrap_or("/")))
                    .write_to(&mut out);
                self.send(&out);
                return Ok(true);
            }
            Err(err) => return Err(err),
        };
        let mut subscriptions = std::mem::take(&mut mount.subscriptions);
        subscriptions.shrink_to_fit();
        let title = mount.title.take();
        drop(mount);

        self.page.terminate().await;
        for topic in &self.subscriptions {
            app.pubsub().unsubscribe(topic, self.id);
        }
        for topic in &subscriptions {
            app.pubsub().subscribe(topic, self.handle());
        }
        self.subscriptions = subscriptions;
        self.page = page;
        self.url = nav.url;

        let route = self.page.route();
        let title = title
            .as_deref()
            .or(route.title)
            .unwrap_or(route.name)
            .to_owned();
        let mut out = Vec::new();
        let json = token_signals(&app, self.id).to_string();
        PatchSignals::raw(&json).write_to(&mut out);
        let view = View {
            app: &app,
            route,
            page: live_page_value(&self.url),
        };
        let body = self.page.render(&view)?;
        write_root_patch(&mut out, &body);
        let script = crate::nav::after_navigation_script(
            &title,
            &self.url,
            nav.history,
            &nav_token(&app, self.id),
        );
        ExecuteScript::new(&script).write_to(&mut out);
        self.send(&out);
        Ok(true)
    }
}

/// Splitting a batch of our own encoded events: an event ends at the first empty line, and
/// our encoder never writes an empty line inside an event.
trait SplitEvents {
    fn split_inclusive_events(&self) -> EventChunks<'_>;
}

impl SplitEvents for [u8] {
    fn split_inclusive_events(&self) -> EventChunks<'_> {
        EventChunks { rest: self }
    }
}

struct EventChunks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for EventChunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self
            .rest
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(self.rest.len(), |i| i + 2);
        let (event, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(event)
    }
}
