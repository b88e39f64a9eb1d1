//! App state registered once, with `App::builder().state(..)`, serves pages and the app's own
//! axum handlers (the `AppState` extractor); a state never registered is a 500 naming it.

use axum::extract::State;
use axum::routing::get;
use dstar::{App, AppState, Html, Mount, View};
use dstar_tests::TestServer;

struct Greeting(&'static str);

struct Never;

struct Home {
    greeting: &'static str,
}

#[dstar::page("/")]
impl Home {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        let greeting = mount.app().state::<Greeting>()?.0;
        Ok(Home { greeting })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!("<p>{} from a page</p>", self.greeting)))
    }
}

async fn hello(AppState(greeting): AppState<Greeting>) -> String {
    format!("{} from a handler", greeting.0)
}

async fn whole_app(State(app): State<App>) -> String {
    format!("{} sessions", app.sessions().len())
}

async fn never(AppState(_never): AppState<Never>) -> &'static str {
    "unreachable"
}

#[tokio::test]
async fn one_registration_serves_pages_and_handlers() {
    let app = App::builder()
        .secret_key(b"app state tests (a test key of 32+ bytes)")
        .state(Greeting("hello"))
        .build()
        .unwrap();
    let router = dstar::router![Home]
        .into_router(app.clone())
        .route("/hello", get(hello))
        .route("/app", get(whole_app))
        .route("/never", get(never))
        .with_state(app);
    let server = TestServer::start(router).await;

    let page = server.get("/", &[]).await;
    assert!(
        page.text().contains("<p>hello from a page</p>"),
        "{}",
        page.text()
    );
    let handler = server.get("/hello", &[]).await;
    assert_eq!(
        (handler.status, handler.text()),
        (200, "hello from a handler")
    );
    assert_eq!(server.get("/app", &[]).await.text(), "0 sessions");

    let missing = server.get("/never", &[]).await;
    assert_eq!(missing.status, 500);
    // The tests are a debug build: the answer names the type and the fix.
    assert!(
        missing
            .text()
            .contains("no app state of type `app_state::Never`")
            && missing.text().contains("App::builder().state(...)"),
        "{}",
        missing.text()
    );
}
