//! The API a user coming from the seed libraries reaches for (issue 14), over real HTTP or
//! the in-process test client: template actions with fetch options and the CSRF token, events
//! aimed at another stateless page, initial signals from `mount`, kept signals, the
//! `connected` hook, a configurable root, custom SSE events and session snapshots.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use dstar::session::SessionHandle;
use dstar::sse::CustomEvent;
use dstar::test::TestClient;
use dstar::{App, Ctx, Html, Message, Mount, Templates, View};
use dstar_tests::{TestServer, token_after};
use serde::Deserialize;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Pages.

/// A stateless page: initial signals, actions with options, an event aimed at `Items`.
struct Home;

#[dstar::page("/", template = "home.html")]
impl Home {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        mount.signal("count", &3)?;
        mount.signal("label", "a \"quoted\" </div> & more")?;
        Ok(Home)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(())
    }
}

/// A stateless page with an event other pages aim at, which also sends a custom event.
struct Items;

#[derive(Deserialize)]
struct Saved {
    n: i64,
}

#[dstar::page("/items", template = "items.html")]
impl Items {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Items)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(())
    }

    #[event]
    async fn save(&mut self, cx: &mut Ctx<'_>, signals: Saved) -> dstar::Result<()> {
        cx.send_event(CustomEvent::new("saved", &format!("n={}\nok", signals.n)).id("s1"));
        cx.patch_signals(&json!({ "saved": signals.n }))
    }
}

/// A page whose template uses an option `post()` does not have.
struct BadOption;

#[dstar::page("/bad-option", template = "bad_option.html")]
impl BadOption {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(BadOption)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(())
    }
}

/// A page whose template aims an event at a live page.
struct AtLive;

#[dstar::page("/at-live", template = "at_live.html")]
impl AtLive {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(AtLive)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(())
    }
}

/// What the live page's hooks saw, shared with the test.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    sessions: Mutex<Vec<SessionHandle>>,
    last: Mutex<Vec<Option<serde_json::Value>>>,
}

/// A live page: initial signals, kept signals, the `connected` hook, custom events.
struct Board {
    count: i64,
    seen: Arc<Seen>,
}

#[dstar::page("/board", live, keep_signals, template = "board.html")]
impl Board {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        mount.signal("draft", "start")?;
        mount.subscribe("board");
        let seen = Arc::clone(mount.state::<Arc<Seen>>()?);
        if let Some(session) = mount.session() {
            seen.sessions.lock().unwrap().push(session.clone());
        }
        Ok(Board { count: 0, seen })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(json!({ "count": self.count }))
    }

    async fn connected(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        let n = self.seen.connections.fetch_add(1, Ordering::SeqCst) + 1;
        cx.patch_signals(&json!({ "connections": n }))
    }

    async fn info(&mut self, cx: &mut Ctx<'_>, _message: Message) -> dstar::Result<()> {
        let last: Option<serde_json::Value> = cx.last_signals()?;
        self.seen.last.lock().unwrap().push(last.clone());
        cx.patch_signals(&json!({ "echo": last.and_then(|s| s.get("draft").cloned()) }))
    }

    #[event]
    async fn bump(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        self.count += 1;
        cx.send_event(CustomEvent::new("bumped", &self.count.to_string()).id("ignored"));
        Ok(())
    }
}

fn templates() -> Templates {
    Templates::new()
        .with(
            "home.html",
            r#"<p id="count" data-text="$count">-</p>
<form id="f"><input name="q"></form>
<button id="search" data-on:click="{{ post('/api/search', {'contentType': 'form', 'selector': '#f', 'headers': {'X-Kind': 'search'}, 'retryMaxCount': 2}) }}">Search</button>
<button id="away" data-on:click="{{ get('https://example.com/x', {'openWhenHidden': true}, external=true) }}">Away</button>
<button id="save" data-on:click="{{ event('save', {'n': 7}, page='/items') }}">Save</button>
{% call link('/items', replace=true, attrs={'aria-label': 'All items'}) %}<b>Items</b> &amp; more{% endcall %}"#,
        )
        .with("items.html", "<p>items</p>")
        .with(
            "bad_option.html",
            r#"<button data-on:click="{{ post('/api/x', {'retryCount': 3}) }}">x</button>"#,
        )
        .with(
            "at_live.html",
            r#"<button data-on:click="{{ event('bump', page='/board') }}">x</button>"#,
        )
        .with(
            "board.html",
            r#"<p id="count">{{ count }}</p>
<button id="save" data-on:click="{{ event('save', {'n': 1}, page='/items') }}">Save</button>"#,
        )
}

fn app(root_id: Option<&str>) -> (App, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let mut builder = App::builder()
        .secret_key(b"api tests (a test key of 32+ bytes)")
        .templates(templates())
        .state(Arc::clone(&seen));
    if let Some(id) = root_id {
        builder = builder.root_id(id);
    }
    (builder.build().unwrap(), seen)
}

fn router(app: &App) -> axum::Router {
    let verify = app.clone();
    dstar::router![Home, Items, BadOption, AtLive, Board]
        .into_router(app.clone())
        .route(
            "/api/search",
            axum::routing::post(move |headers: HeaderMap| async move {
                match verify.verify_csrf(&headers) {
                    Ok(()) => (axum::http::StatusCode::OK, "searched".to_owned()),
                    Err(err) => (err.status(), err.message().to_owned()),
                }
            }),
        )
}

/// The value of attribute `name` on the element with id `id`, unescaped.
fn attribute(html: &str, id: &str, name: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{html}"));
    let rest = &html[at..];
    let start = rest
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("#{id} has no {name}:\n{rest}"))
        + name.len()
        + 2;
    let value = &rest[start..start + rest[start..].find('"').unwrap()];
    value
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

// ---------------------------------------------------------------------------------------------
// Actions with options and the CSRF token.

#[tokio::test]
async fn actions_carry_their_options_and_the_token_an_app_route_checks() {
    let (app, _) = app(None);
    let server = TestServer::start(router(&app)).await;
    let page = server.get("/", &[]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let search = attribute(html, "search", "data-on:click");
    assert!(
        search.starts_with(r#"@post("/api/search", {headers: {'x-dstar-token': ""#),
        "{search}"
    );
    assert!(
        search.ends_with(
            r##"", "X-Kind": "search"}, contentType: "form", retryMaxCount: 2, selector: "#f"})"##
        ),
        "{search}"
    );
    // Another site gets its options but never the token.
    assert_eq!(
        attribute(html, "away", "data-on:click"),
        r#"@get("https://example.com/x", {openWhenHidden: true})"#
    );

    let token = token_after(&search, "x-dstar-token");
    let ok = server
        .post("/api/search", &[("x-dstar-token", &token)], b"q=1")
        .await;
    assert_eq!((ok.status, ok.text()), (200, "searched"));
    let forged = server
        .post("/api/search", &[("x-dstar-token", "00ff")], b"q=1")
        .await;
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert!(forged.text().contains("x-dstar-token"), "{}", forged.text());
    let missing = server.post("/api/search", &[], b"q=1").await;
    assert_eq!(missing.status, 403, "{}", missing.text());
}

#[tokio::test]
async fn an_unknown_action_option_fails_the_render_naming_it() {
    let (app, _) = app(None);
    let server = TestServer::start(router(&app)).await;
    let page = server.get("/bad-option", &[]).await;
    assert_eq!(page.status, 500);
    // Debug builds show a 500's message on the error page.
    assert!(
        page.text().contains("has no option `retryCount`"),
        "{}",
        page.text()
    );
}

#[tokio::test]
async fn links_take_html_content_and_options() {
    let (app, _) = app(None);
    let server = TestServer::start(router(&app)).await;
    let html = server.get("/", &[]).await.text().to_owned();
    let start = html.find("<a href=\"/items\"").expect("the link");
    let link = &html[start..start + html[start..].find("</a>").unwrap() + 4];
    assert!(link.contains(r#"aria-label="All items""#), "{link}");
    assert!(
        link.contains("window.__dstarNav(&quot;/items&quot;, &quot;replace&quot;)"),
        "{link}"
    );
    assert!(link.ends_with("><b>Items</b> &amp; more</a>"), "{link}");
}

// ---------------------------------------------------------------------------------------------
// Events aimed at another page.

#[tokio::test]
async fn an_event_aimed_at_another_stateless_page_reaches_its_handler() {
    let (app, _) = app(None);
    let server = TestServer::start(router(&app)).await;
    for from in ["/", "/board"] {
        let html = server.get(from, &[]).await.text().to_owned();
        let action = attribute(&html, "save", "data-on:click");
        assert!(
            action.starts_with(
                r#"@post("/items", {headers: {'x-dstar-event': "save", 'x-dstar-token': "#
            ),
            "{from}: {action}"
        );
        assert!(!action.contains("x-dstar-click"), "{from}: {action}");
        // A stateless page's token is inline; a live page's is its token signal.
        let token = if from == "/" {
            token_after(&action, "x-dstar-token")
        } else {
            token_after(&html, "_dstarToken")
        };
        let answer = server
            .post(
                "/items",
                &[
                    ("x-dstar-token", &token),
                    ("x-dstar-event", "save"),
                    ("x-dstar-args", r#"{"n":7}"#),
                    ("content-type", "application/json"),
                ],
                b"{}",
            )
            .await;
        assert_eq!(answer.status, 200, "{from}: {}", answer.text());
        assert_eq!(
            answer.text(),
            "event: saved\nid: s1\ndata: n=7\ndata: ok\n\n\
             event: datastar-patch-signals\ndata: signals {\"saved\":7}\n\n",
            "{from}"
        );
        // Still CSRF protected.
        let forged = server
            .post(
                "/items",
                &[("x-dstar-token", "00"), ("x-dstar-event", "save")],
                b"{\"n\":1}",
            )
            .await;
        assert_eq!(forged.status, 403, "{from}");
    }
}

#[tokio::test]
async fn an_event_aimed_at_a_live_page_is_refused_with_the_reason() {
    let (app, _) = app(None);
    let server = TestServer::start(router(&app)).await;
    let page = server.get("/at-live", &[]).await;
    assert_eq!(page.status, 500);
    assert!(
        page.text()
            .contains("`Board` is a live page, and a live page takes events only from its own tab"),
        "{}",
        page.text()
    );
}

// ---------------------------------------------------------------------------------------------
// Initial signals, kept signals, `connected`, snapshots, custom events on a stream.

#[tokio::test]
async fn mount_signals_reach_the_root_of_stateless_and_live_pages() {
    let (app, _) = app(None);
    let client = TestClient::new(router(&app)).with_timeout(WAIT);
    let home = client.get("/").await.unwrap();
    home.assert_signal("count", 3);
    home.assert_signal("label", "a \"quoted\" </div> & more");
    assert!(
        home.html()
            .contains(r#"<div id="dstar-root" data-signals="{&quot;count&quot;:3,"#),
        "{}",
        home.html()
    );
    let board = client.get("/board").await.unwrap();
    board.assert_signal("draft", "start");
    // Beside the live page's own token signals.
    assert!(board.signal("_dstarToken").is_some_and(|t| t.is_string()));
    assert!(board.signal("_dstarStream").is_some_and(|t| t.is_string()));
}

#[tokio::test]
async fn connected_runs_on_each_attach_and_its_patches_go_down_that_stream() {
    let (app, seen) = app(None);
    let server = TestServer::start(router(&app)).await;
    let html = server.get("/board", &[]).await.text().to_owned();
    let stream_token = token_after(&html, "_dstarStream");
    let headers = [("x-dstar-token", stream_token.as_str())];
    for (attach, last_event_id) in [(1, None), (2, Some("1")), (3, Some("2"))] {
        let mut headers = headers.to_vec();
        if let Some(id) = last_event_id {
            headers.push(("last-event-id", id));
        }
        let mut stream = server
            .open_sse("POST", "/__dstar/stream", &headers, Some(b"{}"))
            .await
            .unwrap();
        assert_eq!(stream.status, 200);
        let event = stream.expect_event(WAIT).await;
        assert_eq!(event.event.as_deref(), Some("datastar-patch-signals"));
        assert_eq!(
            event.value("signals").as_deref(),
            Some(format!("{{\"connections\":{attach}}}").as_str()),
            "attach {attach}"
        );
        assert_eq!(event.id.as_deref(), Some(attach.to_string().as_str()));
        assert_eq!(seen.connections.load(Ordering::SeqCst), attach);
        // The next stream of the tab replaces this one whether or not the session has seen it
        // drop yet: either way it is an attach, and `connected` runs again.
        drop(stream);
    }
}

#[tokio::test]
async fn kept_signals_snapshots_and_custom_events_on_a_live_page() {
    let (app, seen) = app(None);
    let client = TestClient::new(router(&app)).with_timeout(WAIT);
    let mut board = client.get("/board").await.unwrap();
    board.assert_signal("connections", 1);
    let session = seen.sessions.lock().unwrap()[0].clone();
    let before = session.snapshot().await.unwrap();
    assert!(
        before.html.contains(r#"<p id="count">0</p>"#),
        "{}",
        before.html
    );
    assert_eq!(before.url, "/board");
    assert_eq!(before.signals, None, "no event yet");

    board
        .event("bump", json!({ "draft": "hello" }))
        .await
        .unwrap();
    board.assert_text("#count", "1");
    let after = session.snapshot().await.unwrap();
    assert!(
        after.html.contains(r#"<p id="count">1</p>"#),
        "{}",
        after.html
    );
    let kept = after
        .signals
        .expect("keep_signals keeps the event's signals");
    assert_eq!(kept["draft"], "hello");

    // `info` reads them.
    app.pubsub().publish("board", Message::new(()));
    board.next_update().await.unwrap();
    board.assert_signal("echo", "hello");
    assert_eq!(
        seen.last.lock().unwrap()[0]
            .as_ref()
            .map(|s| s["draft"].clone()),
        Some(json!("hello"))
    );
}

#[tokio::test]
async fn a_custom_event_goes_down_the_live_stream_numbered_by_the_session() {
    let (app, _) = app(None);
    let server = TestServer::start(router(&app)).await;
    let html = server.get("/board", &[]).await.text().to_owned();
    let stream_token = token_after(&html, "_dstarStream");
    let event_token = token_after(&html, "_dstarToken");
    let mut stream = server
        .open_sse(
            "POST",
            "/__dstar/stream",
            &[("x-dstar-token", &stream_token)],
            Some(b"{}"),
        )
        .await
        .unwrap();
    let connected = stream.expect_event(WAIT).await;
    assert_eq!(connected.id.as_deref(), Some("1"));
    let answer = server
        .post(
            "/__dstar/event",
            &[
                ("x-dstar-token", &event_token),
                ("x-dstar-event", "bump"),
                ("content-type", "application/json"),
            ],
            b"{}",
        )
        .await;
    // A live event's patches go down the stream; its answer is empty.
    assert_eq!(answer.status, 204, "{}", answer.text());
    let custom = stream.expect_event(WAIT).await;
    assert_eq!(custom.event.as_deref(), Some("bumped"));
    assert_eq!(custom.data, ["1"]);
    // The session's own numbering, not the handler's id.
    assert_eq!(custom.id.as_deref(), Some("2"));
}

#[tokio::test]
async fn a_snapshot_of_an_ended_session_says_so() {
    let (app, seen) = app(None);
    let client = TestClient::new(router(&app)).with_timeout(WAIT);
    drop(client.get("/board").await.unwrap());
    let session = seen.sessions.lock().unwrap()[0].clone();
    app.sessions().shutdown(WAIT).await;
    let err = session.snapshot().await.unwrap_err();
    assert_eq!(err.status(), 503, "{}", err.message());
}

// ---------------------------------------------------------------------------------------------
// The root element.

#[tokio::test]
async fn the_root_id_is_configurable_and_every_render_patches_it() {
    let (app, _) = app(Some("app"));
    let client = TestClient::new(router(&app)).with_timeout(WAIT);
    let mut board = client.get("/board").await.unwrap();
    assert!(
        board.html().contains(r#"<div id="app" data-signals="#),
        "{}",
        board.html()
    );
    assert!(!board.html().contains("dstar-root"), "{}", board.html());
    board.click("bump").await.unwrap();
    // The re-render replaced the content of `#app` (a patch aimed elsewhere would fail).
    board.assert_text("#app #count", "1");

    let server = TestServer::start(router(&app)).await;
    let home = server.get("/", &[]).await;
    assert!(home.text().contains(r#"<div id="app" data-signals="#));

    for bad in ["", "1app", "a b", "x\"y", "app#"] {
        let err = App::builder()
            .secret_key(b"api tests (a test key of 32+ bytes)")
            .root_id(bad)
            .build()
            .unwrap_err();
        assert!(err.to_string().starts_with("root id `"), "{bad}: {err}");
    }
}

#[tokio::test]
async fn connected_runs_for_a_session_re_mounted_in_place() {
    // A restart: a second server with the same key, where the tab's session is gone.
    let (before, _) = app(None);
    let first = TestServer::start(router(&before)).await;
    let html = first.get("/board", &[]).await.text().to_owned();
    let stream_token = token_after(&html, "_dstarStream");
    let (after, seen) = app(None);
    let second = TestServer::start(router(&after)).await;
    let referer = format!("http://{}/board", second.addr());
    let mut stream = second
        .open_sse(
            "POST",
            "/__dstar/stream",
            &[("x-dstar-token", &stream_token), ("referer", &referer)],
            Some(b"{}"),
        )
        .await
        .unwrap();
    assert_eq!(stream.status, 200);
    // The re-mount's batch (tokens, navigation token, full render), then `connected`'s patch.
    let mut last = None;
    for _ in 0..4 {
        last = Some(stream.expect_event(WAIT).await);
    }
    let connected = last.unwrap();
    assert_eq!(connected.event.as_deref(), Some("datastar-patch-signals"));
    assert_eq!(
        connected.value("signals").as_deref(),
        Some(r#"{"connections":1}"#)
    );
    assert_eq!(connected.id.as_deref(), Some("4"));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}
