//! Stateless pages: a GET renders the page; an event POST mounts it again, runs the handler and
//! answers with a one-shot SSE response of the queued patches. Nothing is kept between requests.
//!
//! Events are `POST`s to the page's own URL with two headers, both written by the `event()`
//! template helper: `x-dstar-event` (the event name) and `x-dstar-token` (a signed CSRF token
//! issued with the page). A header rather than a signal, because a cross-site form or `fetch`
//! cannot set a custom header without a CORS preflight this server never grants, and because
//! signals are client state that scripts and other requests carry around.

use std::borrow::Cow;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::{Instrument, info_span};

use crate::app::App;
use crate::document::{
    Shell, document, error_page, html_response, path_and_query, write_root_patch,
};
use crate::error::{Error, Result};
use crate::page::{Ctx, Event, Mount, Page, PageData, Render, View, page_value};
use crate::protocol::{
    ARGS_NAME, EVENT_HEADER, EVENT_NAME, TOKEN_HEADER, TOKEN_NAME, header, mount_prefix,
};
use crate::response::Sse;
use crate::security::Nonce;
use crate::token::Purpose;

/// Registers stateless page `P` at its path: GET renders it and, only when the page has
/// events, POST runs one. A page without events leaves POST on its path to the app (its own
/// `POST /login` beside a `/login` page).
pub(crate) fn register<P: Page>(router: Router<()>, app: &App) -> Router<()> {
    let on_get = app.clone();
    let mut methods = get(move |req: Request| page::<P>(on_get.clone(), req));
    if !P::ROUTE.events.is_empty() {
        let on_post = app.clone();
        methods = methods.post(move |req: Request| event::<P>(on_post.clone(), req));
    }
    router.route(P::ROUTE.path, methods)
}

async fn page<P: Page>(app: App, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let span = info_span!("dstar.page", page = P::ROUTE.name);
    let result = render::<P>(&app, &parts).instrument(span.clone()).await;
    // The answer is logged in the request's span too (no await below).
    let _span = span.entered();
    match result {
        Ok((html, nonce, cookies)) => {
            crate::cookie::with_cookies(html_response(&app, html, nonce), cookies)
        }
        Err(err) => error_page(&app, err.under_prefix(mount_prefix(&parts))),
    }
}

/// The flash messages a page load shows (see `flash`), the cookie that carried them removed
/// with the answer.
pub(crate) fn take_flash(
    app: &App,
    parts: &http::request::Parts,
    set_cookies: &mut Vec<http::HeaderValue>,
) -> Vec<crate::flash::Flash> {
    let flash = crate::flash::from_cookies(&app.cookies(&parts.headers));
    if parts
        .headers
        .get(http::header::COOKIE)
        .is_some_and(|c| c.to_str().is_ok_and(|c| c.contains(crate::flash::COOKIE)))
        && let Ok(removal) = app.cookie_header(&crate::flash::removal())
    {
        set_cookies.push(removal);
    }
    flash
}

async fn render<P: Page>(
    app: &App,
    parts: &http::request::Parts,
) -> Result<(String, Nonce, Vec<http::HeaderValue>)> {
    let params = P::ROUTE.params(parts.uri.path());
    let mut mount = Mount::new(app, parts, &params, None);
    let page = P::mount(&mut mount).await?;
    let title = mount.title.take();
    let root_attributes = signals_attribute(&mount.signals);
    let token = app.keys().sign(Purpose::Csrf, 0, app.csrf_ttl());
    let prefix = mount_prefix(parts);
    // Events post to the page's own URL, as the browser sees it.
    let url = crate::protocol::under_prefix(prefix, &path_and_query(parts));
    let view = View {
        app,
        route: &P::ROUTE,
        page: page_value(url.into(), &token, false, prefix),
    };
    let body = page.render(&view)?;
    let nonce = Nonce::for_page_token(app.keys(), &token);
    let flash = take_flash(app, parts, &mut mount.set_cookies);
    let shell = Shell {
        title: title.as_deref(),
        body: &body,
        root_attributes: &root_attributes,
        head: "",
        nonce,
        prefix,
        parts,
        flash: &flash,
    };
    let html = document(app, &P::ROUTE, shell)?;
    Ok((html, nonce, mount.set_cookies))
}

/// The root's `data-signals` attribute holding a page's initial signals (`Mount::signal`), or
/// nothing when it has none.
fn signals_attribute(signals: &serde_json::Map<String, serde_json::Value>) -> String {
    if signals.is_empty() {
        return String::new();
    }
    let json = serde_json::to_string(signals).expect("a JSON map always serialises");
    let mut attribute = String::from(" data-signals=\"");
    crate::sse::escape_html_into(&mut attribute, &json);
    attribute.push('"');
    attribute
}

async fn event<P: Page>(app: App, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let span = info_span!(
        "dstar.event",
        page = P::ROUTE.name,
        event = header(&parts, &EVENT_NAME)
    );
    let result = run_event::<P>(&app, &parts, body)
        .instrument(span.clone())
        .await;
    // The answer is logged in the request's span too (no await below).
    let _span = span.entered();
    let mut response = match result {
        Ok((out, cookies)) => {
            let mut answer = Sse::once(out);
            if app.compress_streams() {
                answer = answer.encoding(crate::compress::negotiate(&parts.headers));
            }
            crate::cookie::with_cookies(answer.into_response(), cookies)
        }
        Err(err) => err.under_prefix(mount_prefix(&parts)).into_event_response(),
    };
    crate::security::no_store(response.headers_mut());
    response
}

async fn run_event<P: Page>(
    app: &App,
    parts: &http::request::Parts,
    body: Body,
) -> Result<(Vec<u8>, Vec<http::HeaderValue>)> {
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
    let raw = crate::signals::merge_args(raw, header(parts, &ARGS_NAME))?;
    // Malformed signals are refused even when the handler does not read them.
    crate::signals::parse::<serde::de::IgnoredAny>(&raw)?;

    let path = parts.uri.path();
    let params = P::ROUTE.params(path);
    let mut mount = Mount::new(app, parts, &params, None);
    let mut page = P::mount(&mut mount).await?;
    let prefix = mount_prefix(parts);
    let url = parts.uri.path_and_query().map_or(path, |pq| pq.as_str());
    // Only a mounted app pays for the joined URL.
    let url: Cow<'_, str> = if prefix.is_empty() {
        url.into()
    } else {
        crate::protocol::under_prefix(prefix, url).into()
    };
    let mut cx = Ctx::new(
        app,
        &P::ROUTE,
        prefix,
        PageData::Stateless {
            url: &url,
            token,
            prefix,
        },
    );
    cx.request = Some(&parts.headers);
    cx.nonce = Some(Nonce::for_page_token(app.keys(), token));
    let started = std::time::Instant::now();
    let result = page.event(&mut cx, Event::new(name, &raw)).await;
    let result = result.and_then(|()| {
        if cx.render == Render::Always {
            let body = page.render(&cx.view())?;
            write_root_patch(app, &mut cx.out, &body);
        }
        Ok(())
    });
    let status = result.as_ref().err().map(Error::status);
    crate::metrics::event_handled(P::ROUTE.name, status, started.elapsed());
    result?;
    if !cx.flashes.is_empty() {
        if cx.redirected {
            // The redirect is in the body; the cookie in the headers, applied first.
            let cookie = app.cookie_header(&crate::flash::cookie(&cx.flashes))?;
            cx.set_cookies.push(cookie);
        } else {
            crate::flash::write_patch(&mut cx.out, &cx.flashes);
        }
    }
    Ok((cx.out, cx.set_cookies))
}
