//! `#[dstar::page]`: parse the arguments and the `impl` block into a model, check it, and only
//! then generate the `Page` impl.

mod check;
mod expand;
mod parse;

#[cfg(test)]
mod tests;

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;

/// Expands `#[dstar::page(args)] item`.
///
/// With errors, the output is the user's `impl` block (minus the `#[event]` attributes, which
/// are not real attributes) followed by one `compile_error!` per problem: the methods still
/// exist for rust-analyzer and for the rest of the crate, so no follow-on errors appear.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let args = parse::args(args, &mut errors);
    let page = match parse::page(args, item, &mut errors) {
        Ok(page) => page,
        Err(item) => {
            let errors = errors.finish();
            return quote!(#item #errors);
        }
    };
    check::page(&page, &mut errors);
    match errors.finish() {
        Some(errors) => {
            let item = &page.item;
            quote!(#item #errors)
        }
        None => expand::page(&page),
    }
}
