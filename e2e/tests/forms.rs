//! The forms example in a browser: errors next to their fields with what was typed kept, the
//! name checked as it is typed, and a flash on the list after saving.
#![cfg(feature = "browser")]

use std::time::Duration;

use dstar::App;
use dstar::security::{ContentSecurityPolicy, SecurityHeaders};
use dstar_e2e::{Browser, TestServer, datastar_js_route};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_form_with_errors_then_saved_with_a_flash() {
    let app = example_forms::app(App::builder().client_url("/datastar.js").security_headers(
        SecurityHeaders {
            content_security_policy: Some(ContentSecurityPolicy::strict()),
            ..SecurityHeaders::default()
        },
    ));
    let server = TestServer::start(example_forms::router(&app).merge(datastar_js_route()));
    let browser = Browser::start();
    let tab = browser.new_session();
    tab.goto(&server.url("/items/new"));

    tab.type_into("#quantity", "lots");
    tab.click("#save");
    tab.wait_for_text("#name-error", "is required", WAIT);
    tab.wait_for_text("#quantity-error", "must be a whole number", WAIT);
    // What was typed stays.
    assert_eq!(
        tab.eval("return document.querySelector('#quantity').value"),
        json!("lots")
    );

    // The name is checked as it is typed.
    tab.type_into("#name", "Pens");
    tab.wait_for_absent("#name-error", WAIT);
    tab.clear("#quantity");
    tab.type_into("#quantity", "12");
    tab.click("#save");
    tab.wait_for_url(&server.url("/items"), WAIT);
    tab.wait_for_text("#items", "12 × Pens", WAIT);
    tab.wait_for_text("#dstar-flash .dstar-flash", "Added 12 × Pens.", WAIT);

    // The same name again: the server's clash shows while typing.
    tab.goto(&server.url("/items/new"));
    assert_eq!(tab.count(".dstar-flash"), 0, "the flash showed once");
    tab.type_into("#name", "pens");
    tab.wait_for_text("#name-error", "is already taken", WAIT);
    tab.assert_no_console_errors();
}
