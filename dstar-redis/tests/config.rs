//! What `connect` refuses, with no Redis needed: these run everywhere.

use dstar_redis::RedisPubSub;

#[derive(serde::Serialize, serde::Deserialize)]
struct Note {
    text: String,
}

/// A port nothing listens on (free a moment ago).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port()
}

#[tokio::test]
async fn no_redis_is_an_error_at_start() {
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let err = RedisPubSub::connect(&url, "app").await.unwrap_err();
    assert!(
        err.to_string().starts_with("cannot connect to Redis: "),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn bad_settings_are_refused_before_connecting() {
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let err = RedisPubSub::connect("http://example", "app")
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("the Redis URL is not valid: "),
        "{err}"
    );

    let err = RedisPubSub::connect(&url, "").await.unwrap_err();
    assert_eq!(err.to_string(), "the namespace is empty");

    let err = RedisPubSub::builder(&url, "app")
        .message::<Note>("note")
        .message::<Note>("note-again")
        .message::<String>("note")
        .connect()
        .await
        .unwrap_err();
    let problems: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
    assert_eq!(problems.len(), 2, "{err}");
    assert!(
        problems[0].ends_with("Note` is registered twice, as `note` and as `note-again`"),
        "{err}"
    );
    assert!(
        problems[1].starts_with("`note` names both `") && problems[1].ends_with("String`"),
        "{err}"
    );
}
