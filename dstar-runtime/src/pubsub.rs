//! PubSub: topics that live sessions subscribe to; every message published on a topic reaches
//! each subscribed session's `info`.
//!
//! [`PubSub`] is a trait so that a multi-node backend (Redis, NATS, Postgres `LISTEN`) can
//! replace the in-process [`LocalPubSub`] without touching pages.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::page::Message;
use crate::session::handle::SessionHandle;

/// Delivers messages published on a topic to the sessions subscribed to it.
pub trait PubSub: Send + Sync + 'static {
    /// Subscribes `session` to `topic`. A session that has ended is dropped on the next publish.
    fn subscribe(&self, topic: &str, session: SessionHandle);

    /// Removes `session` (by id) from `topic`.
    fn unsubscribe(&self, topic: &str, session: u128);

    /// Sends `message` to every session subscribed to `topic`. Returns how many got it.
    fn publish(&self, topic: &str, message: Message) -> usize;

    /// Sends events encoded once (`PatchElements::...to_bytes()`) to the stream of every
    /// session subscribed to `topic`, without running `info` or rendering: the bytes are
    /// shared by every session, each adds only its event ids. For updates that are the same
    /// for everyone (a chat line appended, a ticker). Returns how many got them.
    fn broadcast(&self, topic: &str, events: Bytes) -> usize;
}

/// The in-process PubSub: a map from topic to its subscribed sessions.
#[derive(Default)]
pub struct LocalPubSub {
    topics: RwLock<HashMap<Arc<str>, Vec<SessionHandle>>>,
}

impl fmt::Debug for LocalPubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("LocalPubSub")
            .field("topics", &topics.len())
            .finish()
    }
}

impl PubSub for LocalPubSub {
    fn subscribe(&self, topic: &str, session: SessionHandle) {
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        let subscribers = topics.entry(Arc::from(topic)).or_default();
        if !subscribers.iter().any(|s| s.id() == session.id()) {
            subscribers.push(session);
        }
    }

    fn unsubscribe(&self, topic: &str, session: u128) {
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        if let Some(subscribers) = topics.get_mut(topic) {
            subscribers.retain(|s| s.id() != session);
            if subscribers.is_empty() {
                topics.remove(topic);
            }
        }
    }

    fn publish(&self, topic: &str, message: Message) -> usize {
        let message = message.on_topic(Arc::from(topic));
        let delivered = self.deliver(topic, |session| session.send_message(message.clone()));
        crate::metrics::published(false, delivered);
        delivered
    }

    fn broadcast(&self, topic: &str, events: Bytes) -> usize {
        let delivered = self.deliver(topic, |session| session.send_events(events.clone()));
        crate::metrics::published(true, delivered);
        delivered
    }
}

impl LocalPubSub {
    /// Hands something to every subscriber of `topic`; drops the subscribers that have ended.
    fn deliver(&self, topic: &str, send: impl Fn(&SessionHandle) -> bool) -> usize {
        let (key, delivered, dead) = {
            let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
            let Some((key, subscribers)) = topics.get_key_value(topic) else {
                return 0;
            };
            let mut delivered = 0;
            let mut dead = false;
            for session in subscribers {
                if send(session) {
                    delivered += 1;
                } else {
                    dead |= session.is_closed();
                }
            }
            (key.clone(), delivered, dead)
        };
        if dead {
            let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
            if let Some(subscribers) = topics.get_mut(&key) {
                subscribers.retain(|s| !s.is_closed());
                if subscribers.is_empty() {
                    topics.remove(&key);
                }
            }
        }
        delivered
    }
}
