//! A failed page load is answered with an HTML error page rendered from a template the app can
//! replace; answers the Datastar client reads (events, streams, navigation) stay plain.

use std::io;

use dstar::template::Templates;
use dstar::{App, Ctx, Error, Event, Html, Mount, Page, Route, View};
use dstar_tests::{Response, TestServer};

/// A page whose `mount` fails the way `$fail` says (a stateless page unless `$route` is live).
macro_rules! failing_page {
    ($name:ident, $route:expr, |$mount:ident| $fail:expr) => {
        struct $name;

        impl Page for $name {
            const ROUTE: Route = $route;

            async fn mount($mount: &mut Mount<'_>) -> dstar::Result<Self> {
                $fail?;
                Ok($name)
            }

            fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
                view.render_str("{{ missing.field }}", ())
            }

            async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
                Err(event.unknown())
            }
        }
    };
}

failing_page!(
    Item,
    Route::new("Item", "/items/{id}", file!(), line!()),
    |mount| mount.param_as::<u32>("id").map(|_| ())
);
failing_page!(
    Admin,
    Route::new("Admin", "/admin", file!(), line!()),
    |_mount| Err::<(), _>(Error::forbidden("<script>alert(1)</script> admins only"))
);
failing_page!(
    LiveAdmin,
    Route::new("LiveAdmin", "/live-admin", file!(), line!()).live(),
    |_mount| Err::<(), _>(Error::forbidden("admins & <b>only</b>"))
);
failing_page!(
    Report,
    Route::new("Report", "/report", file!(), line!()),
    |_mount| {
        Err::<(), _>(
            Error::internal("the <database> is gone")
                .with_source(io::Error::other("connection refused")),
        )
    }
);
// Mounts, then its render fails on a template error.
failing_page!(
    Broken,
    Route::new("Broken", "/broken", file!(), line!()),
    |_mount| Ok::<(), Error>(())
);
failing_page!(
    Login,
    Route::new("Login", "/login", file!(), line!()),
    |_mount| Err::<(), _>(Error::redirect("/sign-in?next=/login"))
);

const GENERIC: &str = "Something went wrong on our side. Please try again later.";

async fn serve(templates: Templates, error_template: Option<&str>) -> TestServer {
    let mut builder = App::builder()
        .secret_key(b"errors (a test key of 32+ bytes)")
        .templates(templates);
    if let Some(name) = error_template {
        builder = builder.error_template(name);
    }
    let app = builder.build().unwrap();
    let router = dstar::router![Item, Admin, LiveAdmin, Report, Broken, Login].into_router(app);
    TestServer::start(router).await
}

fn assert_html(response: &Response, status: u16) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        response.text().starts_with("<!doctype html>"),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn a_404_from_a_path_parameter_is_an_html_page() {
    let server = serve(Templates::new(), None).await;
    let response = server.get("/items/abc", &[]).await;
    assert_html(&response, 404);
    let text = response.text();
    assert!(text.contains("<title>404 Not Found</title>"), "{text}");
    assert!(text.contains("<h1>404 Not Found</h1>"), "{text}");
    assert!(text.contains("no page at `&#x2f;items&#x2f;abc`"), "{text}");
    // The page's own path still works.
    assert_eq!(server.get("/items/7", &[]).await.status, 500);
}

#[tokio::test]
async fn a_refusal_is_shown_escaped() {
    let server = serve(Templates::new(), None).await;
    let response = server.get("/admin", &[]).await;
    assert_html(&response, 403);
    let text = response.text();
    assert!(text.contains("<h1>403 Forbidden</h1>"), "{text}");
    assert!(
        text.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; admins only"),
        "{text}"
    );
    assert!(!text.contains("<script>"), "{text}");

    // A live page's mount refusal too (and no session is started).
    let response = server.get("/live-admin", &[]).await;
    assert_html(&response, 403);
    assert!(
        response
            .text()
            .contains("admins &amp; &lt;b&gt;only&lt;&#x2f;b&gt;"),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn a_500_shows_its_causes_only_in_debug_builds() {
    let server = serve(Templates::new(), None).await;
    let response = server.get("/report", &[]).await;
    assert_html(&response, 500);
    let text = response.text();
    assert!(
        text.contains("<h1>500 Internal Server Error</h1>"),
        "{text}"
    );
    if cfg!(debug_assertions) {
        assert!(text.contains("the &lt;database&gt; is gone"), "{text}");
        assert!(
            text.contains("<li style=\"white-space: pre-wrap\">connection refused</li>"),
            "{text}"
        );
        assert!(!text.contains(GENERIC), "{text}");
    } else {
        assert!(text.contains(GENERIC), "{text}");
        assert!(!text.contains("database"), "{text}");
        assert!(!text.contains("connection refused"), "{text}");
    }
}

#[tokio::test]
async fn a_template_error_is_a_500_page() {
    let server = serve(Templates::new(), None).await;
    let response = server.get("/broken", &[]).await;
    assert_html(&response, 500);
    let text = response.text();
    if cfg!(debug_assertions) {
        assert!(text.contains("template error: "), "{text}");
        assert!(text.contains("missing"), "{text}");
    } else {
        assert!(text.contains(GENERIC), "{text}");
        assert!(!text.contains("template error"), "{text}");
    }
}

#[tokio::test]
async fn a_redirect_stays_a_303() {
    let server = serve(Templates::new(), None).await;
    let response = server.get("/login", &[]).await;
    assert_eq!(response.status, 303);
    assert_eq!(response.header("location"), Some("/sign-in?next=/login"));
    assert_eq!(response.text(), "");
}

#[tokio::test]
async fn the_apps_own_error_template_replaces_the_default() {
    let own = "<p class=\"mine\">{{ status }} {{ reason }}: {{ message }}</p>";
    // By providing `dstar/error.html`, or by naming another template.
    for (templates, name) in [
        (Templates::new().with("dstar/error.html", own), None),
        (
            Templates::new().with("errors/page.html", own),
            Some("errors/page.html"),
        ),
    ] {
        let server = serve(templates, name).await;
        let response = server.get("/admin", &[]).await;
        assert_eq!(response.status, 403);
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            response.text(),
            "<p class=\"mine\">403 Forbidden: &lt;script&gt;alert(1)&lt;&#x2f;script&gt; admins only</p>"
        );
    }
}

#[tokio::test]
async fn a_broken_error_template_falls_back_to_plain_text() {
    let broken = Templates::new().with("dstar/error.html", "{{ nope.field }}");
    let server = serve(broken, None).await;
    let response = server.get("/admin", &[]).await;
    assert_eq!(response.status, 403);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.text(), "<script>alert(1)</script> admins only");
    let response = server.get("/report", &[]).await;
    assert_eq!(response.status, 500);
    // The reason; the message too in debug builds (which the tests are).
    assert!(
        response.text().starts_with("Internal Server Error"),
        "{}",
        response.text()
    );

    // A name no template has fails the same way.
    let server = serve(Templates::new(), Some("errors/missing.html")).await;
    let response = server.get("/items/abc", &[]).await;
    assert_eq!(response.status, 404);
    assert_eq!(response.text(), "no page at `/items/abc`");
}

#[tokio::test]
async fn event_answers_stay_plain_text() {
    let server = serve(Templates::new(), None).await;
    // A stateless event without a token: refused in plain text, read by the Datastar client.
    let response = server
        .post("/admin", &[("x-dstar-event", "save")], "{}")
        .await;
    assert_eq!(response.status, 405, "Admin has no events: POST is not its");
    let response = server
        .post("/__dstar/event", &[("x-dstar-event", "save")], "{}")
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        response.text().starts_with("event refused: "),
        "{}",
        response.text()
    );
}
