//! Soft navigation over real HTTP and SSE: authorization runs again, query strings are kept,
//! title and history are updated, and everything that may not soft-navigate falls back to a
//! full page load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dstar::test::sse::SseEvent;
use dstar::token::{Keys, Purpose};
use dstar::{App, Ctx, Event, Html, Mount, Page, Route, View};
use dstar_tests::{SseStream, TestServer, token_after};

const WAIT: Duration = Duration::from_secs(5);
const SECRET: &[u8] = b"nav tests (a test key of 32+ bytes)";

static HOME_TERMINATED: AtomicUsize = AtomicUsize::new(0);

const fn route(name: &'static str, path: &'static str, live: bool, group: &'static str) -> Route {
    let route = Route::new(name, path, file!(), line!()).events(&["where"]);
    if live {
        route.live().group(group)
    } else {
        route
    }
}

struct Home;

impl Page for Home {
    const ROUTE: Route = route("Home", "/", true, "main");

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from("<h1>home</h1>"))
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        cx.skip_render();
        cx.patch_signals(&serde_json::json!({ "at": "home", "event": event.name() }))
    }

    async fn terminate(&mut self) {
        HOME_TERMINATED.fetch_add(1, Ordering::SeqCst);
    }
}

/// A page only users with `x-user: ok` may see; it shows its path parameter and query.
struct Private {
    id: u32,
    sort: String,
}

impl Page for Private {
    const ROUTE: Route = route("Private", "/items/{id}", true, "main");

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        if mount.header("x-user") != Some("ok") {
            return Err(dstar::Error::forbidden("sign in first"));
        }
        mount.set_title(format!("Item {}", mount.param("id").unwrap_or("?")));
        Ok(Private {
            id: mount.param_as("id")?,
            sort: mount.query_param("sort").unwrap_or_default(),
        })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!(
            "<h1>item {} sorted by {}</h1>",
            self.id, self.sort
        )))
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, _event: Event<'_>) -> dstar::Result<()> {
        cx.skip_render();
        cx.patch_signals(&serde_json::json!({ "at": "item" }))
    }
}

struct Elsewhere;

impl Page for Elsewhere {
    const ROUTE: Route = route("Elsewhere", "/elsewhere", true, "other");

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Elsewhere)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from("elsewhere"))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }
}

struct Plain;

impl Page for Plain {
    const ROUTE: Route = route("Plain", "/plain", false, "default");

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Plain)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from("plain"))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }
}

struct Tab {
    nav: String,
    event: String,
    stream: SseStream,
}

async fn start() -> (App, TestServer, Tab) {
    start_with(App::builder().secret_key(SECRET)).await
}

async fn start_with(builder: dstar::app::AppBuilder) -> (App, TestServer, Tab) {
    let app = builder.build().unwrap();
    let router = dstar::router![Home, Private, Elsewhere, Plain].into_router(app.clone());
    let server = TestServer::start(router).await;
    let page = server.get("/", &[]).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("window.__dstarNav"),
        "live pages carry the navigation script"
    );
    let stream_token = token_after(html, "_dstarStream");
    let stream = server
        .open_sse(
            "POST",
            "/__dstar/stream",
            &[("x-dstar-token", &stream_token)],
            Some(b"{}"),
        )
        .await
        .unwrap();
    let tab = Tab {
        nav: token_after(html, "d.nav"),
        event: token_after(html, "_dstarToken"),
        stream,
    };
    (app, server, tab)
}

async fn navigate(
    server: &TestServer,
    token: &str,
    url: &str,
    extra: &[(&str, &str)],
) -> dstar_tests::Response {
    let mut headers = vec![("x-dstar-token", token), ("x-dstar-url", url)];
    headers.extend_from_slice(extra);
    server.post("/__dstar/nav", &headers, b"").await
}

async fn where_am_i(server: &TestServer, tab: &mut Tab) -> String {
    let reply = server
        .post(
            "/__dstar/event",
            &[("x-dstar-token", &tab.event), ("x-dstar-event", "where")],
            b"{}",
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let event = tab.stream.expect_event(WAIT).await;
    let signals: serde_json::Value =
        serde_json::from_str(&event.value("signals").unwrap()).unwrap();
    signals["at"].as_str().unwrap().to_owned()
}

fn script(event: &SseEvent) -> String {
    assert_eq!(
        event.value("selector").as_deref(),
        Some("body"),
        "{event:?}"
    );
    event.value("elements").unwrap()
}

#[tokio::test]
async fn the_title_after_navigation_goes_through_the_layout() {
    let layout = "<!doctype html><html><head><title>{{ title }} · My &amp; App</title>{{ head }}\
                  </head><body>{{ body }}</body></html>";
    let builder = App::builder()
        .secret_key(SECRET)
        .templates(dstar::Templates::new().with("layout.html", layout))
        .layout("layout.html");
    let (_app, server, mut tab) = start_with(builder).await;
    let full = server.get("/items/7", &[("x-user", "ok")]).await;
    assert!(
        full.text().contains("<title>Item 7 · My &amp; App</title>"),
        "{}",
        full.text()
    );
    let reply = navigate(&server, &tab.nav, "/items/7", &[("x-user", "ok")]).await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    tab.stream.expect_event(WAIT).await;
    tab.stream.expect_event(WAIT).await;
    let after = script(&tab.stream.expect_event(WAIT).await);
    assert!(
        after.contains(r#"document.title = "Item 7 · My \u0026 App""#),
        "the same title as a full load: {after}"
    );
}

#[tokio::test]
async fn the_layout_sees_the_apps_values_for_each_request() {
    let layout = "<!doctype html><html><head><title>{{ title }} · {{ app.site }}</title>{{ head }}\
                  </head><body><header>{{ app.user }}</header>{{ body }}</body></html>";
    let builder = App::builder()
        .secret_key(SECRET)
        .templates(dstar::Templates::new().with("layout.html", layout))
        .layout("layout.html")
        .layout_values(|request: &dstar::http::request::Parts| {
            let user = request.headers.get("x-user").and_then(|v| v.to_str().ok());
            serde_json::json!({ "site": "Shop", "user": user.unwrap_or("nobody") })
        });
    let (_app, server, mut tab) = start_with(builder).await;
    let full = server.get("/items/7", &[("x-user", "ok")]).await;
    assert!(
        full.text().contains("<title>Item 7 · Shop</title>")
            && full.text().contains("<header>ok</header>"),
        "{}",
        full.text()
    );
    let reply = navigate(&server, &tab.nav, "/items/7", &[("x-user", "ok")]).await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    tab.stream.expect_event(WAIT).await;
    tab.stream.expect_event(WAIT).await;
    let after = script(&tab.stream.expect_event(WAIT).await);
    assert!(
        after.contains(r#"document.title = "Item 7 · Shop""#),
        "soft navigation's title has the app's values too: {after}"
    );
}

#[tokio::test]
async fn navigation_mounts_the_target_with_params_and_query_and_updates_title_and_history() {
    let (app, server, mut tab) = start().await;
    let before = HOME_TERMINATED.load(Ordering::SeqCst);
    let reply = navigate(&server, &tab.nav, "/items/7?sort=name", &[("x-user", "ok")]).await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(
        HOME_TERMINATED.load(Ordering::SeqCst),
        before + 1,
        "the old page's terminate ran"
    );

    let signals = tab.stream.expect_event(WAIT).await;
    assert_eq!(signals.event.as_deref(), Some("datastar-patch-signals"));
    let fresh: serde_json::Value =
        serde_json::from_str(&signals.value("signals").unwrap()).unwrap();
    assert!(fresh["_dstarToken"].is_string());

    let body = tab.stream.expect_event(WAIT).await;
    assert_eq!(body.value("selector").as_deref(), Some("#dstar-root"));
    assert_eq!(
        body.value("elements").as_deref(),
        Some("<h1>item 7 sorted by name</h1>")
    );

    let after = script(&tab.stream.expect_event(WAIT).await);
    assert!(after.contains(r#"document.title = "Item 7""#), "{after}");
    assert!(
        after.contains(r#"window.history.pushState({dstar: true}, '', "/items/7?sort=name")"#),
        "{after}"
    );
    let new_nav = token_after(&after, "window.__dstar.nav");
    assert_ne!(new_nav, tab.nav, "a fresh navigation token comes with it");
    let old_claims = app.keys().verify(&tab.nav, Purpose::Navigation).unwrap();
    let new_claims = app.keys().verify(&new_nav, Purpose::Navigation).unwrap();
    assert_eq!(
        new_claims.session, old_claims.session,
        "for the same session"
    );
    assert!(
        new_claims.expires >= old_claims.expires,
        "expiring no sooner"
    );

    // Events now reach the new page.
    assert_eq!(where_am_i(&server, &mut tab).await, "item");

    // Back: the browser restored `/`; the page follows without a new history entry.
    let reply = navigate(&server, &new_nav, "/", &[("x-dstar-history", "replace")]).await;
    assert_eq!(reply.status, 204);
    tab.stream.expect_event(WAIT).await;
    assert_eq!(
        tab.stream
            .expect_event(WAIT)
            .await
            .value("elements")
            .as_deref(),
        Some("<h1>home</h1>")
    );
    let after = script(&tab.stream.expect_event(WAIT).await);
    assert!(after.contains("window.history.replaceState"), "{after}");
    assert_eq!(where_am_i(&server, &mut tab).await, "home");
}

#[tokio::test]
async fn authorization_runs_again_and_a_refusal_keeps_the_old_page() {
    let (_app, server, mut tab) = start().await;
    let reply = navigate(&server, &tab.nav, "/items/7", &[]).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.text(), "sign in first");
    assert_eq!(where_am_i(&server, &mut tab).await, "home");
}

#[tokio::test]
async fn targets_that_cannot_soft_navigate_load_in_full() {
    let (_app, server, tab) = start().await;
    for target in ["/elsewhere", "/plain", "/no/such/page?x=1"] {
        let reply = navigate(&server, &tab.nav, target, &[]).await;
        assert_eq!(reply.status, 200, "{target}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let answer: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(answer["load"], target);
    }
}

#[tokio::test]
async fn bad_targets_and_tokens_are_refused() {
    let (_app, server, mut tab) = start().await;
    for target in [
        "https://evil.example/x",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "",
    ] {
        let reply = navigate(&server, &tab.nav, target, &[]).await;
        assert_eq!(reply.status, 400, "{target}");
        assert!(
            reply.text().contains("same-origin path"),
            "{}",
            reply.text()
        );
    }
    let forged = Keys::new(b"not the key").sign(Purpose::Navigation, 1, WAIT);
    assert_eq!(
        navigate(&server, &forged, "/items/1", &[("x-user", "ok")])
            .await
            .status,
        403
    );
    let wrong_purpose = tab.event.clone();
    assert_eq!(
        navigate(&server, &wrong_purpose, "/items/1", &[("x-user", "ok")])
            .await
            .status,
        403
    );

    // An expired token is a long-open tab, not an attack: the target loads in full.
    let expired = Keys::new(SECRET).sign_at(Purpose::Navigation, 1, 1, 2);
    let reply = navigate(&server, &expired, "/items/1?a=b", &[("x-user", "ok")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), r#"{"load":"/items/1?a=b"}"#);
    assert_eq!(
        where_am_i(&server, &mut tab).await,
        "home",
        "nothing changed"
    );
}
