//! What a developer sees of a failing request in a debug build: the console names the page,
//! the event and the server's message, and a server error also shows on the page.
#![cfg(feature = "browser")]

use std::time::Duration;

use dstar::{App, Ctx, Error, Html, Mount, View};
use dstar_e2e::{Browser, Tab, TestServer, datastar_js_route};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

#[derive(serde::Deserialize)]
struct Count {
    #[allow(dead_code)]
    count: i64,
}

/// A stateless page whose events fail in each way a developer meets first.
struct Broken;

#[dstar::page("/broken")]
impl Broken {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Broken)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            concat!(
                r#"<div data-signals:count="'many'"></div>"#,
                r#"<button id="fail" data-on:click="{{ event('fail') }}">fail</button>"#,
                r#"<button id="typed" data-on:click="{{ event('typed') }}">typed</button>"#,
                // Not a literal name: the start-up check leaves it alone, the server refuses it.
                r#"{% set name = 'missing' %}"#,
                r#"<button id="unknown" data-on:click="{{ event(name) }}">unknown</button>"#,
            ),
            (),
        )
    }

    #[event]
    async fn fail(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
        Err(Error::internal("the database is down"))
    }

    #[event]
    async fn typed(&mut self, _cx: &mut Ctx<'_>, _signals: Count) -> dstar::Result<()> {
        Ok(())
    }
}

/// Waits until a console error contains every one of `needles`, and returns it.
fn wait_for_console_error(tab: &Tab, needles: &[&str]) -> String {
    let mut found = None;
    dstar_e2e::wait_for(&format!("a console error with {needles:?}"), WAIT, || {
        found = tab
            .console_errors()
            .into_iter()
            .map(|entry| entry.message)
            .find(|message| needles.iter().all(|needle| message.contains(needle)));
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn failed_events_are_reported_in_the_console_with_the_page_the_event_and_the_message() {
    let app = App::builder().client_url("/datastar.js").build().unwrap();
    let server = TestServer::start(
        dstar::router![Broken]
            .into_router(app)
            .merge(datastar_js_route()),
    );
    let browser = Browser::start();
    let tab = browser.new_session();
    tab.goto(&server.url("/broken"));

    tab.click("#typed");
    wait_for_console_error(&tab, &["event `typed` of /broken", "422", "count"]);
    tab.click("#unknown");
    wait_for_console_error(&tab, &["event `missing` of /broken", "404"]);
    assert_eq!(
        tab.count("#dstar-error"),
        0,
        "only a server error shows on the page"
    );

    tab.click("#fail");
    wait_for_console_error(
        &tab,
        &["event `fail` of /broken", "500", "the database is down"],
    );
    tab.wait_for_text_contains("#dstar-error", "the database is down", WAIT);
    assert_eq!(
        tab.eval("return document.getElementById('dstar-error').getAttribute('role')"),
        json!("alert")
    );
    // Dismissed with a click.
    tab.click("#dstar-error");
    tab.wait_for_absent("#dstar-error", WAIT);
}
