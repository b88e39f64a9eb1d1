//! `App::serve`'s server over raw sockets: which deadline closes a connection when, that none of
//! them cuts a live stream, and the graceful shutdown.
//!
//! Each test runs its own server on 127.0.0.1 at an ephemeral port, with the deadline under
//! test small and the others long, so a connection can only be closed by the one the test is
//! about. Bounds are generous on the slow side: a loaded machine delays timers, never fires
//! them early. `-- --nocapture` prints the measured times.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use bytes::Bytes;
use dstar::http::StatusCode;
use dstar::response::Sse;
use dstar::serve::{BodyTimeout, ServeConfig};
use dstar::session::SessionConfig;
use dstar::{App, Ctx, Html, Mount, View};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The deadline under test.
const SHORT: Duration = Duration::from_millis(300);
/// The deadlines not under test: longer than any test runs.
const LONG: Duration = Duration::from_secs(60);
/// How much later than its deadline a close may come on a loaded machine.
const SLACK: Duration = Duration::from_secs(5);

/// A live page with a counter.
struct Live {
    count: u64,
}

#[dstar::page("/p", live)]
impl Live {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Live { count: 0 })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<p id="n">{{ n }}</p>"#,
            serde_json::json!({ "n": self.count }),
        )
    }

    #[event]
    async fn bump(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
        self.count += 1;
        Ok(())
    }
}

/// Every deadline long, then `edit`.
fn config(edit: impl FnOnce(&mut ServeConfig)) -> ServeConfig {
    let mut config = ServeConfig {
        header_timeout: LONG,
        idle_timeout: LONG,
        body_timeout: LONG,
        shutdown_timeout: LONG,
    };
    edit(&mut config);
    config
}

fn app(config: ServeConfig) -> App {
    App::builder()
        .secret_key(b"serve tests (a test key of 32+ bytes)")
        .serve_config(config)
        .build()
        .unwrap()
}

/// The live page plus plain routes: `/ok`, `/echo` (axum's `Bytes` extractor) and `/upload`
/// (reads the body itself and answers `408` when it timed out).
fn router(app: &App) -> Router {
    dstar::router![Live]
        .into_router(app.clone())
        .route("/ok", get(|| async { "ok" }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .route("/upload", post(upload))
}

async fn upload(body: Body) -> (StatusCode, String) {
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => (StatusCode::OK, format!("{} bytes", bytes.len())),
        Err(err) if caused_by::<BodyTimeout>(&err) => {
            (StatusCode::REQUEST_TIMEOUT, err.to_string())
        }
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()),
    }
}

fn caused_by<T: Error + 'static>(err: &(dyn Error + 'static)) -> bool {
    std::iter::successors(Some(err), |&err| err.source()).any(|err| err.is::<T>())
}

/// A server running `App::serve_listener` in a task, stopped by [`Server::stop`] (or aborted
/// when dropped).
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(app: &App, router: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = app.clone();
        let task = tokio::spawn(async move {
            app.serve_listener(listener, router, async {
                let _ = stopped.await;
            })
            .await;
        });
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn connect(&self) -> Conn {
        Conn {
            stream: TcpStream::connect(self.addr).await.unwrap(),
            buffer: Vec::new(),
        }
    }

    /// Starts the shutdown; [`Server::stopped`] waits for its end.
    fn begin_stop(&mut self) {
        let _ = self.stop.take().expect("stopped once").send(());
    }

    /// Waits for `serve_listener` to return, at most `within`.
    async fn stopped(&mut self, within: Duration) {
        tokio::time::timeout(within, &mut self.task)
            .await
            .expect("the server did not stop in time")
            .unwrap();
    }

    async fn stop(mut self) {
        self.begin_stop();
        self.stopped(SLACK).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A raw HTTP/1.1 connection.
struct Conn {
    stream: TcpStream,
    /// Read but not consumed yet.
    buffer: Vec<u8>,
}

/// A response read off a [`Conn`].
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

impl Conn {
    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).await.unwrap();
    }

    /// Reads more into the buffer; `false` at the end of the stream (or a reset).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0; 4096];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response head: its status and text.
    async fn head(&mut self) -> (u16, String) {
        let read = async {
            loop {
                if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                    let head: Vec<u8> = self.buffer.drain(..end + 4).collect();
                    let head = String::from_utf8(head).unwrap();
                    let status = head[9..12].parse().unwrap();
                    return (status, head);
                }
                assert!(self.fill().await, "closed before a response head");
            }
        };
        tokio::time::timeout(SLACK, read)
            .await
            .expect("no response head in time")
    }

    /// The next whole response (its body framed by `Content-Length`, or empty).
    async fn response(&mut self) -> Response {
        let (status, head) = self.head().await;
        let length = header(&head, "content-length").map_or(0, |n| n.parse().unwrap());
        let read = async {
            while self.buffer.len() < length {
                assert!(self.fill().await, "closed in the middle of a body");
            }
        };
        tokio::time::timeout(SLACK, read)
            .await
            .expect("no whole body in time");
        let body = self.buffer.drain(..length).collect();
        Response { status, head, body }
    }

    /// Reads until the server closes the connection, at most `within`; returns the time it
    /// took since `since` and whatever came before the close.
    async fn closed(&mut self, since: Instant, within: Duration) -> (Duration, Vec<u8>) {
        let read = async { while self.fill().await {} };
        tokio::time::timeout(within, read)
            .await
            .unwrap_or_else(|_| panic!("still open after {within:?}"));
        (since.elapsed(), std::mem::take(&mut self.buffer))
    }

    /// Reads until the received bytes contain `needle`; panics at a close or after `within`.
    async fn until(&mut self, needle: &str, within: Duration) {
        let read = async {
            while find(&self.buffer, needle.as_bytes()).is_none() {
                assert!(self.fill().await, "closed before `{needle}` arrived");
            }
        };
        tokio::time::timeout(within, read)
            .await
            .unwrap_or_else(|_| panic!("`{needle}` did not arrive within {within:?}"));
    }

    /// Keeps reading for `period` (this test is about time passing) and panics if the
    /// connection closes meanwhile.
    async fn stays_open_for(&mut self, period: Duration) {
        let deadline = Instant::now() + period;
        while let Ok(open) = tokio::time::timeout_at(deadline, self.fill()).await {
            assert!(open, "closed although the response was in progress");
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, value) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Asserts `elapsed` is at least `at_least` and not much later than `deadline`.
fn assert_between(what: &str, elapsed: Duration, at_least: Duration, deadline: Duration) {
    println!("{what}: closed after {elapsed:?} (deadline {deadline:?})");
    assert!(
        elapsed >= at_least && elapsed <= deadline + SLACK,
        "{what}: closed after {elapsed:?}, expected at least {at_least:?} and about {deadline:?}"
    );
}

#[tokio::test]
async fn requests_are_served_and_keep_alive_reuses_the_connection() {
    let app = app(config(|c| {
        c.header_timeout = SHORT;
        c.idle_timeout = SHORT;
        c.body_timeout = SHORT;
    }));
    let server = Server::start(&app, router(&app)).await;
    let mut conn = server.connect().await;

    conn.send(get_request("/ok")).await;
    let first = conn.response().await;
    assert_eq!((first.status, first.text()), (200, "ok"));

    conn.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    let second = conn.response().await;
    assert_eq!((second.status, second.text()), (200, "hello"));

    // Two requests in one write (pipelined) are answered in order.
    conn.send(format!("{}{}", get_request("/ok"), get_request("/nope")))
        .await;
    assert_eq!(conn.response().await.status, 200);
    assert_eq!(conn.response().await.status, 404);

    // The page itself, through the same connection.
    conn.send(get_request("/p")).await;
    let page = conn.response().await;
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains(r#"<p id="n">0</p>"#),
        "{}",
        page.text()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_socket_that_sends_nothing_is_closed_after_the_header_timeout() {
    let app = app(config(|c| c.header_timeout = SHORT));
    let server = Server::start(&app, router(&app)).await;
    let start = Instant::now();
    let mut conn = server.connect().await;
    let (elapsed, received) = conn.closed(start, SHORT + SLACK).await;
    assert_between("silent socket", elapsed, SHORT, SHORT);
    assert_eq!(received, b"", "no response to no request");
    server.stop().await;
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_closed_after_the_header_timeout() {
    let app = app(config(|c| c.header_timeout = SHORT));
    let server = Server::start(&app, router(&app)).await;
    let start = Instant::now();
    let conn = server.connect().await;
    let (mut reader, mut writer) = conn.stream.into_split();
    // The client makes progress all along (a byte every 20 ms, the head would take over a
    // second): the deadline is for the whole head, not for each byte.
    let head = get_request("/ok").into_bytes();
    let sender = tokio::spawn(async move {
        for byte in head {
            if writer.write_all(&[byte]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    });
    let mut received = Vec::new();
    tokio::time::timeout(SHORT + SLACK, reader.read_to_end(&mut received))
        .await
        .expect("a slow head was not cut")
        .ok();
    assert_between("slow head", start.elapsed(), SHORT, SHORT);
    assert_eq!(received, b"", "no response to half a head");
    sender.abort();
    server.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_secs(1);
    let app = app(config(|c| {
        c.header_timeout = SHORT;
        c.idle_timeout = idle;
    }));
    let server = Server::start(&app, router(&app)).await;
    let mut conn = server.connect().await;
    conn.send(get_request("/ok")).await;
    assert_eq!(conn.response().await.status, 200);
    let start = Instant::now();
    let (elapsed, received) = conn.closed(start, idle + SLACK).await;
    // Not after the (shorter) header timeout, as hyper's own `header_read_timeout` would.
    assert_between(
        "idle keep-alive",
        elapsed,
        idle - Duration::from_millis(300),
        idle,
    );
    assert_eq!(received, b"");
    server.stop().await;
}

#[tokio::test]
async fn a_request_begun_on_an_idle_connection_gets_the_header_timeout() {
    let idle = Duration::from_secs(20);
    let app = app(config(|c| {
        c.header_timeout = SHORT;
        c.idle_timeout = idle;
    }));
    let server = Server::start(&app, router(&app)).await;
    let mut conn = server.connect().await;
    conn.send(get_request("/ok")).await;
    assert_eq!(conn.response().await.status, 200);
    // The first byte of the next request ends the idle phase and starts the head's deadline.
    let start = Instant::now();
    conn.send("G").await;
    let (elapsed, received) = conn.closed(start, SHORT + SLACK).await;
    assert_between("head begun after idle", elapsed, SHORT, SHORT);
    assert_eq!(received, b"");
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_body_with_a_huge_length_fails_and_the_connection_closes() {
    let app = app(config(|c| c.body_timeout = SHORT));
    let server = Server::start(&app, router(&app)).await;
    for path in ["/upload", "/echo"] {
        let start = Instant::now();
        let mut conn = server.connect().await;
        conn.send(format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000000\r\n\r\nab"
        ))
        .await;
        let response = conn.response().await;
        println!("{path}: {} {:?}", response.status, response.text());
        let (elapsed, rest) = conn.closed(start, SHORT + SLACK).await;
        assert_between(&format!("stalled body ({path})"), elapsed, SHORT, SHORT);
        assert_eq!(rest, b"", "nothing after the answer");
        if path == "/upload" {
            assert_eq!(response.status, 408);
            assert_eq!(
                response.text(),
                format!("the request body made no progress for {SHORT:?}")
            );
        } else {
            // axum's extractors answer a body error with a 4xx of their own.
            assert!((400..500).contains(&response.status), "{response:?}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unterminated_chunked_body_fails_and_the_connection_closes() {
    let app = app(config(|c| c.body_timeout = SHORT));
    let server = Server::start(&app, router(&app)).await;
    let start = Instant::now();
    let mut conn = server.connect().await;
    conn.send(
        "POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await;
    let response = conn.response().await;
    assert_eq!(response.status, 408, "{}", response.text());
    let (elapsed, rest) = conn.closed(start, SHORT + SLACK).await;
    assert_between("unterminated chunked body", elapsed, SHORT, SHORT);
    assert_eq!(rest, b"");
    server.stop().await;
}

#[tokio::test]
async fn a_slow_body_that_keeps_moving_is_not_cut() {
    let app = app(config(|c| c.body_timeout = SHORT));
    let server = Server::start(&app, router(&app)).await;
    let mut conn = server.connect().await;
    conn.send("POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    // Ten chunks 100 ms apart: the body takes three times the timeout, but no gap reaches it.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        conn.send("1\r\nx\r\n").await;
    }
    conn.send("0\r\n\r\n").await;
    let response = conn.response().await;
    assert_eq!((response.status, response.text()), (200, "10 bytes"));
    server.stop().await;
}

#[tokio::test]
async fn a_body_nobody_reads_does_not_hold_the_connection() {
    let app = app(config(|_| {}));
    let server = Server::start(&app, router(&app)).await;
    let start = Instant::now();
    let mut conn = server.connect().await;
    // `/ok` ignores the body: the answer goes out at once, then the connection closes, since
    // the rest of the body would have to be read before another request.
    conn.send("GET /ok HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000000\r\n\r\nab")
        .await;
    assert_eq!(conn.response().await.status, 200);
    let (elapsed, _) = conn.closed(start, SLACK).await;
    println!("unread body: closed after {elapsed:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_silent_event_stream_outlasts_every_timeout() {
    let (events, receiver) = mpsc::channel::<Bytes>(4);
    let receiver = Arc::new(Mutex::new(Some(receiver)));
    let app = app(config(|c| {
        c.header_timeout = SHORT;
        c.idle_timeout = SHORT;
        c.body_timeout = SHORT;
    }));
    let router = router(&app).route(
        "/events",
        post(move || {
            let receiver = receiver.lock().unwrap().take().expect("one stream");
            // No heartbeat: the connection carries nothing in either direction meanwhile.
            async move { Sse::stream(receiver, None) }
        }),
    );
    let server = Server::start(&app, router).await;
    let mut conn = server.connect().await;
    // A POST with a small, complete body, as `/__dstar/stream` is.
    conn.send("POST /events HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\n{}")
        .await;
    let (status, head) = conn.head().await;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("text/event-stream"));

    conn.stays_open_for(SHORT * 5).await;
    events
        .send(Bytes::from_static(b"data: late\n\n"))
        .await
        .unwrap();
    conn.until("data: late", SLACK).await;

    // When the stream ends, the connection is an idle one like any other.
    drop(events);
    conn.until("0\r\n\r\n", SLACK).await;
    let start = Instant::now();
    let (elapsed, _) = conn.closed(start, SHORT + SLACK).await;
    assert_between("idle after the stream", elapsed, Duration::ZERO, SHORT);
    server.stop().await;
}

/// Loads `/p` and returns its event and stream tokens.
async fn open_tab(server: &Server) -> (String, String) {
    let mut conn = server.connect().await;
    conn.send(get_request("/p")).await;
    let page = conn.response().await;
    assert_eq!(page.status, 200);
    (
        dstar_tests::token_after(page.text(), "_dstarToken"),
        dstar_tests::token_after(page.text(), "_dstarStream"),
    )
}

async fn open_stream(server: &Server, stream_token: &str) -> Conn {
    let mut stream = server.connect().await;
    stream
        .send(format!(
            "POST /__dstar/stream HTTP/1.1\r\nHost: test\r\nx-dstar-token: {stream_token}\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        ))
        .await;
    let (status, head) = stream.head().await;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("text/event-stream"));
    stream
}

async fn bump(server: &Server, event_token: &str) {
    let mut conn = server.connect().await;
    conn.send(format!(
        "POST /__dstar/event HTTP/1.1\r\nHost: test\r\nx-dstar-token: {event_token}\r\n\
         x-dstar-event: bump\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    ))
    .await;
    let reply = conn.response().await;
    assert_eq!(reply.status, 204, "{}", reply.text());
}

#[tokio::test]
async fn a_live_page_stream_outlasts_every_timeout() {
    let app = app(config(|c| {
        c.header_timeout = SHORT;
        c.idle_timeout = SHORT;
        c.body_timeout = SHORT;
    }));
    let server = Server::start(&app, router(&app)).await;
    let (event_token, stream_token) = open_tab(&server).await;
    let mut stream = open_stream(&server, &stream_token).await;

    // The session's heartbeat is 15 s away: for five timeouts the stream carries nothing.
    stream.stays_open_for(SHORT * 5).await;
    bump(&server, &event_token).await;
    stream.until(r#"<p id="n">1</p>"#, SLACK).await;

    stream.stays_open_for(SHORT * 2).await;
    bump(&server, &event_token).await;
    stream.until(r#"<p id="n">2</p>"#, SLACK).await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_stops_accepting_ends_streams_and_waits_for_requests_in_flight() {
    let shutdown_timeout = Duration::from_secs(1);
    let app = App::builder()
        .secret_key(b"serve tests (a test key of 32+ bytes)")
        .serve_config(config(|c| c.shutdown_timeout = shutdown_timeout))
        .sessions(SessionConfig::default())
        .build()
        .unwrap();
    // `/slow` answers when the test says so; `/stuck` never does. Both say when they started.
    let (started, mut has_started) = mpsc::channel::<&'static str>(2);
    let (release, released) = oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let slow_started = started.clone();
    let router = router(&app)
        .route(
            "/slow",
            get(move || {
                let released = released.lock().unwrap().take().expect("one request");
                let started = slow_started.clone();
                async move {
                    started.send("slow").await.unwrap();
                    let _ = released.await;
                    "done"
                }
            }),
        )
        .route(
            "/stuck",
            get(move || {
                let started = started.clone();
                async move {
                    started.send("stuck").await.unwrap();
                    std::future::pending::<()>().await;
                }
            }),
        );
    let mut server = Server::start(&app, router).await;

    let (_, stream_token) = open_tab(&server).await;
    let mut stream = open_stream(&server, &stream_token).await;
    let mut idle = server.connect().await;
    idle.send(get_request("/ok")).await;
    assert_eq!(idle.response().await.status, 200);
    let mut slow = server.connect().await;
    slow.send(get_request("/slow")).await;
    let mut stuck = server.connect().await;
    stuck.send(get_request("/stuck")).await;
    let mut begun = [has_started.recv().await, has_started.recv().await];
    begun.sort();
    assert_eq!(begun, [Some("slow"), Some("stuck")]);

    let start = Instant::now();
    server.begin_stop();

    // The live stream ends with a retry hint, after the listener is gone.
    let (ended, tail) = stream.closed(start, SLACK).await;
    println!("shutdown: live stream ended after {ended:?}");
    assert!(
        String::from_utf8_lossy(&tail).contains("retry: 1000"),
        "{}",
        String::from_utf8_lossy(&tail)
    );
    let refused = TcpStream::connect(server.addr).await;
    assert!(
        refused.is_err(),
        "a connection was accepted after the shutdown began"
    );

    // The idle connection is closed at once, long before its idle timeout.
    let (closed, _) = idle.closed(start, SLACK).await;
    println!("shutdown: idle connection closed after {closed:?}");

    // The request in flight is answered, and its connection closed after it.
    release.send(()).unwrap();
    let answer = slow.response().await;
    assert_eq!((answer.status, answer.text()), (200, "done"));
    assert_eq!(header(&answer.head, "connection"), Some("close"));
    slow.closed(start, SLACK).await;

    // The one that never answers is cut when the shutdown timeout runs out.
    server.stopped(shutdown_timeout + SLACK).await;
    let stopped = start.elapsed();
    let (_, cut) = stuck.closed(start, SLACK).await;
    assert_eq!(cut, b"", "no answer from a cut request");
    assert_between("shutdown", stopped, shutdown_timeout, shutdown_timeout);
}

/// The child process of [`accept_failures_are_reported_and_serving_goes_on`]: a server whose
/// process may open only a few file descriptors.
#[tokio::test]
#[ignore = "run by `accept_failures_are_reported_and_serving_goes_on` in a child process"]
async fn server_with_few_file_descriptors() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // The runtime reports through `tracing`: the parent reads this subscriber's lines.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let app = app(config(|_| {}));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("serving on {}", listener.local_addr().unwrap());
    app.serve_listener(listener, router(&app), std::future::pending())
        .await;
}

const CHILD_ENV: &str = "DSTAR_SERVE_TEST_CHILD";
const FILE_LIMIT: &str = "40";

/// A child process, killed when the test ends however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of `output`, read on a thread of their own.
fn lines(output: impl std::io::Read + Send + 'static) -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

async fn next_line_with(
    lines: &mut mpsc::UnboundedReceiver<String>,
    needle: &str,
    within: Duration,
) -> String {
    let find = async {
        loop {
            let line = lines.recv().await.expect("the child process ended");
            if line.contains(needle) {
                return line;
            }
        }
    };
    tokio::time::timeout(within, find)
        .await
        .unwrap_or_else(|_| panic!("no line with `{needle}` within {within:?}"))
}

/// Runs out of file descriptors in a server process on purpose: `accept` fails with `EMFILE`
/// while the connections hold them, the server reports that at most once a second (with the
/// count of failures in between) and backs off instead of spinning, and once connections close
/// it serves again.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn accept_failures_are_reported_and_serving_goes_on() {
    use std::process::{Command, Stdio};

    let spawned = Command::new("prlimit")
        .arg(format!("--nofile={FILE_LIMIT}"))
        .arg(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "server_with_few_file_descriptors"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => Child(child),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            println!("skipped: `prlimit` (util-linux) is not installed");
            return;
        }
        Err(err) => panic!("could not start the server process: {err}"),
    };
    let mut stdout = lines(child.0.stdout.take().unwrap());
    let mut stderr = lines(child.0.stderr.take().unwrap());
    let serving = next_line_with(&mut stdout, "serving on ", SLACK).await;
    let addr: SocketAddr = serving
        .split("serving on ")
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();

    // More connections than the server may hold: it accepts until it is out of descriptors;
    // the rest wait in the listen queue.
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    let first = next_line_with(&mut stderr, "accept failed", SLACK).await;
    let first_at = Instant::now();
    println!("{first}");
    assert!(first.contains("Too many open files"), "{first}");
    assert!(!first.contains("more since the last report"), "{first}");

    // While the descriptors stay taken, accepts keep failing: the next report comes a second
    // later and counts those in between, about ten (the wait grows to 100 ms), not thousands.
    let second = next_line_with(&mut stderr, "accept failed", Duration::from_secs(1) + SLACK).await;
    let between = first_at.elapsed();
    println!("{second} ({between:?} after the first)");
    // (Measured here, after both lines crossed a pipe: a little less than the second is fine.)
    assert!(
        between >= Duration::from_millis(500),
        "reported again after {between:?}"
    );
    let unreported: u64 = second
        .rsplit_once(" (")
        .and_then(|(_, count)| count.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of unreported failures: {second}"));
    assert!((1..=30).contains(&unreported), "{second}");

    // Connections close, descriptors come back, and a new connection is served.
    drop(held);
    let mut conn = Conn {
        stream: TcpStream::connect(addr).await.unwrap(),
        buffer: Vec::new(),
    };
    conn.send(get_request("/ok")).await;
    let response = conn.response().await;
    assert_eq!((response.status, response.text()), (200, "ok"));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the server process ended"
    );
}
