//! The page document: a rendered body wrapped in the root element and the layout, the patch
//! that replaces the root's content later, and the error page a failed page request gets.

use axum::response::{Html as HtmlResponse, IntoResponse, Response};

use crate::app::App;
use crate::error::{Error, Result};
use crate::page::Html;
use crate::protocol::{ROOT_ID, ROOT_SELECTOR};
use crate::route::Route;
use crate::sse::{Mode, PatchElements};

/// Wraps a page body in its root element and layout. `root_attributes` go on the root (a live
/// page's tokens and stream); `head` after the client's script tag.
pub(crate) fn document(
    app: &App,
    route: &Route,
    title: Option<&str>,
    body: &Html,
    root_attributes: &str,
    head: &str,
) -> Result<String> {
    let mut root = String::with_capacity(body.0.len() + 64);
    root.push_str("<div id=\"");
    root.push_str(ROOT_ID);
    root.push('"');
    root.push_str(root_attributes);
    root.push('>');
    root.push_str(&body.0);
    root.push_str("</div>");
    let mut head_html = String::from("<script type=\"module\" src=\"");
    crate::sse::escape_html_into(&mut head_html, app.client_url());
    head_html.push_str("\"></script>");
    head_html.push_str(head);
    let layout = route.layout.unwrap_or(app.layout());
    let ctx = minijinja::context! {
        title => title.or(route.title).unwrap_or(route.name),
        head => minijinja::Value::from_safe_string(head_html),
        body => minijinja::Value::from_safe_string(root),
    };
    Ok(app.templates().render(layout, ctx)?)
}

/// The answer to a failed page `GET`: the app's error template (see
/// [`DEFAULT_ERROR_TEMPLATE`](crate::template::DEFAULT_ERROR_TEMPLATE)) with the error's
/// status. A redirect stays a `303`. A 5xx shows its message and causes in debug builds only.
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
    let (message, causes) = if !status.is_server_error() {
        (err.message().to_owned(), Vec::new())
    } else if cfg!(debug_assertions) {
        (err.message().to_owned(), err.causes())
    } else {
        (GENERIC_SERVER_ERROR.to_owned(), Vec::new())
    };
    let ctx = minijinja::context! {
        status => status.as_u16(),
        reason => status.canonical_reason().unwrap_or(""),
        message,
        causes,
    };
    match app.templates().render(app.error_template(), ctx) {
        Ok(html) => (status, HtmlResponse(html)).into_response(),
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

/// The patch that replaces the root's content with a fresh render.
pub(crate) fn write_root_patch(out: &mut Vec<u8>, body: &Html) {
    PatchElements::new(&body.0)
        .selector(ROOT_SELECTOR)
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
