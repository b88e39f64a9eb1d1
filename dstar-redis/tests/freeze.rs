//! Redis frozen (`SIGSTOP`) under two nodes: its sockets stay open and nothing closes them, so
//! only the backplane's ping can tell. Each node notices, keeps local traffic going, and when
//! Redis is thawed reconnects and resyncs its tabs once.

mod support;

use support::{Node, RedisServer, Tab, backplane};

#[tokio::test]
async fn a_hung_redis_is_noticed_by_the_ping_and_repaired_after() {
    let Some(redis) = RedisServer::start_if_asked("freeze").await else {
        return;
    };
    let (a, b) = (
        Node::start(backplane(&redis, "freeze")).await,
        Node::start(backplane(&redis, "freeze")).await,
    );
    let (mut a1, mut a2) = (Tab::open(&a, "a1").await, Tab::open(&a, "a2").await);
    let mut b1 = Tab::open(&b, "b1").await;
    a1.say(&a, "before").await;
    b1.wait_for_note("before").await;

    redis.signal("-STOP");
    a.wait_connected(false).await;
    b.wait_connected(false).await;
    a1.say(&a, "frozen").await;
    a2.wait_for_note("frozen").await;

    redis.signal("-CONT");
    a.wait_connected(true).await;
    b.wait_connected(true).await;
    for tab in [&mut a1, &mut a2, &mut b1] {
        tab.wait_for_full_render().await;
    }
    a1.say(&a, "thawed").await;
    b1.wait_for_note("thawed").await;
    b1.say(&b, "end").await;
    a1.wait_for_note("end").await;
    a2.wait_for_note("end").await;

    assert_eq!(b1.notes("frozen"), 0);
    for tab in [&a1, &a2, &b1] {
        assert_eq!(tab.full_renders(), 1, "{}: one resync", tab.name);
    }
}
