//! The route table is checked at start-up: clashing pages are reported with both locations.
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

fn app() -> App {
    App::builder()
        .secret_key(b"routes (a test key of 32+ bytes)")
        .build()
        .unwrap()
}

#[test]
fn the_same_path_twice_is_refused_with_both_locations() {
    let err = dstar::router![UserById, UserByName]
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
    let err = dstar::router![ByOwner, ByRepo]
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
#[should_panic(expected = "dstar: routes both serve")]
fn into_router_panics_on_a_clash() {
    let _ = dstar::router![UserById, UserByName].into_router::<()>(app());
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
