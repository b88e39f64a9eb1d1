//! The showcase served by `App::serve_listener` over TLS (the `tls` feature) in Chromium: the
//! browser negotiates HTTP/2, and the page, the Datastar client, the live stream, events and
//! soft navigation all work over it.
#![cfg(feature = "browser")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::Version;
use axum::middleware::{Next, from_fn};
use dstar::App;
use dstar::security::{ContentSecurityPolicy, SecurityHeaders};
use dstar::serve::Tls;
use dstar_e2e::{Browser, datastar_js_route};
use serde_json::json;
use support::TlsServer;

mod support;

const WAIT: Duration = Duration::from_secs(10);

/// Every request the server answered: method, path and HTTP version.
type Seen = Arc<Mutex<Vec<(String, String, Version)>>>;

#[test]
fn the_showcase_runs_over_http2_with_tls() {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let tls = Tls::from_pem(
        made.cert.pem().as_bytes(),
        made.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let app = example_showcase::app(
        App::builder()
            .client_url("/datastar.js")
            .security_headers(SecurityHeaders {
                content_security_policy: Some(ContentSecurityPolicy::strict()),
                ..SecurityHeaders::default()
            })
            .tls(tls),
    );
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let router = example_showcase::router(&app)
        .merge(datastar_js_route())
        .layer(from_fn(move |req: Request, next: Next| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push((
                    req.method().to_string(),
                    req.uri().path().to_owned(),
                    req.version(),
                ));
                next.run(req).await
            }
        }));
    let server = TlsServer::start(app.clone(), router);
    let browser = Browser::start();
    // The certificate is made for this run; nothing else about TLS is relaxed.
    let tab = browser.new_session_with_args(&["--ignore-certificate-errors"]);

    tab.goto(&server.url("/"));
    assert_eq!(tab.title(), "dstar showcase");
    assert_eq!(
        tab.eval("return performance.getEntriesByType('navigation')[0].nextHopProtocol"),
        json!("h2"),
        "the browser negotiated HTTP/2"
    );
    tab.eval("window.__marker = 7");

    tab.click(r#"#nav a[href="/counter"]"#);
    tab.wait_for_url(&server.url("/counter"), WAIT);
    tab.wait_for_text("#count", "0", WAIT);
    for expected in ["1", "2"] {
        tab.click("#increment");
        tab.wait_for_text("#count", expected, WAIT);
    }
    assert_eq!(
        tab.eval("return window.__marker ?? null"),
        json!(7),
        "soft navigation, no reload"
    );
    tab.assert_no_console_errors();

    let seen = seen.lock().unwrap().clone();
    for path in [
        "/",
        "/datastar.js",
        "/__dstar/stream",
        "/__dstar/nav",
        "/__dstar/event",
    ] {
        assert!(
            seen.iter().any(|(_, p, _)| p == path),
            "no request for {path}: {seen:?}"
        );
    }
    assert!(
        seen.iter()
            .all(|(_, _, version)| *version == Version::HTTP_2),
        "every request went over HTTP/2: {seen:?}"
    );
    drop(tab);
}
