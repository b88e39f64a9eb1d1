//! Pages: the [`Page`] trait `#[dstar::page]` implements, and the values a page's methods get.
//!
//! A page's life:
//!
//! 1. [`Page::mount`] builds the page state from the request ([`Mount`]: path parameters, query,
//!    headers, app state). It is also where authorization belongs: it runs again for every full
//!    load and every soft navigation, so a check there cannot be skipped.
//! 2. [`Page::render`] turns the state into the page body ([`View`]).
//! 3. [`Page::event`] runs an event handler with the event's signals ([`Event`]); the handler
//!    queues patches through [`Ctx`].
//! 4. Live pages also get [`Page::info`] for messages ([`Message`]) and [`Page::terminate`] when
//!    the session ends.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use minijinja::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::cookie::{Cookie, Cookies};
use crate::error::{Error, Result};
use crate::flash::Flash;
use crate::protocol::{EVENT_PATH, History, is_same_origin_path};
use crate::route::Route;
use crate::security::Nonce;
use crate::session::handle::SessionHandle;
use crate::sse::{ConsoleLevel, CustomEvent, ExecuteScript, Mode, PatchElements, PatchSignals};

/// A routable page. Implemented by `#[dstar::page]`; see its docs for the methods it expects.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a dstar page",
    label = "not a page",
    note = "add `#[dstar::page(\"/path\")]` to the `impl {Self}` block that has `mount` and `render`"
)]
pub trait Page: Sized + Send + 'static {
    /// Where and how the page is served.
    const ROUTE: Route;

    /// Builds the page state for a request.
    fn mount(mount: &mut Mount<'_>) -> impl Future<Output = Result<Self>> + Send;

    /// Renders the page body.
    fn render(&self, view: &View<'_>) -> Result<Html>;

    /// Runs the handler for `event`. Unknown names answer 404 through [`Event::unknown`].
    fn event(
        &mut self,
        cx: &mut Ctx<'_>,
        event: Event<'_>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Handles a message sent to a live page's session.
    fn info(
        &mut self,
        cx: &mut Ctx<'_>,
        message: Message,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (cx, message);
        async { Ok(()) }
    }

    /// Runs on a live page each time a stream attaches to its session: the tab's first
    /// connection, every reconnection (a dropped network, a tab shown again after a pause)
    /// and the stream of a session re-mounted in place. What it queues goes down that stream,
    /// after anything the stream replays; it re-renders only when asked (`cx.render()`).
    /// For work that needs a listening client: subscribing late, pushing a first update.
    fn connected(&mut self, cx: &mut Ctx<'_>) -> impl Future<Output = Result<()>> + Send {
        let _ = cx;
        async { Ok(()) }
    }

    /// Runs once when a live page's session ends (or the page is navigated away from).
    fn terminate(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Rendered HTML that is not escaped again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Html(pub String);

impl From<String> for Html {
    fn from(html: String) -> Self {
        Html(html)
    }
}

impl From<&str> for Html {
    fn from(html: &str) -> Self {
        Html(html.to_owned())
    }
}

/// What a page knows about the request that mounts it.
pub struct Mount<'a> {
    pub(crate) app: &'a App,
    pub(crate) parts: &'a http::request::Parts,
    path: &'a str,
    query: &'a str,
    pub(crate) params: &'a [(&'a str, String)],
    pub(crate) session: Option<SessionHandle>,
    pub(crate) subscriptions: Vec<String>,
    pub(crate) title: Option<String>,
    /// Initial signals set with [`Mount::signal`].
    pub(crate) signals: serde_json::Map<String, serde_json::Value>,
    /// `Set-Cookie` values for the page's answer.
    pub(crate) set_cookies: Vec<http::HeaderValue>,
    /// Tags of the live session (see [`Mount::tag`]).
    pub(crate) tags: Vec<String>,
    /// Presence the live session tracks: topic, key, metadata (see [`Mount::track`]).
    pub(crate) tracked: Vec<(String, String, serde_json::Value)>,
}

impl fmt::Debug for Mount<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mount")
            .field("path", &self.path)
            .field("query", &self.query)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl<'a> Mount<'a> {
    /// A mount for the request `parts` (whose URI is the page's), with the route's decoded
    /// path parameters.
    pub(crate) fn new(
        app: &'a App,
        parts: &'a http::request::Parts,
        params: &'a [(&'a str, String)],
        session: Option<SessionHandle>,
    ) -> Self {
        Mount {
            app,
            parts,
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            params,
            session,
            subscriptions: Vec::new(),
            title: None,
            signals: serde_json::Map::new(),
            set_cookies: Vec::new(),
            tags: Vec::new(),
            tracked: Vec::new(),
        }
    }

    /// Counts this tab present on `topic` as `key` (a user id, a name) with `meta` (what
    /// others may show of it), from its first stream connection until its session ends (see
    /// [`crate::presence`]), and subscribes the session to `topic`, where the
    /// [`PresenceDiff`](crate::presence::PresenceDiff)s arrive through `info`. Does nothing
    /// on a stateless page. Fails when `meta` is not JSON.
    pub fn track<M: Serialize>(
        &mut self,
        topic: impl Into<String>,
        key: impl Into<String>,
        meta: &M,
    ) -> Result<()> {
        if self.session.is_none() {
            return Ok(());
        }
        let meta = serde_json::to_value(meta)
            .map_err(|err| Error::internal(format!("presence metadata is not JSON: {err}")))?;
        let topic = topic.into();
        if !self.subscriptions.contains(&topic) {
            self.subscriptions.push(topic.clone());
        }
        self.tracked.push((topic, key.into(), meta));
        Ok(())
    }

    /// The request's cookies: plain, signed and private (see [`Cookies`]).
    pub fn cookies(&self) -> Cookies<'_> {
        Cookies::new(&self.parts.headers, self.app.keys())
    }

    /// Sets `cookie` with the page's answer: a full load, or the stream answer of a tab
    /// re-mounted in place. A soft navigation has no page answer: cookies set then are not
    /// sent (a warning is logged); set them in an event handler. Fails on a name that is not
    /// an HTTP token.
    pub fn set_cookie(&mut self, cookie: Cookie) -> Result<()> {
        self.set_cookies.push(self.app.cookie_header(&cookie)?);
        Ok(())
    }

    /// Tags a live page's session, for example with the signed-in user's id, so that
    /// [`Registry::end_tagged`](crate::session::handle::Registry::end_tagged) can end every tab of
    /// that user at logout. A tab re-mounted in place runs `mount` again and so is tagged
    /// again. Does nothing on a stateless page (there is no session).
    pub fn tag(&mut self, tag: impl Into<String>) {
        if self.session.is_some() {
            self.tags.push(tag.into());
        }
    }

    /// A path parameter (`{id}` in `/users/{id}`), percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A path parameter parsed as `T`; a missing or unparsable one answers 404.
    pub fn param_as<T: std::str::FromStr>(&self, name: &str) -> Result<T> {
        self.param(name)
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| Error::not_found(format!("no page at `{}`", self.path)))
    }

    /// The request path inside the app: under `Router::nest("/app", ..)`, `/items/3` for
    /// `/app/items/3`.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The raw query string (without `?`).
    pub fn query(&self) -> &str {
        self.query
    }

    /// One query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// The query string as a `serde` type; a mismatch answers 400 naming the problem.
    pub fn query_as<T: DeserializeOwned>(&self) -> Result<T> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect();
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|err| Error::bad_request(format!("invalid query string: {err}")))
    }

    /// The request's method, URI, headers and extensions (for the full-page load; for a soft
    /// navigation, those of the navigation request with the target's URI).
    pub fn parts(&self) -> &http::request::Parts {
        self.parts
    }

    /// A request header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    }

    /// App state registered with `App::builder().state(...)`.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&'a T> {
        self.app.state::<T>()
    }

    /// The app: its state, PubSub and settings. Pages may keep a clone (it is an `Arc`), for
    /// example to publish from `terminate`.
    pub fn app(&self) -> &'a App {
        self.app
    }

    /// Subscribes a live page's session to a PubSub topic; its messages reach [`Page::info`].
    /// On a stateless page this does nothing.
    pub fn subscribe(&mut self, topic: impl Into<String>) {
        self.subscriptions.push(topic.into());
    }

    /// The running session, on a live page (to hand to other code that sends it messages).
    pub fn session(&self) -> Option<&SessionHandle> {
        self.session.as_ref()
    }

    /// Gives the page an initial signal: written into the root element's `data-signals` (with
    /// a live page's own token signals), so the template need not declare it. After a soft
    /// navigation the new page's signals are patched in. A later call for the same name wins.
    ///
    /// ```ignore
    /// mount.signal("count", &3)?;   // the template can use `$count` at once
    /// ```
    ///
    /// # Errors
    ///
    /// When `value` cannot be JSON, or `name` is empty, has a `.`, or starts with `_dstar`
    /// (dstar's own signals).
    pub fn signal<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<()> {
        if name.is_empty() || name.contains('.') || name.starts_with("_dstar") {
            return Err(Error::internal(format!(
                "`Mount::signal` refused the name `{}`: give a plain signal name (no `.`, not starting with `_dstar`)",
                name.escape_debug()
            )));
        }
        let value = serde_json::to_value(value).map_err(|err| {
            Error::internal(format!("could not serialise signal `{name}`: {err}")).with_source(err)
        })?;
        self.signals.insert(name.to_owned(), value);
        Ok(())
    }

    /// Sets the document title for this page.
    pub fn set_title(&mut self, title: impl Into<String>) {
        self.title = Some(title.into());
    }
}

/// Renders a page's templates. Every template rendered through a view can use the page helpers
/// (`event(...)` and friends).
pub struct View<'a> {
    pub(crate) app: &'a App,
    pub(crate) route: &'static Route,
    pub(crate) page: Value,
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("page", &self.route.name)
            .finish_non_exhaustive()
    }
}

impl View<'_> {
    /// Renders the page's own template (`template = "..."` in `#[dstar::page]`) with `ctx`.
    pub fn render<S: Serialize>(&self, ctx: S) -> Result<Html> {
        let name = self.route.template.ok_or_else(|| {
            Error::internal(format!(
                "`{}` has no template: add `template = \"name.html\"` to `#[dstar::page]` or call `render_template`",
                self.route.name
            ))
        })?;
        self.render_template(name, ctx)
    }

    /// Renders template `name` with `ctx`.
    pub fn render_template<S: Serialize>(&self, name: &str, ctx: S) -> Result<Html> {
        Ok(Html(self.app.templates().render(name, self.context(ctx))?))
    }

    /// Renders one block of template `name`.
    pub fn render_block<S: Serialize>(&self, name: &str, block: &str, ctx: S) -> Result<Html> {
        Ok(Html(self.app.templates().render_block(
            name,
            block,
            self.context(ctx),
        )?))
    }

    /// Renders a template given as a string.
    pub fn render_str<S: Serialize>(&self, source: &str, ctx: S) -> Result<Html> {
        Ok(Html(
            self.app.templates().render_str(source, self.context(ctx))?,
        ))
    }

    fn context<S: Serialize>(&self, ctx: S) -> Value {
        minijinja::context! { dstar => self.page.clone(), ..Value::from_serialize(ctx) }
    }
}

/// An event sent by the browser: its name and its (untrusted) signals.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    name: &'a str,
    signals: &'a [u8],
}

impl<'a> Event<'a> {
    /// An event named `name` whose signals are the raw JSON `signals`.
    pub fn new(name: &'a str, signals: &'a [u8]) -> Self {
        Event { name, signals }
    }

    /// The event's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The event's signals parsed as `T`: malformed JSON answers 400, a field of the wrong type
    /// 422 naming the field.
    pub fn signals<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(crate::signals::parse(self.signals)?)
    }

    /// The 404 error for an event the page does not have.
    pub fn unknown(&self) -> Error {
        Error::not_found(format!("unknown event `{}`", self.name.escape_debug()))
    }
}

/// A message for a live page: anything `Send + Sync`, sent through PubSub or a session handle.
///
/// With a multi-node PubSub (`dstar-redis`), a message crosses to the other nodes when its
/// payload's type is registered with the backplane (which needs it to be `Serialize` and
/// `DeserializeOwned`); there it is decoded back into the same type, so `info` reads it with
/// [`get`](Self::get) as usual. Any other payload reaches this node's sessions only.
#[derive(Clone)]
pub struct Message {
    topic: Option<Arc<str>>,
    payload: Arc<Payload<dyn Any + Send + Sync>>,
}

/// A message's payload and the session that sent it, shared by every copy. Kept behind the
/// `Arc` so a message stays two pointers wide: it travels through every session's mailbox.
struct Payload<T: ?Sized> {
    sender: Option<u128>,
    value: T,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("sender", &self.sender().map(|id| format!("{id:032x}")))
            .finish_non_exhaustive()
    }
}

impl Message {
    /// A message carrying `payload`.
    pub fn new<T: Any + Send + Sync>(payload: T) -> Self {
        Message {
            topic: None,
            payload: Arc::new(Payload {
                sender: None,
                value: payload,
            }),
        }
    }

    /// A message carrying `payload`, sent by the live session `session`: PubSub does not
    /// deliver it back to that session (see [`Ctx::publish_others`]).
    pub fn from_session<T: Any + Send + Sync>(session: u128, payload: T) -> Self {
        Message {
            topic: None,
            payload: Arc::new(Payload {
                sender: Some(session),
                value: payload,
            }),
        }
    }

    /// The live session that sent it, which PubSub skips, if it was marked so.
    pub fn sender(&self) -> Option<u128> {
        self.payload.sender
    }

    pub(crate) fn on_topic(mut self, topic: Arc<str>) -> Self {
        self.topic = Some(topic);
        self
    }

    /// The PubSub topic it was published on, if any.
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }

    /// The payload, if it is a `T`.
    ///
    /// A message that came from another node ([`from_other_node`](Self::from_other_node)) is
    /// decoded here, on the first call: every later call, and every other session of this node
    /// that got the same message, reads the value decoded then.
    pub fn get<T: Any>(&self) -> Option<&T> {
        let value = &self.payload.value;
        if let Some(found) = value.downcast_ref() {
            return Some(found);
        }
        value
            .downcast_ref::<Undecoded>()?
            .value(self.topic())?
            .downcast_ref()
    }

    /// The type of the payload, for a multi-node PubSub choosing how to encode it. For a
    /// message that came from another node, the type of its still encoded form (such messages
    /// are delivered on the node that received them, never published again).
    pub fn payload_type_id(&self) -> TypeId {
        // Through the vtable: the type of the value the message was made with.
        self.payload.value.type_id()
    }

    /// A message published on another node, whose payload arrived as `json`: `decode` turns it
    /// back into the Rust value that node published, once, on the first [`get`](Self::get).
    /// A multi-node PubSub hands it to its in-process PubSub like any other message.
    pub fn from_other_node(sender: Option<u128>, json: Bytes, decode: DecodePayload) -> Self {
        Message {
            topic: None,
            payload: Arc::new(Payload {
                sender,
                value: Undecoded {
                    json,
                    decode,
                    value: OnceLock::new(),
                },
            }),
        }
    }
}

/// Turns the JSON of a message published on another node back into its payload (see
/// [`Message::from_other_node`]).
pub type DecodePayload = fn(&[u8]) -> serde_json::Result<Box<dyn Any + Send + Sync>>;

/// The payload of a message from another node until a session asks for it.
struct Undecoded {
    json: Bytes,
    decode: DecodePayload,
    value: OnceLock<Option<Box<dyn Any + Send + Sync>>>,
}

impl Undecoded {
    fn value(&self, topic: Option<&str>) -> Option<&(dyn Any + Send + Sync)> {
        self.value
            .get_or_init(|| match (self.decode)(&self.json) {
                Ok(value) => Some(value),
                Err(err) => {
                    // Once per message, not per session: the failure is kept too.
                    undecodable(topic.unwrap_or(""), &err);
                    None
                }
            })
            .as_deref()
    }
}

/// Logs a message from another node that does not decode: a `WARN` at most once a minute,
/// since when nodes disagree on a type every message of it fails alike.
fn undecodable(topic: &str, err: &serde_json::Error) {
    static LAST_WARNING: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let mut last = LAST_WARNING.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(60)) {
        tracing::debug!(topic, %err, "a message from another node does not decode as its type");
        return;
    }
    *last = Some(std::time::Instant::now());
    tracing::warn!(
        topic,
        %err,
        "a message from another node does not decode as its type: `info` gets nothing from it \
         (are the nodes running different versions? logged at most once a minute)"
    );
}

/// What a handler does to the page: queue patches, signals and scripts, and ask for a
/// re-render. Everything queued is sent in order when the handler returns.
pub struct Ctx<'a> {
    pub(crate) app: &'a App,
    pub(crate) out: Vec<u8>,
    pub(crate) render: Render,
    pub(crate) session: Option<SessionHandle>,
    pub(crate) page: PageData<'a>,
    pub(crate) route: &'static Route,
    pub(crate) url: Option<String>,
    /// The path the app is mounted under (see `protocol::mount_prefix`).
    pub(crate) prefix: &'a str,
    pub(crate) ending: Option<SessionEnd>,
    /// The headers of the request being answered (an event's), when there is one.
    pub(crate) request: Option<&'a http::HeaderMap>,
    /// `Set-Cookie` values for the event's answer.
    pub(crate) set_cookies: Vec<http::HeaderValue>,
    /// A stateless page's script nonce (a live page's is derived from its session).
    pub(crate) nonce: Option<Nonce>,
    /// Flash messages the handler left (see [`Ctx::flash`]).
    pub(crate) flashes: Vec<Flash>,
    /// Whether the handler sent the browser elsewhere.
    pub(crate) redirected: bool,
}

/// How a live session that a handler ends on purpose leaves its tab (see
/// [`Ctx::end_session`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The tab loads this same-origin URL (after a logout, the login page).
    Navigate(String),
    /// The tab keeps what it shows but is no longer live: its stream ends and its events are
    /// refused (`410`).
    Stop,
}

/// What templates learn about the page (`event()` needs its URL and token). A stateless event
/// only builds the template value if the handler renders, so a handler that just patches
/// signals pays nothing for it.
#[derive(Debug, Clone)]
pub(crate) enum PageData<'a> {
    Value(Value),
    Stateless {
        url: &'a str,
        token: &'a str,
        prefix: &'a str,
    },
}

impl PageData<'_> {
    fn value(&self) -> Value {
        match self {
            PageData::Value(value) => value.clone(),
            PageData::Stateless { url, token, prefix } => {
                page_value(Cow::Borrowed(url), token, false, prefix)
            }
        }
    }
}

/// Whether the root is re-rendered after a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Render {
    Default,
    Always,
    Never,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("queued_bytes", &self.out.len())
            .finish_non_exhaustive()
    }
}

/// Signals as JSON. A failure is the page's bug, said as such: a bare `?` would make it a 500
/// with only serde's message.
fn serialise_signals<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| {
        Error::internal(format!("could not serialise signals: {err}")).with_source(err)
    })
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        app: &'a App,
        route: &'static Route,
        prefix: &'a str,
        page: PageData<'a>,
    ) -> Self {
        Ctx {
            app,
            out: Vec::new(),
            render: Render::Default,
            session: None,
            page,
            route,
            url: None,
            prefix,
            ending: None,
            request: None,
            set_cookies: Vec::new(),
            nonce: None,
            flashes: Vec::new(),
            redirected: false,
        }
    }

    /// Leaves a flash message ("Saved", "Signed out") of `kind` (`info`, `error`, ...: the
    /// `data-kind` it shows with). When the handler sends the browser elsewhere (a redirect,
    /// a session ended with `SessionEnd::Navigate`), the next page shows it, once; otherwise it
    /// appears now in the layout's flash region. See [`crate::flash`].
    pub fn flash(&mut self, kind: impl Into<String>, message: impl Into<String>) {
        self.flashes.push(Flash {
            kind: kind.into(),
            message: message.into(),
        });
    }

    /// The cookies of the request being answered: an event's (on a live page, the event
    /// POST's, so they are current); none in `info`, which answers no request.
    pub fn cookies(&self) -> Cookies<'_> {
        static NONE: std::sync::OnceLock<http::HeaderMap> = std::sync::OnceLock::new();
        let headers = self
            .request
            .unwrap_or_else(|| NONE.get_or_init(http::HeaderMap::new));
        Cookies::new(headers, self.app.keys())
    }

    /// A header of the request being answered (an event's), as text; none in `info`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request?.get(name)?.to_str().ok()
    }

    /// Sets `cookie` with the event's answer (a stateless page's one-shot stream, a live
    /// page's `204`; the browser applies both). In `info` there is no answer: it fails. A
    /// click the server answers again from its log of recent clicks (a retry) sends no
    /// cookies. Fails on a name that is not an HTTP token.
    pub fn set_cookie(&mut self, cookie: Cookie) -> Result<()> {
        if self.request.is_none() {
            return Err(Error::internal(format!(
                "cannot set cookie `{}` here: `info` answers no request (set it in an event \
                 handler or in `mount`)",
                cookie.name()
            )));
        }
        self.set_cookies.push(self.app.cookie_header(&cookie)?);
        Ok(())
    }

    /// App state registered with `App::builder().state(...)`.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&'a T> {
        self.app.state::<T>()
    }

    /// The running session, on a live page.
    pub fn session(&self) -> Option<&SessionHandle> {
        self.session.as_ref()
    }

    /// The app: its state, PubSub and settings.
    pub fn app(&self) -> &'a App {
        self.app
    }

    /// The signals the last event of this live session carried (merged with its arguments),
    /// parsed as `T`, when the page keeps them (`#[dstar::page("/x", live, keep_signals)]`):
    /// for `info` and `connected`, which get no signals of their own. `None` on other pages
    /// and before the first event.
    ///
    /// # Errors
    ///
    /// When the kept signals do not fit `T` (422 naming the field, as for a handler).
    pub fn last_signals<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let Some(session) = &self.session else {
            return Ok(None);
        };
        match self.app.sessions().kept_signals(session.id()) {
            Some(raw) => Ok(Some(crate::signals::parse(&raw)?)),
            None => Ok(None),
        }
    }

    /// Publishes `payload` on a PubSub topic: every subscribed live session gets it in `info`,
    /// this one included.
    pub fn publish<T: Any + Send + Sync>(&self, topic: &str, payload: T) {
        self.app.pubsub().publish(topic, Message::new(payload));
    }

    /// Publishes `payload` to every subscribed live session except this one. For a handler
    /// that has changed shared data and shown it on its own page already: its page re-renders
    /// after the handler anyway, and receiving its own message would render it a second time.
    /// On a stateless page, the same as [`publish`](Self::publish).
    pub fn publish_others<T: Any + Send + Sync>(&self, topic: &str, payload: T) {
        let message = match &self.session {
            Some(session) => Message::from_session(session.id(), payload),
            None => Message::new(payload),
        };
        self.app.pubsub().publish(topic, message);
    }

    /// Sends events encoded once to every live session subscribed to `topic`, without their
    /// `info` or a render (see [`PubSub::broadcast`](crate::pubsub::PubSub::broadcast)):
    /// `cx.broadcast("chat", PatchElements::new(&line).selector("#log").mode(Mode::Append).to_bytes())`.
    pub fn broadcast(&self, topic: &str, events: bytes::Bytes) -> usize {
        self.app.pubsub().broadcast(topic, events)
    }

    /// Re-renders the whole page body into the root after the handler.
    ///
    /// Live pages re-render by default; stateless pages keep their state in signals and
    /// re-render only when asked.
    pub fn render(&mut self) {
        self.render = Render::Always;
    }

    /// Ends this live session on purpose once the handler returns (a logout, a finished
    /// flow): what the handler queued is sent, then the tab gets `then` as its stream's last
    /// instruction, `terminate` runs, and the session is never re-mounted in place. For a
    /// while (see the session module's docs) a later stream of the tab gets the same
    /// instruction and its events get `410`. On a stateless page there is no session: only a
    /// navigation is sent.
    ///
    /// # Errors
    ///
    /// When `then` navigates to something other than a same-origin path.
    pub fn end_session(&mut self, then: SessionEnd) -> Result<()> {
        if let SessionEnd::Navigate(url) = &then {
            if !crate::protocol::is_same_origin_path(url) {
                return Err(Error::internal(format!(
                    "`end_session` can only navigate to a same-origin path like `/login`, not `{}`",
                    url.escape_debug()
                )));
            }
            if self.session.is_none() {
                self.execute_script(&crate::sse::redirect_script(url));
            }
        }
        self.ending = Some(then);
        Ok(())
    }

    /// Does not re-render after this handler, even on a live page.
    pub fn skip_render(&mut self) {
        self.render = Render::Never;
    }

    /// Sets signals: `value` must serialise to a JSON object (a merge patch: `null` removes).
    pub fn patch_signals<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let json = serialise_signals(value)?;
        if !json.starts_with('{') {
            return Err(Error::internal("signals must serialise to a JSON object"));
        }
        PatchSignals::raw(&json).write_to(&mut self.out);
        Ok(())
    }

    /// Sets signals only where the client has none of that name.
    pub fn patch_signals_if_missing<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let json = serialise_signals(value)?;
        PatchSignals::raw(&json)
            .only_if_missing(true)
            .write_to(&mut self.out);
        Ok(())
    }

    /// Removes signals by dotted path (`"user.name"`).
    pub fn remove_signals<'p>(&mut self, paths: impl IntoIterator<Item = &'p str>) {
        let json = crate::sse::remove_signals_json(paths);
        PatchSignals::raw(&json).write_to(&mut self.out);
    }

    /// Morphs `html` into the page (elements matched by id).
    pub fn patch_elements(&mut self, html: impl AsRef<str>) {
        PatchElements::new(html.as_ref()).write_to(&mut self.out);
    }

    /// Queues any patch-elements event (selector, mode, view transition, namespace).
    pub fn patch(&mut self, patch: PatchElements<'_>) {
        patch.write_to(&mut self.out);
    }

    /// Patches `html` into the elements matching `selector` with `mode`.
    pub fn patch_into(&mut self, selector: &str, mode: Mode, html: impl AsRef<str>) {
        PatchElements::new(html.as_ref())
            .selector(selector)
            .mode(mode)
            .write_to(&mut self.out);
    }

    /// Renders block `block` of template `template` (with the page helpers) and morphs it in.
    pub fn patch_block<S: Serialize>(&mut self, template: &str, block: &str, ctx: S) -> Result<()> {
        let html = self.view().render_block(template, block, ctx)?;
        self.patch_elements(&html.0);
        Ok(())
    }

    /// Removes the elements matching `selector`.
    pub fn remove(&mut self, selector: &str) {
        PatchElements::remove(selector).write_to(&mut self.out);
    }

    /// Runs JavaScript in the browser.
    pub fn execute_script(&mut self, script: &str) {
        self.execute(ExecuteScript::new(script));
    }

    /// Runs a script built with every option of the wire core: extra attributes
    /// (`type="module"`, ...), keeping the element (`auto_remove(false)`), the SSE event's id
    /// and retry. On a live page the page's script nonce is added, as for
    /// [`execute_script`](Self::execute_script), and an `id` is ignored: the session numbers
    /// every event on its stream itself, which `Last-Event-ID` replay relies on.
    pub fn execute(&mut self, script: ExecuteScript<'_>) {
        let script = if self.session.is_some() {
            script.without_id()
        } else {
            script
        };
        // A page's nonce is derived when a script needs it, not on every event: a live one
        // from its session, a stateless one from its token (see `security`).
        let nonce = self
            .session
            .as_ref()
            .map(|session| Nonce::for_session(self.app.keys(), session.id()))
            .or(self.nonce)
            .map(|nonce| nonce.to_string());
        script.write_with(nonce.as_deref(), &mut self.out);
    }

    /// Queues an event of your own type (see [`CustomEvent`]), for a script of yours that
    /// listens beside Datastar: `cx.send_event(CustomEvent::new("progress", "42"))`. On a live
    /// page an `id` is ignored, as for [`execute`](Self::execute): the session numbers the
    /// events of its stream.
    pub fn send_event(&mut self, event: CustomEvent<'_>) {
        let event = if self.session.is_some() {
            event.without_id()
        } else {
            event
        };
        event.write_to(&mut self.out);
    }

    /// Logs `message` to the browser console.
    pub fn console_log(&mut self, message: &str) {
        self.execute_script(&crate::sse::console_script(ConsoleLevel::Log, message));
    }

    /// Logs `value` (any `Serialize` value, shown as the object it serialises to) to the
    /// browser console at `level`: `cx.console(ConsoleLevel::Warn, &json!({"left": 3}))`.
    /// Fails when `value` cannot be JSON.
    pub fn console<T: serde::Serialize + ?Sized>(
        &mut self,
        level: ConsoleLevel,
        value: &T,
    ) -> Result<()> {
        let script = crate::sse::console_value_script(level, value)
            .map_err(|err| Error::internal(format!("`console` value is not JSON: {err}")))?;
        self.execute_script(&script);
        Ok(())
    }

    /// Sends the browser to `url`, which must be a same-origin path (`/login`). Absolute,
    /// protocol-relative (`//host`) and `javascript:` targets are refused with an error.
    ///
    /// `url` is a path of the app: when the router is mounted under a prefix (`/app`), the
    /// browser goes to `/app/login`.
    pub fn redirect(&mut self, url: &str) -> Result<()> {
        if !is_same_origin_path(url) {
            return Err(Error::internal(format!(
                "refused to redirect to `{url}`: not a same-origin path"
            )));
        }
        self.redirect_unchecked(url);
        Ok(())
    }

    /// Queues the redirect to app path `url` (checked by the caller, or by `Error::redirect`).
    pub(crate) fn redirect_unchecked(&mut self, url: &str) {
        self.redirected = true;
        let url = crate::protocol::under_prefix(self.prefix, url);
        self.execute_script(&crate::sse::redirect_script(&url));
    }

    /// A view for rendering templates with the page helpers.
    pub fn view(&self) -> View<'a> {
        View {
            app: self.app,
            route: self.route,
            page: self.page.value(),
        }
    }

    /// Changes the browser's URL query (`?page=2`) without remounting, keeping a history entry
    /// so Back returns to the previous query (live pages).
    pub fn push_query(&mut self, query: &str) {
        self.url_query(query, History::Push);
    }

    /// Like [`push_query`](Self::push_query) but replaces the current history entry.
    pub fn replace_query(&mut self, query: &str) {
        self.url_query(query, History::Replace);
    }

    fn url_query(&mut self, query: &str, history: History) {
        let query = query.trim_start_matches('?');
        let suffix = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let script = crate::protocol::query_script(&suffix, history);
        self.url = Some(suffix);
        self.execute_script(&script);
    }

    /// The encoded events queued so far.
    pub fn queued(&self) -> &[u8] {
        &self.out
    }
}

/// A page's state, its data for templates, in one object (`Cow` to borrow where possible).
/// `prefix` is the path the app is mounted under: the helpers put app paths under it. A
/// stateless page's `url` is where its events go (its own URL); a live page's is set below.
pub(crate) fn page_value(event_url: Cow<'_, str>, token: &str, live: bool, prefix: &str) -> Value {
    minijinja::context! {
        url => event_url.as_ref(),
        event_url => event_url.as_ref(),
        token => token,
        live => live,
        prefix => prefix,
    }
}

/// The template value of a live page at `url` (as the browser sees it, under `prefix`): its
/// events go to the session's endpoint, with the token signal.
pub(crate) fn live_page_value(url: &str, prefix: &str) -> Value {
    let event_url = if prefix.is_empty() {
        Cow::Borrowed(EVENT_PATH)
    } else {
        Cow::Owned(format!("{prefix}{EVENT_PATH}"))
    };
    minijinja::context! { url => url, ..page_value(event_url, "", true, prefix) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_that_cannot_be_serialised_say_so() {
        static ROUTE: Route = Route::new("Test", "/", file!(), line!());
        let app = App::builder()
            .secret_key(b"page tests (a test key of 32+ bytes)")
            .build()
            .unwrap();
        let mut cx = Ctx::new(
            &app,
            &ROUTE,
            "",
            PageData::Stateless {
                url: "/",
                token: "",
                prefix: "",
            },
        );
        // JSON object keys must be strings.
        let signals = std::collections::BTreeMap::from([((1, 2), 3)]);
        for err in [
            cx.patch_signals(&signals).unwrap_err(),
            cx.patch_signals_if_missing(&signals).unwrap_err(),
        ] {
            assert_eq!(err.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
            assert!(
                err.message()
                    .starts_with("could not serialise signals: key must be a string"),
                "{}",
                err.message()
            );
            assert!(err.source().unwrap().is::<serde_json::Error>());
        }
        assert!(cx.queued().is_empty());
    }

    #[test]
    fn a_message_knows_its_payload_type() {
        assert_eq!(Message::new(1u8).payload_type_id(), TypeId::of::<u8>());
        let line = Message::from_session(7, String::from("hi"));
        assert_eq!(line.payload_type_id(), TypeId::of::<String>());
        assert_eq!(line.get::<String>().map(String::as_str), Some("hi"));
        assert_eq!(line.get::<u8>(), None);
    }

    static DECODED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn decode_u64(json: &[u8]) -> serde_json::Result<Box<dyn Any + Send + Sync>> {
        DECODED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Box::new(serde_json::from_slice::<u64>(json)?))
    }

    #[test]
    fn a_message_from_another_node_is_decoded_once_on_first_use() {
        let message = Message::from_other_node(Some(9), Bytes::from_static(b"42"), decode_u64)
            .on_topic(Arc::from("room"));
        let copy = message.clone();
        assert_eq!(DECODED.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(message.get::<u64>(), Some(&42));
        assert_eq!(copy.get::<u64>(), Some(&42));
        assert_eq!(
            copy.get::<String>(),
            None,
            "another type is still not there"
        );
        assert_eq!(DECODED.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!((copy.sender(), copy.topic()), (Some(9), Some("room")));

        // JSON that is not the type: nothing, every time, and no panic.
        let bad = Message::from_other_node(None, Bytes::from_static(b"\"x\""), decode_u64);
        assert_eq!(bad.get::<u64>(), None);
        assert_eq!(bad.get::<u64>(), None);
    }
}
