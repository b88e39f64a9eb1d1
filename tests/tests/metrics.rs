//! The metrics dstar records, read back from `metrics-util`'s debugging recorder installed as
//! the global recorder: sessions, streams, events by page and outcome, event latency, stream
//! overflows, reconnects, replays and PubSub publishes.
//!
//! One test function: a global recorder can be installed once per process, and every step
//! below reads the counters as deltas.

use std::collections::HashMap;

use dstar::session::SessionConfig;
use dstar::test::TestClient;
use dstar::{App, Ctx, Error, Event, Html, Message, Mount, Page, Route, View};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

struct Room {
    n: u64,
}

/// A live page subscribed to `feed`: every message re-renders it.
struct Feed {
    n: u64,
}

impl Page for Feed {
    const ROUTE: Route = Route::new("Feed", "/feed", file!(), line!()).live();

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        mount.subscribe("feed");
        Ok(Feed { n: 0 })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!("<p id=\"n\">{}</p>", self.n)))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }

    async fn info(&mut self, _cx: &mut Ctx<'_>, _message: Message) -> dstar::Result<()> {
        self.n += 1;
        Ok(())
    }
}

impl Page for Room {
    const ROUTE: Route = Route::new("Room", "/room", file!(), line!())
        .live()
        .events(&["bump", "refuse", "fail"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Room { n: 0 })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!("<p id=\"n\">{}</p>", self.n)))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "bump" => {
                self.n += 1;
                Ok(())
            }
            "refuse" => Err(Error::unprocessable("no")),
            _ => Err(Error::internal("broken")),
        }
    }
}

struct Stateless;

impl Page for Stateless {
    const ROUTE: Route = Route::new("Stateless", "/", file!(), line!()).events(&["ping"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Stateless)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            "<button data-on:click=\"{{ event('ping') }}\">ping</button>",
            (),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, _event: Event<'_>) -> dstar::Result<()> {
        cx.patch_signals(&serde_json::json!({ "pong": true }))
    }
}

/// What the recorder holds, added to `totals`: every metric as `name{label=value,...}` → its
/// value (counters and gauges as `f64`, histograms as their number of samples). The
/// debugging recorder hands out what changed since the last snapshot, so the totals add up.
fn read(snapshotter: &Snapshotter, totals: &mut HashMap<String, f64>) -> HashMap<String, f64> {
    let fresh: Vec<(String, f64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let mut labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let name = format!("{}{{{}}}", key.key().name(), labels.join(","));
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(samples) => samples.len() as f64,
            };
            (name, value)
        })
        .collect();
    for (name, value) in fresh {
        *totals.entry(name).or_default() += value;
    }
    totals.clone()
}

fn get(metrics: &HashMap<String, f64>, name: &str) -> f64 {
    metrics.get(name).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn dstar_records_its_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");
    let mut totals = HashMap::new();

    let app = App::builder()
        .secret_key(b"metrics tests (a test key of 32+ bytes)")
        .sessions(SessionConfig {
            stream_queue: 1,
            replay_events: 2,
            ..SessionConfig::default()
        })
        .build()
        .unwrap();
    let router: axum::Router = dstar::router![Room, Feed, Stateless].into_router(app.clone());
    let client = TestClient::new(router.clone());

    // Events by page and outcome, and their latency.
    let mut tab = client.get("/room").await.unwrap();
    tab.click("bump").await.unwrap();
    assert!(tab.click("refuse").await.is_err());
    assert!(tab.click("fail").await.is_err());
    let mut stateless = client.get("/").await.unwrap();
    stateless.click("ping").await.unwrap();
    let m = read(&snapshotter, &mut totals);
    assert_eq!(get(&m, "dstar_events_total{outcome=ok,page=Room}"), 1.0);
    assert_eq!(
        get(&m, "dstar_events_total{outcome=refused,page=Room}"),
        1.0
    );
    assert_eq!(get(&m, "dstar_events_total{outcome=failed,page=Room}"), 1.0);
    assert_eq!(
        get(&m, "dstar_events_total{outcome=ok,page=Stateless}"),
        1.0
    );
    assert_eq!(get(&m, "dstar_event_duration_seconds{page=Room}"), 3.0);
    assert_eq!(get(&m, "dstar_event_duration_seconds{page=Stateless}"), 1.0);
    assert_eq!(get(&m, "dstar_live_sessions{}"), 1.0);
    assert_eq!(get(&m, "dstar_open_streams{}"), 1.0);

    // A Feed session driven by hand, in process: a stream response that is never read keeps
    // its queue full (capacity 1), so the second message overflows it; reconnects come with
    // `Last-Event-ID`. Each step ends with an event through the session's mailbox, answered
    // after everything queued before it (the wait is deterministic).
    let page = client.send(page_request("/feed")).await.unwrap();
    let html = text(page).await;
    let stream_token = dstar_tests::token_after(&html, "_dstarStream");
    let event_token = dstar_tests::token_after(&html, "_dstarToken");
    let stream = |last: Option<u64>| {
        let mut request =
            axum::http::Request::post("/__dstar/stream").header("x-dstar-token", &stream_token);
        if let Some(last) = last {
            request = request.header("last-event-id", last.to_string());
        }
        request.body(axum::body::Body::from("{}")).unwrap()
    };
    let sync = || {
        axum::http::Request::post("/__dstar/event")
            .header("x-dstar-token", &event_token)
            .header("x-dstar-event", "sync")
            .body(axum::body::Body::from("{}"))
            .unwrap()
    };
    let publish = |n: usize| {
        for _ in 0..n {
            assert_eq!(app.pubsub().publish("feed", Message::new(())), 1);
        }
    };

    let first = client.send(stream(None)).await.unwrap();
    publish(2); // ids 1 and 2: the second overflows; a full render (id 3) replaces them
    client.send(sync()).await.unwrap();
    let m = read(&snapshotter, &mut totals);
    assert_eq!(get(&m, "dstar_stream_overflows_total{}"), 1.0);
    assert_eq!(get(&m, "dstar_live_sessions{}"), 2.0);
    assert_eq!(get(&m, "dstar_open_streams{}"), 2.0);
    assert_eq!(get(&m, "dstar_pubsub_published_total{kind=message}"), 2.0);
    assert_eq!(get(&m, "dstar_pubsub_delivered_total{kind=message}"), 2.0);

    drop(first);
    publish(1); // id 4, kept in the ring (it holds 3 and 4)
    let second = client.send(stream(Some(3))).await.unwrap();
    client.send(sync()).await.unwrap();
    let m = read(&snapshotter, &mut totals);
    assert_eq!(get(&m, "dstar_reconnects_total{}"), 1.0);
    assert_eq!(get(&m, "dstar_replays_total{kind=exact}"), 1.0);
    assert_eq!(get(&m, "dstar_open_streams{}"), 2.0);

    drop(second);
    publish(2); // ids 5 and 6: the ring no longer has 4
    let third = client.send(stream(Some(3))).await.unwrap();
    client.send(sync()).await.unwrap();
    let m = read(&snapshotter, &mut totals);
    assert_eq!(get(&m, "dstar_reconnects_total{}"), 2.0);
    assert_eq!(get(&m, "dstar_replays_total{kind=full}"), 1.0);
    drop(third);
}

fn page_request(path: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap()
}

async fn text(response: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}
