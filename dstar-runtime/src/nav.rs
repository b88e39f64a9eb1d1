//! Soft navigation between the live pages of one session group.
//!
//! A link made with the `link()` template helper is an ordinary `<a href>`: right-click,
//! middle-click and modified clicks open it as usual. A plain left click calls the small
//! navigation client script (written in [`protocol`](crate::protocol), like every script dstar
//! sends), which `POST`s the target to [`NAV_PATH`] with the session's navigation token. The server then:
//!
//! 1. refuses targets that are not same-origin paths (400) and forged tokens (403); an expired
//!    token or a session that is gone answers `{"load": url}` and the script loads the page;
//! 2. matches the target against the route table; a target that is not a live page of the
//!    session's group is loaded in full (`{"load": url}`), so the server's normal GET (and any
//!    middleware) handles it;
//! 3. otherwise asks the session task to mount the target with its path parameters, its query
//!    string and this request's headers. Mount is where a page authorizes, so the check runs
//!    again for every navigation; a refusal answers its status and the old page stays. Then
//!    the old page's `terminate` runs, and the stream gets the new signals, the new body in
//!    the root, the title, a history entry and a fresh navigation token.
//!
//! Under a mount prefix (`Router::new().nest("/app", router)`) the target is a URL as the
//! browser sees it (`/app/items/3`): the prefix of the navigation request itself is taken off
//! to match it, a target outside the prefix is loaded in full, and the history entry keeps the
//! prefixed URL.
//!
//! Back and Forward trigger `popstate`, which soft-navigates to the restored URL (replacing,
//! not pushing, the history entry).

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderValue, StatusCode, header};
use tokio::sync::oneshot;

use crate::app::App;
use crate::error::{Error, Result};
use crate::protocol::{HISTORY_NAME, History, NAV_PATH, TOKEN_NAME, URL_NAME};
use crate::session::handle::{Command, Navigate};
use crate::session::page::LiveTarget;
use crate::token::{Purpose, TokenError};

/// Registers the navigation endpoint. `resolve` finds the live page serving a path in the
/// route table (which the router above owns).
pub(crate) fn register(
    router: Router<()>,
    app: &App,
    resolve: impl Fn(&str) -> Option<LiveTarget> + Clone + Send + Sync + 'static,
) -> Router<()> {
    let app = app.clone();
    router.route(
        NAV_PATH,
        post(move |req: Request| navigate(app.clone(), resolve.clone(), req)),
    )
}

async fn navigate(
    app: App,
    resolve: impl Fn(&str) -> Option<LiveTarget>,
    req: Request,
) -> Response {
    let (parts, _body) = req.into_parts();
    let span = tracing::info_span!(
        "dstar.nav",
        url = crate::protocol::header(&parts, &URL_NAME)
    );
    let result = tracing::Instrument::instrument(run(&app, resolve, parts), span.clone()).await;
    // The answer is logged in the request's span too (no await below).
    let _span = span.entered();
    let mut response = match result {
        Ok(Outcome::Done) => StatusCode::NO_CONTENT.into_response(),
        Ok(Outcome::Load(url)) => load(&url),
        Err(err) => err.into_response(),
    };
    crate::security::no_store(response.headers_mut());
    response
}

enum Outcome {
    Done,
    Load(String),
}

fn load(url: &str) -> Response {
    let body = serde_json::json!({ "load": url }).to_string();
    let mut response = Body::from(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn run(
    app: &App,
    resolve: impl Fn(&str) -> Option<LiveTarget>,
    mut parts: http::request::Parts,
) -> Result<Outcome> {
    let url = crate::protocol::header(&parts, &URL_NAME).to_owned();
    if !crate::protocol::is_same_origin_path(&url) {
        return Err(Error::bad_request(format!(
            "navigation refused: the target must be a same-origin path like `/page?x=1`, got `{}`",
            url.escape_debug()
        )));
    }
    let history = History::from_header(crate::protocol::header(&parts, &HISTORY_NAME));
    let claims = match app.keys().verify(
        crate::protocol::header(&parts, &TOKEN_NAME),
        Purpose::Navigation,
    ) {
        Ok(claims) => claims,
        Err(TokenError::Expired) => return Ok(Outcome::Load(url)),
        Err(err) => return Err(Error::forbidden(format!("navigation refused: {err}"))),
    };
    let target: http::Uri = url
        .parse()
        .map_err(|_| Error::bad_request("navigation refused: the target is not a URI"))?;
    let prefix = crate::protocol::mount_prefix(&parts);
    crate::error::check_mount_prefix(prefix)?;
    let prefix_len = prefix.len();
    let Some(app_path) = crate::protocol::strip_mount_prefix(prefix, target.path()) else {
        return Ok(Outcome::Load(url));
    };
    let Some(target_page) = resolve(&app_path) else {
        return Ok(Outcome::Load(url));
    };
    // The target page mounts with its app path, as a page under a nested router does.
    let target: http::Uri = match target.query() {
        Some(query) => format!("{app_path}?{query}"),
        None => app_path.into_owned(),
    }
    .parse()
    .map_err(|_| Error::bad_request("navigation refused: the target is not a URI"))?;
    let Some(handle) = app.sessions().handle(claims.session) else {
        return Ok(Outcome::Load(url));
    };
    parts.uri = target;
    let (reply, answer) = oneshot::channel();
    let command = Navigate {
        target: target_page,
        url: url.clone(),
        prefix_len,
        parts,
        history,
        reply,
    };
    if !handle.push_control(Command::Navigate(Box::new(command))) {
        return Ok(Outcome::Load(url));
    }
    match answer.await {
        Ok(Ok(true)) => Ok(Outcome::Done),
        Ok(Ok(false)) => Ok(Outcome::Load(url)),
        Ok(Err(err)) => Err(err),
        Err(_) => Ok(Outcome::Load(url)),
    }
}
