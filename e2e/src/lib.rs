//! Real-browser end-to-end tests for dstar: Debian's Chromium driven through chromedriver,
//! the genuine Datastar v1.0.2 client, and an axum test server on its own thread.
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use dstar_e2e::{Browser, TestServer, datastar_js_route, datastar_page};
//!
//! let app = Router::new()
//!     .route("/", get(|| async { datastar_page("<div id=\"out\">0</div>") }))
//!     .merge(datastar_js_route());
//! let server = TestServer::start(app);
//! let browser = Browser::start();
//! let tab = browser.new_session();
//! tab.goto(&server.url("/"));
//! tab.wait_for_text("#out", "0", Duration::from_secs(5));
//! tab.assert_no_console_errors();
//! ```
//!
//! # Why WebDriver through chromedriver, by hand
//!
//! Two protocols can drive Chromium: the W3C WebDriver protocol (served by chromedriver) and the
//! Chrome DevTools Protocol. We use WebDriver:
//!
//! - It is plain request/response JSON over HTTP/1.1 on localhost, so the client is a few
//!   hundred lines over `std::net::TcpStream` and `serde_json`: no WebSocket stack, no TLS, no
//!   async client runtime, no extra crates. DevTools needs a WebSocket client and an event pump.
//! - Debian ships `chromium-driver` built from the same source as `chromium`, so the driver
//!   always matches the browser and nothing is ever downloaded at test time.
//! - Every WebDriver session starts its own browser process with its own fresh profile, which
//!   is exactly the isolation two chatting users need (no shared cookies or storage).
//! - Element clicks go through WebDriver's actionability checks (scrolled into view, not
//!   covered), closer to what a person does than a `el.click()` from script.
//!
//! Where WebDriver alone falls short, chromedriver's own extensions fill the gap: browser
//! console entries through the `goog:loggingPrefs` capability and the `/se/log` endpoint, and
//! one DevTools command (`Page.addScriptToEvaluateOnNewDocument`, through
//! `/goog/cdp/execute`) to learn when Datastar has finished starting on each page.
//!
//! Ready-made crates were considered: `fantoccini` (even with default features off it brings
//! hyper, hyper-util, url, cookie, time and the `webdriver` crate with its own dependency tree)
//! and DevTools clients (WebSocket stacks, often a browser downloader). The hand-written client
//! keeps this crate's dependencies to what the workspace already builds.
//!
//! The client is blocking on purpose: tests are plain `#[test]` functions, and the server under
//! test runs on its own thread and runtime ([`TestServer`]), so a test never blocks the
//! executor its handlers run on.
//!
//! # Opt-in
//!
//! The tests that need a browser are behind the `browser` feature:
//! `cargo test -p dstar-e2e --features browser`. The library itself always builds.
// A test harness reports what it fetched and why a server stopped on standard error.
#![allow(clippy::print_stderr)]
#![deny(missing_docs)]

mod asset;
mod base64;
mod http;
mod paths;
mod server;
mod wait;
mod webdriver;

pub use asset::{DATASTAR_JS_SHA256, DATASTAR_JS_SIZE, DATASTAR_VERSION, datastar_js};
pub use paths::{screenshot_dir, target_dir};
pub use server::{TestServer, datastar_js_route, datastar_page};
pub use wait::wait_for;
pub use webdriver::{Browser, Error, Kind, LogEntry, Tab, keys};
