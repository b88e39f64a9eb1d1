//! The live stream's response body: it drains the session's stream queue, sends heartbeats
//! while idle, and tells the session when the client goes away. A compressed stream writes
//! everything queued at once through its encoder and flushes it as one frame, so a frame never
//! waits for more events.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::time::Interval;

use super::handle::{Command, Mailbox};
use super::queue::{End, StreamQueue};
use crate::compress::Encoder;
use crate::response::HEARTBEAT;

pub(crate) struct LiveBody {
    pub(crate) queue: Arc<StreamQueue>,
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) generation: u64,
    pub(crate) heartbeat: Interval,
    /// Before aborting, the body waits a moment so the last frames are flushed first: hyper
    /// drops what it has buffered when a body fails.
    pub(crate) abort_after: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Set when the stream is compressed.
    pub(crate) encoder: Option<Encoder>,
    /// The compressed stream's end marker has been sent.
    pub(crate) finished: bool,
}

/// The error that aborts a stream so the client reconnects.
#[derive(Debug)]
pub(crate) struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream aborted for reconnection")
    }
}

impl std::error::Error for Aborted {}

impl http_body::Body for LiveBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Aborted>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        {
            let this = &mut *self;
            let mut state = this.queue.lock();
            if let Some(encoder) = &mut this.encoder {
                if !state.items.is_empty() {
                    // Everything queued goes into one flushed frame (an event's pieces together),
                    // compressed after the lock is released.
                    let items = std::mem::take(&mut state.items);
                    drop(state);
                    for bytes in &items {
                        encoder.write(bytes);
                    }
                    this.heartbeat.reset();
                    return Poll::Ready(Some(Ok(Frame::data(encoder.flush()))));
                }
                if state.end == Some(End::Close) {
                    this.finished = true;
                    return Poll::Ready(Some(Ok(Frame::data(encoder.finish()))));
                }
            } else if let Some(bytes) = state.items.pop_front() {
                drop(state);
                this.heartbeat.reset();
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            match state.end {
                Some(End::Close) => return Poll::Ready(None),
                Some(End::Abort) => {}
                None => state.waker = Some(cx.waker().clone()),
            }
            if state.end == Some(End::Abort) {
                drop(state);
                let delay = self
                    .abort_after
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(20))));
                return match delay.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Aborted))),
                    Poll::Pending => Poll::Pending,
                };
            }
        }
        if self.heartbeat.poll_tick(cx).is_ready() {
            let frame = match &mut self.encoder {
                Some(encoder) => {
                    encoder.write(HEARTBEAT);
                    encoder.flush()
                }
                None => Bytes::from_static(HEARTBEAT),
            };
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        Poll::Pending
    }
}

impl Drop for LiveBody {
    fn drop(&mut self) {
        crate::metrics::open_streams(-1.0);
        self.mailbox
            .push_control(Command::Detached(self.generation));
    }
}
