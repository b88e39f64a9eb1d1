//! A dstar router mounted under a prefix (`Router::new().nest("/app", router)`), over real
//! HTTP and SSE: the page, its stream, its events (live and stateless), soft navigation, the
//! template helpers and redirects all resolve under `/app`, and nothing the browser is told to
//! ask for lands at the root (the outer router records every request that does).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use dstar::test::sse::SseEvent;
use dstar::{App, Ctx, Event, Html, Mount, Page, Route, View};
use dstar_tests::{SseStream, TestServer, token_after};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

/// What a page template writes: an event, a link, a navigation button and an action to one of
/// the app's own routes, each given as an app path.
const HELPERS: &str = r#"<button id="plus" data-on:click="{{ event('increment') }}">+1</button>
{{ link('/items/3', 'Item 3') }}
<button data-on:click="{{ navigate('/') }}">home</button>
<button data-on:click="{{ get('/api/ping') }}">ping</button>
<p id="url">{{ dstar.url }}</p>"#;

/// A stateless page: its events post to its own URL.
struct Counter;

impl Page for Counter {
    const ROUTE: Route =
        Route::new("Counter", "/counter", file!(), line!()).events(&["increment", "leave"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Counter)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(HELPERS, ())
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "increment" => cx.patch_signals(&json!({ "count": 1 })),
            "leave" => cx.redirect("/login"),
            _ => Err(event.unknown()),
        }
    }
}

/// A live page that says where it is, redirects and changes its query.
struct Home;

impl Page for Home {
    const ROUTE: Route = Route::new("Home", "/", file!(), line!())
        .events(&["where", "leave", "page2"])
        .live()
        .group("main");

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(HELPERS, ())
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "where" => {
                cx.skip_render();
                cx.patch_signals(&json!({ "at": "home" }))
            }
            "leave" => {
                cx.skip_render();
                Err(dstar::Error::redirect("/login?next=/"))
            }
            "page2" => {
                cx.push_query("page=2");
                Ok(())
            }
            _ => Err(event.unknown()),
        }
    }
}

/// A live page of the same group, mounted with its path parameter.
struct Item {
    id: u32,
}

impl Page for Item {
    const ROUTE: Route = Route::new("Item", "/items/{id}", file!(), line!())
        .events(&["where"])
        .live()
        .group("main");

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        if mount.query_param("denied").is_some() {
            return Err(dstar::Error::redirect("/login"));
        }
        Ok(Item {
            id: mount.param_as("id")?,
        })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            "<h1>item {{ id }}</h1>{{ link('/', 'Home') }}",
            json!({ "id": self.id }),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, _event: Event<'_>) -> dstar::Result<()> {
        cx.skip_render();
        cx.patch_signals(&json!({ "at": format!("item {}", self.id) }))
    }
}

/// A live page whose mount always redirects.
struct Guarded;

impl Page for Guarded {
    const ROUTE: Route = Route::new("Guarded", "/guarded", file!(), line!())
        .live()
        .group("main");

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Err(dstar::Error::redirect("/login"))
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }
}

/// The dstar router nested under `prefix`; every request the outer router does not route into
/// it is recorded in `outside` (and answered 404).
async fn serve(prefix: &str) -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let layout = r#"<html><head><title>{{ title }}</title>{{ head }}</head>
<body><nav id="nav">{{ link("/counter", "Counter") }}</nav>{{ body }}</body></html>"#;
    let app = App::builder()
        .secret_key(b"prefix tests (a test key of 32+ bytes)")
        .templates(dstar::Templates::new().with("dstar/layout.html", layout))
        .build()
        .unwrap();
    let pages = dstar::router![Counter, Home, Item, Guarded].into_router(app);
    let outside = Arc::new(Mutex::new(Vec::new()));
    let record = outside.clone();
    let router = Router::new()
        .nest(prefix, pages)
        .fallback(move |req: Request| {
            record
                .lock()
                .unwrap()
                .push(format!("{} {}", req.method(), req.uri()));
            async { StatusCode::NOT_FOUND }
        });
    (TestServer::start(router).await, outside)
}

/// `html` with the entities minijinja writes in attributes decoded, so assertions read like the
/// attribute values the browser sees.
fn attributes(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// Asserts every internal path in `text` is under `prefix`.
fn assert_internal_paths_under(prefix: &str, text: &str) {
    let mut at = 0;
    while let Some(found) = text[at..].find("/__dstar/") {
        let start = at + found;
        assert!(
            text[..start].ends_with(prefix),
            "`/__dstar/` outside `{prefix}` at byte {start}:\n{text}"
        );
        at = start + 1;
    }
}

fn script(event: &SseEvent) -> String {
    assert_eq!(
        event.value("selector").as_deref(),
        Some("body"),
        "{event:?}"
    );
    event.value("elements").unwrap()
}

struct Tab {
    stream: SseStream,
    event: String,
    nav: String,
}

async fn open_live(server: &TestServer, path: &str) -> Tab {
    let page = server.get(path, &[]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let raw = page.text();
    let html = &attributes(raw);
    assert!(
        html.contains(r#""stream":"/app/__dstar/stream""#)
            && html.contains(r#""pause":"/app/__dstar/pause""#),
        "the stream opens and pauses under the prefix:\n{html}"
    );
    assert!(
        html.contains(r#"fetch("/app/__dstar/nav""#),
        "navigation posts under the prefix:\n{html}"
    );
    assert!(
        html.contains(r#"@post("/app/__dstar/event""#),
        "events post under the prefix:\n{html}"
    );
    assert_internal_paths_under("/app", html);
    let stream = server
        .open_sse(
            "POST",
            "/app/__dstar/stream",
            &[("x-dstar-token", &token_after(raw, "_dstarStream"))],
            Some(b"{}"),
        )
        .await
        .unwrap();
    assert_eq!(stream.status, 200);
    Tab {
        stream,
        event: token_after(raw, "_dstarToken"),
        nav: token_after(raw, "d.nav"),
    }
}

async fn live_event(server: &TestServer, tab: &Tab, name: &str) {
    let reply = server
        .post(
            "/app/__dstar/event",
            &[("x-dstar-token", &tab.event), ("x-dstar-event", name)],
            b"{}",
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text());
}

async fn where_am_i(server: &TestServer, tab: &mut Tab) -> String {
    live_event(server, tab, "where").await;
    let event = tab.stream.expect_event(WAIT).await;
    let signals: serde_json::Value =
        serde_json::from_str(&event.value("signals").unwrap()).unwrap();
    signals["at"].as_str().unwrap().to_owned()
}

async fn navigate(server: &TestServer, tab: &Tab, url: &str) -> dstar_tests::Response {
    server
        .post(
            "/app/__dstar/nav",
            &[("x-dstar-token", &tab.nav), ("x-dstar-url", url)],
            b"",
        )
        .await
}

#[tokio::test]
async fn a_stateless_page_posts_its_events_and_helpers_under_the_prefix() {
    let (server, outside) = serve("/app").await;
    let page = server.get("/app/counter?x=1", &[]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = &attributes(page.text());
    assert!(
        html.contains(r#"@post("/app/counter?x=1""#),
        "the event goes to the page's URL as the browser sees it:\n{html}"
    );
    assert!(html.contains(r#"<a href="/app/items/3""#), "{html}");
    assert!(
        html.contains(r#"<nav id="nav"><a href="/app/counter""#),
        "the layout's helpers are under the prefix too: {html}"
    );
    assert!(html.contains(r#"__dstarNav("/app/items/3")"#), "{html}");
    assert!(html.contains(r#"__dstarNav("/app")"#), "{html}");
    // An action to the app's own route carries the page's token.
    assert!(
        html.contains(r#"@get("/app/api/ping", {headers: {'x-dstar-token': ""#),
        "{html}"
    );

    let token = token_after(page.text(), "x-dstar-token");
    let send = |event: &'static str| {
        let headers = [("x-dstar-token", token.as_str()), ("x-dstar-event", event)];
        let server = &server;
        async move { server.post("/app/counter?x=1", &headers, b"{}").await }
    };
    let reply = send("increment").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply.text().contains(r#"signals {"count":1}"#),
        "{}",
        reply.text()
    );

    let reply = send("leave").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply
            .text()
            .contains(r#"window.location.assign("/app/login")"#),
        "a redirect goes to the app path under the prefix: {}",
        reply.text()
    );
    assert_eq!(*outside.lock().unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_live_page_streams_takes_events_and_navigates_under_the_prefix() {
    let (server, outside) = serve("/app").await;
    // `/app` itself is the nested router's `/` (axum's `nest` does not route `/app/`).
    let mut tab = open_live(&server, "/app").await;
    assert_eq!(where_am_i(&server, &mut tab).await, "home");
    let home = attributes(server.get("/app?a=1", &[]).await.text());
    assert!(
        home.contains(r#"<p id="url">/app?a=1</p>"#),
        "the page's URL is the one the browser shows: {home}"
    );

    let reply = navigate(&server, &tab, "/app/items/3?sort=name").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let signals = tab.stream.expect_event(WAIT).await;
    assert_eq!(signals.event.as_deref(), Some("datastar-patch-signals"));
    let body = tab.stream.expect_event(WAIT).await;
    let elements = body.value("elements").unwrap();
    assert!(elements.starts_with("<h1>item 3</h1>"), "{elements}");
    assert!(
        elements.contains(r#"<a href="/app""#),
        "the new page's links are under the prefix: {elements}"
    );
    let after = script(&tab.stream.expect_event(WAIT).await);
    assert!(
        after.contains(r#"pushState({dstar: true}, '', "/app/items/3?sort=name")"#),
        "the history entry keeps the prefix: {after}"
    );
    tab.nav = token_after(&after, "window.__dstar.nav");
    assert_eq!(where_am_i(&server, &mut tab).await, "item 3");

    // Outside the prefix, or not a live page of the group: a full load of the URL as given.
    for target in ["/items/3", "/application", "/app/counter", "/app/nothing"] {
        let reply = navigate(&server, &tab, target).await;
        assert_eq!(reply.status, 200, "{target}: {}", reply.text());
        let answer: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(answer["load"], target);
    }

    // A mount that redirects during navigation sends the browser under the prefix.
    let reply = navigate(&server, &tab, "/app/items/4?denied=1").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let redirect = script(&tab.stream.expect_event(WAIT).await);
    assert!(redirect.contains(r#"assign("/app/login")"#), "{redirect}");

    // Back to home: its events, redirects and query changes.
    let reply = navigate(&server, &tab, "/app").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    tab.stream.expect_event(WAIT).await;
    tab.stream.expect_event(WAIT).await;
    let after = script(&tab.stream.expect_event(WAIT).await);
    assert!(after.contains(r#"'', "/app")"#), "{after}");
    tab.nav = token_after(&after, "window.__dstar.nav");
    assert_eq!(where_am_i(&server, &mut tab).await, "home");

    live_event(&server, &tab, "leave").await;
    let redirect = script(&tab.stream.expect_event(WAIT).await);
    assert!(
        redirect.contains(r#"assign("/app/login?next=/")"#),
        "{redirect}"
    );

    live_event(&server, &tab, "page2").await;
    let query = script(&tab.stream.expect_event(WAIT).await);
    assert!(
        query.contains(r#"window.location.pathname + "?page=2""#),
        "{query}"
    );
    let render = tab.stream.expect_event(WAIT).await;
    let elements = attributes(&render.value("elements").unwrap());
    assert!(
        elements.contains(r#"<p id="url">/app?page=2</p>"#),
        "the re-render sees the page's URL with the prefix: {elements}"
    );
    assert_internal_paths_under("/app", &elements);

    assert_eq!(*outside.lock().unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_page_load_redirect_goes_under_the_prefix() {
    let (server, outside) = serve("/app").await;
    let reply = server.get("/app/guarded", &[]).await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), Some("/app/login"));
    assert_eq!(*outside.lock().unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn the_root_serves_nothing_of_a_nested_router() {
    let (server, outside) = serve("/app").await;
    for (method, path) in [
        ("GET", "/counter"),
        ("POST", "/__dstar/stream"),
        ("POST", "/__dstar/event"),
        ("POST", "/__dstar/nav"),
    ] {
        let reply = server
            .request(method, path, &[], Some(b"{}"))
            .await
            .unwrap();
        assert_eq!(reply.status, 404, "{method} {path}");
    }
    assert_eq!(outside.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_prefix_with_a_parameter_is_the_one_the_request_named() {
    let (server, outside) = serve("/t/{tenant}").await;
    let page = server.get("/t/acme/counter", &[]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = attributes(page.text());
    assert!(html.contains(r#"@post("/t/acme/counter""#), "{html}");
    let live = server.get("/t/acme", &[]).await;
    assert_eq!(live.status, 200);
    let html = attributes(live.text());
    assert!(
        html.contains(r#""stream":"/t/acme/__dstar/stream""#),
        "{html}"
    );
    assert_internal_paths_under("/t/acme", &html);
    assert_eq!(*outside.lock().unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn the_test_client_drives_a_nested_router() {
    let app = App::builder()
        .secret_key(b"prefix tests (a test key of 32+ bytes)")
        .build()
        .unwrap();
    let pages = dstar::router![Counter, Home, Item, Guarded].into_router(app);
    let client = dstar::test::TestClient::new(Router::new().nest("/app", pages));

    let mut counter = client.get("/app/counter").await.unwrap();
    counter.click_on("#plus").await.unwrap();
    counter.assert_signal("count", 1);

    let mut tab = client.get("/app").await.unwrap();
    assert!(tab.is_live());
    tab.event("where", json!({})).await.unwrap();
    tab.assert_signal("at", "home");
    tab.click_on(r#"a[href="/app/items/3"]"#).await.unwrap();
    tab.assert_url("/app/items/3");
    tab.assert_text("h1", "item 3");
    tab.event("where", json!({})).await.unwrap();
    tab.assert_signal("at", "item 3");
}
