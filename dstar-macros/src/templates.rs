//! `dstar::templates!("dir")`: template sources read from the directory while developing and
//! embedded in the binary for release.

use std::path::{Path, PathBuf};

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::LitStr;

use crate::paths::{CONCAT, ENV, INCLUDE_STR, TEMPLATES};

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    templates(input).unwrap_or_else(syn::Error::into_compile_error)
}

fn templates(input: TokenStream) -> syn::Result<TokenStream> {
    let dir: LitStr = syn::parse2(input).map_err(|error| {
        syn::Error::new(
            error.span(),
            "expected a directory relative to the crate's `Cargo.toml`, like `\"templates\"`",
        )
    })?;
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| {
        syn::Error::new(
            dir.span(),
            "`CARGO_MANIFEST_DIR` is not set; build with cargo",
        )
    })?;
    let relative = dir.value();
    let root = Path::new(&manifest).join(&relative);
    if !root.is_dir() {
        return Err(syn::Error::new(
            dir.span(),
            format_args!(
                "no directory `{relative}` in this crate; `templates!` takes a directory relative to the crate's \
                 `Cargo.toml`"
            ),
        ));
    }
    let mut files = Vec::new();
    collect(&root, "", &mut files).map_err(|message| syn::Error::new(dir.span(), message))?;
    files.sort();

    let under_manifest = format!("/{}", relative.trim_matches('/'));
    let files = files
        .iter()
        .map(|(name, path)| quote!((#name, #INCLUDE_STR!(#path))));
    let templates = Ident::new("templates", Span::mixed_site());
    Ok(quote! {
        {
            #[cfg(debug_assertions)]
            let #templates = #TEMPLATES::dir(#CONCAT!(#ENV!("CARGO_MANIFEST_DIR"), #under_manifest));
            #[cfg(not(debug_assertions))]
            let #templates = #TEMPLATES::embedded(&[#(#files),*]);
            #templates
        }
    })
}

/// Every file under `dir` as `(name relative to the root with '/', absolute path)`. Hidden files
/// and directories (editor swap files, `.DS_Store`) are skipped.
fn collect(dir: &Path, prefix: &str, files: &mut Vec<(String, String)>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|err| format!("cannot read `{}`: {err}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|err| format!("cannot read `{}`: {err}", dir.display()))?;
        let path: PathBuf = entry.path();
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(format!("`{}` is not a UTF-8 file name", path.display()));
        };
        if file_name.starts_with('.') {
            continue;
        }
        let name = format!("{prefix}{file_name}");
        if path.is_dir() {
            collect(&path, &format!("{name}/"), files)?;
        } else {
            let Some(absolute) = path.to_str() else {
                return Err(format!("`{}` is not a UTF-8 path", path.display()));
            };
            files.push((name, absolute.to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use quote::quote;

    #[test]
    fn embeds_every_file_sorted_and_skips_hidden_ones() {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
        let output = super::expand(quote!("fixtures/templates"));
        let block: syn::Expr = syn::parse2(output).unwrap();
        let file = syn::parse_quote!(fn templates() -> Templates { #block });
        let expanded = prettyplease::unparse(&file).replace(&manifest, "$CARGO_MANIFEST_DIR");
        insta::assert_snapshot!(expanded);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let output = super::expand(quote!("no/such/dir")).to_string();
        assert!(output.contains("compile_error"), "{output}");
        assert!(
            output.contains("no directory `no/such/dir` in this crate"),
            "{output}"
        );
    }
}
