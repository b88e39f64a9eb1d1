//! "Running" the scripts a server sends: there is no JavaScript engine here, so the client
//! recognises the statements dstar itself writes (redirects, reloads, title, history, the
//! navigation token) and records every script so tests can look at the rest.

use crate::protocol::{
    HISTORY_URL_PREFIX, History, LOAD_CALL, NAV_TOKEN_PREFIX, RELOAD_SCRIPT, SAME_PATH_PREFIX,
    TITLE_PREFIX,
};

/// What a script does that the test client acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Load this URL in full (`window.location.assign(url)`).
    Load(String),
    /// Load the current URL again.
    Reload,
    Title(String),
    /// `history.pushState` (`push`) or `history.replaceState` with this URL.
    Url {
        url: String,
        push: bool,
    },
    /// A fresh soft-navigation token.
    NavToken(String),
}

/// The effects of `script`, in the order they appear. `path` is the current URL's path (for
/// `window.location.pathname + "?query"`).
pub(crate) fn effects(script: &str, path: &str) -> Vec<Effect> {
    let mut found: Vec<(usize, Effect)> = Vec::new();
    let mut each = |needle: &str, make: &dyn Fn(&str) -> Option<Effect>| {
        for (at, _) in script.match_indices(needle) {
            if let Some(effect) = make(&script[at + needle.len()..]) {
                found.push((at, effect));
            }
        }
    };
    each(LOAD_CALL, &|rest| {
        string_literal(rest.trim_start()).map(Effect::Load)
    });
    each("location.href = ", &|rest| {
        string_literal(rest.trim_start()).map(Effect::Load)
    });
    each(RELOAD_SCRIPT, &|_| Some(Effect::Reload));
    each(TITLE_PREFIX, &|rest| {
        string_literal(rest.trim_start()).map(Effect::Title)
    });
    each(NAV_TOKEN_PREFIX, &|rest| {
        string_literal(rest.trim_start()).map(Effect::NavToken)
    });
    for (history, push) in [(History::Push, true), (History::Replace, false)] {
        let call = format!("history.{}(", history.method());
        each(&call, &|rest| {
            history_url(rest, path).map(|url| Effect::Url { url, push })
        });
    }
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, effect)| effect).collect()
}

/// The URL argument of `pushState(state, '', url)`: a string, or
/// `window.location.pathname + "suffix"`.
fn history_url(arguments: &str, path: &str) -> Option<String> {
    let (_, rest) = arguments.split_once(HISTORY_URL_PREFIX)?;
    let rest = rest.trim_start();
    if let Some(suffix) = rest.strip_prefix(SAME_PATH_PREFIX) {
        return string_literal(suffix.trim_start()).map(|suffix| format!("{path}{suffix}"));
    }
    string_literal(rest)
}

/// The JavaScript string literal at the start of `text` (double- or single-quoted, with JSON
/// escapes), decoded.
pub(crate) fn string_literal(text: &str) -> Option<String> {
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let mut escaped = false;
    for (at, c) in text.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            let body = &text[1..at];
            if quote == '"' {
                return serde_json::from_str(&text[..=at]).ok();
            }
            // Single-quoted: re-quote as JSON.
            let json = format!("\"{}\"", body.replace("\\'", "'").replace('"', "\\\""));
            return serde_json::from_str(&json).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_what_dstar_writes() {
        assert_eq!(
            effects(
                r#"setTimeout(() => window.location.assign("/login?next=\u0026x"))"#,
                "/"
            ),
            [Effect::Load("/login?next=&x".to_owned())]
        );
        assert_eq!(
            effects(
                r#"document.title = "Item \"7\""; window.history.pushState({dstar: true}, '', "/items/7?sort=name"); window.__dstar.nav = "tok";"#,
                "/"
            ),
            [
                Effect::Title("Item \"7\"".to_owned()),
                Effect::Url {
                    url: "/items/7?sort=name".to_owned(),
                    push: true
                },
                Effect::NavToken("tok".to_owned()),
            ]
        );
        assert_eq!(
            effects(
                r#"window.history.replaceState(window.history.state, '', window.location.pathname + "?page=2")"#,
                "/list"
            ),
            [Effect::Url {
                url: "/list?page=2".to_owned(),
                push: false
            }]
        );
        assert_eq!(effects("window.location.reload()", "/"), [Effect::Reload]);
        assert_eq!(string_literal(r"'it\'s'"), Some("it's".to_owned()));
        assert!(effects("console.log(\"hi\")", "/").is_empty());
    }
}
