//! Security headers, caching rules and script nonces over real HTTP: every page's HTML gets the
//! configured headers, dstar's own endpoints answer `no-store`, each page response has its own
//! nonce (on its scripts and in its policy), a live session's scripts carry its page's nonce,
//! and every header can be replaced or left out.

use std::time::Duration;

use dstar::http::HeaderValue;
use dstar::security::{ContentSecurityPolicy, SecurityHeaders};
use dstar::{App, Ctx, Event, Html, Mount, Page, Route, View};
use dstar_tests::{Response, SseStream, TestServer, token_after};

const WAIT: Duration = Duration::from_secs(5);

/// A live page whose event sends a script.
struct Live;

impl Page for Live {
    const ROUTE: Route = Route::new("Live", "/live", file!(), line!())
        .live()
        .events(&["script", "options"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Live)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from("<p>live</p>"))
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        cx.skip_render();
        if event.name() == "options" {
            // Every option of the wire core, and a console value at a level.
            cx.execute(
                dstar::sse::ExecuteScript::new("window.kept = 1")
                    .auto_remove(false)
                    .attributes(&[("type", "module")])
                    .id("custom-7"),
            );
            return cx.console(
                dstar::sse::ConsoleLevel::Warn,
                &serde_json::json!({ "left": 3, "tag": "</script>" }),
            );
        }
        cx.execute_script("console.log('hi')");
        Ok(())
    }
}

/// A stateless page with one event.
struct Stateless;

impl Page for Stateless {
    const ROUTE: Route = Route::new("Stateless", "/", file!(), line!()).events(&["poke", "go"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Stateless)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<button data-on-click="{{ event('poke') }}">poke</button>"#,
            (),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        cx.skip_render();
        if event.name() == "go" {
            return cx.redirect("/elsewhere");
        }
        cx.patch_signals(&serde_json::json!({ "poked": true }))
    }
}

async fn serve(headers: Option<SecurityHeaders>) -> TestServer {
    let mut builder = App::builder().secret_key(b"header tests (a test key of 32+ bytes)");
    if let Some(headers) = headers {
        builder = builder.security_headers(headers);
    }
    let app = builder.build().unwrap();
    TestServer::start(dstar::router![Live, Stateless].into_router(app)).await
}

/// The nonce a page's policy names (`'nonce-...'`).
fn policy_nonce(page: &Response) -> String {
    let policy = page
        .header("content-security-policy")
        .expect("a content-security-policy header");
    let start = policy.find("'nonce-").expect("a nonce in the policy") + "'nonce-".len();
    policy[start..].chars().take_while(|c| *c != '\'').collect()
}

/// The nonce attribute of every `<script` in `html`.
fn script_nonces(html: &str) -> Vec<String> {
    html.match_indices("<script")
        .map(|(at, _)| {
            let tag = &html[at..at + html[at..].find('>').expect("a closed tag")];
            let start = tag
                .find("nonce=\"")
                .unwrap_or_else(|| panic!("a script without a nonce: {tag}"))
                + "nonce=\"".len();
            tag[start..].chars().take_while(|c| *c != '"').collect()
        })
        .collect()
}

fn assert_default_page_headers(page: &Response) {
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(
        page.header("content-security-policy"),
        Some("frame-ancestors 'none'; base-uri 'self'; object-src 'none'")
    );
}

#[tokio::test]
async fn pages_get_the_default_headers() {
    let server = serve(None).await;
    assert_default_page_headers(&server.get("/", &[]).await);
    assert_default_page_headers(&server.get("/live", &[]).await);
}

async fn open_stream(server: &TestServer, html: &str) -> SseStream {
    let token = token_after(html, "_dstarStream");
    server
        .open_sse(
            "POST",
            "/__dstar/stream",
            &[("x-dstar-token", &token)],
            Some(b"{}"),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn streams_events_and_navigation_are_never_stored() {
    let server = serve(None).await;

    let page = server.get("/", &[]).await;
    let token = token_after(page.text(), "x-dstar-token");
    let answer = server
        .post(
            "/",
            &[("x-dstar-token", &token), ("x-dstar-event", "poke")],
            b"{}",
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    // The test client asks for `Connection: close`: the answer says just that (it said
    // `keep-alive, close`).
    assert_eq!(answer.header("connection"), Some("close"));
    let refused = server.post("/", &[("x-dstar-event", "poke")], b"{}").await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("cache-control"), Some("no-store"));

    let page = server.get("/live", &[]).await;
    let html = page.text();
    let stream = open_stream(&server, html).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("cache-control"), Some("no-store"));
    assert_eq!(stream.header("connection"), Some("close"));
    let event = server
        .post(
            "/__dstar/event",
            &[
                ("x-dstar-token", &token_after(html, "_dstarToken")),
                ("x-dstar-event", "script"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(event.status, 204, "{}", event.text());
    assert_eq!(event.header("cache-control"), Some("no-store"));

    let nav = server
        .post(
            "/__dstar/nav",
            &[
                ("x-dstar-token", &token_after(html, "d.nav")),
                ("x-dstar-url", "/"),
            ],
            b"",
        )
        .await;
    assert_eq!(nav.status, 200, "{}", nav.text());
    assert_eq!(nav.text(), r#"{"load":"/"}"#);
    assert_eq!(nav.header("cache-control"), Some("no-store"));
}

fn strict() -> SecurityHeaders {
    SecurityHeaders {
        content_security_policy: Some(ContentSecurityPolicy::strict()),
        ..SecurityHeaders::default()
    }
}

#[tokio::test]
async fn every_page_response_has_its_own_nonce_on_its_scripts_and_in_its_policy() {
    let server = serve(Some(strict())).await;
    for path in ["/", "/live"] {
        let first = server.get(path, &[]).await;
        let second = server.get(path, &[]).await;
        let (a, b) = (policy_nonce(&first), policy_nonce(&second));
        assert_eq!(a.len(), 32, "{a}");
        assert_ne!(a, b, "two responses of {path} share a nonce");
        let policy = first.header("content-security-policy").unwrap();
        assert!(policy.contains("script-src 'self' 'nonce-"), "{policy}");
        assert!(!policy.contains("'unsafe-inline'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        let nonces = script_nonces(first.text());
        // The client's module script, the debug client (the tests are a debug build), and on
        // live pages the live client (navigation and stream) too.
        assert_eq!(nonces.len(), if path == "/" { 2 } else { 3 }, "{nonces:?}");
        assert!(nonces.iter().all(|n| *n == a), "{nonces:?} vs {a}");
    }
}

/// Loads the live page under the strict policy, opens its stream and sends event `name`;
/// the server (kept running), the page's nonce and the stream, for the event's scripts.
async fn live_event_under_strict_policy(name: &str) -> (TestServer, String, SseStream) {
    let server = serve(Some(strict())).await;
    let page = server.get("/live", &[]).await;
    let nonce = policy_nonce(&page);
    let html = page.text();
    let stream = open_stream(&server, html).await;
    let event = server
        .post(
            "/__dstar/event",
            &[
                ("x-dstar-token", &token_after(html, "_dstarToken")),
                ("x-dstar-event", name),
            ],
            b"{}",
        )
        .await;
    assert_eq!(event.status, 204, "{}", event.text());
    (server, nonce, stream)
}

#[tokio::test]
async fn a_live_session_puts_its_page_nonce_on_the_scripts_it_sends() {
    let (_server, nonce, mut stream) = live_event_under_strict_policy("script").await;
    let script = stream.expect_event(WAIT).await;
    assert_eq!(script.event_type(), "datastar-patch-elements");
    let elements = script.data_text();
    assert!(elements.contains("console.log"), "{elements}");
    assert_eq!(script_nonces(&elements), [nonce]);
}

#[tokio::test]
async fn scripts_with_options_and_console_values_carry_the_page_nonce() {
    let (_server, nonce, mut stream) = live_event_under_strict_policy("options").await;
    let kept = stream.expect_event(WAIT).await;
    // The session numbers its events for replay: the script's own id is not used.
    assert_eq!(kept.id.as_deref(), Some("1"));
    let elements = kept.data_text();
    assert!(elements.contains(r#"type="module""#), "{elements}");
    assert!(!elements.contains("el.remove()"), "kept: {elements}");
    assert_eq!(script_nonces(&elements), std::slice::from_ref(&nonce));
    let console = stream.expect_event(WAIT).await.data_text();
    assert!(
        console.contains(r#"console.warn({"left":3,"tag":""#),
        "{console}"
    );
    assert!(
        !console.contains("</script>\""),
        "no early end of the script: {console}"
    );
    assert_eq!(script_nonces(&console), [nonce]);
}

#[tokio::test]
async fn headers_can_be_replaced_and_left_out() {
    let server = serve(Some(SecurityHeaders {
        referrer_policy: Some(HeaderValue::from_static("no-referrer")),
        frame_options: None,
        content_type_options: None,
        cache_control: Some(HeaderValue::from_static("private, no-cache")),
        content_security_policy: Some(
            ContentSecurityPolicy::new("script-src 'nonce-{nonce}'").report_only(),
        ),
    }))
    .await;
    for path in ["/", "/live"] {
        let page = server.get(path, &[]).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(page.header("x-frame-options"), None);
        assert_eq!(page.header("x-content-type-options"), None);
        assert_eq!(page.header("cache-control"), Some("private, no-cache"));
        assert_eq!(page.header("content-security-policy"), None);
        let policy = page
            .header("content-security-policy-report-only")
            .expect("a report-only policy");
        let nonce = &script_nonces(page.text())[0];
        assert_eq!(policy, format!("script-src 'nonce-{nonce}'"));
    }

    let server = serve(Some(SecurityHeaders {
        content_security_policy: None,
        ..SecurityHeaders::default()
    }))
    .await;
    let page = server.get("/", &[]).await;
    assert_eq!(page.header("content-security-policy"), None);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
}

#[tokio::test]
async fn a_stateless_pages_event_scripts_carry_the_pages_nonce() {
    let server = serve(Some(strict())).await;
    let page = server.get("/", &[]).await;
    let nonce = policy_nonce(&page);
    let token = dstar_tests::token_after(page.text(), "x-dstar-token");
    let answer = server
        .post(
            "/",
            &[("x-dstar-token", token.as_str()), ("x-dstar-event", "go")],
            "{}",
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    assert!(
        text.contains(&format!(r#"nonce="{nonce}""#)) && text.contains("/elsewhere"),
        "the redirect runs under the page's policy: {text}"
    );
}
