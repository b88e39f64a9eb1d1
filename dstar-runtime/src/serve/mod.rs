//! The HTTP server [`App::serve`](crate::app::App::serve) runs: hyper's HTTP/1.1 connections
//! with the deadlines `axum::serve` does not have, an accept loop that survives running out of
//! file descriptors, and a bounded graceful shutdown. With the `tls` feature it also serves
//! TLS, with HTTP/2 where the client offers it (`Tls`). Every request carries the client's
//! address as axum's `ConnectInfo<SocketAddr>` (an extractor, as with
//! `into_make_service_with_connect_info`): the peer of the TCP connection, so behind a proxy
//! the proxy's.
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
//! # TLS and HTTP/2
//!
//! With the `tls` feature, `App::builder().tls(Tls::from_pem_files(cert, key)?)` (or
//! `DSTAR_TLS_CERT` and `DSTAR_TLS_KEY` for [`App::serve`](crate::app::App::serve)) serves
//! TLS with rustls on the `ring` provider, and HTTP/2 to clients that offer it over ALPN
//! (HTTP/1.1 to the others). The handshake counts against the header deadline; on HTTP/2 the
//! connection is serving while any of its streams is open, so a tab's live stream keeps it,
//! and its events and navigations are streams of the same connection. See `Tls`.
//!
//! # Memory per connection
//!
//! What a plain HTTP/1.1 connection holding a live page's stream costs, from a heap profile
//! (heaptrack) of the `connections` bench with 2,000 streams; BENCHMARKS.md has the totals
//! against a minimal `axum::serve` server:
//!
//! | what | bytes | |
//! | --- | ---: | --- |
//! | hyper's write buffer | 8,192 | allocated with the connection; only the pages written are resident |
//! | hyper's read buffer | 8,192 | one reserve at the first read; the request head is a few hundred bytes of it |
//! | the connection's task | ~1,400 | the hyper connection inline (the TLS branch is boxed, see below) |
//! | hyper's dispatcher, tokio's I/O registration, the deadline state | ~800 | |
//! | the route table | 0 | shared: each connection clones an `Arc` |
//! | the rest: the live session and its stream | ~2,600 | the session task, its stream queue and heartbeat timer, the stream response |
//!
//! The task is the one figure here that dstar decides: a task is allocated at its future's
//! size, and an `async fn` is as large as its largest state, so the TLS connection (rustls's
//! session, HTTP/2's state; 7.8 KB) is boxed and plain connections do not carry it. hyper's
//! buffers are fixed by hyper: its builder can raise the read buffer's limit
//! (`max_buf_size`, at least 8 KiB) but not start it smaller, nor give either buffer back
//! while a response streams.
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
//! - TLS and HTTP/2: `axum::serve` speaks plain HTTP/1.1 (or HTTP/2 with prior knowledge);
//!   terminate TLS in a proxy in front.
//! - the route table shared between connections: `axum::serve` calls the router's
//!   make-service once per connection, and that clones the whole route table (axum issue
//!   #1827; about 2.5 KB per connection for a one-route router, more with every route). Call
//!   `router.with_state(())` once and pass `router.into_make_service()`, so a connection
//!   costs a reference count.
//! - memory per connection generally. Measured with 1,000 to 18,000 open streams, a minimal
//!   one-route `axum::serve` SSE server holds 22.9–23.2 KB of RSS (31.8 KB of heap) per
//!   stream, where `App::serve` holds 13.6–14.1 KB for a whole live session (21.2–21.4 KB of
//!   heap; see BENCHMARKS.md). Besides the route table, `axum::serve` reads each
//!   connection's first bytes to tell HTTP/1.1 from HTTP/2 and hands them back to hyper, and
//!   hyper's read buffer then ends up 16 KiB instead of 8 KiB. `axum::serve` has no setting
//!   for that; an accept loop of your own over `hyper::server::conn::http1::Builder`, as
//!   `App::serve` has, avoids it.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::error::{Level, log};

mod phases;
mod service;
#[cfg(feature = "tls")]
mod tls;

use phases::{DeadlineIo, Phases};
use service::Service;
#[cfg(feature = "tls")]
pub use tls::{CERT_ENV, KEY_ENV, Tls, TlsError};

/// How connections are secured: plain TCP, or TLS with the `tls` feature.
#[derive(Debug, Clone, Default)]
pub(crate) enum Security {
    /// Plain TCP: HTTP/1.1.
    #[default]
    Plain,
    /// TLS: HTTP/2 or HTTP/1.1, as ALPN chooses.
    #[cfg(feature = "tls")]
    Tls(Tls),
}

impl Security {
    /// The URL scheme clients use.
    pub(crate) fn scheme(&self) -> &'static str {
        match self {
            Security::Plain => "http",
            #[cfg(feature = "tls")]
            Security::Tls(_) => "https",
        }
    }
}

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
    security: &Security,
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
            Ok((stream, peer)) => {
                accept_errors.accepted();
                connections.spawn(connection(
                    (stream, peer),
                    router.clone(),
                    config.clone(),
                    security.clone(),
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
    (stream, peer): (TcpStream, std::net::SocketAddr),
    router: axum::Router,
    config: ServeConfig,
    security: Security,
    stopped: watch::Receiver<()>,
) {
    // Patches on a live stream are small writes that should leave at once, not wait for the
    // acknowledgement of the previous one (Nagle's algorithm).
    let _ = stream.set_nodelay(true);
    let phase = Arc::new(Phases::new(&config));
    let service = Service {
        router,
        phase: phase.clone(),
        body_timeout: config.body_timeout,
        peer,
    };
    let io = DeadlineIo::new(stream, phase);
    match security {
        Security::Plain => http1(TokioIo::new(io), service, stopped).await,
        // Boxed: an `async fn` is as large as its largest state, and a TLS connection (rustls's
        // session, HTTP/2's) is several kilobytes larger than a plain one. Unboxed, every
        // plain connection's task would be allocated, and copied in whole, at the TLS size
        // (7.8 KB instead of about 1 KB).
        #[cfg(feature = "tls")]
        Security::Tls(tls) => Box::pin(tls::connection(io, tls, service, stopped)).await,
    }
}

/// Serves HTTP/1.1 on `io` until it closes, or until `stopped` says the server is shutting
/// down and the request in flight is answered.
async fn http1<I>(io: TokioIo<I>, service: Service, mut stopped: watch::Receiver<()>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
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

    /// Every connection's task is allocated (and its future copied in) at the size of
    /// `connection`'s future, so that size is memory per connection. With the `tls` feature
    /// the TLS state must stay out of it (boxed), or plain connections pay 7.8 KB each.
    #[tokio::test]
    async fn a_plain_connection_task_stays_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let accepted = listener.accept().await.expect("accept");
        let (_stop, stopped) = watch::channel(());
        let future = connection(
            accepted,
            axum::Router::new(),
            ServeConfig::default(),
            Security::Plain,
            stopped,
        );
        let size = std::mem::size_of_val(&future);
        assert!(
            size <= 2048,
            "a connection's future is {size} bytes; the plain HTTP/1.1 path needs about 1.2 KB"
        );
    }
}
