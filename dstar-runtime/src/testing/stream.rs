//! A live page's stream, read as the browser reads it: what has arrived so far, or the next
//! event with a timeout.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::Body as _;

use super::sse::{SseEvent, SseParser};

/// A live page's open stream: the response body, read frame by frame.
pub(super) struct Stream {
    body: Body,
    parser: SseParser,
    closed: bool,
}

impl Stream {
    /// Reads the stream of the response whose body is `body`.
    pub(super) fn new(body: Body) -> Self {
        Stream {
            body,
            parser: SseParser::new(),
            closed: false,
        }
    }

    /// Every event the body has ready now, without waiting.
    pub(super) async fn ready(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while !self.closed {
            let body = &mut self.body;
            let frame = poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(frame) => Poll::Ready(Some(frame)),
                Poll::Pending => Poll::Ready(None),
            })
            .await;
            match frame {
                None => break,
                Some(frame) => events.extend(self.take(frame)),
            }
        }
        events
    }

    /// Waits until at least one event arrives, then returns it with everything else ready.
    pub(super) async fn next(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<SseEvent>, Option<Duration>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = self.ready().await;
        while events.is_empty() {
            if self.closed {
                return Err(None);
            }
            let body = &mut self.body;
            let frame = tokio::time::timeout_at(
                deadline,
                poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)),
            )
            .await
            .map_err(|_| Some(timeout))?;
            events.extend(self.take(frame));
        }
        events.extend(self.ready().await);
        Ok(events)
    }

    fn take(
        &mut self,
        frame: Option<Result<http_body::Frame<Bytes>, axum::Error>>,
    ) -> Vec<SseEvent> {
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    self.parser.feed(&data);
                    std::iter::from_fn(|| self.parser.next_event()).collect()
                }
                Err(_) => Vec::new(),
            },
            Some(Err(_)) | None => {
                self.closed = true;
                Vec::new()
            }
        }
    }
}
