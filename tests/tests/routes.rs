//! The route table is checked at start-up: clashing pages are reported with both locations.
//! (Within one `dstar::router!` a clash is a compile error, see `ui/router/fail`; the clashing
//! tables here are put together by hand, or joined with `Pages::and`.)
//! A page claims only the methods it answers, so an app's own routes fit beside it.

use axum::Router;
use axum::routing::post;
use dstar::token::{Keys, Purpose};
use dstar::{App, Ctx, Event, Html, Mount, Page, Route, View};
use dstar_tests::TestServer;
use std::time::Duration;

macro_rules! page {
    ($name:ident, $path:literal) => {
        page!(
            $name,
            Route::new(stringify!($name), $path, file!(), line!())
        );
    };
    ($name:ident, $route:expr) => {
        struct $name;

        impl Page for $name {
            const ROUTE: Route = $route;

            async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
                Ok($name)
            }

            fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
                Ok(Html::from(stringify!($name)))
            }

            async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
                Err(event.unknown())
            }
        }
    };
}

page!(UserById, "/users/{id}");
page!(UserByName, "/users/{name}");
page!(NewUser, "/users/new");
page!(ByOwner, "/repos/{owner}/settings");
page!(ByRepo, "/repos/acme/{repo}");
page!(Login, "/login");
page!(
    Dashboard,
    Route::new("Dashboard", "/dashboard", file!(), line!()).live()
);
page!(
    Form,
    Route::new("Form", "/form", file!(), line!()).events(&["save"])
);

/// A table put together by hand: `dstar::router!` would refuse a clash at compile time.
macro_rules! table {
    ($($page:ty),*) => {{
        static PAGES: &[dstar::router::Entry] = &[$(dstar::router::Entry::of::<$page>()),*];
        dstar::Pages::new(PAGES)
    }};
}

page!(
    Todos,
    Route::new("Todos", "/todos", file!(), line!())
        .template("todos.html")
        .events(&["add", "remove"])
);
page!(
    Missing,
    Route::new("Missing", "/missing", file!(), line!()).template("missing.html")
);
page!(
    NoLayout,
    Route::new("NoLayout", "/no-layout", file!(), line!()).layout("nowhere.html")
);
page!(
    Typo,
    Route::new("Typo", "/typo", file!(), line!())
        .template("typo.html")
        .events(&["add"])
);

fn app() -> App {
    App::builder()
        .secret_key(b"routes (a test key of 32+ bytes)")
        .build()
        .unwrap()
}

/// An app whose templates are `todos.html`, calling only its page's events (one by a computed
/// name), and `typo.html`, calling `ad` and `remove` where its page only has `add`.
fn app_with_templates() -> App {
    let templates = dstar::Templates::new()
        .with(
            "todos.html",
            "<button data-on:click=\"{{ event('add') }}\">Add</button>\n\
             {% for id in ids %}<button data-on:click=\"{{ event(\"remove\", {'id': id}) }}\">x</button>{% endfor %}\n\
             {{ event(dynamic) if dynamic else '' }}",
        )
        .with(
            "typo.html",
            "<h1>Typo</h1>\n<button data-on:click=\"{{ event('ad') }}\">Add</button>\n\
             {# event('commented out') #}\n<button data-on:click=\"{{ event('remove') }}\">x</button>",
        );
    App::builder()
        .secret_key(b"routes (a test key of 32+ bytes)")
        .templates(templates)
        .build()
        .unwrap()
}

#[test]
fn templates_that_exist_and_call_only_the_pages_events_pass() {
    assert!(
        table![Todos]
            .try_into_router::<()>(app_with_templates())
            .is_ok()
    );
}

#[test]
fn a_missing_template_or_layout_is_refused_naming_the_page_and_its_line() {
    let err = table![Missing, NoLayout]
        .try_into_router::<()>(app_with_templates())
        .unwrap_err()
        .to_string();
    let missing_line = line_of("Missing,");
    let no_layout_line = line_of("NoLayout,");
    assert_eq!(
        err,
        format!(
            "dstar: page `Missing` names template `missing.html`, which is not among the app's templates\n  \
             --> tests/tests/routes.rs:{missing_line} (`Missing`)\n\
             dstar: page `NoLayout` names layout `nowhere.html`, which is not among the app's templates\n  \
             --> tests/tests/routes.rs:{no_layout_line} (`NoLayout`)"
        )
    );
}

#[test]
fn a_template_calling_an_event_the_page_lacks_is_refused_with_its_line() {
    let err = table![Typo]
        .try_into_router::<()>(app_with_templates())
        .unwrap_err()
        .to_string();
    let line = line_of("Typo,");
    assert_eq!(
        err,
        format!(
            "dstar: template `typo.html` line 2 calls `event('ad')`, but page `Typo` has no event \
             `ad` (its events: `add`); add a handler for it or fix the call\n  \
             --> tests/tests/routes.rs:{line} (`Typo`)\n\
             dstar: template `typo.html` line 4 calls `event('remove')`, but page `Typo` has no \
             event `remove` (its events: `add`); add a handler for it or fix the call\n  \
             --> tests/tests/routes.rs:{line} (`Typo`)"
        )
    );
}

#[test]
#[should_panic(expected = "dstar: page `Missing` names template `missing.html`")]
fn into_router_panics_on_a_missing_template() {
    let _ = dstar::router![Missing].into_router::<()>(app());
}

/// The line of this file where `page!(` is followed by `name` (the `line!()` of its route).
fn line_of(name: &str) -> usize {
    let source = include_str!("routes.rs");
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .windows(2)
        .position(|pair| pair[0] == "page!(" && pair[1].trim() == name)
        .expect("the page is declared in this file");
    // `Route::new(..., line!())` is on the line after the name.
    at + 3
}

#[test]
fn the_same_path_twice_is_refused_with_both_locations() {
    let err = table![UserById, UserByName]
        .try_into_router::<()>(app())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("dstar: routes both serve `/users/{id}` and `/users/{name}`"),
        "{err}"
    );
    assert!(
        err.contains("(`UserById`)") && err.contains("(`UserByName`)"),
        "{err}"
    );
    assert_eq!(err.matches("tests/tests/routes.rs:").count(), 2, "{err}");
}

#[test]
fn ambiguous_overlaps_are_refused_but_a_more_specific_literal_is_fine() {
    let err = table![ByOwner, ByRepo]
        .try_into_router::<()>(app())
        .unwrap_err()
        .to_string();
    assert!(err.contains("overlap"), "{err}");
    assert!(
        dstar::router![UserById, NewUser]
            .try_into_router::<()>(app())
            .is_ok()
    );
}

#[test]
fn tables_joined_with_and_are_checked_at_start_up() {
    // Each `router!` is fine on its own; together they serve `/users/{id}` twice.
    let err = dstar::router![UserById, NewUser]
        .and(dstar::router![Login, UserByName])
        .try_into_router::<()>(app())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("dstar: routes both serve `/users/{id}` and `/users/{name}`"),
        "{err}"
    );
    assert!(
        err.contains("(`UserById`)") && err.contains("(`UserByName`)"),
        "{err}"
    );
}

#[tokio::test]
async fn tables_joined_with_and_serve_every_page() {
    let pages = dstar::router![UserById].and(dstar::router![NewUser, Login]);
    assert_eq!(pages.entries().len(), 3);
    let server = TestServer::start(pages.into_router(app())).await;
    for (path, page) in [
        ("/users/7", "UserById"),
        ("/users/new", "NewUser"),
        ("/login", "Login"),
    ] {
        let response = server.get(path, &[]).await;
        assert_eq!(response.status, 200, "{path}");
        assert!(
            response.text().contains(page),
            "{path}: {}",
            response.text()
        );
    }
}

#[test]
#[should_panic(expected = "dstar: routes both serve")]
fn into_router_panics_on_a_clash() {
    let _ = table![UserById, UserByName].into_router::<()>(app());
}

/// The app's own `POST`, answering with what it was sent.
async fn own_post(body: String) -> String {
    format!("the app's own POST got {body:?}")
}

#[tokio::test]
async fn an_app_routes_its_own_post_beside_a_page_without_events() {
    // Either way of adding a route: on the router dstar built, or merged from another.
    let routed = dstar::router![Login]
        .into_router::<()>(app())
        .route("/login", post(own_post));
    let merged = dstar::router![Login]
        .into_router::<()>(app())
        .merge(Router::new().route("/login", post(own_post)));
    for router in [routed, merged] {
        let server = TestServer::start(router).await;
        let page = server.get("/login", &[]).await;
        assert_eq!(page.status, 200);
        assert!(page.text().contains("Login"), "{}", page.text());
        let form = server.post("/login", &[], "user=ada").await;
        assert_eq!(form.status, 200);
        assert_eq!(form.text(), r#"the app's own POST got "user=ada""#);
    }
}

#[tokio::test]
async fn a_page_without_events_leaves_post_unclaimed() {
    let server = TestServer::start(dstar::router![Login].into_router(app())).await;
    let response = server.post("/login", &[], "").await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET,HEAD"));
}

#[tokio::test]
async fn an_app_routes_its_own_post_beside_a_live_page() {
    let router = dstar::router![Dashboard]
        .into_router::<()>(app())
        .merge(Router::new().route("/dashboard", post(own_post)));
    let server = TestServer::start(router).await;
    let page = server.get("/dashboard", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/__dstar/stream"), "{}", page.text());
    let form = server.post("/dashboard", &[], "x=1").await;
    assert_eq!(form.status, 200);
    assert_eq!(form.text(), r#"the app's own POST got "x=1""#);
}

#[tokio::test]
async fn a_stateless_page_with_events_still_takes_them_on_its_path() {
    let router = dstar::router![Form].into_router::<()>(app());
    let server = TestServer::start(router).await;
    assert_eq!(server.get("/form", &[]).await.status, 200);
    let token = Keys::new(b"routes (a test key of 32+ bytes)").sign(
        Purpose::Csrf,
        0,
        Duration::from_secs(60),
    );
    // The page's handler answers (not a 405): it refuses `save` itself.
    let event = server
        .post(
            "/form",
            &[("x-dstar-token", &token), ("x-dstar-event", "save")],
            "{}",
        )
        .await;
    assert_eq!(event.status, 404);
    assert_eq!(event.text(), "unknown event `save`");
}
