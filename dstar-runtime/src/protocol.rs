//! dstar's own protocol on top of Datastar: the internal paths, the headers and signals its
//! requests carry, the id of the page root, and the small scripts the server asks the browser
//! to run.
//!
//! Every one of these is written here once. The template helpers and the transports that write
//! them and the test kit that reads them all take them from this module, so a change here
//! changes both sides.
//!
//! | what | value | written by | read by |
//! | --- | --- | --- | --- |
//! | [`STREAM_PATH`] | `/__dstar/stream` | the live client script, started by the page root's `data-init` | the stream endpoint |
//! | [`DEV_PATH`] | `/__dstar/dev` | the debug client script (debug builds) | live reload |
//! | [`PAUSE_PATH`] | `/__dstar/pause` | the live client script (a hidden tab, or over the browser's limit) | the pause endpoint |
//! | [`EVENT_PATH`] | `/__dstar/event` | `event()` on live pages | the live event endpoint |
//! | [`NAV_PATH`] | `/__dstar/nav` | the navigation client script | the navigation endpoint |
//! | [`EVENT_HEADER`] | event name | `event()` | both event endpoints |
//! | [`TOKEN_HEADER`] | a signed token | `event()`, the stream action, navigation | every endpoint |
//! | [`ARGS_HEADER`] | JSON object | `event(name, {...})` | both event endpoints |
//! | [`CLICK_HEADER`] | a random id per click | `event()` on live pages | the live event endpoint |
//! | [`URL_HEADER`], [`HISTORY_HEADER`] | target, `push`/`replace` | navigation script | navigation endpoint |
//! | [`TOKEN_SIGNAL`], [`STREAM_SIGNAL`] | tokens of a live page | the root's `data-signals` | `event()`, the stream action |
//!
//! # Under a prefix
//!
//! The paths above are the router's own. When the router is nested
//! (`Router::new().nest("/app", router)`), every URL dstar writes for the browser is the path
//! the request says the router is mounted under followed by the app path:
//! `/app/__dstar/stream`, `/app/counter`. The prefix is read from each request: axum's
//! `OriginalUri` (what the browser asked for) minus the path the nested router matched.

use http::HeaderName;

/// The path of a live page's stream endpoint.
pub const STREAM_PATH: &str = "/__dstar/stream";
/// The path a live page's tab posts to when it pauses its stream.
pub const PAUSE_PATH: &str = "/__dstar/pause";
/// The path the debug client script polls for template changes (debug builds only).
pub const DEV_PATH: &str = "/__dstar/dev";
/// The path of the live event endpoint.
pub const EVENT_PATH: &str = "/__dstar/event";
/// The path of the soft-navigation endpoint.
pub const NAV_PATH: &str = "/__dstar/nav";

/// Header naming the event.
pub const EVENT_HEADER: &str = "x-dstar-event";
/// Header carrying the signed token (CSRF for events, stream or navigation).
pub const TOKEN_HEADER: &str = "x-dstar-token";
/// Header carrying a live event's click id: made in the browser for each click and sent again
/// unchanged by the client's retries, so the server applies the click once.
pub const CLICK_HEADER: &str = "x-dstar-click";
/// Header carrying extra event arguments (a JSON object merged into the signals).
pub const ARGS_HEADER: &str = "x-dstar-args";
/// Header carrying the navigation target (a same-origin path with its query).
pub const URL_HEADER: &str = "x-dstar-url";
/// Header saying how the history changes: `push` (a link) or `replace` (Back, Forward).
pub const HISTORY_HEADER: &str = "x-dstar-history";

// The same names parsed once: looking a header up by `&str` parses the name every time.
pub(crate) static EVENT_NAME: HeaderName = HeaderName::from_static(EVENT_HEADER);
pub(crate) static TOKEN_NAME: HeaderName = HeaderName::from_static(TOKEN_HEADER);
pub(crate) static ARGS_NAME: HeaderName = HeaderName::from_static(ARGS_HEADER);
pub(crate) static CLICK_NAME: HeaderName = HeaderName::from_static(CLICK_HEADER);
pub(crate) static URL_NAME: HeaderName = HeaderName::from_static(URL_HEADER);
pub(crate) static HISTORY_NAME: HeaderName = HeaderName::from_static(HISTORY_HEADER);
pub(crate) static LAST_EVENT_ID_NAME: HeaderName = HeaderName::from_static("last-event-id");

/// The signal holding a live page's event (CSRF) token.
pub const TOKEN_SIGNAL: &str = "_dstarToken";
/// The signal holding a live page's stream token.
pub const STREAM_SIGNAL: &str = "_dstarStream";

/// The id of the element every page body is rendered into, unless the app names another
/// (`App::builder().root_id(..)`; read it with `App::root_id`).
pub const ROOT_ID: &str = "dstar-root";
/// [`ROOT_ID`] as a CSS selector (the app's own: `App::root_selector`).
pub const ROOT_SELECTOR: &str = "#dstar-root";

/// The path the app's router is mounted under, as the browser sees it: `/app` for a router
/// nested with `Router::new().nest("/app", router)`, empty at the root (never a trailing `/`).
///
/// Read from each request rather than configured: axum's `OriginalUri` is the path the browser
/// asked for and the request's own URI the path inside the nested router, so the prefix is what
/// the nesting took off the front. A nest with a parameter (`/{tenant}`) gives the tenant the
/// request named, and one router nested at two places answers each under its own prefix.
pub(crate) fn mount_prefix(parts: &http::request::Parts) -> &str {
    let Some(original) = parts.extensions.get::<axum::extract::OriginalUri>() else {
        return "";
    };
    let full = original.0.path();
    let inner = parts.uri.path();
    let prefix = match full.strip_suffix(inner) {
        Some(prefix) => prefix,
        // `/app` itself reaches the nested router as `/`.
        None if inner == "/" => full,
        None => "",
    };
    prefix.trim_end_matches('/')
}

/// `path` (an app path such as `/items/3?x=1`) as the browser must ask for it under `prefix`.
/// The app's root `/` is the prefix itself (`/app`, which is what axum's `nest` routes to the
/// nested `/`; it does not route `/app/`). Anything that is not a same-origin path
/// (`https://..`, `items/3`, `#top`) is left alone.
pub(crate) fn under_prefix(prefix: &str, path: &str) -> String {
    if prefix.is_empty() || !is_same_origin_path(path) {
        return path.to_owned();
    }
    match path.as_bytes().get(1) {
        None | Some(b'?' | b'#') => format!("{prefix}{}", &path[1..]),
        Some(_) => format!("{prefix}{path}"),
    }
}

/// The app path of `url`, a browser path under `prefix`: `/app/items/3?x` gives `/items/3?x`,
/// `/app` gives `/`; `None` when `url` is outside the prefix (`/other`, `/application`).
pub(crate) fn strip_mount_prefix<'u>(
    prefix: &str,
    url: &'u str,
) -> Option<std::borrow::Cow<'u, str>> {
    let rest = url.strip_prefix(prefix)?;
    match rest.as_bytes().first() {
        Some(b'/') => Some(rest.into()),
        None => Some("/".into()),
        Some(b'?' | b'#') => Some(format!("/{rest}").into()),
        Some(_) => None,
    }
}

/// A request header as text: empty when missing; U+FFFD when its bytes are not UTF-8, so a
/// header that was sent is refused as malformed (a token, a target, args), never taken for a
/// missing one.
pub(crate) fn header<'p>(parts: &'p http::request::Parts, name: &HeaderName) -> &'p str {
    parts.headers.get(name).map_or("", |value| {
        std::str::from_utf8(value.as_bytes()).unwrap_or("\u{fffd}")
    })
}

/// Whether `url` is a path on this origin: starts with one `/`, no `//` or `/\` prefix, no
/// control characters or backslashes anywhere.
pub fn is_same_origin_path(url: &str) -> bool {
    let bytes = url.as_bytes();
    bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && !bytes.iter().any(|b| b.is_ascii_control() || *b == b'\\')
}

/// How a navigation changes the browser's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// A new entry (a link was followed).
    Push,
    /// The current entry is replaced (Back, Forward, a `replace_query`).
    Replace,
}

impl History {
    /// Reads the [`HISTORY_HEADER`] value: `replace`, else `push`.
    pub(crate) fn from_header(value: &str) -> Self {
        if value == "replace" {
            History::Replace
        } else {
            History::Push
        }
    }

    /// The `history` method that makes this change.
    pub(crate) const fn method(self) -> &'static str {
        match self {
            History::Push => "pushState",
            History::Replace => "replaceState",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scripts. The fragments below are what the test kit recognises in a script it cannot run.

/// Reloads the page (the statement [`reload_script`] runs once its guard allows).
pub(crate) const RELOAD_SCRIPT: &str = "window.location.reload()";
/// The id of the message a tab shows when reloading did not bring it back.
pub const LOST_ID: &str = "dstar-lost";
/// How many reloads a tab that cannot be re-mounted makes in [`RELOAD_WINDOW_MS`] before it
/// stops and shows the [`LOST_ID`] message (the reload's guard, sent by the stream endpoint).
pub const RELOAD_LIMIT: u32 = 3;
/// The window, in milliseconds, [`RELOAD_LIMIT`] counts reloads in.
pub const RELOAD_WINDOW_MS: u32 = 60_000;
/// Sets the document title: followed by a JS string.
pub(crate) const TITLE_PREFIX: &str = "document.title = ";
/// Stores a fresh navigation token: followed by a JS string.
pub(crate) const NAV_TOKEN_PREFIX: &str = "window.__dstar.nav = ";
/// The argument list of a history change before its URL.
pub(crate) const HISTORY_URL_PREFIX: &str = "'', ";
/// A history URL that keeps the path and changes the query: followed by a JS string.
pub(crate) const SAME_PATH_PREFIX: &str = "window.location.pathname + ";
/// The client's navigation function, called with a JS string.
pub(crate) const NAVIGATE_CALL: &str = "window.__dstarNav(";
/// A full page load, called with a JS string.
pub(crate) const LOAD_CALL: &str = "window.location.assign(";
/// The navigation script's request to [`NAV_PATH`] under the mount prefix: followed by a JS
/// string.
pub(crate) const NAV_FETCH_CALL: &str = "response = await fetch(";

/// Reloads the page when the server cannot re-mount it in place, guarded against reload loops
/// (a page whose every load ends here, say a stream refused behind a proxy that strips the
/// `Referer`): the tab remembers its recent reloads in `sessionStorage`; the first reload is
/// at once, each further one waits twice as long (1 s, 2 s, ...), and past [`RELOAD_LIMIT`]
/// reloads within [`RELOAD_WINDOW_MS`] it stops and shows a message (element
/// [`LOST_ID`]) asking the person to reload.
pub(crate) fn reload_script() -> String {
    format!(
        "(() => {{ const key = \"dstar-reloads\", now = Date.now(); let times = []; \
try {{ times = JSON.parse(sessionStorage.getItem(key) || \"[]\").filter((t) => now - t < {RELOAD_WINDOW_MS}); }} catch (e) {{}} \
if (times.length >= {RELOAD_LIMIT}) {{ if (document.getElementById(\"{LOST_ID}\")) return; \
const note = document.createElement(\"div\"); note.id = \"{LOST_ID}\"; note.setAttribute(\"role\", \"alert\"); \
note.style.cssText = \"position:fixed;left:0;right:0;bottom:0;padding:1em;background:#8b0000;color:#fff;font:16px sans-serif;z-index:2147483647\"; \
note.textContent = \"This page lost its connection to the server and could not get it back. Reload the page to go on.\"; \
document.body.appendChild(note); return; }} \
times.push(now); try {{ sessionStorage.setItem(key, JSON.stringify(times)); }} catch (e) {{}} \
setTimeout(() => {RELOAD_SCRIPT}, times.length > 1 ? 1000 * 2 ** (times.length - 2) : 0); }})()"
    )
}

/// The script that stores a fresh navigation token.
pub(crate) fn nav_token_script(token: &str) -> String {
    format!("{NAV_TOKEN_PREFIX}{}", js_string(token))
}

/// The script run after a soft navigation: title, history entry, fresh token, and whether the
/// new page keeps streaming while its tab is hidden.
pub(crate) fn after_navigation_script(
    title: &str,
    url: &str,
    history: History,
    token: &str,
    background: bool,
) -> String {
    format!(
        "{TITLE_PREFIX}{}; window.history.{}({{dstar: true}}, {HISTORY_URL_PREFIX}{}); {}; window.__dstar.live && window.__dstar.live.background({background});",
        js_string(title),
        history.method(),
        js_string(url),
        nav_token_script(token),
    )
}

/// The script that changes the query of the current URL (`suffix` is `?a=b` or empty) without
/// leaving the page.
pub(crate) fn query_script(suffix: &str, history: History) -> String {
    format!(
        "window.history.{}(window.history.state, {HISTORY_URL_PREFIX}{SAME_PATH_PREFIX}{})",
        history.method(),
        js_string(suffix)
    )
}

/// What a live page's root runs on load (its `data-init`): the live client script's `start`,
/// which opens the stream (under `prefix`) and pauses it while the tab is hidden unless the
/// page is `background` (see the session module's docs). `hidden_pause` and `cap` are the
/// session settings of the same names (`hidden_pause`, `browser_streams`).
pub(crate) fn live_start(
    prefix: &str,
    hidden_pause: std::time::Duration,
    cap: usize,
    background: bool,
) -> String {
    let options = serde_json::json!({
        "stream": format!("{prefix}{STREAM_PATH}"),
        "pause": format!("{prefix}{PAUSE_PATH}"),
        "header": TOKEN_HEADER,
        "signal": STREAM_SIGNAL,
        "hiddenPause": u64::try_from(hidden_pause.as_millis()).unwrap_or(u64::MAX),
        "cap": cap,
        "retries": STREAM_RETRIES,
        "background": background,
    });
    format!(
        "{LIVE_START_CALL}el, ${STREAM_SIGNAL}, {})",
        js_safe(&options.to_string())
    )
}

/// The live client's `start`, called with the root element, the stream token and options.
pub(crate) const LIVE_START_CALL: &str = "window.__dstar.live.start(";

/// How many times in a row the live client reopens a stream that failed before it gives up.
pub const STREAM_RETRIES: u32 = 1000;

/// How many times a live event is sent again after a failure (the client's `retryMaxCount`).
pub const EVENT_RETRIES: u32 = 5;
/// The first wait before a live event is sent again, in milliseconds (doubling each time:
/// with [`EVENT_RETRIES`], about 15 s in all, long enough for a restart and a re-mount).
pub const EVENT_RETRY_MS: u32 = 500;

/// The Datastar action sending event `name` to `url`. `token` is a JS expression (a string
/// literal, or the token signal on live pages); `args` an optional JSON object.
///
/// A live page's event (`live`) also carries a click id made at each click, and is retried
/// on failure ([`EVENT_RETRIES`] times, from [`EVENT_RETRY_MS`]): the client's retries send
/// the same headers, so the server recognises a click it already handled and answers it
/// again without applying it twice (see the session module's docs). After the last retry the
/// client gives up with an error in the console.
pub(crate) fn event_action(
    url: &str,
    name: &str,
    token: &str,
    args: Option<&str>,
    live: bool,
) -> String {
    let mut headers = format!(
        "{{'{EVENT_HEADER}': {}, '{TOKEN_HEADER}': {token}",
        js_string(name)
    );
    if let Some(args) = args {
        headers.push_str(&format!(", '{ARGS_HEADER}': {}", js_string(args)));
    }
    if live {
        headers.push_str(&format!(
            ", '{CLICK_HEADER}': Math.random().toString(36).slice(2) + Date.now().toString(36)"
        ));
    }
    headers.push('}');
    let retry = if live {
        format!(", retry: 'error', retryInterval: {EVENT_RETRY_MS}, retryMaxCount: {EVENT_RETRIES}")
    } else {
        String::new()
    };
    format!(
        // Events share one URL, and the client's default cancels an in-flight request to the
        // same URL: two quick clicks must both arrive.
        "@post({}, {{headers: {headers}, requestCancellation: 'disabled'{retry}}})",
        js_string(url)
    )
}

/// The action soft-navigating to `url` (a page load where the client script is missing).
pub(crate) fn navigate_action(url: &str) -> String {
    let url = js_string(url);
    format!("window.__dstarNav ? {NAVIGATE_CALL}{url}) : {LOAD_CALL}{url})")
}

/// The click handler of a `link()`: one expression (Datastar returns the value of an
/// attribute's last statement) taking over only a plain left click, so modified clicks open
/// the link as usual.
pub(crate) fn link_click(url: &str) -> String {
    format!(
        "window.__dstarNav && evt.button === 0 && !(evt.metaKey || evt.ctrlKey || evt.shiftKey || evt.altKey) && (evt.preventDefault(), {NAVIGATE_CALL}{}))",
        js_string(url)
    )
}

/// The live client: runs the stream of a live page, pausing it while the tab is hidden and
/// keeping the tabs of one browser under its connection limit over HTTP/1.1.
const LIVE_CLIENT: &str = include_str!("protocol/live.js");

/// The development aid debug builds put in every page: failed dstar requests reported in the
/// console with the page, event and message, and 5xx on the page (see `protocol/debug.js`).
const DEBUG_CLIENT: &str = include_str!("protocol/debug.js");

/// [`DEBUG_CLIENT`] in a script tag carrying `nonce`, told where to ask for template changes
/// (under `prefix`) and which version of the templates rendered the page.
pub(crate) fn debug_client_script(nonce: &str, prefix: &str, generation: u64) -> String {
    format!(
        "<script nonce=\"{nonce}\">window.__dstarDev = {{url: {}, generation: {}}};\n{DEBUG_CLIENT}</script>",
        js_string(&format!("{prefix}{DEV_PATH}")),
        js_string(&generation.to_string()),
    )
}

/// The client half of soft navigation: `window.__dstarNav(url, history)`, the `popstate`
/// handler, and the session's navigation token. It posts to the navigation endpoint under
/// `prefix`. The tag carries `nonce` (the page's script nonce, for a Content-Security-Policy).
pub(crate) fn navigation_client_script(prefix: &str, token: &str, nonce: &str) -> String {
    format!(
        r#"<script nonce="{nonce}">(() => {{
  const d = window.__dstar = window.__dstar || {{}};
  d.nav = {token};
  if (d.installed) return;
  d.installed = true;
  window.__dstarNav = async (url, history) => {{
    let response;
    try {{
      {NAV_FETCH_CALL}{path}, {{method: "POST", headers: {{"{TOKEN_HEADER}": d.nav, "{URL_HEADER}": url, "{HISTORY_HEADER}": history || "push"}}}});
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
}})();
{live}</script>"#,
        token = js_string(token),
        path = js_string(&format!("{prefix}{NAV_PATH}")),
        live = LIVE_CLIENT,
    )
}

/// A JSON string literal that is also safe inside HTML: `<`, `>`, `&` and `'` are `\u` escapes.
pub(crate) fn js_string(text: &str) -> String {
    js_safe(&serde_json::to_string(text).expect("a string always serialises"))
}

/// JSON made safe inside HTML and a JS string: `<`, `>`, `&`, `'` and the JS line separators
/// become `\u` escapes.
pub(crate) fn js_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\'' => out.push_str("\\u0027"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_paths() {
        for ok in ["/", "/a?b=c", "/a/b#x"] {
            assert!(is_same_origin_path(ok), "{ok}");
        }
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "javascript:alert(1)",
            "https://x",
            "",
            "/a\nb",
            "a/b",
        ] {
            assert!(!is_same_origin_path(bad), "{bad}");
        }
    }

    #[test]
    fn mount_prefixes() {
        fn prefix(original: &str, inner: &str) -> String {
            let mut parts = http::Request::get(inner).body(()).unwrap().into_parts().0;
            parts
                .extensions
                .insert(axum::extract::OriginalUri(original.parse().unwrap()));
            mount_prefix(&parts).to_owned()
        }
        assert_eq!(prefix("/counter", "/counter"), "");
        assert_eq!(prefix("/", "/"), "");
        assert_eq!(prefix("/app/counter", "/counter"), "/app");
        assert_eq!(prefix("/app", "/"), "/app");
        assert_eq!(prefix("/app/", "/"), "/app");
        assert_eq!(prefix("/t/acme/__dstar/nav", "/__dstar/nav"), "/t/acme");
        let bare = http::Request::get("/x").body(()).unwrap().into_parts().0;
        assert_eq!(mount_prefix(&bare), "");
    }

    #[test]
    fn app_paths_under_a_prefix() {
        assert_eq!(under_prefix("/app", "/items/3?x=1"), "/app/items/3?x=1");
        assert_eq!(under_prefix("", "/items/3"), "/items/3");
        assert_eq!(under_prefix("/app", "/"), "/app");
        assert_eq!(under_prefix("/app", "/?q=1"), "/app?q=1");
        assert_eq!(under_prefix("/app", "/#top"), "/app#top");
        assert_eq!(under_prefix("", "/"), "/");
        for untouched in ["https://x.dev/a", "//x.dev", "items/3", "#top", ""] {
            assert_eq!(under_prefix("/app", untouched), untouched);
        }
        assert_eq!(
            strip_mount_prefix("/app", "/app/items/3?x").as_deref(),
            Some("/items/3?x")
        );
        assert_eq!(strip_mount_prefix("/app", "/app").as_deref(), Some("/"));
        assert_eq!(
            strip_mount_prefix("/app", "/app?x=1").as_deref(),
            Some("/?x=1")
        );
        assert_eq!(strip_mount_prefix("", "/items").as_deref(), Some("/items"));
        for outside in ["/application", "/other", "/"] {
            assert_eq!(strip_mount_prefix("/app", outside), None, "{outside}");
        }
    }

    #[test]
    fn js_strings_cannot_escape() {
        assert_eq!(
            js_string("a'</script>&\"b"),
            r#""a\u0027\u003c/script\u003e\u0026\"b""#
        );
    }

    #[test]
    fn the_live_start_names_the_endpoints_under_the_prefix_and_the_settings() {
        let start = live_start("/app", std::time::Duration::from_millis(1500), 4, true);
        assert_eq!(
            start,
            r#"window.__dstar.live.start(el, $_dstarStream, {"background":true,"cap":4,"header":"x-dstar-token","hiddenPause":1500,"pause":"/app/__dstar/pause","retries":1000,"signal":"_dstarStream","stream":"/app/__dstar/stream"})"#
        );
        // A prefix is a path the browser sent: whatever it holds stays inside the JS string.
        let hostile = live_start("/a'</script>", std::time::Duration::ZERO, 0, false);
        assert!(
            !hostile.contains("</script>") && !hostile.contains('\''),
            "{hostile}"
        );
    }

    #[test]
    fn scripts_are_byte_identical_to_the_originals() {
        assert_eq!(
            after_navigation_script("T", "/a?b", History::Push, "tok", false),
            r#"document.title = "T"; window.history.pushState({dstar: true}, '', "/a?b"); window.__dstar.nav = "tok"; window.__dstar.live && window.__dstar.live.background(false);"#
        );
        assert_eq!(
            query_script("?x=1", History::Replace),
            r#"window.history.replaceState(window.history.state, '', window.location.pathname + "?x=1")"#
        );
    }
}
