//! The bad-input matrix: hostile and broken requests against every door a dstar app opens
//! (the stateless event `POST`, `/__dstar/event`, `/__dstar/stream`, `/__dstar/nav`, and
//! signals in `?datastar=` on `GET`), one row per case.
//!
//! Every row states the exact status and the words the answer must contain to name the
//! problem. After every row, a live session opened before the first one still works: an event
//! sent to it comes back as a patch on its stream with the next count. The server is
//! `App::serve`'s own (its deadlines, hyper's limits), with a short body deadline so a body
//! that never finishes is answered in a second.
//!
//! A few rows are answered before any of dstar's handlers runs, with an empty body: by hyper
//! (a head too large, a malformed `Content-Length`), and by axum for a method nobody routes
//! on a page's path (which the app shares, see the README); those rows check the status and,
//! for axum, the `Allow` header, and say who answered.

use std::time::Duration;

use axum::Extension;
use axum::routing::get;
use dstar::serve::ServeConfig;
use dstar::signals::{Signals, SignalsLimit};
use dstar::test::sse::SseEvent;
use dstar::token::{Keys, Purpose};
use dstar::{App, Ctx, Event, Html, Mount, Page, Route, View};
use dstar_tests::{Response, SseStream, TestServer, token_after};

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &[u8] = b"bad input matrix (a test key of 32+ bytes)";
const EVENT: &str = "/__dstar/event";
const STREAM: &str = "/__dstar/stream";
const NAV: &str = "/__dstar/nav";
/// The limit on `GET /search`'s signals.
const SEARCH_LIMIT: usize = 256;
/// The body deadline of the matrix's server: a body that stalls is answered after it.
const BODY_TIMEOUT: Duration = Duration::from_millis(500);

/// A live page with a counter (`bump`) and an event with typed signals (`typed`).
struct Room {
    count: u64,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Typed {
    count: i64,
    label: String,
}

impl Page for Room {
    const ROUTE: Route = Route::new("Room", "/room", file!(), line!())
        .live()
        .group("main")
        .events(&["bump", "typed"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Room { count: 0 })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<p id="n">{{ n }}</p>"#,
            serde_json::json!({ "n": self.count }),
        )
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "bump" => self.count += 1,
            "typed" => {
                let typed: Typed = event.signals()?;
                self.count = typed.count.unsigned_abs();
            }
            _ => return Err(event.unknown()),
        }
        Ok(())
    }
}

/// A live page of the same group whose path parameter must be a number.
struct Item {
    id: u32,
}

impl Page for Item {
    const ROUTE: Route = Route::new("Item", "/items/{id}", file!(), line!())
        .live()
        .group("main");

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Item {
            id: mount.param_as("id")?,
        })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!("<h1>item {}</h1>", self.id)))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }
}

/// A stateless page with one event taking typed signals.
struct Form;

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Save {
    name: String,
    age: u8,
}

impl Page for Form {
    const ROUTE: Route = Route::new("Form", "/form", file!(), line!()).events(&["save"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Form)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<button data-on:click="{{ event('save') }}">save</button>"#,
            (),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        let save: Save = event.signals()?;
        cx.skip_render();
        cx.patch_signals(&serde_json::json!({ "saved": save.name }))
    }
}

/// The app's own route beside the pages, reading `GET` signals from `?datastar=`.
#[derive(serde::Deserialize)]
struct Search {
    q: String,
    page: u32,
}

async fn search(Signals(search): Signals<Search>) -> String {
    format!("{} (page {})", search.q, search.page)
}

/// The tokens of a loaded live page.
struct Tab {
    event: String,
    stream: String,
    nav: String,
}

impl Tab {
    async fn open(server: &TestServer) -> Tab {
        let page = server.get("/room", &[]).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let html = page.text();
        Tab {
            event: token_after(html, "_dstarToken"),
            stream: token_after(html, "_dstarStream"),
            nav: token_after(html, "d.nav"),
        }
    }

    fn session(&self) -> u128 {
        Keys::new(SECRET)
            .verify(&self.event, Purpose::Csrf)
            .expect("the page's own token")
            .session
    }
}

/// A live session opened before the matrix, whose events must keep working after every row.
struct Witness {
    tab: Tab,
    stream: SseStream,
    count: u64,
}

impl Witness {
    async fn open(server: &TestServer) -> Witness {
        let tab = Tab::open(server).await;
        let stream = server
            .open_sse(
                "POST",
                STREAM,
                &[("x-dstar-token", &tab.stream)],
                Some(b"{}"),
            )
            .await
            .expect("the witness's stream opens");
        assert_eq!(stream.status, 200);
        Witness {
            tab,
            stream,
            count: 0,
        }
    }

    /// One event round trip: the `POST` is applied and its patch arrives on the stream.
    async fn round_trip(&mut self, server: &TestServer, after: &str) {
        let reply = server
            .post(
                EVENT,
                &[
                    ("x-dstar-token", &self.tab.event),
                    ("x-dstar-event", "bump"),
                    ("content-type", "application/json"),
                ],
                b"{}",
            )
            .await;
        assert_eq!(
            reply.status,
            204,
            "after `{after}`, the witness's event failed: {}",
            reply.text()
        );
        self.count += 1;
        let event = self.stream.expect_event(WAIT).await;
        assert_eq!(
            root_html(&event),
            format!(r#"<p id="n">{}</p>"#, self.count),
            "after `{after}`, the witness's stream"
        );
    }
}

fn root_html(event: &SseEvent) -> String {
    assert_eq!(event.event.as_deref(), Some("datastar-patch-elements"));
    event.value("elements").unwrap()
}

/// Who writes a refusal: dstar's handlers name the problem and forbid caching the answer;
/// hyper answers a request it cannot parse before any handler, with an empty body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnsweredBy {
    Dstar,
    /// The app's own route (here `GET /search`): its message is dstar's signal extractor's.
    App,
    Hyper,
    /// axum's router, with an empty body and the `Allow` header given: a page's path is shared
    /// with the app's own routes (an app may add `PUT /form`), so a method nobody routes there
    /// is axum's to refuse.
    Axum(&'static str),
}

/// One row of the matrix.
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Option<Vec<u8>>,
    status: u16,
    /// Words the body must contain.
    names: Vec<String>,
    /// Words the body must not contain.
    not: Vec<&'static str>,
    by: AnsweredBy,
}

fn case(name: &'static str) -> Case {
    Case {
        name,
        method: "GET",
        path: String::new(),
        headers: Vec::new(),
        body: None,
        status: 0,
        names: Vec::new(),
        not: Vec::new(),
        by: AnsweredBy::Dstar,
    }
}

impl Case {
    fn to(mut self, method: &'static str, path: impl Into<String>) -> Self {
        self.method = method;
        self.path = path.into();
        self
    }

    fn post(self, path: impl Into<String>) -> Self {
        self.to("POST", path)
    }

    fn get(self, path: impl Into<String>) -> Self {
        self.to("GET", path)
    }

    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn token(self, token: &str) -> Self {
        self.header("x-dstar-token", token)
    }

    fn event(self, name: &str) -> Self {
        self.header("x-dstar-event", name)
    }

    fn url(self, target: &str) -> Self {
        self.header("x-dstar-url", target)
    }

    fn json(self, body: impl AsRef<[u8]>) -> Self {
        self.header("content-type", "application/json").body(body)
    }

    fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = Some(body.as_ref().to_vec());
        self
    }

    fn expect(mut self, status: u16, names: &[&str]) -> Self {
        self.status = status;
        self.names = names.iter().map(|&name| name.to_owned()).collect();
        self
    }

    fn without(mut self, words: &[&'static str]) -> Self {
        self.not.extend_from_slice(words);
        self
    }

    fn by(mut self, by: AnsweredBy) -> Self {
        self.by = by;
        self
    }

    /// What is wrong with `response` for this row, if anything.
    fn problems(&self, response: &Response) -> Vec<String> {
        let mut problems = Vec::new();
        let body = String::from_utf8_lossy(&response.body);
        if response.status != self.status {
            problems.push(format!("status {} (not {})", response.status, self.status));
        }
        for word in &self.names {
            if !body.contains(word.as_str()) {
                problems.push(format!("the answer does not name `{word}`"));
            }
        }
        for word in &self.not {
            if body.contains(word) {
                problems.push(format!("the answer has `{word}`"));
            }
        }
        match self.by {
            AnsweredBy::Dstar | AnsweredBy::App if body.trim().is_empty() => {
                problems.push("an empty answer".to_owned());
            }
            AnsweredBy::Hyper if !body.is_empty() => {
                problems.push("hyper's own answers have no body".to_owned());
            }
            AnsweredBy::Axum(allow) if response.header("allow") != Some(allow) => {
                problems.push(format!("the `Allow` header is not `{allow}`"));
            }
            _ => {}
        }
        if self.by == AnsweredBy::Dstar
            && self.status == 405
            && response.header("allow") != Some("POST")
        {
            problems.push("dstar's endpoints answer a wrong method with `Allow: POST`".to_owned());
        }
        if self.by == AnsweredBy::Dstar && response.header("cache-control") != Some("no-store") {
            problems.push("dstar's endpoints answer `Cache-Control: no-store`".to_owned());
        }
        // Pages, error pages included, carry the security headers and are never cached.
        if response
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("text/html"))
        {
            for (name, value) in [
                ("x-content-type-options", "nosniff"),
                ("x-frame-options", "DENY"),
                ("cache-control", "no-store"),
            ] {
                if response.header(name) != Some(value) {
                    problems.push(format!("an HTML answer without `{name}: {value}`"));
                }
            }
            if response.header("content-security-policy").is_none() {
                problems.push("an HTML answer without a Content-Security-Policy".to_owned());
            }
        }
        if response.header("set-cookie").is_some() {
            problems.push("a header was injected".to_owned());
        }
        if !problems.is_empty() {
            problems.push(format!("(the answer: {body:.300})"));
        }
        problems
    }
}

/// `token` with one hex digit of its payload changed.
fn tampered(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[40] = if bytes[40] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).unwrap()
}

fn matrix(witness: &Tab, victim: &Tab, form_token: &str) -> Vec<Case> {
    let keys = Keys::new(SECRET);
    let forger = Keys::new(b"not this app's key (but 32+ bytes long)");
    let nobody = 0xdead_beef_u128 << 32;
    let expired = |purpose, session| keys.sign_at(purpose, session, 1, 2);
    let big_json = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1024 * 1024));
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(1000), "]".repeat(1000));
    let ev = witness.event.as_str();
    let nav = victim.nav.as_str();

    vec![
        // ---- the live event endpoint: tokens
        case("live event: no token")
            .post(EVENT)
            .event("bump")
            .json("{}")
            .expect(403, &["token missing", "x-dstar-token"]),
        case("live event: a token that is not hex")
            .post(EVENT)
            .token("not a token")
            .event("bump")
            .json("{}")
            .expect(403, &["token malformed"]),
        case("live event: a token of 100 KB")
            .post(EVENT)
            .token(&"a".repeat(100 * 1024))
            .event("bump")
            .json("{}")
            .expect(403, &["token malformed"]),
        case("live event: a token signed with another key")
            .post(EVENT)
            .token(&forger.sign(Purpose::Csrf, witness.session(), WAIT))
            .event("bump")
            .json("{}")
            .expect(403, &["token signature invalid"]),
        case("live event: the page's token with one digit changed")
            .post(EVENT)
            .token(&tampered(ev))
            .event("bump")
            .json("{}")
            .expect(403, &["token signature invalid"]),
        case("live event: an expired token")
            .post(EVENT)
            .token(&expired(Purpose::Csrf, witness.session()))
            .event("bump")
            .json("{}")
            .expect(403, &["token expired"]),
        case("live event: the stream token")
            .post(EVENT)
            .token(&witness.stream)
            .event("bump")
            .json("{}")
            .expect(403, &["token issued for another purpose"]),
        case("live event: the navigation token")
            .post(EVENT)
            .token(nav)
            .event("bump")
            .json("{}")
            .expect(403, &["token issued for another purpose"]),
        case("live event: a session that is not running")
            .post(EVENT)
            .token(&keys.sign(Purpose::Csrf, nobody, WAIT))
            .event("bump")
            .json("{}")
            .expect(503, &["session is not running", "send the event again"]),
        // ---- the live event endpoint: the event
        case("live event: no event header")
            .post(EVENT)
            .token(ev)
            .json("{}")
            .expect(400, &["no `x-dstar-event` header"]),
        case("live event: an unknown event")
            .post(EVENT)
            .token(ev)
            .event("nope")
            .json("{}")
            .expect(404, &["unknown event `nope`"]),
        case("live event: an unknown event with quotes and angle brackets")
            .post(EVENT)
            .token(ev)
            .event(r#"a"<b>"#)
            .json("{}")
            .expect(404, &[r#"unknown event `a\"<b>`"#]),
        case("live event: a click id of 65 characters")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("x-dstar-click", "c".repeat(65))
            .json("{}")
            .expect(400, &["`x-dstar-click`", "longer than 64"]),
        // ---- the live event endpoint: signals
        case("live event: malformed JSON")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .json("{not json")
            .expect(400, &["signals are not valid JSON"]),
        case("live event: a JSON array")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .json("[1,2]")
            .expect(400, &["signals must be a JSON object, got an array"]),
        case("live event: a JSON string")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .json(r#""x""#)
            .expect(400, &["got a string"]),
        case("live event: a JSON number")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .json("42")
            .expect(400, &["got a number"]),
        case("live event: JSON null")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .json("null")
            .expect(400, &["got null"]),
        case("live event: an object followed by more text")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .json("{} trailing")
            .expect(400, &["signals are not valid JSON", "trailing"]),
        case("live event: invalid UTF-8 in a field nobody reads")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .json(b"{\"ignored\": \"\xff\xfe\"}")
            .expect(400, &["not valid UTF-8", "offset 13"]),
        case("live event: a body over 1 MiB")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .json(&big_json)
            .expect(413, &["larger than the limit of 1048576 bytes"]),
        case("live event: JSON nested 1,000 deep, parsed to merge args into it")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("x-dstar-args", r#"{"a":1}"#)
            .json(&deep)
            .expect(400, &["signals are not valid JSON", "recursion limit"]),
        case("live event: a field of the wrong type")
            .post(EVENT)
            .token(ev)
            .event("typed")
            .json(r#"{"count":"many","label":"x"}"#)
            .expect(422, &["invalid signal `count`", "expected i64"]),
        case("live event: a missing field")
            .post(EVENT)
            .token(ev)
            .event("typed")
            .json(r#"{"count":1}"#)
            .expect(422, &["missing field `label`"]),
        case("live event: a form-encoded body")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("count=1")
            .expect(
                400,
                &["signals must be a JSON object, got text that is not JSON"],
            ),
        case("live event: a multipart body")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("content-type", "multipart/form-data; boundary=XX")
            .body("--XX\r\nContent-Disposition: form-data; name=\"count\"\r\n\r\n1\r\n--XX--\r\n")
            .expect(400, &["signals must be a JSON object"]),
        case("live event: a body shorter than its Content-Length")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("content-length", "100")
            .body("{}")
            .expect(400, &["could not read the request body", "no progress"]),
        case("live event: a chunked body with a chunk size that is not hex")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("transfer-encoding", "chunked")
            .body("zz\r\n{}\r\n0\r\n\r\n")
            .expect(400, &["could not read the request body", "chunk size"]),
        // ---- the live event endpoint: `x-dstar-args`
        case("live event: args that are not JSON")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("x-dstar-args", "{oops")
            .json("{}")
            .expect(400, &["`x-dstar-args` must be a JSON object"]),
        case("live event: args that are an array")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("x-dstar-args", "[1]")
            .json("{}")
            .expect(400, &["`x-dstar-args` must be a JSON object"]),
        case("live event: args giving a field the wrong type")
            .post(EVENT)
            .token(ev)
            .event("typed")
            .header("x-dstar-args", r#"{"count":true}"#)
            .json(r#"{"count":1,"label":"x"}"#)
            .expect(422, &["invalid signal `count`"]),
        case("live event: args over signals that are not an object")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("x-dstar-args", r#"{"a":1}"#)
            .json("[]")
            .expect(400, &["signals must be a JSON object, got an array"]),
        case("live event: a token in Latin-1 bytes (not text)")
            .post(EVENT)
            .header("x-dstar-token", b"\xe9t\xe9".as_slice())
            .event("bump")
            .json("{}")
            .expect(403, &["token malformed"]),
        case("live event: an event name in Latin-1 bytes")
            .post(EVENT)
            .token(ev)
            .header("x-dstar-event", b"b\xfcmp".as_slice())
            .json("{}")
            .expect(404, &["unknown event `\u{fffd}`"]),
        case("live event: args in Latin-1 bytes")
            .post(EVENT)
            .token(ev)
            .event("typed")
            .header("x-dstar-args", b"{\"label\":\"\xe9\"}".as_slice())
            .json(r#"{"count":1}"#)
            .expect(400, &["`x-dstar-args` must be a JSON object"]),
        case("live event: a gzip-compressed body (request bodies are not decoded)")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("content-encoding", "gzip")
            .json(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\x05\x00")
            .expect(400, &["not valid UTF-8", "offset 1"]),
        // ---- the live event endpoint: method
        case("live event: GET")
            .get(EVENT)
            .expect(405, &["`/__dstar/event`", "POST", "GET"]),
        case("live event: PUT")
            .to("PUT", EVENT)
            .token(ev)
            .event("bump")
            .json("{}")
            .expect(405, &["`/__dstar/event`", "POST", "PUT"]),
        // ---- the stream endpoint
        case("stream: no token")
            .post(STREAM)
            .json("{}")
            .expect(401, &["stream refused: token missing"]),
        case("stream: a token that is not hex, of the right length")
            .post(STREAM)
            .token(&"z".repeat(138))
            .json("{}")
            .expect(401, &["stream refused: token malformed"]),
        case("stream: a truncated token")
            .post(STREAM)
            .token(&witness.stream[..100])
            .json("{}")
            .expect(401, &["stream refused: token malformed"]),
        case("stream: a token of 100 KB")
            .post(STREAM)
            .token(&"0".repeat(100 * 1024))
            .json("{}")
            .expect(401, &["stream refused: token malformed"]),
        case("stream: a token signed with another key")
            .post(STREAM)
            .token(&forger.sign(Purpose::Stream, witness.session(), WAIT))
            .json("{}")
            .expect(401, &["stream refused: token signature invalid"]),
        case("stream: the page's stream token with one digit changed")
            .post(STREAM)
            .token(&tampered(&witness.stream))
            .json("{}")
            .expect(401, &["stream refused: token signature invalid"]),
        case("stream: the event token")
            .post(STREAM)
            .token(ev)
            .json("{}")
            .expect(401, &["stream refused: token issued for another purpose"]),
        case("stream: the navigation token")
            .post(STREAM)
            .token(nav)
            .json("{}")
            .expect(401, &["stream refused: token issued for another purpose"]),
        case("stream: an expired token of a session that is gone, no Referer")
            .post(STREAM)
            .token(&expired(Purpose::Stream, nobody))
            .json("{}")
            .expect(200, &["window.location.reload()"]),
        case("stream: a session that is gone, with another site's Referer")
            .post(STREAM)
            .token(&keys.sign(Purpose::Stream, nobody, WAIT))
            .header("referer", "https://evil.example/room")
            .json("{}")
            .expect(200, &["window.location.reload()"])
            .without(&["evil"]),
        case("stream: GET")
            .get(STREAM)
            .token(&witness.stream)
            .expect(405, &["`/__dstar/stream`", "POST", "GET"]),
        // ---- the navigation endpoint: targets (with a valid token)
        case("nav: a javascript: URL")
            .post(NAV)
            .token(nav)
            .url("javascript:alert(1)")
            .expect(400, &["same-origin path", "javascript:alert(1)"]),
        case("nav: a protocol-relative URL")
            .post(NAV)
            .token(nav)
            .url("//evil.example/room")
            .expect(400, &["same-origin path", "//evil.example/room"]),
        case("nav: a slash-backslash URL")
            .post(NAV)
            .token(nav)
            .url(r"/\evil.example")
            .expect(400, &["same-origin path", r"/\\evil.example"]),
        case("nav: a backslash-backslash URL")
            .post(NAV)
            .token(nav)
            .url(r"\\evil.example")
            .expect(400, &["same-origin path"]),
        case("nav: an absolute URL to another site")
            .post(NAV)
            .token(nav)
            .url("https://evil.example/")
            .expect(400, &["same-origin path", "https://evil.example/"]),
        case("nav: a data: URL")
            .post(NAV)
            .token(nav)
            .url("data:text/html,<script>alert(1)</script>")
            .expect(400, &["same-origin path", "data:text/html"]),
        case("nav: a relative path")
            .post(NAV)
            .token(nav)
            .url("room")
            .expect(400, &["same-origin path", "got `room`"]),
        case("nav: no target")
            .post(NAV)
            .token(nav)
            .expect(400, &["same-origin path", "got ``"]),
        case("nav: a tab inside the target")
            .post(NAV)
            .token(nav)
            .url("/ro\tom")
            .expect(400, &["same-origin path", r"/ro\tom"]),
        case("nav: a target in Latin-1 bytes")
            .post(NAV)
            .token(nav)
            .header("x-dstar-url", b"/caf\xe9".as_slice())
            .expect(400, &["same-origin path", "got `\u{fffd}`"]),
        case("nav: a target in UTF-8 is a path of this site, loaded in full")
            .post(NAV)
            .token(nav)
            .url("/café")
            .expect(200, &[r#"{"load":"/café"}"#]),
        case("nav: a space inside the target")
            .post(NAV)
            .token(nav)
            .url("/ro om")
            .expect(400, &["the target is not a URI"]),
        case("nav: an encoded CRLF is a path, loaded in full, never a header")
            .post(NAV)
            .token(nav)
            .url("/a%0D%0ASet-Cookie:%20x=1")
            .expect(200, &[r#"{"load":"/a%0D%0ASet-Cookie:%20x=1"}"#]),
        case("nav: encoded slashes are a path of this site")
            .post(NAV)
            .token(nav)
            .url("/%2F%2Fevil.example")
            .expect(200, &[r#"{"load":"/%2F%2Fevil.example"}"#]),
        case("nav: a target whose page refuses to mount")
            .post(NAV)
            .token(nav)
            .url("/items/abc")
            .expect(404, &["no page at `/items/abc`"]),
        // ---- the navigation endpoint: tokens
        case("nav: no token")
            .post(NAV)
            .url("/room")
            .expect(403, &["navigation refused: token missing"]),
        case("nav: a token signed with another key")
            .post(NAV)
            .token(&forger.sign(Purpose::Navigation, victim.session(), WAIT))
            .url("/room")
            .expect(403, &["navigation refused: token signature invalid"]),
        case("nav: the navigation token with one digit changed")
            .post(NAV)
            .token(&tampered(nav))
            .url("/room")
            .expect(403, &["navigation refused: token signature invalid"]),
        case("nav: the event token")
            .post(NAV)
            .token(&victim.event)
            .url("/room")
            .expect(
                403,
                &["navigation refused: token issued for another purpose"],
            ),
        case("nav: an expired token loads the target in full")
            .post(NAV)
            .token(&expired(Purpose::Navigation, victim.session()))
            .url("/room")
            .expect(200, &[r#"{"load":"/room"}"#]),
        case("nav: GET")
            .get(NAV)
            .token(nav)
            .url("/room")
            .expect(405, &["`/__dstar/nav`", "POST", "GET"]),
        // ---- the stateless event POST
        case("stateless event: no token")
            .post("/form")
            .event("save")
            .json(r#"{"name":"a","age":1}"#)
            .expect(403, &["event refused: token missing", "x-dstar-token"]),
        case("stateless event: a token signed with another key")
            .post("/form")
            .token(&forger.sign(Purpose::Csrf, 0, WAIT))
            .event("save")
            .json(r#"{"name":"a","age":1}"#)
            .expect(403, &["token signature invalid"]),
        case("stateless event: the page's token with one digit changed")
            .post("/form")
            .token(&tampered(form_token))
            .event("save")
            .json(r#"{"name":"a","age":1}"#)
            .expect(403, &["token signature invalid"]),
        case("stateless event: an expired token")
            .post("/form")
            .token(&expired(Purpose::Csrf, 0))
            .event("save")
            .json(r#"{"name":"a","age":1}"#)
            .expect(403, &["token expired"]),
        case("stateless event: a live page's stream token")
            .post("/form")
            .token(&witness.stream)
            .event("save")
            .json(r#"{"name":"a","age":1}"#)
            .expect(403, &["token issued for another purpose"]),
        case("stateless event: no event header")
            .post("/form")
            .token(form_token)
            .json(r#"{"name":"a","age":1}"#)
            .expect(400, &["no `x-dstar-event` header"]),
        case("stateless event: an unknown event")
            .post("/form")
            .token(form_token)
            .event("delete_everything")
            .json("{}")
            .expect(404, &["unknown event `delete_everything`"]),
        case("stateless event: malformed JSON")
            .post("/form")
            .token(form_token)
            .event("save")
            .json(r#"{"name":"a","#)
            .expect(400, &["signals are not valid JSON"]),
        case("stateless event: a field of the wrong type")
            .post("/form")
            .token(form_token)
            .event("save")
            .json(r#"{"name":"a","age":"old"}"#)
            .expect(422, &["invalid signal `age`"]),
        case("stateless event: a number out of range")
            .post("/form")
            .token(form_token)
            .event("save")
            .json(r#"{"name":"a","age":300}"#)
            .expect(422, &["invalid signal `age`", "300"]),
        case("stateless event: a body over 1 MiB")
            .post("/form")
            .token(form_token)
            .event("save")
            .json(&big_json)
            .expect(413, &["larger than the limit"]),
        case("stateless event: invalid UTF-8")
            .post("/form")
            .token(form_token)
            .event("save")
            .json(b"{\"name\":\"\xc3\x28\",\"age\":1}")
            .expect(400, &["not valid UTF-8", "offset 9"]),
        case("stateless event: args that are not JSON")
            .post("/form")
            .token(form_token)
            .event("save")
            .header("x-dstar-args", "name=a")
            .json(r#"{"name":"a","age":1}"#)
            .expect(400, &["`x-dstar-args` must be a JSON object"]),
        case("stateless event: a form-encoded body")
            .post("/form")
            .token(form_token)
            .event("save")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=a&age=1")
            .expect(400, &["signals must be a JSON object"]),
        case("stateless event: PUT")
            .to("PUT", "/form")
            .token(form_token)
            .event("save")
            .json(r#"{"name":"a","age":1}"#)
            .expect(405, &[])
            .by(AnsweredBy::Axum("GET,HEAD,POST")),
        // ---- signals in `?datastar=` on GET
        case("GET signals: not JSON")
            .get("/search?datastar=not-json")
            .expect(
                400,
                &["signals must be a JSON object, got text that is not JSON"],
            )
            .by(AnsweredBy::App),
        case("GET signals: an array")
            .get("/search?datastar=%5B1%5D")
            .expect(400, &["got an array"])
            .by(AnsweredBy::App),
        case("GET signals: empty")
            .get("/search?datastar=")
            .expect(400, &["got nothing"])
            .by(AnsweredBy::App),
        case("GET signals: none at all, so required fields are missing")
            .get("/search")
            .expect(422, &["missing field `q`"])
            .by(AnsweredBy::App),
        case("GET signals: a field of the wrong type")
            .get("/search?datastar=%7B%22q%22%3A%22a%22%2C%22page%22%3A%22two%22%7D")
            .expect(422, &["invalid signal `page`"])
            .by(AnsweredBy::App),
        case("GET signals: a negative page")
            .get("/search?datastar=%7B%22q%22%3A%22a%22%2C%22page%22%3A-1%7D")
            .expect(422, &["invalid signal `page`"])
            .by(AnsweredBy::App),
        case("GET signals: over the route's limit")
            .get(format!(
                "/search?datastar=%7B%22q%22%3A%22{}%22%2C%22page%22%3A1%7D",
                "a".repeat(SEARCH_LIMIT)
            ))
            .expect(413, &["larger than the limit of 256 bytes"])
            .by(AnsweredBy::App),
        case("GET signals: invalid UTF-8, percent-encoded")
            .get("/search?datastar=%7B%22q%22%3A%22%FF%22%2C%22page%22%3A1%7D")
            .expect(400, &["not valid UTF-8"])
            .by(AnsweredBy::App),
        case("GET signals: malformed percent-encoding is taken as it is")
            .get("/search?datastar=%7B%22q%22%3A%22%ZZ%22%2C%22page%22%3A1%7D")
            .expect(200, &["%ZZ (page 1)"])
            .by(AnsweredBy::App),
        case("DELETE signals: a field of the wrong type")
            .to(
                "DELETE",
                "/search?datastar=%7B%22q%22%3A1%2C%22page%22%3A1%7D",
            )
            .expect(422, &["invalid signal `q`"])
            .by(AnsweredBy::App),
        case("a stateless page's GET ignores broken signals")
            .get("/form?datastar=%7Bbroken")
            .expect(200, &["save"])
            .by(AnsweredBy::App),
        case("a live page's path parameter that does not parse")
            .get("/items/abc")
            .expect(404, &["no page at `&#x2f;items&#x2f;abc`"])
            .by(AnsweredBy::App),
        // ---- requests hyper refuses before any handler
        case("a head over hyper's buffer (500 KB header)")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("x-padding", "p".repeat(500 * 1024))
            .json("{}")
            .expect(431, &[])
            .by(AnsweredBy::Hyper),
        case("more than 100 headers")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("x-many", many_headers(120))
            .json("{}")
            .expect(431, &[])
            .by(AnsweredBy::Hyper),
        case("a Content-Length that is not a number")
            .post(EVENT)
            .token(ev)
            .event("bump")
            .header("content-length", "abc")
            .body("{}")
            .expect(400, &[])
            .by(AnsweredBy::Hyper),
        case("a bare CR inside a header value")
            .post(NAV)
            .token(nav)
            .url("/room\rSet-Cookie: x=1")
            .expect(400, &[])
            .by(AnsweredBy::Hyper),
    ]
}

/// A header value that carries `n - 1` more header lines after it.
fn many_headers(n: usize) -> String {
    (1..n).fold(String::from("0"), |mut value, i| {
        value.push_str(&format!("\r\nx-many-{i}: {i}"));
        value
    })
}

async fn serve() -> (App, TestServer) {
    let app = App::builder()
        .secret_key(SECRET)
        .serve_config(ServeConfig {
            body_timeout: BODY_TIMEOUT,
            ..ServeConfig::default()
        })
        .build()
        .unwrap();
    let router = dstar::router![Room, Item, Form]
        .into_router(app.clone())
        .route(
            "/search",
            get(search)
                .delete(search)
                .layer(Extension(SignalsLimit(SEARCH_LIMIT))),
        );
    let server = TestServer::serve(&app, router).await;
    (app, server)
}

#[tokio::test]
async fn every_bad_request_gets_its_status_and_a_message_and_the_server_keeps_serving() {
    let (app, server) = serve().await;
    let mut witness = Witness::open(&server).await;
    let victim = Tab::open(&server).await;
    let form = server.get("/form", &[]).await;
    assert_eq!(form.status, 200);
    let form_token = token_after(form.text(), "x-dstar-token");

    let cases = matrix(&witness.tab, &victim, &form_token);
    assert!(cases.len() >= 60, "{} cases", cases.len());
    witness.round_trip(&server, "nothing yet").await;
    let mut failures = Vec::new();
    for case in &cases {
        let response = server
            .request_bytes(case.method, &case.path, &case.headers, case.body.as_deref())
            .await
            .unwrap_or_else(|err| panic!("`{}`: no answer: {err}", case.name));
        let problems = case.problems(&response);
        if !problems.is_empty() {
            failures.push(format!("`{}`: {}", case.name, problems.join("; ")));
        }
        witness.round_trip(&server, case.name).await;
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // The refusals started no session and left the witness and the victim running.
    assert!(app.sessions().handle(witness.tab.session()).is_some());
    assert!(app.sessions().handle(victim.session()).is_some());
    assert_eq!(app.sessions().len(), 2);
}
