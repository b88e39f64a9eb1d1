//! Stateless pages: a GET renders the page; an event POST mounts it again, runs the handler and
//! answers with a one-shot SSE response of the queued patches. Nothing is kept between requests.
//!
//! Events are `POST`s to the page's own URL with two headers, both written by the `event()`
//! template helper: `x-dstar-event` (the event name) and `x-dstar-token` (a signed CSRF token
//! issued with the page). A header rather than a signal, because a cross-site form or `fetch`
//! cannot set a custom header without a CORS preflight this server never grants, and because
//! signals are client state that scripts and other requests carry around.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{Html as HtmlResponse, IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;

use crate::app::App;
use crate::error::{Error, Result};
use crate::page::{
    Ctx, Event, Html, Mount, Page, PageData, ROOT_ID, Render, Route, View, page_value,
};
use crate::response::Sse;
use crate::sse::{ExecuteScript, Mode, PatchElements};
use crate::token::Purpose;

/// Header naming the event.
pub const EVENT_HEADER: &str = "x-dstar-event";
/// Header carrying the signed token.
pub const TOKEN_HEADER: &str = "x-dstar-token";
/// Header carrying extra event arguments (a JSON object merged into the signals).
pub const ARGS_HEADER: &str = "x-dstar-args";

// The same names parsed once: looking a header up by `&str` parses the name every time.
pub(crate) static EVENT_NAME: http::HeaderName = http::HeaderName::from_static(EVENT_HEADER);
pub(crate) static TOKEN_NAME: http::HeaderName = http::HeaderName::from_static(TOKEN_HEADER);
static ARGS_NAME: http::HeaderName = http::HeaderName::from_static(ARGS_HEADER);

pub(crate) async fn get<P: Page>(app: App, req: Request) -> Response {
    if P::ROUTE.live {
        if req.method() == http::Method::HEAD {
            // A HEAD (link checkers, monitors) must not start a session nobody will use.
            return HtmlResponse("").into_response();
        }
        return crate::session::get::<P>(app, req).await;
    }
    let (parts, _body) = req.into_parts();
    match render_stateless::<P>(&app, &parts).await {
        Ok(html) => HtmlResponse(html).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn render_stateless<P: Page>(app: &App, parts: &http::request::Parts) -> Result<String> {
    let params = route_params(&P::ROUTE, parts.uri.path());
    let mut mount = Mount::new(app, parts, &params, None);
    let page = P::mount(&mut mount).await?;
    let title = mount.title.take();
    let token = app.keys().sign(Purpose::Csrf, 0, app.csrf_ttl());
    let url = path_and_query(parts);
    let view = View {
        app,
        route: &P::ROUTE,
        page: page_value(url.into(), &token, false),
    };
    let body = page.render(&view)?;
    document(app, &P::ROUTE, title.as_deref(), &body, "", "")
}

pub(crate) fn path_and_query(parts: &http::request::Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// Wraps a page body in its root element and layout.
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

/// The patch that replaces the root's content with a fresh render.
pub(crate) fn write_root_patch(out: &mut Vec<u8>, body: &Html) {
    PatchElements::new(&body.0)
        .selector(concat!("#", "dstar-root"))
        .mode(Mode::Inner)
        .write_to(out);
}

pub(crate) async fn event<P: Page>(app: App, req: Request) -> Response {
    if P::ROUTE.live {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "live pages take events on their session, not on the page URL",
        )
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let version = parts.version;
    match run_event::<P>(&app, &parts, body).await {
        Ok(out) => Sse::once(out).version(version).into_response(),
        Err(err) => error_response(err, version),
    }
}

/// An error answering an event: a redirect becomes a script the client runs (an SSE client
/// does not follow a 303 to a page); anything else is its status and message.
pub(crate) fn error_response(err: Error, version: http::Version) -> Response {
    if let Some(location) = err.location() {
        let mut out = Vec::new();
        ExecuteScript::new(&crate::sse::redirect_script(location)).write_to(&mut out);
        return Sse::once(out).version(version).into_response();
    }
    err.into_response()
}

async fn run_event<P: Page>(
    app: &App,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Vec<u8>> {
    let token = header(parts, &TOKEN_NAME);
    app.keys().verify(token, Purpose::Csrf).map_err(|err| {
        Error::forbidden(format!("event refused: {err} (the `{TOKEN_HEADER}` header must carry the token issued with the page)"))
    })?;
    let name = header(parts, &EVENT_NAME);
    if name.is_empty() {
        return Err(Error::bad_request(format!(
            "event refused: no `{EVENT_HEADER}` header"
        )));
    }
    if !P::ROUTE.events.contains(&name) {
        return Err(Event::new(name, b"").unknown());
    }
    let raw = crate::signals::read_raw_parts(parts, body).await?;
    let raw = merge_args(raw, parts)?;
    // Malformed signals are refused even when the handler does not read them.
    crate::signals::parse::<serde::de::IgnoredAny>(&raw)?;

    let path = parts.uri.path();
    let params = route_params(&P::ROUTE, path);
    let mut mount = Mount::new(app, parts, &params, None);
    let mut page = P::mount(&mut mount).await?;
    let url = parts.uri.path_and_query().map_or(path, |pq| pq.as_str());
    let mut cx = Ctx::new(app, &P::ROUTE, PageData::Stateless { url, token });
    page.event(&mut cx, Event::new(name, &raw)).await?;
    if cx.render == Render::Always {
        let body = page.render(&cx.view())?;
        write_root_patch(&mut cx.out, &body);
    }
    Ok(cx.out)
}

/// A request header as text (empty when missing or not visible ASCII).
pub(crate) fn header<'p>(parts: &'p http::request::Parts, name: &http::HeaderName) -> &'p str {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The path parameters of a request to `route` (none, without matching, for a path with no
/// `{param}`).
pub(crate) fn route_params(route: &'static Route, path: &str) -> Vec<(&'static str, String)> {
    if route.path.contains('{') {
        crate::router::match_path(route.path, path).unwrap_or_default()
    } else {
        Vec::new()
    }
}

/// Merges the `x-dstar-args` object (from `event("name", {...})`) into the signals.
pub(crate) fn merge_args(raw: Bytes, parts: &http::request::Parts) -> Result<Bytes> {
    let args = header(parts, &ARGS_NAME);
    if args.is_empty() {
        return Ok(raw);
    }
    let args: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(args).map_err(|err| {
            Error::bad_request(format!("`{ARGS_HEADER}` must be a JSON object: {err}"))
        })?;
    let mut signals: serde_json::Map<String, serde_json::Value> = crate::signals::parse(&raw)?;
    signals.extend(args);
    Ok(Bytes::from(serde_json::to_vec(&signals)?))
}
