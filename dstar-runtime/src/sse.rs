//! The Datastar v1 wire format: `datastar-patch-elements` and `datastar-patch-signals` events
//! encoded as Server-Sent Events.
//!
//! Every builder here writes its event in one pass straight into a caller's `Vec<u8>`: no
//! intermediate `String` per line, no per-event allocation beyond the buffer's own growth. The
//! field order is the one the SDK specification gives: `event`, `id` (when set), `retry` (when not
//! the 1000 ms default), the `data` lines, then a blank line.
//!
//! # Line breaks and injection
//!
//! An SSE parser ends a line at `\r\n`, at `\n` *and* at a lone `\r`. Multi-line values
//! (elements, signals, scripts) are therefore split on all three, and each piece becomes its own
//! `data:` line, so no value can smuggle in a field or a second event.
//!
//! Single-line values (the event id, the selector, the view-transition selector) cannot be
//! split. Each CR or LF in them (and NUL, which makes a browser drop an event id) is
//! **replaced by a space**. For selectors that is exactly what
//! CSS does anyway (a line break in a selector is whitespace); for an id it keeps the event
//! deliverable rather than dropping it.
//!
//! ```
//! use dstar_runtime::sse::{Mode, PatchElements};
//!
//! let mut out = Vec::new();
//! PatchElements::new("<li>one</li>").selector("#list").mode(Mode::Append).write_to(&mut out);
//! assert_eq!(
//!     out,
//!     b"event: datastar-patch-elements\n\
//!       data: selector #list\n\
//!       data: mode append\n\
//!       data: elements <li>one</li>\n\n"
//! );
//! ```

use std::time::Duration;

use bytes::Bytes;

mod frame;
mod lines;

pub(crate) use frame::{number_events, write_retry};
pub(crate) use lines::push_u128;
use lines::{push_data_lines, push_single_line};

/// The retry duration the Datastar client assumes when an event names none.
pub const DEFAULT_RETRY: Duration = Duration::from_millis(1000);

/// How patched elements are put into the DOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Morph the target element (matched by id or selector) with the new one. The default.
    #[default]
    Outer,
    /// Morph the target's children with the new elements.
    Inner,
    /// Replace the target element without morphing.
    Replace,
    /// Insert the new elements as the target's first children.
    Prepend,
    /// Insert the new elements as the target's last children.
    Append,
    /// Insert the new elements before the target.
    Before,
    /// Insert the new elements after the target.
    After,
    /// Remove the target.
    Remove,
}

impl Mode {
    /// The name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Outer => "outer",
            Mode::Inner => "inner",
            Mode::Replace => "replace",
            Mode::Prepend => "prepend",
            Mode::Append => "append",
            Mode::Before => "before",
            Mode::After => "after",
            Mode::Remove => "remove",
        }
    }

    /// Parses a wire name (`"outer"`, `"inner"`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "outer" => Mode::Outer,
            "inner" => Mode::Inner,
            "replace" => Mode::Replace,
            "prepend" => Mode::Prepend,
            "append" => Mode::Append,
            "before" => Mode::Before,
            "after" => Mode::After,
            "remove" => Mode::Remove,
            _ => return None,
        })
    }
}

/// The XML namespace new elements are created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Namespace {
    /// Ordinary HTML. The default.
    #[default]
    Html,
    /// SVG elements, for patching inside an `<svg>`.
    Svg,
    /// MathML elements.
    MathMl,
}

impl Namespace {
    /// The name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Namespace::Html => "html",
            Namespace::Svg => "svg",
            Namespace::MathMl => "mathml",
        }
    }
}

/// Options every Datastar event can carry.
#[derive(Debug, Clone, Copy, Default)]
struct Header<'a> {
    id: Option<&'a str>,
    retry: Option<Duration>,
}

impl Header<'_> {
    /// Writes the `event` line (`event_line`, e.g. `b"event: datastar-patch-signals\n"`), then
    /// `id` and `retry` when they are set.
    ///
    /// Inlined so that the event line is a constant written without a `memcpy` call; the rarer
    /// `id` and `retry` stay out of line.
    #[inline(always)]
    fn write(&self, out: &mut Vec<u8>, event_line: &[u8]) {
        out.extend_from_slice(event_line);
        if self.id.is_some() || self.retry.is_some() {
            self.write_id_and_retry(out);
        }
    }

    fn write_id_and_retry(&self, out: &mut Vec<u8>) {
        if let Some(id) = self.id {
            out.extend_from_slice(b"id: ");
            push_single_line(out, id);
            out.push(b'\n');
        }
        if let Some(retry) = self.retry
            && retry != DEFAULT_RETRY
        {
            out.extend_from_slice(b"retry: ");
            push_u128(out, retry.as_millis());
            out.push(b'\n');
        }
    }
}

/// A `datastar-patch-elements` event: HTML to morph into the page, or a selector to remove.
#[derive(Debug, Clone, Copy, Default)]
#[must_use = "an event does nothing until it is written"]
pub struct PatchElements<'a> {
    header: Header<'a>,
    elements: &'a str,
    selector: Option<&'a str>,
    mode: Mode,
    use_view_transition: bool,
    view_transition_selector: Option<&'a str>,
    namespace: Namespace,
}

impl<'a> PatchElements<'a> {
    /// Patches `elements` (one or more HTML elements, usually with ids) into the page.
    pub fn new(elements: &'a str) -> Self {
        PatchElements {
            elements,
            ..Self::default()
        }
    }

    /// Removes the elements matching `selector`.
    pub fn remove(selector: &'a str) -> Self {
        PatchElements {
            selector: Some(selector),
            mode: Mode::Remove,
            ..Self::default()
        }
    }

    /// Targets the elements matching this CSS selector instead of matching by id.
    pub fn selector(mut self, selector: &'a str) -> Self {
        self.selector = Some(selector);
        self
    }

    /// Sets how the elements are patched.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Runs the patch inside a view transition.
    pub fn view_transition(mut self, on: bool) -> Self {
        self.use_view_transition = on;
        self
    }

    /// Names the view transition's target selector.
    pub fn view_transition_selector(mut self, selector: &'a str) -> Self {
        self.view_transition_selector = Some(selector);
        self
    }

    /// Creates the new elements in this namespace.
    pub fn namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Sets the SSE event id.
    pub fn id(mut self, id: &'a str) -> Self {
        self.header.id = Some(id);
        self
    }

    /// Sets the SSE retry duration the client uses after this event.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.header.retry = Some(retry);
        self
    }

    /// Appends the encoded event to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.elements.len() + 64);
        self.header.write(out, b"event: datastar-patch-elements\n");
        if let Some(selector) = self.selector {
            out.extend_from_slice(b"data: selector ");
            push_single_line(out, selector);
            out.push(b'\n');
        }
        if self.mode != Mode::Outer {
            out.extend_from_slice(b"data: mode ");
            out.extend_from_slice(self.mode.as_str().as_bytes());
            out.push(b'\n');
        }
        if self.use_view_transition {
            out.extend_from_slice(b"data: useViewTransition true\n");
        }
        if let Some(selector) = self.view_transition_selector {
            out.extend_from_slice(b"data: viewTransitionSelector ");
            push_single_line(out, selector);
            out.push(b'\n');
        }
        if self.namespace != Namespace::Html {
            out.extend_from_slice(b"data: namespace ");
            out.extend_from_slice(self.namespace.as_str().as_bytes());
            out.push(b'\n');
        }
        if !self.elements.is_empty() {
            push_data_lines(out, b"data: elements ", self.elements);
        }
        out.push(b'\n');
    }

    /// Encodes the event into a fresh, shareable buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.write_to(&mut out);
        Bytes::from(out)
    }
}

/// An event of any type, for a client of your own beside Datastar's (an `EventSource` with
/// `addEventListener("progress", ..)`, a Datastar plugin): `event: <type>`, then `data` split
/// into one `data:` line per line of it.
///
/// The same rules keep it from smuggling in fields or events as the built-in events: a CR, LF
/// or NUL in the type (or the id) becomes a space, and the data is split on CR, LF and CRLF,
/// so each piece is its own `data:` line (a client joins them again with `\n`).
///
/// ```
/// use dstar_runtime::sse::CustomEvent;
///
/// let mut out = Vec::new();
/// CustomEvent::new("progress", "42\ndone").write_to(&mut out);
/// assert_eq!(out, b"event: progress\ndata: 42\ndata: done\n\n");
/// ```
#[derive(Debug, Clone, Copy)]
#[must_use = "an event does nothing until it is written"]
pub struct CustomEvent<'a> {
    header: Header<'a>,
    kind: &'a str,
    data: &'a str,
}

impl<'a> CustomEvent<'a> {
    /// An event of type `kind` carrying `data`.
    pub fn new(kind: &'a str, data: &'a str) -> Self {
        CustomEvent {
            header: Header::default(),
            kind,
            data,
        }
    }

    /// Sets the SSE event id.
    pub fn id(mut self, id: &'a str) -> Self {
        self.header.id = Some(id);
        self
    }

    /// Drops the SSE event id: a live session numbers its events itself, for replay.
    pub(crate) fn without_id(mut self) -> Self {
        self.header.id = None;
        self
    }

    /// Sets the SSE retry duration the client uses after this event.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.header.retry = Some(retry);
        self
    }

    /// Appends the encoded event to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.kind.len() + self.data.len() + 24);
        out.extend_from_slice(b"event: ");
        push_single_line(out, self.kind);
        out.push(b'\n');
        self.header.write(out, b"");
        push_data_lines(out, b"data: ", self.data);
        out.push(b'\n');
    }

    /// Encodes the event into a fresh, shareable buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.write_to(&mut out);
        Bytes::from(out)
    }
}

/// A `datastar-patch-signals` event: a JSON merge patch for the client's signals.
#[derive(Debug, Clone, Copy)]
#[must_use = "an event does nothing until it is written"]
pub struct PatchSignals<'a> {
    header: Header<'a>,
    json: &'a str,
    only_if_missing: bool,
}

impl<'a> PatchSignals<'a> {
    /// Patches signals from already-serialised JSON. Keys set to `null` are removed on the
    /// client. Line breaks in the JSON are fine: they become separate `data:` lines.
    pub fn raw(json: &'a str) -> Self {
        PatchSignals {
            header: Header::default(),
            json,
            only_if_missing: false,
        }
    }

    /// Only sets signals the client does not have yet.
    pub fn only_if_missing(mut self, on: bool) -> Self {
        self.only_if_missing = on;
        self
    }

    /// Sets the SSE event id.
    pub fn id(mut self, id: &'a str) -> Self {
        self.header.id = Some(id);
        self
    }

    /// Sets the SSE retry duration the client uses after this event.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.header.retry = Some(retry);
        self
    }

    /// Appends the encoded event to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.json.len() + 48);
        self.header.write(out, b"event: datastar-patch-signals\n");
        if self.only_if_missing {
            out.extend_from_slice(b"data: onlyIfMissing true\n");
        }
        push_data_lines(out, b"data: signals ", self.json);
        out.push(b'\n');
    }

    /// Encodes the event into a fresh, shareable buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.write_to(&mut out);
        Bytes::from(out)
    }
}

/// Builds the JSON patch that removes each dotted signal path (`"user.name"` becomes
/// `{"user":{"name":null}}`). Paths sharing a prefix are merged into one object.
pub fn remove_signals_json<'p>(paths: impl IntoIterator<Item = &'p str>) -> String {
    let mut root = serde_json::Map::new();
    for path in paths {
        let mut node = &mut root;
        let mut parts = path.split('.').filter(|p| !p.is_empty()).peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_owned(), serde_json::Value::Null);
                break;
            }
            let entry = node
                .entry(part.to_owned())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !entry.is_object() {
                *entry = serde_json::Value::Object(serde_json::Map::new());
            }
            node = entry.as_object_mut().expect("just made an object");
        }
    }
    serde_json::Value::Object(root).to_string()
}

/// Runs JavaScript in the browser by appending a `<script>` to `<body>` (a patch-elements event
/// in `append` mode).
///
/// The script text cannot end its own element early: every `</script` (any case) is written as
/// `<\/script`, and every `<!--` as `<\!--`, which JavaScript reads the same way inside strings,
/// template literals and regular expressions.
#[derive(Debug, Clone, Copy)]
#[must_use = "an event does nothing until it is written"]
pub struct ExecuteScript<'a> {
    header: Header<'a>,
    script: &'a str,
    auto_remove: bool,
    attributes: &'a [(&'a str, &'a str)],
}

impl<'a> ExecuteScript<'a> {
    /// Runs `script`; the element removes itself once it has run.
    pub fn new(script: &'a str) -> Self {
        ExecuteScript {
            header: Header::default(),
            script,
            auto_remove: true,
            attributes: &[],
        }
    }

    /// Keeps (`false`) or removes (`true`, the default) the `<script>` element after it ran.
    pub fn auto_remove(mut self, on: bool) -> Self {
        self.auto_remove = on;
        self
    }

    /// Extra attributes for the `<script>` element (`type`, `nonce`, ...). Values are
    /// HTML-escaped; a name that is not a valid attribute name is skipped.
    pub fn attributes(mut self, attributes: &'a [(&'a str, &'a str)]) -> Self {
        self.attributes = attributes;
        self
    }

    /// Sets the SSE event id.
    pub fn id(mut self, id: &'a str) -> Self {
        self.header.id = Some(id);
        self
    }

    /// Drops the SSE event id: a live session numbers its events itself, for replay.
    pub(crate) fn without_id(mut self) -> Self {
        self.header.id = None;
        self
    }

    /// Sets the SSE retry duration the client uses after this event.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.header.retry = Some(retry);
        self
    }

    /// Appends the encoded event to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_with(None, out);
    }

    /// Appends the encoded event to `out`, with a `nonce` attribute besides its own (a page's
    /// script nonce, which its Content-Security-Policy allows).
    pub(crate) fn write_with(&self, nonce: Option<&str>, out: &mut Vec<u8>) {
        let mut element = String::with_capacity(self.script.len() + 64);
        element.push_str("<script");
        let nonce = nonce.map(|nonce| ("nonce", nonce));
        for (name, value) in self.attributes.iter().chain(nonce.as_ref()) {
            if !is_attribute_name(name) {
                continue;
            }
            element.push(' ');
            element.push_str(name);
            element.push_str("=\"");
            escape_html_into(&mut element, value);
            element.push('"');
        }
        if self.auto_remove {
            element.push_str(" data-effect=\"el.remove()\"");
        }
        element.push('>');
        escape_script_into(&mut element, self.script);
        element.push_str("</script>");

        let mut patch = PatchElements::new(&element)
            .selector("body")
            .mode(Mode::Append);
        patch.header = self.header;
        patch.write_to(out);
    }

    /// Encodes the event into a fresh, shareable buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.write_to(&mut out);
        Bytes::from(out)
    }
}

/// The script that sends the browser to `url`. The URL is embedded as a JSON string, so no
/// quote or `</script>` in it can break out.
pub fn redirect_script(url: &str) -> String {
    let url = serde_json::to_string(url).expect("a string always serialises");
    format!("setTimeout(() => window.location.assign({url}))")
}

/// The script that logs `message` to the browser console (`level` is `log`, `warn`, ...).
pub fn console_script(level: ConsoleLevel, message: &str) -> String {
    let message = serde_json::to_string(message).expect("a string always serialises");
    format!("console.{}({message})", level.as_str())
}

/// The script that logs `value`, as JSON (an object shows as one the console can unfold), to
/// the browser console. Fails when `value` cannot be JSON (a map with non-string keys).
pub fn console_value_script<T: serde::Serialize + ?Sized>(
    level: ConsoleLevel,
    value: &T,
) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(value)?;
    Ok(format!("console.{}({json})", level.as_str()))
}

/// Which `console` method a console script calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsoleLevel {
    /// `console.log`
    #[default]
    Log,
    /// `console.info`
    Info,
    /// `console.warn`
    Warn,
    /// `console.error`
    Error,
    /// `console.debug`
    Debug,
}

impl ConsoleLevel {
    const fn as_str(self) -> &'static str {
        match self {
            ConsoleLevel::Log => "log",
            ConsoleLevel::Info => "info",
            ConsoleLevel::Warn => "warn",
            ConsoleLevel::Error => "error",
            ConsoleLevel::Debug => "debug",
        }
    }
}

fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            !b.is_ascii_control()
                && !b.is_ascii_whitespace()
                && !matches!(b, b'"' | b'\'' | b'>' | b'/' | b'=' | b'<')
        })
}

/// Undoes HTML escaping: the five basic entities, `&apos;`, `&nbsp;` and numeric references; anything else
/// is left as written.
pub(crate) fn unescape_html(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => entity.strip_prefix('#').and_then(|number| {
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => number.parse().ok(),
                };
                code.and_then(char::from_u32)
            }),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// HTML-escapes text for an attribute value or element content.
pub fn escape_html_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

fn escape_script_into(out: &mut String, script: &str) {
    let bytes = script.as_bytes();
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let rest = &bytes[i + 1..];
            let closes =
                rest.len() >= 7 && rest[0] == b'/' && rest[1..7].eq_ignore_ascii_case(b"script");
            let comment = rest.starts_with(b"!--");
            if closes || comment {
                out.push_str(&script[last..=i]);
                out.push('\\');
                last = i + 1;
            }
        }
        i += 1;
    }
    out.push_str(&script[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lone_carriage_return_cannot_forge_an_event() {
        let out = text(|o| PatchElements::new("<p>a\r\revent: x\rdata: y</p>").write_to(o));
        assert_eq!(
            out,
            "event: datastar-patch-elements\n\
             data: elements <p>a\n\
             data: elements \n\
             data: elements event: x\n\
             data: elements data: y</p>\n\n"
        );
    }

    #[test]
    fn single_line_fields_lose_their_line_breaks() {
        let out = text(|o| PatchElements::remove("#a\r\n#b").id("1\n2").write_to(o));
        assert_eq!(
            out,
            "event: datastar-patch-elements\nid: 1 2\ndata: selector #a  #b\ndata: mode remove\n\n"
        );
    }

    #[test]
    fn script_cannot_close_its_element() {
        let out = text(|o| ExecuteScript::new("a('</SCRIPT><b>'); <!-- x").write_to(o));
        assert!(
            out.contains(r"a('<\/SCRIPT><b>'); <\!-- x</script>"),
            "{out}"
        );
    }

    #[test]
    fn remove_signals_merges_paths() {
        assert_eq!(
            remove_signals_json(["user.name", "user.email", "count"]),
            r#"{"count":null,"user":{"email":null,"name":null}}"#
        );
    }

    #[test]
    fn retry_of_default_is_omitted() {
        let out = text(|o| PatchSignals::raw("{}").retry(DEFAULT_RETRY).write_to(o));
        assert_eq!(out, "event: datastar-patch-signals\ndata: signals {}\n\n");
        let out = text(|o| {
            PatchSignals::raw("{}")
                .retry(Duration::from_secs(5))
                .write_to(o)
        });
        assert_eq!(
            out,
            "event: datastar-patch-signals\nretry: 5000\ndata: signals {}\n\n"
        );
    }

    #[test]
    fn custom_events_keep_their_type_on_one_line_and_split_their_data() {
        let out = text(|o| {
            CustomEvent::new("note\r\ndata: x\n\nevent: evil\0", "a\r\nb\rc\n\nid: 9\n")
                .id("7\n8")
                .retry(Duration::from_millis(2500))
                .write_to(o)
        });
        assert_eq!(
            out,
            "event: note  data: x  event: evil \nid: 7 8\nretry: 2500\n\
             data: a\ndata: b\ndata: c\ndata: \ndata: id: 9\ndata: \n\n"
        );
        // One event: the only blank line is the one that ends it.
        assert_eq!(out.matches("\n\n").count(), 1, "{out}");
        assert_eq!(
            text(|o| CustomEvent::new("ping", "").write_to(o)),
            "event: ping\ndata: \n\n"
        );
    }
}
