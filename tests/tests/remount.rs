//! Re-mounting in place: one test per row of the rules table in the session module's docs, over
//! real HTTP and SSE. A "restart" is a second server with the same signing key: the tab's
//! tokens are authentic there, and its session is gone.

use std::sync::Mutex;
use std::time::Duration;

use dstar::test::sse::SseEvent;
use dstar::token::{Keys, Purpose};
use dstar::{App, Ctx, Event, Html, Message, Mount, Page, Route, SessionEnd, View};
use dstar_tests::{SseStream, TestServer, token_after};

const WAIT: Duration = Duration::from_secs(5);
const KEY: &[u8] = b"remount tests";

/// The `name` of every `Desk` mounted in this test binary: tests run in parallel, so each
/// counts the mounts of its own page path only.
static MOUNTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn mounts(name: &str) -> usize {
    MOUNTS.lock().unwrap().iter().filter(|n| *n == name).count()
}

/// A live page that needs a `user` cookie (else it redirects to `/login`) and counts clicks.
struct Desk {
    user: String,
    clicks: u64,
}

impl Page for Desk {
    const ROUTE: Route = Route::new("Desk", "/desk/{name}", file!(), line!())
        .live()
        .events(&["click", "fail", "logout", "stop"]);

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        MOUNTS
            .lock()
            .unwrap()
            .push(mount.param("name").unwrap_or_default().to_owned());
        let user = mount
            .header("cookie")
            .and_then(|c| c.strip_prefix("user="))
            .map(str::to_owned)
            .ok_or_else(|| dstar::Error::redirect("/login"))?;
        let topic = format!("desk-{}", mount.param("name").unwrap_or_default());
        mount.subscribe(topic);
        Ok(Desk { user, clicks: 0 })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<p id="who">{{ user }}</p><p id="n">{{ n }}</p><button data-on:click="{{ event('click') }}">+</button>"#,
            serde_json::json!({ "user": self.user, "n": self.clicks }),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        self.clicks += 1;
        match event.name() {
            "logout" => cx.end_session(SessionEnd::Navigate("/bye".to_owned())),
            "stop" => cx.end_session(SessionEnd::Stop),
            // Fails after changing the state: running it twice would show.
            "fail" => Err(dstar::Error::unprocessable(format!(
                "refused after {} clicks",
                self.clicks
            ))),
            _ => Ok(()),
        }
    }

    async fn info(&mut self, cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
        // An administrator signs the user out from elsewhere.
        if message.get::<&str>() == Some(&"signed out") {
            cx.end_session(SessionEnd::Navigate("/signed-out".to_owned()))?;
        }
        Ok(())
    }
}

/// A stateless page: not something a stream can re-mount.
struct About;

impl Page for About {
    const ROUTE: Route = Route::new("About", "/about", file!(), line!());

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(About)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str("about", serde_json::json!({}))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }
}

fn app(keys: Keys) -> App {
    App::builder().keys(keys).build().unwrap()
}

async fn serve(app: &App) -> TestServer {
    TestServer::start(dstar::router![Desk, About].into_router(app.clone())).await
}

struct Tab {
    event_token: String,
    stream_token: String,
}

async fn open_tab(server: &TestServer, path: &str) -> Tab {
    let page = server.get(path, &[("cookie", "user=ada")]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    Tab {
        event_token: token_after(page.text(), "_dstarToken"),
        stream_token: token_after(page.text(), "_dstarStream"),
    }
}

/// The stream request a tab's Datastar client sends: its token, the cookie, the page's URL
/// as `Referer`, and `Last-Event-ID` on a retry.
async fn stream(
    server: &TestServer,
    token: &str,
    referer: Option<&str>,
    last_event_id: Option<u64>,
) -> SseStream {
    let last = last_event_id.map(|id| id.to_string());
    let mut headers = vec![("x-dstar-token", token), ("cookie", "user=ada")];
    if let Some(referer) = referer {
        headers.push(("referer", referer));
    }
    if let Some(last) = &last {
        headers.push(("last-event-id", last));
    }
    let stream = server
        .open_sse("POST", "/__dstar/stream", &headers, Some(b"{}"))
        .await
        .unwrap();
    assert_eq!(stream.status, 200);
    stream
}

fn url(server: &TestServer, path: &str) -> String {
    format!("http://{}{path}", server.addr())
}

async fn click(server: &TestServer, token: &str) -> dstar_tests::Response {
    send(server, token, "click", None).await
}

/// An event as the `event()` action sends it, with a click id when given (its retries
/// resend the same one).
async fn send(
    server: &TestServer,
    token: &str,
    name: &str,
    click: Option<&str>,
) -> dstar_tests::Response {
    let mut headers = vec![
        ("x-dstar-token", token),
        ("x-dstar-event", name),
        ("content-type", "application/json"),
    ];
    if let Some(click) = click {
        headers.push(("x-dstar-click", click));
    }
    server.post("/__dstar/event", &headers, b"{}").await
}

fn session_of(token: &str, purpose: Purpose) -> u128 {
    Keys::new(KEY).verify(token, purpose).unwrap().session
}

/// The first batch of a re-mounted stream: fresh tokens (for the same session), the
/// navigation token, one full render; ids above `last`. Returns the fresh event token.
async fn expect_remount(stream: &mut SseStream, id: u128, last: u64) -> String {
    let signals = stream.expect_event(WAIT).await;
    assert_eq!(
        signals.event.as_deref(),
        Some("datastar-patch-signals"),
        "{signals:?}"
    );
    assert_eq!(signals.id, Some((last + 1).to_string()));
    let json: serde_json::Value = serde_json::from_str(&signals.value("signals").unwrap()).unwrap();
    let event_token = json["_dstarToken"].as_str().unwrap().to_owned();
    assert_eq!(session_of(&event_token, Purpose::Csrf), id, "the same id");
    let stream_token = json["_dstarStream"].as_str().unwrap();
    assert_eq!(session_of(stream_token, Purpose::Stream), id);
    let script = stream.expect_event(WAIT).await;
    assert!(
        script
            .value("elements")
            .unwrap()
            .contains("window.__dstar.nav = "),
        "{script:?}"
    );
    assert_eq!(script.id, Some((last + 2).to_string()));
    let render = stream.expect_event(WAIT).await;
    assert_eq!(render.id, Some((last + 3).to_string()));
    assert_eq!(render.value("selector").as_deref(), Some("#dstar-root"));
    let body = render.value("elements").unwrap();
    assert!(
        body.starts_with(r#"<p id="who">ada</p><p id="n">0</p><button"#),
        "{body}"
    );
    event_token
}

fn is_guarded_reload(event: &SseEvent) -> bool {
    let elements = event.value("elements").unwrap_or_default();
    elements.contains("window.location.reload()")
        && elements.contains("dstar-reloads")
        && elements.contains("nonce=")
}

#[tokio::test]
async fn row_forged_or_tampered_token_is_401_on_the_stream_and_403_on_events() {
    let server = serve(&app(Keys::new(KEY))).await;
    let tab = open_tab(&server, "/desk/forged").await;
    let forged = Keys::new(b"not the key").sign(Purpose::Stream, 1 << 32, WAIT);
    let mut tampered = tab.stream_token.clone().into_bytes();
    tampered[10] = if tampered[10] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let referer = url(&server, "/desk/forged");
    for token in [forged.as_str(), tampered.as_str()] {
        let response = server
            .post(
                "/__dstar/stream",
                &[("x-dstar-token", token), ("referer", &referer)],
                b"{}",
            )
            .await;
        assert_eq!(response.status, 401);
        assert_eq!(response.text(), "stream refused: token signature invalid");
    }
    let forged = Keys::new(b"not the key").sign(Purpose::Csrf, 1 << 32, WAIT);
    let response = click(&server, &forged).await;
    assert_eq!(response.status, 403);
    assert!(response.text().contains("signature invalid"));
    // A forged token never mounts anything.
    assert_eq!(click(&server, &tab.event_token).await.status, 204);
}

#[tokio::test]
async fn row_session_gone_after_a_restart_is_re_mounted_in_place_with_the_same_id() {
    let first = serve(&app(Keys::new(KEY))).await;
    let tab = open_tab(&first, "/desk/restart").await;
    let id = session_of(&tab.stream_token, Purpose::Stream);
    let mut old = stream(&first, &tab.stream_token, None, None).await;
    assert_eq!(click(&first, &tab.event_token).await.status, 204);
    assert_eq!(old.expect_event(WAIT).await.id.as_deref(), Some("1"));
    drop(old);
    drop(first);

    // The restarted server: same key, no sessions.
    let second = serve(&app(Keys::new(KEY))).await;
    let referer = url(&second, "/desk/restart");
    // A click made before the stream is back is not lost: 503 with Retry-After.
    let early = click(&second, &tab.event_token).await;
    assert_eq!(early.status, 503, "{}", early.text());
    assert_eq!(early.header("retry-after"), Some("1"));
    assert!(
        early.text().contains("send the event again"),
        "{}",
        early.text()
    );

    let mut resumed = stream(&second, &tab.stream_token, Some(&referer), Some(1)).await;
    let fresh = expect_remount(&mut resumed, id, 1).await;
    // Both the page's original token and the fresh one reach the re-mounted session.
    assert_eq!(click(&second, &tab.event_token).await.status, 204);
    let patch = resumed.expect_event(WAIT).await;
    assert_eq!(patch.id.as_deref(), Some("5"));
    assert!(
        patch
            .value("elements")
            .unwrap()
            .contains(r#"<p id="n">1</p>"#)
    );
    assert_eq!(click(&second, &fresh).await.status, 204);
    assert!(
        resumed
            .expect_event(WAIT)
            .await
            .value("elements")
            .unwrap()
            .contains(r#"<p id="n">2</p>"#)
    );

    // The client's retry resends the original token: it resumes the same session (exact
    // replay), it does not mount again.
    drop(resumed);
    let before = mounts("restart");
    let mut retry = stream(&second, &tab.stream_token, Some(&referer), Some(5)).await;
    let replayed = retry.expect_event(WAIT).await;
    assert_eq!(replayed.id.as_deref(), Some("6"));
    assert!(
        replayed
            .value("elements")
            .unwrap()
            .contains(r#"<p id="n">2</p>"#)
    );
    assert_eq!(mounts("restart"), before, "no second mount");
}

#[tokio::test]
async fn row_re_mount_runs_mount_with_the_request_cookies_and_follows_its_redirect() {
    let server = serve(&app(Keys::new(KEY))).await;
    let token = Keys::new(KEY).sign(Purpose::Stream, (77 << 32) | 5, WAIT);
    let referer = url(&server, "/desk/cookies");
    // No cookie: mount redirects, and the stream navigates there.
    let response = server
        .post(
            "/__dstar/stream",
            &[("x-dstar-token", &token), ("referer", &referer)],
            b"{}",
        )
        .await;
    assert_eq!(response.status, 200);
    let events = dstar::test::sse::parse(response.text().as_bytes());
    assert_eq!(events.len(), 1, "{events:?}");
    let elements = events[0].value("elements").unwrap();
    assert!(
        elements.contains(r#"window.location.assign("/login")"#),
        "{elements}"
    );
    assert!(elements.contains("nonce="), "{elements}");
    // The redirect started no session.
    let app_sessions = server
        .post(
            "/__dstar/event",
            &[
                (
                    "x-dstar-token",
                    &Keys::new(KEY).sign(Purpose::Csrf, (77 << 32) | 5, WAIT),
                ),
                ("x-dstar-event", "click"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(app_sessions.status, 503);
}

#[tokio::test]
async fn row_no_referer_foreign_referer_or_no_live_route_reloads_with_a_guard() {
    let server = serve(&app(Keys::new(KEY))).await;
    let token = Keys::new(KEY).sign(Purpose::Stream, (78 << 32) | 6, WAIT);
    let foreign = "http://evil.example/desk/x".to_owned();
    let stateless = url(&server, "/about");
    let unknown = url(&server, "/nowhere");
    let scheme_relative = format!("http://{}//evil.example/desk/x", server.addr());
    for referer in [
        None,
        Some(foreign.as_str()),
        Some(stateless.as_str()),
        Some(unknown.as_str()),
        Some(scheme_relative.as_str()),
    ] {
        let mut headers = vec![("x-dstar-token", token.as_str()), ("cookie", "user=ada")];
        if let Some(referer) = referer {
            headers.push(("referer", referer));
        }
        let response = server.post("/__dstar/stream", &headers, b"{}").await;
        assert_eq!(response.status, 200, "{referer:?}");
        let events = dstar::test::sse::parse(response.text().as_bytes());
        assert_eq!(events.len(), 1, "{referer:?}: {events:?}");
        assert!(is_guarded_reload(&events[0]), "{referer:?}: {events:?}");
    }
}

#[tokio::test]
async fn row_expired_or_rotated_out_tokens_of_a_gone_session_re_mount() {
    let old_key = b"the key before rotation";
    let server = serve(&app(Keys::new(KEY).with_previous(old_key))).await;
    let referer = url(&server, "/desk/rotated");
    // Signed by the previous key.
    let id = (79 << 32) | 7;
    let rotated = Keys::new(old_key).sign(Purpose::Stream, id, WAIT);
    let mut s = stream(&server, &rotated, Some(&referer), Some(3)).await;
    expect_remount(&mut s, id, 3).await;
    // Expired.
    let id = (80 << 32) | 8;
    let expired = Keys::new(KEY).sign_at(Purpose::Stream, id, 1, 2);
    let mut s = stream(&server, &expired, Some(&referer), None).await;
    expect_remount(&mut s, id, 0).await;
}

#[tokio::test]
async fn an_expired_token_for_a_running_session_ends_it_and_the_retry_re_mounts() {
    let app = app(Keys::new(KEY));
    let server = serve(&app).await;
    let tab = open_tab(&server, "/desk/expired").await;
    let id = session_of(&tab.stream_token, Purpose::Stream);
    let referer = url(&server, "/desk/expired");
    let expired = Keys::new(KEY).sign_at(Purpose::Stream, id, 1, 2);
    let mut cut = stream(&server, &expired, Some(&referer), None).await;
    let hint = cut.next_block(WAIT).await.unwrap().unwrap();
    assert_eq!(hint.retry, Some(100));
    assert!(
        cut.next_event(WAIT).await.is_err(),
        "cut, so the client retries"
    );
    // The retry (same headers) once the session has ended is re-mounted.
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.sessions().handle(id).is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the session ends");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut s = stream(&server, &expired, Some(&referer), None).await;
    expect_remount(&mut s, id, 0).await;
}

#[tokio::test]
async fn concurrent_re_mounts_of_one_id_make_one_session() {
    let app = app(Keys::new(KEY));
    let server = serve(&app).await;
    let id = (81 << 32) | 9;
    let token = Keys::new(KEY).sign(Purpose::Stream, id, WAIT);
    let referer = url(&server, "/desk/race");
    let (a, b) = tokio::join!(
        stream(&server, &token, Some(&referer), None),
        stream(&server, &token, Some(&referer), None)
    );
    assert_eq!(app.sessions().len(), 1);
    // The later stream replaced the earlier one: exactly one of them stays open.
    drop((a, b));
    let event = Keys::new(KEY).sign(Purpose::Csrf, id, WAIT);
    assert_eq!(click(&server, &event).await.status, 204);
}

#[tokio::test]
async fn debug_builds_keep_their_key_across_app_starts() {
    // No key configured: a debug build uses the development key file under the target
    // directory (or `DSTAR_SECRET_KEY`), so a second start verifies the first's tokens.
    let first = App::builder().build().unwrap();
    let token = first.keys().sign(Purpose::Stream, 42, WAIT);
    let second = App::builder().build().unwrap();
    assert_eq!(
        second
            .keys()
            .verify(&token, Purpose::Stream)
            .unwrap()
            .session,
        42
    );
}

#[tokio::test]
async fn a_click_sent_again_is_applied_once() {
    let first = serve(&app(Keys::new(KEY))).await;
    let page = first.get("/desk/clicks", &[("cookie", "user=ada")]).await;
    // The live page's `event()` action sends a click id and retries, bounded.
    let html = page.text();
    assert!(html.contains("x-dstar-click"), "{html}");
    assert!(html.contains("retryMaxCount: 5"), "{html}");
    let tab = Tab {
        event_token: token_after(page.text(), "_dstarToken"),
        stream_token: token_after(page.text(), "_dstarStream"),
    };
    let id = session_of(&tab.stream_token, Purpose::Stream);
    let referer = url(&first, "/desk/clicks");
    let mut s = stream(&first, &tab.stream_token, Some(&referer), None).await;

    // A handler that changed the state and then failed: the retry gets the same answer and
    // the handler does not run again.
    for _ in 0..3 {
        let failed = send(&first, &tab.event_token, "fail", Some("k1")).await;
        assert_eq!(failed.status, 422);
        assert_eq!(failed.text(), "refused after 1 clicks");
    }
    // A new click is a new event.
    assert_eq!(
        send(&first, &tab.event_token, "click", Some("k2"))
            .await
            .status,
        204
    );
    let n = s.expect_event(WAIT).await;
    assert!(
        n.value("elements").unwrap().contains(r#"<p id="n">2</p>"#),
        "{n:?}"
    );
    assert_eq!(
        send(&first, &tab.event_token, "click", Some("k2"))
            .await
            .status,
        204
    );
    drop(s);
    drop(first);

    // During a restart: the click is refused (503, not applied), then, once the stream has
    // re-mounted the page, the same click (a retry) is applied, once.
    let second = serve(&app(Keys::new(KEY))).await;
    let referer = url(&second, "/desk/clicks");
    let early = send(&second, &tab.event_token, "click", Some("k3")).await;
    assert_eq!(early.status, 503);
    let mut s = stream(&second, &tab.stream_token, Some(&referer), Some(9)).await;
    expect_remount(&mut s, id, 9).await;
    for _ in 0..2 {
        assert_eq!(
            send(&second, &tab.event_token, "click", Some("k3"))
                .await
                .status,
            204
        );
    }
    let applied = s.expect_event(WAIT).await;
    assert!(
        applied
            .value("elements")
            .unwrap()
            .contains(r#"<p id="n">1</p>"#)
    );
    // Nothing else was applied: the next click makes it 2.
    assert_eq!(
        send(&second, &tab.event_token, "click", Some("k4"))
            .await
            .status,
        204
    );
    let next = s.expect_event(WAIT).await;
    assert!(
        next.value("elements")
            .unwrap()
            .contains(r#"<p id="n">2</p>"#),
        "{next:?}"
    );

    let long = "x".repeat(65);
    let refused = send(&second, &tab.event_token, "click", Some(&long)).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.text().contains("x-dstar-click"),
        "{}",
        refused.text()
    );
}

#[tokio::test]
async fn row_a_session_ended_on_purpose_gets_its_last_instruction_and_is_never_re_mounted() {
    let server = serve(&app(Keys::new(KEY))).await;
    let referer = url(&server, "/desk/logout");
    let tab = open_tab(&server, "/desk/logout").await;
    let mut s = stream(&server, &tab.stream_token, Some(&referer), None).await;
    assert_eq!(
        send(&server, &tab.event_token, "logout", None).await.status,
        204
    );
    let last = s.expect_event(WAIT).await;
    let elements = last.value("elements").unwrap();
    assert!(
        elements.contains(r#"window.location.assign("/bye")"#) && elements.contains("nonce="),
        "{last:?}"
    );
    assert_eq!(s.next_event(WAIT).await.unwrap(), None, "the stream ends");

    let refused = click(&server, &tab.event_token).await;
    assert_eq!(refused.status, 410);
    assert!(
        refused.text().contains("session has ended"),
        "{}",
        refused.text()
    );
    // The tab's stream, if it comes back, is told the same; nothing is mounted.
    let before = mounts("logout");
    let again = server
        .post(
            "/__dstar/stream",
            &[
                ("x-dstar-token", &tab.stream_token),
                ("referer", &referer),
                ("cookie", "user=ada"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(again.status, 200);
    let events = dstar::test::sse::parse(again.text().as_bytes());
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0]
            .value("elements")
            .unwrap()
            .contains(r#"window.location.assign("/bye")"#)
    );
    assert_eq!(mounts("logout"), before, "never re-mounted");

    // `Stop`: the stream just ends, and stays ended.
    let tab = open_tab(&server, "/desk/logout").await;
    let mut s = stream(&server, &tab.stream_token, Some(&referer), None).await;
    assert_eq!(
        send(&server, &tab.event_token, "stop", None).await.status,
        204
    );
    let render = s.expect_event(WAIT).await;
    assert!(
        render
            .value("elements")
            .unwrap()
            .contains(r#"<p id="n">1</p>"#)
    );
    assert_eq!(s.next_event(WAIT).await.unwrap(), None, "the stream ends");
    assert_eq!(click(&server, &tab.event_token).await.status, 410);
    let again = server
        .post(
            "/__dstar/stream",
            &[("x-dstar-token", &tab.stream_token), ("referer", &referer)],
            b"{}",
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.text(), "", "no instruction, no re-mount");
}

#[tokio::test]
async fn a_session_ended_from_info_is_ended_on_purpose_too() {
    let app = app(Keys::new(KEY));
    let server = serve(&app).await;
    let referer = url(&server, "/desk/admin");
    let tab = open_tab(&server, "/desk/admin").await;
    let mut s = stream(&server, &tab.stream_token, Some(&referer), None).await;
    assert_eq!(
        app.pubsub()
            .publish("desk-admin", Message::new("signed out")),
        1
    );
    let last = s.expect_event(WAIT).await;
    assert!(
        last.value("elements")
            .unwrap()
            .contains(r#"window.location.assign("/signed-out")"#),
        "{last:?}"
    );
    assert_eq!(s.next_event(WAIT).await.unwrap(), None, "the stream ends");
    assert_eq!(click(&server, &tab.event_token).await.status, 410);
}

#[tokio::test]
async fn row_a_reaped_session_is_re_mounted_in_place() {
    // A session whose stream did not connect in time is reaped; its tab's stream, arriving
    // late, gets the page back under the same id.
    let app = App::builder()
        .keys(Keys::new(KEY))
        .sessions(dstar::session::SessionConfig {
            connect_deadline: Duration::from_millis(50),
            ..dstar::session::SessionConfig::default()
        })
        .build()
        .unwrap();
    let server = serve(&app).await;
    let tab = open_tab(&server, "/desk/reaped").await;
    let id = session_of(&tab.stream_token, Purpose::Stream);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(app.sessions().is_empty() && app.sessions().tasks() == 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session is reaped"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let referer = url(&server, "/desk/reaped");
    let mut s = stream(&server, &tab.stream_token, Some(&referer), None).await;
    expect_remount(&mut s, id, 0).await;
    assert_eq!(app.sessions().len(), 1);
    assert_eq!(click(&server, &tab.event_token).await.status, 204);
}

#[tokio::test]
async fn a_page_under_a_mount_prefix_is_re_mounted_from_its_full_url() {
    let nested = |app: &App| {
        axum::Router::new().nest("/app", dstar::router![Desk, About].into_router(app.clone()))
    };
    let first = TestServer::start(nested(&app(Keys::new(KEY)))).await;
    let page = first
        .get("/app/desk/nested", &[("cookie", "user=ada")])
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let token = token_after(page.text(), "_dstarStream");
    let id = session_of(&token, Purpose::Stream);
    drop(first);

    let second = TestServer::start(nested(&app(Keys::new(KEY)))).await;
    let open = |token: String, referer: String| {
        let second = &second;
        async move {
            let headers = [
                ("x-dstar-token", token.as_str()),
                ("cookie", "user=ada"),
                ("referer", referer.as_str()),
            ];
            second
                .open_sse("POST", "/app/__dstar/stream", &headers, Some(b"{}"))
                .await
                .unwrap()
        }
    };
    // The Referer is the page's URL as the browser sees it, under `/app`.
    let mut resumed = open(token.clone(), url(&second, "/app/desk/nested")).await;
    assert_eq!(resumed.status, 200);
    expect_remount(&mut resumed, id, 0).await;
    assert_eq!(mounts("nested"), 2, "mounted again, with its app path");
    drop(resumed);

    // A URL outside the mount is not this app's page: a guarded reload, no mount.
    let gone = Keys::new(KEY).sign(Purpose::Stream, (79 << 32) | 7, WAIT);
    let mut outside = open(gone, url(&second, "/desk/nested")).await;
    assert!(is_guarded_reload(&outside.expect_event(WAIT).await));
    assert_eq!(mounts("nested"), 2);
}
