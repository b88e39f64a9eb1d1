//! Testing pages without a browser or a socket: an in-process client that speaks dstar's wire
//! protocol to your real `axum::Router`, like Phoenix's `LiveViewTest`.
//!
//! [`TestClient::get`] loads a page the way a browser tab would and returns a [`TestPage`]: a
//! model of the document (its `<body>` HTML after every patch), the client's signals, the URL
//! and the title. Actions send what the Datastar client would send:
//!
//! - [`click`](TestPage::click), [`event`](TestPage::event) and
//!   [`event_with`](TestPage::event_with) send an event with the page's signals;
//!   [`click_on`](TestPage::click_on) clicks an element and does what its `data-on:click`
//!   says (an `event(...)`, a soft-navigation `link(...)`/`navigate(...)`, or a plain link);
//! - [`navigate`](TestPage::navigate) and [`back`](TestPage::back) navigate like `link()` and the
//!   Back button (soft on live pages, a full load otherwise);
//! - [`next_update`](TestPage::next_update) and [`settle`](TestPage::settle) take in what
//!   arrives on a live page's stream without an action of its own (PubSub, other tabs).
//!
//! Every [`TestClient::get`] is a new tab of the same browser (they share cookies), so
//! multi-user pages are tested with two pages from one client.
//!
//! ```
//! use dstar_runtime::app::App;
//! use dstar_runtime::page::{Ctx, Event, Html, Mount, Page, Route, View};
//! use dstar_runtime::router::Pages;
//! use dstar_runtime::testing::TestClient;
//!
//! struct Counter;
//!
//! impl Page for Counter {
//!     const ROUTE: Route =
//!         Route::new("Counter", "/", file!(), line!()).title("Counter").events(&["increment"]);
//!
//!     async fn mount(_mount: &mut Mount<'_>) -> dstar_runtime::error::Result<Self> {
//!         Ok(Counter)
//!     }
//!
//!     fn render(&self, view: &View<'_>) -> dstar_runtime::error::Result<Html> {
//!         view.render_str(
//!             r#"<p id="count" data-signals:count="0" data-text="$count">0</p>
//!                <button id="plus" data-on:click="{{ event('increment') }}">+1</button>"#,
//!             (),
//!         )
//!     }
//!
//!     async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar_runtime::error::Result<()> {
//!         #[derive(serde::Deserialize)]
//!         struct Count {
//!             count: i64,
//!         }
//!         let Count { count } = event.signals()?;
//!         cx.patch_signals(&serde_json::json!({ "count": count + 1 }))?;
//!         cx.patch_elements(format!(r#"<p id="count">{}</p>"#, count + 1));
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let app = App::builder().secret_key(b"doc test").build().unwrap();
//! let client = TestClient::new(Pages::new().page::<Counter>().into_router(app));
//!
//! let mut page = client.get("/").await.unwrap();
//! assert_eq!(page.title(), "Counter");
//! page.assert_signal("count", 0);
//!
//! page.click("increment").await.unwrap();
//! page.assert_signal("count", 1);
//! page.assert_text("#count", "1");
//!
//! page.click_on("#plus").await.unwrap(); // finds `increment` in the button's `data-on:click`
//! page.assert_text("#count", "2");
//! # });
//! ```
//!
//! # When an action returns
//!
//! On a stateless page, an action returns once the one-shot SSE answer has been applied.
//!
//! On a live page, patches come down the stream, not in the answer. The session task queues an
//! event's patches on the stream *before* it answers `204`, and it works through its mailbox in
//! order. So after the `204` the client sends the session a no-op (an event no page has,
//! answered `404`), and when that returns, applies every stream event that has arrived. The
//! rule, with no sleeps and no guessing:
//!
//! > When an action on a live page returns, the page shows everything the action caused in its
//! > own session, and everything any other code had sent the session (PubSub messages, session
//! > handles) before the action returned.
//!
//! [`settle`](TestPage::settle) applies the same rule without an action: after another tab
//! published something, `other_tab.settle().await` is enough to see its effect.
//! [`next_update`](TestPage::next_update) instead waits (up to the client's timeout, 5 s by
//! default) until at least one new stream event arrives.
//!
//! # The model
//!
//! - Signals start from the `data-signals` attributes of the loaded document (`data-signals=
//!   "{...}"` and `data-signals:name="..."`, with values that are literals: JSON or a JavaScript
//!   object literal; expressions cannot be evaluated and are listed in assertion failures).
//!   `datastar-patch-signals` events are applied as JSON merge patches. Actions send every
//!   signal whose name does not start with `_`, like Datastar.
//! - Element patches are applied to the document text: without a selector, elements are
//!   matched by id; with one, every match is patched. Morphing is modelled as replacement.
//!   Selectors: `#id`, `tag`, `.class`, `[attr]`, `[attr="v"]`, their combinations, descendant
//!   and child combinators and lists. A patch whose target is missing is an error
//!   ([`TestError::NoTarget`]): a browser only logs it, which is easy to miss.
//!   Elements that arrive with `data-signals` attributes that were not in the document before
//!   set their signals, as Datastar does for new elements.
//! - Scripts are not run. The client recognises what dstar writes: redirects
//!   (`window.location.assign`), reloads, `document.title`, `history.pushState`/`replaceState`
//!   and the navigation token. [`TestPage::scripts`] lists every script received.
//! - Redirects are followed: `303` answers to a page load, redirect scripts, and `{"load": url}`
//!   answers to a soft navigation.

mod html;
mod script;
mod signals;
mod wire;

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body::Body as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tower_service::Service;

use self::html::{PatchError, Selector, Tree};
use self::script::Effect;
use self::signals::Declaration;
use self::wire::{Datastar, SseEvent, SseParser};
use crate::nav::{HISTORY_HEADER, NAV_PATH, URL_HEADER};
use crate::session::{EVENT_PATH, STREAM_PATH};
use crate::sse::Mode;
use crate::stateless::{ARGS_HEADER, EVENT_HEADER, TOKEN_HEADER};

/// How long the client waits for an answer or a stream event unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The event the client sends a live session to learn that it has worked through everything
/// queued before it. No page has it: `#[dstar::page]` refuses `/` in event names. (Should the
/// runtime ever refuse it before it reaches the session, syncing fails with that status rather
/// than silently skipping the wait.)
const SYNC_EVENT: &str = "dstar/test-sync";

/// How many loads one action may cause before the client gives up.
const MAX_LOADS: usize = 10;

/// How much of a document an assertion failure shows.
const SHOW_HTML: usize = 4000;

// ---------------------------------------------------------------------------------------------
// Errors.

/// What went wrong driving a page.
#[non_exhaustive]
pub enum TestError {
    /// The server answered with a status the action did not expect.
    Status {
        /// The request, as `POST /__dstar/event (event `add`)`.
        request: String,
        /// The status it got.
        status: StatusCode,
        /// The answer's body, as text.
        body: String,
    },
    /// Nothing arrived in time.
    Timeout {
        /// What the client was waiting for.
        waiting_for: String,
        /// How long it waited.
        after: Duration,
    },
    /// A selector the client does not understand.
    Selector {
        /// The selector.
        selector: String,
        /// Why it is not understood.
        reason: String,
    },
    /// An element patch found nothing to patch.
    NoTarget {
        /// `id `x`` or `selector `#x``.
        target: String,
        /// The patch mode.
        mode: &'static str,
        /// The start of the patch's elements.
        elements: String,
    },
    /// A live page's stream ended (the session is gone or another stream replaced it).
    StreamClosed {
        /// The page's URL.
        url: String,
    },
    /// The action needs a live page.
    NotLive {
        /// The action.
        action: &'static str,
        /// The page's URL.
        url: String,
    },
    /// Loads led to more loads, more than ten times.
    TooManyRedirects {
        /// The URLs loaded, in order.
        chain: Vec<String>,
    },
    /// The page or the server did something the client cannot follow: no token to send an
    /// event with, an element without the action asked for, a malformed event.
    Protocol {
        /// What happened.
        message: String,
    },
}

impl TestError {
    /// The status of a [`TestError::Status`] error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            TestError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn protocol(message: impl Into<String>) -> Self {
        TestError::Protocol {
            message: message.into(),
        }
    }

    fn from_patch(err: PatchError, mode: Mode, elements: &str) -> Self {
        match err {
            PatchError::Selector { selector, reason } => TestError::Selector { selector, reason },
            PatchError::NoTarget { target } => TestError::NoTarget {
                target,
                mode: mode.as_str(),
                elements: html::snippet(elements),
            },
            PatchError::NoId { element } => TestError::protocol(format!(
                "a `{}` patch without a selector has an element without an id, so there is \
                 nothing to match it with: {element}",
                mode.as_str()
            )),
        }
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestError::Status {
                request,
                status,
                body,
            } => {
                write!(f, "{request} answered {status}")?;
                if !body.is_empty() {
                    write!(f, ": {}", html::snippet(body))?;
                }
                Ok(())
            }
            TestError::Timeout { waiting_for, after } => {
                write!(f, "timed out after {after:?} waiting for {waiting_for}")
            }
            TestError::Selector { selector, reason } => write!(
                f,
                "selector `{selector}` is not supported by the test client: {reason} \
                 (supported: {})",
                html::SUPPORTED_SELECTORS
            ),
            TestError::NoTarget {
                target,
                mode,
                elements,
            } => write!(
                f,
                "a `{mode}` element patch found no element with {target} in the page \
                 (patch elements: {elements:?})"
            ),
            TestError::StreamClosed { url } => write!(
                f,
                "the stream of the live page {url} ended (its session is gone, or another \
                 stream replaced it)"
            ),
            TestError::NotLive { action, url } => {
                write!(f, "`{action}` needs a live page, and {url} is stateless")
            }
            TestError::TooManyRedirects { chain } => {
                write!(f, "too many redirects: {}", chain.join(" -> "))
            }
            TestError::Protocol { message } => f.write_str(message),
        }
    }
}

impl fmt::Debug for TestError {
    /// The same as `Display`, so `.unwrap()` failures read well.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TestError {}

// ---------------------------------------------------------------------------------------------
// The client.

/// An in-process browser for an `axum::Router`: every request is a direct call of the router
/// (no socket). Cheap to clone; clones share cookies.
#[derive(Clone)]
pub struct TestClient {
    router: Router,
    headers: HeaderMap,
    timeout: Duration,
    cookies: Arc<Mutex<Vec<(String, String)>>>,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TestClient {
    /// A client for `router` (for example `dstar::router![...].into_router(app)`, with any
    /// layers and state your app adds).
    pub fn new(router: Router) -> Self {
        TestClient {
            router,
            headers: HeaderMap::new(),
            timeout: DEFAULT_TIMEOUT,
            cookies: Arc::default(),
        }
    }

    /// Sends `name: value` with every request (for example an auth header).
    ///
    /// # Panics
    ///
    /// When `name` or `value` is not a valid header name or value.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name)
            .unwrap_or_else(|err| panic!("`{name}` is not a header name: {err}"));
        let value = HeaderValue::try_from(value)
            .unwrap_or_else(|err| panic!("`{value}` is not a header value: {err}"));
        self.headers.insert(name, value);
        self
    }

    /// How long to wait for an answer or a stream event (default 5 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Loads `url` (a path with an optional query, like `/items?page=2`) in a new tab.
    ///
    /// A live page also opens its stream, like the browser does, and [settles](TestPage::settle).
    pub async fn get(&self, url: &str) -> Result<TestPage, TestError> {
        let mut page = TestPage::blank(self.clone());
        page.follow(Some((url.to_owned(), HistoryChange::Push)))
            .await?;
        Ok(page)
    }

    /// The value of cookie `name`, as the server last set it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar()
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }

    /// Sends any request through the router, with the client's headers and cookies, and
    /// returns the response as is (for endpoints that are not pages).
    pub async fn send(&self, request: Request<Body>) -> Result<Response, TestError> {
        let what = format!("{} {}", request.method(), request.uri());
        self.call(request, &what).await
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        self.cookies.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn call(&self, mut request: Request<Body>, what: &str) -> Result<Response, TestError> {
        for (name, value) in &self.headers {
            if !request.headers().contains_key(name) {
                request.headers_mut().insert(name, value.clone());
            }
        }
        let cookies = self
            .jar()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !cookies.is_empty()
            && !request.headers().contains_key(header::COOKIE)
            && let Ok(value) = HeaderValue::try_from(cookies)
        {
            request.headers_mut().insert(header::COOKIE, value);
        }
        let mut router = self.router.clone();
        let call = async move {
            let ready = poll_fn(|cx| Service::<Request<Body>>::poll_ready(&mut router, cx)).await;
            match ready {
                Ok(()) => router.call(request).await,
                Err(never) => match never {},
            }
        };
        let response = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => response,
            Ok(Err(never)) => match never {},
            Err(_) => {
                return Err(TestError::Timeout {
                    waiting_for: format!("the answer to {what}"),
                    after: self.timeout,
                });
            }
        };
        self.store_cookies(response.headers());
        Ok(response)
    }

    fn store_cookies(&self, headers: &HeaderMap) {
        let mut jar = self.jar();
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            let expired = parts.any(|attribute| {
                let attribute = attribute.trim().to_ascii_lowercase();
                attribute == "max-age=0" || attribute.starts_with("max-age=-")
            });
            jar.retain(|(key, _)| *key != name);
            if !expired {
                jar.push((name, value));
            }
        }
    }

    /// Sends a request and reads the whole answer.
    async fn fetch(
        &self,
        request: Request<Body>,
        what: &str,
    ) -> Result<(StatusCode, HeaderMap, Bytes), TestError> {
        let response = self.call(request, what).await?;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(self.timeout, axum::body::to_bytes(body, usize::MAX))
            .await
            .map_err(|_| TestError::Timeout {
                waiting_for: format!("the body of the answer to {what}"),
                after: self.timeout,
            })?
            .map_err(|err| TestError::protocol(format!("reading the answer to {what}: {err}")))?;
        Ok((parts.status, parts.headers, body))
    }

    /// GETs a page, following `3xx` redirects; returns its final URL and HTML.
    async fn document(&self, url: &str) -> Result<(String, String), TestError> {
        let mut url = url.to_owned();
        let mut chain = vec![url.clone()];
        loop {
            let request = Request::get(url.as_str())
                .header(header::ACCEPT, "text/html")
                .body(Body::empty())
                .map_err(|err| TestError::protocol(format!("`{url}` is not a URL: {err}")))?;
            let what = format!("GET {url}");
            let (status, headers, body) = self.fetch(request, &what).await?;
            if status.is_redirection()
                && let Some(location) = headers.get(header::LOCATION)
            {
                let location = location.to_str().unwrap_or("/");
                url = resolve(&url, location);
                chain.push(url.clone());
                if chain.len() > MAX_LOADS {
                    return Err(TestError::TooManyRedirects { chain });
                }
                continue;
            }
            let text = String::from_utf8_lossy(&body).into_owned();
            if !status.is_success() {
                return Err(TestError::Status {
                    request: what,
                    status,
                    body: text,
                });
            }
            return Ok((url, text));
        }
    }
}

/// Resolves a `Location` against the URL it answered.
fn resolve(base: &str, location: &str) -> String {
    if location.starts_with('/') && !location.starts_with("//") {
        return location.to_owned();
    }
    if let Some(rest) = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("https://"))
        .or_else(|| location.strip_prefix("//"))
    {
        return rest
            .find('/')
            .map_or("/".to_owned(), |at| rest[at..].to_owned());
    }
    let path = base.split(['?', '#']).next().unwrap_or("/");
    let dir = path.rfind('/').map_or("/", |at| &path[..=at]);
    format!("{dir}{location}")
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

// ---------------------------------------------------------------------------------------------
// The live stream.

/// A live page's open stream: the response body, read frame by frame.
struct Stream {
    body: Body,
    parser: SseParser,
    closed: bool,
}

impl Stream {
    /// Every event the body has ready now, without waiting.
    async fn ready(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while !self.closed {
            let body = &mut self.body;
            let frame = poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(frame) => Poll::Ready(Some(frame)),
                Poll::Pending => Poll::Ready(None),
            })
            .await;
            match frame {
                None => break,
                Some(frame) => events.extend(self.take(frame)),
            }
        }
        events
    }

    /// Waits until at least one event arrives, then returns it with everything else ready.
    async fn next(&mut self, timeout: Duration) -> Result<Vec<SseEvent>, Option<Duration>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = self.ready().await;
        while events.is_empty() {
            if self.closed {
                return Err(None);
            }
            let body = &mut self.body;
            let frame = tokio::time::timeout_at(
                deadline,
                poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)),
            )
            .await
            .map_err(|_| Some(timeout))?;
            events.extend(self.take(frame));
        }
        events.extend(self.ready().await);
        Ok(events)
    }

    fn take(
        &mut self,
        frame: Option<Result<http_body::Frame<Bytes>, axum::Error>>,
    ) -> Vec<SseEvent> {
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => self.parser.push(&data),
                Err(_) => Vec::new(),
            },
            Some(Err(_)) | None => {
                self.closed = true;
                Vec::new()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The page.

/// How a load changes the tab's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HistoryChange {
    Push,
    /// Reload, Back: the current entry stays (with the final URL).
    Keep,
}

type Load = Option<(String, HistoryChange)>;

struct Live {
    stream: Stream,
    nav: Option<String>,
}

/// One browser tab showing a page: see the [module docs](self).
pub struct TestPage {
    client: TestClient,
    url: String,
    title: String,
    document: String,
    signals: Map<String, Value>,
    unevaluated: Vec<(String, String)>,
    scripts: Vec<String>,
    history: Vec<String>,
    position: usize,
    live: Option<Live>,
}

impl fmt::Debug for TestPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPage")
            .field("url", &self.url)
            .field("title", &self.title)
            .field("live", &self.live.is_some())
            .field("signals", &self.signals)
            .finish_non_exhaustive()
    }
}

/// The action a `data-on:click` attribute performs.
enum ClickAction {
    Event {
        name: String,
        args: Map<String, Value>,
        token: Option<String>,
    },
    Navigate(String),
}

impl TestPage {
    fn blank(client: TestClient) -> Self {
        TestPage {
            client,
            url: String::new(),
            title: String::new(),
            document: String::new(),
            signals: Map::new(),
            unevaluated: Vec::new(),
            scripts: Vec::new(),
            history: Vec::new(),
            position: 0,
            live: None,
        }
    }

    // -- reading the page ------------------------------------------------------------------

    /// The current URL (path and query), as the browser's address bar would show it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The document title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Whether the page is live (has a session and a stream).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The HTML inside `<body>`, with every patch applied.
    pub fn html(&self) -> &str {
        let tree = Tree::parse(&self.document);
        match tree.elements.iter().find(|e| e.name == "body") {
            Some(body) => &self.document[body.inner.clone()],
            None => &self.document,
        }
    }

    /// The whole document, head included.
    pub fn document(&self) -> &str {
        &self.document
    }

    /// The client's signals.
    pub fn signals(&self) -> &Map<String, Value> {
        &self.signals
    }

    /// One signal by dotted path (`"user.name"`).
    pub fn signal(&self, path: &str) -> Option<&Value> {
        signals::lookup(&self.signals, path)
    }

    /// The signals as a `serde` type (local `_` signals included).
    pub fn signals_as<T: DeserializeOwned>(&self) -> Result<T, TestError> {
        serde_json::from_value(Value::Object(self.signals.clone()))
            .map_err(|err| TestError::protocol(format!("the signals do not fit the type: {err}")))
    }

    /// The text of the first element matching `selector` (usually `#id`): tags, comments and
    /// scripts stripped, entities decoded, whitespace collapsed to single spaces and trimmed.
    ///
    /// # Panics
    ///
    /// When the selector is not one the client understands (see the [module docs](self)).
    #[track_caller]
    pub fn text(&self, selector: &str) -> Option<String> {
        self.outer_html(selector).map(html::text_content)
    }

    /// The texts of every element matching `selector`.
    ///
    /// # Panics
    ///
    /// When the selector is not one the client understands.
    #[track_caller]
    pub fn texts(&self, selector: &str) -> Vec<String> {
        self.select(selector)
            .into_iter()
            .map(html::text_content)
            .collect()
    }

    /// The HTML of the first element matching `selector`, its own tags included.
    ///
    /// # Panics
    ///
    /// When the selector is not one the client understands.
    #[track_caller]
    pub fn outer_html(&self, selector: &str) -> Option<&str> {
        self.select(selector).into_iter().next()
    }

    /// How many elements match `selector`.
    ///
    /// # Panics
    ///
    /// When the selector is not one the client understands.
    #[track_caller]
    pub fn count(&self, selector: &str) -> usize {
        self.select(selector).len()
    }

    /// Whether an element matches `selector`.
    ///
    /// # Panics
    ///
    /// When the selector is not one the client understands.
    #[track_caller]
    pub fn exists(&self, selector: &str) -> bool {
        self.count(selector) > 0
    }

    /// Every script the page received in patches (redirects and navigation included), in
    /// order. Scripts in the loaded document are not listed.
    pub fn scripts(&self) -> &[String] {
        &self.scripts
    }

    #[track_caller]
    fn select(&self, selector: &str) -> Vec<&str> {
        let parsed = Selector::parse(selector).unwrap_or_else(|reason| {
            panic!(
                "{}",
                TestError::Selector {
                    selector: selector.to_owned(),
                    reason
                }
            )
        });
        let tree = Tree::parse(&self.document);
        tree.select(&parsed)
            .into_iter()
            .map(|i| &self.document[tree.elements[i].outer.clone()])
            .collect()
    }

    // -- assertions ------------------------------------------------------------------------

    /// Asserts that signal `path` (dotted, like `user.name`) equals `expected`.
    ///
    /// # Panics
    ///
    /// When it does not (or is missing), showing both values and all signals.
    #[track_caller]
    pub fn assert_signal<T: Serialize>(&self, path: &str, expected: T) {
        let expected = serde_json::to_value(&expected)
            .unwrap_or_else(|err| panic!("the expected value is not JSON: {err}"));
        let actual = self.signal(path);
        if actual == Some(&expected) {
            return;
        }
        let actual = actual.map_or_else(|| format!("(no signal `{path}`)"), Value::to_string);
        panic!(
            "signal `{path}` is not what the test expects\n  expected: {expected}\n    actual: {actual}\n{}",
            self.describe_signals()
        );
    }

    /// Asserts that the text of the first element matching `selector` is `expected` (compared
    /// after collapsing whitespace, see [`text`](Self::text)).
    ///
    /// # Panics
    ///
    /// When it is not, or nothing matches, showing both texts and the page's HTML.
    #[track_caller]
    pub fn assert_text(&self, selector: &str, expected: &str) {
        let expected = html::collapse_whitespace(expected);
        match self.outer_html(selector) {
            Some(element) => {
                let actual = html::text_content(element);
                if actual != expected {
                    panic!(
                        "text of `{selector}` is not what the test expects\n  expected: {expected:?}\n    actual: {actual:?}\n   element: {}\n{}",
                        html::snippet(element),
                        self.describe_html()
                    );
                }
            }
            None => panic!(
                "text of `{selector}` is not what the test expects\n  expected: {expected:?}\n    actual: (no element matches `{selector}`)\n{}",
                self.describe_html()
            ),
        }
    }

    /// Asserts that the text of the first element matching `selector` contains `expected`.
    ///
    /// # Panics
    ///
    /// When it does not, or nothing matches.
    #[track_caller]
    pub fn assert_text_contains(&self, selector: &str, expected: &str) {
        let expected = html::collapse_whitespace(expected);
        let actual = self.text(selector);
        if actual.as_ref().is_some_and(|text| text.contains(&expected)) {
            return;
        }
        let actual = actual.map_or_else(
            || format!("(no element matches `{selector}`)"),
            |text| format!("{text:?}"),
        );
        panic!(
            "text of `{selector}` does not contain what the test expects\n  expected to contain: {expected:?}\n               actual: {actual}\n{}",
            self.describe_html()
        );
    }

    /// Asserts that `count` elements match `selector`.
    ///
    /// # Panics
    ///
    /// When another number does.
    #[track_caller]
    pub fn assert_count(&self, selector: &str, count: usize) {
        let actual = self.count(selector);
        if actual != count {
            panic!(
                "the number of elements matching `{selector}` is not what the test expects\n  expected: {count}\n    actual: {actual}\n{}",
                self.describe_html()
            );
        }
    }

    /// Asserts that the URL is `expected`.
    ///
    /// # Panics
    ///
    /// When it is not.
    #[track_caller]
    pub fn assert_url(&self, expected: &str) {
        if self.url != expected {
            panic!(
                "the page's URL is not what the test expects\n  expected: {expected:?}\n    actual: {:?}",
                self.url
            );
        }
    }

    fn describe_signals(&self) -> String {
        let mut text = format!(
            "page {} ({})\nsignals: {}",
            self.url,
            if self.is_live() { "live" } else { "stateless" },
            serde_json::to_string_pretty(&self.signals).unwrap_or_default()
        );
        if !self.unevaluated.is_empty() {
            text.push_str("\nnot evaluated (not literals):");
            for (declaration, reason) in &self.unevaluated {
                text.push_str(&format!("\n  {declaration}: {reason}"));
            }
        }
        text
    }

    fn describe_html(&self) -> String {
        let body = self.html().trim();
        let shown = if body.len() > SHOW_HTML {
            let mut end = SHOW_HTML;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}\n… ({} more bytes)", &body[..end], body.len() - end)
        } else {
            body.to_owned()
        };
        format!(
            "page {} ({}), body:\n{shown}",
            self.url,
            if self.is_live() { "live" } else { "stateless" }
        )
    }

    // -- actions ---------------------------------------------------------------------------

    /// Sends event `name` with the page's signals, as `event('name')` in a template does.
    pub async fn click(&mut self, name: &str) -> Result<(), TestError> {
        self.send_event(name, Map::new(), None).await
    }

    /// Sends event `name` with extra values: `args` (a JSON object) is merged over the signals
    /// (top-level keys replace), as `event('name', {...})` in a template does.
    pub async fn event(&mut self, name: &str, args: Value) -> Result<(), TestError> {
        let Value::Object(args) = args else {
            return Err(TestError::protocol(format!(
                "the arguments of event `{name}` must be a JSON object, got {args}"
            )));
        };
        self.send_event(name, args, None).await
    }

    /// Like [`event`](Self::event), with the extra values from a `serde` type (a struct or a
    /// map).
    pub async fn event_with<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        args: &T,
    ) -> Result<(), TestError> {
        let args = serde_json::to_value(args).map_err(|err| {
            TestError::protocol(format!(
                "the arguments of event `{name}` are not JSON: {err}"
            ))
        })?;
        self.event(name, args).await
    }

    /// Clicks the first element matching `selector`: runs the dstar action in its
    /// `data-on:click` (an `event(...)` with its arguments, or a `link(...)`/`navigate(...)`),
    /// or follows it if it is a plain `<a href>`.
    pub async fn click_on(&mut self, selector: &str) -> Result<(), TestError> {
        let action = self.click_action(selector)?;
        match action {
            ClickAction::Event { name, args, token } => self.send_event(&name, args, token).await,
            ClickAction::Navigate(url) => self.navigate(&url).await,
        }
    }

    fn click_action(&self, selector: &str) -> Result<ClickAction, TestError> {
        let parsed = Selector::parse(selector).map_err(|reason| TestError::Selector {
            selector: selector.to_owned(),
            reason,
        })?;
        let tree = Tree::parse(&self.document);
        let element = tree
            .select(&parsed)
            .first()
            .map(|&i| &tree.elements[i])
            .ok_or_else(|| {
                TestError::protocol(format!(
                    "no element matches `{selector}` to click on\n{}",
                    self.describe_html()
                ))
            })?;
        let action = element
            .attrs
            .iter()
            .find(|(name, _)| {
                name.strip_prefix("data-on:click")
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("__"))
            })
            .map(|(_, value)| value.as_str());
        let after = |text: &str, marker: &str| {
            text.find(marker)
                .and_then(|at| script::string_literal(text[at + marker.len()..].trim_start()))
        };
        if let Some(action) = action {
            if let Some(name) = after(action, &format!("'{EVENT_HEADER}':")) {
                let args = match after(action, &format!("'{ARGS_HEADER}':")) {
                    Some(json) => match serde_json::from_str(&json) {
                        Ok(Value::Object(args)) => args,
                        _ => {
                            return Err(TestError::protocol(format!(
                                "the event arguments of `{selector}` are not a JSON object: {json}"
                            )));
                        }
                    },
                    None => Map::new(),
                };
                let token = after(action, &format!("'{TOKEN_HEADER}':"));
                return Ok(ClickAction::Event { name, args, token });
            }
            if let Some(url) = after(action, "__dstarNav(") {
                return Ok(ClickAction::Navigate(url));
            }
            if element.name != "a" {
                return Err(TestError::protocol(format!(
                    "the `data-on:click` of `{selector}` is not a dstar action the test client \
                     knows (`event(...)`, `link(...)`, `navigate(...)`): {action}"
                )));
            }
        }
        match (element.name.as_str(), element.attr("href")) {
            ("a", Some(href)) => Ok(ClickAction::Navigate(href.to_owned())),
            _ => Err(TestError::protocol(format!(
                "`{selector}` has no `data-on:click` action and is not a link: {}",
                html::snippet(&self.document[element.outer.clone()])
            ))),
        }
    }

    async fn send_event(
        &mut self,
        name: &str,
        args: Map<String, Value>,
        token: Option<String>,
    ) -> Result<(), TestError> {
        let mut body = signals::outgoing(&self.signals);
        body.extend(args);
        let body = Value::Object(body).to_string();
        let live = self.live.is_some();
        let (url, token) = if live {
            (EVENT_PATH.to_owned(), self.live_token()?)
        } else {
            let token = token.or_else(|| self.stateless_token()).ok_or_else(|| {
                TestError::protocol(format!(
                    "cannot send event `{name}`: the page has no `event(...)` action, so there \
                     is no token to send it with\n{}",
                    self.describe_html()
                ))
            })?;
            (self.url.clone(), token)
        };
        let request = self.action_request(&url, &token, body, &[(EVENT_HEADER, name)])?;
        let what = format!("POST {url} (event `{name}`)");
        let (status, headers, answer) = self.client.fetch(request, &what).await?;
        let error = |body: &Bytes| TestError::Status {
            request: what.clone(),
            status,
            body: String::from_utf8_lossy(body).into_owned(),
        };
        if live {
            if status == StatusCode::NO_CONTENT {
                return self.settle().await;
            }
            // What a failed handler queued was still sent; take it in, then report.
            if status.is_success() && is_event_stream(&headers) {
                let load = self.apply_body(&answer)?;
                self.follow(load).await?;
                return self.settle().await;
            }
            let _ = self.settle().await;
            return Err(error(&answer));
        }
        if status.is_success() && is_event_stream(&headers) {
            let load = self.apply_body(&answer)?;
            return self.follow(load).await;
        }
        Err(error(&answer))
    }

    /// Navigates to `url` like a `link()`: a soft navigation on a live page (falling back to a
    /// full load when the server says so), a full load otherwise.
    pub async fn navigate(&mut self, url: &str) -> Result<(), TestError> {
        self.go(url, HistoryChange::Push).await
    }

    /// Goes back one entry in this tab's history, like the Back button.
    pub async fn back(&mut self) -> Result<(), TestError> {
        if self.position == 0 {
            return Err(TestError::protocol(format!(
                "cannot go back: {} is the first page of this tab",
                self.url
            )));
        }
        self.position -= 1;
        let url = self.history[self.position].clone();
        self.go(&url, HistoryChange::Keep).await
    }

    /// Loads the current URL again (a new session for a live page).
    pub async fn reload(&mut self) -> Result<(), TestError> {
        let url = self.url.clone();
        self.follow(Some((url, HistoryChange::Keep))).await
    }

    async fn go(&mut self, url: &str, change: HistoryChange) -> Result<(), TestError> {
        let nav = self.live.as_ref().and_then(|live| live.nav.clone());
        let Some(nav) = nav else {
            return self.follow(Some((url.to_owned(), change))).await;
        };
        let history = if change == HistoryChange::Push {
            "push"
        } else {
            "replace"
        };
        let request = Request::post(NAV_PATH)
            .header(TOKEN_HEADER, nav)
            .header(URL_HEADER, url)
            .header(HISTORY_HEADER, history)
            .body(Body::empty())
            .map_err(|err| TestError::protocol(format!("cannot navigate to `{url}`: {err}")))?;
        let what = format!("POST {NAV_PATH} (navigation to `{url}`)");
        let (status, _headers, answer) = self.client.fetch(request, &what).await?;
        match status {
            StatusCode::NO_CONTENT => self.settle().await,
            StatusCode::OK => {
                let load = serde_json::from_slice::<Value>(&answer)
                    .ok()
                    .and_then(|answer| answer.get("load")?.as_str().map(str::to_owned))
                    .ok_or_else(|| {
                        TestError::protocol(format!(
                            "{what} answered 200 without `{{\"load\": url}}`: {}",
                            String::from_utf8_lossy(&answer)
                        ))
                    })?;
                self.follow(Some((load, change))).await
            }
            _ => Err(TestError::Status {
                request: what,
                status,
                body: String::from_utf8_lossy(&answer).into_owned(),
            }),
        }
    }

    /// Waits (up to the client's timeout) until the live page's stream delivers at least one
    /// event, then applies it and everything else that has arrived.
    pub async fn next_update(&mut self) -> Result<(), TestError> {
        let timeout = self.client.timeout;
        let url = self.url.clone();
        let live = self.live.as_mut().ok_or_else(|| TestError::NotLive {
            action: "next_update",
            url: url.clone(),
        })?;
        let events = live.stream.next(timeout).await.map_err(|err| match err {
            Some(after) => TestError::Timeout {
                waiting_for: format!("an update on the stream of {url}"),
                after,
            },
            None => TestError::StreamClosed { url: url.clone() },
        })?;
        let load = self.apply(events)?;
        self.follow(load).await
    }

    /// Applies everything the live page's session had been sent before this call: see
    /// [When an action returns](self#when-an-action-returns). Does nothing on a stateless page.
    pub async fn settle(&mut self) -> Result<(), TestError> {
        let load = self.sync().await?;
        self.follow(load).await
    }

    /// Sends the session a no-op event and, once it is answered, applies every stream event
    /// that has arrived; returns a load a script asked for.
    async fn sync(&mut self) -> Result<Load, TestError> {
        if self.live.is_none() {
            return Ok(None);
        }
        let token = self.live_token()?;
        let request = self.action_request(
            EVENT_PATH,
            &token,
            "{}".to_owned(),
            &[(EVENT_HEADER, SYNC_EVENT)],
        )?;
        let what = format!("POST {EVENT_PATH} (sync with the session of {})", self.url);
        let (status, _headers, answer) = self.client.fetch(request, &what).await?;
        // 404: the unknown event came back, so everything queued before it is done.
        // 410: the session is gone; its stream says what to do (reload).
        if status != StatusCode::NOT_FOUND && status != StatusCode::GONE {
            return Err(TestError::Status {
                request: what,
                status,
                body: String::from_utf8_lossy(&answer).into_owned(),
            });
        }
        let events = match self.live.as_mut() {
            Some(live) => live.stream.ready().await,
            None => Vec::new(),
        };
        self.apply(events)
    }

    fn live_token(&self) -> Result<String, TestError> {
        self.signals
            .get("_dstarToken")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                TestError::protocol(format!(
                    "the live page {} has no `_dstarToken` signal to send events with",
                    self.url
                ))
            })
    }

    /// The token of the first `event(...)` action in the page (stateless pages).
    fn stateless_token(&self) -> Option<String> {
        let marker = format!("'{TOKEN_HEADER}':");
        let tree = Tree::parse(&self.document);
        tree.elements
            .iter()
            .flat_map(|element| element.attrs.iter())
            .find_map(|(_, value)| {
                let at = value.find(&marker)?;
                script::string_literal(value[at + marker.len()..].trim_start())
            })
    }

    /// A request as a Datastar `@post` sends it.
    fn action_request(
        &self,
        url: &str,
        token: &str,
        body: String,
        headers: &[(&str, &str)],
    ) -> Result<Request<Body>, TestError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("datastar-request", "true")
            .header(TOKEN_HEADER, token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(Body::from(body))
            .map_err(|err| TestError::protocol(format!("cannot build a request to `{url}`: {err}")))
    }

    // -- loading and applying --------------------------------------------------------------

    /// Loads `load` and whatever it leads to (redirect scripts on arrival, up to a limit).
    async fn follow(&mut self, mut load: Load) -> Result<(), TestError> {
        let mut chain = Vec::new();
        while let Some(next) = load {
            chain.push(next.0.clone());
            if chain.len() > MAX_LOADS {
                return Err(TestError::TooManyRedirects { chain });
            }
            load = self.load(next).await?;
        }
        Ok(())
    }

    /// Replaces the page with a fresh load of `url`; returns a load its stream asked for.
    async fn load(&mut self, (url, change): (String, HistoryChange)) -> Result<Load, TestError> {
        let (url, document) = self.client.document(&url).await?;
        self.live = None;
        self.scripts.clear();
        self.unevaluated.clear();
        self.signals = Map::new();
        self.title = Tree::parse(&document)
            .elements
            .iter()
            .find(|e| e.name == "title")
            .map(|title| html::text_content(&document[title.inner.clone()]))
            .unwrap_or_default();
        self.document = document;
        self.url = url.clone();
        match change {
            HistoryChange::Push => {
                if !self.history.is_empty() {
                    self.history.truncate(self.position + 1);
                    self.position = self.history.len();
                }
                self.history.push(url);
            }
            HistoryChange::Keep => match self.history.get_mut(self.position) {
                Some(entry) => *entry = url,
                None => self.history.push(url),
            },
        }
        for declaration in signals::declarations(&self.document) {
            self.declare(&declaration);
        }
        let stream_token = self
            .signals
            .get("_dstarStream")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(stream_token) = stream_token.filter(|_| self.document.contains(STREAM_PATH))
        else {
            return Ok(None);
        };
        let nav = self
            .document
            .find("d.nav = ")
            .and_then(|at| script::string_literal(&self.document[at + "d.nav = ".len()..]));
        let body = Value::Object(signals::outgoing(&self.signals)).to_string();
        let request = self.action_request(STREAM_PATH, &stream_token, body, &[])?;
        let what = format!("POST {STREAM_PATH} (the stream of {})", self.url);
        let response = self.client.call(request, &what).await?;
        if response.status() != StatusCode::OK || !is_event_stream(response.headers()) {
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            return Err(TestError::Status {
                request: what,
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        self.live = Some(Live {
            stream: Stream {
                body: response.into_body(),
                parser: SseParser::default(),
                closed: false,
            },
            nav,
        });
        // A load the stream asks for is returned to the caller's loop, not followed here.
        self.sync().await
    }

    fn declare(&mut self, declaration: &Declaration) {
        if let Err(reason) = signals::apply_declaration(&mut self.signals, declaration) {
            let shown = declaration.to_string();
            if !self.unevaluated.iter().any(|(d, _)| *d == shown) {
                self.unevaluated.push((shown, reason));
            }
        }
    }

    /// Applies a one-shot SSE answer.
    fn apply_body(&mut self, body: &[u8]) -> Result<Load, TestError> {
        let mut parser = SseParser::default();
        let mut events = parser.push(body);
        // A body that does not end with a blank line still ends its last event.
        events.extend(parser.push(b"\n\n"));
        self.apply(events)
    }

    /// Applies stream or answer events in order; returns a load a script asked for.
    fn apply(&mut self, events: Vec<SseEvent>) -> Result<Load, TestError> {
        let mut load = None;
        for event in events {
            match Datastar::decode(&event).map_err(|err| {
                TestError::protocol(format!("malformed `{}` event: {err}", event.event))
            })? {
                Datastar::Signals {
                    json,
                    only_if_missing,
                } => {
                    let patch: Map<String, Value> = serde_json::from_str(&json).map_err(|err| {
                        TestError::protocol(format!(
                            "a signals patch is not a JSON object ({err}): {json}"
                        ))
                    })?;
                    signals::merge_patch(&mut self.signals, &patch, only_if_missing);
                }
                Datastar::Elements {
                    selector,
                    mode,
                    elements,
                } => {
                    let (elements, scripts) = take_scripts(&elements);
                    let ran_scripts = !scripts.is_empty();
                    if !(ran_scripts && elements.trim().is_empty()) {
                        let before = signals::declarations(&self.document);
                        html::apply_patch(&mut self.document, selector.as_deref(), mode, &elements)
                            .map_err(|err| TestError::from_patch(err, mode, &elements))?;
                        if mode != Mode::Remove {
                            for declaration in signals::declarations(&elements) {
                                if !before.contains(&declaration) {
                                    self.declare(&declaration);
                                }
                            }
                        }
                    }
                    for script in scripts {
                        let path = self.url.split(['?', '#']).next().unwrap_or("/").to_owned();
                        for effect in script::effects(&script, &path) {
                            match effect {
                                Effect::Load(url) => load = Some((url, HistoryChange::Push)),
                                Effect::Reload => {
                                    load = Some((self.url.clone(), HistoryChange::Keep))
                                }
                                Effect::Title(title) => self.title = title,
                                Effect::Url { url, push } => {
                                    if push {
                                        self.history.truncate(self.position + 1);
                                        self.history.push(url.clone());
                                        self.position = self.history.len() - 1;
                                    } else if let Some(entry) = self.history.get_mut(self.position)
                                    {
                                        entry.clone_from(&url);
                                    }
                                    self.url = url;
                                }
                                Effect::NavToken(token) => {
                                    if let Some(live) = self.live.as_mut() {
                                        live.nav = Some(token);
                                    }
                                }
                            }
                        }
                        self.scripts.push(script);
                    }
                }
                Datastar::Other => {}
            }
        }
        Ok(load)
    }
}

/// Splits the top-level `<script>` elements out of a patch: returns the fragment without the
/// scripts that remove themselves once run (what `execute_script` sends), and the text of every
/// top-level script.
fn take_scripts(elements: &str) -> (String, Vec<String>) {
    if !elements.contains("<script") {
        return (elements.to_owned(), Vec::new());
    }
    let tree = Tree::parse(elements);
    let mut scripts = Vec::new();
    let mut remove = Vec::new();
    for element in tree.top_level().filter(|e| e.name == "script") {
        scripts.push(elements[element.inner.clone()].to_owned());
        if element
            .attr("data-effect")
            .is_some_and(|effect| effect.contains("el.remove()"))
        {
            remove.push(element.outer.clone());
        }
    }
    let mut rest = elements.to_owned();
    for range in remove.into_iter().rev() {
        rest.replace_range(range, "");
    }
    (rest, scripts)
}
