//! The forms example over real HTTP: field errors, a wrong type as a field's error, a clash
//! found on the server, and the redirect with its flash.

use dstar_tests::{TestServer, token_after};

async fn start() -> (TestServer, String) {
    let app = example_forms::app(
        dstar::App::builder().secret_key(b"forms tests (a test key of 32+ bytes)"),
    );
    let server = TestServer::start(example_forms::router(&app)).await;
    let page = server.get("/items/new", &[]).await;
    assert_eq!(page.status, 200);
    assert!(
        !page.text().contains("field-error"),
        "no errors before a try"
    );
    let token = token_after(page.text(), "x-dstar-token");
    (server, token)
}

async fn send(server: &TestServer, token: &str, event: &str, json: &str) -> dstar_tests::Response {
    server
        .post(
            "/items/new",
            &[
                ("x-dstar-token", token),
                ("x-dstar-event", event),
                ("content-type", "application/json"),
            ],
            json,
        )
        .await
}

#[tokio::test]
async fn errors_show_next_to_their_fields() {
    let (server, token) = start().await;
    let answer = send(
        &server,
        &token,
        "save",
        r#"{"name": "", "quantity": "abc"}"#,
    )
    .await;
    assert_eq!(
        answer.status, 200,
        "a wrong type is the field's error, not a 422"
    );
    let text = answer.text();
    assert!(
        text.contains(
            r#"<p class="field-error" id="quantity-error" role="alert">must be a whole number</p>"#
        ),
        "{text}"
    );
    let answer = send(&server, &token, "save", r#"{"name": "", "quantity": "0"}"#).await;
    let text = answer.text();
    assert!(
        text.contains(r#"id="name-error" role="alert">is required</p>"#),
        "{text}"
    );
    assert!(text.contains("must be between 1 and 1000"), "{text}");
}

#[tokio::test]
async fn saving_redirects_with_a_flash_and_a_clash_is_the_names_error() {
    let (server, token) = start().await;
    let saved = send(
        &server,
        &token,
        "save",
        r#"{"name": "Pens", "quantity": "12"}"#,
    )
    .await;
    assert_eq!(saved.status, 200);
    assert!(saved.text().contains("/items"), "{}", saved.text());
    let flash = saved
        .headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("dstar_flash="))
        .map(|(_, v)| v.split(';').next().unwrap().to_owned())
        .expect("a flash for the next page");
    let list = server.get("/items", &[("cookie", &flash)]).await;
    let text = list.text();
    assert!(text.contains("<li>12 × Pens</li>"), "{text}");
    assert!(text.contains("Added 12 × Pens."), "{text}");

    // The same name again: found only on the server, shown like any field error, while
    // typing and on save.
    let typing = send(
        &server,
        &token,
        "check",
        r#"{"name": "pens", "quantity": ""}"#,
    )
    .await;
    assert!(
        typing.text().contains("is already taken"),
        "{}",
        typing.text()
    );
    assert!(
        !typing.text().contains(r#"id="quantity-error""#),
        "typing the name shows only the name's error"
    );
    let again = send(
        &server,
        &token,
        "save",
        r#"{"name": "pens", "quantity": 1}"#,
    )
    .await;
    assert!(
        again.text().contains("is already taken"),
        "{}",
        again.text()
    );
}
