//! PubSub: topics that live sessions subscribe to; every message published on a topic reaches
//! each subscribed session's `info`.
//!
//! [`PubSub`] is a trait so that a multi-node backend (Redis, NATS, Postgres `LISTEN`) can
//! replace the in-process [`LocalPubSub`] without touching pages.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::page::Message;
use crate::session::handle::SessionHandle;

/// Delivers messages published on a topic to the sessions subscribed to it.
pub trait PubSub: Send + Sync + 'static {
    /// Subscribes `session` to `topic`. A session that has ended is dropped on the next publish
    /// (sessions do not unsubscribe as they end), and a new session with an ended one's id
    /// takes its place.
    fn subscribe(&self, topic: &str, session: SessionHandle);

    /// Removes `session` (by id) from `topic`.
    fn unsubscribe(&self, topic: &str, session: u128);

    /// Sends `message` to every session subscribed to `topic`, except its
    /// [`sender`](Message::sender) when it has one. Returns how many got it.
    fn publish(&self, topic: &str, message: Message) -> usize;

    /// Sends events encoded once (`PatchElements::...to_bytes()`) to the stream of every
    /// session subscribed to `topic`, without running `info` or rendering: the bytes are
    /// shared by every session, each adds only its event ids. For updates that are the same
    /// for everyone (a chat line appended, a ticker). Returns how many got them.
    fn broadcast(&self, topic: &str, events: Bytes) -> usize;
}

/// The in-process PubSub: a map from topic to the set of its subscribed sessions.
///
/// Subscribing and unsubscribing cost O(1) whatever a topic's size (a hash set keyed by session
/// id); publishing walks the topic's subscribers once. Each topic has its own lock, so a publish
/// to one topic never waits for another, and the map of topics is locked only to find a topic or
/// to add or drop one.
#[derive(Default)]
pub struct LocalPubSub {
    topics: RwLock<HashMap<Arc<str>, Arc<Topic>>>,
}

/// One topic's subscribers. Lock order: the map of topics, then a topic.
///
/// A session that ends is not taken out by its task: that would make every ending session of
/// a popular topic queue for the topic's write lock (at 100,000 sessions of one topic, reaping
/// cost 4.4x the CPU of unsubscribed sessions). Ended sessions are dropped by the next publish
/// instead, or by a subscribe once the set has doubled since the last sweep, so the set stays
/// within twice its live size and each sweep is paid for by the subscribes before it.
#[derive(Default)]
struct Topic {
    subscribers: RwLock<HashSet<Subscriber>>,
    /// The set's size after its last sweep.
    swept_at: AtomicUsize,
}

impl Topic {
    /// Adds `session`, replacing an ended session of the same id (a tab re-mounted in place
    /// takes its id back).
    fn insert(&self, session: SessionHandle) {
        let mut subscribers = write(&self.subscribers);
        subscribers.replace(Subscriber(session));
        let len = subscribers.len();
        if len >= SWEEP_FLOOR && len >= 2 * self.swept_at.load(Ordering::Relaxed) {
            subscribers.retain(|Subscriber(s)| !s.is_closed());
            self.swept_at.store(subscribers.len(), Ordering::Relaxed);
        }
    }
}

/// Below this many subscribers a topic is never swept on subscribe (publishes still prune it).
const SWEEP_FLOOR: usize = 64;

/// A subscribed session, equal and hashed by its id so the set can be probed with a bare id.
struct Subscriber(SessionHandle);

impl PartialEq for Subscriber {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}

impl Eq for Subscriber {}

impl Hash for Subscriber {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id().hash(state);
    }
}

impl Borrow<u128> for Subscriber {
    fn borrow(&self) -> &u128 {
        // Agrees with `Hash` and `Eq`, which look at the id alone.
        self.0.id_ref()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for LocalPubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalPubSub")
            .field("topics", &read(&self.topics).len())
            .finish()
    }
}

impl PubSub for LocalPubSub {
    fn subscribe(&self, topic: &str, session: SessionHandle) {
        {
            // The common case: the topic exists. Holding the map's read lock while inserting
            // keeps the topic from being dropped as empty in between.
            let topics = read(&self.topics);
            if let Some(existing) = topics.get(topic) {
                existing.insert(session);
                return;
            }
        }
        let mut topics = write(&self.topics);
        topics.entry(Arc::from(topic)).or_default().insert(session);
    }

    fn unsubscribe(&self, topic: &str, session: u128) {
        let emptied = {
            let topics = read(&self.topics);
            let Some(existing) = topics.get(topic) else {
                return;
            };
            let mut subscribers = write(&existing.subscribers);
            subscribers.remove(&session) && subscribers.is_empty()
        };
        if emptied {
            self.drop_if_empty(topic);
        }
    }

    fn publish(&self, topic: &str, message: Message) -> usize {
        let message = message.on_topic(Arc::from(topic));
        let sender = message.sender();
        let delivered = self.deliver(topic, sender, |session| {
            session.send_message(message.clone())
        });
        crate::metrics::published(false, delivered);
        delivered
    }

    fn broadcast(&self, topic: &str, events: Bytes) -> usize {
        let delivered = self.deliver(topic, None, |session| session.send_events(events.clone()));
        crate::metrics::published(true, delivered);
        delivered
    }
}

impl LocalPubSub {
    /// Hands something to every subscriber of `topic` but `skip`; drops the subscribers that
    /// have ended.
    fn deliver(
        &self,
        topic: &str,
        skip: Option<u128>,
        send: impl Fn(&SessionHandle) -> bool,
    ) -> usize {
        // Only the topic stays locked during the walk: other topics are free meanwhile.
        let Some(found) = read(&self.topics).get(topic).cloned() else {
            return 0;
        };
        let mut delivered = 0;
        let mut dead = false;
        for Subscriber(session) in read(&found.subscribers).iter() {
            if skip == Some(session.id()) {
                continue;
            }
            if send(session) {
                delivered += 1;
            } else {
                dead |= session.is_closed();
            }
        }
        if dead {
            let emptied = {
                let mut subscribers = write(&found.subscribers);
                subscribers.retain(|Subscriber(s)| !s.is_closed());
                found.swept_at.store(subscribers.len(), Ordering::Relaxed);
                subscribers.is_empty()
            };
            if emptied {
                self.drop_if_empty(topic);
            }
        }
        delivered
    }

    /// Removes `topic` from the map if nobody subscribed to it again meanwhile.
    fn drop_if_empty(&self, topic: &str) {
        let mut topics = write(&self.topics);
        if topics
            .get(topic)
            .is_some_and(|t| read(&t.subscribers).is_empty())
        {
            topics.remove(topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::handle::Mailbox;

    fn session(id: u128) -> SessionHandle {
        SessionHandle::new(id, Arc::new(Mailbox::new(8)))
    }

    fn size(pubsub: &LocalPubSub, topic: &str) -> Option<usize> {
        read(&pubsub.topics)
            .get(topic)
            .map(|t| read(&t.subscribers).len())
    }

    #[test]
    fn a_session_subscribes_once_and_leaves_by_id() {
        let pubsub = LocalPubSub::default();
        let (a, b) = (session(1), session(2));
        pubsub.subscribe("room", a.clone());
        pubsub.subscribe("room", a.clone());
        pubsub.subscribe("room", b.clone());
        assert_eq!(size(&pubsub, "room"), Some(2));
        assert_eq!(pubsub.publish("room", Message::new(1u8)), 2);

        pubsub.unsubscribe("room", 1);
        pubsub.unsubscribe("room", 1);
        pubsub.unsubscribe("elsewhere", 2);
        assert_eq!(size(&pubsub, "room"), Some(1));
        assert_eq!(pubsub.broadcast("room", Bytes::from_static(b"x")), 1);

        // The last subscriber out takes the topic with it; a new one brings it back.
        pubsub.unsubscribe("room", 2);
        assert_eq!(size(&pubsub, "room"), None);
        assert_eq!(pubsub.publish("room", Message::new(1u8)), 0);
        pubsub.subscribe("room", b);
        assert_eq!(pubsub.publish("room", Message::new(1u8)), 1);
    }

    #[test]
    fn a_publisher_can_skip_itself() {
        let pubsub = LocalPubSub::default();
        let (me, other) = (session(1), session(2));
        pubsub.subscribe("room", me.clone());
        pubsub.subscribe("room", other.clone());
        assert_eq!(pubsub.publish("room", Message::from_session(1, 1u8)), 1);
        assert!(me.mailbox().close().is_empty(), "the sender got nothing");
        assert_eq!(other.mailbox().close().len(), 1);
    }

    #[test]
    fn ended_sessions_are_dropped_on_the_next_publish() {
        let pubsub = LocalPubSub::default();
        let (live, ended) = (session(1), session(2));
        pubsub.subscribe("room", live.clone());
        pubsub.subscribe("room", ended.clone());
        pubsub.subscribe("solo", ended.clone());
        ended.mailbox().close();

        assert_eq!(pubsub.publish("room", Message::new(1u8)), 1);
        assert_eq!(size(&pubsub, "room"), Some(1));
        assert_eq!(pubsub.broadcast("solo", Bytes::from_static(b"x")), 0);
        assert_eq!(size(&pubsub, "solo"), None);
    }

    #[test]
    fn ended_sessions_are_swept_as_the_topic_grows_and_replaced_by_their_id() {
        let pubsub = LocalPubSub::default();
        let ended: Vec<_> = (0..1_000).map(session).collect();
        for s in &ended {
            pubsub.subscribe("room", s.clone());
            s.mailbox().close();
        }
        // Never more than twice the live ones (plus the floor), with no publish at all.
        let live: Vec<_> = (1_000..1_100).map(session).collect();
        for s in &live {
            pubsub.subscribe("room", s.clone());
        }
        let kept = size(&pubsub, "room").unwrap();
        assert!(kept <= 2 * live.len() + SWEEP_FLOOR, "{kept} kept");
        // A session re-mounted with an ended one's id replaces it.
        pubsub.subscribe("room", session(5));
        assert_eq!(pubsub.publish("room", Message::new(1u8)), live.len() + 1);
        assert_eq!(size(&pubsub, "room"), Some(live.len() + 1));
    }

    #[test]
    fn many_subscribers_come_and_go_by_id() {
        let pubsub = LocalPubSub::default();
        let sessions: Vec<_> = (0..1_000).map(session).collect();
        for s in &sessions {
            pubsub.subscribe("room", s.clone());
        }
        for s in sessions.iter().filter(|s| s.id() % 2 == 0) {
            pubsub.unsubscribe("room", s.id());
        }
        assert_eq!(pubsub.publish("room", Message::new(1u8)), 500);
        assert!(
            read(&pubsub.topics)["room"]
                .subscribers
                .read()
                .unwrap()
                .iter()
                .all(|Subscriber(s)| s.id() % 2 == 1)
        );
    }
}
