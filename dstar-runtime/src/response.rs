//! An SSE response for axum: a one-shot body of already-encoded events, or a live stream fed
//! through a channel with comment heartbeats.
//!
//! The stream body hands each encoded event to hyper as its own frame, and hyper writes a frame
//! as soon as it gets it, so events are flushed as they are sent, not when a buffer fills.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, header};
use http_body::Frame;
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};

/// The heartbeat comment written when a stream has been idle for a heartbeat period.
pub const HEARTBEAT: &[u8] = b": hb\n\n";

/// A `text/event-stream` response.
///
/// ```
/// use dstar_runtime::response::Sse;
/// use dstar_runtime::sse::PatchSignals;
///
/// async fn handler() -> Sse {
///     let mut body = Vec::new();
///     PatchSignals::raw(r#"{"count":1}"#).write_to(&mut body);
///     Sse::once(body)
/// }
/// ```
#[derive(Debug)]
#[must_use = "a response does nothing until it is returned"]
pub struct Sse {
    body: SseBody,
}

#[derive(Debug)]
enum SseBody {
    Once(Bytes),
    Stream(EventStream),
}

impl Sse {
    /// A response whose whole body is `events`, already encoded.
    pub fn once(events: impl Into<Bytes>) -> Self {
        Sse {
            body: SseBody::Once(events.into()),
        }
    }

    /// A streaming response: every `Bytes` sent on the channel is written as it arrives; the
    /// stream ends when every sender is dropped. When nothing was sent for `heartbeat`, a
    /// comment is written so that dead connections are noticed.
    pub fn stream(events: mpsc::Receiver<Bytes>, heartbeat: Option<Duration>) -> Self {
        Sse {
            body: SseBody::Stream(EventStream::new(events, heartbeat)),
        }
    }
}

impl IntoResponse for Sse {
    fn into_response(self) -> Response {
        let body = match self.body {
            SseBody::Once(bytes) => Body::from(bytes),
            SseBody::Stream(stream) => Body::new(stream),
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        // `no-store` rather than `no-cache`: events carry tokens and page state that no cache may
        // keep, not even to revalidate.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // No `Connection` header: HTTP/1.1 connections persist unless a side says `close`,
        // and hyper writes `close` when the request asked for it (a `keep-alive` here made that
        // `keep-alive, close`); HTTP/2 forbids the header.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }
}

/// An `http_body::Body` over a channel of encoded events, with idle heartbeats.
#[derive(Debug)]
pub struct EventStream {
    events: mpsc::Receiver<Bytes>,
    heartbeat: Option<Interval>,
}

impl EventStream {
    /// Wraps a channel of encoded events.
    pub fn new(events: mpsc::Receiver<Bytes>, heartbeat: Option<Duration>) -> Self {
        let heartbeat = heartbeat.map(|period| {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        EventStream { events, heartbeat }
    }
}

impl http_body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(bytes)) => {
                if let Some(heartbeat) = &mut self.heartbeat {
                    heartbeat.reset();
                }
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let beat = self
                    .heartbeat
                    .as_mut()
                    .is_some_and(|h| h.poll_tick(cx).is_ready());
                if beat {
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(HEARTBEAT)))))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}
