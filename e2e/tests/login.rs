//! The login example in one browser profile: two windows signed in as the same user, and a
//! logout in one that ends the other's session too.
#![cfg(feature = "browser")]

use std::time::Duration;

use dstar::App;
use dstar::security::{ContentSecurityPolicy, SecurityHeaders};
use dstar_e2e::{Browser, Kind, TestServer, datastar_js_route};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn logging_out_in_one_window_ends_the_other_windows_session() {
    let app = example_login::app(App::builder().client_url("/datastar.js").security_headers(
        SecurityHeaders {
            content_security_policy: Some(ContentSecurityPolicy::strict()),
            ..SecurityHeaders::default()
        },
    ));
    let server = TestServer::start(example_login::router(&app).merge(datastar_js_route()));
    let browser = Browser::start();
    let tab = browser.new_session();

    // Not signed in: the account page sends the visitor to log in.
    tab.goto(&server.url("/account"));
    tab.wait_for_url(&server.url("/login"), WAIT);
    tab.type_into("#name", "alice");
    tab.click("#sign-in");
    tab.wait_for_url(&server.url("/account"), WAIT);
    tab.wait_for_text("#user", "alice", WAIT);
    // The flash the sign-in left shows after the redirect, once.
    tab.wait_for_text("#dstar-flash .dstar-flash", "Welcome, alice.", WAIT);
    let first = tab.window_handle();

    // A second window of the same browser shares the cookie.
    let second = tab.new_window(Kind::Window);
    tab.goto(&server.url("/account"));
    tab.wait_for_text("#user", "alice", WAIT);
    assert_eq!(tab.count(".dstar-flash"), 0, "shown once");
    tab.click("#click");
    tab.wait_for_text("#clicks", "1", WAIT);

    tab.switch_to(&first);
    tab.click("#logout");
    tab.wait_for_url(&server.url("/login"), WAIT);
    tab.switch_to(&second);
    tab.wait_for_url(&server.url("/login"), WAIT);
    // The cookie is gone: the account page is closed to both.
    tab.goto(&server.url("/account"));
    tab.wait_for_url(&server.url("/login"), WAIT);
    tab.assert_no_console_errors();
}
