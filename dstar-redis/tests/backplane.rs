//! Two nodes (two apps, each on its own `RedisPubSub`) in one process, one real Redis, live
//! tabs on each over HTTP: what crosses, what does not, exactly once, and the resync a gap in
//! a node's numbering causes.
//!
//! "Exactly once" is checked with a marker sent after the thing counted, through Redis, by the
//! other node: Redis hands a subscriber the frames in the order it received them, so once the
//! marker is on a tab, any second copy of what came before it would be there too.

mod support;

use dstar::Message;
use dstar_redis::RedisPubSub;
use support::{Node, RedisServer, Tab, backplane, events_frame, message_frame, note_events};

#[tokio::test]
async fn a_message_reaches_every_other_tab_of_every_node_once() {
    let Some(redis) = RedisServer::start_if_asked("message_once").await else {
        return;
    };
    let (a, b) = (
        Node::start(backplane(&redis, "once")).await,
        Node::start(backplane(&redis, "once")).await,
    );
    assert_ne!(a.backplane.node_id(), b.backplane.node_id());
    let (mut a1, mut a2) = (Tab::open(&a, "a1").await, Tab::open(&a, "a2").await);
    let (mut b1, mut b2) = (Tab::open(&b, "b1").await, Tab::open(&b, "b2").await);

    // `publish_others` from a1: its own tab is skipped, on its node and on the other.
    a1.say(&a, "hello").await;
    a2.wait_for_note("hello").await;
    b1.wait_for_note("hello").await;
    b2.wait_for_note("hello").await;

    // Markers through Redis in both directions: from b1 to node A, then from a2 back to B.
    b1.say(&b, "from-b").await;
    a1.wait_for_note("from-b").await;
    a2.wait_for_note("from-b").await;
    b2.wait_for_note("from-b").await;
    a2.say(&a, "from-a").await;
    b1.wait_for_note("from-a").await;
    b2.wait_for_note("from-a").await;
    a1.wait_for_note("from-a").await;

    // Node A did not deliver its own message again when Redis handed it back, and B did not
    // deliver b1's to b1.
    assert_eq!((a1.notes("hello"), a2.notes("hello")), (0, 1));
    assert_eq!((b1.notes("hello"), b2.notes("hello")), (1, 1));
    assert_eq!((a1.notes("from-b"), a2.notes("from-b")), (1, 1));
    assert_eq!((b1.notes("from-b"), b2.notes("from-b")), (0, 1));
    assert_eq!((a1.notes("from-a"), b1.notes("from-a")), (1, 1));
    for tab in [&a1, &a2, &b1, &b2] {
        assert_eq!(
            tab.full_renders(),
            0,
            "{}: no resync without a loss",
            tab.name
        );
    }

    // `publish` returns the sessions of its own node it reached.
    assert_eq!(
        a.app
            .pubsub()
            .publish("board", Message::new(support::Note { text: "all".into() })),
        2
    );
    for tab in [&mut a1, &mut a2, &mut b1, &mut b2] {
        tab.wait_for_note("all").await;
    }
}

#[tokio::test]
async fn an_unregistered_payload_stays_on_its_node() {
    let Some(redis) = RedisServer::start_if_asked("unregistered").await else {
        return;
    };
    let (a, b) = (
        Node::start(backplane(&redis, "local")).await,
        Node::start(backplane(&redis, "local")).await,
    );
    let mut a1 = Tab::open(&a, "a1").await;
    let mut b1 = Tab::open(&b, "b1").await;

    assert_eq!(
        a.app
            .pubsub()
            .publish("board", Message::new(String::from("here"))),
        1
    );
    a1.wait_for_note("local:here").await;
    // A later note from A through Redis: had the string crossed, it would be before it.
    a1.say(&a, "after").await;
    b1.wait_for_note("after").await;
    assert_eq!(b1.notes("local:here"), 0);
}

#[tokio::test]
async fn broadcast_bytes_cross_unchanged() {
    let Some(redis) = RedisServer::start_if_asked("broadcast").await else {
        return;
    };
    // No message types registered: broadcasts need none.
    let (a, b) = (
        Node::start(RedisPubSub::builder(redis.url(), "cast")).await,
        Node::start(RedisPubSub::builder(redis.url(), "cast")).await,
    );
    let mut a1 = Tab::open(&a, "a1").await;
    let (mut b1, mut b2) = (Tab::open(&b, "b1").await, Tab::open(&b, "b2").await);

    assert_eq!(a.app.pubsub().broadcast("board", note_events("cast")), 1);
    b1.wait_for_note("cast").await;
    b2.wait_for_note("cast").await;
    a1.wait_for_note("cast").await;
    assert_eq!(b.app.pubsub().broadcast("board", note_events("back")), 2);
    a1.wait_for_note("back").await;
    b1.wait_for_note("back").await;
    assert_eq!(
        (a1.notes("cast"), b1.notes("cast"), b2.notes("cast")),
        (1, 1, 1)
    );
    // Nothing goes to a topic nobody on the node subscribed to.
    assert_eq!(a.app.pubsub().broadcast("elsewhere", note_events("x")), 0);
}

#[tokio::test]
async fn a_gap_in_a_nodes_numbering_resyncs_each_subscribed_tab_once() {
    let Some(redis) = RedisServer::start_if_asked("gap").await else {
        return;
    };
    let (a, b) = (
        Node::start(backplane(&redis, "gap")).await,
        Node::start(backplane(&redis, "gap")).await,
    );
    let channel = b.backplane.channel().to_owned();
    assert_eq!(channel, "dstar:gap");
    let mut a1 = Tab::open(&a, "a1").await;
    let mut b1 = Tab::open(&b, "b1").await;

    // A third node, written by hand: frames 1 and 2 arrive, 3 and 4 are lost, 5 arrives.
    let origin = u64::MAX;
    redis
        .publish_raw(
            &channel,
            &events_frame(origin, 1, "board", &note_events("one")),
        )
        .await;
    redis
        .publish_raw(
            &channel,
            &message_frame(origin, 2, "board", "note", r#"{"text":"two"}"#),
        )
        .await;
    redis
        .publish_raw(
            &channel,
            &events_frame(origin, 5, "board", &note_events("five")),
        )
        .await;
    for tab in [&mut a1, &mut b1] {
        tab.wait_for_note("two").await;
        tab.wait_for_note("five").await;
        // Delivered, then one full render for what was lost.
        tab.wait_for_full_render().await;
        assert_eq!(tab.notes("one"), 1);
    }

    // A repeated number is dropped; what follows the gap is in order again: no more renders.
    redis
        .publish_raw(
            &channel,
            &events_frame(origin, 5, "board", &note_events("again")),
        )
        .await;
    // Junk on the channel is dropped too, and the node keeps reading.
    redis.publish_raw(&channel, b"\x01\x01junk").await;
    redis.publish_raw(&channel, &[9, 9, 9]).await;
    redis
        .publish_raw(
            &channel,
            &events_frame(origin, 6, "board", &note_events("six")),
        )
        .await;
    for tab in [&mut a1, &mut b1] {
        tab.wait_for_note("six").await;
        assert_eq!(tab.notes("again"), 0, "{}", tab.name);
        assert_eq!(tab.full_renders(), 1, "{}", tab.name);
    }

    // The nodes' own traffic is unaffected.
    a1.say(&a, "still").await;
    b1.wait_for_note("still").await;
    assert_eq!(b1.full_renders(), 1);
}
