//! The HTTP side of live pages: the page GET that starts a session, the stream endpoint a page
//! opens, and the event endpoint its actions post to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::Request;
use axum::response::{Html as HtmlResponse, IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::StatusCode;
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{Instrument, Span, info_span};

use super::handle::{Attach, Command, EventCommand, Mailbox, short_id};
use super::queue::StreamQueue;
use super::stream::LiveBody;
use super::task::Session;
use super::tokens::{nav_token, token_signals};
use crate::app::App;
use crate::compress::Encoder;
use crate::document::{document, error_page, html_response, path_and_query};
use crate::error::{Error, Result};
use crate::page::{Mount, Page, View, live_page_value};
use crate::protocol::{
    ARGS_NAME, EVENT_HEADER, EVENT_NAME, EVENT_PATH, LAST_EVENT_ID_NAME, RELOAD_SCRIPT,
    STREAM_PATH, TOKEN_HEADER, TOKEN_NAME, header,
};
use crate::response::Sse;
use crate::security::Nonce;
use crate::sse::ExecuteScript;
use crate::token::Purpose;

/// Registers live page `P` at its path: a GET starts a session. Events go to the session's
/// own endpoint, never to the page URL, so every other method on the path is the app's.
pub(crate) fn register_page<P: Page>(router: Router<()>, app: &App) -> Router<()> {
    let app = app.clone();
    router.route(
        P::ROUTE.path,
        get(move |req: Request| page::<P>(app.clone(), req)),
    )
}

/// Registers the stream and event endpoints every live page uses.
pub(crate) fn register_endpoints(router: Router<()>, app: &App) -> Router<()> {
    let on_stream = app.clone();
    let on_event = app.clone();
    router
        .route(
            STREAM_PATH,
            post(move |req: Request| stream(on_stream.clone(), req)),
        )
        .route(
            EVENT_PATH,
            post(move |req: Request| event(on_event.clone(), req)),
        )
}

async fn page<P: Page>(app: App, req: Request) -> Response {
    if req.method() == http::Method::HEAD {
        // A HEAD (link checkers, monitors) must not start a session nobody will use.
        let mut response = HtmlResponse("").into_response();
        crate::security::no_store(response.headers_mut());
        return response;
    }
    let (parts, _body) = req.into_parts();
    let span = info_span!(
        "dstar.page",
        page = P::ROUTE.name,
        session = tracing::field::Empty
    );
    let result = start::<P>(&app, &parts).instrument(span.clone()).await;
    // The answer is logged in the request's span too (no await below).
    let _span = span.entered();
    match result {
        Ok((html, nonce)) => html_response(&app, html, nonce),
        Err(err) => error_page(&app, err),
    }
}

/// Mounts and renders page `P` and spawns its session task.
async fn start<P: Page>(app: &App, parts: &http::request::Parts) -> Result<(String, Nonce)> {
    let registry = app.sessions();
    let mailbox = Arc::new(Mailbox::new(registry.config().mailbox));
    let reservation = registry.reserve(mailbox.clone()).ok_or_else(|| {
        Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live sessions; try again later",
        )
    })?;
    let handle = reservation.handle().clone();
    let id = handle.id();
    Span::current().record("session", tracing::field::display(short_id(id)));
    let params = P::ROUTE.params(parts.uri.path());
    let mut mount = Mount::new(app, parts, &params, Some(handle.clone()));
    let page = P::mount(&mut mount).await?;
    let mut subscriptions = std::mem::take(&mut mount.subscriptions);
    // Kept for the session's life: without spare capacity (a first push reserves four).
    subscriptions.shrink_to_fit();
    let title = mount.title.take();
    let url = path_and_query(parts);
    let view = View {
        app,
        route: &P::ROUTE,
        page: live_page_value(&url),
    };
    let body = page.render(&view)?;
    let nonce = Nonce::for_session(app.keys(), id);
    let html = document(
        app,
        &P::ROUTE,
        title.as_deref(),
        &body,
        &root_attributes(app, id),
        &crate::protocol::navigation_client_script(&nav_token(app, id), &nonce.to_string()),
        nonce,
    )?;
    for topic in &subscriptions {
        app.pubsub().subscribe(topic, handle.clone());
    }
    // The session outlives this request: its span is a root that points back at it.
    let span =
        info_span!(parent: None, "dstar.session", page = P::ROUTE.name, session = %short_id(id));
    span.follows_from(Span::current());
    let session = Session::new(app, id, Box::new(page), mailbox, subscriptions, url, span);
    reservation.keep();
    registry.task_started();
    tokio::spawn(session.run());
    Ok((html, nonce))
}

/// The attributes of a live page's root: its token signals and the stream it opens.
fn root_attributes(app: &App, id: u128) -> String {
    let signals = token_signals(app, id);
    let stream = crate::protocol::stream_action();
    let mut attributes = String::from(" data-signals=\"");
    crate::sse::escape_html_into(&mut attributes, &signals);
    attributes.push_str("\" data-init=\"");
    crate::sse::escape_html_into(&mut attributes, &stream);
    attributes.push('"');
    attributes
}

/// Tells streams apart, so a late drop of a replaced stream is not taken for the current one.
static GENERATION: AtomicU64 = AtomicU64::new(1);

async fn stream(app: App, req: Request) -> Response {
    let version = req.version();
    let (parts, _body) = req.into_parts();
    let claims = match app
        .keys()
        .verify(header(&parts, &TOKEN_NAME), Purpose::Stream)
    {
        Ok(claims) => claims,
        Err(err) => {
            let mut response =
                (StatusCode::UNAUTHORIZED, format!("stream refused: {err}")).into_response();
            crate::security::no_store(response.headers_mut());
            return response;
        }
    };
    let last_event_id = header(&parts, &LAST_EVENT_ID_NAME)
        .trim()
        .parse::<u64>()
        .ok();
    // No await below: the guard never crosses one.
    let _span = info_span!("dstar.stream", session = %short_id(claims.session)).entered();
    let Some(handle) = app.sessions().handle(claims.session) else {
        tracing::debug!("stream for a session that is gone: reload");
        return gone(version);
    };
    tracing::debug!(last_event_id, "stream attached");
    let queue = Arc::new(StreamQueue::new());
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    let attached = handle.push_control(Command::Attach(Box::new(Attach {
        queue: queue.clone(),
        generation,
        last_event_id,
    })));
    if !attached {
        return gone(version);
    }
    let encoding = app
        .compress_streams()
        .then(|| crate::compress::negotiate(&parts.headers));
    let heartbeat = app.sessions().config().heartbeat;
    let mut interval = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    crate::metrics::open_streams(1.0);
    let body = LiveBody {
        queue,
        mailbox: handle.mailbox().clone(),
        generation,
        heartbeat: interval,
        abort_after: None,
        encoder: encoding.flatten().map(Encoder::new),
        finished: false,
    };
    let mut response = Sse::once(Bytes::new()).version(version);
    if let Some(encoding) = encoding {
        // Only the headers: the body below is the stream, compressed by `LiveBody`.
        response = response.encoding(encoding);
    }
    let mut response = response.into_response();
    *response.body_mut() = axum::body::Body::new(body);
    response
}

/// The answer to a stream for a session that no longer exists: reload the page.
fn gone(version: http::Version) -> Response {
    let mut out = Vec::new();
    ExecuteScript::new(RELOAD_SCRIPT).write_to(&mut out);
    Sse::once(out).version(version).into_response()
}

async fn event(app: App, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let version = parts.version;
    let span = info_span!(
        "dstar.event",
        event = header(&parts, &EVENT_NAME),
        session = tracing::field::Empty
    );
    let result = send_event(&app, &parts, body)
        .instrument(span.clone())
        .await;
    // The answer is logged in the request's span too (no await below).
    let _span = span.entered();
    let mut response = match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => err.into_event_response(version),
    };
    crate::security::no_store(response.headers_mut());
    response
}

async fn send_event(app: &App, parts: &http::request::Parts, body: axum::body::Body) -> Result<()> {
    let claims = app
        .keys()
        .verify(header(parts, &TOKEN_NAME), Purpose::Csrf)
        .map_err(|err| {
            Error::forbidden(format!(
                "event refused: {err} (the `{TOKEN_HEADER}` header must carry the page's token)"
            ))
        })?;
    Span::current().record("session", tracing::field::display(short_id(claims.session)));
    let name = header(parts, &EVENT_NAME);
    if name.is_empty() {
        return Err(Error::bad_request(format!(
            "event refused: no `{EVENT_HEADER}` header"
        )));
    }
    let raw = crate::signals::read_raw_parts(parts, body).await?;
    let raw = crate::signals::merge_args(raw, header(parts, &ARGS_NAME))?;
    crate::signals::parse::<serde::de::IgnoredAny>(&raw)?;
    let handle = app
        .sessions()
        .handle(claims.session)
        .ok_or_else(|| Error::new(StatusCode::GONE, "the session has ended; reload the page"))?;
    let (reply, answer) = oneshot::channel();
    let command = Command::Event(Box::new(EventCommand {
        name: name.to_owned(),
        signals: raw,
        reply,
        request: Span::current(),
    }));
    if handle.push(command).is_err() {
        return Err(Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the session is busy; try again",
        ));
    }
    match answer.await {
        Ok(result) => result,
        Err(_) => Err(Error::internal(
            "the session ended while handling the event",
        )),
    }
}
