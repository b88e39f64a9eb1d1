//! An SSE response for axum: a one-shot body of already-encoded events, or a live stream fed
//! through a channel with comment heartbeats.
//!
//! The stream body hands each encoded event to hyper as its own frame, and hyper writes a frame
//! as soon as it gets it, so events are flushed as they are sent, not when a buffer fills. A
//! compressed stream ([`Sse::encoding`]) keeps that: each frame is the compressed and flushed
//! bytes of one frame in.

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

use crate::compress::{Encoder, Encoding};

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
    /// `Some` when the app compresses: the coding negotiated (`None` inside: identity).
    encoding: Option<Option<Encoding>>,
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
            encoding: None,
        }
    }

    /// A streaming response: every `Bytes` sent on the channel is written as it arrives; the
    /// stream ends when every sender is dropped. When nothing was sent for `heartbeat`, a
    /// comment is written so that dead connections are noticed.
    pub fn stream(events: mpsc::Receiver<Bytes>, heartbeat: Option<Duration>) -> Self {
        Sse {
            body: SseBody::Stream(EventStream::new(events, heartbeat)),
            encoding: None,
        }
    }

    /// Compresses the body with `encoding` (`None`: sends it as it is), chosen from the
    /// request's `Accept-Encoding` by [`negotiate`](crate::compress::negotiate). The response
    /// gets `Vary: Accept-Encoding` either way, and `Content-Encoding` when compressed. A
    /// stream stays a stream: each event (and heartbeat) is compressed and flushed on its own.
    pub fn encoding(mut self, encoding: Option<Encoding>) -> Self {
        self.encoding = Some(encoding);
        self
    }
}

impl IntoResponse for Sse {
    fn into_response(self) -> Response {
        let encoding = self.encoding.flatten();
        let body = match (self.body, encoding) {
            (SseBody::Once(bytes), None) => Body::from(bytes),
            (SseBody::Once(bytes), Some(encoding)) => {
                Body::from(Encoder::compress(encoding, &bytes))
            }
            (SseBody::Stream(mut stream), encoding) => {
                stream.encoder = encoding.map(Encoder::new);
                Body::new(stream)
            }
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        if self.encoding.is_some() {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        if let Some(encoding) = encoding {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(encoding.as_str()),
            );
        }
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
    encoder: Option<Encoder>,
    ended: bool,
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
        EventStream {
            events,
            heartbeat,
            encoder: None,
            ended: false,
        }
    }

    /// `bytes` as the next frame: compressed and flushed when the stream is compressed.
    fn frame(&mut self, bytes: Bytes) -> Frame<Bytes> {
        match &mut self.encoder {
            Some(encoder) => {
                encoder.write(&bytes);
                Frame::data(encoder.flush())
            }
            None => Frame::data(bytes),
        }
    }
}

impl http_body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(bytes)) => {
                if let Some(heartbeat) = &mut self.heartbeat {
                    heartbeat.reset();
                }
                Poll::Ready(Some(Ok(self.frame(bytes))))
            }
            Poll::Ready(None) => {
                self.ended = true;
                match &mut self.encoder {
                    Some(encoder) => Poll::Ready(Some(Ok(Frame::data(encoder.finish())))),
                    None => Poll::Ready(None),
                }
            }
            Poll::Pending => {
                let beat = self
                    .heartbeat
                    .as_mut()
                    .is_some_and(|h| h.poll_tick(cx).is_ready());
                if beat {
                    Poll::Ready(Some(Ok(self.frame(Bytes::from_static(HEARTBEAT)))))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

#[cfg(test)]
mod compressed_tests {
    use std::io::Write;

    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn a_compressed_channel_stream_flushes_each_event_and_ends_its_coding() {
        let (events, receiver) = mpsc::channel(4);
        let response = Sse::stream(receiver, None)
            .encoding(Some(Encoding::Gzip))
            .into_response();
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        let mut body = response.into_body();
        let mut decoder = flate2::write::GzDecoder::new(Vec::new());
        let mut expected = Vec::new();
        for i in 0..5 {
            let event = format!("event: datastar-patch-signals\ndata: signals {{\"n\":{i}}}\n\n");
            events.send(Bytes::from(event.clone())).await.unwrap();
            let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
            decoder.write_all(&frame).unwrap();
            decoder.flush().unwrap();
            expected.extend_from_slice(event.as_bytes());
            assert_eq!(
                decoder.get_ref(),
                &expected,
                "event {i} decodes from its own frame"
            );
        }
        drop(events);
        let end = body.frame().await.unwrap().unwrap().into_data().unwrap();
        decoder.write_all(&end).unwrap();
        assert_eq!(
            decoder.finish().unwrap(),
            expected,
            "the trailer checks out"
        );
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn a_one_shot_answer_is_compressed_whole_or_left_alone() {
        let events = b"event: datastar-patch-signals\ndata: signals {\"a\":1}\n\n".repeat(20);
        let plain = Sse::once(events.clone()).encoding(None).into_response();
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
        let body = plain.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, events);

        let packed = Sse::once(events.clone())
            .encoding(Some(Encoding::Brotli))
            .into_response();
        assert_eq!(packed.headers()[header::CONTENT_ENCODING], "br");
        let body = packed.into_body().collect().await.unwrap().to_bytes();
        let mut decoded = Vec::new();
        brotli::BrotliDecompress(&mut &body[..], &mut decoded).unwrap();
        assert_eq!(decoded, events);
        assert!(body.len() < events.len() / 4);

        let untouched = Sse::once(events.clone()).into_response();
        assert!(untouched.headers().get(header::VARY).is_none());
    }
}
