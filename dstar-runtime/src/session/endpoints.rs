//! The HTTP side of live pages: the page GET that starts a session, the stream endpoint a page
//! opens, and the event endpoint its actions post to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{Html as HtmlResponse, IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::StatusCode;
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{Instrument, Span, info_span};

use super::handle::{
    Attach, Command, EventCommand, Mailbox, SessionHandle, Unavailable, session_ended,
    session_unavailable, short_id,
};
use super::outcomes::{Begin, MAX_CLICK_LEN};
use super::page::{LivePage, LiveTarget};
use super::queue::{End, StreamQueue};
use super::stream::LiveBody;
use super::task::{Session, final_script};
use super::tokens::{nav_token, token_signals_with};
use crate::app::App;
use crate::compress::Encoder;
use crate::document::{Shell, document, error_page, html_response, path_and_query};
use crate::error::{Error, Result};
use crate::page::{Mount, Page, SessionEnd, View, live_page_value};
use crate::protocol::{
    ARGS_NAME, CLICK_HEADER, CLICK_NAME, EVENT_HEADER, EVENT_NAME, EVENT_PATH, LAST_EVENT_ID_NAME,
    PAUSE_PATH, STREAM_PATH, TOKEN_HEADER, TOKEN_NAME, header, mount_prefix,
};
use crate::response::Sse;
use crate::route::Route;
use crate::security::Nonce;
use crate::sse::ExecuteScript;
use crate::token::{Purpose, TokenError};

/// Registers live page `P` at its path: a GET starts a session. Events go to the session's
/// own endpoint, never to the page URL, so every other method on the path is the app's.
pub(crate) fn register_page<P: Page>(router: Router<()>, app: &App) -> Router<()> {
    let app = app.clone();
    router.route(
        P::ROUTE.path,
        get(move |req: Request| page::<P>(app.clone(), req)),
    )
}

/// Registers the stream and event endpoints every live page uses. `resolve` finds the live
/// page serving a path in the route table (which the router above owns), for re-mounting.
pub(crate) fn register_endpoints(
    router: Router<()>,
    app: &App,
    resolve: impl Fn(&str) -> Option<LiveTarget> + Clone + Send + Sync + 'static,
) -> Router<()> {
    let on_stream = app.clone();
    let on_event = app.clone();
    let on_pause = app.clone();
    router
        .route(
            STREAM_PATH,
            post(move |req: Request| stream(on_stream.clone(), resolve.clone(), req)),
        )
        .route(
            PAUSE_PATH,
            post(move |req: Request| pause(on_pause.clone(), req)),
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
        Ok((html, nonce, cookies)) => {
            crate::cookie::with_cookies(html_response(&app, html, nonce), cookies)
        }
        Err(err) => error_page(&app, err.under_prefix(mount_prefix(&parts))),
    }
}

/// Mounts and renders page `P` and spawns its session task.
async fn start<P: Page>(
    app: &App,
    parts: &http::request::Parts,
) -> Result<(String, Nonce, Vec<http::HeaderValue>)> {
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
    let signals = std::mem::take(&mut mount.signals);
    let prefix = mount_prefix(parts);
    crate::error::check_mount_prefix(prefix)?;
    // The page's URL as the browser sees it: what history entries and `dstar.url` show.
    let url = crate::protocol::under_prefix(prefix, &path_and_query(parts));
    let view = View {
        app,
        route: &P::ROUTE,
        page: live_page_value(&url, prefix),
    };
    let body = page.render(&view)?;
    let nonce = Nonce::for_session(app.keys(), id);
    let flash = crate::stateless::take_flash(app, parts, &mut mount.set_cookies);
    let shell = Shell {
        title: title.as_deref(),
        body: &body,
        root_attributes: &root_attributes(app, &P::ROUTE, id, prefix, signals),
        head: &crate::protocol::navigation_client_script(
            prefix,
            &nav_token(app, id),
            &nonce.to_string(),
        ),
        nonce,
        prefix,
        parts,
        flash: &flash,
    };
    let html = document(app, &P::ROUTE, shell)?;
    let session = new_session(
        app,
        &handle,
        &P::ROUTE,
        Box::new(page),
        subscriptions,
        (url, prefix.len()),
    );
    registry.tag(&handle, std::mem::take(&mut mount.tags));
    app.presence()
        .track(&handle, std::mem::take(&mut mount.tracked));
    reservation.keep();
    registry.task_started();
    tokio::spawn(session.run());
    Ok((html, nonce, mount.set_cookies))
}

/// A session task for `page` at `url` (as the browser sees it, its first `prefix_len` bytes the
/// mount prefix), subscribed to its topics, with its span: a root that points back at the
/// request that made it, since the session outlives that request. The span is at `debug`: a
/// span open for a session's whole life costs ~400 B per idle session in tracing-subscriber's
/// registry, against a budget of 1 KB; at `info` the spans of what the session does carry its
/// page and id themselves.
fn new_session(
    app: &App,
    handle: &SessionHandle,
    route: &'static Route,
    page: Box<dyn LivePage>,
    subscriptions: Vec<String>,
    (url, prefix_len): (String, usize),
) -> Session {
    for topic in &subscriptions {
        app.pubsub().subscribe(topic, handle.clone());
    }
    let id = handle.id();
    let span = tracing::debug_span!(
        parent: None,
        "dstar.session",
        page = route.name,
        session = %short_id(id)
    );
    span.follows_from(Span::current());
    Session::new(
        app,
        id,
        page,
        handle.mailbox().clone(),
        subscriptions,
        (url, prefix_len),
        span,
    )
}

/// The attributes of a live page's root: its initial signals (`Mount::signal`) with its token
/// signals, and the start of its stream (under `prefix`).
fn root_attributes(
    app: &App,
    route: &Route,
    id: u128,
    prefix: &str,
    signals: serde_json::Map<String, serde_json::Value>,
) -> String {
    let signals = token_signals_with(app, id, signals);
    let config = app.sessions().config();
    let stream = crate::protocol::live_start(
        prefix,
        config.hidden_pause,
        config.browser_streams,
        route.background,
    );
    let mut attributes = String::from(" data-signals=\"");
    crate::sse::escape_html_into(&mut attributes, &signals);
    attributes.push_str("\" data-init=\"");
    crate::sse::escape_html_into(&mut attributes, &stream);
    attributes.push('"');
    attributes
}

/// Tells streams apart, so a late drop of a replaced stream is not taken for the current one.
static GENERATION: AtomicU64 = AtomicU64::new(1);

async fn stream(app: App, resolve: impl Fn(&str) -> Option<LiveTarget>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let token = header(&parts, &TOKEN_NAME);
    // An expired token (a tab open longer than the stream token lives) still names its
    // session authentically: it is re-mounted, so `mount` authorizes the tab again.
    let (claims, expired) = match app.keys().verify(token, Purpose::Stream) {
        Ok(claims) => (claims, false),
        Err(TokenError::Expired) => match app.keys().authenticate(token, Purpose::Stream) {
            Ok(claims) => (claims, true),
            Err(err) => return refused(err),
        },
        Err(err) => return refused(err),
    };
    let last_event_id = header(&parts, &LAST_EVENT_ID_NAME)
        .trim()
        .parse::<u64>()
        .ok();
    let span = info_span!("dstar.stream", session = %short_id(claims.session));
    let running = app.sessions().handle(claims.session);
    match running {
        Some(handle) if !expired => {
            let _span = span.entered();
            tracing::debug!(last_event_id, "stream attached");
            attach(&app, &handle, last_event_id, &parts.headers)
        }
        Some(handle) => {
            let _span = span.entered();
            tracing::debug!("stream token expired: the running session ends, the tab re-mounts");
            handle.push_control(Command::Shutdown);
            cut_for_retry(&app, &handle, &parts.headers)
        }
        None => match app.sessions().ended().get(claims.session) {
            Some(ending) => {
                let _span = span.entered();
                tracing::debug!("stream for a session ended on purpose: its last instruction");
                ended(&app, claims.session, &ending)
            }
            None => {
                remount(&app, resolve, parts, claims.session, last_event_id)
                    .instrument(span)
                    .await
            }
        },
    }
}

/// A tab pausing its stream (hidden, or over the browser's connection limit): the session
/// ends the stream cleanly and waits the hidden-tab grace instead of the reconnect grace.
/// Answered `204` whether or not the session still runs: a tab that comes back to a session
/// gone is re-mounted by its stream as usual.
async fn pause(app: App, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    match app
        .keys()
        .verify(header(&parts, &TOKEN_NAME), Purpose::Stream)
    {
        Ok(claims) => {
            if let Some(handle) = app.sessions().handle(claims.session) {
                tracing::debug!(session = %short_id(claims.session), "stream paused");
                handle.push_control(Command::Pause);
            }
        }
        // Nothing to pause: the tab's next stream re-mounts it (see the table above).
        Err(TokenError::Expired) => {}
        Err(err) => return refused(err),
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    crate::security::no_store(response.headers_mut());
    response
}

fn refused(err: TokenError) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, format!("stream refused: {err}")).into_response();
    crate::security::no_store(response.headers_mut());
    response
}

/// A stream answer cut at once after a short retry hint, as a network failure would be: the
/// client retries with the same headers, by when the session being shut down is gone and
/// the tab is re-mounted.
fn cut_for_retry(app: &App, handle: &SessionHandle, headers: &http::HeaderMap) -> Response {
    let queue = Arc::new(StreamQueue::new());
    let mut out = Vec::new();
    crate::sse::write_retry(&mut out, Duration::from_millis(100));
    queue.end(End::Abort, Some(Bytes::from(out)));
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    live_response(app, handle, queue, generation, headers)
}

/// Attaches a stream to a running session and answers with the live body.
fn attach(
    app: &App,
    handle: &SessionHandle,
    last_event_id: Option<u64>,
    headers: &http::HeaderMap,
) -> Response {
    let queue = Arc::new(StreamQueue::new());
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    let attached = handle.push_control(Command::Attach(Box::new(Attach {
        queue: queue.clone(),
        generation,
        last_event_id,
    })));
    if !attached {
        // The session ended meanwhile.
        return match app.sessions().ended().get(handle.id()) {
            Some(ending) => ended(app, handle.id(), &ending),
            None => reload(app, handle.id()),
        };
    }
    live_response(app, handle, queue, generation, headers)
}

/// The answer to a stream of a session ended on purpose: its last instruction again, and the
/// stream ends (the client does not retry a stream that ends normally).
fn ended(app: &App, id: u128, ending: &SessionEnd) -> Response {
    match final_script(ending) {
        Some(script) => script_answer(app, id, &script),
        None => Sse::once(Bytes::new()).into_response(),
    }
}

/// The live body for `queue`, compressed as the stream request's `headers` accept when the app
/// compresses streams.
fn live_response(
    app: &App,
    handle: &SessionHandle,
    queue: Arc<StreamQueue>,
    generation: u64,
    headers: &http::HeaderMap,
) -> Response {
    let encoding = app
        .compress_streams()
        .then(|| crate::compress::negotiate(headers));
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
    let mut response = Sse::once(Bytes::new());
    if let Some(encoding) = encoding {
        // Only the headers: the body below is the stream, compressed by `LiveBody`.
        response = response.encoding(encoding);
    }
    let mut response = response.into_response();
    *response.body_mut() = axum::body::Body::new(body);
    response
}

/// Re-mounts the page of a tab whose session is gone, in place, on the stream that asked for
/// it (the session module's docs give the rules): the page is the stream request's
/// `Referer`, `mount` runs with this request's headers and cookies, and the session takes
/// back the tab's id. Falls back to a (guarded) reload. The one mechanism for every way a
/// session goes (a restart, reaping, eviction, a dead node): callers verify the stream token
/// first and pass its session id.
pub(crate) async fn remount(
    app: &App,
    resolve: impl Fn(&str) -> Option<LiveTarget>,
    mut parts: http::request::Parts,
    id: u128,
    last_event_id: Option<u64>,
) -> Response {
    let Some(url) = referer_path(&parts) else {
        tracing::debug!("session gone and no same-origin Referer: reload");
        return reload(app, id);
    };
    // The Referer is the page's URL as the browser sees it; under a nested router the page
    // mounts with its app path, as a page GET does.
    let prefix = mount_prefix(&parts).to_owned();
    let app_url = match crate::protocol::strip_mount_prefix(&prefix, &url) {
        Some(app_url) if prefix.len() <= usize::from(u16::MAX) => app_url.into_owned(),
        _ => {
            tracing::debug!(
                url,
                "session gone and its page is not under this mount: reload"
            );
            return reload(app, id);
        }
    };
    let Ok(uri) = app_url.parse::<http::Uri>() else {
        return reload(app, id);
    };
    let Some(target) = resolve(uri.path()) else {
        tracing::debug!(url, "session gone and its page is not a live page: reload");
        return reload(app, id);
    };
    let registry = app.sessions();
    let mailbox = Arc::new(Mailbox::new(registry.config().mailbox));
    let reservation = match registry.reserve_id(id, mailbox) {
        Ok(reservation) => reservation,
        // Another stream of this tab re-mounted it first.
        Err(Unavailable::Running(handle)) => {
            return attach(app, &handle, last_event_id, &parts.headers);
        }
        Err(Unavailable::Full) => {
            tracing::warn!("no room to re-mount a live session: reload");
            return reload(app, id);
        }
    };
    let handle = reservation.handle().clone();
    parts.uri = uri;
    let mut mount = Mount::new(app, &parts, &target.params, Some(handle.clone()));
    let page = match (target.live.mount)(&mut mount).await {
        Ok(page) => page,
        Err(err) if err.location().is_some() => {
            tracing::debug!(url, "re-mount redirected");
            let location = crate::protocol::under_prefix(&prefix, err.location().unwrap_or("/"));
            let script = crate::sse::redirect_script(&location);
            return script_answer(app, id, &script);
        }
        Err(err) => {
            err.report();
            return reload(app, id);
        }
    };
    let mut subscriptions = std::mem::take(&mut mount.subscriptions);
    subscriptions.shrink_to_fit();
    let tags = std::mem::take(&mut mount.tags);
    let tracked = std::mem::take(&mut mount.tracked);
    let cookies = std::mem::take(&mut mount.set_cookies);
    drop(mount);
    let prefix_len = prefix.len();
    let mut session = new_session(
        app,
        &handle,
        target.route,
        page,
        subscriptions,
        (url, prefix_len),
    );
    reservation.keep();
    registry.task_started();
    let queue = Arc::new(StreamQueue::new());
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    let attached = session.attach_remounted(Attach {
        queue: queue.clone(),
        generation,
        last_event_id,
    });
    if let Err(err) = attached {
        // Dropping the session frees the slot again.
        err.report();
        drop(session);
        return reload(app, id);
    }
    tracing::debug!(last_event_id, "session re-mounted in place");
    crate::metrics::remount();
    registry.tag(&handle, tags);
    // Re-mounted with its stream attached: present at once.
    app.presence().track(&handle, tracked);
    app.presence().connected(&handle);
    tokio::spawn(session.run());
    crate::cookie::with_cookies(
        live_response(app, &handle, queue, generation, &parts.headers),
        cookies,
    )
}

/// The path and query of the stream request's `Referer` (the URL of the tab's page), when it
/// is a URL of this origin: its authority is the request's `Host` and its path a same-origin
/// path.
fn referer_path(parts: &http::request::Parts) -> Option<String> {
    let referer: http::Uri = parts
        .headers
        .get(http::header::REFERER)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str))?;
    if !referer
        .authority()
        .is_some_and(|authority| authority.as_str().eq_ignore_ascii_case(host))
    {
        return None;
    }
    let path = referer.path_and_query()?.as_str().to_owned();
    crate::protocol::is_same_origin_path(&path).then_some(path)
}

/// The answer to a stream that cannot be re-mounted: a reload, guarded against loops (see
/// [`reload_script`](crate::protocol::reload_script)).
fn reload(app: &App, id: u128) -> Response {
    script_answer(app, id, &crate::protocol::reload_script())
}

/// A stream answer that runs `script` (with the page's nonce) and ends.
fn script_answer(app: &App, id: u128, script: &str) -> Response {
    let nonce = Nonce::for_session(app.keys(), id).to_string();
    let mut out = Vec::new();
    ExecuteScript::new(script)
        .attributes(&[("nonce", &nonce)])
        .write_to(&mut out);
    Sse::once(out).into_response()
}

async fn event(app: App, req: Request) -> Response {
    let (parts, body) = req.into_parts();
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
        Ok(cookies) => crate::cookie::with_cookies(StatusCode::NO_CONTENT.into_response(), cookies),
        Err(err) => err.into_event_response(),
    };
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        // Every 503 here is an event that was not applied (the session is busy, or not
        // running while its tab re-mounts it): sending it again is safe.
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    crate::security::no_store(response.headers_mut());
    response
}

async fn send_event(
    app: &App,
    parts: &http::request::Parts,
    body: axum::body::Body,
) -> Result<Vec<http::HeaderValue>> {
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
    let Some(handle) = app.sessions().handle(claims.session) else {
        return Err(if app.sessions().ended().get(claims.session).is_some() {
            session_ended()
        } else {
            session_unavailable()
        });
    };
    let click = header(parts, &CLICK_NAME);
    if click.len() > MAX_CLICK_LEN {
        return Err(Error::bad_request(format!(
            "event refused: the `{CLICK_HEADER}` header is longer than {MAX_CLICK_LEN} characters"
        )));
    }
    let outcomes = app.sessions().outcomes();
    if !click.is_empty()
        && let Begin::Answered(result) = outcomes.begin(claims.session, click)
    {
        tracing::debug!("a click sent again: answered without applying it twice");
        return result.map(|()| Vec::new());
    }
    let result = dispatch(&handle, name, raw, parts.headers.clone()).await;
    if !click.is_empty() {
        match &result {
            // Refused before the handler ran: a retry is a new attempt.
            Err(err) if err.status() == StatusCode::SERVICE_UNAVAILABLE => {
                outcomes.forget(claims.session, click);
            }
            // The log keeps the outcome, not the cookies: a retry answered from it sets none.
            result => outcomes.finish(claims.session, click, result),
        }
    }
    result
}

/// Sends an event to its session and waits for the handler's answer: the cookies it set.
async fn dispatch(
    handle: &SessionHandle,
    name: &str,
    signals: Bytes,
    headers: http::HeaderMap,
) -> Result<Vec<http::HeaderValue>> {
    let (reply, answer) = oneshot::channel();
    let command = Command::Event(Box::new(EventCommand {
        name: name.to_owned(),
        signals,
        headers,
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
