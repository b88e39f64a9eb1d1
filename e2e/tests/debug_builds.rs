//! What a developer gets from a debug build (the tests are one): a failing request reported in
//! the console with the page, the event and the server's message (a server error on the page
//! too), and open tabs that follow template edits.
#![cfg(feature = "browser")]

use std::path::Path;
use std::time::{Duration, SystemTime};

use dstar::{App, Ctx, Error, Html, Mount, Templates, View};
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

/// A live page and a stateless one, both from the template directory the test edits.
struct LiveNote {
    clicks: i64,
}

#[dstar::page("/live", live, template = "note.html")]
impl LiveNote {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(LiveNote { clicks: 0 })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(json!({ "clicks": self.clicks }))
    }

    #[event]
    async fn click(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
        self.clicks += 1;
        Ok(())
    }
}

struct StillNote;

#[dstar::page("/still", template = "note.html")]
impl StillNote {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(StillNote)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(json!({ "clicks": 0 }))
    }

    #[event]
    async fn click(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
        Ok(())
    }
}

/// Writes `note.html` in `dir`, dated `age` before now (distinct times whatever the file
/// system's clock granularity).
fn write_note(dir: &Path, words: &str, age: Duration) {
    let path = dir.join("note.html");
    let source = format!(
        r#"<p id="note">{words} {{{{ clicks }}}}</p><button id="click" data-on:click="{{{{ event('click') }}}}">+1</button>"#
    );
    std::fs::write(&path, source).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn open_tabs_follow_template_edits_live_ones_keeping_their_state() {
    let dir = std::env::temp_dir().join(format!("dstar-e2e-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_note(&dir, "before", Duration::from_secs(60));
    let app = App::builder()
        .client_url("/datastar.js")
        .templates(Templates::dir(&dir))
        .build()
        .unwrap();
    let server = TestServer::start(
        dstar::router![LiveNote, StillNote]
            .into_router(app)
            .merge(datastar_js_route()),
    );
    let browser = Browser::start();
    let live = browser.new_session();
    live.goto(&server.url("/live"));
    live.click("#click");
    live.wait_for_text("#note", "before 1", WAIT);
    live.eval("window.__marker = 7");
    let still = browser.new_session();
    still.goto(&server.url("/still"));
    still.eval("window.__marker = 7");

    write_note(&dir, "after", Duration::from_secs(30));
    // The live tab renders again in place, its state kept; the stateless one reloads.
    live.wait_for_text("#note", "after 1", WAIT);
    assert_eq!(live.eval("return window.__marker ?? null"), json!(7));
    still.wait_for_text("#note", "after 0", WAIT);
    assert_eq!(still.eval("return window.__marker ?? null"), json!(null));
    live.assert_no_console_errors();
    still.assert_no_console_errors();
    let _ = std::fs::remove_dir_all(&dir);
}
