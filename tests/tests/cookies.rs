//! Cookies in pages and handlers: read in `mount` and in events (live ones read the event
//! POST's), set with page loads and event answers, signed and private values; and sessions
//! tagged by user, all ended at once at logout and never re-mounted.

use std::time::Duration;

use axum::routing::post;
use dstar::session::SessionConfig;
use dstar::token::{Keys, Purpose};
use dstar::{App, Cookie, Ctx, Error, Html, Message, Mount, SessionEnd, View};
use dstar_tests::{SseStream, TestServer};

const WAIT: Duration = Duration::from_secs(5);
const SECRET: &[u8] = b"cookie tests (a test key of 32+ bytes)";

/// A stateless page greeting the signed-in user and counting visits in a signed cookie.
struct Greeting {
    user: String,
}

#[dstar::page("/hello")]
impl Greeting {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        let visits: u32 = mount
            .cookies()
            .signed("visits")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        mount.set_cookie(Cookie::new("visits", (visits + 1).to_string()).signed())?;
        let user = mount.cookies().private("user").unwrap_or_default();
        Ok(Greeting { user })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!("<p>hello {}</p>", self.user)))
    }

    #[event]
    async fn theme(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        let now = match cx.cookies().get("theme").as_deref() {
            Some("dark") => "light",
            _ => "dark",
        };
        cx.set_cookie(Cookie::new("theme", now).http_only(false))
    }
}

/// A live page of the signed-in user, whose session is tagged with the user.
struct Account {
    user: String,
}

#[dstar::page("/account", live)]
impl Account {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        let Some(user) = mount.cookies().private("user") else {
            return Err(Error::redirect("/login"));
        };
        mount.tag(format!("user:{user}"));
        mount.subscribe("accounts");
        Ok(Account { user })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!("<p>{}</p>", self.user)))
    }

    /// Reads the cookie of the event's own request, and sets one with its answer.
    #[event]
    async fn remember(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        let seen = cx.cookies().get("seen").unwrap_or_default();
        cx.set_cookie(Cookie::new("seen", format!("{seen}+")))
    }

    /// Logs out: every tab of this user goes to the login page.
    #[event]
    async fn logout(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        cx.set_cookie(Cookie::removal("user"))?;
        cx.app().sessions().end_tagged(
            &format!("user:{}", self.user),
            SessionEnd::Navigate("/login".into()),
        );
        Ok(())
    }

    async fn info(&mut self, cx: &mut Ctx<'_>, _message: Message) -> dstar::Result<()> {
        cx.set_cookie(Cookie::new("from", "info"))
    }
}

/// The app's own login route: a private cookie set from a plain axum handler.
async fn login(
    axum::extract::State(app): axum::extract::State<App>,
    body: String,
) -> axum::response::Response {
    let cookie = app
        .cookie_header(&Cookie::new("user", body).private())
        .unwrap();
    ([(dstar::http::header::SET_COOKIE, cookie)], "signed in").into_response()
}

use axum::response::IntoResponse;

async fn serve() -> (App, TestServer) {
    let app = App::builder()
        .secret_key(SECRET)
        .sessions(SessionConfig {
            reconnect_grace: Duration::from_secs(60),
            ..SessionConfig::default()
        })
        .build()
        .unwrap();
    let router = dstar::router![Greeting, Account]
        .into_router(app.clone())
        .route("/login", post(login))
        .with_state(app.clone());
    (app, TestServer::start(router).await)
}

/// The `name=value` part of each `Set-Cookie` of `response`.
fn set_cookies(response: &dstar_tests::Response) -> Vec<String> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .map(|(_, value)| value.split(';').next().unwrap().to_owned())
        .collect()
}

async fn sign_in(server: &TestServer, user: &str) -> String {
    let reply = server.post("/login", &[], user).await;
    assert_eq!(reply.status, 200);
    let cookies = set_cookies(&reply);
    assert_eq!(cookies.len(), 1);
    assert!(!cookies[0].contains(user), "private: {}", cookies[0]);
    cookies[0].clone()
}

/// A live tab: its stream and event token.
struct Tab {
    stream: SseStream,
    event: String,
}

fn token_after(html: &str, name: &str) -> String {
    let marker = format!("&quot;{name}&quot;:&quot;");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..].split("&quot;").next().unwrap().to_owned()
}

async fn open_account(server: &TestServer, cookie: &str) -> Tab {
    let page = server.get("/account", &[("cookie", cookie)]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let stream = server
        .open_sse(
            "POST",
            "/__dstar/stream",
            &[
                ("x-dstar-token", &token_after(html, "_dstarStream")),
                ("cookie", cookie),
            ],
            Some(b"{}"),
        )
        .await
        .unwrap();
    Tab {
        stream,
        event: token_after(html, "_dstarToken"),
    }
}

async fn send(server: &TestServer, tab: &Tab, event: &str, cookie: &str) -> dstar_tests::Response {
    server
        .post(
            "/__dstar/event",
            &[
                ("x-dstar-token", &tab.event),
                ("x-dstar-event", event),
                ("cookie", cookie),
            ],
            "{}",
        )
        .await
}

#[tokio::test]
async fn stateless_pages_read_and_set_cookies_signed_and_private() {
    let (_app, server) = serve().await;
    let alice = sign_in(&server, "alice").await;
    let first = server.get("/hello", &[("cookie", &alice)]).await;
    assert!(
        first.text().contains("<p>hello alice</p>"),
        "{}",
        first.text()
    );
    let visits = set_cookies(&first);
    assert_eq!(visits.len(), 1);
    assert!(visits[0].starts_with("visits=1."), "{visits:?}");
    let both = format!("{alice}; {}", visits[0]);
    let second = server.get("/hello", &[("cookie", &both)]).await;
    assert!(set_cookies(&second)[0].starts_with("visits=2."));
    // A visit count changed by the browser is not believed.
    let forged = format!("{alice}; {}", visits[0].replace("visits=1.", "visits=9."));
    let third = server.get("/hello", &[("cookie", &forged)]).await;
    assert!(set_cookies(&third)[0].starts_with("visits=1."));

    // A stateless event reads the request's cookies and answers with a cookie.
    let token = Keys::new(SECRET).sign(Purpose::Csrf, 0, Duration::from_secs(60));
    let mut theme: Option<String> = None;
    for expected in ["theme=dark", "theme=light"] {
        let mut headers = vec![
            ("x-dstar-token", token.as_str()),
            ("x-dstar-event", "theme"),
        ];
        let sent = theme.clone().unwrap_or_default();
        if theme.is_some() {
            headers.push(("cookie", sent.as_str()));
        }
        let answer = server.post("/hello", &headers, "{}").await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(set_cookies(&answer), [expected]);
        theme = Some(expected.to_owned());
    }
}

#[tokio::test]
async fn live_events_read_the_event_requests_cookies_and_set_cookies_with_their_answer() {
    let (app, server) = serve().await;
    let alice = sign_in(&server, "alice").await;
    let tab = open_account(&server, &alice).await;
    let first = send(&server, &tab, "remember", &alice).await;
    assert_eq!(first.status, 204, "{}", first.text());
    assert_eq!(set_cookies(&first), ["seen=+"]);
    let with_seen = format!("{alice}; seen=+");
    let second = send(&server, &tab, "remember", &with_seen).await;
    assert_eq!(set_cookies(&second), ["seen=++"]);
    // `info` answers no request: setting a cookie there is an error (logged), nothing breaks.
    assert_eq!(app.pubsub().publish("accounts", Message::new(())), 1);
    assert_eq!(send(&server, &tab, "remember", &alice).await.status, 204);
}

#[tokio::test]
async fn logging_out_ends_every_tab_of_that_user_for_good() {
    let (app, server) = serve().await;
    let alice = sign_in(&server, "alice").await;
    let bob = sign_in(&server, "bob").await;
    let mut first = open_account(&server, &alice).await;
    let mut second = open_account(&server, &alice).await;
    let mut bobs = open_account(&server, &bob).await;
    assert_eq!(app.sessions().len(), 3);
    // Without the cookie, the page sends the visitor to log in.
    let anonymous = server.get("/account", &[]).await;
    assert_eq!(anonymous.status, 303);

    let logout = send(&server, &first, "logout", &alice).await;
    assert_eq!(logout.status, 204, "{}", logout.text());
    let removal = logout
        .headers
        .iter()
        .find(|(name, _)| name == "set-cookie")
        .map(|(_, value)| value.clone())
        .unwrap();
    assert!(removal.starts_with("user=; Path=/; Max-Age=0"), "{removal}");

    for tab in [&mut first, &mut second] {
        // (The tab that logged out first gets its page rendered after the handler.)
        let mut last = String::new();
        while let Some(event) = tab.stream.next_event(WAIT).await.unwrap() {
            last = event.value("elements").unwrap_or_default();
        }
        assert!(
            last.contains("/login"),
            "sent to the login page, then the stream ends: {last}"
        );
    }
    let wait_until = std::time::Instant::now() + WAIT;
    while app.sessions().len() != 1 {
        assert!(
            std::time::Instant::now() < wait_until,
            "alice's sessions end"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Ended on purpose: events are refused for good, and a stream is not re-mounted.
    assert_eq!(send(&server, &second, "remember", &alice).await.status, 410);
    // Bob's tab is untouched: his event is applied and his page streams on.
    assert_eq!(send(&server, &bobs, "remember", &bob).await.status, 204);
    let event = bobs.stream.expect_event(WAIT).await;
    assert_eq!(event.value("elements").as_deref(), Some("<p>bob</p>"));
}
