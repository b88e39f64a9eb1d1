//! The showcase driven in-process with `dstar::test`: soft navigation, state kept in app
//! state, the todo list and its URL filter.

use dstar::test::TestClient;
use serde_json::json;

fn client() -> TestClient {
    let app = example_showcase::app(
        dstar::App::builder().secret_key(b"showcase tests (a test key of 32+ bytes)"),
    );
    TestClient::new(example_showcase::router(&app))
}

#[tokio::test]
async fn soft_navigation_swaps_pages_and_keeps_app_state() {
    let client = client();
    let mut tab = client.get("/").await.unwrap();
    assert_eq!(tab.title(), "dstar showcase");
    tab.click_on("#nav a[href=\"/counter\"]").await.unwrap();
    tab.assert_url("/counter");
    assert_eq!(tab.title(), "Counter");
    tab.click("increment").await.unwrap();
    tab.click("increment").await.unwrap();
    tab.assert_text("#count", "2");

    tab.navigate("/todos").await.unwrap();
    tab.assert_url("/todos");
    tab.back().await.unwrap();
    tab.assert_url("/counter");
    tab.assert_text("#count", "2");
}

#[tokio::test]
async fn todos_add_toggle_delete_and_filter() {
    let client = client();
    let mut tab = client.get("/todos").await.unwrap();
    tab.event("add", json!({ "title": "Write tests" }))
        .await
        .unwrap();
    tab.event("add", json!({ "title": "Ship it" }))
        .await
        .unwrap();
    tab.assert_signal("title", "");
    tab.assert_count("#todos li.active", 2);
    tab.assert_text("#left", "2 left");

    tab.event("toggle", json!({ "id": 1 })).await.unwrap();
    tab.assert_count("#todos li.done", 1);
    tab.assert_text("#left", "1 left");

    tab.event("filter", json!({ "filter": "done" }))
        .await
        .unwrap();
    tab.assert_url("/todos?filter=done");
    assert_eq!(tab.texts("#todos .title"), ["Write tests"]);
    tab.reload().await.unwrap();
    assert_eq!(
        tab.texts("#todos .title"),
        ["Write tests"],
        "the filter survives a reload"
    );

    tab.event("filter", json!({ "filter": "all" }))
        .await
        .unwrap();
    tab.event("delete", json!({ "id": 2 })).await.unwrap();
    assert_eq!(tab.texts("#todos .title"), ["Write tests"]);

    let missing = tab.event("toggle", json!({ "id": 99 })).await.unwrap_err();
    assert_eq!(missing.status(), Some(dstar::http::StatusCode::NOT_FOUND));
    let empty = tab.event("add", json!({ "title": " " })).await.unwrap_err();
    assert_eq!(
        empty.status(),
        Some(dstar::http::StatusCode::UNPROCESSABLE_ENTITY)
    );
}

#[tokio::test]
async fn a_second_tab_sees_todo_changes() {
    let client = client();
    let mut first = client.get("/todos").await.unwrap();
    let mut second = client.get("/todos?filter=active").await.unwrap();
    first
        .event("add", json!({ "title": "Shared" }))
        .await
        .unwrap();
    second.settle().await.unwrap();
    assert_eq!(second.texts("#todos .title"), ["Shared"]);
}
