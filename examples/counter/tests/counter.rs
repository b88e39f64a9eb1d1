//! The counter over real HTTP: the page, its events, and what bad input gets.

use dstar_tests::{TestServer, token_after};

async fn start() -> (TestServer, String) {
    let app = example_counter::app(
        dstar::App::builder().secret_key(b"counter tests (a test key of 32+ bytes)"),
    );
    let server = TestServer::start(example_counter::router(&app)).await;
    let page = server.get("/", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    assert!(html.contains("<title>Counter</title>"), "{html}");
    assert!(
        html.contains(r#"<strong id="count" data-text="$count">0</strong>"#),
        "{html}"
    );
    assert!(
        html.contains(dstar::app::DEFAULT_CLIENT_URL),
        "the layout loads the Datastar client"
    );
    let token = token_after(html, "x-dstar-token");
    (server, token)
}

async fn click(server: &TestServer, token: &str, event: &str, body: &str) -> dstar_tests::Response {
    server
        .post(
            "/",
            &[
                ("x-dstar-event", event),
                ("x-dstar-token", token),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
}

#[tokio::test]
async fn increment_and_decrement_patch_the_count_signal() {
    let (server, token) = start().await;
    let up = click(&server, &token, "increment", r#"{"count":41}"#).await;
    assert_eq!(up.status, 200);
    assert_eq!(up.header("content-type"), Some("text/event-stream"));
    assert_eq!(up.header("cache-control"), Some("no-store"));
    assert_eq!(
        up.text(),
        "event: datastar-patch-signals\ndata: signals {\"count\":42}\n\n"
    );

    let down = click(&server, &token, "decrement", r#"{"count":0}"#).await;
    assert_eq!(
        down.text(),
        "event: datastar-patch-signals\ndata: signals {\"count\":-1}\n\n"
    );

    let edge = click(
        &server,
        &token,
        "increment",
        &format!(r#"{{"count":{}}}"#, i64::MAX),
    )
    .await;
    assert_eq!(
        edge.text(),
        format!(
            "event: datastar-patch-signals\ndata: signals {{\"count\":{}}}\n\n",
            i64::MAX
        )
    );
}

#[tokio::test]
async fn bad_input_gets_its_status_and_the_server_keeps_serving() {
    let (server, token) = start().await;

    let wrong_type = click(&server, &token, "increment", r#"{"count":"many"}"#).await;
    assert_eq!(wrong_type.status, 422);
    assert!(
        wrong_type.text().starts_with("invalid signal `count`"),
        "{}",
        wrong_type.text()
    );

    let missing = click(&server, &token, "increment", "{}").await;
    assert_eq!(missing.status, 422);
    assert!(
        missing.text().contains("missing field `count`"),
        "{}",
        missing.text()
    );

    let malformed = click(&server, &token, "increment", "{count:").await;
    assert_eq!(malformed.status, 400);

    let not_object = click(&server, &token, "increment", "[1]").await;
    assert_eq!(not_object.status, 400);
    assert_eq!(
        not_object.text(),
        "signals must be a JSON object, got an array"
    );

    let unknown = click(&server, &token, "explode", r#"{"count":1}"#).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.text(), "unknown event `explode`");

    let no_token = click(&server, "", "increment", r#"{"count":1}"#).await;
    assert_eq!(no_token.status, 403);
    assert!(
        no_token.text().contains("token missing"),
        "{}",
        no_token.text()
    );

    let forged = dstar::token::Keys::new(b"someone else").sign(
        dstar::token::Purpose::Csrf,
        0,
        std::time::Duration::from_secs(60),
    );
    assert_eq!(
        click(&server, &forged, "increment", r#"{"count":1}"#)
            .await
            .status,
        403
    );

    let huge = format!(r#"{{"count":1,"pad":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    assert_eq!(click(&server, &token, "increment", &huge).await.status, 413);

    // After all that, the page and its events still work.
    assert_eq!(server.get("/", &[]).await.status, 200);
    let ok = click(&server, &token, "increment", r#"{"count":1}"#).await;
    assert_eq!(
        ok.text(),
        "event: datastar-patch-signals\ndata: signals {\"count\":2}\n\n"
    );
}
