//! Templates: minijinja, auto-escaped, with dstar's helpers.
//!
//! Every template is HTML-escaped on output, whatever its file name. Sources come from a
//! directory (read lazily; in debug builds a changed file is picked up on the next render) or
//! are embedded in the binary (`dstar::templates!` embeds the directory in release builds), plus
//! any added by hand with [`Templates::with`].
//!
//! # Helpers available in every template
//!
//! | helper | gives |
//! | --- | --- |
//! | `event("name")`, `event("name", {"id": 3})` | the Datastar action that sends event `name` to this page, with extra values merged into its signals |
//! | `event("name", page="/items")` | the same event sent to the stateless page at `/items` (never a live page: it takes events only from its own tab) |
//! | `get(url)`, `post(url, {options})`, `put`, `patch`, `delete` | a Datastar `@post(...)`-style action: the URL as a safe JS string, Datastar's fetch options checked and written as JSON, and on this site the page's CSRF token header |
//! | `link(url, text)`, `{% call link(url) %}html{% endcall %}` | an `<a href>` that soft-navigates on a plain left click (live pages); `replace`, `hard`, `class`, `id`, `rel`, `target`, `title`, `attrs={..}` |
//! | `navigate(url)`, `navigate(url, replace=true)` | the action that soft-navigates to `url` (for buttons) |
//! | `js(value)` | `value` as a JavaScript literal (JSON), for use inside `data-*` expressions |
//!
//! ```
//! use dstar_runtime::app::App;
//! use dstar_runtime::template::Templates;
//!
//! let app = App::builder()
//!     .secret_key(b"a doc example's key, 32 bytes or more")
//!     .templates(Templates::new())
//!     .build()?;
//! // Outside a page there is no token to add; in a page the header comes first.
//! let html = app.templates().render_str(
//!     r#"{{ post("/search", {"contentType": "form", "retryMaxCount": 2}) }}"#,
//!     minijinja::context! {},
//! )?;
//! assert_eq!(html, "@post(&quot;&#x2f;search&quot;, {contentType: &quot;form&quot;, retryMaxCount: 2})");
//! let err = app.templates().render_str(r#"{{ post("/x", {"retries": 2}) }}"#, minijinja::context! {});
//! assert!(err.unwrap_err().to_string().contains("`post()` has no option `retries`"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Under a prefix
//!
//! URLs given to `link`, `navigate` and `get`...`delete` are paths of the app: when the router
//! is mounted under a prefix (`Router::new().nest("/app", router)`), `link("/items/3", ..)` in
//! a page template writes `href="/app/items/3"`. A path written into the HTML by hand
//! (`href="/items/3"`) is not rewritten, so the browser takes it from the origin's root; write
//! `href="{{ dstar.prefix }}/items/3"` or use the helper. Only same-origin paths are prefixed:
//! `https://...`, relative paths and `#anchors` are left as written. The layout gets the prefix
//! too; other templates rendered outside a page (the error page) are not prefixed.
//!
//! The helpers' output is auto-escaped like any other value, so it is safe in a quoted HTML
//! attribute; the JS strings inside are JSON-encoded with `<`, `>`, `&` and `'` written as
//! `\u` escapes, so no value can end the string or the attribute.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use minijinja::value::{Kwargs, Value};
use minijinja::{AutoEscape, Environment, Error as TemplateError, ErrorKind, State};

use crate::protocol::{NAVIGATE_CALL, TOKEN_HEADER, TOKEN_SIGNAL, js_safe, js_string};

/// The layout every page is wrapped in unless the app or the page names another.
pub const DEFAULT_LAYOUT: &str = "dstar/layout.html";

const DEFAULT_LAYOUT_SOURCE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
{{ head }}
</head>
<body>
{{ flash }}
{{ body }}
</body>
</html>
"#;

/// The template a failed page request is answered with, unless the app names another
/// (`AppBuilder::error_template`). Give the app a template of this name to replace the
/// built-in one.
///
/// It gets `status` (the code, `404`), `reason` (`Not Found`), `message` (what the error says
/// for a 4xx; for a 5xx a generic sentence in release builds and the error's own message in
/// debug builds) and `causes` (the error's sources, outermost first: debug builds' 5xx only,
/// else empty).
pub const DEFAULT_ERROR_TEMPLATE: &str = "dstar/error.html";

const DEFAULT_ERROR_SOURCE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ status }} {{ reason }}</title>
</head>
<body>
<main>
<h1>{{ status }} {{ reason }}</h1>
<p style="white-space: pre-wrap">{{ message }}</p>
{%- if causes %}
<p>Caused by:</p>
<ol>
{%- for cause in causes %}
<li style="white-space: pre-wrap">{{ cause }}</li>
{%- endfor %}
</ol>
{%- endif %}
</main>
</body>
</html>
"#;

/// Where template sources come from.
#[derive(Debug, Clone)]
pub struct Templates {
    dirs: Vec<PathBuf>,
    files: BTreeMap<String, String>,
    reload: bool,
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new()
    }
}

impl Templates {
    /// No templates but the built-in layout and error page; add some with [`with`](Self::with).
    pub fn new() -> Self {
        Templates {
            dirs: Vec::new(),
            files: BTreeMap::new(),
            reload: false,
        }
    }

    /// Templates read from a directory (names are paths relative to it, with `/`). In debug
    /// builds, files are checked for changes before each render.
    pub fn dir(path: impl Into<PathBuf>) -> Self {
        Templates {
            dirs: vec![path.into()],
            files: BTreeMap::new(),
            reload: cfg!(debug_assertions),
        }
    }

    /// Templates embedded in the binary as `(name, source)` pairs.
    pub fn embedded(files: &[(&str, &str)]) -> Self {
        let mut templates = Templates::new();
        for (name, source) in files {
            templates
                .files
                .insert((*name).to_owned(), (*source).to_owned());
        }
        templates
    }

    /// Combines two template sets (for example an app's own with a library's). Names in
    /// `self` win over names in `other`.
    pub fn and(mut self, other: Templates) -> Self {
        self.dirs.extend(other.dirs);
        for (name, source) in other.files {
            self.files.entry(name).or_insert(source);
        }
        self.reload |= other.reload;
        self
    }

    /// Adds (or replaces) one template.
    pub fn with(mut self, name: impl Into<String>, source: impl Into<String>) -> Self {
        self.files.insert(name.into(), source.into());
        self
    }

    pub(crate) fn build(self) -> Engine {
        Engine::new(self)
    }
}

/// The loaded environment, shared by all requests.
#[derive(Debug)]
pub struct Engine {
    env: RwLock<Arc<Environment<'static>>>,
    sources: Templates,
    stamp: Mutex<Option<SystemTime>>,
    /// Counts rebuilds from a start that differs between processes, so a page rendered by
    /// the previous run of a restarted server sees a different number.
    generation: AtomicU64,
    /// The generation open tabs were last told about (see [`Engine::take_change`]).
    announced: AtomicU64,
    /// The app's pages, once a router is built: `event(.., page='/path')` checks its target.
    routes: Routes,
}

/// The routes of the app's pages, shared with the template helpers (empty until a router is
/// built, and then the helpers do not check targets).
pub(crate) type Routes = Arc<RwLock<Vec<&'static crate::route::Route>>>;

impl Engine {
    fn new(sources: Templates) -> Self {
        let routes = Routes::default();
        let env = make_env(&sources, &routes);
        let stamp = Mutex::new(if sources.reload {
            newest_change(&sources)
        } else {
            None
        });
        let start = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        Engine {
            env: RwLock::new(Arc::new(env)),
            sources,
            stamp,
            generation: AtomicU64::new(start),
            announced: AtomicU64::new(start),
            routes,
        }
    }

    /// Tells the helpers which pages the app serves (called when a router is built; a second
    /// router adds its pages).
    pub(crate) fn add_routes(
        &self,
        routes: impl IntoIterator<Item = &'static crate::route::Route>,
    ) {
        let mut known = self.routes.write().unwrap_or_else(|e| e.into_inner());
        for route in routes {
            if !known.iter().any(|have| std::ptr::eq(*have, route)) {
                known.push(route);
            }
        }
    }

    /// Which version of the template files the engine renders: changes each time a template
    /// file changes (in debug builds, where files are watched), and between runs.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Checks the template files; `Some(generation)` the first time a change is seen since
    /// the last call that returned one (live reload re-renders open tabs once per change).
    pub(crate) fn take_change(&self) -> Option<u64> {
        drop(self.env());
        let generation = self.generation();
        (self.announced.swap(generation, Ordering::SeqCst) != generation).then_some(generation)
    }

    /// The current environment (rebuilt first if a template file changed, in debug builds).
    pub fn env(&self) -> Arc<Environment<'static>> {
        if self.sources.reload {
            let newest = newest_change(&self.sources);
            let mut stamp = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
            if *stamp != newest {
                *stamp = newest;
                let fresh = Arc::new(make_env(&self.sources, &self.routes));
                *self.env.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.env.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Renders template `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, TemplateError> {
        let env = self.env();
        let template = env.get_template(name)?;
        template.render(ctx)
    }

    /// Renders only block `block` of template `name`.
    pub fn render_block(
        &self,
        name: &str,
        block: &str,
        ctx: Value,
    ) -> Result<String, TemplateError> {
        let env = self.env();
        let template = env.get_template(name)?;
        let mut captured = template.render_captured(ctx)?;
        captured.with_state_mut(|state| state.render_block(block))
    }

    /// Renders a template given as a string (not cached).
    pub fn render_str(&self, source: &str, ctx: Value) -> Result<String, TemplateError> {
        self.env().render_str(source, ctx)
    }
}

fn make_env(sources: &Templates, routes: &Routes) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let dirs = sources.dirs.clone();
    let files = sources.files.clone();
    env.set_loader(move |name| {
        if let Some(source) = files.get(name) {
            return Ok(Some(source.clone()));
        }
        if name == DEFAULT_LAYOUT {
            return Ok(Some(DEFAULT_LAYOUT_SOURCE.to_owned()));
        }
        if name == DEFAULT_ERROR_TEMPLATE {
            return Ok(Some(DEFAULT_ERROR_SOURCE.to_owned()));
        }
        if name.split('/').any(|part| part == ".." || part.is_empty()) || name.contains('\\') {
            return Ok(None);
        }
        for dir in &dirs {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(source) => return Ok(Some(source)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(TemplateError::new(
                        ErrorKind::InvalidOperation,
                        format!("could not read template `{name}` from `{}`", dir.display()),
                    )
                    .with_source(err));
                }
            }
        }
        Ok(None)
    });
    let known = Arc::clone(routes);
    env.add_function(
        "event",
        move |state: &State<'_, '_>, name: &str, extra: Option<Value>, kwargs: Kwargs| {
            event(state, name, extra, kwargs, &known)
        },
    );
    for method in ["get", "post", "put", "patch", "delete"] {
        env.add_function(
            method,
            move |state: &State<'_, '_>, url: &str, options: Option<Value>, kwargs: Kwargs| {
                action(state, method, url, options, kwargs)
            },
        );
    }
    env.add_function("navigate", navigate);
    env.add_function("link", link);
    env.add_function("field_error", field_error);
    env.add_function("js", |value: Value| -> Result<String, TemplateError> {
        let json = serde_json::to_string(&value).map_err(|e| {
            TemplateError::new(ErrorKind::InvalidOperation, "value is not JSON").with_source(e)
        })?;
        Ok(js_safe(&json))
    });
    env
}

fn newest_change(sources: &Templates) -> Option<SystemTime> {
    fn walk(dir: &std::path::Path, newest: &mut Option<SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                walk(&entry.path(), newest);
            } else if let Ok(modified) = meta.modified() {
                *newest = (*newest).max(Some(modified));
            }
        }
    }
    let mut newest = None;
    for dir in &sources.dirs {
        walk(dir, &mut newest);
    }
    newest
}

/// App path `url` as the browser must ask for it: under the prefix of the page being rendered.
fn app_url(state: &State<'_, '_>, url: &str) -> String {
    let prefix = state
        .lookup("dstar")
        .and_then(|page| page.get_attr("prefix").ok())
        .and_then(|prefix| prefix.as_str().map(str::to_owned))
        .unwrap_or_default();
    crate::protocol::under_prefix(&prefix, url)
}

/// The URL a helper writes for `url`, or an error naming the helper when `url` could leave the
/// site or run script. Accepted: a path on this site (`/items/3`, put under the page's
/// prefix), a fragment or query of the current page (`#top`, `?page=2`; not for `navigate`),
/// and, only with `external=true`, an absolute `http(s)` URL. `javascript:`, `data:`,
/// protocol-relative `//host` and `/\host` URLs are refused whatever the options, as
/// `Error::redirect` and the navigation endpoint refuse them.
fn checked_url(
    state: &State<'_, '_>,
    helper: &str,
    url: &str,
    relative: bool,
    external: bool,
) -> Result<String, TemplateError> {
    let clean = !url
        .bytes()
        .any(|b| b.is_ascii_control() || b == b'\\' || b == b' ');
    if crate::protocol::is_same_origin_path(url) {
        return Ok(app_url(state, url));
    }
    if relative && clean && (url.starts_with('#') || url.starts_with('?')) {
        return Ok(url.to_owned());
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let http = lower.starts_with("http://") || lower.starts_with("https://");
    if external && http && clean {
        return Ok(url.to_owned());
    }
    let hint = if http {
        format!("; to leave the site on purpose, say so: `{helper}(url, ..., external=true)`")
    } else {
        String::new()
    };
    Err(TemplateError::new(
        ErrorKind::InvalidOperation,
        format!(
            "`{helper}()` refused `{url}`: it takes a path on this site, like `/items/3`{hint}"
        ),
    ))
}

fn render_error(message: String) -> TemplateError {
    TemplateError::new(ErrorKind::InvalidOperation, message)
}

/// The JS expression of the page's event (CSRF) token: the token signal on live pages, the
/// token itself on stateless ones; `None` outside a page (the error page).
fn page_token(state: &State<'_, '_>) -> Result<Option<String>, TemplateError> {
    let Some(page) = state.lookup("dstar") else {
        return Ok(None);
    };
    if page.get_attr("live")?.is_true() {
        return Ok(Some(format!("${TOKEN_SIGNAL}")));
    }
    let token = page.get_attr("token")?;
    Ok(token
        .as_str()
        .filter(|token| !token.is_empty())
        .map(js_string))
}

/// The Datastar fetch options `get/post/...(url, {...})` take, and what each accepts.
const FETCH_OPTIONS: &[&str] = &[
    "headers",
    "contentType",
    "selector",
    "filterSignals",
    "openWhenHidden",
    "payload",
    "requestCancellation",
    "retry",
    "retryInterval",
    "retryScaler",
    "retryMaxWait",
    "retryMaxCount",
];

/// `get/post/put/patch/delete(url, {options}, external=false)`: a Datastar fetch action.
///
/// `options` is a map of Datastar's fetch options, each checked and written as JSON (regular
/// expressions of `filterSignals` as `new RegExp("...")`); an unknown name fails the render,
/// naming it. A URL on this site also carries the page's CSRF token in the `x-dstar-token`
/// header (an app's own handler checks it with `App::verify_csrf`); an external URL never does.
fn action(
    state: &State<'_, '_>,
    method: &str,
    url: &str,
    options: Option<Value>,
    kwargs: Kwargs,
) -> Result<String, TemplateError> {
    let external = kwargs.get::<Option<bool>>("external")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let url = checked_url(state, method, url, true, external)?;
    let leaves = !url.starts_with(['/', '#', '?']);
    let token = if leaves { None } else { page_token(state)? };
    let options = fetch_options(method, options, token.as_deref())?;
    Ok(match options {
        Some(options) => format!("@{method}({}, {options})", js_string(&url)),
        None => format!("@{method}({})", js_string(&url)),
    })
}

/// The options object of an action, or `None` when there is nothing to say.
fn fetch_options(
    helper: &str,
    options: Option<Value>,
    token: Option<&str>,
) -> Result<Option<String>, TemplateError> {
    let options = match options {
        None => serde_json::Map::new(),
        Some(value) if value.is_none() || value.is_undefined() => serde_json::Map::new(),
        Some(value) => match to_json(&value)? {
            serde_json::Value::Object(map) if value.kind() == minijinja::value::ValueKind::Map => {
                map
            }
            _ => {
                return Err(render_error(format!(
                    "the second argument of `{helper}()` must be a map of fetch options, like {{\"contentType\": \"form\"}}"
                )));
            }
        },
    };
    let wrong = |name: &str, what: &str| {
        render_error(format!("`{helper}()` option `{name}` must be {what}"))
    };
    let mut out: Vec<String> = Vec::new();
    let mut headers: Vec<String> = token
        .map(|token| format!("'{TOKEN_HEADER}': {token}"))
        .into_iter()
        .collect();
    for (name, value) in &options {
        let written = match name.as_str() {
            "headers" => {
                let map = value
                    .as_object()
                    .ok_or_else(|| wrong(name, "a map of header names to values"))?;
                for (header, text) in map {
                    if header.eq_ignore_ascii_case(TOKEN_HEADER) {
                        return Err(render_error(format!(
                            "`{helper}()` sets the `{TOKEN_HEADER}` header itself; leave it out of `headers`"
                        )));
                    }
                    if header.is_empty()
                        || !header.bytes().all(|b| b.is_ascii_graphic() && b != b':')
                    {
                        return Err(render_error(format!(
                            "`{helper}()` header name `{}` is not a valid header name",
                            header.escape_debug()
                        )));
                    }
                    let text = match text {
                        serde_json::Value::String(text) => text.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Bool(b) => b.to_string(),
                        _ => return Err(wrong(name, "a map of header names to text")),
                    };
                    headers.push(format!("{}: {}", js_string(header), js_string(&text)));
                }
                continue;
            }
            "contentType" => {
                one_of(value, &["json", "form"]).ok_or_else(|| wrong(name, "`json` or `form`"))?
            }
            "requestCancellation" => one_of(value, &["auto", "cleanup", "disabled"])
                .ok_or_else(|| wrong(name, "`auto`, `cleanup` or `disabled`"))?,
            "retry" => one_of(value, &["auto", "error", "always", "never"])
                .ok_or_else(|| wrong(name, "`auto`, `error`, `always` or `never`"))?,
            "selector" => match value {
                serde_json::Value::String(selector) => js_string(selector),
                serde_json::Value::Null => "null".to_owned(),
                _ => return Err(wrong(name, "a CSS selector")),
            },
            "openWhenHidden" => match value {
                serde_json::Value::Bool(on) => on.to_string(),
                _ => return Err(wrong(name, "true or false")),
            },
            "retryInterval" | "retryScaler" | "retryMaxWait" | "retryMaxCount" => match value {
                serde_json::Value::Number(n) if n.as_f64().is_some_and(|n| n >= 0.0) => {
                    n.to_string()
                }
                _ => return Err(wrong(name, "a number, 0 or more")),
            },
            "payload" => js_safe(&value.to_string()),
            "filterSignals" => {
                let map = value.as_object().ok_or_else(|| {
                    wrong(
                        name,
                        "a map with `include` and/or `exclude` regular expressions (as text)",
                    )
                })?;
                let mut parts = Vec::new();
                for (key, pattern) in map {
                    let (true, serde_json::Value::String(pattern)) =
                        (key == "include" || key == "exclude", pattern)
                    else {
                        return Err(wrong(
                            name,
                            "a map with `include` and/or `exclude` regular expressions (as text)",
                        ));
                    };
                    parts.push(format!("{key}: new RegExp({})", js_string(pattern)));
                }
                format!("{{{}}}", parts.join(", "))
            }
            _ => {
                return Err(render_error(format!(
                    "`{helper}()` has no option `{}`; it takes {}",
                    name.escape_debug(),
                    FETCH_OPTIONS.join(", ")
                )));
            }
        };
        out.push(format!("{name}: {written}"));
    }
    if !headers.is_empty() {
        out.insert(0, format!("headers: {{{}}}", headers.join(", ")));
    }
    Ok((!out.is_empty()).then(|| format!("{{{}}}", out.join(", "))))
}

/// `value` as a JS string when it is one of `allowed`.
fn one_of(value: &serde_json::Value, allowed: &[&str]) -> Option<String> {
    let text = value.as_str()?;
    allowed.contains(&text).then(|| js_string(text))
}

fn to_json(value: &Value) -> Result<serde_json::Value, TemplateError> {
    serde_json::to_value(value).map_err(|e| {
        TemplateError::new(ErrorKind::InvalidOperation, "value is not JSON").with_source(e)
    })
}

/// `event("name", {extra}, page="/path")`: the action sending an event to the page being
/// rendered, or with `page`, to the stateless page at that path of the app (its token is
/// the same kind; a live page takes events only from its own tab, so it cannot be a target).
fn event(
    state: &State<'_, '_>,
    name: &str,
    extra: Option<Value>,
    kwargs: Kwargs,
    routes: &Routes,
) -> Result<String, TemplateError> {
    let target: Option<String> = kwargs.get("page")?;
    kwargs.assert_all_used()?;
    let page = state.lookup("dstar").ok_or_else(|| {
        TemplateError::new(
            ErrorKind::InvalidOperation,
            "`event()` is only available in page templates",
        )
    })?;
    // Live pages keep their (renewed) token in a local signal; stateless pages get it inline.
    let live = page.get_attr("live")?.is_true();
    let token = if live {
        format!("${TOKEN_SIGNAL}")
    } else {
        js_string(page.get_attr("token")?.as_str().unwrap_or_default())
    };
    let args = match extra {
        None => None,
        Some(extra) => {
            if extra.as_object().is_none() || extra.kind() != minijinja::value::ValueKind::Map {
                return Err(TemplateError::new(
                    ErrorKind::InvalidOperation,
                    "the second argument of `event()` must be a map, like {\"id\": 3}",
                ));
            }
            let json = serde_json::to_string(&extra).map_err(|e| {
                TemplateError::new(ErrorKind::InvalidOperation, "event arguments are not JSON")
                    .with_source(e)
            })?;
            Some(ascii_json(&json))
        }
    };
    if let Some(target) = target {
        check_event_target(name, &target, routes)?;
        let url = checked_url(state, "event", &target, false, false)?;
        return Ok(crate::protocol::event_action(
            &url,
            name,
            &token,
            args.as_deref(),
            false,
        ));
    }
    let url = page.get_attr("event_url")?;
    Ok(crate::protocol::event_action(
        url.as_str().unwrap_or("/"),
        name,
        &token,
        args.as_deref(),
        live,
    ))
}

/// Refuses `event(name, page=target)` when the app's pages (known once a router is built)
/// have no stateless page at `target` handling `name`.
fn check_event_target(name: &str, target: &str, routes: &Routes) -> Result<(), TemplateError> {
    let routes = routes.read().unwrap_or_else(|e| e.into_inner());
    if routes.is_empty() {
        return Ok(());
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let call = format!(
        "`event('{}', page='{}')`",
        name.escape_debug(),
        target.escape_debug()
    );
    let Some((route, _)) = crate::route::lookup(&routes, |route| *route, path) else {
        return Err(render_error(format!(
            "{call}: the app has no page at `{path}`"
        )));
    };
    if route.live {
        return Err(render_error(format!(
            "{call}: `{}` is a live page, and a live page takes events only from its own tab; \
             target a stateless page, or publish a message its sessions get in `info`",
            route.name
        )));
    }
    if !route.events.contains(&name) {
        return Err(render_error(format!(
            "{call}: page `{}` has no event `{}` (it has: {})",
            route.name,
            name.escape_debug(),
            if route.events.is_empty() {
                "none".to_owned()
            } else {
                route.events.join(", ")
            }
        )));
    }
    Ok(())
}

/// The events a template sends by a literal name, `event('name')` or `event("name", {...})`,
/// each with the line it is on, in source order: what the start-up check compares with the
/// page's handlers.
///
/// The scan reads the source rather than minijinja's syntax tree (which it does not expose
/// outside its unstable API), and is conservative: only calls inside `{{ }}` and `{% %}` count,
/// comments, `{% raw %}` blocks and string literals are skipped, and a call whose name is not a
/// string literal (`event(name)`, in a macro) is not listed, so it never reports a call that
/// could be right. Included and extended templates are not followed: they may serve several
/// pages.
pub(crate) fn event_calls(source: &str) -> Vec<(&str, usize)> {
    let bytes = source.as_bytes();
    let mut calls = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        let close: &[u8] = match &bytes[i..i + 2] {
            b"{#" => {
                i = find(bytes, i + 2, b"#}").map_or(bytes.len(), |end| end + 2);
                continue;
            }
            b"{{" => b"}}",
            b"{%" => b"%}",
            _ => {
                i += 1;
                continue;
            }
        };
        let end = expression(source, i + 2, close, &mut calls);
        if close == b"%}" && is_raw_tag(&source[i + 2..end]) {
            i = raw_end(bytes, end);
        } else {
            i = end + 2;
        }
    }
    calls
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| from + at)
}

fn is_raw_tag(tag: &str) -> bool {
    tag.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) == "raw"
}

/// Where the `{% endraw %}` closing a raw block ends.
fn raw_end(bytes: &[u8], mut from: usize) -> usize {
    while let Some(open) = find(bytes, from, b"{%") {
        let Some(close) = find(bytes, open + 2, b"%}") else {
            break;
        };
        let tag = std::str::from_utf8(&bytes[open + 2..close]).unwrap_or_default();
        if tag.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) == "endraw" {
            return close + 2;
        }
        from = close + 2;
    }
    bytes.len()
}

/// Scans one `{{ }}` or `{% %}` from `start`, recording its `event('literal')` calls; returns
/// where its closing delimiter starts (or the end of the source).
fn expression<'s>(
    source: &'s str,
    start: usize,
    close: &[u8],
    calls: &mut Vec<(&'s str, usize)>,
) -> usize {
    let bytes = source.as_bytes();
    let mut i = start;
    let mut after_dot = false;
    while i < bytes.len() {
        if bytes[i..].starts_with(close) {
            return i;
        }
        let c = bytes[i];
        if c == b'\'' || c == b'"' {
            i = string_end(bytes, i).unwrap_or(bytes.len());
            after_dot = false;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let word_start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            if &bytes[word_start..i] == b"event"
                && !after_dot
                && let Some(name) = literal_argument(source, i)
                // `event(.., page='/path')` goes to another page, checked when it renders.
                && !has_keyword(source, i, "page")
            {
                let line = 1 + bytes[..word_start].iter().filter(|&&b| b == b'\n').count();
                calls.push((name, line));
            }
            after_dot = false;
        } else {
            if !c.is_ascii_whitespace() {
                after_dot = c == b'.';
            }
            i += 1;
        }
    }
    bytes.len()
}

/// Whether the call whose `(` follows `from` passes keyword argument `keyword` at its top
/// level (`event('x', page='/a')`); string literals and nested brackets are skipped.
fn has_keyword(source: &str, from: usize, keyword: &str) -> bool {
    let bytes = source.as_bytes();
    let Some(open) = source[from..].find('(').map(|at| from + at) else {
        return false;
    };
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                i = string_end(bytes, i).unwrap_or(bytes.len());
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return false;
                }
            }
            c if depth == 1
                && (c.is_ascii_alphabetic() || c == b'_')
                && !bytes[i - 1].is_ascii_alphanumeric()
                && bytes[i - 1] != b'_' =>
            {
                let end = i + bytes[i..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                if &source[i..end] == keyword
                    && source[end..].trim_start().starts_with('=')
                    && !source[end..].trim_start().starts_with("==")
                {
                    return true;
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Past the string literal opening at `start`, honouring backslash escapes.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The name in `('name'` or `("name",` right after `event` at `from`, when it is a plain string
/// literal followed by `)` or `,`.
fn literal_argument(source: &str, from: usize) -> Option<&str> {
    let rest = source[from..].trim_start().strip_prefix('(')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &rest[1..];
    let end = body.find(quote)?;
    let name = &body[..end];
    if name.contains('\\') {
        return None;
    }
    let after = body[end + 1..].trim_start();
    (after.starts_with(')') || after.starts_with(',')).then_some(name)
}

/// Header values must be ASCII: non-ASCII characters of the JSON become `\u` escapes.
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `field_error(errors, "name")`: the error of field `name` in `errors` (a `FieldErrors`, a map
/// of field to message) as `<p class="field-error" id="name-error" role="alert">...</p>`, or
/// nothing when the field has none, `errors` is empty or not given at all (see `form`).
fn field_error(errors: Option<Value>, field: &str) -> Value {
    let message = errors
        .filter(|errors| !errors.is_undefined() && !errors.is_none())
        .and_then(|errors| errors.get_attr(field).ok())
        .filter(|message| !message.is_undefined() && !message.is_none());
    let Some(message) = message else {
        return Value::from_safe_string(String::new());
    };
    let mut html = String::from("<p class=\"field-error\" id=\"");
    crate::sse::escape_html_into(&mut html, field);
    html.push_str("-error\" role=\"alert\">");
    crate::sse::escape_html_into(&mut html, &message.to_string());
    html.push_str("</p>");
    Value::from_safe_string(html)
}

/// `navigate(url, replace=false)`: the action soft-navigating to `url` (falls back to a page
/// load); with `replace=true` the current history entry is replaced instead of a new one
/// pushed.
fn navigate(state: &State<'_, '_>, url: &str, kwargs: Kwargs) -> Result<String, TemplateError> {
    let replace = kwargs.get::<Option<bool>>("replace")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let url = checked_url(state, "navigate", url, false, false)?;
    if !replace {
        return Ok(crate::protocol::navigate_action(&url));
    }
    let url = js_string(&url);
    Ok(format!(
        "window.__dstarNav ? {NAVIGATE_CALL}{url}, \"replace\") : window.location.replace({url})"
    ))
}

/// The attributes `link()` takes as keyword arguments (others go in `attrs={...}`).
const LINK_ATTRIBUTES: &[&str] = &["class", "id", "rel", "target", "title"];

/// `link(url, text, class=.., id=.., rel=.., target=.., title=.., attrs={..}, replace=false,
/// hard=false, external=false)`: an anchor that soft-navigates on a plain left click.
///
/// - `text` is escaped unless it is already safe HTML (a macro's output, `|safe`); called as
///   `{% call link(url) %}<b>html</b>{% endcall %}` the block is the content.
/// - `replace=true` replaces the history entry; `hard=true` (or a `target`) makes a plain
///   link that loads the page; `external=true` with an `http(s)` URL a plain link to another
///   site with `rel="noopener noreferrer"`.
/// - `attrs` adds attributes by name (`aria-label`, `lang`, ...). `href`, event
///   handlers (`on*`) and Datastar attributes (`data-on*`, `data-attr*`, ...: anything that
///   runs an expression or could change the target) are refused, so the URL rule holds.
fn link(
    state: &State<'_, '_>,
    url: &str,
    text: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, TemplateError> {
    let external = kwargs.get::<Option<bool>>("external")?.unwrap_or(false);
    let replace = kwargs.get::<Option<bool>>("replace")?.unwrap_or(false);
    let hard = kwargs.get::<Option<bool>>("hard")?.unwrap_or(false);
    let caller: Option<Value> = kwargs.get("caller")?;
    let mut attributes: Vec<(String, String)> = Vec::new();
    for name in LINK_ATTRIBUTES {
        if let Some(value) = kwargs.get::<Option<Value>>(name)?
            && !value.is_none()
        {
            attributes.push(((*name).to_owned(), value.to_string()));
        }
    }
    if let Some(extra) = kwargs.get::<Option<Value>>("attrs")? {
        match to_json(&extra)? {
            serde_json::Value::Object(map) => {
                for (name, value) in map {
                    let value = match value {
                        serde_json::Value::String(text) => text,
                        serde_json::Value::Null => continue,
                        other => other.to_string(),
                    };
                    attributes.push((name, value));
                }
            }
            _ => {
                return Err(render_error(
                    "`link()` option `attrs` must be a map of attribute names to values".to_owned(),
                ));
            }
        }
    }
    kwargs.assert_all_used()?;
    for (name, _) in &attributes {
        link_attribute_allowed(name)?;
    }
    let url = &checked_url(state, "link", url, true, external)?;
    let leaves = !url.starts_with(['/', '#', '?']);
    let content = match (text, caller) {
        (Some(_), Some(_)) => {
            return Err(render_error(
                "`link()` takes its content as `text` or from a `{% call %}` block, not both"
                    .to_owned(),
            ));
        }
        (Some(text), None) => text,
        (None, Some(caller)) => caller.call(state, &[])?,
        (None, None) => {
            return Err(render_error(
                "`link(url, text)` needs its text, or a `{% call link(url) %}...{% endcall %}` block"
                    .to_owned(),
            ));
        }
    };
    let targeted = attributes
        .iter()
        .any(|(name, value)| name == "target" && !value.eq_ignore_ascii_case("_self"));
    let mut html = String::from("<a href=\"");
    crate::sse::escape_html_into(&mut html, url);
    html.push('"');
    let mut has_rel = false;
    for (name, value) in &attributes {
        has_rel |= name == "rel";
        html.push(' ');
        html.push_str(name);
        html.push_str("=\"");
        crate::sse::escape_html_into(&mut html, value);
        html.push('"');
    }
    if leaves {
        // Another site: a plain link, which gets no handle on this page.
        if !has_rel {
            html.push_str(" rel=\"noopener noreferrer\"");
        }
    } else if !hard && !targeted {
        html.push_str(" data-on:click=\"");
        let handler = crate::protocol::link_click(url);
        let handler = if replace {
            handler.replacen(
                &format!("{NAVIGATE_CALL}{})", js_string(url)),
                &format!("{NAVIGATE_CALL}{}, \"replace\")", js_string(url)),
                1,
            )
        } else {
            handler
        };
        crate::sse::escape_html_into(&mut html, &handler);
        html.push('"');
    }
    html.push('>');
    if content.is_safe() {
        html.push_str(&content.to_string());
    } else if let Some(text) = content.as_str() {
        crate::sse::escape_html_into(&mut html, text);
    } else {
        crate::sse::escape_html_into(&mut html, &content.to_string());
    }
    html.push_str("</a>");
    Ok(Value::from_safe_string(html))
}

/// Refuses a `link()` attribute that could run script or change where the link goes.
fn link_attribute_allowed(name: &str) -> Result<(), TemplateError> {
    let lower = name.to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'));
    let why = if !valid {
        "is not an attribute name"
    } else if lower == "href" || lower.ends_with(":href") {
        "is the link's target, which `link()` writes from its checked URL"
    } else if lower.starts_with("on") {
        "is an event handler, which would run script"
    } else if lower.starts_with("data-") {
        "is a Datastar attribute (`data-on*`, `data-attr*`, ... run expressions or change the link); put it on an element around the link"
    } else {
        return Ok(());
    };
    Err(render_error(format!(
        "`link()` refused attribute `{}`: it {why}",
        name.escape_debug()
    )))
}

/// A template error as a person needs it: the message, the template and line, and the source
/// around the line.
pub fn describe(err: &TemplateError) -> String {
    let mut text = format!("template error: {err:#}");
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(&format!("\ncaused by: {inner}"));
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn event_calls_lists_literal_names_with_their_lines() {
        let source = "<h1>{{ title }}</h1>\n\
            <button data-on:click=\"{{ event('save') }}\">Save</button>\n\
            <button data-on:click=\"{{ event(\"remove\", {'id': item.id}) }}\">x</button>\n\
            {% set action = event( 'reset' ) %}\n\
            {# {{ event('commented') }} #}\n\
            {% raw %}{{ event('raw') }}{% endraw %}\n\
            {{ 'event(\"in a string\")' }} {{ item.event('method') }} {{ my_event('other') }}\n\
            {{ event(name) }} {{ event('a' ~ b) }} event('plain text')\n\
            {{ event('elsewhere', {'page': 1}, page = '/items') }} {{ event('kept', {'x': page == 1}) }}";
        assert_eq!(
            event_calls(source),
            [("save", 2), ("remove", 3), ("reset", 4), ("kept", 9)]
        );
    }

    #[test]
    fn event_calls_survives_unclosed_tags() {
        assert_eq!(event_calls("{{ event('a') }} {{ event('b'"), [("a", 1)]);
        assert_eq!(event_calls("{# never closed {{ event('a') }}"), []);
        assert_eq!(event_calls("{{ 'unclosed }}"), []);
        assert_eq!(event_calls("{"), []);
    }

    #[test]
    fn helpers_put_app_paths_under_the_page_prefix() {
        let engine = Templates::new()
            .with(
                "p.html",
                r##"{{ link("/items/3", "x") }}|{{ navigate("/a") }}|{{ get("/api?q=1") }}|{{ post("https://x.dev/", external=true) }}|{{ link("#top", "t") }}"##,
            )
            .build();
        let page = |prefix: &str| context! { dstar => context! { prefix => prefix } };
        // Read the attributes as the browser does (minijinja escapes `/` too).
        let render = |ctx| engine.render("p.html", ctx).unwrap().replace("&#x2f;", "/");
        let mounted = render(page("/app"));
        assert!(mounted.contains(r#"href="/app/items/3""#), "{mounted}");
        assert!(mounted.contains("&quot;/app/a&quot;"), "{mounted}");
        assert!(
            mounted.contains("@get(&quot;/app/api?q=1&quot;)"),
            "{mounted}"
        );
        assert!(
            mounted.contains("@post(&quot;https://x.dev/&quot;)"),
            "{mounted}"
        );
        assert!(mounted.contains(r##"href="#top""##), "{mounted}");
        let root = render(page(""));
        assert!(root.contains(r#"href="/items/3""#), "{root}");
        let outside = render(context! {});
        assert!(outside.contains(r#"href="/items/3""#), "{outside}");
    }

    #[test]
    fn helpers_refuse_urls_that_leave_the_site_or_run_script() {
        let engine = Templates::new()
            .with("t.html", "{{ call }}")
            .with(
                "ok.html",
                r##"{{ link("https://docs.rs/", "docs", external=true) }}|{{ get("?page=2") }}"##,
            )
            .build();
        let env = engine.env();
        let render = |source: &str| env.render_str(source, context! {});
        for (source, helper) in [
            (r#"{{ navigate("javascript:alert(1)") }}"#, "navigate"),
            (r#"{{ navigate("//evil.example/") }}"#, "navigate"),
            (r#"{{ navigate("?page=2") }}"#, "navigate"),
            (r#"{{ navigate("https://x.dev/") }}"#, "navigate"),
            (r#"{{ link("javascript:alert(1)", "x") }}"#, "link"),
            (
                r#"{{ link("JavaScript:alert(1)", "x", external=true) }}"#,
                "link",
            ),
            (
                r#"{{ link("data:text/html,hi", "x", external=true) }}"#,
                "link",
            ),
            (r#"{{ link("/\evil.example", "x") }}"#, "link"),
            (r#"{{ link("https://x.dev/", "x") }}"#, "link"),
            (
                r#"{{ link("https://x.dev/
", "x", external=true) }}"#,
                "link",
            ),
            (r#"{{ get("//evil.example/api") }}"#, "get"),
            (r#"{{ post("javascript:alert(1)") }}"#, "post"),
            (r#"{{ delete("https://x.dev/") }}"#, "delete"),
        ] {
            let err = render(source).expect_err(source);
            let text = err.to_string();
            assert!(
                text.contains(&format!("`{helper}()` refused")),
                "{source}: {text}"
            );
        }
        let hint = render(r#"{{ link("https://x.dev/", "x") }}"#).unwrap_err();
        assert!(hint.to_string().contains("external=true"), "{hint}");

        let html = engine.render("ok.html", context! {}).unwrap();
        assert!(
            html.starts_with(r#"<a href="https://docs.rs/" rel="noopener noreferrer">docs</a>"#),
            "{html}"
        );
        assert!(html.contains("@get(&quot;?page=2&quot;)"), "{html}");
    }

    #[test]
    fn escapes_and_reports_location() {
        let engine = Templates::new()
            .with("a.html", "<p>{{ name }}</p>")
            .with("bad.html", "line one\n{{ missing.field }}")
            .build();
        let html = engine
            .render("a.html", context! { name => "<b>&'\"" })
            .unwrap();
        assert_eq!(html, "<p>&lt;b&gt;&amp;&#x27;&quot;</p>");
        let err = engine.render("bad.html", context! {}).unwrap_err();
        let text = describe(&err);
        assert!(text.contains("bad.html"), "{text}");
        assert!(text.contains("bad.html:2"), "{text}");
        assert!(text.contains("missing.field"), "{text}");
    }

    #[test]
    fn field_errors_render_next_to_their_field_and_nothing_otherwise() {
        let engine = Templates::new().build();
        let render = |ctx: Value| {
            engine
                .render_str(
                    r#"[{{ field_error(errors, "name") }}][{{ field_error(errors, "qty") }}]"#,
                    ctx,
                )
                .unwrap()
        };
        let mut errors = crate::form::FieldErrors::new();
        errors.add("name", "is <taken>");
        assert_eq!(
            render(minijinja::context! { errors => errors }),
            r#"[<p class="field-error" id="name-error" role="alert">is &lt;taken&gt;</p>][]"#
        );
        // No errors yet, or none passed: no strict-mode trap.
        assert_eq!(
            render(minijinja::context! { errors => crate::form::FieldErrors::new() }),
            "[][]"
        );
        assert_eq!(render(minijinja::context! {}), "[][]");
    }

    /// What `page` gives templates of a page at `/here` (under `prefix`): a stateless one with
    /// token `tok`, or a live one (whose events go to the session endpoint).
    fn page_context(live: bool, prefix: &str) -> Value {
        let event_url = if live {
            format!("{prefix}{}", crate::protocol::EVENT_PATH)
        } else {
            "/here".to_owned()
        };
        context! {
            url => "/here",
            event_url => event_url,
            token => if live { "" } else { "tok" },
            live => live,
            prefix => prefix,
        }
    }

    /// Renders `source` as a stateless page with token `tok` (or a live one) would, with `/`
    /// unescaped as the browser reads it.
    fn page_render(source: &str, live: bool) -> Result<String, TemplateError> {
        let engine = Templates::new().with("p.html", source).build();
        let page = page_context(live, "");
        engine
            .render("p.html", context! { dstar => page })
            .map(|html| html.replace("&#x2f;", "/"))
    }

    #[test]
    fn actions_take_fetch_options_and_carry_the_token_on_this_site() {
        let html = page_render(
            r##"{{ post("/api/items", {"contentType": "form", "selector": "#f", "headers": {"X-Mode": "a'b</x>"}, "openWhenHidden": true, "retry": "error", "retryInterval": 250, "retryMaxCount": 3, "filterSignals": {"include": "^form\\.", "exclude": "_"}}) }}"##,
            false,
        )
        .unwrap();
        // Attribute escaping on top of JSON strings: the browser reads the quoted expression.
        let expression = crate::sse::unescape_html(&html);
        assert_eq!(
            expression,
            r##"@post("/api/items", {headers: {'x-dstar-token': "tok", "X-Mode": "a\u0027b\u003c/x\u003e"}, contentType: "form", filterSignals: {exclude: new RegExp("_"), include: new RegExp("^form\\.")}, openWhenHidden: true, retry: "error", retryInterval: 250, retryMaxCount: 3, selector: "#f"})"##
        );
        assert!(!html.contains('<') && !html.contains('\''), "{html}");
        // Without options a same-site URL still carries the token; a live page's is its signal.
        assert_eq!(
            crate::sse::unescape_html(&page_render(r#"{{ delete("/x/1") }}"#, false).unwrap()),
            r#"@delete("/x/1", {headers: {'x-dstar-token': "tok"}})"#
        );
        assert_eq!(
            crate::sse::unescape_html(&page_render(r#"{{ put("/x/1") }}"#, true).unwrap()),
            r#"@put("/x/1", {headers: {'x-dstar-token': $_dstarToken}})"#
        );
        // Another site never gets it.
        assert_eq!(
            crate::sse::unescape_html(
                &page_render(
                    r#"{{ get("https://x.dev/a", {"retry": "never"}, external=true) }}"#,
                    false
                )
                .unwrap()
            ),
            r#"@get("https://x.dev/a", {retry: "never"})"#
        );
    }

    #[test]
    fn actions_refuse_unknown_or_wrong_options_naming_them() {
        for (source, says) in [
            (
                r#"{{ post("/a", {"contentTyp": "form"}) }}"#,
                "`post()` has no option `contentTyp`",
            ),
            (
                r#"{{ get("/a", {"contentType": "xml"}) }}"#,
                "`get()` option `contentType` must be `json` or `form`",
            ),
            (
                r#"{{ get("/a", {"retryInterval": -1}) }}"#,
                "option `retryInterval` must be a number",
            ),
            (
                r#"{{ get("/a", {"openWhenHidden": "yes"}) }}"#,
                "option `openWhenHidden` must be true or false",
            ),
            (
                r#"{{ get("/a", {"filterSignals": {"only": "x"}}) }}"#,
                "option `filterSignals` must be",
            ),
            (
                r#"{{ get("/a", {"headers": {"x-dstar-token": "forged"}}) }}"#,
                "sets the `x-dstar-token` header itself",
            ),
            (
                r#"{{ get("/a", {"headers": {"bad name": "x"}}) }}"#,
                "is not a valid header name",
            ),
            (
                r#"{{ get("/a", [1, 2]) }}"#,
                "must be a map of fetch options",
            ),
        ] {
            let err = page_render(source, false).expect_err(source).to_string();
            assert!(err.contains(says), "{source}: {err}");
        }
    }

    #[test]
    fn navigate_and_link_options() {
        let html = page_render(
            r#"{{ navigate("/a", replace=true) }}@@{{ link("/b", "B", replace=true) }}@@{{ link("/c", "C", hard=true, id="c", attrs={"aria-label": "go <c>", "rel": "next"}) }}@@{{ link("/d", "D", target="_blank") }}"#,
            false,
        )
        .unwrap();
        let parts: Vec<&str> = html.split("@@").collect();
        assert_eq!(
            crate::sse::unescape_html(parts[0]),
            r#"window.__dstarNav ? window.__dstarNav("/a", "replace") : window.location.replace("/a")"#
        );
        assert!(
            crate::sse::unescape_html(parts[1]).contains(r#"window.__dstarNav("/b", "replace"))"#),
            "{}",
            parts[1]
        );
        assert_eq!(
            parts[2],
            r#"<a href="/c" id="c" aria-label="go &lt;c&gt;" rel="next">C</a>"#
        );
        assert_eq!(parts[3], r#"<a href="/d" target="_blank">D</a>"#);
    }

    #[test]
    fn link_content_from_a_call_block_or_a_macro_and_text_escaped() {
        let html = page_render(
            "{% macro badge(n) %}<b>{{ n }}</b>{% endmacro %}\
             {% call link('/inbox') %}Inbox {{ badge('<3') }}{% endcall %}@@\
             {{ link('/x', badge(2)) }}@@{{ link('/y', '<i>not html</i>') }}",
            false,
        )
        .unwrap();
        let parts: Vec<&str> = html.split("@@").collect();
        assert!(
            parts[0].starts_with("<a href=\"/inbox\" data-on:click="),
            "{html}"
        );
        assert!(parts[0].ends_with(">Inbox <b>&lt;3</b></a>"), "{html}");
        assert!(parts[1].ends_with("><b>2</b></a>"), "{html}");
        assert!(
            parts[2].ends_with(">&lt;i&gt;not html&lt;/i&gt;</a>"),
            "{html}"
        );
    }

    #[test]
    fn link_refuses_attributes_that_run_script_or_move_the_target() {
        for (source, says) in [
            (
                r#"{{ link("/a", "a", attrs={"href": "/b"}) }}"#,
                "refused attribute `href`",
            ),
            (
                r#"{{ link("/a", "a", attrs={"onclick": "x()"}) }}"#,
                "refused attribute `onclick`",
            ),
            (
                r#"{{ link("/a", "a", attrs={"OnMouseOver": "x()"}) }}"#,
                "refused attribute `OnMouseOver`",
            ),
            (
                r#"{{ link("/a", "a", attrs={"data-on:click": "x()"}) }}"#,
                "refused attribute `data-on:click`",
            ),
            (
                r#"{{ link("/a", "a", attrs={"data-attr:href": "'/b'"}) }}"#,
                "refused attribute `data-attr:href`",
            ),
            (
                r#"{{ link("/a", "a", attrs={"xlink:href": "/b"}) }}"#,
                "refused attribute `xlink:href`",
            ),
            (
                r#"{{ link("/a", "a", attrs={"a b": "x"}) }}"#,
                "is not an attribute name",
            ),
            (r#"{{ link("/a", "a", colour="red") }}"#, "colour"),
            (r#"{{ link("/a") }}"#, "needs its text"),
            (r#"{{ navigate("/a", push=true) }}"#, "push"),
        ] {
            let err = page_render(source, false).expect_err(source).to_string();
            assert!(err.contains(says), "{source}: {err}");
        }
    }

    #[test]
    fn events_aimed_at_another_page() {
        static ITEMS: crate::route::Route =
            crate::route::Route::new("Items", "/items/{id}", file!(), line!()).events(&["save"]);
        static CHAT: crate::route::Route =
            crate::route::Route::new("Chat", "/chat", file!(), line!())
                .live()
                .events(&["send"]);
        let engine = Templates::new()
            .with(
                "ok.html",
                r#"{{ event("save", {"n": 1}, page="/items/3") }}"#,
            )
            .with("live.html", r#"{{ event("send", page="/chat") }}"#)
            .with("none.html", r#"{{ event("save", page="/nowhere") }}"#)
            .with("missing.html", r#"{{ event("drop", page="/items/3") }}"#)
            .build();
        let stateless = context! { dstar => page_context(false, "/app") };
        let live = context! { dstar => page_context(true, "/app") };
        // Before a router is built nothing is known, and nothing is refused.
        assert!(engine.render("none.html", stateless.clone()).is_ok());
        engine.add_routes([&ITEMS, &CHAT]);
        for ctx in [stateless.clone(), live.clone()] {
            let html = crate::sse::unescape_html(&engine.render("ok.html", ctx).unwrap());
            assert!(
                html.starts_with(
                    r#"@post("/app/items/3", {headers: {'x-dstar-event': "save", 'x-dstar-token': "#
                ),
                "{html}"
            );
            // A stateless endpoint: no click id, no live retries.
            assert!(!html.contains("x-dstar-click"), "{html}");
        }
        let html = crate::sse::unescape_html(&engine.render("ok.html", live).unwrap());
        assert!(html.contains("'x-dstar-token': $_dstarToken"), "{html}");
        for (name, says) in [
            (
                "live.html",
                "`Chat` is a live page, and a live page takes events only from its own tab",
            ),
            ("none.html", "the app has no page at `/nowhere`"),
            (
                "missing.html",
                "page `Items` has no event `drop` (it has: save)",
            ),
        ] {
            let err = engine
                .render(name, stateless.clone())
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{name}: {err}");
        }
    }
}
