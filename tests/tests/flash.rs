//! Flash messages: across a redirect in a signed cookie shown once by the next page, or at
//! once in the layout's flash region when the handler stays.

use std::time::Duration;

use dstar::token::{Keys, Purpose};
use dstar::{App, Ctx, Html, Mount, View};
use dstar_tests::{TestServer, token_after};

const WAIT: Duration = Duration::from_secs(5);
const SECRET: &[u8] = b"flash tests (a test key of 32+ bytes)";

struct Items;

#[dstar::page("/items")]
impl Items {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Items)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from("<p>items</p>"))
    }

    #[event]
    async fn create(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        cx.flash("info", "Item <created>");
        cx.redirect("/items")
    }

    #[event]
    async fn check(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        cx.skip_render();
        cx.flash("error", "Name taken");
        Ok(())
    }
}

struct Board;

#[dstar::page("/board", live)]
impl Board {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Board)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from("<p>board</p>"))
    }

    #[event]
    async fn save(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        cx.skip_render();
        cx.flash("info", "Saved");
        Ok(())
    }

    #[event]
    async fn leave(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        cx.flash("info", "See you");
        cx.redirect("/items")
    }
}

async fn serve() -> TestServer {
    let app = App::builder().secret_key(SECRET).build().unwrap();
    TestServer::start(dstar::router![Items, Board].into_router(app)).await
}

fn csrf() -> String {
    Keys::new(SECRET).sign(Purpose::Csrf, 0, Duration::from_secs(60))
}

fn set_cookie<'r>(response: &'r dstar_tests::Response, name: &str) -> Option<&'r str> {
    response
        .headers
        .iter()
        .find(|(key, value)| key == "set-cookie" && value.starts_with(&format!("{name}=")))
        .map(|(_, value)| value.as_str())
}

const EMPTY_REGION: &str = r#"<div id="dstar-flash"></div>"#;

#[tokio::test]
async fn a_message_left_before_a_redirect_shows_once_on_the_next_page() {
    let server = serve().await;
    let first = server.get("/items", &[]).await;
    assert!(first.text().contains(EMPTY_REGION), "{}", first.text());
    assert!(set_cookie(&first, "dstar_flash").is_none());

    let token = csrf();
    let created = server
        .post(
            "/items",
            &[
                ("x-dstar-token", token.as_str()),
                ("x-dstar-event", "create"),
            ],
            "{}",
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let cookie = set_cookie(&created, "dstar_flash").expect("the messages travel in a cookie");
    assert!(
        created.text().contains("location.assign"),
        "{}",
        created.text()
    );
    let sent = cookie.split(';').next().unwrap().to_owned();

    let next = server.get("/items", &[("cookie", &sent)]).await;
    assert!(
        next.text().contains(
            r#"<div id="dstar-flash"><p class="dstar-flash" data-kind="info" role="status">Item &lt;created&gt;</p></div>"#
        ),
        "{}",
        next.text()
    );
    let removal = set_cookie(&next, "dstar_flash").expect("shown once: the cookie goes");
    assert!(removal.contains("Max-Age=0"), "{removal}");

    // Changed by the browser, it shows nothing.
    let forged = sent.replace("Item", "Evil");
    let tampered = server.get("/items", &[("cookie", &forged)]).await;
    assert!(
        tampered.text().contains(EMPTY_REGION),
        "{}",
        tampered.text()
    );
}

#[tokio::test]
async fn a_handler_that_stays_shows_its_message_at_once() {
    let server = serve().await;
    let token = csrf();
    let answer = server
        .post(
            "/items",
            &[
                ("x-dstar-token", token.as_str()),
                ("x-dstar-event", "check"),
            ],
            "{}",
        )
        .await;
    assert_eq!(answer.status, 200);
    assert!(set_cookie(&answer, "dstar_flash").is_none());
    let text = answer.text();
    assert!(
        text.contains("data: selector #dstar-flash")
            && text.contains("data: mode append")
            && text.contains(r#"data-kind="error" role="status">Name taken</p>"#),
        "{text}"
    );

    // A live page: over its stream.
    let page = server.get("/board", &[]).await;
    let html = page.text();
    let mut stream = server
        .open_sse(
            "POST",
            "/__dstar/stream",
            &[("x-dstar-token", &token_after(html, "_dstarStream"))],
            Some(b"{}"),
        )
        .await
        .unwrap();
    let event_token = token_after(html, "_dstarToken");
    let send = |name: &'static str| {
        let event_token = event_token.clone();
        let server = &server;
        async move {
            server
                .post(
                    "/__dstar/event",
                    &[
                        ("x-dstar-token", event_token.as_str()),
                        ("x-dstar-event", name),
                    ],
                    "{}",
                )
                .await
        }
    };
    assert_eq!(send("save").await.status, 204);
    let event = stream.expect_event(WAIT).await;
    assert_eq!(event.value("selector").as_deref(), Some("#dstar-flash"));
    assert_eq!(event.value("mode").as_deref(), Some("append"));
    assert!(event.value("elements").unwrap().contains(">Saved</p>"));

    // Leaving: the cookie is set by a script before the redirect runs.
    assert_eq!(send("leave").await.status, 204);
    let mut scripts = String::new();
    while !scripts.contains("location.assign") {
        let event = stream.expect_event(WAIT).await;
        scripts.push_str(&event.value("elements").unwrap_or_default());
    }
    let cookie_at = scripts
        .find("document.cookie = \"dstar_flash=")
        .unwrap_or_else(|| panic!("the cookie is set by a script: {scripts}"));
    assert!(
        cookie_at < scripts.find("location.assign").unwrap(),
        "{scripts}"
    );
}
