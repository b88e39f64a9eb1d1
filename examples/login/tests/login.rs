//! The login example over real HTTP: signing in sets a private cookie, the account page needs
//! it, and logging out ends every tab of that user.

use std::time::Duration;

use dstar_tests::{TestServer, token_after};

const WAIT: Duration = Duration::from_secs(5);

async fn start() -> (dstar::App, TestServer) {
    let app = example_login::app(
        dstar::App::builder().secret_key(b"login tests (a test key of 32+ bytes)"),
    );
    let server = TestServer::start(example_login::router(&app)).await;
    (app, server)
}

/// Signs `name` in through the login page's event; the cookie it set, as a browser sends it.
async fn sign_in(server: &TestServer, name: &str) -> dstar_tests::Response {
    let page = server.get("/login", &[]).await;
    assert_eq!(page.status, 200);
    let token = token_after(page.text(), "x-dstar-token");
    server
        .post(
            "/login",
            &[
                ("x-dstar-token", token.as_str()),
                ("x-dstar-event", "sign_in"),
                ("content-type", "application/json"),
            ],
            format!(r#"{{"name": "{name}"}}"#),
        )
        .await
}

fn cookie(response: &dstar_tests::Response) -> String {
    let line = response.header("set-cookie").expect("a cookie");
    line.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn signing_in_sets_a_private_cookie_the_account_page_needs() {
    let (_app, server) = start().await;
    let anonymous = server.get("/account", &[]).await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.header("location"), Some("/login"));

    let refused = sign_in(&server, "no spaces").await;
    assert_eq!(refused.status, 200);
    assert!(refused.header("set-cookie").is_none());
    assert!(
        refused.text().contains("1 to 40 letters"),
        "{}",
        refused.text()
    );

    let signed_in = sign_in(&server, "alice").await;
    assert_eq!(signed_in.status, 200);
    let alice = cookie(&signed_in);
    assert!(
        alice.starts_with("user=") && !alice.contains("alice"),
        "{alice}"
    );
    assert!(
        signed_in.text().contains("/account"),
        "{}",
        signed_in.text()
    );
    let account = server.get("/account", &[("cookie", &alice)]).await;
    assert_eq!(account.status, 200);
    assert!(account.text().contains(r#"<span id="user">alice</span>"#));
}

#[tokio::test]
async fn logging_out_ends_every_tab_of_the_user() {
    let (app, server) = start().await;
    let alice = cookie(&sign_in(&server, "alice").await);
    let mut streams = Vec::new();
    let mut event_token = String::new();
    for _ in 0..2 {
        let page = server.get("/account", &[("cookie", &alice)]).await;
        let html = page.text();
        event_token = token_after(html, "_dstarToken");
        let stream_token = token_after(html, "_dstarStream");
        let stream = server
            .open_sse(
                "POST",
                "/__dstar/stream",
                &[("x-dstar-token", stream_token.as_str()), ("cookie", &alice)],
                Some(b"{}"),
            )
            .await
            .unwrap();
        streams.push(stream);
    }
    assert_eq!(app.sessions().len(), 2);
    let logout = server
        .post(
            "/__dstar/event",
            &[
                ("x-dstar-token", event_token.as_str()),
                ("x-dstar-event", "logout"),
                ("cookie", &alice),
            ],
            "{}",
        )
        .await;
    assert_eq!(logout.status, 204, "{}", logout.text());
    assert!(logout.header("set-cookie").unwrap().contains("Max-Age=0"));
    for stream in &mut streams {
        let mut last = String::new();
        while let Some(event) = stream.next_event(WAIT).await.unwrap() {
            last = event.value("elements").unwrap_or_default();
        }
        assert!(last.contains("/login"), "{last}");
    }
}
