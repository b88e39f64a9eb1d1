//! The whole chain once: axum serves a page and the genuine Datastar client, Chromium clicks a
//! button, Datastar posts, dstar answers with an SSE patch, and the page shows it.
#![cfg(feature = "browser")]

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use dstar::response::Sse;
use dstar::sse::PatchElements;
use dstar_e2e::{Browser, TestServer, datastar_js_route, datastar_page, screenshot_dir};

const PAGE: &str = r#"<main>
  <h1>dstar e2e smoke</h1>
  <button id="hit" data-on:click="@post('/hit')">Hit me</button>
  <div id="out">0</div>
</main>"#;

async fn hit() -> Sse {
    Sse::once(PatchElements::new(r#"<div id="out">1</div>"#).to_bytes())
}

#[test]
// Reports how long the browser took to start, on the test's stderr.
#[allow(clippy::print_stderr)]
fn click_posts_and_patches() {
    // What the handler sends must be exactly the event the brief describes.
    assert_eq!(
        &PatchElements::new(r#"<div id="out">1</div>"#).to_bytes()[..],
        b"event: datastar-patch-elements\ndata: elements <div id=\"out\">1</div>\n\n"
    );

    let started = Instant::now();
    let app = Router::new()
        .route("/", get(|| async { datastar_page(PAGE) }))
        .route("/hit", post(hit))
        .merge(datastar_js_route());
    let server = TestServer::start(app);
    let browser = Browser::start();
    let tab = browser.new_session();
    let ready = started.elapsed();

    tab.goto(&server.url("/"));
    assert_eq!(tab.text("#out"), "0");
    tab.click("#hit");
    tab.wait_for_text("#out", "1", Duration::from_secs(5));

    tab.assert_no_console_errors();
    tab.screenshot(screenshot_dir().join("smoke.png"));
    eprintln!(
        "smoke: browser up in {ready:.1?}, whole scenario in {:.1?}",
        started.elapsed()
    );
}

#[test]
fn console_errors_are_collected() {
    let app = Router::new().route(
        "/",
        get(|| async {
            datastar_page(
                "<p id=\"p\">x</p><script>console.error('boom'); \
                 setTimeout(() => { throw new Error('late failure') }, 0);</script>",
            )
        }),
    );
    let app = app.merge(datastar_js_route());
    let server = TestServer::start(app);
    let browser = Browser::start();
    let tab = browser.new_session();
    tab.goto(&server.url("/"));
    tab.wait_until(
        "return performance.now() > 0 && document.readyState === 'complete'",
        Duration::from_secs(5),
    );

    // A missing resource is an error too; the browser's own favicon request is not.
    assert_eq!(
        tab.eval("return fetch('/favicon.ico').then((r) => r.status)"),
        404
    );
    tab.eval("const i = new Image(); i.src = '/missing.png'; document.body.append(i);");

    let deadline = Instant::now() + Duration::from_secs(5);
    let mut errors = tab.console_errors();
    while errors.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        errors = tab.console_errors();
    }
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|e| e.contains("boom")), "{text:#?}");
    assert!(text.iter().any(|e| e.contains("late failure")), "{text:#?}");
    assert!(text.iter().any(|e| e.contains("missing.png")), "{text:#?}");
    assert!(!text.iter().any(|e| e.contains("favicon")), "{text:#?}");
}

#[test]
fn two_sessions_are_isolated() {
    let app = Router::new()
        .route("/", get(|| async { datastar_page("<p id=\"p\">x</p>") }))
        .merge(datastar_js_route());
    let server = TestServer::start(app);
    let browser = Browser::start();
    let alice = browser.new_session();
    let bob = browser.new_session();
    alice.goto(&server.url("/"));
    bob.goto(&server.url("/"));
    alice.eval("localStorage.setItem('who', 'alice'); document.cookie = 'who=alice';");
    assert_eq!(
        bob.eval("return [localStorage.getItem('who'), document.cookie]"),
        serde_json::json!([null, ""])
    );
    bob.goto(&server.url("/?second"));
    bob.back();
    assert!(bob.url().ends_with('/'), "{}", bob.url());
}
