//! Redis killed and started again under two nodes with live tabs: local delivery goes on
//! during the outage, cross-node delivery comes back after it, every subscribed tab gets
//! exactly one resync render, and each node logs the outage once (a `WARN` when it starts, an
//! `INFO` when it ends), whatever was published meanwhile.
//!
//! Alone in its test binary: it installs a global tracing subscriber to count log lines.

mod support;

use std::sync::{Arc, Mutex};

use support::{Node, RedisServer, Tab, backplane};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// A log line of the backplane: its level, its `node` field and its message.
#[derive(Debug, Clone)]
struct Line {
    level: tracing::Level,
    node: Option<u64>,
    message: String,
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<Line>>>);

impl Lines {
    fn of(&self, level: tracing::Level, node: u64) -> Vec<Line> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.level == level && l.node == Some(node))
            .cloned()
            .collect()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Lines {
    fn on_event(&self, event: &tracing::Event<'_>, _cx: Context<'_, S>) {
        if !event.metadata().target().starts_with("dstar_redis") {
            return;
        }
        let mut line = Line {
            level: *event.metadata().level(),
            node: None,
            message: String::new(),
        };
        event.record(&mut line);
        self.0.lock().unwrap().push(line);
    }
}

impl Visit for Line {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "node" {
            self.node = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

#[tokio::test]
async fn an_outage_keeps_local_traffic_and_ends_in_one_resync_per_tab() {
    let Some(mut redis) = RedisServer::start_if_asked("outage").await else {
        return;
    };
    let lines = Lines::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(lines.clone()))
        .expect("the only subscriber of this test binary");

    let (a, b) = (
        Node::start(backplane(&redis, "outage")).await,
        Node::start(backplane(&redis, "outage")).await,
    );
    let (mut a1, mut a2) = (Tab::open(&a, "a1").await, Tab::open(&a, "a2").await);
    let mut b1 = Tab::open(&b, "b1").await;
    a1.say(&a, "before").await;
    b1.wait_for_note("before").await;

    redis.kill();
    a.wait_connected(false).await;
    b.wait_connected(false).await;

    // Local delivery goes on; the other node does not get it, now or later.
    a1.say(&a, "during").await;
    a2.wait_for_note("during").await;

    redis.restart().await;
    a.wait_connected(true).await;
    b.wait_connected(true).await;
    for tab in [&mut a1, &mut a2, &mut b1] {
        tab.wait_for_full_render().await;
    }

    // Cross-node delivery is back, both ways; the markers make the counts final.
    a1.say(&a, "after").await;
    b1.wait_for_note("after").await;
    a2.wait_for_note("after").await;
    b1.say(&b, "back").await;
    a1.wait_for_note("back").await;
    a2.wait_for_note("back").await;
    a2.say(&a, "end").await;
    b1.wait_for_note("end").await;

    assert_eq!(b1.notes("during"), 0);
    for tab in [&a1, &a2, &b1] {
        assert_eq!(tab.full_renders(), 1, "{}: one resync", tab.name);
    }
    for node in [&a, &b] {
        let id = node.backplane.node_id();
        let warnings = lines.of(tracing::Level::WARN, id);
        assert_eq!(warnings.len(), 1, "node {id}: {warnings:#?}");
        assert!(
            warnings[0].message.contains("lost the connection to Redis"),
            "{warnings:#?}"
        );
        let infos = lines.of(tracing::Level::INFO, id);
        assert_eq!(infos.len(), 1, "node {id}: {infos:#?}");
        assert!(
            infos[0].message.contains("reconnected to Redis"),
            "{infos:#?}"
        );
    }
}
