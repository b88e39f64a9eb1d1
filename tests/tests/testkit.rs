//! `dstar::test`, the in-process test client, against real pages: a stateless counter, a live
//! chat with PubSub between two tabs, soft navigation, element patch modes, redirects, and the
//! messages its assertions and errors give.
//!
//! The pages implement `dstar::Page` by hand (what `#[dstar::page]` writes).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use dstar::sse::Mode;
use dstar::test::{TestClient, TestError};
use dstar::{App, Ctx, Event, Html, Message, Mount, Page, Route, View};
use serde::{Deserialize, Serialize};
use serde_json::json;

const fn route(
    name: &'static str,
    path: &'static str,
    live: bool,
    group: &'static str,
    title: Option<&'static str>,
    events: &'static [&'static str],
) -> Route {
    let mut route = Route::new(name, path, file!(), line!()).events(events);
    if live {
        route = route.live().group(group);
    }
    if let Some(title) = title {
        route = route.title(title);
    }
    route
}

// ---------------------------------------------------------------------------------------------
// A stateless counter that keeps its count in a signal.

struct Counter;

#[derive(Deserialize)]
struct CountSignals {
    count: i64,
    #[serde(default)]
    by: Option<i64>,
}

#[derive(Serialize)]
struct By {
    by: i64,
}

impl Page for Counter {
    const ROUTE: Route = route(
        "Counter",
        "/counter",
        false,
        "default",
        Some("Counter"),
        &["increment", "add", "leave"],
    );

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Counter)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<p id="count" data-signals:count="0" data-text="$count">-</p>
<button id="plus" data-on:click="{{ event('increment') }}">+1</button>
<button id="plus-five" data-on:click="{{ event('add', {'by': 5}) }}">+5</button>
<button id="leave" data-on:click="{{ event('leave') }}">Sign out</button>"#,
            (),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        let signals: CountSignals = event.signals()?;
        let count = match event.name() {
            "increment" => signals.count + 1,
            "add" => signals.count + signals.by.unwrap_or(0),
            "leave" => return cx.redirect("/login"),
            _ => return Err(event.unknown()),
        };
        cx.patch_signals(&json!({ "count": count }))?;
        cx.patch_elements(format!(r#"<p id="count">{count}</p>"#));
        Ok(())
    }
}

struct Login;

impl Page for Login {
    const ROUTE: Route = route("Login", "/login", false, "default", Some("Sign in"), &[]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Login)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from(r#"<h1 id="heading">Sign in</h1>"#))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }
}

/// A live page whose mount always redirects.
struct Guarded;

impl Page for Guarded {
    const ROUTE: Route = route("Guarded", "/guarded", true, "main", None, &[]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Err(dstar::Error::redirect("/login?next=/guarded"))
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }
}

/// Shows the request's `cookie` and `x-user` headers.
struct WhoAmI {
    cookie: String,
    user: String,
}

impl Page for WhoAmI {
    const ROUTE: Route = route("WhoAmI", "/whoami", false, "default", None, &[]);

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(WhoAmI {
            cookie: mount.header("cookie").unwrap_or_default().to_owned(),
            user: mount.header("x-user").unwrap_or_default().to_owned(),
        })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<p id="cookie">{{ cookie }}</p><p id="user">{{ user }}</p>"#,
            json!({ "cookie": self.cookie, "user": self.user }),
        )
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }
}

// ---------------------------------------------------------------------------------------------
// A live chat: each tab is a session subscribed to one topic.

struct Chat {
    name: String,
    messages: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Draft {
    draft: String,
}

impl Page for Chat {
    const ROUTE: Route = route(
        "Chat",
        "/chat",
        true,
        "chat",
        Some("Chat"),
        &["send", "leave"],
    );

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        mount.subscribe("chat");
        Ok(Chat {
            name: mount
                .query_param("name")
                .unwrap_or_else(|| "anon".to_owned()),
            messages: Vec::new(),
        })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<h1 id="who">{{ name }}</h1>
<ul id="messages">{% for m in messages %}<li>{{ m }}</li>{% endfor %}</ul>
<input id="draft" data-signals:draft="''" data-bind:draft>"#,
            json!({ "name": self.name, "messages": self.messages }),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "send" => {
                let Draft { draft } = event.signals()?;
                cx.publish("chat", format!("{}: {draft}", self.name));
                cx.skip_render();
                cx.patch_signals(&json!({ "draft": "" }))
            }
            "leave" => Err(dstar::Error::redirect("/login")),
            _ => Err(event.unknown()),
        }
    }

    async fn info(&mut self, _cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
        if let Some(text) = message.get::<String>() {
            self.messages.push(text.clone());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Live pages of one group, for soft navigation.

struct Home;

impl Page for Home {
    const ROUTE: Route = route("Home", "/", true, "main", Some("Home"), &["ping"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<h1 id="heading">Home</h1>
<nav>{{ link('/items/7?sort=name', 'Item 7') }}</nav>
<button id="to-counter" data-on:click="{{ navigate('/counter') }}">Counter</button>"#,
            (),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, _event: Event<'_>) -> dstar::Result<()> {
        cx.skip_render();
        cx.patch_signals(&json!({ "pong": "home" }))
    }
}

/// Only for users with `x-user: ok`.
struct Item {
    id: u32,
    sort: String,
    clicks: u32,
}

impl Page for Item {
    const ROUTE: Route = route("Item", "/items/{id}", true, "main", None, &["click"]);

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        if mount.header("x-user") != Some("ok") {
            return Err(dstar::Error::forbidden("sign in first"));
        }
        let id = mount.param_as("id")?;
        mount.set_title(format!("Item {id}"));
        Ok(Item {
            id,
            sort: mount.query_param("sort").unwrap_or_default(),
            clicks: 0,
        })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<h1 id="heading">Item {{ id }}</h1><p id="sort">{{ sort }}</p><p id="clicks">{{ clicks }}</p>"#,
            json!({ "id": self.id, "sort": self.sort, "clicks": self.clicks }),
        )
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, _event: Event<'_>) -> dstar::Result<()> {
        self.clicks += 1;
        Ok(())
    }
}

/// A live page in another group: soft navigation to it loads it in full.
struct Elsewhere;

impl Page for Elsewhere {
    const ROUTE: Route = route("Elsewhere", "/elsewhere", true, "other", None, &[]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Elsewhere)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from(r#"<h1 id="heading">Elsewhere</h1>"#))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }
}

// ---------------------------------------------------------------------------------------------
// A stateless page whose events send one element patch each.

struct Patches;

impl Page for Patches {
    const ROUTE: Route = route(
        "Patches",
        "/patches",
        false,
        "default",
        None,
        &[
            "append", "prepend", "remove", "outer", "inner", "before", "after", "tags", "body",
            "field", "signals", "missing", "fancy",
        ],
    );

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Patches)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<h1 id="title">Patches</h1><ul id="list"><li id="b">b</li></ul><p id="note" class="note">old</p><button data-on:click="{{ event('append') }}">+</button>"#,
            (),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "append" => cx.patch_into("#list", Mode::Append, r#"<li id="c">c</li>"#),
            "prepend" => cx.patch_into("#list", Mode::Prepend, r#"<li id="a">a</li>"#),
            "remove" => cx.remove("#b"),
            "outer" => cx.patch_elements(r#"<p id="note" class="note">new <em>note</em></p>"#),
            "inner" => cx.patch_into("#title", Mode::Inner, "Patched &amp; done"),
            "before" => cx.patch_into("#list", Mode::Before, r#"<p id="intro">intro</p>"#),
            "after" => cx.patch_into("#list", Mode::After, r#"<p id="outro">outro</p>"#),
            "tags" => cx.patch_into("li", Mode::Append, "!"),
            "body" => cx.patch_into("body", Mode::Append, r#"<footer id="footer">end</footer>"#),
            "field" => cx.patch_into(
                "#footer",
                Mode::Inner,
                r#"<input id="email" data-signals:email="'a@b.example'">"#,
            ),
            "signals" => {
                cx.patch_signals(&json!({ "user": { "name": "Ann", "tags": [1, 2] } }))?;
                cx.remove_signals(["user.tags"]);
            }
            "missing" => cx.patch_elements(r#"<p id="nowhere">x</p>"#),
            "fancy" => cx.remove("li:first-child"),
            _ => return Err(event.unknown()),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

fn app() -> App {
    App::builder()
        .secret_key(b"testkit (a test key of 32+ bytes)")
        .build()
        .unwrap()
}

fn router(app: &App) -> axum::Router {
    dstar::router![
        Counter, Login, Guarded, Chat, Home, Item, Elsewhere, Patches, WhoAmI
    ]
    .into_router(app.clone())
}

fn client(app: &App) -> TestClient {
    TestClient::new(router(app))
}

/// The message of a panic in `f`.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_stateless_counter_keeps_its_state_in_signals() {
    let client = client(&app());
    let mut page = client.get("/counter").await.unwrap();
    assert!(!page.is_live());
    assert_eq!(page.url(), "/counter");
    assert_eq!(page.title(), "Counter");
    page.assert_signal("count", 0);
    page.assert_text("#count", "-");

    page.click("increment").await.unwrap();
    page.assert_signal("count", 1);
    page.assert_text("#count", "1");

    // Clicking elements runs the action written in their `data-on:click`, arguments included.
    page.click_on("#plus").await.unwrap();
    page.assert_text("#count", "2");
    page.click_on("#plus-five").await.unwrap();
    page.assert_signal("count", 7);

    page.event("add", json!({ "by": 3 })).await.unwrap();
    page.assert_signal("count", 10);
    page.event_with("add", &By { by: -10 }).await.unwrap();
    page.assert_signal("count", 0);
    page.assert_text("#count", "0");
    assert_eq!(page.signals(), json!({ "count": 0 }).as_object().unwrap());

    // Pages and clients can move into spawned tasks.
    fn is_send<T: Send>(_: &T) {}
    is_send(&page);
    is_send(&client);

    // Another tab of a stateless page starts over.
    let other = client.get("/counter").await.unwrap();
    other.assert_signal("count", 0);
}

#[tokio::test]
async fn failed_events_name_the_request_and_the_answer() {
    let client = client(&app());
    let mut page = client.get("/counter").await.unwrap();
    let err = page.click("nope").await.unwrap_err();
    assert_eq!(err.status(), Some(dstar::http::StatusCode::NOT_FOUND));
    assert_eq!(
        err.to_string(),
        "POST /counter (event `nope`) answered 404 Not Found: unknown event `nope`"
    );

    let err = client.get("/no/such/page").await.unwrap_err();
    assert_eq!(err.status(), Some(dstar::http::StatusCode::NOT_FOUND));
    assert!(
        err.to_string()
            .starts_with("GET /no/such/page answered 404"),
        "{err}"
    );

    let err = page.next_update().await.unwrap_err();
    assert!(matches!(err, TestError::NotLive { .. }), "{err}");
    let err = page.click_on("#count").await.unwrap_err();
    assert!(
        err.to_string().contains("no `data-on:click` action"),
        "{err}"
    );
}

// On worker threads, so the waiting rule is shown to hold under real parallelism.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_chat_delivers_messages_to_every_tab() {
    let app = app();
    let client = client(&app);
    let mut ann = client.get("/chat?name=ann").await.unwrap();
    let mut bob = client.get("/chat?name=bob").await.unwrap();
    assert!(ann.is_live() && bob.is_live());
    ann.assert_text("#who", "ann");
    ann.assert_count("#messages li", 0);
    ann.assert_signal("draft", "");

    ann.event_with(
        "send",
        &Draft {
            draft: "hello".to_owned(),
        },
    )
    .await
    .unwrap();
    // The sender's own session got the PubSub message before the action returned.
    ann.assert_text("#messages", "ann: hello");
    ann.assert_signal("draft", "");
    // The other tab waits for its stream.
    bob.next_update().await.unwrap();
    bob.assert_text("#messages li", "ann: hello");

    bob.event("send", json!({ "draft": "hi ann" }))
        .await
        .unwrap();
    bob.assert_count("#messages li", 2);
    // `settle` applies what the session was sent, without waiting for an update that may
    // never come.
    ann.settle().await.unwrap();
    assert_eq!(ann.texts("#messages li"), ["ann: hello", "bob: hi ann"]);
    ann.settle().await.unwrap();
    ann.assert_count("#messages li", 2);

    // Messages from outside the pages arrive too.
    assert_eq!(
        app.pubsub()
            .publish("chat", Message::new("server: bye".to_owned())),
        2
    );
    ann.settle().await.unwrap();
    bob.next_update().await.unwrap();
    ann.assert_text_contains("#messages", "server: bye");
    bob.assert_text_contains("#messages", "server: bye");
}

#[tokio::test]
async fn waiting_for_an_update_that_never_comes_times_out() {
    let client = client(&app()).with_timeout(Duration::from_millis(50));
    let mut page = client.get("/chat").await.unwrap();
    let err = page.next_update().await.unwrap_err();
    assert!(matches!(err, TestError::Timeout { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "timed out after 50ms waiting for an update on the stream of /chat"
    );
}

#[tokio::test]
async fn soft_navigation_between_live_pages() {
    let client = client(&app()).with_header("x-user", "ok");
    let mut page = client.get("/").await.unwrap();
    assert!(page.is_live());
    assert_eq!(page.title(), "Home");
    page.click("ping").await.unwrap();
    page.assert_signal("pong", "home");

    // The `link()` is a soft navigation: same session, new page, new title and URL.
    page.click_on("nav a").await.unwrap();
    page.assert_url("/items/7?sort=name");
    assert_eq!(page.title(), "Item 7");
    page.assert_text("#heading", "Item 7");
    page.assert_text("#sort", "name");
    assert!(
        page.scripts().iter().any(|s| s.contains("pushState")),
        "{:?}",
        page.scripts()
    );

    // Events reach the new page.
    page.click("click").await.unwrap();
    page.click("click").await.unwrap();
    page.assert_text("#clicks", "2");

    page.back().await.unwrap();
    page.assert_url("/");
    page.assert_text("#heading", "Home");
    assert_eq!(page.title(), "Home");

    page.navigate("/items/8").await.unwrap();
    page.assert_text("#heading", "Item 8");
    page.assert_text("#sort", "");

    // Another group, or a stateless page, loads in full.
    page.navigate("/elsewhere").await.unwrap();
    page.assert_url("/elsewhere");
    assert!(page.is_live());
    page.assert_text("#heading", "Elsewhere");
    page.back().await.unwrap();
    page.assert_url("/items/8");
    page.assert_text("#heading", "Item 8");

    let mut home = client.get("/").await.unwrap();
    home.click_on("#to-counter").await.unwrap();
    home.assert_url("/counter");
    assert!(!home.is_live());
    home.assert_signal("count", 0);
}

#[tokio::test]
async fn a_refused_navigation_keeps_the_page() {
    let client = client(&app());
    let mut page = client.get("/").await.unwrap();
    let err = page.navigate("/items/7").await.unwrap_err();
    assert_eq!(err.status(), Some(dstar::http::StatusCode::FORBIDDEN));
    assert!(err.to_string().contains("sign in first"), "{err}");
    page.assert_url("/");
    page.click("ping").await.unwrap();
    page.assert_signal("pong", "home");
}

#[tokio::test]
async fn element_patches_in_every_mode() {
    let client = client(&app());
    let mut page = client.get("/patches").await.unwrap();
    for event in ["append", "prepend"] {
        page.click(event).await.unwrap();
    }
    assert_eq!(page.texts("#list li"), ["a", "b", "c"]);
    page.click("remove").await.unwrap();
    assert_eq!(page.texts("#list > li"), ["a", "c"]);
    assert!(!page.exists("#b"));

    page.click("outer").await.unwrap();
    assert_eq!(
        page.outer_html("#note"),
        Some(r#"<p id="note" class="note">new <em>note</em></p>"#)
    );
    page.assert_text(".note", "new note");
    page.click("inner").await.unwrap();
    page.assert_text("#title", "Patched & done");

    page.click("before").await.unwrap();
    page.click("after").await.unwrap();
    assert_eq!(
        page.texts("#dstar-root > *"),
        ["Patched & done", "intro", "ac", "outro", "new note", "+"]
    );

    page.click("tags").await.unwrap();
    assert_eq!(page.texts("li"), ["a!", "c!"]);

    page.click("body").await.unwrap();
    assert!(
        page.html()
            .trim_end()
            .ends_with(r#"<footer id="footer">end</footer>"#),
        "{}",
        page.html()
    );
    // Elements that arrive with `data-signals` set their signals.
    page.click("field").await.unwrap();
    page.assert_signal("email", "a@b.example");

    page.click("signals").await.unwrap();
    page.assert_signal("user.name", "Ann");
    assert_eq!(page.signal("user.tags"), None);

    let err = page.click("missing").await.unwrap_err();
    assert!(matches!(err, TestError::NoTarget { .. }), "{err}");
    assert!(
        err.to_string().contains("no element with id `nowhere`"),
        "{err}"
    );
    let err = page.click("fancy").await.unwrap_err();
    assert!(matches!(err, TestError::Selector { .. }), "{err}");
    assert!(
        err.to_string().starts_with(
            "selector `li:first-child` is not supported by the test client: pseudo-classes"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn redirects_are_followed() {
    let client = client(&app());

    // A 303 from mount.
    let page = client.get("/guarded").await.unwrap();
    page.assert_url("/login?next=/guarded");
    assert_eq!(page.title(), "Sign in");

    // A redirect script in a stateless event's answer.
    let mut page = client.get("/counter").await.unwrap();
    page.click_on("#leave").await.unwrap();
    page.assert_url("/login");
    page.assert_text("#heading", "Sign in");
    page.back().await.unwrap();
    page.assert_url("/counter");

    // A redirect error from a live handler arrives on the stream.
    let mut page = client.get("/chat").await.unwrap();
    page.click("leave").await.unwrap();
    page.assert_url("/login");
    assert!(!page.is_live());

    // A reload is a new session.
    let mut page = client.get("/chat?name=cy").await.unwrap();
    page.event("send", json!({ "draft": "one" })).await.unwrap();
    page.assert_count("#messages li", 1);
    page.reload().await.unwrap();
    page.assert_url("/chat?name=cy");
    page.assert_count("#messages li", 0);
}

#[tokio::test]
async fn assertion_failures_show_expected_actual_and_the_page() {
    let client = client(&app());
    let mut page = client.get("/counter").await.unwrap();
    page.click("increment").await.unwrap();

    let message = panic_message(|| page.assert_text("#count", "2"));
    assert!(message.contains(r#"expected: "2""#), "{message}");
    assert!(message.contains(r#"actual: "1""#), "{message}");
    assert!(message.contains(r#"<p id="count">1</p>"#), "{message}");
    assert!(message.contains("page /counter (stateless)"), "{message}");

    let message = panic_message(|| page.assert_text("#nope", "x"));
    assert!(message.contains("no element matches `#nope`"), "{message}");

    let message = panic_message(|| page.assert_signal("count", 5));
    assert!(message.contains("signal `count`"), "{message}");
    assert!(message.contains("expected: 5"), "{message}");
    assert!(message.contains("actual: 1"), "{message}");
    assert!(message.contains(r#""count": 1"#), "{message}");

    let message = panic_message(|| page.assert_signal("missing", "x"));
    assert!(message.contains("(no signal `missing`)"), "{message}");

    let message = panic_message(|| {
        page.text("p:hover");
    });
    assert!(
        message.contains("pseudo-classes are not supported"),
        "{message}"
    );
}

#[tokio::test]
async fn cookies_and_headers_go_with_every_request() {
    // The app's own routes sit next to its pages; the client drives the whole router.
    let router = router(&app()).route(
        "/sign-in",
        axum::routing::post(|| async {
            (
                [("set-cookie", "session=abc; Path=/; HttpOnly")],
                "signed in",
            )
        })
        .delete(|| async { [("set-cookie", "session=; Max-Age=0")] }),
    );
    let client = TestClient::new(router).with_header("x-user", "ok");
    let request = |method: &str| {
        axum::http::Request::builder()
            .method(method)
            .uri("/sign-in")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let response = client.send(request("POST")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(client.cookie("session").as_deref(), Some("abc"));

    let page = client.get("/whoami").await.unwrap();
    page.assert_text("#cookie", "session=abc");
    page.assert_text("#user", "ok");

    client.send(request("DELETE")).await.unwrap();
    assert_eq!(client.cookie("session"), None);
    client
        .get("/whoami")
        .await
        .unwrap()
        .assert_text("#cookie", "");
}
