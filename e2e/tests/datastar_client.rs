//! Pins down how the genuine Datastar v1.0.2 client treats failures and page visibility, since
//! dstar's live sessions depend on it:
//!
//! - a non-2xx answer is not retried unless the action asks (`retry: 'error'`), and giving up
//!   after the retries throws an uncaught `FetchFailed`;
//! - a stream that breaks mid-way is retried by default, and every successful (200) open
//!   resets the retry count;
//! - an `@get` stream is closed while the page is hidden and reopened when it shows again,
//!   while an `@post` stream stays open.
#![cfg(feature = "browser")]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use dstar::response::Sse;
use dstar::sse::{Mode, Namespace, PatchElements};
use dstar_e2e::{Browser, Tab, TestServer, datastar_js_route, datastar_page, wait_for};
use http_body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

const PAGE: &str = r#"
<script>
  window.fetchEvents = [];
  document.addEventListener('datastar-fetch', (e) => window.fetchEvents.push(e.detail.type));
</script>
<button id="fail" data-on:click="@post('/fail')">fail</button>
<button id="fail-retry"
  data-on:click="@post('/fail', {retry: 'error', retryInterval: 10, retryMaxCount: 2})">fail, retry</button>
<button id="drop" data-on:click="@post('/drop', {retryInterval: 10, retryMaxCount: 2})">drop</button>
<button id="live-get" data-on:click="@get('/live')">live get</button>
<button id="live-post" data-on:click="@post('/live')">live post</button>
<button id="svg" data-on:click="@post('/svg')">svg</button>
<button id="vt" data-on:click="@post('/vt')">view transition</button>
<svg id="chart" width="20" height="20"></svg>
<div id="box"><span id="vt-out">-</span></div>
<div id="drop-out">-</div>
<div id="get-out">-</div>
<div id="post-out">-</div>
"#;

#[derive(Default)]
struct Counts {
    fail: AtomicUsize,
    drop: AtomicUsize,
    get_opened: AtomicUsize,
    get_closed: AtomicUsize,
    post_opened: AtomicUsize,
    post_closed: AtomicUsize,
}

impl Counts {
    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// A body that sends one event, then fails a little later (once the client has shown the
/// event), which makes hyper abort the connection.
struct BreakingBody {
    first: Option<Bytes>,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl BreakingBody {
    fn new(first: Bytes) -> Self {
        BreakingBody {
            first: Some(first),
            pause: Box::pin(tokio::time::sleep(Duration::from_millis(100))),
        }
    }
}

impl http_body::Body for BreakingBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(bytes) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        match self.pause.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::other("broken on purpose")))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// An endless stream that announces how many times it was opened, and counts its closing.
fn live(opened: &AtomicUsize, closed: Arc<Counts>, which: &'static str) -> Sse {
    let n = opened.fetch_add(1, Ordering::SeqCst) + 1;
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let html = format!("<div id=\"{which}-out\">{n}</div>");
    let _ = tx.try_send(PatchElements::new(&html).to_bytes());
    tokio::spawn(async move {
        tx.closed().await;
        let counter = match which {
            "get" => &closed.get_closed,
            _ => &closed.post_closed,
        };
        counter.fetch_add(1, Ordering::SeqCst);
    });
    Sse::stream(rx, None)
}

fn app(counts: Arc<Counts>) -> Router {
    let (c1, c2, c3, c4) = (
        counts.clone(),
        counts.clone(),
        counts.clone(),
        counts.clone(),
    );
    Router::new()
        .route("/", get(|| async { datastar_page(PAGE) }))
        .route(
            "/fail",
            post(move || async move {
                c1.fail.fetch_add(1, Ordering::SeqCst);
                (StatusCode::INTERNAL_SERVER_ERROR, "nope")
            }),
        )
        .route(
            "/drop",
            post(move || async move {
                // Three streams that open fine and then break, then a refusal.
                let n = c2.drop.fetch_add(1, Ordering::SeqCst) + 1;
                if n > 3 {
                    return (StatusCode::SERVICE_UNAVAILABLE, "gone").into_response();
                }
                let html = format!("<div id=\"drop-out\">{n}</div>");
                let body = BreakingBody::new(PatchElements::new(&html).to_bytes());
                (
                    [(header::CONTENT_TYPE, "text/event-stream")],
                    Body::new(body),
                )
                    .into_response()
            }),
        )
        .route(
            "/live",
            get(move || async move { live(&c3.get_opened, c3.clone(), "get") })
                .post(move || async move { live(&c4.post_opened, c4.clone(), "post") }),
        )
        .route(
            "/svg",
            post(|| async {
                Sse::once(
                    PatchElements::new(r#"<circle id="dot" cx="10" cy="10" r="5"/>"#)
                        .selector("#chart")
                        .mode(Mode::Inner)
                        .namespace(Namespace::Svg)
                        .to_bytes(),
                )
            }),
        )
        .route(
            "/vt",
            post(|| async {
                Sse::once(
                    PatchElements::new(r#"<span id="vt-out">done</span>"#)
                        .view_transition(true)
                        .view_transition_selector("#box")
                        .to_bytes(),
                )
            }),
        )
        .merge(datastar_js_route())
}

fn open(counts: &Arc<Counts>) -> (TestServer, Browser, Tab) {
    let server = TestServer::start(app(counts.clone()));
    let browser = Browser::start();
    let tab = browser.new_session();
    tab.goto(&server.url("/"));
    (server, browser, tab)
}

fn fetch_events(tab: &Tab) -> Vec<String> {
    let events = tab.eval("return window.fetchEvents");
    serde_json::from_value(events).unwrap()
}

fn wait_finished(tab: &Tab) {
    tab.wait_until("return window.fetchEvents.includes('finished')", WAIT);
}

#[test]
fn error_status_is_not_retried_by_default() {
    let counts = Arc::new(Counts::default());
    let (_server, _browser, tab) = open(&counts);
    tab.click("#fail");
    wait_finished(&tab);
    assert_eq!(fetch_events(&tab), ["started", "error", "finished"]);
    assert_eq!(Counts::get(&counts.fail), 1);
    let errors = tab.console_errors();
    assert!(
        errors.iter().any(|e| e.message.contains("status of 500")),
        "{errors:#?}"
    );
}

#[test]
fn error_status_is_retried_on_request() {
    let counts = Arc::new(Counts::default());
    let (_server, _browser, tab) = open(&counts);
    tab.click("#fail-retry");
    wait_finished(&tab);
    assert_eq!(
        fetch_events(&tab),
        [
            "started",
            "error",
            "retrying",
            "error",
            "retrying",
            "error",
            "retries-failed",
            "finished"
        ]
    );
    assert_eq!(Counts::get(&counts.fail), 3);
    // Giving up surfaces as an uncaught `FetchFailed` error in the console.
    wait_for("an uncaught FetchFailed", WAIT, || {
        tab.console_errors()
            .iter()
            .any(|e| e.message.contains("Uncaught Error: FetchFailed"))
    });
}

#[test]
fn broken_stream_is_retried_by_default_and_each_open_resets_the_count() {
    let counts = Arc::new(Counts::default());
    let (_server, _browser, tab) = open(&counts);
    tab.click("#drop");
    wait_finished(&tab);
    // `datastar-fetch` also carries every SSE event the client applies.
    // retryMaxCount is 2, yet three broken streams were retried: every stream that opens with
    // 200 resets the count. The refusal (503) on the fourth try ends it without a retry.
    assert_eq!(Counts::get(&counts.drop), 4);
    assert_eq!(tab.text("#drop-out"), "3");
    assert_eq!(
        fetch_events(&tab),
        [
            "started",
            "datastar-patch-elements",
            "retrying",
            "datastar-patch-elements",
            "retrying",
            "datastar-patch-elements",
            "retrying",
            "error",
            "finished",
        ]
    );
}

fn set_hidden(tab: &Tab, hidden: bool) {
    let script = "Object.defineProperty(document, 'hidden', \
                  { configurable: true, get: () => arguments[0] }); \
                  document.dispatchEvent(new Event('visibilitychange'));";
    tab.try_eval_with(script, &[json!(hidden)]).unwrap();
}

#[test]
fn get_stream_follows_visibility_but_post_does_not() {
    let counts = Arc::new(Counts::default());
    let (_server, _browser, tab) = open(&counts);
    tab.click("#live-get");
    tab.click("#live-post");
    tab.wait_for_text("#get-out", "1", WAIT);
    tab.wait_for_text("#post-out", "1", WAIT);

    set_hidden(&tab, true);
    wait_for("the @get stream to close", WAIT, || {
        Counts::get(&counts.get_closed) == 1
    });
    assert_eq!(
        Counts::get(&counts.get_opened),
        1,
        "no reopening while hidden"
    );

    set_hidden(&tab, false);
    tab.wait_for_text("#get-out", "2", WAIT);
    assert_eq!(Counts::get(&counts.post_opened), 1);
    assert_eq!(Counts::get(&counts.post_closed), 0);
    assert_eq!(
        tab.eval("return window.fetchEvents.filter((t) => t === 'finished').length"),
        Value::from(0),
        "both actions are still running"
    );
    tab.assert_no_console_errors();
}

#[test]
fn patch_elements_namespace_and_view_transition_selector_reach_the_client() {
    let counts = Arc::new(Counts::default());
    let (_server, _browser, tab) = open(&counts);

    tab.click("#svg");
    tab.wait_for_element("#chart circle#dot", WAIT);
    assert_eq!(
        tab.eval("return document.getElementById('dot').namespaceURI"),
        json!("http://www.w3.org/2000/svg")
    );

    // Record which element the client starts its view transition on.
    tab.eval(
        "window.vtOn = []; \
         for (const proto of [Element.prototype, Document.prototype]) { \
           const original = proto.startViewTransition; \
           if (!original) continue; \
           proto.startViewTransition = function (cb) { \
             window.vtOn.push(this.id || this.nodeName); return original.call(this, cb); }; \
         }",
    );
    let scoped = tab.eval("return 'startViewTransition' in document.getElementById('box')");
    tab.click("#vt");
    tab.wait_for_text("#vt-out", "done", WAIT);
    let expected = if scoped == true { "box" } else { "#document" };
    assert_eq!(tab.eval("return window.vtOn"), json!([expected]));
    tab.assert_no_console_errors();
}
