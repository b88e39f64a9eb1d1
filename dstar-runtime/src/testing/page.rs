//! A tab: the page's state (document, signals, URL, history, live stream) and how what the
//! server sends changes it. Reading the page is in `inspect`, actions in `actions`.

use std::fmt;

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::{Map, Value};

use super::client::{MAX_LOADS, TestClient, is_event_stream};
use super::datastar::Datastar;
use super::error::TestError;
use super::html::{self, Tree};
use super::patch;
use super::script::{self, Effect};
use super::signals::{self, Declaration};
use super::sse::{SseEvent, SseParser};
use super::stream::Stream;
use crate::protocol::{
    EVENT_HEADER, EVENT_PATH, NAV_FETCH_CALL, NAV_PATH, STREAM_PATH, STREAM_SIGNAL, TOKEN_HEADER,
    TOKEN_SIGNAL,
};
use crate::sse::Mode;

/// The event the client sends a live session to learn that it has worked through everything
/// queued before it. No page has it: `#[dstar::page]` refuses `/` in event names. (Should the
/// runtime ever refuse it before it reaches the session, syncing fails with that status rather
/// than silently skipping the wait.)
const SYNC_EVENT: &str = "dstar/test-sync";

/// How a load changes the tab's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HistoryChange {
    Push,
    /// Reload, Back: the current entry stays (with the final URL).
    Keep,
}

pub(super) type Load = Option<(String, HistoryChange)>;

/// What only a live page has: its stream, and the token soft navigation sends.
pub(super) struct Live {
    pub(super) stream: Stream,
    pub(super) nav: Option<String>,
    /// The path the page's router is mounted under (`/app`), read from the navigation script:
    /// the session's endpoints are under it.
    pub(super) prefix: String,
}

/// One browser tab showing a page: see the [module docs](super).
pub struct TestPage {
    pub(super) client: TestClient,
    pub(super) url: String,
    pub(super) title: String,
    pub(super) document: String,
    pub(super) signals: Map<String, Value>,
    pub(super) unevaluated: Vec<(String, String)>,
    pub(super) scripts: Vec<String>,
    pub(super) history: Vec<String>,
    pub(super) position: usize,
    pub(super) live: Option<Live>,
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

// Opening a tab is the client's public API, but it lives with the tab so that the client below
// knows only requests and never the pages built on them.
impl TestClient {
    /// Loads `url` (a path with an optional query, like `/items?page=2`) in a new tab.
    ///
    /// A live page also opens its stream, like the browser does, and [settles](TestPage::settle).
    pub async fn get(&self, url: &str) -> Result<TestPage, TestError> {
        let mut page = TestPage::blank(self.clone());
        page.follow(Some((url.to_owned(), HistoryChange::Push)))
            .await?;
        Ok(page)
    }
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

    /// Sends the session a no-op event and, once it is answered, applies every stream event
    /// that has arrived; returns a load a script asked for.
    pub(super) async fn sync(&mut self) -> Result<Load, TestError> {
        if self.live.is_none() {
            return Ok(None);
        }
        let token = self.live_token()?;
        let event_path = self.live_path(EVENT_PATH);
        let request = self.action_request(
            &event_path,
            &token,
            "{}".to_owned(),
            &[(EVENT_HEADER, SYNC_EVENT)],
        )?;
        let what = format!("POST {event_path} (sync with the session of {})", self.url);
        let (status, _headers, answer) = self.client.fetch(request, &what).await?;
        // 404: the unknown event came back, so everything queued before it is done.
        // 503: the session is not running; its stream says what to do (re-mount or reload).
        if status != StatusCode::NOT_FOUND && status != StatusCode::SERVICE_UNAVAILABLE {
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

    pub(super) fn live_token(&self) -> Result<String, TestError> {
        self.signals
            .get(TOKEN_SIGNAL)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                TestError::protocol(format!(
                    "the live page {} has no `{TOKEN_SIGNAL}` signal to send events with",
                    self.url
                ))
            })
    }

    /// A request as a Datastar `@post` sends it.
    pub(super) fn action_request(
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

    /// Loads `load` and whatever it leads to (redirect scripts on arrival, up to a limit).
    pub(super) async fn follow(&mut self, mut load: Load) -> Result<(), TestError> {
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
            .get(STREAM_SIGNAL)
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
        let prefix = self
            .document
            .find(NAV_FETCH_CALL)
            .and_then(|at| script::string_literal(&self.document[at + NAV_FETCH_CALL.len()..]))
            .and_then(|path| path.strip_suffix(NAV_PATH).map(str::to_owned))
            .unwrap_or_default();
        let body = Value::Object(signals::outgoing(&self.signals)).to_string();
        let stream_path = format!("{prefix}{STREAM_PATH}");
        let request = self.action_request(&stream_path, &stream_token, body, &[])?;
        let what = format!("POST {stream_path} (the stream of {})", self.url);
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
            stream: Stream::new(response.into_body()),
            nav,
            prefix,
        });
        // A load the stream asks for is returned to the caller's loop, not followed here.
        self.sync().await
    }

    /// One of the live session's endpoints, under the page's mount prefix.
    pub(super) fn live_path(&self, path: &str) -> String {
        let prefix = self.live.as_ref().map_or("", |live| live.prefix.as_str());
        format!("{prefix}{path}")
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
    pub(super) fn apply_body(&mut self, body: &[u8]) -> Result<Load, TestError> {
        let mut parser = SseParser::new();
        parser.feed(body);
        // A body that does not end with a blank line still ends its last event.
        parser.feed(b"\n\n");
        self.apply(std::iter::from_fn(|| parser.next_event()).collect())
    }

    /// Applies stream or answer events in order; returns a load a script asked for.
    pub(super) fn apply(&mut self, events: Vec<SseEvent>) -> Result<Load, TestError> {
        let mut load = None;
        for event in events {
            match Datastar::decode(&event).map_err(|err| {
                TestError::protocol(format!("malformed `{}` event: {err}", event.event_type()))
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
                        patch::apply_patch(
                            &mut self.document,
                            selector.as_deref(),
                            mode,
                            &elements,
                        )
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
