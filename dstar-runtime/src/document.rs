//! The page document: a rendered body wrapped in the root element and the layout, the patch
//! that replaces the root's content later, and the error page a failed page request gets.

use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::error::{Error, Result};
use crate::page::Html;
use crate::route::Route;
use crate::security::Nonce;
use crate::sse::{Mode, PatchElements};

/// What goes into a page's document besides its route.
pub(crate) struct Shell<'a> {
    /// The title `mount` set, if any (else the route's, else the page's name).
    pub(crate) title: Option<&'a str>,
    /// The rendered page body.
    pub(crate) body: &'a Html,
    /// Attributes of the root element (a live page's tokens and stream).
    pub(crate) root_attributes: &'a str,
    /// HTML after the client's script tag in the head.
    pub(crate) head: &'a str,
    /// The nonce of dstar's scripts (the layout gets it too, as `nonce`).
    pub(crate) nonce: Nonce,
    /// The path the app is mounted under: the layout's helpers put app paths under it.
    pub(crate) prefix: &'a str,
    /// The page request, for the app's layout values.
    pub(crate) parts: &'a http::request::Parts,
    /// Flash messages to show (left by the handler that sent the browser here).
    pub(crate) flash: &'a [crate::flash::Flash],
}

/// Wraps a page body in its root element and layout.
pub(crate) fn document(app: &App, route: &Route, shell: Shell<'_>) -> Result<String> {
    let Shell {
        title,
        body,
        root_attributes,
        head,
        nonce,
        prefix,
        parts,
        flash,
    } = shell;
    let mut root = String::with_capacity(body.0.len() + 64);
    root.push_str("<div id=\"");
    root.push_str(app.root_id());
    root.push('"');
    root.push_str(root_attributes);
    root.push('>');
    root.push_str(&body.0);
    root.push_str("</div>");
    let nonce = nonce.to_string();
    let mut head_html = format!("<script type=\"module\" nonce=\"{nonce}\" src=\"");
    crate::sse::escape_html_into(&mut head_html, app.client_url());
    head_html.push_str("\"></script>");
    if cfg!(debug_assertions) {
        head_html.push_str(&crate::protocol::debug_client_script(
            &nonce,
            prefix,
            app.templates().generation(),
        ));
    }
    head_html.push_str(head);
    let layout = route.layout.unwrap_or(app.layout());
    let ctx = minijinja::context! {
        title => title.or(route.title).unwrap_or(route.name),
        head => minijinja::Value::from_safe_string(head_html),
        body => minijinja::Value::from_safe_string(root),
        nonce => nonce,
        dstar => minijinja::context! { prefix => prefix },
        app => app.layout_values(parts),
        flash => minijinja::Value::from_safe_string(crate::flash::region(flash)),
    };
    Ok(app.templates().render(layout, ctx)?)
}

/// The document title the layout gives a page whose own title is `title`, for soft navigation
/// to show what a full load of the page would: the layout's `<title>` rendered with the same
/// values as [`document`] (an empty body), its text taken out and unescaped. A layout with no
/// `<title>` leaves the page's own title.
pub(crate) fn layout_title(
    app: &App,
    route: &Route,
    title: Option<&str>,
    (prefix, parts): (&str, &http::request::Parts),
) -> Result<String> {
    let title = title.or(route.title).unwrap_or(route.name);
    let layout = route.layout.unwrap_or(app.layout());
    let ctx = minijinja::context! {
        title => title,
        head => minijinja::Value::from_safe_string(String::new()),
        body => minijinja::Value::from_safe_string(String::new()),
        nonce => "",
        dstar => minijinja::context! { prefix => prefix },
        app => app.layout_values(parts),
        flash => minijinja::Value::from_safe_string(String::new()),
    };
    let html = app.templates().render(layout, ctx)?;
    Ok(title_text(&html).unwrap_or_else(|| title.to_owned()))
}

/// The text of the first `<title>` element of `html`, with character references undone.
fn title_text(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    Some(crate::sse::unescape_html(html[start..end].trim()))
}

/// The answer carrying a page's HTML, with the app's security headers for `nonce`.
pub(crate) fn html_response(app: &App, html: String, nonce: Nonce) -> Response {
    let mut response = axum::response::Html(html).into_response();
    app.security_headers().apply(response.headers_mut(), nonce);
    response
}

/// The answer to a failed page `GET`: the app's error template (see
/// [`DEFAULT_ERROR_TEMPLATE`](crate::template::DEFAULT_ERROR_TEMPLATE)) with the error's
/// status. A redirect stays a `303`. A 500 shows its message, and a 5xx its causes, in debug
/// builds only.
/// When the error template itself fails, the answer is the error as plain text (the failure
/// is logged), so a broken template never hides the status or loops.
///
/// Only page loads get this: event, stream and navigation answers are read by the Datastar
/// client, never shown, and keep their plain forms.
pub(crate) fn error_page(app: &App, err: Error) -> Response {
    if err.location().is_some() {
        return err.into_response();
    }
    err.report();
    let status = err.status();
    // A 500's message may name internals: release builds keep it (and every 5xx's causes) in
    // the log. Other statuses, a 503 "too many sessions" included, are written for the reader.
    let debug = cfg!(debug_assertions);
    let message = if status == http::StatusCode::INTERNAL_SERVER_ERROR && !debug {
        GENERIC_SERVER_ERROR.to_owned()
    } else {
        err.message().to_owned()
    };
    let causes = if status.is_server_error() && debug {
        err.causes()
    } else {
        Vec::new()
    };
    let ctx = minijinja::context! {
        status => status.as_u16(),
        reason => status.canonical_reason().unwrap_or(""),
        message,
        causes,
    };
    match app.templates().render(app.error_template(), ctx) {
        // A page like any other: the app's security headers (its policy with a fresh nonce;
        // the error template gets none, so under a strict policy it runs no inline script).
        Ok(html) => {
            let mut response = html_response(app, html, Nonce::random());
            *response.status_mut() = status;
            response
        }
        Err(template) => {
            tracing::error!(
                template = app.error_template(),
                error = %crate::template::describe(&template),
                "the error page failed to render; answering in plain text"
            );
            err.plain_response()
        }
    }
}

/// What a release build's error page says of a 5xx: its details are only in the log.
const GENERIC_SERVER_ERROR: &str = "Something went wrong on our side. Please try again later.";

/// The patch that replaces the root's content (the app's root element) with a fresh render.
pub(crate) fn write_root_patch(app: &App, out: &mut Vec<u8>, body: &Html) {
    PatchElements::new(&body.0)
        .selector(app.root_selector())
        .mode(Mode::Inner)
        .write_to(out);
}

/// The request's path and query, as the page's URL.
pub(crate) fn path_and_query(parts: &http::request::Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_text_is_taken_out_and_unescaped() {
        assert_eq!(
            title_text(
                "<html><head><TITLE>Item &amp; co &#x27;3&#x27; &#x2f; &#47; · MyApp</TITLE>"
            )
            .as_deref(),
            Some("Item & co '3' / / · MyApp")
        );
        assert_eq!(title_text("<p>no title</p>"), None);
    }
}
