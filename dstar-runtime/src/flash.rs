//! Flash messages: a line for the person ("Saved", "Signed out") that a handler leaves with
//! `Ctx::flash` and the page shows once.
//!
//! - A handler that **sends the browser elsewhere** (`cx.redirect`, `Error::redirect`, a
//!   session ended with `SessionEnd::Navigate`) leaves its messages in a signed cookie,
//!   `dstar_flash`: the next page load shows them and removes the cookie. A stateless answer
//!   sets the cookie in its headers; a live page, whose redirect goes down the stream while
//!   the event's answer travels on its own, sets it with a script just before the redirect
//!   runs, so the next load always finds it.
//! - A handler that **stays** shows them at once: they are appended to the flash region over
//!   its answer (stateless) or its stream (live).
//!
//! The layout shows them where it writes `{{ flash }}`: a `<div id="dstar-flash">` holding
//! one `<p class="dstar-flash" data-kind="..." role="status">` per message (the built-in
//! layout puts it first in `<body>`). The look is the app's: style `.dstar-flash` and its
//! `data-kind` (`info`, `error`, whatever the handler named).

use serde::{Deserialize, Serialize};

use crate::cookie::{Cookie, Cookies};
use crate::sse::{Mode, PatchElements, escape_html_into};

/// The cookie carrying messages across a redirect.
pub const COOKIE: &str = "dstar_flash";
/// The id of the element the layout's `{{ flash }}` writes.
pub const REGION_ID: &str = "dstar-flash";

/// One flash message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// What kind of message it is (`info`, `error`, ...): the `data-kind` it is shown with.
    pub kind: String,
    /// The text.
    pub message: String,
}

/// The messages a request's `dstar_flash` cookie carries (none when absent or tampered with).
pub(crate) fn from_cookies(cookies: &Cookies<'_>) -> Vec<Flash> {
    cookies
        .signed(COOKIE)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// The cookie carrying `messages` to the next page load: signed, short-lived, readable by the
/// live client's script (it sets it before a redirect).
pub(crate) fn cookie(messages: &[Flash]) -> Cookie {
    let json = serde_json::to_string(messages).expect("flash messages always serialise");
    Cookie::new(COOKIE, json)
        .signed()
        .http_only(false)
        .max_age(std::time::Duration::from_secs(120))
}

/// Removes the cookie once its messages are shown.
pub(crate) fn removal() -> Cookie {
    Cookie::removal(COOKIE).http_only(false)
}

/// The messages as the layout shows them: the region with one paragraph each.
pub(crate) fn region(messages: &[Flash]) -> String {
    let mut html = format!("<div id=\"{REGION_ID}\">");
    html.push_str(&paragraphs(messages));
    html.push_str("</div>");
    html
}

/// The patch appending `messages` to the page's flash region.
pub(crate) fn write_patch(out: &mut Vec<u8>, messages: &[Flash]) {
    PatchElements::new(&paragraphs(messages))
        .selector(&format!("#{REGION_ID}"))
        .mode(Mode::Append)
        .write_to(out);
}

fn paragraphs(messages: &[Flash]) -> String {
    let mut html = String::new();
    for flash in messages {
        html.push_str("<p class=\"dstar-flash\" data-kind=\"");
        escape_html_into(&mut html, &flash.kind);
        html.push_str("\" role=\"status\">");
        escape_html_into(&mut html, &flash.message);
        html.push_str("</p>");
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_escaped_in_the_region() {
        let messages = [Flash {
            kind: "a\"b".into(),
            message: "<b>saved</b> & done".into(),
        }];
        assert_eq!(
            region(&messages),
            "<div id=\"dstar-flash\"><p class=\"dstar-flash\" data-kind=\"a&quot;b\" role=\"status\">&lt;b&gt;saved&lt;/b&gt; &amp; done</p></div>"
        );
    }
}
