//! A connection's phases (reading a head, idle, serving) and the reads that enforce their
//! deadlines.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::ServeConfig;

/// Where a connection is, shared by its reads ([`DeadlineIo`]) and its requests
/// ([`Service`](super::service::Service)).
#[derive(Debug)]
pub(super) struct Phases {
    state: Mutex<State>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

#[derive(Debug)]
pub(super) struct State {
    phase: Phase,
    /// The read that found no deadline, to wake when one begins: hyper may have polled its
    /// read for the next head before it dropped the last response body, and would otherwise
    /// not poll it again until the client sends something.
    reader: Option<Waker>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
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
    pub(super) fn new(config: &ServeConfig) -> Self {
        Phases {
            state: Mutex::new(State {
                phase: Phase::Head(after(config.header_timeout)),
                reader: None,
            }),
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// When reads must have completed a request head (or started one), if they must; when
    /// they need not, `reader` is woken once they must.
    pub(super) fn read_deadline(&self, reader: &Waker) -> Option<Instant> {
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
    pub(super) fn received(&self) {
        let mut state = self.lock();
        if let Phase::Idle(_) = state.phase {
            state.phase = Phase::Head(after(self.header_timeout));
        }
    }

    pub(super) fn request_started(&self) {
        let mut state = self.lock();
        state.phase = match state.phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Upgraded => Phase::Upgraded,
            Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1),
        };
    }

    pub(super) fn request_ended(&self) {
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

    pub(super) fn upgraded(&self) {
        self.lock().phase = Phase::Upgraded;
    }
}

/// `timeout` from now; a `Duration` too long for the clock means "never" in effect.
pub(super) fn after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// A request being served, from its head until its response body is done (or dropped).
#[derive(Debug)]
pub(super) struct InFlight(pub(super) Arc<Phases>);

impl InFlight {
    pub(super) fn start(phases: Arc<Phases>) -> Self {
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
pub(super) struct DeadlineIo {
    stream: TcpStream,
    phases: Arc<Phases>,
    /// Allocated once per connection and reset to each new deadline.
    timer: Pin<Box<Sleep>>,
    timer_deadline: Instant,
}

impl DeadlineIo {
    pub(super) fn new(stream: TcpStream, phases: Arc<Phases>) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

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
