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
//! | `get(url)`, `post(url)`, `put(url)`, `patch(url)`, `delete(url)` | a Datastar `@get(...)`-style action with the URL as a safe JS string |
//! | `link(url, text)` | an `<a href>` that soft-navigates on a plain left click (live pages) |
//! | `navigate(url)` | the action that soft-navigates to `url` (for buttons) |
//! | `js(value)` | `value` as a JavaScript literal (JSON), for use inside `data-*` expressions |
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

use crate::protocol::{TOKEN_SIGNAL, js_safe, js_string};

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
}

impl Engine {
    fn new(sources: Templates) -> Self {
        let env = make_env(&sources);
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
                let fresh = Arc::new(make_env(&self.sources));
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

fn make_env(sources: &Templates) -> Environment<'static> {
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
    env.add_function("event", event);
    env.add_function("get", |state: &State<'_, '_>, url: &str, kwargs: Kwargs| {
        action(state, "get", url, kwargs)
    });
    env.add_function(
        "post",
        |state: &State<'_, '_>, url: &str, kwargs: Kwargs| action(state, "post", url, kwargs),
    );
    env.add_function("put", |state: &State<'_, '_>, url: &str, kwargs: Kwargs| {
        action(state, "put", url, kwargs)
    });
    env.add_function(
        "patch",
        |state: &State<'_, '_>, url: &str, kwargs: Kwargs| action(state, "patch", url, kwargs),
    );
    env.add_function(
        "delete",
        |state: &State<'_, '_>, url: &str, kwargs: Kwargs| action(state, "delete", url, kwargs),
    );
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

/// `get/post/put/patch/delete(url, external=false)`: a Datastar fetch action.
fn action(
    state: &State<'_, '_>,
    method: &str,
    url: &str,
    kwargs: Kwargs,
) -> Result<String, TemplateError> {
    let external = kwargs.get::<Option<bool>>("external")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let url = checked_url(state, method, url, true, external)?;
    Ok(format!("@{method}({})", js_string(&url)))
}

/// `event("name", {extra})`: the action sending an event to the page being rendered.
fn event(state: &State<'_, '_>, name: &str, extra: Option<Value>) -> Result<String, TemplateError> {
    let page = state.lookup("dstar").ok_or_else(|| {
        TemplateError::new(
            ErrorKind::InvalidOperation,
            "`event()` is only available in page templates",
        )
    })?;
    let url = page.get_attr("event_url")?;
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
    Ok(crate::protocol::event_action(
        url.as_str().unwrap_or("/"),
        name,
        &token,
        args.as_deref(),
        live,
    ))
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

/// `navigate(url)`: the action soft-navigating to `url` (falls back to a page load).
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

fn navigate(state: &State<'_, '_>, url: &str) -> Result<String, TemplateError> {
    let url = checked_url(state, "navigate", url, false, false)?;
    Ok(crate::protocol::navigate_action(&url))
}

/// `link(url, text, class=..., external=false)`: an anchor that soft-navigates on a plain left
/// click; with `external=true` and an `http(s)` URL, a plain link to another site.
fn link(
    state: &State<'_, '_>,
    url: &str,
    text: &str,
    kwargs: Kwargs,
) -> Result<Value, TemplateError> {
    let class: Option<String> = kwargs.get("class")?;
    let external = kwargs.get::<Option<bool>>("external")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let url = &checked_url(state, "link", url, true, external)?;
    let leaves = !url.starts_with(['/', '#', '?']);
    let mut html = String::from("<a href=\"");
    crate::sse::escape_html_into(&mut html, url);
    html.push('"');
    if let Some(class) = class {
        html.push_str(" class=\"");
        crate::sse::escape_html_into(&mut html, &class);
        html.push('"');
    }
    if leaves {
        // Another site: a plain link, which gets no handle on this page.
        html.push_str(" rel=\"noopener noreferrer\">");
    } else {
        html.push_str(" data-on:click=\"");
        let handler = crate::protocol::link_click(url);
        crate::sse::escape_html_into(&mut html, &handler);
        html.push_str("\">");
    }
    crate::sse::escape_html_into(&mut html, text);
    html.push_str("</a>");
    Ok(Value::from_safe_string(html))
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
            {{ event(name) }} {{ event('a' ~ b) }} event('plain text')";
        assert_eq!(
            event_calls(source),
            [("save", 2), ("remove", 3), ("reset", 4)]
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
}
