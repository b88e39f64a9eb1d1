//! Many tabs of one live page in one browser profile (tabs and windows of one Chromium, which
//! share its six connections per site over HTTP/1.1): hidden tabs give their stream's
//! connection back and catch up when shown, visible tabs beyond the limit take turns, and
//! over HTTP/2 every tab streams on one connection.
#![cfg(feature = "browser")]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{Next, from_fn};
use dstar::security::{ContentSecurityPolicy, SecurityHeaders};
use dstar::session::SessionConfig;
use dstar::{App, Ctx, Html, Message, Mount, View};
use dstar_e2e::{Browser, Kind, Tab, TestServer, datastar_js_route, wait_for};
use http_body::Frame;
use serde_json::{Value, json};
use support::TlsServer;

mod support;

const WAIT: Duration = Duration::from_secs(15);

/// How many times `mount` ran (a tab shown again within the grace must not re-mount).
static MOUNTS: AtomicUsize = AtomicUsize::new(0);

/// The tests here take turns: they share [`MOUNTS`] (and a browser each is plenty for two
/// cores).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A live counter that also adds what the `board` topic publishes.
struct Board {
    count: i64,
}

#[dstar::page("/board", live)]
impl Board {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        MOUNTS.fetch_add(1, Ordering::SeqCst);
        mount.subscribe("board");
        Ok(Board { count: 0 })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<p id="count">{{ count }}</p><button id="bump" data-on:click="{{ event('bump') }}">+1</button>"#,
            json!({ "count": self.count }),
        )
    }

    #[event]
    async fn bump(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
        self.count += 1;
        Ok(())
    }

    async fn info(&mut self, _cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
        if let Some(n) = message.get::<i64>() {
            self.count += n;
        }
        Ok(())
    }
}

/// The app under the strict Content-Security-Policy, hidden tabs pausing after 300 ms.
fn app(builder: dstar::app::AppBuilder) -> App {
    builder
        .client_url("/datastar.js")
        .secret_key(b"many tabs test (a test key of 32+ bytes)")
        .security_headers(SecurityHeaders {
            content_security_policy: Some(ContentSecurityPolicy::strict()),
            ..SecurityHeaders::default()
        })
        .sessions(SessionConfig {
            hidden_pause: Duration::from_millis(300),
            ..SessionConfig::default()
        })
        .build()
        .unwrap()
}

/// What the server saw: live streams open now, and the connections requests came on.
#[derive(Clone, Default)]
struct Seen {
    streams: Arc<AtomicUsize>,
    connections: Arc<Mutex<HashSet<SocketAddr>>>,
}

impl Seen {
    fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }

    fn layer(&self, router: Router) -> Router {
        let seen = self.clone();
        router.layer(from_fn(move |req: Request, next: Next| {
            let seen = seen.clone();
            async move {
                if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
                    seen.connections.lock().unwrap().insert(*peer);
                }
                let stream = req.uri().path() == dstar::protocol::STREAM_PATH;
                let response = next.run(req).await;
                if !stream {
                    return response;
                }
                seen.streams.fetch_add(1, Ordering::SeqCst);
                let open = OpenStream(seen.streams.clone());
                response.map(|body| Body::new(Counted { body, _open: open }))
            }
        }))
    }
}

/// Counts a stream out when its body is dropped (the stream ended or the client went away).
struct OpenStream(Arc<AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Counted {
    body: Body,
    _open: OpenStream,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }
}

fn router(app: &App, seen: &Seen) -> Router {
    seen.layer(dstar::router![Board].into_router(app.clone()))
        .merge(datastar_js_route())
}

/// What the tab's live client says its stream is doing.
fn status(tab: &Tab) -> Value {
    tab.eval("return window.__dstar.live.status()")
}

fn wait_for_state(tab: &Tab, state: &str) {
    tab.wait_until(
        &format!(
            "return window.__dstar.live.status().state === {}",
            json!(state)
        ),
        WAIT,
    );
}

fn wait_for_count(tab: &Tab, expected: i64) {
    tab.wait_for_text("#count", &expected.to_string(), WAIT);
}

#[test]
fn hidden_tabs_give_their_connection_back_and_catch_up_when_shown() {
    let _serial = serial();
    MOUNTS.store(0, Ordering::SeqCst);
    let app = app(App::builder());
    let seen = Seen::default();
    let server = TestServer::start(router(&app, &seen));
    let browser = Browser::start();
    let first = browser.new_session();
    first.goto(&server.url("/board"));
    wait_for_state(&first, "open");
    let mut handles = vec![first.window_handle()];
    for _ in 1..10 {
        handles.push(first.new_window(Kind::Tab));
        first.goto(&server.url("/board"));
        wait_for_state(&first, "open");
    }
    assert_eq!(MOUNTS.load(Ordering::SeqCst), 10);

    // Nine tabs in the background: their streams are closed, only the front one streams.
    wait_for("only the visible tab's stream to stay open", WAIT, || {
        seen.streams() == 1
    });
    assert_eq!(status(&first)["state"], json!("open"));

    // While they are hidden, every session gets a message.
    assert_eq!(app.pubsub().publish("board", Message::new(5i64)), 10);
    wait_for_count(&first, 5);

    // Each tab, brought to the front, shows the message and takes a click.
    for handle in &handles {
        first.switch_to(handle);
        wait_for_state(&first, "open");
        wait_for_count(&first, 5);
        first.click("#bump");
        wait_for_count(&first, 6);
    }
    assert_eq!(
        MOUNTS.load(Ordering::SeqCst),
        10,
        "a tab shown again within the grace resumes its session, it is not mounted again"
    );
    wait_for("the tabs sent back to be paused again", WAIT, || {
        seen.streams() == 1
    });
    first.assert_no_console_errors();
}

/// Opens `count` windows of one browser session on `url` (the first in the session's own
/// window), each visible beside the others; returns their handles.
fn open_windows(tab: &Tab, url: &str, count: usize) -> Vec<String> {
    let mut handles = Vec::new();
    for n in 0..count {
        if n == 0 {
            handles.push(tab.window_handle());
        } else {
            handles.push(tab.new_window(Kind::Window));
        }
        tab.goto(url);
        wait_for_count(tab, 0);
    }
    handles
}

#[test]
fn seven_visible_tabs_on_http1_take_turns_and_nothing_hangs() {
    let _serial = serial();
    let app = app(App::builder());
    let seen = Seen::default();
    let server = TestServer::start(router(&app, &seen));
    let browser = Browser::start();
    let tab = browser.new_session();
    let handles = open_windows(&tab, &server.url("/board"), 7);
    wait_for(
        "at most four streams between the seven windows",
        WAIT,
        || seen.streams() <= 4,
    );
    assert_eq!(
        status(&tab)["state"],
        json!("open"),
        "the window in front streams"
    );
    // The window focused least recently is paused, and says so.
    tab.switch_to(&handles[0]);
    assert_eq!(status(&tab)["state"], json!("paused"));
    assert_eq!(status(&tab)["why"], json!("capped"));
    assert_eq!(tab.count("#dstar-paused"), 1);

    // Every window's click lands; a paused one resumes when clicked.
    for handle in &handles {
        tab.switch_to(handle);
        tab.click("#bump");
        wait_for_state(&tab, "open");
        wait_for_count(&tab, 1);
        assert_eq!(tab.count("#dstar-paused"), 0);
    }
    wait_for("still at most four streams", WAIT, || seen.streams() <= 4);

    // A new window loads and streams, and the one before it still answers.
    let _eighth = tab.new_window(Kind::Window);
    tab.goto(&server.url("/board"));
    wait_for_state(&tab, "open");
    tab.click("#bump");
    wait_for_count(&tab, 1);
    tab.switch_to(&handles[6]);
    tab.click("#bump");
    wait_for_count(&tab, 2);
    tab.assert_no_console_errors();
}

#[test]
fn over_http2_ten_visible_tabs_all_stream_on_one_connection() {
    let _serial = serial();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let tls = dstar::serve::Tls::from_pem(
        made.cert.pem().as_bytes(),
        made.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let app = app(App::builder().tls(tls));
    let seen = Seen::default();
    let server = TlsServer::start(app.clone(), router(&app, &seen));
    let browser = Browser::start();
    // The certificate is made for this run; nothing else about TLS is relaxed.
    let tab = browser.new_session_with_args(&["--ignore-certificate-errors"]);
    let handles = open_windows(&tab, &server.url("/board"), 10);
    assert_eq!(
        tab.eval("return performance.getEntriesByType('navigation')[0].nextHopProtocol"),
        json!("h2")
    );
    wait_for("all ten windows to stream", WAIT, || seen.streams() == 10);
    for handle in &handles {
        tab.switch_to(handle);
        assert_eq!(status(&tab)["state"], json!("open"));
        tab.click("#bump");
        wait_for_count(&tab, 1);
    }
    assert_eq!(seen.streams(), 10);
    let connections = seen.connections.lock().unwrap().clone();
    assert_eq!(connections.len(), 1, "one connection: {connections:?}");
    tab.assert_no_console_errors();
}

#[test]
fn a_tab_shown_after_the_hidden_grace_is_re_mounted_in_place() {
    let _serial = serial();
    MOUNTS.store(0, Ordering::SeqCst);
    let app = App::builder()
        .client_url("/datastar.js")
        .secret_key(b"many tabs test (a test key of 32+ bytes)")
        .sessions(SessionConfig {
            hidden_pause: Duration::from_millis(100),
            hidden_grace: Duration::from_millis(100),
            ..SessionConfig::default()
        })
        .build()
        .unwrap();
    let seen = Seen::default();
    let server = TestServer::start(router(&app, &seen));
    let browser = Browser::start();
    let tab = browser.new_session();
    tab.goto(&server.url("/board"));
    let first = tab.window_handle();
    tab.click("#bump");
    wait_for_count(&tab, 1);
    tab.eval("window.__marker = 7");

    // Another tab goes in front; the first pauses, and its session outlives the grace no more.
    tab.new_window(Kind::Tab);
    tab.goto(&server.url("/board"));
    wait_for("the hidden tab's session to end", WAIT, || {
        app.sessions().len() == 1
    });

    tab.switch_to(&first);
    wait_for_count(&tab, 0);
    assert_eq!(MOUNTS.load(Ordering::SeqCst), 3, "mounted again, once");
    assert_eq!(tab.eval("return window.__marker"), json!(7), "not reloaded");
    tab.click("#bump");
    wait_for_count(&tab, 1);
    tab.assert_no_console_errors();
}
