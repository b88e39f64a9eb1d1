//! The template actions' fetch options in a real browser, with the genuine Datastar client:
//! what `post(url, {...})` writes is an expression Datastar runs as meant (a form sent as
//! `application/x-www-form-urlencoded` from the form `selector` names, extra headers beside the
//! page's CSRF token, `filterSignals` as regular expressions), under the strict
//! Content-Security-Policy. And on a live page: a custom SSE event reaches the page's own
//! listener as a `dstar-event`, and what `connected` patches shows once the stream is open.
#![cfg(feature = "browser")]

use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use dstar::response::Sse;
use dstar::security::{ContentSecurityPolicy, SecurityHeaders};
use dstar::sse::{CustomEvent, PatchElements};
use dstar::{App, Ctx, Html, Mount, Templates, View};
use dstar_e2e::{Browser, TestServer, datastar_js_route};

const WAIT: Duration = Duration::from_secs(10);

struct Form;

#[dstar::page("/", template = "form.html")]
impl Form {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        mount.signal("keepName", "kept")?;
        mount.signal("dropName", "dropped")?;
        Ok(Form)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(())
    }
}

/// A live page that says when its stream opened and sends an event of its own type.
struct Live;

#[dstar::page("/live", live, template = "live.html")]
impl Live {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Live)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(())
    }

    async fn connected(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        cx.patch_signals(&serde_json::json!({ "stream": "open" }))
    }

    #[event]
    async fn ping(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        cx.skip_render();
        cx.send_event(CustomEvent::new("pinged", "line one\nline two"));
        Ok(())
    }
}

const LIVE: &str = r#"<p id="stream" data-text="$stream">-</p>
<button id="ping" data-on:click="{{ event('ping') }}">ping</button>"#;

/// The default layout plus a listener for `dstar-event`, with the page's script nonce.
const LAYOUT: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
{{ head }}
<script nonce="{{ nonce }}">
  window.seen = [];
  document.addEventListener("dstar-event", (e) => window.seen.push(e.detail.type + "=" + e.detail.data));
</script>
</head>
<body>
{{ body }}
</body>
</html>
"#;

const FORM: &str = r#"<form id="f"><input name="q" value="hello &amp; bye"></form>
<button id="send-form" data-on:click="{{ post('/api/form', {'contentType': 'form', 'selector': '#f', 'headers': {'X-Kind': 'search'}}) }}">form</button>
<button id="send-signals" data-on:click="{{ post('/api/signals', {'filterSignals': {'include': '^keep'}}) }}">signals</button>
<p id="out">-</p>"#;

/// Answers with what the request carried, shown in `#out`.
fn show(text: &str) -> Sse {
    let html = format!(
        "<p id=\"out\">{}</p>",
        text.replace('&', "&amp;").replace('<', "&lt;")
    );
    Sse::once(PatchElements::new(&html).to_bytes().to_vec())
}

fn app() -> (App, axum::Router) {
    let app = App::builder()
        .client_url("/datastar.js")
        .security_headers(SecurityHeaders {
            content_security_policy: Some(ContentSecurityPolicy::strict()),
            ..SecurityHeaders::default()
        })
        .templates(
            Templates::new()
                .with("form.html", FORM)
                .with("live.html", LIVE)
                .with("layout.html", LAYOUT),
        )
        .layout("layout.html")
        .build()
        .unwrap();
    let (form_app, signals_app) = (app.clone(), app.clone());
    let router = dstar::router![Form, Live]
        .into_router(app.clone())
        .route(
            "/api/form",
            post(move |headers: HeaderMap, body: Bytes| async move {
                let csrf = match form_app.verify_csrf(&headers) {
                    Ok(()) => "token ok".to_owned(),
                    Err(err) => err.message().to_owned(),
                };
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_owned()
                };
                show(&format!(
                    "{csrf}|{}|{}|{}",
                    header("x-kind"),
                    header("content-type"),
                    String::from_utf8_lossy(&body)
                ))
            }),
        )
        .route(
            "/api/signals",
            post(move |headers: HeaderMap, body: Bytes| async move {
                let csrf = signals_app.verify_csrf(&headers).is_ok();
                show(&format!("{csrf}|{}", String::from_utf8_lossy(&body)))
            }),
        )
        .merge(datastar_js_route());
    (app, router)
}

#[test]
fn fetch_options_reach_the_server_as_meant() {
    let (_app, router) = app();
    let server = TestServer::start(router);
    let browser = Browser::start();
    let tab = browser.new_session();
    tab.goto(&server.url("/"));

    tab.click("#send-form");
    tab.wait_for_text(
        "#out",
        "token ok|search|application/x-www-form-urlencoded|q=hello+%26+bye",
        WAIT,
    );

    tab.click("#send-signals");
    tab.wait_for_text("#out", r#"true|{"keepName":"kept"}"#, WAIT);

    tab.assert_no_console_errors();
}

#[test]
fn a_live_page_hears_its_custom_events_and_what_connected_sent() {
    let (_app, router) = app();
    let server = TestServer::start(router);
    let browser = Browser::start();
    let tab = browser.new_session();
    tab.goto(&server.url("/live"));

    tab.wait_for_text("#stream", "open", WAIT);
    tab.click("#ping");
    tab.wait_until("return window.seen.length === 1", WAIT);
    assert_eq!(
        tab.eval("return window.seen[0]"),
        serde_json::json!("pinged=line one\nline two")
    );

    tab.assert_no_console_errors();
}
