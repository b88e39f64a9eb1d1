//! The HTTP server [`App::serve`](crate::app::App::serve) runs: hyper's HTTP/1.1 connections
//! with the deadlines `axum::serve` does not have, an accept loop that survives running out of
//! file descriptors, and a bounded graceful shutdown.
//!
//! # Deadlines
//!
//! A connection is always in one of three phases, and only the first two have a deadline:
//!
//! | phase | ends when | deadline | guards against |
//! | --- | --- | --- | --- |
//! | reading a request head | the head is complete | [`header_timeout`](ServeConfig::header_timeout) from the accept, or from the first byte of a later request | sockets that connect and say nothing, heads sent a byte at a time (slowloris) |
//! | idle between requests | a byte of the next request arrives | [`idle_timeout`](ServeConfig::idle_timeout) from the end of the last response | keep-alive connections piling up |
//! | serving a request | its response has been sent | none | |
//!
//! While a request is served nothing cuts the connection: a live page's stream
//! (`POST /__dstar/stream`) is one response that lasts as long as the tab is open, and a handler
//! that takes its time is the app's business. The one deadline inside this phase is on the
//! request body: a body that makes no progress for
//! [`body_timeout`](ServeConfig::body_timeout) while the handler waits for it fails with
//! [`BodyTimeout`] (axum's extractors answer `400`), and the connection is closed after the
//! response. A stream's body is complete before its response starts, so it never trips this.
//! A connection handed over by a `101 Switching Protocols` (a WebSocket) has no deadline from
//! then on.
//!
//! hyper has one timer of its own for this, `header_read_timeout`, which it arms when it starts
//! reading a head, and so also as soon as a keep-alive connection goes idle: with it, an idle
//! connection would be closed after the header timeout, not the longer idle one. The deadlines
//! are therefore kept here instead, on the connection's reads, and hyper's timer is off.
//!
//! # Using `axum::serve` instead
//!
//! `axum::serve(listener, router)` serves the same router, and loses:
//!
//! - every deadline above: axum gives hyper no timer, so a connection that sends nothing, or a
//!   head one byte a minute, or half a body, holds a task and a file descriptor for ever. Put a
//!   proxy that has them (nginx, a load balancer) in front. The body deadline alone can be added
//!   to the router with tower-http's `RequestBodyTimeoutLayer`; the head and idle deadlines need
//!   hyper's builder, which `axum::serve` does not expose.
//! - the accept-error report: axum sleeps a second after a failed `accept` and reports it only
//!   through `tracing`, with axum's `tracing` feature on.
//! - the bounded shutdown, and the live sessions' part in it. Add both:
//!   `axum::serve(listener, router).with_graceful_shutdown(app.clone().shutdown_signal())` ends
//!   every live session on ctrl-c or `SIGTERM` (otherwise their streams hold the shutdown open
//!   until the browsers leave); bound the whole future with `tokio::time::timeout` after the
//!   signal if in-flight requests may take long.
//! - `TCP_NODELAY`, which [`App::serve`](crate::app::App::serve) sets so a small patch on a
//!   stream leaves at once: add it with `axum::serve::ListenerExt::tap_io`.
//! - the route table shared between connections: `axum::serve` calls the router's
//!   make-service once per connection, and that clones the whole route table (axum issue
//!   #1827). Call `router.with_state(())` once and pass `router.into_make_service()`, so a
//!   connection costs a reference count.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use crate::error::{Level, log};

/// How [`App::serve`](crate::app::App::serve) treats connections: its deadlines and how long a
/// shutdown waits. Set it with `App::builder().serve_config(...)`; the module docs say which
/// phase of a connection each deadline covers.
///
/// ```
/// use std::time::Duration;
/// use dstar_runtime::serve::ServeConfig;
///
/// let config = ServeConfig {
///     idle_timeout: Duration::from_secs(120),
///     ..ServeConfig::default()
/// };
/// # let _ = config;
/// ```
///
/// A very long `Duration` turns a deadline off in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// How long a client has to send a complete request head, from the accept (or from the
    /// first byte of a later request on the same connection). Default 10 seconds: a browser
    /// sends its head in one packet, so this only ever ends sockets that say nothing or
    /// dribble (slowloris), and is still generous for a bad mobile link.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request after a response.
    /// Default 60 seconds: long enough that a tab's next event or navigation reuses the
    /// connection (no new TCP and TLS handshake), short enough that idle connections do not
    /// pile up.
    pub idle_timeout: Duration,
    /// How long a request body may make no progress while the handler waits for it. Default
    /// 30 seconds: dstar's bodies are small signal objects sent at once, so a body this late
    /// is a stalled client (or one holding a connection open on purpose).
    pub body_timeout: Duration,
    /// How long a shutdown waits for in-flight requests to finish after it stopped accepting
    /// and ended the live sessions; then the remaining connections are closed. Default 10
    /// seconds, within the 30 seconds process managers such as Kubernetes wait before they
    /// kill.
    pub shutdown_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// A request body made no progress for [`ServeConfig::body_timeout`]: the error its handler
/// sees (as the source of axum's rejection, for one). Match it by type with
/// `error.downcast_ref::<BodyTimeout>()` along the error's sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyTimeout {
    after: Duration,
}

impl fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the request body made no progress for {:?}", self.after)
    }
}

impl std::error::Error for BodyTimeout {}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, tells every
/// connection to close after its request in flight, runs `on_shutdown` (ending the live
/// sessions, whose streams would otherwise hold their connections), and waits at most
/// `config.shutdown_timeout` for the connections before it closes the rest.
pub(crate) async fn run(
    listener: TcpListener,
    router: axum::Router,
    config: &ServeConfig,
    shutdown: impl Future<Output = ()>,
    on_shutdown: impl Future<Output = ()>,
) {
    // `axum::serve` asks the router for a service once per connection, and the router answers
    // with `self.clone().with_state(())`: since the router's `Arc` is shared by then, that
    // copies the whole route table for every connection (axum issue #1827). Turning every
    // route into its final form once, here, leaves each connection a clone of the `Arc`.
    let router = router.with_state::<()>(());
    let (stop, stopped) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                accept_errors.accepted();
                connections.spawn(connection(
                    stream,
                    router.clone(),
                    config.clone(),
                    stopped.clone(),
                ));
            }
            // The client gave up before the accept: nothing is wrong with the server.
            Err(err) if is_connection_error(&err) => {}
            // Out of file descriptors (EMFILE, ENFILE) or memory: connections that end free
            // some, so wait a little and try again rather than spin or stop serving.
            Err(err) => {
                let (report, wait) = accept_errors.failed(Instant::now());
                if let Some(unreported) = report {
                    let more = match unreported {
                        0 => String::new(),
                        n => format!(" ({n} more since the last report)"),
                    };
                    log(
                        Level::Error,
                        &format!("accept failed: {err}; retrying in {wait:?}{more}"),
                    );
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    drop(listener);
    // Every connection finishes the request it is serving and closes; idle ones close now.
    drop(stop);
    let drain = async { while connections.join_next().await.is_some() {} };
    let ((), drained) = tokio::join!(
        on_shutdown,
        tokio::time::timeout(config.shutdown_timeout, drain)
    );
    if drained.is_err() {
        log(
            Level::Error,
            &format!(
                "shutdown: closed {} connection(s) still busy after {:?}",
                connections.len(),
                config.shutdown_timeout
            ),
        );
    }
    connections.shutdown().await;
}

/// Errors of one connection that failed before it was accepted.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it closes, or until `stopped` says the server is shutting down
/// and its request in flight is answered.
async fn connection(
    stream: TcpStream,
    router: axum::Router,
    config: ServeConfig,
    mut stopped: watch::Receiver<()>,
) {
    // Patches on a live stream are small writes that should leave at once, not wait for the
    // acknowledgement of the previous one (Nagle's algorithm).
    let _ = stream.set_nodelay(true);
    let phase = Arc::new(Phases::new(&config));
    let service = Service {
        router,
        phase: phase.clone(),
        body_timeout: config.body_timeout,
    };
    let io = TokioIo::new(DeadlineIo::new(stream, phase));
    let conn = hyper::server::conn::http1::Builder::new()
        // The deadlines are `DeadlineIo`'s (see the module docs for why not hyper's).
        .header_read_timeout(None)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Where a connection is, shared by its reads ([`DeadlineIo`]) and its requests ([`Service`]).
#[derive(Debug)]
struct Phases {
    state: Mutex<State>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// The read that found no deadline, to wake when one begins: hyper may have polled its
    /// read for the next head before it dropped the last response body, and would otherwise
    /// not poll it again until the client sends something.
    reader: Option<Waker>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head, which must be complete by then.
    Head(Instant),
    /// Between requests: the next one must start by then.
    Idle(Instant),
    /// Serving this many requests: no deadline.
    Busy(usize),
    /// Handed over by a `101 Switching Protocols` (a WebSocket): no deadline, for good.
    Upgraded,
}

impl Phases {
    fn new(config: &ServeConfig) -> Self {
        Phases {
            state: Mutex::new(State {
                phase: Phase::Head(after(config.header_timeout)),
                reader: None,
            }),
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// When reads must have completed a request head (or started one), if they must; when
    /// they need not, `reader` is woken once they must.
    fn read_deadline(&self, reader: &Waker) -> Option<Instant> {
        let mut state = self.lock();
        match state.phase {
            Phase::Head(deadline) | Phase::Idle(deadline) => Some(deadline),
            Phase::Busy(_) => {
                match &mut state.reader {
                    Some(waker) => waker.clone_from(reader),
                    None => state.reader = Some(reader.clone()),
                }
                None
            }
            Phase::Upgraded => None,
        }
    }

    /// Bytes arrived: on an idle connection, the start of a request head.
    fn received(&self) {
        let mut state = self.lock();
        if let Phase::Idle(_) = state.phase {
            state.phase = Phase::Head(after(self.header_timeout));
        }
    }

    fn request_started(&self) {
        let mut state = self.lock();
        state.phase = match state.phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Upgraded => Phase::Upgraded,
            Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1),
        };
    }

    fn request_ended(&self) {
        let mut state = self.lock();
        state.phase = match state.phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            Phase::Upgraded => Phase::Upgraded,
            _ => Phase::Idle(after(self.idle_timeout)),
        };
        if let Phase::Idle(_) = state.phase
            && let Some(reader) = state.reader.take()
        {
            drop(state);
            reader.wake();
        }
    }

    fn upgraded(&self) {
        self.lock().phase = Phase::Upgraded;
    }
}

/// `timeout` from now; a `Duration` too long for the clock means "never" in effect.
fn after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// A request being served, from its head until its response body is done (or dropped).
#[derive(Debug)]
struct InFlight(Arc<Phases>);

impl InFlight {
    fn start(phases: Arc<Phases>) -> Self {
        phases.request_started();
        InFlight(phases)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The TCP stream of a connection, whose reads fail with `TimedOut` once the deadline of its
/// phase has passed; hyper then closes the connection.
#[derive(Debug)]
struct DeadlineIo {
    stream: TcpStream,
    phases: Arc<Phases>,
    /// Allocated once per connection and reset to each new deadline.
    timer: Pin<Box<Sleep>>,
    timer_deadline: Instant,
}

impl DeadlineIo {
    fn new(stream: TcpStream, phases: Arc<Phases>) -> Self {
        let deadline = match phases.phase() {
            Phase::Head(deadline) | Phase::Idle(deadline) => deadline,
            Phase::Busy(_) | Phase::Upgraded => Instant::now(),
        };
        DeadlineIo {
            stream,
            phases,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            timer_deadline: deadline,
        }
    }
}

impl AsyncRead for DeadlineIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.phases.received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                // Checked only when the socket has nothing: a read that returns data is
                // progress, and hyper reads until the socket is empty.
                let Some(deadline) = this.phases.read_deadline(cx.waker()) else {
                    return Poll::Pending;
                };
                if deadline != this.timer_deadline {
                    this.timer.as_mut().reset(deadline);
                    this.timer_deadline = deadline;
                }
                ready!(this.timer.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request head within the connection's deadline",
                )))
            }
        }
    }
}

impl AsyncWrite for DeadlineIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// One connection's hyper service: the shared router, with the connection's phase kept up to
/// date and request bodies under [`ServeConfig::body_timeout`].
#[derive(Debug)]
struct Service {
    router: axum::Router,
    phase: Arc<Phases>,
    body_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<ServedBody>;
    type Error = Infallible;
    type Future = ServedFuture;

    fn call(&self, request: Request<Incoming>) -> ServedFuture {
        let in_flight = InFlight::start(self.phase.clone());
        let request = request.map(|body| TimedBody::new(body, self.body_timeout));
        // A `Router` is always ready, and cloning it clones an `Arc`.
        let future = tower_service::Service::call(&mut self.router.clone(), request);
        ServedFuture {
            future,
            in_flight: Some(in_flight),
        }
    }
}

/// The router's answer, which carries the request's [`InFlight`] on into its body.
struct ServedFuture {
    future: axum::routing::future::RouteFuture<Infallible>,
    in_flight: Option<InFlight>,
}

impl Future for ServedFuture {
    type Output = Result<Response<ServedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Ok(response) = ready!(Pin::new(&mut this.future).poll(cx));
        let in_flight = this.in_flight.take().expect("polled after completion");
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            in_flight.0.upgraded();
        }
        Poll::Ready(Ok(response.map(|body| ServedBody {
            body,
            _in_flight: in_flight,
        })))
    }
}

/// A response body that ends its request's [`InFlight`] when hyper is done with it.
#[derive(Debug)]
struct ServedBody {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl Body for ServedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails with [`BodyTimeout`] when it makes no progress for its timeout
/// while someone waits for it.
#[derive(Debug)]
struct TimedBody {
    /// `None` after a timeout: dropping hyper's body tells hyper to stop reading it, and hyper
    /// then closes the connection once the response is sent.
    incoming: Option<Incoming>,
    timeout: Duration,
    /// Made the first time the body is waited for; most bodies arrive with their head.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether `timer` counts the current wait (it is reset after each frame).
    waiting: bool,
}

impl TimedBody {
    fn new(incoming: Incoming, timeout: Duration) -> Self {
        TimedBody {
            incoming: Some(incoming),
            timeout,
            timer: None,
            waiting: false,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let Some(incoming) = this.incoming.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = Pin::new(incoming).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        // The wait counts from the first poll that finds nothing, so time the handler spends
        // elsewhere between polls is not held against the client.
        let timer = match &mut this.timer {
            Some(timer) if this.waiting => timer,
            Some(timer) => {
                timer.as_mut().reset(after(this.timeout));
                timer
            }
            None => this
                .timer
                .insert(Box::pin(tokio::time::sleep_until(after(this.timeout)))),
        };
        this.waiting = true;
        ready!(timer.as_mut().poll(cx));
        this.incoming = None;
        Poll::Ready(Some(Err(Box::new(BodyTimeout {
            after: this.timeout,
        }))))
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// The accept loop's memory of failures: how long to back off, and when it last reported one.
#[derive(Debug)]
struct AcceptErrors {
    backoff: Duration,
    last_report: Option<Instant>,
    unreported: u64,
}

impl Default for AcceptErrors {
    fn default() -> Self {
        AcceptErrors {
            backoff: AcceptErrors::FIRST_BACKOFF,
            last_report: None,
            unreported: 0,
        }
    }
}

impl AcceptErrors {
    const FIRST_BACKOFF: Duration = Duration::from_millis(10);
    const MAX_BACKOFF: Duration = Duration::from_millis(100);
    /// At most one report this often, so a server out of file descriptors does not also fill
    /// its log.
    const REPORT_EVERY: Duration = Duration::from_secs(1);

    /// An accept failed at `now`: whether to report it (with how many failures went
    /// unreported since the last report), and how long to wait before the next accept. The
    /// wait doubles from 10 ms up to 100 ms while accepts keep failing.
    fn failed(&mut self, now: Instant) -> (Option<u64>, Duration) {
        let report = match self.last_report {
            Some(at) if now.saturating_duration_since(at) < Self::REPORT_EVERY => {
                self.unreported += 1;
                None
            }
            _ => {
                self.last_report = Some(now);
                Some(std::mem::take(&mut self.unreported))
            }
        };
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(Self::MAX_BACKOFF);
        (report, wait)
    }

    fn accepted(&mut self) {
        self.backoff = Self::FIRST_BACKOFF;
    }
}

/// Waits for ctrl-c or `SIGTERM`.
pub(crate) async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_and_report_once_a_second() {
        let mut errors = AcceptErrors::default();
        let start = Instant::now();
        let ms = Duration::from_millis;

        assert_eq!(errors.failed(start), (Some(0), ms(10)));
        assert_eq!(errors.failed(start + ms(10)), (None, ms(20)));
        assert_eq!(errors.failed(start + ms(30)), (None, ms(40)));
        assert_eq!(errors.failed(start + ms(70)), (None, ms(80)));
        assert_eq!(errors.failed(start + ms(150)), (None, ms(100)));
        assert_eq!(errors.failed(start + ms(250)), (None, ms(100)));
        // A second after the last report, the next failure is reported with the count of
        // those in between.
        assert_eq!(errors.failed(start + ms(1000)), (Some(5), ms(100)));
        assert_eq!(errors.failed(start + ms(1100)), (None, ms(100)));

        // A successful accept resets the backoff, not the report interval.
        errors.accepted();
        assert_eq!(errors.failed(start + ms(1200)), (None, ms(10)));
        assert_eq!(errors.failed(start + ms(2000)), (Some(2), ms(20)));
    }

    #[test]
    fn a_connection_moves_between_deadlines_and_none() {
        let phases = Arc::new(Phases::new(&ServeConfig {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..ServeConfig::default()
        }));
        assert!(matches!(phases.phase(), Phase::Head(_)));
        let reader = std::task::Waker::noop();

        let request = InFlight::start(phases.clone());
        assert_eq!(phases.read_deadline(reader), None);
        // Bytes of a pipelined request change nothing while one is served.
        phases.received();
        assert_eq!(phases.phase(), Phase::Busy(1));
        drop(request);

        let Phase::Idle(idle) = phases.phase() else {
            panic!("not idle after the response: {:?}", phases.phase());
        };
        assert!(idle >= Instant::now() + Duration::from_secs(59));
        assert_eq!(phases.read_deadline(reader), Some(idle));
        phases.received();
        let Phase::Head(head) = phases.phase() else {
            panic!(
                "no head deadline after the first byte: {:?}",
                phases.phase()
            );
        };
        assert!(head < idle);

        let request = InFlight::start(phases.clone());
        phases.upgraded();
        drop(request);
        assert_eq!(phases.phase(), Phase::Upgraded);
        assert_eq!(phases.read_deadline(reader), None);
    }
}
