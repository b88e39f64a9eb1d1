//! The hyper service a connection runs: the router's answers, with the connection's phase
//! kept up to date and request bodies under the body deadline.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::BodyTimeout;
use super::phases::{InFlight, Phases, after};

/// One connection's hyper service: the shared router, with the connection's phase kept up to
/// date and request bodies under [`ServeConfig::body_timeout`].
#[derive(Debug)]
pub(super) struct Service {
    pub(super) router: axum::Router,
    pub(super) phase: Arc<Phases>,
    pub(super) body_timeout: Duration,
    /// The client's address, given to every request as axum's `ConnectInfo<SocketAddr>`.
    pub(super) peer: std::net::SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<ServedBody>;
    type Error = Infallible;
    type Future = ServedFuture;

    fn call(&self, request: Request<Incoming>) -> ServedFuture {
        let in_flight = InFlight::start(self.phase.clone());
        let mut request = request.map(|body| TimedBody::new(body, self.body_timeout));
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        // A `Router` is always ready, and cloning it clones an `Arc`.
        let future = tower_service::Service::call(&mut self.router.clone(), request);
        ServedFuture {
            future,
            in_flight: Some(in_flight),
        }
    }
}

/// The router's answer, which carries the request's [`InFlight`] on into its body.
pub(super) struct ServedFuture {
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
pub(super) struct ServedBody {
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
pub(super) struct TimedBody {
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
    pub(super) fn new(incoming: Incoming, timeout: Duration) -> Self {
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
