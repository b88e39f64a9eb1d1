//! Soft navigation between the live pages of one session group.
//!
//! A link made with the `link()` template helper is an ordinary `<a href>`: right-click,
//! middle-click and modified clicks open it as usual. A plain left click calls the small
//! client script below, which `POST`s the target to [`NAV_PATH`] with the session's navigation
//! token. The server then:
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
//! Back and Forward trigger `popstate`, which soft-navigates to the restored URL (replacing,
//! not pushing, the history entry).

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tokio::sync::oneshot;

use crate::app::App;
use crate::error::{Error, Result};
use crate::router::Entry;
use crate::session::{Command, Navigate};
use crate::stateless::{TOKEN_HEADER, TOKEN_NAME, header};
use crate::token::{Purpose, TokenError};

/// The path of the navigation endpoint.
pub const NAV_PATH: &str = "/__dstar/nav";
/// Header carrying the navigation target (a same-origin path with its query).
pub const URL_HEADER: &str = "x-dstar-url";
static URL_NAME: http::HeaderName = http::HeaderName::from_static(URL_HEADER);
static HISTORY_NAME: http::HeaderName = http::HeaderName::from_static(HISTORY_HEADER);

/// Header saying how the history changes: `push` (a link) or `replace` (Back, Forward).
pub const HISTORY_HEADER: &str = "x-dstar-history";

/// The client half: `window.__dstarNav(url, history)`, the `popstate` handler, and the token.
pub(crate) fn client_script(token: &str) -> String {
    format!(
        r#"<script>(() => {{
  const d = window.__dstar = window.__dstar || {{}};
  d.nav = {token};
  if (d.installed) return;
  d.installed = true;
  window.__dstarNav = async (url, history) => {{
    let response;
    try {{
      response = await fetch({path}, {{method: "POST", headers: {{"{token_header}": d.nav, "{url_header}": url, "{history_header}": history || "push"}}}});
    }} catch (e) {{
      window.location.assign(url);
      return;
    }}
    if (response.status === 200) {{
      const answer = await response.json();
      if (answer.load) window.location.assign(answer.load);
    }} else if (response.status !== 204) {{
      console.warn("dstar: navigation refused", response.status, await response.text());
    }}
  }};
  window.addEventListener("popstate", () => window.__dstarNav(window.location.pathname + window.location.search, "replace"));
}})();</script>"#,
        token = crate::template::js_string(token),
        path = crate::template::js_string(NAV_PATH),
        token_header = TOKEN_HEADER,
        url_header = URL_HEADER,
        history_header = HISTORY_HEADER,
    )
}

/// The script run after a soft navigation: title, history entry, fresh token.
pub(crate) fn after_navigation_script(
    title: &str,
    url: &str,
    history: History,
    token: &str,
) -> String {
    let history = match history {
        History::Push => format!(
            "window.history.pushState({{dstar: true}}, '', {});",
            crate::template::js_string(url)
        ),
        History::Replace => {
            format!(
                "window.history.replaceState({{dstar: true}}, '', {});",
                crate::template::js_string(url)
            )
        }
    };
    format!(
        "document.title = {}; {history} window.__dstar.nav = {};",
        crate::template::js_string(title),
        crate::template::js_string(token)
    )
}

/// How a navigation changes the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum History {
    Push,
    Replace,
}

pub(crate) async fn navigate(app: App, table: &'static [Entry], req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    match run(&app, table, parts).await {
        Ok(Outcome::Done) => StatusCode::NO_CONTENT.into_response(),
        Ok(Outcome::Load(url)) => load(&url),
        Err(err) => err.into_response(),
    }
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
    table: &'static [Entry],
    mut parts: http::request::Parts,
) -> Result<Outcome> {
    let url = header(&parts, &URL_NAME).to_owned();
    if !crate::page::is_same_origin_path(&url) {
        return Err(Error::bad_request(format!(
            "navigation refused: the target must be a same-origin path like `/page?x=1`, got `{}`",
            url.escape_debug()
        )));
    }
    let history = if header(&parts, &HISTORY_NAME) == "replace" {
        History::Replace
    } else {
        History::Push
    };
    let claims = match app
        .keys()
        .verify(header(&parts, &TOKEN_NAME), Purpose::Navigation)
    {
        Ok(claims) => claims,
        Err(TokenError::Expired) => return Ok(Outcome::Load(url)),
        Err(err) => return Err(Error::forbidden(format!("navigation refused: {err}"))),
    };
    let target: http::Uri = url
        .parse()
        .map_err(|_| Error::bad_request("navigation refused: the target is not a URI"))?;
    let Some((entry, params)) = crate::router::lookup(table, target.path()) else {
        return Ok(Outcome::Load(url));
    };
    let (Some(live), true) = (entry.live, entry.route.live) else {
        return Ok(Outcome::Load(url));
    };
    let Some(handle) = app.sessions().handle(claims.session) else {
        return Ok(Outcome::Load(url));
    };
    parts.uri = target;
    let (reply, answer) = oneshot::channel();
    let command = Navigate {
        entry: entry.route,
        live,
        params,
        url: url.clone(),
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
