//! The page document: a rendered body wrapped in the root element and the layout, and the
//! patch that replaces the root's content later.

use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::error::Result;
use crate::page::Html;
use crate::protocol::{ROOT_ID, ROOT_SELECTOR};
use crate::route::Route;
use crate::security::Nonce;
use crate::sse::{Mode, PatchElements};

/// Wraps a page body in its root element and layout. `root_attributes` go on the root (a live
/// page's tokens and stream); `head` after the client's script tag, which carries `nonce`
/// (the layout gets it too, as `nonce`).
pub(crate) fn document(
    app: &App,
    route: &Route,
    title: Option<&str>,
    body: &Html,
    root_attributes: &str,
    head: &str,
    nonce: Nonce,
) -> Result<String> {
    let mut root = String::with_capacity(body.0.len() + 64);
    root.push_str("<div id=\"");
    root.push_str(ROOT_ID);
    root.push('"');
    root.push_str(root_attributes);
    root.push('>');
    root.push_str(&body.0);
    root.push_str("</div>");
    let nonce = nonce.to_string();
    let mut head_html = format!("<script type=\"module\" nonce=\"{nonce}\" src=\"");
    crate::sse::escape_html_into(&mut head_html, app.client_url());
    head_html.push_str("\"></script>");
    head_html.push_str(head);
    let layout = route.layout.unwrap_or(app.layout());
    let ctx = minijinja::context! {
        title => title.or(route.title).unwrap_or(route.name),
        head => minijinja::Value::from_safe_string(head_html),
        body => minijinja::Value::from_safe_string(root),
        nonce => nonce,
    };
    Ok(app.templates().render(layout, ctx)?)
}

/// The answer carrying a page's HTML, with the app's security headers for `nonce`.
pub(crate) fn html_response(app: &App, html: String, nonce: Nonce) -> Response {
    let mut response = axum::response::Html(html).into_response();
    app.security_headers().apply(response.headers_mut(), nonce);
    response
}

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
