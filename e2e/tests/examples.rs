//! The example apps in a real browser, checked the way a person would: what the page shows
//! after clicking and typing, what the address bar says, and that the console stays clean.
//!
//! Each test builds its own app (so its state starts empty), serves it with the genuine
//! Datastar client at `/datastar.js`, and drives one Chromium per user.
#![cfg(feature = "browser")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use dstar::App;
use dstar::app::AppBuilder;
use dstar::security::{ContentSecurityPolicy, SecurityHeaders};
use dstar::session::SessionConfig;
use dstar_e2e::{Browser, Tab, TestServer, datastar_js_route, screenshot_dir, wait_for};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Upper bound for anything the page should show; a passing run waits far less.
const WAIT: Duration = Duration::from_secs(10);

/// An app builder whose pages load the Datastar client this crate serves, under the strict
/// Content-Security-Policy: a script the policy blocks (one without the page's nonce) is a
/// console error, which every test checks for.
fn builder() -> AppBuilder {
    App::builder()
        .client_url("/datastar.js")
        .security_headers(SecurityHeaders {
            content_security_policy: Some(ContentSecurityPolicy::strict()),
            ..SecurityHeaders::default()
        })
}

/// Serves `router` plus the Datastar client.
fn serve(router: Router) -> TestServer {
    TestServer::start(router.merge(datastar_js_route()))
}

/// Checks that nothing went to the console as an error, then saves a screenshot if asked.
#[track_caller]
fn finish(tab: &Tab, screenshot: Option<&str>) {
    tab.assert_no_console_errors();
    if let Some(name) = screenshot {
        tab.screenshot(screenshot_dir().join(name));
    }
}

/// A JavaScript literal for `value`.
fn js(value: &str) -> String {
    json!(value).to_string()
}

/// Waits until the form field `css` holds `expected`.
#[track_caller]
fn wait_for_value(tab: &Tab, css: &str, expected: &str) {
    tab.wait_until(
        &format!(
            "return document.querySelector({}).value === {}",
            js(css),
            js(expected)
        ),
        WAIT,
    );
}

/// Marks the current document, so that a later look can tell whether the page was reloaded.
fn mark_document(tab: &Tab, marker: i64) {
    tab.eval(&format!("window.__marker = {marker}"));
}

/// The marker of the current document (`null` after a reload).
fn marker(tab: &Tab) -> Value {
    tab.eval("return window.__marker ?? null")
}

// How long each browser test took, on the test's stderr, so a slow CI run shows where.
#[allow(clippy::print_stderr)]
fn log_timing(name: &str, started: Instant) {
    eprintln!("{name}: {:.1?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 1. The stateless counter.

#[test]
fn counter_counts_up_and_down() {
    let started = Instant::now();
    let app = example_counter::app(builder());
    let server = serve(example_counter::router(&app));
    let browser = Browser::start();
    let tab = browser.new_session();

    tab.goto(&server.url("/"));
    assert_eq!(tab.title(), "Counter");
    tab.wait_for_text("#count", "0", WAIT);

    // The count travels with each click, so each click waits for the previous answer, as
    // a person waits to see the number change.
    for expected in ["1", "2", "3"] {
        tab.click("#increment");
        tab.wait_for_text("#count", expected, WAIT);
    }
    tab.click("#decrement");
    tab.wait_for_text("#count", "2", WAIT);
    assert_eq!(tab.text("main h1"), "Counter");

    finish(&tab, Some("counter.png"));
    log_timing("counter", started);
}

// ---------------------------------------------------------------------------------------------
// 2. and 5. The chat between two people.

/// The chat lines a tab shows, as it shows them ("name: text").
fn chat_lines(tab: &Tab) -> Vec<String> {
    let lines = tab.eval(
        "return [...document.querySelectorAll('#messages li:not(.empty)')] \
         .map((li) => li.innerText.trim())",
    );
    serde_json::from_value(lines).expect("a list of strings")
}

/// Waits until `read` gives exactly `expected`; on timeout, fails showing what it gave last.
#[track_caller]
fn wait_for_list(tab: &Tab, read: fn(&Tab) -> Vec<String>, expected: &[&str]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let shown = read(tab);
        if shown == expected {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "waited {WAIT:?} at {} for {expected:?}; the page shows {shown:?}",
                tab.url()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the tab shows exactly these chat lines, in this order.
#[track_caller]
fn wait_for_chat_lines(tab: &Tab, expected: &[&str]) {
    wait_for_list(tab, chat_lines, expected);
}

/// Types a message (and the name, when given) and presses Send.
#[track_caller]
fn say(tab: &Tab, name: Option<&str>, message: &str) {
    if let Some(name) = name {
        tab.type_into("#name", name);
    }
    tab.type_into("#message", message);
    tab.click("#send");
}

#[test]
fn chat_between_two_people() {
    let started = Instant::now();
    // A tab that goes away counts as gone once it has not reconnected for this long.
    let sessions = SessionConfig {
        reconnect_grace: Duration::from_millis(300),
        ..SessionConfig::default()
    };
    let app = example_chat::app(builder().sessions(sessions));
    let server = serve(example_chat::router(&app));
    let browser = Browser::start();
    let (alice, bob) = (browser.new_session(), browser.new_session());

    // `/` leads to the room.
    alice.goto(&server.url("/"));
    alice.wait_for_url("/chat", WAIT);
    bob.goto(&server.url("/chat"));
    for tab in [&alice, &bob] {
        tab.wait_for_text("#online", "2 online", WAIT);
        tab.wait_for_text("#messages", "No messages yet.", WAIT);
    }

    say(&alice, Some("Alice"), "Hi Bob!");
    wait_for_chat_lines(&bob, &["Alice: Hi Bob!"]);
    wait_for_chat_lines(&alice, &["Alice: Hi Bob!"]);
    wait_for_value(&alice, "#message", "");
    // The name stays for the next message.
    wait_for_value(&alice, "#name", "Alice");

    say(&bob, Some("Bob"), "Hello Alice, how are you?");
    wait_for_chat_lines(
        &alice,
        &["Alice: Hi Bob!", "Bob: Hello Alice, how are you?"],
    );
    wait_for_chat_lines(&bob, &["Alice: Hi Bob!", "Bob: Hello Alice, how are you?"]);
    wait_for_value(&bob, "#message", "");

    // Pressing Enter sends too.
    alice.type_into(
        "#message",
        &format!("Fine, thanks{}", dstar_e2e::keys::ENTER),
    );
    let all = [
        "Alice: Hi Bob!",
        "Bob: Hello Alice, how are you?",
        "Alice: Fine, thanks",
    ];
    wait_for_chat_lines(&bob, &all);
    wait_for_chat_lines(&alice, &all);
    wait_for_value(&alice, "#message", "");

    // Markup in a message is shown as text.
    say(&bob, None, "<b>bold</b> & co");
    wait_for_chat_lines(
        &alice,
        &[
            "Alice: Hi Bob!",
            "Bob: Hello Alice, how are you?",
            "Alice: Fine, thanks",
            "Bob: <b>bold</b> & co",
        ],
    );

    // When Bob closes his browser, Alice sees one person online (after the short grace during
    // which Bob could have come back).
    drop(bob);
    alice.wait_for_text("#online", "1 online", WAIT);

    finish(&alice, Some("chat.png"));
    log_timing("chat", started);
}

/// Holds the browsers' stream requests (`POST /__dstar/stream`) while closed, and remembers the
/// `Last-Event-ID` each carried.
#[derive(Clone)]
struct StreamGate {
    open: Arc<watch::Sender<bool>>,
    held: Arc<AtomicUsize>,
    resumed_from: Arc<Mutex<Vec<Option<String>>>>,
}

impl StreamGate {
    fn new() -> Self {
        StreamGate {
            open: Arc::new(watch::Sender::new(true)),
            held: Arc::new(AtomicUsize::new(0)),
            resumed_from: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }

    fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// The `Last-Event-ID` of every stream request so far, in arrival order.
    fn resumed_from(&self) -> Vec<Option<String>> {
        self.resumed_from.lock().unwrap().clone()
    }

    async fn guard(self, req: Request, next: Next) -> Response {
        if req.uri().path() == dstar::protocol::STREAM_PATH {
            let last = req
                .headers()
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            self.resumed_from.lock().unwrap().push(last);
            let mut open = self.open.subscribe();
            if !*open.borrow_and_update() {
                self.held.fetch_add(1, Ordering::SeqCst);
                let _ = open.wait_for(|open| *open).await;
            }
        }
        next.run(req).await
    }
}

#[test]
fn chat_stream_resumes_without_losing_messages() {
    let started = Instant::now();
    let app = example_chat::app(builder());
    let gate = StreamGate::new();
    let guard = gate.clone();
    let server = serve(
        example_chat::router(&app).layer(from_fn(move |req, next| guard.clone().guard(req, next))),
    );
    let browser = Browser::start();
    let (alice, bob) = (browser.new_session(), browser.new_session());
    let room = app
        .state::<example_chat::ChatRoom>()
        .expect("the chat keeps its room in app state");

    alice.goto(&server.url("/chat"));
    bob.goto(&server.url("/chat"));
    mark_document(&alice, 7);
    for tab in [&alice, &bob] {
        tab.wait_for_text("#online", "2 online", WAIT);
    }
    say(&alice, Some("Alice"), "one");
    wait_for_chat_lines(&bob, &["Alice: one"]);
    say(&bob, Some("Bob"), "two");
    wait_for_chat_lines(&alice, &["Alice: one", "Bob: two"]);
    wait_for_value(&alice, "#message", "");
    wait_for_value(&bob, "#message", "");
    assert_eq!(gate.resumed_from(), [None, None], "two first connections");

    // The network fails: every stream is cut, and the browsers' attempts to reconnect are held
    // until the messages below have been posted.
    gate.set_open(false);
    app.sessions().disconnect_streams();
    wait_for("both browsers to try to reconnect", WAIT, || {
        gate.held() == 2
    });

    // Posting still works (events are plain requests); the streams are what is missing.
    say(&bob, None, "three");
    wait_for("the room to have Bob's message", WAIT, || {
        room.lines().len() == 3
    });
    say(&alice, None, "four");
    wait_for("the room to have Alice's message", WAIT, || {
        room.lines().len() == 4
    });
    assert_eq!(
        chat_lines(&alice),
        ["Alice: one", "Bob: two"],
        "nothing can reach a disconnected tab"
    );

    // The network comes back: each browser resumes from the last event it saw.
    gate.set_open(true);
    let all = ["Alice: one", "Bob: two", "Bob: three", "Alice: four"];
    wait_for_chat_lines(&alice, &all);
    wait_for_chat_lines(&bob, &all);
    // Alice's field was cleared by an event sent while she was away.
    wait_for_value(&alice, "#message", "");
    wait_for_value(&bob, "#message", "");

    let resumed = gate.resumed_from();
    assert_eq!(resumed.len(), 4, "one reconnection each: {resumed:?}");
    assert!(
        resumed[2..].iter().all(Option::is_some),
        "the reconnections carry Last-Event-ID: {resumed:?}"
    );
    assert_eq!(app.sessions().len(), 2, "the sessions were kept");
    for tab in [&alice, &bob] {
        assert_eq!(tab.text("#online"), "2 online");
    }
    assert_eq!(marker(&alice), json!(7), "Alice's page was not reloaded");

    // Chromium reports each cut stream as a failed load, as it would for a real network
    // failure; there must be that one per tab and nothing else.
    for tab in [&alice, &bob] {
        let errors = tab.console_errors();
        let (cut, other): (Vec<_>, Vec<_>) = errors.iter().partition(|e| {
            e.source == "network"
                && e.message.contains(dstar::protocol::STREAM_PATH)
                && e.message.contains("net::ERR_INCOMPLETE_CHUNKED_ENCODING")
        });
        assert_eq!(cut.len(), 1, "one cut stream: {errors:#?}");
        assert!(other.is_empty(), "unexpected console errors: {other:#?}");
    }
    log_timing("chat stream resume", started);
}

// ---------------------------------------------------------------------------------------------
// 3. The showcase's todos.

/// The titles of the todos shown, in order.
fn todo_titles(tab: &Tab) -> Vec<String> {
    let titles = tab
        .eval("return [...document.querySelectorAll('#todos li .title')].map((t) => t.innerText)");
    serde_json::from_value(titles).expect("a list of strings")
}

/// Waits until the tab shows exactly these todos, in this order.
#[track_caller]
fn wait_for_todos(tab: &Tab, expected: &[&str]) {
    wait_for_list(tab, todo_titles, expected);
}

#[track_caller]
fn add_todo(tab: &Tab, title: &str) {
    tab.type_into("#title", title);
    tab.click("#add-button");
    tab.wait_for_text_contains("#todos", title, WAIT);
    // The field is emptied for the next one.
    wait_for_value(tab, "#title", "");
}

#[test]
fn todos_add_toggle_delete_and_filter_in_the_url() {
    let started = Instant::now();
    let app = example_showcase::app(builder());
    let server = serve(example_showcase::router(&app));
    let browser = Browser::start();
    let tab = browser.new_session();

    tab.goto(&server.url("/todos"));
    assert_eq!(tab.title(), "Todos");
    tab.wait_for_text("#todos", "Nothing here.", WAIT);
    tab.wait_for_text("#left", "0 left", WAIT);

    add_todo(&tab, "Buy milk");
    add_todo(&tab, "Write the tests");
    add_todo(&tab, "Read the docs");
    wait_for_todos(&tab, &["Buy milk", "Write the tests", "Read the docs"]);
    tab.wait_for_text("#left", "3 left", WAIT);

    // Ticking "Buy milk" marks it done.
    tab.click("#toggle-1");
    tab.wait_for_element("#todo-1.done", WAIT);
    tab.wait_for_text("#left", "2 left", WAIT);
    assert_eq!(
        tab.eval("return document.querySelector('#toggle-1').checked"),
        true
    );
    assert_eq!(
        tab.eval("return document.querySelector('#toggle-2').checked"),
        false
    );
    assert_eq!(tab.count("#todos li.done"), 1);

    // Deleting "Read the docs" removes it.
    tab.click("#delete-3");
    tab.wait_for_absent("#todo-3", WAIT);
    wait_for_todos(&tab, &["Buy milk", "Write the tests"]);
    tab.wait_for_text("#left", "1 left", WAIT);

    // The "done" filter shows only what is done, and the URL says so, without a reload.
    mark_document(&tab, 1);
    tab.click("#filter-done");
    tab.wait_for_url("/todos?filter=done", WAIT);
    wait_for_todos(&tab, &["Buy milk"]);
    assert_eq!(marker(&tab), json!(1), "filtering does not reload the page");
    assert_eq!(tab.count("#filter-done.current"), 1);
    assert_eq!(
        tab.text("#left"),
        "1 left",
        "the count is of the whole list"
    );

    // A reload keeps the filter: it is in the URL.
    tab.reload();
    assert_eq!(marker(&tab), Value::Null, "this time the page was reloaded");
    assert!(
        tab.url().ends_with("/todos?filter=done"),
        "after the reload: {}",
        tab.url()
    );
    assert_eq!(todo_titles(&tab), ["Buy milk"]);
    assert_eq!(tab.count("#filter-done.current"), 1);
    assert_eq!(
        tab.eval("return document.querySelector('#toggle-1').checked"),
        true
    );

    // And "all" shows both again, with a plain URL.
    tab.click("#filter-all");
    tab.wait_for_url("/todos", WAIT);
    wait_for_todos(&tab, &["Buy milk", "Write the tests"]);
    tab.wait_for_element("#todo-1.done", WAIT);
    tab.wait_for_element("#todo-2.active", WAIT);
    assert_eq!(tab.count("#filter-all.current"), 1);
    assert_eq!(
        tab.count(".filters a.current"),
        1,
        "one filter is the current one"
    );

    finish(&tab, Some("showcase-todos.png"));
    log_timing("todos", started);
}

/// The showcase's todos with compressed streams on: the page works the same over a gzip stream
/// and over a brotli one, decoded by Chromium's own decoders as the frames arrive.
///
/// What Chromium offers was checked here: to `http://127.0.0.1` it sends
/// `gzip, deflate, br, zstd` (loopback counts as a secure origin; on other plain-HTTP origins
/// Chromium leaves `br` and `zstd` out), so dstar picks gzip (its choice on a tie). The brotli
/// run narrows the header to `br` on its way in, as a client preferring brotli would send it.
#[test]
fn todos_over_compressed_streams() {
    let started = Instant::now();
    let offered = todos_with_compression(None);
    for (accept, coding) in &offered {
        let offers = |token: &str| accept.split(',').any(|entry| entry.trim() == token);
        assert!(offers("gzip"), "Chromium offers gzip: {accept:?}");
        assert_eq!(coding, "gzip", "gzip wins a tie");
    }
    for (_, coding) in todos_with_compression(Some("br")) {
        assert_eq!(coding, "br");
    }
    log_timing("todos (compressed)", started);
}

/// Runs the todos in Chromium with compression on (replacing the stream request's
/// `Accept-Encoding` with `accept` when given); each stream request's `Accept-Encoding` as
/// sent and the `Content-Encoding` it got.
fn todos_with_compression(accept: Option<&'static str>) -> Vec<(String, String)> {
    let streams: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let seen = streams.clone();
    let app = example_showcase::app(builder().compress_streams(true));
    let router =
        example_showcase::router(&app).layer(from_fn(move |mut req: Request, next: Next| {
            let seen = seen.clone();
            async move {
                let header = |headers: &axum::http::HeaderMap, name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let sent = header(req.headers(), "accept-encoding");
                let is_stream = req.uri().path() == "/__dstar/stream";
                if let (true, Some(accept)) = (is_stream, accept) {
                    req.headers_mut().insert(
                        "accept-encoding",
                        axum::http::HeaderValue::from_static(accept),
                    );
                }
                let response: Response = next.run(req).await;
                if is_stream {
                    let coding = header(response.headers(), "content-encoding");
                    seen.lock().unwrap().push((sent, coding));
                }
                response
            }
        }));
    let server = serve(router);
    let browser = Browser::start();
    let tab = browser.new_session();

    tab.goto(&server.url("/todos"));
    tab.wait_for_text("#todos", "Nothing here.", WAIT);
    for title in ["Buy milk", "Write the tests", "Read the docs"] {
        add_todo(&tab, title);
    }
    wait_for_todos(&tab, &["Buy milk", "Write the tests", "Read the docs"]);
    tab.click("#toggle-2");
    tab.wait_for_element("#todo-2.done", WAIT);
    tab.wait_for_text("#left", "2 left", WAIT);
    tab.click("#delete-3");
    tab.wait_for_absent("#todo-3", WAIT);
    wait_for_todos(&tab, &["Buy milk", "Write the tests"]);
    finish(
        &tab,
        Some(&format!("showcase-todos-{}.png", accept.unwrap_or("gzip"))),
    );
    let streams = streams.lock().unwrap().clone();
    assert!(!streams.is_empty(), "the page opened its stream");
    streams
}

// ---------------------------------------------------------------------------------------------
// 4. Soft navigation in the showcase.

/// Clicks the nav bar's link to `path`.
#[track_caller]
fn nav_to(tab: &Tab, path: &str) {
    tab.click(&format!("#nav a[href={}]", js(path)));
}

#[track_caller]
fn wait_for_title(tab: &Tab, title: &str) {
    tab.wait_until(&format!("return document.title === {}", js(title)), WAIT);
}

#[test]
fn soft_navigation_keeps_the_document_and_the_state() {
    let started = Instant::now();
    let app = example_showcase::app(builder());
    let server = serve(example_showcase::router(&app));
    let browser = Browser::start();
    let tab = browser.new_session();

    tab.goto(&server.url("/"));
    assert_eq!(tab.title(), "dstar showcase");
    assert_eq!(tab.text("#dstar-root h1"), "dstar showcase");
    assert_eq!(
        tab.text("#nav").split_whitespace().collect::<Vec<_>>(),
        ["Home", "Counter", "Todos", "Chat"]
    );
    tab.screenshot(screenshot_dir().join("showcase-home.png"));
    mark_document(&tab, 42);

    nav_to(&tab, "/counter");
    tab.wait_for_url("/counter", WAIT);
    wait_for_title(&tab, "Counter");
    tab.wait_for_text("#dstar-root h1", "Counter", WAIT);
    tab.wait_for_text("#count", "0", WAIT);
    assert_eq!(marker(&tab), json!(42), "soft navigation does not reload");
    assert_eq!(app.sessions().len(), 1, "still the one session");

    for expected in ["1", "2"] {
        tab.click("#increment");
        tab.wait_for_text("#count", expected, WAIT);
    }

    nav_to(&tab, "/todos");
    tab.wait_for_url("/todos", WAIT);
    wait_for_title(&tab, "Todos");
    tab.wait_for_text("#todos", "Nothing here.", WAIT);

    // Back shows the counter again, with the count kept in app state.
    tab.back();
    tab.wait_for_url("/counter", WAIT);
    wait_for_title(&tab, "Counter");
    tab.wait_for_text("#count", "2", WAIT);
    assert_eq!(marker(&tab), json!(42), "Back does not reload either");

    // The counter still works after coming back.
    tab.click("#decrement");
    tab.wait_for_text("#count", "1", WAIT);

    // Forward goes to the todos; the home link leads home.
    tab.forward();
    tab.wait_for_url("/todos", WAIT);
    tab.wait_for_element("#todos", WAIT);
    nav_to(&tab, "/");
    tab.wait_for_url(&server.url("/"), WAIT);
    wait_for_title(&tab, "dstar showcase");
    tab.wait_for_text("#dstar-root h1", "dstar showcase", WAIT);
    assert_eq!(marker(&tab), json!(42));

    // The chat, reached by soft navigation, subscribes the session to the room.
    nav_to(&tab, "/chat");
    tab.wait_for_url("/chat", WAIT);
    tab.wait_for_text("#online", "1 online", WAIT);
    say(&tab, Some("Nav"), "arrived without a reload");
    wait_for_chat_lines(&tab, &["Nav: arrived without a reload"]);
    assert_eq!(marker(&tab), json!(42));
    assert_eq!(app.sessions().len(), 1, "one session all along");

    finish(&tab, None);
    log_timing("soft navigation", started);
}

// ---------------------------------------------------------------------------------------------
// 6. The developer's loop: the server restarts under an open tab.

#[test]
fn a_restart_under_an_open_tab_re_mounts_it_in_place() {
    let started = Instant::now();
    // No key configured: both starts sign with the development key kept under the target
    // directory, as two `cargo run`s of the same app do.
    let before = example_showcase::app(builder());
    let server = serve(example_showcase::router(&before));
    let addr = server.addr();
    let browser = Browser::start();
    let tab = browser.new_session();

    tab.goto(&server.url("/counter"));
    tab.wait_for_text("#count", "0", WAIT);
    for expected in ["1", "2"] {
        tab.click("#increment");
        tab.wait_for_text("#count", expected, WAIT);
    }
    mark_document(&tab, 12);

    // The restart: the old server goes (cutting the tab's stream), and a click is made while
    // no server listens; then a new one with empty state listens on the same port.
    drop(server);
    tab.click("#increment");
    let after = example_showcase::app(builder());
    let server = TestServer::start_on(
        addr,
        example_showcase::router(&after).merge(datastar_js_route()),
    );

    // The tab's stream comes back, finds no session, and the page is re-mounted in place:
    // one full render of the new app's state (the counter starts again at 0, where the tab
    // showed 2). The click made meanwhile is retried until the session is back, and applied
    // once.
    tab.wait_for_text("#count", "1", WAIT);
    assert_eq!(marker(&tab), json!(12), "the tab was not reloaded");
    assert_eq!(after.sessions().len(), 1, "one re-mounted session");
    tab.click("#increment");
    tab.wait_for_text("#count", "2", WAIT);
    tab.click("#increment");
    tab.wait_for_text("#count", "3", WAIT);
    assert_eq!(marker(&tab), json!(12));
    assert_eq!(tab.url(), server.url("/counter"));

    // Chromium reports the cut stream and the requests that found no server (or a session
    // not yet back: 503) as failed loads, and the client says it retries; nothing else.
    let errors = tab.console_errors();
    let other: Vec<_> = errors
        .iter()
        .filter(|e| {
            let ours = e.message.contains(dstar::protocol::STREAM_PATH)
                || e.message.contains(dstar::protocol::EVENT_PATH);
            !(ours
                && (e.source == "network"
                    || e.message.contains("retrying")
                    || e.message.contains("status of 503")))
        })
        .collect();
    assert!(other.is_empty(), "unexpected console errors: {other:#?}");
    log_timing("restart under an open tab", started);
}

/// When a tab cannot be re-mounted (here every stream request finds its session ended, as
/// after a restart, and carries no `Referer`, as behind a proxy that strips it), it reloads,
/// but not forever: three reloads a minute with a growing wait, then a message.
#[test]
fn a_tab_that_cannot_be_re_mounted_reloads_at_most_three_times_then_says_so() {
    let started = Instant::now();
    let app = example_showcase::app(builder());
    let loads = Arc::new(AtomicUsize::new(0));
    let (sessions, counted) = (app.clone(), loads.clone());
    let router =
        example_showcase::router(&app).layer(from_fn(move |mut req: Request, next: Next| {
            let (app, counted) = (sessions.clone(), counted.clone());
            async move {
                if req.uri().path() == "/counter" {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                if req.uri().path() == dstar::protocol::STREAM_PATH {
                    // Every session ends (returns once their tasks have finished).
                    app.sessions().shutdown(WAIT).await;
                    req.headers_mut().remove("referer");
                }
                next.run(req).await
            }
        }));
    let server = serve(router);
    let browser = Browser::start();
    let tab = browser.new_session();

    tab.goto(&server.url("/counter"));
    let lost = format!("#{}", dstar::protocol::LOST_ID);
    tab.wait_for_element(&lost, WAIT);
    assert!(
        tab.text(&lost).contains("Reload the page"),
        "{}",
        tab.text(&lost)
    );
    // The first load and three reloads; the fourth stream answer shows the message instead.
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1 + dstar::protocol::RELOAD_LIMIT as usize
    );
    finish(&tab, Some("reload-guard.png"));
    log_timing("reload guard", started);
}
