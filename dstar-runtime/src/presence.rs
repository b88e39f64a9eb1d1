//! Presence: who is on a topic right now, and who came and went.
//!
//! A live page says who its tab is with [`Mount::track`](crate::page::Mount::track) (a key,
//! such as a user id or a name, and metadata). The tab counts as present **from its first
//! stream connection**, not from the page load: a crawler or a link preview that loads the
//! page and never opens its stream is nobody. It stays present while its session lives: a
//! hidden tab whose stream is paused is still there until its hidden-tab grace ends, and a
//! session that ends, however it ends, leaves.
//!
//! Changes reach the topic's subscribers as one [`PresenceDiff`] message (joins and leaves by
//! key) through the app's PubSub, so `info` handles them like any message. Changes are
//! coalesced: the first change on a topic starts a short window
//! ([`PresenceConfig::coalesce`]) and everything that happens in it goes out as one diff, so a
//! burst of a thousand joins costs each subscriber one message, not a thousand.
//!
//! One key may be present from several tabs: it joins with the first and leaves with the last.
//! [`Presence::list`] gives the keys present with their metadata and how many tabs each has.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::page::Message;
use crate::pubsub::PubSub;
use crate::session::handle::SessionHandle;

/// Presence settings.
#[derive(Debug, Clone)]
pub struct PresenceConfig {
    /// How long changes on a topic are gathered into one diff. `None` sends nothing until
    /// [`Presence::flush`] is called (tests use it to decide when diffs go out).
    pub coalesce: Option<Duration>,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            coalesce: Some(Duration::from_millis(50)),
        }
    }
}

/// One key's entry on a topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Present {
    /// Who (a user id, a name).
    pub key: String,
    /// What its first tab said of it (a display name, a colour).
    pub meta: Value,
    /// How many tabs it is present from.
    pub tabs: usize,
}

/// What changed on a topic: the keys that came (with their metadata) and the keys that went.
/// Sent to the topic's subscribers as a [`Message`]; read it with
/// `message.get::<PresenceDiff>()`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PresenceDiff {
    /// The topic.
    pub topic: String,
    /// Keys now present that were not, with their metadata.
    pub joins: BTreeMap<String, Value>,
    /// Keys no longer present.
    pub leaves: Vec<String>,
}

/// A tab's presence on a topic.
#[derive(Debug, Clone)]
struct Tracked {
    topic: String,
    key: String,
    meta: Value,
}

#[derive(Debug, Default)]
struct State {
    /// What each session said in `mount`, until its stream first connects.
    pending: HashMap<u128, (SessionHandle, Vec<Tracked>)>,
    /// What each present session is tracked as.
    joined: HashMap<u128, (SessionHandle, Vec<Tracked>)>,
    /// Per topic: the keys present, with their metadata and tab count.
    topics: HashMap<String, BTreeMap<String, (Value, usize)>>,
    /// Per topic: the changes not yet sent (key → joined (with meta) or left).
    changes: HashMap<String, BTreeMap<String, Option<Value>>>,
}

/// The app's presence tracker (see the module docs).
pub struct Presence {
    config: PresenceConfig,
    /// Whether any page ever tracked anything: until then sessions skip the lock.
    used: std::sync::atomic::AtomicBool,
    /// Shared with the tasks that send a topic's diff when its window ends.
    state: Arc<Mutex<State>>,
    pubsub: Arc<dyn PubSub>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Presence {
    pub(crate) fn new(config: PresenceConfig, pubsub: Arc<dyn PubSub>) -> Self {
        Presence {
            config,
            used: std::sync::atomic::AtomicBool::new(false),
            state: Arc::default(),
            pubsub,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Records what `session`'s `mount` tracked; it counts once its stream connects.
    pub(crate) fn track(&self, session: &SessionHandle, tracked: Vec<(String, String, Value)>) {
        if tracked.is_empty() {
            return;
        }
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        let tracked = tracked
            .into_iter()
            .map(|(topic, key, meta)| Tracked { topic, key, meta })
            .collect();
        self.lock()
            .pending
            .insert(session.id(), (session.clone(), tracked));
    }

    /// `session`'s stream connected: what it tracked joins (once; later reconnects find
    /// nothing pending).
    pub(crate) fn connected(&self, session: &SessionHandle) {
        if !self.used.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut state = self.lock();
        let Some((handle, tracked)) = state.pending.remove(&session.id()) else {
            return;
        };
        if !handle.same_session(session) {
            return;
        }
        let mut touched = Vec::new();
        for entry in &tracked {
            let keys = state.topics.entry(entry.topic.clone()).or_default();
            let count = keys
                .entry(entry.key.clone())
                .or_insert_with(|| (entry.meta.clone(), 0));
            count.1 += 1;
            if count.1 == 1 {
                state
                    .changes
                    .entry(entry.topic.clone())
                    .or_default()
                    .insert(entry.key.clone(), Some(entry.meta.clone()));
                touched.push(entry.topic.clone());
            }
        }
        state.joined.insert(session.id(), (handle, tracked));
        drop(state);
        self.schedule(touched);
    }

    /// `session` ended: what it tracked leaves. A session re-mounted under the same id since
    /// is left alone (matched by its mailbox, not only its id).
    pub(crate) fn ended(&self, session: &SessionHandle) {
        if !self.used.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut state = self.lock();
        if state
            .pending
            .get(&session.id())
            .is_some_and(|(handle, _)| handle.same_session(session))
        {
            state.pending.remove(&session.id());
        }
        let Some((handle, _)) = state.joined.get(&session.id()) else {
            return;
        };
        if !handle.same_session(session) {
            return;
        }
        let Some((_, tracked)) = state.joined.remove(&session.id()) else {
            return;
        };
        let mut touched = Vec::new();
        for entry in tracked {
            let Some(keys) = state.topics.get_mut(&entry.topic) else {
                continue;
            };
            let gone = match keys.get_mut(&entry.key) {
                Some(count) => {
                    count.1 -= 1;
                    count.1 == 0
                }
                None => false,
            };
            if gone {
                keys.remove(&entry.key);
                if keys.is_empty() {
                    state.topics.remove(&entry.topic);
                }
                state
                    .changes
                    .entry(entry.topic.clone())
                    .or_default()
                    .insert(entry.key, None);
                touched.push(entry.topic);
            }
        }
        drop(state);
        self.schedule(touched);
    }

    /// The keys present on `topic`, with their metadata and how many tabs each has.
    pub fn list(&self, topic: &str) -> Vec<Present> {
        self.lock()
            .topics
            .get(topic)
            .map(|keys| {
                keys.iter()
                    .map(|(key, (meta, tabs))| Present {
                        key: key.clone(),
                        meta: meta.clone(),
                        tabs: *tabs,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many keys are present on `topic`.
    pub fn count(&self, topic: &str) -> usize {
        self.lock().topics.get(topic).map_or(0, BTreeMap::len)
    }

    /// Sends every topic's gathered changes now, one diff per topic. Returns how many diffs
    /// went out.
    pub fn flush(&self) -> usize {
        let topics: Vec<String> = self.lock().changes.keys().cloned().collect();
        topics.iter().filter(|topic| self.send(topic)).count()
    }

    /// Starts the coalescing window of each topic that just got its first pending change.
    fn schedule(&self, topics: Vec<String>) {
        let Some(window) = self.config.coalesce else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for topic in topics {
            // Only the change that opened the window schedules a send.
            let first = self
                .lock()
                .changes
                .get(&topic)
                .is_some_and(|changes| changes.len() == 1);
            if !first {
                continue;
            }
            let state = Arc::clone(&self.state);
            let pubsub = Arc::clone(&self.pubsub);
            runtime.spawn(async move {
                tokio::time::sleep(window).await;
                send(&state, pubsub.as_ref(), &topic);
            });
        }
    }

    fn send(&self, topic: &str) -> bool {
        send(&self.state, self.pubsub.as_ref(), topic)
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends `topic`'s gathered changes as one diff; whether there were any.
fn send(state: &Mutex<State>, pubsub: &dyn PubSub, topic: &str) -> bool {
    let Some(changes) = lock(state).changes.remove(topic) else {
        return false;
    };
    let mut diff = PresenceDiff {
        topic: topic.to_owned(),
        ..PresenceDiff::default()
    };
    for (key, change) in changes {
        match change {
            Some(meta) => {
                diff.joins.insert(key, meta);
            }
            None => diff.leaves.push(key),
        }
    }
    pubsub.publish(topic, Message::new(diff));
    true
}
