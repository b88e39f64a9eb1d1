//! Presence: a tab counts from its first stream connection (a page load alone is nobody),
//! stays while its session lives, leaves when it ends; a burst of changes is one diff per
//! subscriber.

use std::sync::Mutex;
use std::time::Duration;

use dstar::presence::{PresenceConfig, PresenceDiff};
use dstar::session::SessionConfig;
use dstar::{App, Ctx, Html, Message, Mount, View};
use dstar_tests::{SseStream, TestServer, token_after};

const WAIT: Duration = Duration::from_secs(5);

/// Every diff each page's `info` got.
static DIFFS: Mutex<Vec<PresenceDiff>> = Mutex::new(Vec::new());

struct Room;

#[dstar::page("/room/{name}", live)]
impl Room {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        let name = mount.param("name").unwrap_or("?").to_owned();
        mount.track("room", &name, &serde_json::json!({ "name": name }))?;
        Ok(Room)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from("<p>room</p>"))
    }

    async fn info(&mut self, cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
        cx.skip_render();
        if let Some(diff) = message.get::<PresenceDiff>() {
            DIFFS.lock().unwrap().push(diff.clone());
        }
        Ok(())
    }
}

async fn serve() -> (App, TestServer) {
    let app = App::builder()
        .secret_key(b"presence tests (a test key of 32+ bytes)")
        // Diffs go out when the test says: what is in one diff does not depend on timing.
        .presence(PresenceConfig { coalesce: None })
        .sessions(SessionConfig {
            reconnect_grace: Duration::from_millis(50),
            ..SessionConfig::default()
        })
        .build()
        .unwrap();
    let server = TestServer::start(dstar::router![Room].into_router(app.clone())).await;
    (app, server)
}

async fn load(server: &TestServer, name: &str) -> String {
    let page = server.get(&format!("/room/{name}"), &[]).await;
    assert_eq!(page.status, 200);
    token_after(page.text(), "_dstarStream")
}

async fn connect(server: &TestServer, token: &str) -> SseStream {
    server
        .open_sse(
            "POST",
            "/__dstar/stream",
            &[("x-dstar-token", token)],
            Some(b"{}"),
        )
        .await
        .unwrap()
}

fn keys(app: &App) -> Vec<String> {
    app.presence()
        .list("room")
        .into_iter()
        .map(|present| format!("{}x{}", present.key, present.tabs))
        .collect()
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn presence_counts_connected_tabs_and_coalesces_changes() {
    let (app, server) = serve().await;

    // Page loads alone (a crawler) are nobody.
    let ann = load(&server, "ann").await;
    let bob = load(&server, "bob").await;
    let bob_again = load(&server, "bob").await;
    let _crawler = load(&server, "crawler").await;
    assert_eq!(app.presence().count("room"), 0);
    assert_eq!(app.presence().flush(), 0, "nothing to say");

    // Connected, they are there: bob from two tabs, one key.
    let ann_stream = connect(&server, &ann).await;
    let bob_stream = connect(&server, &bob).await;
    let bob_again_stream = connect(&server, &bob_again).await;
    wait_until("three tabs present", || keys(&app) == ["annx1", "bobx2"]).await;

    // A burst of joins is one diff, reaching each of the four subscribed sessions once.
    assert_eq!(app.presence().flush(), 1);
    wait_until("each session got the diff", || {
        DIFFS.lock().unwrap().len() == 4
    })
    .await;
    for diff in DIFFS.lock().unwrap().drain(..) {
        assert_eq!(diff.joins.keys().collect::<Vec<_>>(), ["ann", "bob"]);
        assert_eq!(diff.joins["ann"], serde_json::json!({ "name": "ann" }));
        assert!(diff.leaves.is_empty());
    }

    // One of bob's tabs goes: bob stays. Ann goes: she leaves.
    drop(bob_again_stream);
    drop(ann_stream);
    wait_until("ann's and a bob tab's sessions end", || {
        keys(&app) == ["bobx1"]
    })
    .await;
    assert_eq!(app.presence().flush(), 1);
    wait_until("the leave reached the remaining sessions", || {
        !DIFFS.lock().unwrap().is_empty()
    })
    .await;
    let diff = DIFFS.lock().unwrap()[0].clone();
    assert_eq!(diff.leaves, ["ann"]);
    assert!(diff.joins.is_empty());
    drop(bob_stream);
}
