//! The examples mounted under a prefix (`Router::new().nest("/app", router)`) in a real
//! browser: clicks reach the page, soft navigation and Back work, the address bar keeps the
//! prefix, and nothing the pages ask for lands at the root (the outer router records every
//! request it does not route into `/app`).
#![cfg(feature = "browser")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use dstar::App;
use dstar::app::AppBuilder;
use dstar::security::{ContentSecurityPolicy, SecurityHeaders};
use dstar_e2e::{Browser, Tab, TestServer, datastar_js_route};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Pages that load the Datastar client this crate serves (at the root, like a CDN would be),
/// under the strict Content-Security-Policy.
fn builder() -> AppBuilder {
    App::builder()
        .client_url("/datastar.js")
        .security_headers(SecurityHeaders {
            content_security_policy: Some(ContentSecurityPolicy::strict()),
            ..SecurityHeaders::default()
        })
}

/// Serves `pages` under `/app`, the client at `/datastar.js`, and records anything else.
fn serve_under_app(pages: Router) -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let outside = Arc::new(Mutex::new(Vec::new()));
    let record = outside.clone();
    let router = Router::new()
        .nest("/app", pages)
        .merge(datastar_js_route())
        .fallback(move |req: Request| {
            record
                .lock()
                .unwrap()
                .push(format!("{} {}", req.method(), req.uri()));
            async { StatusCode::NOT_FOUND }
        });
    (TestServer::start(router), outside)
}

/// What reached the root besides the icon the browser asks for on its own.
fn stray_requests(outside: &Mutex<Vec<String>>) -> Vec<String> {
    let outside = outside.lock().unwrap();
    outside
        .iter()
        .filter(|line| line.as_str() != "GET /favicon.ico")
        .cloned()
        .collect()
}

fn wait_for_title(tab: &Tab, title: &str) {
    tab.wait_until(&format!("return document.title === {}", json!(title)), WAIT);
}

#[test]
fn the_stateless_counter_counts_under_a_prefix() {
    let app = example_counter::app(builder());
    let (server, outside) = serve_under_app(example_counter::router(&app));
    let browser = Browser::start();
    let tab = browser.new_session();

    tab.goto(&server.url("/app"));
    tab.wait_for_text("#count", "0", WAIT);
    for expected in ["1", "2"] {
        tab.click("#increment");
        tab.wait_for_text("#count", expected, WAIT);
    }
    tab.click("#decrement");
    tab.wait_for_text("#count", "1", WAIT);

    tab.assert_no_console_errors();
    assert_eq!(stray_requests(&outside), Vec::<String>::new());
}

#[test]
fn the_showcase_navigates_softly_under_a_prefix() {
    let app = example_showcase::app(builder());
    let (server, outside) = serve_under_app(example_showcase::router(&app));
    let browser = Browser::start();
    let tab = browser.new_session();

    tab.goto(&server.url("/app"));
    assert_eq!(tab.title(), "dstar showcase");
    tab.eval("window.__marker = 7");

    // The layout's links are under the prefix; a plain click swaps the page in place.
    tab.click(r#"#nav a[href="/app/counter"]"#);
    tab.wait_for_url(&server.url("/app/counter"), WAIT);
    wait_for_title(&tab, "Counter");
    tab.wait_for_text("#count", "0", WAIT);
    tab.click("#increment");
    tab.wait_for_text("#count", "1", WAIT);
    assert_eq!(
        tab.eval("return window.__marker ?? null"),
        json!(7),
        "no reload"
    );
    assert_eq!(app.sessions().len(), 1, "one session");

    // The todos' filter links are relative (`?filter=..`) and their query changes stay under
    // the prefix.
    tab.click(r#"#nav a[href="/app/todos"]"#);
    tab.wait_for_url(&server.url("/app/todos"), WAIT);
    tab.wait_for_text("#todos", "Nothing here.", WAIT);

    // Back restores the counter, soft again.
    tab.back();
    tab.wait_for_url(&server.url("/app/counter"), WAIT);
    tab.wait_for_text("#count", "1", WAIT);
    tab.click("#increment");
    tab.wait_for_text("#count", "2", WAIT);

    // Home is the prefix itself.
    tab.click(r#"#nav a[href="/app"]"#);
    tab.wait_for_url(&server.url("/app"), WAIT);
    wait_for_title(&tab, "dstar showcase");
    assert_eq!(
        tab.eval("return window.__marker ?? null"),
        json!(7),
        "no reload"
    );

    tab.assert_no_console_errors();
    assert_eq!(stray_requests(&outside), Vec::<String>::new());
}
