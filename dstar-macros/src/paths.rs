//! Every path the generated code names, in one place.
//!
//! Users depend on `dstar` alone, so everything goes through `::dstar`: its public items where
//! users may name them too, `::dstar::__private` where they should not. `core` is the only other
//! crate named, and only for language items (`Send`, `file!`).

use proc_macro2::{Ident, Punct, Spacing, Span, TokenStream};
use quote::{ToTokens, TokenStreamExt};

/// An absolute path, written with a leading `::` so no user item can shadow it.
#[derive(Clone, Copy)]
pub(crate) struct Path {
    segments: &'static [&'static str],
    span: Option<Span>,
}

impl Path {
    const fn new(segments: &'static [&'static str]) -> Self {
        Path {
            segments,
            span: None,
        }
    }

    /// The same path with every token at `span`, so that errors the type checker finds in the
    /// expression it starts are reported there (usually on the user's own tokens).
    pub(crate) fn at(self, span: Span) -> Self {
        Path {
            span: Some(span),
            ..self
        }
    }
}

impl ToTokens for Path {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let span = self.span.unwrap_or_else(Span::call_site);
        for segment in self.segments {
            let mut first = Punct::new(':', Spacing::Joint);
            first.set_span(span);
            let mut second = Punct::new(':', Spacing::Alone);
            second.set_span(span);
            tokens.append(first);
            tokens.append(second);
            tokens.append(Ident::new(segment, span));
        }
    }
}

// What users may name themselves.
pub(crate) const RESULT: Path = Path::new(&["dstar", "Result"]);

// What only expansions name.
pub(crate) const PAGE: Path = Path::new(&["dstar", "__private", "Page"]);
pub(crate) const ROUTE: Path = Path::new(&["dstar", "__private", "Route"]);
pub(crate) const MOUNT: Path = Path::new(&["dstar", "__private", "Mount"]);
pub(crate) const VIEW: Path = Path::new(&["dstar", "__private", "View"]);
pub(crate) const HTML: Path = Path::new(&["dstar", "__private", "Html"]);
pub(crate) const EVENT: Path = Path::new(&["dstar", "__private", "Event"]);
pub(crate) const CTX: Path = Path::new(&["dstar", "__private", "Ctx"]);
pub(crate) const MESSAGE: Path = Path::new(&["dstar", "__private", "Message"]);
pub(crate) const FUTURE: Path = Path::new(&["dstar", "__private", "Future"]);
pub(crate) const ERR: Path = Path::new(&["dstar", "__private", "Err"]);
pub(crate) const SIGNALS: Path = Path::new(&["dstar", "__private", "signals"]);
pub(crate) const TEMPLATES: Path = Path::new(&["dstar", "__private", "Templates"]);

// Language items.
pub(crate) const SEND: Path = Path::new(&["core", "marker", "Send"]);
pub(crate) const FILE: Path = Path::new(&["core", "file"]);
pub(crate) const LINE: Path = Path::new(&["core", "line"]);
pub(crate) const CONCAT: Path = Path::new(&["core", "concat"]);
pub(crate) const ENV: Path = Path::new(&["core", "env"]);
pub(crate) const INCLUDE_STR: Path = Path::new(&["core", "include_str"]);
