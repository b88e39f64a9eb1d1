//! Live sessions over real HTTP and SSE: every lifecycle rule of the session task.
//!
//! The page here implements `dstar::Page` by hand (what `#[dstar::page]` writes), so these
//! tests pin the runtime's behaviour independently of the macro.

use std::time::Duration;

use dstar::session::SessionConfig;
use dstar::test::sse::SseEvent;
use dstar::token::{Keys, Purpose};
use dstar::{App, Ctx, Event, Html, Message, Mount, Page, Route, View};
use dstar_tests::{SseStream, TestServer, token_after};

const WAIT: Duration = Duration::from_secs(5);

/// A live page with a counter, a panic button and a big body for overflow tests.
struct Room {
    count: u64,
    padding: usize,
}

impl Page for Room {
    const ROUTE: Route = Route::new("Room", "/room", file!(), line!())
        .live()
        .events(&["bump", "boom", "quiet", "share"]);

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        mount.subscribe("room");
        let padding = mount
            .query_param("padding")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Ok(Room { count: 0, padding })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<p id="n">{{ n }}</p>{% if pad %}<pre>{{ pad }}</pre>{% endif %}"#,
            serde_json::json!({ "n": self.count, "pad": "x".repeat(self.padding) }),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "bump" => {
                self.count += 1;
                Ok(())
            }
            "quiet" => {
                cx.skip_render();
                cx.patch_signals(&serde_json::json!({ "quiet": true }))
            }
            "boom" => panic!("a handler bug"),
            "share" => {
                // Shown here by the re-render after the handler; the others learn it by PubSub.
                self.count += 10;
                cx.publish_others("room", 10u64);
                Ok(())
            }
            _ => Err(event.unknown()),
        }
    }

    async fn info(&mut self, _cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
        if let Some(n) = message.get::<u64>() {
            self.count += n;
        }
        Ok(())
    }
}

fn app_with(config: SessionConfig) -> App {
    App::builder()
        .secret_key(b"live tests (a test key of 32+ bytes)")
        .sessions(config)
        .build()
        .unwrap()
}

async fn serve(app: &App) -> TestServer {
    TestServer::start(dstar::router![Room].into_router(app.clone())).await
}

/// A tab: the tokens of a loaded live page.
struct Tab {
    event_token: String,
    stream_token: String,
}

async fn open_tab(server: &TestServer, path: &str) -> Tab {
    let page = server.get(path, &[]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(
        html.contains(r#"data-init="window.__dstar.live.start(el, $_dstarStream, "#),
        "the page starts its stream through the live client:\n{html}"
    );
    Tab {
        event_token: token_after(html, "_dstarToken"),
        stream_token: token_after(html, "_dstarStream"),
    }
}

async fn connect(server: &TestServer, tab: &Tab, last_event_id: Option<u64>) -> SseStream {
    let last = last_event_id.map(|id| id.to_string());
    let mut headers = vec![("x-dstar-token", tab.stream_token.as_str())];
    if let Some(last) = &last {
        headers.push(("last-event-id", last.as_str()));
    }
    let stream = server
        .open_sse("POST", "/__dstar/stream", &headers, Some(b"{}"))
        .await
        .unwrap();
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    stream
}

async fn send(server: &TestServer, tab: &Tab, event: &str) -> dstar_tests::Response {
    server
        .post(
            "/__dstar/event",
            &[
                ("x-dstar-token", &tab.event_token),
                ("x-dstar-event", event),
                ("content-type", "application/json"),
            ],
            b"{}",
        )
        .await
}

fn root_html(event: &SseEvent) -> String {
    assert_eq!(event.event.as_deref(), Some("datastar-patch-elements"));
    assert_eq!(event.value("selector").as_deref(), Some("#dstar-root"));
    assert_eq!(event.value("mode").as_deref(), Some("inner"));
    event.value("elements").unwrap()
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn events_and_messages_patch_the_stream_in_order() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    let mut stream = connect(&server, &tab, None).await;

    let reply = send(&server, &tab, "bump").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let event = stream.expect_event(WAIT).await;
    assert_eq!(event.id.as_deref(), Some("1"));
    assert_eq!(root_html(&event), r#"<p id="n">1</p>"#);

    assert_eq!(app.pubsub().publish("room", Message::new(5u64)), 1);
    let event = stream.expect_event(WAIT).await;
    assert_eq!(event.id.as_deref(), Some("2"));
    assert_eq!(root_html(&event), r#"<p id="n">6</p>"#);

    // A handler that skips the re-render sends only what it queued.
    assert_eq!(send(&server, &tab, "quiet").await.status, 204);
    let event = stream.expect_event(WAIT).await;
    assert_eq!(event.event.as_deref(), Some("datastar-patch-signals"));
    assert_eq!(event.id.as_deref(), Some("3"));
    assert_eq!(event.value("signals").as_deref(), Some(r#"{"quiet":true}"#));
}

#[tokio::test]
async fn bad_events_get_their_status_and_the_session_keeps_working() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    let mut stream = connect(&server, &tab, None).await;

    let unknown = send(&server, &tab, "nope").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.text(), "unknown event `nope`");

    let forged = Tab {
        event_token: Keys::new(b"other").sign(Purpose::Csrf, 1, WAIT),
        stream_token: String::new(),
    };
    assert_eq!(send(&server, &forged, "bump").await.status, 403);
    let wrong_purpose = Tab {
        event_token: tab.stream_token.clone(),
        stream_token: String::new(),
    };
    let refused = send(&server, &wrong_purpose, "bump").await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.text().contains("another purpose"),
        "{}",
        refused.text()
    );

    let bad_json = server
        .post(
            "/__dstar/event",
            &[
                ("x-dstar-token", &tab.event_token),
                ("x-dstar-event", "bump"),
            ],
            b"{not json",
        )
        .await;
    assert_eq!(bad_json.status, 400);

    assert_eq!(send(&server, &tab, "bump").await.status, 204);
    assert_eq!(
        root_html(&stream.expect_event(WAIT).await),
        r#"<p id="n">1</p>"#
    );
}

#[tokio::test]
async fn stream_tokens_are_checked() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    // An expired token is authentic: its tab is re-mounted (tests/remount.rs), not refused.
    let cases = [
        ("missing", String::new(), "token missing"),
        ("malformed", "xyz".to_owned(), "token malformed"),
        (
            "forged",
            Keys::new(b"wrong key").sign(Purpose::Stream, 7, WAIT),
            "token signature invalid",
        ),
        (
            "wrong purpose",
            tab.event_token.clone(),
            "token issued for another purpose",
        ),
    ];
    for (what, token, message) in cases {
        let response = server
            .post("/__dstar/stream", &[("x-dstar-token", &token)], b"{}")
            .await;
        assert_eq!(response.status, 401, "{what}");
        assert_eq!(
            response.text(),
            format!("stream refused: {message}"),
            "{what}"
        );
    }
    // Flipping any byte of a valid token makes it invalid.
    for i in (0..tab.stream_token.len()).step_by(7) {
        let mut bytes = tab.stream_token.clone().into_bytes();
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let token = String::from_utf8(bytes).unwrap();
        let response = server
            .post("/__dstar/stream", &[("x-dstar-token", &token)], b"{}")
            .await;
        assert_eq!(response.status, 401, "byte {i}");
    }
}

#[tokio::test]
async fn a_stream_for_a_session_that_is_gone_reloads_the_page() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let token =
        Keys::new(b"live tests (a test key of 32+ bytes)").sign(Purpose::Stream, 12345 << 32, WAIT);
    let tab = Tab {
        event_token: String::new(),
        stream_token: token,
    };
    let mut stream = connect(&server, &tab, Some(4)).await;
    let event = stream.expect_event(WAIT).await;
    assert_eq!(event.value("selector").as_deref(), Some("body"));
    assert!(
        event
            .value("elements")
            .unwrap()
            .contains("window.location.reload()")
    );
    assert_eq!(
        stream.next_event(WAIT).await.unwrap(),
        None,
        "the stream ends after the reload"
    );
}

#[tokio::test]
async fn a_reconnect_gets_exactly_the_missed_events() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    let mut stream = connect(&server, &tab, None).await;
    assert_eq!(send(&server, &tab, "bump").await.status, 204);
    let first = stream.expect_event(WAIT).await;
    assert_eq!(first.id.as_deref(), Some("1"));
    drop(stream);

    // While disconnected, two more updates happen.
    assert_eq!(send(&server, &tab, "bump").await.status, 204);
    assert_eq!(app.pubsub().publish("room", Message::new(10u64)), 1);

    let mut stream = connect(&server, &tab, Some(1)).await;
    let second = stream.expect_event(WAIT).await;
    let third = stream.expect_event(WAIT).await;
    assert_eq!(
        (second.id.as_deref(), root_html(&second).as_str()),
        (Some("2"), r#"<p id="n">2</p>"#)
    );
    assert_eq!(
        (third.id.as_deref(), root_html(&third).as_str()),
        (Some("3"), r#"<p id="n">12</p>"#)
    );
    // Nothing is repeated: the next event is the next update.
    assert_eq!(send(&server, &tab, "bump").await.status, 204);
    let fourth = stream.expect_event(WAIT).await;
    assert_eq!(
        (fourth.id.as_deref(), root_html(&fourth).as_str()),
        (Some("4"), r#"<p id="n">13</p>"#)
    );
}

#[tokio::test]
async fn a_reconnect_past_the_ring_gets_a_full_render() {
    let app = app_with(SessionConfig {
        replay_events: 2,
        ..SessionConfig::default()
    });
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    let stream = connect(&server, &tab, None).await;
    drop(stream);
    for _ in 0..5 {
        assert_eq!(send(&server, &tab, "bump").await.status, 204);
    }
    let mut stream = connect(&server, &tab, Some(0)).await;
    let event = stream.expect_event(WAIT).await;
    assert_eq!(root_html(&event), r#"<p id="n">5</p>"#);
    assert_eq!(event.id.as_deref(), Some("6"));
}

#[tokio::test]
async fn the_ring_is_bounded_by_bytes_too() {
    // A root patch of this page is 60 to 125 bytes: 250 bytes hold the last two, whatever the
    // count bound.
    let app = app_with(SessionConfig {
        replay_events: 64,
        replay_bytes: 250,
        ..SessionConfig::default()
    });
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    drop(connect(&server, &tab, None).await);
    for _ in 0..5 {
        assert_eq!(send(&server, &tab, "bump").await.status, 204);
    }
    // The last two are replayed exactly.
    let mut stream = connect(&server, &tab, Some(3)).await;
    for n in [4, 5] {
        let event = stream.expect_event(WAIT).await;
        assert_eq!(
            (event.id.clone(), root_html(&event)),
            (Some(n.to_string()), format!(r#"<p id="n">{n}</p>"#))
        );
    }
    drop(stream);
    // Further back than the bytes allow: one full render.
    let mut stream = connect(&server, &tab, Some(2)).await;
    let event = stream.expect_event(WAIT).await;
    assert_eq!(root_html(&event), r#"<p id="n">5</p>"#);
    assert_eq!(event.id.as_deref(), Some("6"));
}

#[tokio::test]
async fn a_publisher_that_skips_itself_renders_once() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let (me, other) = (
        open_tab(&server, "/room").await,
        open_tab(&server, "/room").await,
    );
    let mut mine = connect(&server, &me, None).await;
    let mut theirs = connect(&server, &other, None).await;
    assert_eq!(send(&server, &me, "share").await.status, 204);
    let event = mine.expect_event(WAIT).await;
    assert_eq!(
        (event.id.as_deref(), root_html(&event).as_str()),
        (Some("1"), r#"<p id="n">10</p>"#)
    );
    let event = theirs.expect_event(WAIT).await;
    assert_eq!(root_html(&event), r#"<p id="n">10</p>"#);
    // The next event on the publisher's stream is its next render, not a second one of its
    // own message.
    assert_eq!(send(&server, &me, "bump").await.status, 204);
    let event = mine.expect_event(WAIT).await;
    assert_eq!(
        (event.id.as_deref(), root_html(&event).as_str()),
        (Some("2"), r#"<p id="n">11</p>"#)
    );
}

#[tokio::test]
async fn a_second_stream_replaces_the_first() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    let mut first = connect(&server, &tab, None).await;
    let mut second = connect(&server, &tab, None).await;
    assert_eq!(
        first.next_event(WAIT).await.unwrap(),
        None,
        "the old stream is closed"
    );
    assert_eq!(send(&server, &tab, "bump").await.status, 204);
    assert_eq!(
        root_html(&second.expect_event(WAIT).await),
        r#"<p id="n">1</p>"#
    );
}

#[tokio::test]
async fn sessions_that_never_connect_are_reaped() {
    let app = app_with(SessionConfig {
        connect_deadline: Duration::from_millis(100),
        ..SessionConfig::default()
    });
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    assert_eq!(app.sessions().len(), 1);
    wait_until("the session is reaped", || {
        app.sessions().is_empty() && app.sessions().tasks() == 0
    })
    .await;
    let mut stream = connect(&server, &tab, None).await;
    let event = stream.expect_event(WAIT).await;
    assert!(
        event
            .value("elements")
            .unwrap()
            .contains("window.location.reload()")
    );
}

#[tokio::test]
async fn a_dropped_stream_ends_the_session_after_the_grace_period() {
    let app = app_with(SessionConfig {
        reconnect_grace: Duration::from_millis(100),
        ..SessionConfig::default()
    });
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    let stream = connect(&server, &tab, None).await;
    assert_eq!(send(&server, &tab, "bump").await.status, 204);
    drop(stream);
    wait_until("the session ends", || {
        app.sessions().is_empty() && app.sessions().tasks() == 0
    })
    .await;
    // Not applied, and not lost: the tab's stream re-mounts the page, then the event is sent
    // again.
    let gone = send(&server, &tab, "bump").await;
    assert_eq!(gone.status, 503);
    assert_eq!(gone.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn a_panicking_handler_ends_only_its_own_session() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let crashing = open_tab(&server, "/room").await;
    let healthy = open_tab(&server, "/room").await;
    let mut crashing_stream = connect(&server, &crashing, None).await;
    let mut healthy_stream = connect(&server, &healthy, None).await;

    assert_eq!(send(&server, &crashing, "boom").await.status, 500);
    let event = crashing_stream.expect_event(WAIT).await;
    assert!(
        event
            .value("elements")
            .unwrap()
            .contains("window.location.reload()")
    );
    assert_eq!(crashing_stream.next_event(WAIT).await.unwrap(), None);
    wait_until("the crashed session is gone", || app.sessions().len() == 1).await;

    assert_eq!(send(&server, &healthy, "bump").await.status, 204);
    assert_eq!(
        root_html(&healthy_stream.expect_event(WAIT).await),
        r#"<p id="n">1</p>"#
    );
}

#[tokio::test]
async fn the_session_cap_answers_503() {
    let app = app_with(SessionConfig {
        max_sessions: 2,
        ..SessionConfig::default()
    });
    let server = serve(&app).await;
    open_tab(&server, "/room").await;
    open_tab(&server, "/room").await;
    let third = server.get("/room", &[]).await;
    assert_eq!(third.status, 503);
    // A page load: the error page, which says why (only a 500 keeps its message to the log).
    assert_eq!(
        third.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        third
            .text()
            .contains("too many live sessions; try again later"),
        "{}",
        third.text()
    );
}

#[tokio::test]
async fn a_slow_client_gets_one_full_render_instead_of_the_backlog() {
    let app = app_with(SessionConfig {
        stream_queue: 4,
        ..SessionConfig::default()
    });
    let server = serve(&app).await;
    // 256 KiB per render: the socket buffers fill after a few, then the queue overflows.
    let tab = open_tab(&server, "/room?padding=262144").await;
    let mut stream = connect(&server, &tab, None).await;
    const MESSAGES: u64 = 200;
    for _ in 0..MESSAGES {
        app.pubsub().publish("room", Message::new(1u64));
    }
    // A bound, not a synchronisation: between two events the session may render many 256 KiB
    // pages (slow in a debug build on a loaded machine) before the queue overflows.
    let patience = Duration::from_secs(60);
    let mut received = 0;
    loop {
        let event = stream.expect_event(patience).await;
        received += 1;
        if root_html(&event).starts_with(&format!(r#"<p id="n">{MESSAGES}</p>"#)) {
            break;
        }
    }
    assert!(
        received < MESSAGES,
        "the backlog was replaced ({received} events for {MESSAGES} updates)"
    );
}

#[tokio::test]
async fn connect_disconnect_cycles_leave_nothing_behind() {
    let app = app_with(SessionConfig {
        reconnect_grace: Duration::from_millis(1),
        ..SessionConfig::default()
    });
    let server = serve(&app).await;
    for _ in 0..200 {
        let tab = open_tab(&server, "/room").await;
        let stream = connect(&server, &tab, None).await;
        drop(stream);
    }
    wait_until("every session ended", || {
        app.sessions().is_empty() && app.sessions().tasks() == 0
    })
    .await;
    assert_eq!(
        app.pubsub().publish("room", Message::new(1u64)),
        0,
        "no subscriber is left behind"
    );
}

#[tokio::test]
async fn shutdown_ends_streams_for_reconnection() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    let mut stream = connect(&server, &tab, None).await;
    app.sessions().shutdown(WAIT).await;
    assert_eq!(app.sessions().tasks(), 0);
    let block = stream.next_block(WAIT).await.unwrap().unwrap();
    assert_eq!(block.retry, Some(1000));
    assert!(
        stream.next_block(WAIT).await.is_err(),
        "the stream is cut, not finished, so the client retries"
    );
}

#[tokio::test]
async fn tokens_are_renewed_through_a_signal_before_they_expire() {
    let ttl = Duration::from_secs(2);
    let app = app_with(SessionConfig {
        token_ttl: ttl,
        ..SessionConfig::default()
    });
    let server = serve(&app).await;
    let loaded = tokio::time::Instant::now();
    let tab = open_tab(&server, "/room").await;
    let mut stream = connect(&server, &tab, None).await;
    // Halfway through the token's life, fresh tokens arrive as signals.
    let renewal = stream.expect_event(ttl).await;
    assert_eq!(renewal.event.as_deref(), Some("datastar-patch-signals"));
    let signals: serde_json::Value =
        serde_json::from_str(&renewal.value("signals").unwrap()).unwrap();
    let renewed = Tab {
        event_token: signals["_dstarToken"].as_str().unwrap().to_owned(),
        stream_token: signals["_dstarStream"].as_str().unwrap().to_owned(),
    };
    assert_ne!(renewed.event_token, tab.event_token);
    assert_eq!(send(&server, &renewed, "bump").await.status, 204);
    // Once the first token's time is up, it is refused and the renewed one still works.
    tokio::time::sleep_until(loaded + ttl + Duration::from_millis(100)).await;
    assert_eq!(send(&server, &tab, "bump").await.status, 403);
    assert_eq!(send(&server, &renewed, "bump").await.status, 204);
}

#[tokio::test]
async fn a_cut_stream_reconnects_to_the_same_state() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    let mut stream = connect(&server, &tab, None).await;
    assert_eq!(send(&server, &tab, "bump").await.status, 204);
    assert_eq!(stream.expect_event(WAIT).await.id.as_deref(), Some("1"));

    app.sessions().disconnect_streams();
    assert!(
        stream.next_block(WAIT).await.is_err(),
        "the stream is cut like a network failure"
    );
    assert_eq!(
        app.sessions().len(),
        1,
        "the session stays for the reconnect"
    );
    assert_eq!(send(&server, &tab, "bump").await.status, 204);

    let mut stream = connect(&server, &tab, Some(1)).await;
    let missed = stream.expect_event(WAIT).await;
    assert_eq!(
        (missed.id.as_deref(), root_html(&missed).as_str()),
        (Some("2"), r#"<p id="n">2</p>"#)
    );
}

#[tokio::test]
async fn a_head_request_starts_no_session() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let head = server.request("HEAD", "/room", &[], None).await.unwrap();
    assert_eq!(head.status, 200);
    assert!(app.sessions().is_empty());
}

#[tokio::test]
async fn a_broadcast_is_encoded_once_and_each_session_numbers_it() {
    use dstar::sse::{Mode, PatchElements};
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let first = open_tab(&server, "/room").await;
    let second = open_tab(&server, "/room").await;
    let mut first_stream = connect(&server, &first, None).await;
    let mut second_stream = connect(&server, &second, None).await;
    assert_eq!(send(&server, &first, "bump").await.status, 204);
    assert_eq!(
        first_stream.expect_event(WAIT).await.id.as_deref(),
        Some("1")
    );

    let line = PatchElements::new("<li>hello\nworld</li>")
        .selector("#log")
        .mode(Mode::Append)
        .to_bytes();
    assert_eq!(app.pubsub().broadcast("room", line), 2);
    for (stream, id) in [(&mut first_stream, "2"), (&mut second_stream, "1")] {
        let event = stream.expect_event(WAIT).await;
        assert_eq!(event.event.as_deref(), Some("datastar-patch-elements"));
        assert_eq!(
            event.id.as_deref(),
            Some(id),
            "each session numbers the shared event"
        );
        assert_eq!(event.value("selector").as_deref(), Some("#log"));
        assert_eq!(event.value("mode").as_deref(), Some("append"));
        assert_eq!(
            event.value("elements").as_deref(),
            Some("<li>hello\nworld</li>")
        );
    }

    // A reconnect replays the shared event like any other.
    drop(second_stream);
    let mut second_stream = connect(&server, &second, Some(0)).await;
    let replayed = second_stream.expect_event(WAIT).await;
    assert_eq!(replayed.id.as_deref(), Some("1"));
    assert_eq!(
        replayed.value("elements").as_deref(),
        Some("<li>hello\nworld</li>")
    );
    // And the session's own events continue the numbering.
    assert_eq!(send(&server, &second, "bump").await.status, 204);
    assert_eq!(
        second_stream.expect_event(WAIT).await.id.as_deref(),
        Some("2")
    );
}

async fn pause(server: &TestServer, token: &str) -> dstar_tests::Response {
    server
        .post("/__dstar/pause", &[("x-dstar-token", token)], b"")
        .await
}

#[tokio::test]
async fn a_paused_stream_ends_cleanly_and_its_session_waits_the_hidden_grace() {
    let app = app_with(SessionConfig {
        reconnect_grace: Duration::from_millis(100),
        hidden_grace: Duration::from_secs(3600),
        ..SessionConfig::default()
    });
    let server = serve(&app).await;
    let hidden = open_tab(&server, "/room").await;
    let closed = open_tab(&server, "/room").await;
    let mut hidden_stream = connect(&server, &hidden, None).await;
    assert_eq!(send(&server, &hidden, "bump").await.status, 204);
    assert_eq!(
        hidden_stream.expect_event(WAIT).await.id.as_deref(),
        Some("1")
    );

    let paused = pause(&server, &hidden.stream_token).await;
    assert_eq!(paused.status, 204);
    assert_eq!(paused.header("cache-control"), Some("no-store"));
    // The server ends the stream itself, cleanly: the browser gets its connection back.
    assert_eq!(hidden_stream.next_event(WAIT).await.unwrap(), None);

    // A tab closed after the pause is gone after the reconnect grace; the paused one is not.
    drop(connect(&server, &closed, None).await);
    wait_until("the closed tab's session ends", || {
        app.sessions().len() == 1
    })
    .await;
    assert_eq!(send(&server, &hidden, "bump").await.status, 204);
    assert_eq!(app.pubsub().publish("room", Message::new(10u64)), 1);

    // Shown again: it resumes with exactly what it missed.
    let mut resumed = connect(&server, &hidden, Some(1)).await;
    let second = resumed.expect_event(WAIT).await;
    let third = resumed.expect_event(WAIT).await;
    assert_eq!(
        (second.id.as_deref(), root_html(&second).as_str()),
        (Some("2"), r#"<p id="n">2</p>"#)
    );
    assert_eq!(
        (third.id.as_deref(), root_html(&third).as_str()),
        (Some("3"), r#"<p id="n">12</p>"#)
    );
}

#[tokio::test]
async fn a_tab_hidden_before_its_stream_connected_keeps_its_session() {
    let app = app_with(SessionConfig {
        connect_deadline: Duration::from_millis(100),
        hidden_grace: Duration::from_secs(3600),
        ..SessionConfig::default()
    });
    let server = serve(&app).await;
    let background = open_tab(&server, "/room").await;
    let _never = open_tab(&server, "/room").await;
    assert_eq!(pause(&server, &background.stream_token).await.status, 204);
    wait_until("the tab that never connected is reaped", || {
        app.sessions().len() == 1
    })
    .await;
    let mut stream = connect(&server, &background, None).await;
    assert_eq!(send(&server, &background, "bump").await.status, 204);
    assert_eq!(
        root_html(&stream.expect_event(WAIT).await),
        r#"<p id="n">1</p>"#
    );
}

#[tokio::test]
async fn pausing_checks_the_token_and_tolerates_a_session_gone() {
    let app = app_with(SessionConfig::default());
    let server = serve(&app).await;
    let tab = open_tab(&server, "/room").await;
    let forged = pause(&server, "forged").await;
    assert_eq!(forged.status, 401);
    assert!(
        forged.text().contains("stream refused"),
        "{}",
        forged.text()
    );
    // The event token is not a stream token.
    assert_eq!(pause(&server, &tab.event_token).await.status, 401);
    app.sessions().shutdown(WAIT).await;
    // Nothing to pause: the tab's next stream re-mounts it.
    assert_eq!(pause(&server, &tab.stream_token).await.status, 204);
}
