//! Soak: many live sessions opened and closed over real HTTP, half ended cleanly (the page
//! ends its session and the stream ends), half by a dropped connection (the session waits
//! out its reconnect grace); afterwards the registry is empty, no session task is left, and
//! `terminate` ran once for each. And the race of a reconnect with the cleanup of the session
//! it reconnects to: the reconnect never ends up on a session that is going away.
//!
//! 10,000 sessions, about 15 s in a debug build on two cores; `DSTAR_SOAK_SESSIONS=n` runs
//! another number.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dstar::session::SessionConfig;
use dstar::{App, Ctx, Event, Html, Mount, Page, Route, SessionEnd, View};
use dstar_tests::{SseStream, TestServer, token_after};
use tokio::sync::{Notify, Semaphore};

/// Generous: every wait below is for a condition, and ends as soon as it holds.
const WAIT: Duration = Duration::from_secs(60);
const SECRET: &[u8] = b"soak tests (a test key of 32+ bytes!)";
/// Sessions in flight at once.
const CONCURRENCY: usize = 64;

static SOAK_TERMINATED: AtomicUsize = AtomicUsize::new(0);

/// A live page that counts its `terminate`s; `ping` patches, `bye` ends the session.
struct Soak {
    pings: u32,
}

impl Page for Soak {
    const ROUTE: Route = Route::new("Soak", "/soak", file!(), line!())
        .live()
        .events(&["ping", "bye"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Soak { pings: 0 })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!("<p>{}</p>", self.pings)))
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "ping" => {
                self.pings += 1;
                Ok(())
            }
            "bye" => cx.end_session(SessionEnd::Stop),
            _ => Err(event.unknown()),
        }
    }

    async fn terminate(&mut self) {
        SOAK_TERMINATED.fetch_add(1, Ordering::SeqCst);
    }
}

fn sessions_to_run() -> usize {
    std::env::var("DSTAR_SOAK_SESSIONS")
        .ok()
        .map(|n| n.parse().expect("DSTAR_SOAK_SESSIONS is a number"))
        .unwrap_or(10_000)
}

struct Tab {
    event: String,
    stream: String,
}

async fn open_tab(server: &TestServer, path: &str) -> Tab {
    let page = server.get(path, &[]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    Tab {
        event: token_after(page.text(), "_dstarToken"),
        stream: token_after(page.text(), "_dstarStream"),
    }
}

async fn connect(server: &TestServer, tab: &Tab, referer: Option<&str>) -> SseStream {
    let mut headers = vec![("x-dstar-token", tab.stream.as_str())];
    if let Some(referer) = referer {
        headers.push(("referer", referer));
    }
    let stream = server
        .open_sse("POST", "/__dstar/stream", &headers, Some(b"{}"))
        .await
        .expect("the stream opens");
    assert_eq!(stream.status, 200);
    stream
}

async fn send(server: &TestServer, tab: &Tab, event: &str) -> u16 {
    server
        .post(
            "/__dstar/event",
            &[("x-dstar-token", &tab.event), ("x-dstar-event", event)],
            b"{}",
        )
        .await
        .status
}

/// Waits until `check` holds, failing with `what` after [`WAIT`].
async fn wait_until(what: impl Fn() -> String, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {}",
            what()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One session's life: the page, its stream, an event whose patch arrives on the stream, and
/// the end, clean (`bye`: the stream ends) or not (the connection is dropped).
async fn one_session(server: &TestServer, clean: bool) {
    let tab = open_tab(server, "/soak").await;
    let mut stream = connect(server, &tab, None).await;
    assert_eq!(send(server, &tab, "ping").await, 204);
    let patch = stream.expect_event(WAIT).await;
    assert_eq!(patch.value("elements").as_deref(), Some("<p>1</p>"));
    if clean {
        assert_eq!(send(server, &tab, "bye").await, 204);
        // The stream ends normally after the session's last instruction.
        while stream
            .next_event(WAIT)
            .await
            .expect("a clean end")
            .is_some()
        {}
    } else {
        drop(stream);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_opened_and_closed_leave_nothing_behind() {
    let sessions = sessions_to_run();
    let app = App::builder()
        .secret_key(SECRET)
        .sessions(SessionConfig {
            // A dropped stream's session ends this long after: short, so the soak is not
            // spent waiting, and long enough that it is a grace and not an instant end.
            reconnect_grace: Duration::from_millis(200),
            ..SessionConfig::default()
        })
        .build()
        .unwrap();
    let server =
        Arc::new(TestServer::serve(&app, dstar::router![Soak].into_router(app.clone())).await);

    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..sessions {
        let permit = slots.clone().acquire_owned().await.unwrap();
        let server = server.clone();
        tasks.spawn(async move {
            one_session(&server, i.is_multiple_of(2)).await;
            drop(permit);
        });
        // Surface a failure as it happens, not after every session ran.
        while let Some(done) = tasks.try_join_next() {
            done.expect("a session's life failed");
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a session's life failed");
    }

    let registry = app.sessions();
    wait_until(
        || {
            format!(
                "{} of {sessions} terminated, {} registered, {} tasks",
                SOAK_TERMINATED.load(Ordering::SeqCst),
                registry.len(),
                registry.tasks()
            )
        },
        || {
            SOAK_TERMINATED.load(Ordering::SeqCst) == sessions
                && registry.is_empty()
                && registry.tasks() == 0
        },
    )
    .await;
    // Nothing ran `terminate` twice, nor late.
    assert_eq!(SOAK_TERMINATED.load(Ordering::SeqCst), sessions);
}

static RACE_TERMINATE_STARTED: AtomicBool = AtomicBool::new(false);
static RACE_TERMINATED: AtomicUsize = AtomicUsize::new(0);
static RACE_MOUNTED: AtomicUsize = AtomicUsize::new(0);

/// Lets the test hold the race page's `terminate` until it has reconnected.
fn race_gate() -> &'static Notify {
    static GATE: std::sync::OnceLock<Notify> = std::sync::OnceLock::new();
    GATE.get_or_init(Notify::new)
}

/// A live page whose `terminate` waits for the test (a page saving its state somewhere slow).
struct Race {
    pings: u32,
}

impl Page for Race {
    const ROUTE: Route = Route::new("Race", "/race", file!(), line!())
        .live()
        .events(&["ping"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        RACE_MOUNTED.fetch_add(1, Ordering::SeqCst);
        Ok(Race { pings: 0 })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!("<p>{}</p>", self.pings)))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, _event: Event<'_>) -> dstar::Result<()> {
        self.pings += 1;
        Ok(())
    }

    async fn terminate(&mut self) {
        RACE_TERMINATE_STARTED.store(true, Ordering::SeqCst);
        race_gate().notified().await;
        RACE_TERMINATED.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_reconnect_racing_the_old_sessions_cleanup_gets_a_live_session() {
    let app = App::builder()
        .secret_key(SECRET)
        .sessions(SessionConfig {
            reconnect_grace: Duration::from_millis(50),
            ..SessionConfig::default()
        })
        .build()
        .unwrap();
    let server = TestServer::serve(&app, dstar::router![Race].into_router(app.clone())).await;
    let referer = format!("http://{}/race", server.addr());
    let tab = open_tab(&server, "/race").await;
    let first = connect(&server, &tab, Some(&referer)).await;

    // The connection drops; after the grace the session ends and its `terminate` is slow.
    drop(first);
    wait_until(
        || "the old session's terminate to start".to_owned(),
        || RACE_TERMINATE_STARTED.load(Ordering::SeqCst),
    )
    .await;
    assert_eq!(
        app.sessions().len(),
        1,
        "the old session is still registered"
    );

    // The tab reconnects while the old session is finishing.
    let mut racing = connect(&server, &tab, Some(&referer)).await;
    race_gate().notify_one();
    wait_until(
        || "the old session to go".to_owned(),
        || RACE_TERMINATED.load(Ordering::SeqCst) == 1 && app.sessions().tasks() == 0,
    )
    .await;

    // The stream that reached the ending session is not left open on nothing: it ends, so
    // the client reconnects (and re-mounts the tab), rather than waiting on heartbeats.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match racing.next_block(left).await {
            Ok(Some(block)) => assert!(!block.is_dispatched(), "an ending session sent {block:?}"),
            // Ended, or cut: either way the client reconnects.
            Ok(None) => break,
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                panic!("the stream to the ended session is still open after {WAIT:?}")
            }
            Err(_) => break,
        }
    }

    // The client's retry re-mounts the tab in place, under the same id, and it is live.
    let mut retry = connect(&server, &tab, Some(&referer)).await;
    let remounted = retry.expect_event(WAIT).await;
    assert_eq!(remounted.event.as_deref(), Some("datastar-patch-signals"));
    assert_eq!(RACE_MOUNTED.load(Ordering::SeqCst), 2);
    assert_eq!(send(&server, &tab, "ping").await, 204);
    loop {
        let event = retry.expect_event(WAIT).await;
        if event.value("elements").as_deref() == Some("<p>1</p>") {
            break;
        }
    }
    assert_eq!(app.sessions().len(), 1);
    assert_eq!(app.sessions().tasks(), 1);
}

/// A live page counting its events, for tests that must not share the counters above.
struct Echo {
    pings: u32,
}

impl Page for Echo {
    const ROUTE: Route = Route::new("Echo", "/echo", file!(), line!())
        .live()
        .events(&["ping"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Echo { pings: 0 })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!("<p>{}</p>", self.pings)))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, _event: Event<'_>) -> dstar::Result<()> {
        self.pings += 1;
        Ok(())
    }
}

#[tokio::test]
async fn an_old_streams_late_drop_never_detaches_the_new_one() {
    let app = App::builder()
        .secret_key(SECRET)
        .sessions(SessionConfig {
            reconnect_grace: Duration::from_millis(50),
            ..SessionConfig::default()
        })
        .build()
        .unwrap();
    let server = TestServer::serve(&app, dstar::router![Echo].into_router(app.clone())).await;
    let tab = open_tab(&server, "/echo").await;
    let mut old = connect(&server, &tab, None).await;
    // A reconnect while the old stream is still open replaces it: the old one ends.
    let mut new = connect(&server, &tab, None).await;
    while old
        .next_event(WAIT)
        .await
        .expect("the old stream ends")
        .is_some()
    {}
    // The old stream's body is dropped before its end reaches the client, so its `Detached`
    // is in the session's mailbox ahead of this event: had it detached the new stream, the
    // patch would not arrive there.
    assert_eq!(send(&server, &tab, "ping").await, 204);
    let patch = new.expect_event(WAIT).await;
    assert_eq!(patch.value("elements").as_deref(), Some("<p>1</p>"));
    assert_eq!(app.sessions().len(), 1);
}
