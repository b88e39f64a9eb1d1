//! The chat room driven in-process with `dstar::test`: two tabs talking.

use dstar::test::TestClient;
use serde_json::json;

fn client() -> TestClient {
    client_and_app().0
}

/// The client and its app, whose presence sends its diffs only when told (so what "online"
/// shows does not depend on timing).
fn client_and_app() -> (TestClient, dstar::App) {
    let app = example_chat::app(
        dstar::App::builder()
            .secret_key(b"chat tests (a test key of 32+ bytes)")
            .presence(dstar::presence::PresenceConfig { coalesce: None }),
    );
    (TestClient::new(example_chat::router(&app)), app)
}

#[tokio::test]
async fn a_message_from_one_tab_appears_in_every_tab() {
    let (client, app) = client_and_app();
    let mut alice = client.get("/").await.unwrap();
    alice.assert_url("/chat");
    assert!(alice.is_live());
    let mut bob = client.get("/chat").await.unwrap();
    // Both streams connected: two online, told to each tab in one diff.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.presence().count(example_chat::TOPIC) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "both tabs become present"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(app.presence().flush(), 1);
    alice.settle().await.unwrap();
    bob.settle().await.unwrap();
    alice.assert_text("#online", "2 online");
    bob.assert_text("#online", "2 online");
    bob.assert_text("#messages", "No messages yet.");

    alice
        .event(
            "send",
            json!({ "name": "Alice", "message": "  hello <b>Bob</b> " }),
        )
        .await
        .unwrap();
    alice.assert_signal("message", "");
    alice.assert_count("#messages li", 1);
    bob.settle().await.unwrap();
    bob.assert_text("#messages li", "Alice: hello <b>Bob</b>");
    assert!(
        bob.html().contains("hello &lt;b&gt;Bob&lt;"),
        "messages are escaped"
    );

    bob.event("send", json!({ "name": "", "message": "hi" }))
        .await
        .unwrap();
    alice.settle().await.unwrap();
    assert_eq!(
        alice.texts("#messages li"),
        ["Alice: hello <b>Bob</b>", "anonymous: hi"]
    );
}

#[tokio::test]
async fn empty_and_oversized_messages_are_refused() {
    let client = client();
    let mut tab = client.get("/chat").await.unwrap();
    let empty = tab
        .event("send", json!({ "name": "A", "message": "   " }))
        .await
        .unwrap_err();
    assert_eq!(
        empty.status(),
        Some(dstar::http::StatusCode::UNPROCESSABLE_ENTITY)
    );
    let long = tab
        .event("send", json!({ "name": "A", "message": "x".repeat(501) }))
        .await
        .unwrap_err();
    assert_eq!(
        long.status(),
        Some(dstar::http::StatusCode::UNPROCESSABLE_ENTITY)
    );
    let wrong = tab
        .event("send", json!({ "name": 5, "message": "hi" }))
        .await
        .unwrap_err();
    assert_eq!(
        wrong.status(),
        Some(dstar::http::StatusCode::UNPROCESSABLE_ENTITY)
    );
    tab.assert_text("#messages", "No messages yet.");
    tab.event("send", json!({ "name": "A", "message": "still here" }))
        .await
        .unwrap();
    tab.assert_text("#messages li", "A: still here");
}
