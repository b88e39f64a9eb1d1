//! Reading a page (its URL, title, HTML, signals and scripts) and asserting on it, with
//! failure messages that show what the page holds.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::TestError;
use super::html::{self, Tree};
use super::page::TestPage;
use super::selector::Selector;
use super::signals;

/// How much of a document an assertion failure shows.
const SHOW_HTML: usize = 4000;

impl TestPage {
    /// The current URL (path and query), as the browser's address bar would show it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The document title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Whether the page is live (has a session and a stream).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The HTML inside `<body>`, with every patch applied.
    pub fn html(&self) -> &str {
        let tree = Tree::parse(&self.document);
        match tree.elements.iter().find(|e| e.name == "body") {
            Some(body) => &self.document[body.inner.clone()],
            None => &self.document,
        }
    }

    /// The whole document, head included.
    pub fn document(&self) -> &str {
        &self.document
    }

    /// The client's signals.
    pub fn signals(&self) -> &Map<String, Value> {
        &self.signals
    }

    /// One signal by dotted path (`"user.name"`).
    pub fn signal(&self, path: &str) -> Option<&Value> {
        signals::lookup(&self.signals, path)
    }

    /// The signals as a `serde` type (local `_` signals included).
    pub fn signals_as<T: DeserializeOwned>(&self) -> Result<T, TestError> {
        serde_json::from_value(Value::Object(self.signals.clone()))
            .map_err(|err| TestError::protocol(format!("the signals do not fit the type: {err}")))
    }

    /// The text of the first element matching `selector` (usually `#id`): tags, comments and
    /// scripts stripped, entities decoded, whitespace collapsed to single spaces and trimmed.
    ///
    /// # Panics
    ///
    /// When the selector is not one the client understands (see the [module docs](super)).
    #[track_caller]
    pub fn text(&self, selector: &str) -> Option<String> {
        self.outer_html(selector).map(html::text_content)
    }

    /// The texts of every element matching `selector`.
    ///
    /// # Panics
    ///
    /// When the selector is not one the client understands.
    #[track_caller]
    pub fn texts(&self, selector: &str) -> Vec<String> {
        self.select(selector)
            .into_iter()
            .map(html::text_content)
            .collect()
    }

    /// The HTML of the first element matching `selector`, its own tags included.
    ///
    /// # Panics
    ///
    /// When the selector is not one the client understands.
    #[track_caller]
    pub fn outer_html(&self, selector: &str) -> Option<&str> {
        self.select(selector).into_iter().next()
    }

    /// How many elements match `selector`.
    ///
    /// # Panics
    ///
    /// When the selector is not one the client understands.
    #[track_caller]
    pub fn count(&self, selector: &str) -> usize {
        self.select(selector).len()
    }

    /// Whether an element matches `selector`.
    ///
    /// # Panics
    ///
    /// When the selector is not one the client understands.
    #[track_caller]
    pub fn exists(&self, selector: &str) -> bool {
        self.count(selector) > 0
    }

    /// Every script the page received in patches (redirects and navigation included), in
    /// order. Scripts in the loaded document are not listed.
    pub fn scripts(&self) -> &[String] {
        &self.scripts
    }

    #[track_caller]
    fn select(&self, selector: &str) -> Vec<&str> {
        let parsed = Selector::parse(selector).unwrap_or_else(|reason| {
            panic!(
                "{}",
                TestError::Selector {
                    selector: selector.to_owned(),
                    reason
                }
            )
        });
        let tree = Tree::parse(&self.document);
        tree.select(&parsed)
            .into_iter()
            .map(|i| &self.document[tree.elements[i].outer.clone()])
            .collect()
    }

    // -- assertions ------------------------------------------------------------------------

    /// Asserts that signal `path` (dotted, like `user.name`) equals `expected`.
    ///
    /// # Panics
    ///
    /// When it does not (or is missing), showing both values and all signals.
    #[track_caller]
    pub fn assert_signal<T: Serialize>(&self, path: &str, expected: T) {
        let expected = serde_json::to_value(&expected)
            .unwrap_or_else(|err| panic!("the expected value is not JSON: {err}"));
        let actual = self.signal(path);
        if actual == Some(&expected) {
            return;
        }
        let actual = actual.map_or_else(|| format!("(no signal `{path}`)"), Value::to_string);
        panic!(
            "signal `{path}` is not what the test expects\n  expected: {expected}\n    actual: {actual}\n{}",
            self.describe_signals()
        );
    }

    /// Asserts that the text of the first element matching `selector` is `expected` (compared
    /// after collapsing whitespace, see [`text`](Self::text)).
    ///
    /// # Panics
    ///
    /// When it is not, or nothing matches, showing both texts and the page's HTML.
    #[track_caller]
    pub fn assert_text(&self, selector: &str, expected: &str) {
        let expected = html::collapse_whitespace(expected);
        match self.outer_html(selector) {
            Some(element) => {
                let actual = html::text_content(element);
                if actual != expected {
                    panic!(
                        "text of `{selector}` is not what the test expects\n  expected: {expected:?}\n    actual: {actual:?}\n   element: {}\n{}",
                        html::snippet(element),
                        self.describe_html()
                    );
                }
            }
            None => panic!(
                "text of `{selector}` is not what the test expects\n  expected: {expected:?}\n    actual: (no element matches `{selector}`)\n{}",
                self.describe_html()
            ),
        }
    }

    /// Asserts that the text of the first element matching `selector` contains `expected`.
    ///
    /// # Panics
    ///
    /// When it does not, or nothing matches.
    #[track_caller]
    pub fn assert_text_contains(&self, selector: &str, expected: &str) {
        let expected = html::collapse_whitespace(expected);
        let actual = self.text(selector);
        if actual.as_ref().is_some_and(|text| text.contains(&expected)) {
            return;
        }
        let actual = actual.map_or_else(
            || format!("(no element matches `{selector}`)"),
            |text| format!("{text:?}"),
        );
        panic!(
            "text of `{selector}` does not contain what the test expects\n  expected to contain: {expected:?}\n               actual: {actual}\n{}",
            self.describe_html()
        );
    }

    /// Asserts that `count` elements match `selector`.
    ///
    /// # Panics
    ///
    /// When another number does.
    #[track_caller]
    pub fn assert_count(&self, selector: &str, count: usize) {
        let actual = self.count(selector);
        if actual != count {
            panic!(
                "the number of elements matching `{selector}` is not what the test expects\n  expected: {count}\n    actual: {actual}\n{}",
                self.describe_html()
            );
        }
    }

    /// Asserts that the URL is `expected`.
    ///
    /// # Panics
    ///
    /// When it is not.
    #[track_caller]
    pub fn assert_url(&self, expected: &str) {
        if self.url != expected {
            panic!(
                "the page's URL is not what the test expects\n  expected: {expected:?}\n    actual: {:?}",
                self.url
            );
        }
    }

    fn describe_signals(&self) -> String {
        let mut text = format!(
            "page {} ({})\nsignals: {}",
            self.url,
            if self.is_live() { "live" } else { "stateless" },
            serde_json::to_string_pretty(&self.signals).unwrap_or_default()
        );
        if !self.unevaluated.is_empty() {
            text.push_str("\nnot evaluated (not literals):");
            for (declaration, reason) in &self.unevaluated {
                text.push_str(&format!("\n  {declaration}: {reason}"));
            }
        }
        text
    }

    pub(super) fn describe_html(&self) -> String {
        let body = self.html().trim();
        let shown = if body.len() > SHOW_HTML {
            let mut end = SHOW_HTML;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}\n… ({} more bytes)", &body[..end], body.len() - end)
        } else {
            body.to_owned()
        };
        format!(
            "page {} ({}), body:\n{shown}",
            self.url,
            if self.is_live() { "live" } else { "stateless" }
        )
    }
}
