//! The stream queue: encoded batches waiting for one stream, shared by the session task (the
//! writer) and the stream's response body (the reader).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::Waker;

use bytes::Bytes;

#[derive(Debug)]
pub(crate) struct StreamQueue {
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
pub(crate) struct QueueState {
    pub(crate) items: VecDeque<Bytes>,
    pub(crate) end: Option<End>,
    pub(crate) waker: Option<Waker>,
}

/// How a stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Finish the response normally: the client does not reconnect.
    Close,
    /// Abort the connection: the client treats it as a network error and reconnects.
    Abort,
}

impl StreamQueue {
    pub(crate) fn new() -> Self {
        StreamQueue {
            state: Mutex::new(QueueState::default()),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a batch. Returns `false` when the queue was full: it is then emptied, and the
    /// caller sends a full re-render instead.
    pub(crate) fn push(&self, bytes: Bytes, capacity: usize) -> bool {
        self.push_all([bytes], capacity)
    }

    /// Queues pieces that belong together (an event's own head and its shared body): all of
    /// them, or, when the queue is full, none.
    pub(crate) fn push_all(
        &self,
        pieces: impl IntoIterator<Item = Bytes>,
        capacity: usize,
    ) -> bool {
        let waker = {
            let mut state = self.lock();
            if state.end.is_some() {
                return true;
            }
            if state.items.len() >= capacity {
                state.items.clear();
                return false;
            }
            state
                .items
                .extend(pieces.into_iter().filter(|piece| !piece.is_empty()));
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Ends the stream, after `last` if given.
    pub(crate) fn end(&self, end: End, last: Option<Bytes>) {
        let waker = {
            let mut state = self.lock();
            if let Some(last) = last {
                state.items.push_back(last);
            }
            state.end = Some(end);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}
