//! Collects every error one expansion finds, so a single compile reports them all.

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

/// The errors found so far, combined into one `syn::Error` (which renders as one
/// `compile_error!` per message, each on its own span).
#[derive(Default)]
#[must_use = "errors are only reported once `finish` is called"]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    pub(crate) fn new() -> Self {
        Errors::default()
    }

    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// An error covering `tokens` (from their first to their last token).
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// An error at one span.
    pub(crate) fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// The `compile_error!`s for everything collected, if anything was.
    pub(crate) fn finish(self) -> Option<TokenStream> {
        self.combined.map(syn::Error::into_compile_error)
    }
}
