//! Validates a parsed [`Page`]: every problem is reported, on the user's token, before any code
//! is generated. What can only be known from types (a signals type that is not `Deserialize`,
//! a `render` returning the wrong thing) is left to the type checker, on the user's tokens too.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{LitStr, Type};

use super::parse::{Args, Method, Page, Receiver};
use crate::errors::Errors;

pub(crate) fn page(page: &Page, errors: &mut Errors) {
    args(&page.args, errors);
    if let Some(trait_impl) = &page.trait_impl {
        errors.spanned(
            trait_impl,
            "`#[dstar::page]` cannot be used on trait impls; put it on the type's own `impl` block",
        );
        // The methods of a trait impl are the trait's, not a page's: checking them would only
        // add noise.
        return;
    }
    if let Some(generics) = &page.generics {
        errors.spanned(
            generics,
            "a page cannot be generic; remove the generic parameters",
        );
    }
    if page.ty.name.is_none() {
        errors.spanned(
            &page.ty.ty,
            "`#[dstar::page]` needs a named type, like `impl Counter`",
        );
    }
    for invocation in &page.macros {
        errors.spanned(
            invocation,
            "`#[dstar::page]` cannot see into macro invocations; write the page's methods out",
        );
    }
    methods(page, errors);
    events(page, errors);
}

fn args(args: &Args, errors: &mut Errors) {
    match &args.path {
        Some(path) => route_path(path, errors),
        None => errors.at(
            Span::call_site(),
            "missing route path; write `#[dstar::page(\"/path\")]`",
        ),
    }
    if let Some(group) = &args.group
        && args.live.is_none()
    {
        errors.spanned(
            &group.key,
            "`group` only applies to live pages; add `live` to `#[dstar::page]`",
        );
    }
    if let Some(background) = &args.background
        && args.live.is_none()
    {
        errors.spanned(
            background,
            "`background` only applies to live pages; add `live` to `#[dstar::page]`",
        );
    }
    if let Some(keep) = &args.keep_signals
        && args.live.is_none()
    {
        errors.spanned(
            keep,
            "`keep_signals` only applies to live pages (a stateless page's handler gets the signals of its own event); add `live` to `#[dstar::page]`",
        );
    }
    for setting in [&args.group, &args.template, &args.layout]
        .into_iter()
        .flatten()
    {
        if setting.value.value().is_empty() {
            errors.spanned(
                &setting.value,
                format_args!("`{}` cannot be empty", setting.key),
            );
        }
    }
}

/// Checks the syntax the router accepts: `/literal`, `/{param}` segments and one final
/// `/{*rest}`.
fn route_path(path: &LitStr, errors: &mut Errors) {
    let value = path.value();
    let Some(rest) = value.strip_prefix('/') else {
        errors.spanned(
            path,
            format_args!("route paths start with `/`; write `\"/{value}\"`"),
        );
        return;
    };
    if let Some(at) = value.find(['?', '#']) {
        errors.spanned(
            path,
            format_args!(
                "a route path has no query or fragment; remove `{}`",
                &value[at..]
            ),
        );
        return;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let mut names: Vec<&str> = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        if segment.is_empty() {
            // A trailing `/` is a route of its own; an empty segment inside the path is a typo.
            if !last {
                errors.spanned(
                    path,
                    "empty segment in route path; remove one `/` from `//`",
                );
            }
            continue;
        }
        if !segment.contains(['{', '}']) {
            continue;
        }
        let Some(inner) = segment
            .strip_prefix('{')
            .and_then(|inner| inner.strip_suffix('}'))
        else {
            errors.spanned(
                path,
                format_args!(
                    "`{segment}` is not a parameter; a parameter is a whole segment, like `/{{id}}`"
                ),
            );
            continue;
        };
        let (catch_all, name) = match inner.strip_prefix('*') {
            Some(name) => (true, name),
            None => (false, inner),
        };
        if name.is_empty() {
            let example = if catch_all { "{*rest}" } else { "{id}" };
            errors.spanned(
                path,
                format_args!("`{segment}` needs a parameter name, like `{example}`"),
            );
            continue;
        }
        if !is_identifier(name) {
            errors.spanned(
                path,
                format_args!(
                    "`{name}` is not a valid parameter name; use ASCII letters, digits and `_`"
                ),
            );
            continue;
        }
        if catch_all && !last {
            errors.spanned(
                path,
                format_args!("the catch-all `{segment}` must be the last segment"),
            );
        }
        if names.contains(&name) {
            errors.spanned(
                path,
                format_args!("duplicate parameter `{name}`; give each parameter its own name"),
            );
        } else {
            names.push(name);
        }
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != "_"
}

/// The shape a recognised method must have.
struct Shape {
    is_async: bool,
    receiver: Want,
    /// The parameters after the receiver that must be there.
    inputs: &'static [&'static str],
    /// How many more may follow, and what to say when there are more than that.
    optional: usize,
    too_many: &'static str,
    /// What it returns, if not `()`.
    returns: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    NoSelf,
    Shared,
    Exclusive,
}

const MOUNT: Shape = Shape {
    is_async: true,
    receiver: Want::NoSelf,
    inputs: &["mount: &mut Mount<'_>"],
    optional: 0,
    too_many: "`mount` takes only `mount: &mut Mount<'_>`; remove this parameter",
    returns: Some("dstar::Result<Self>"),
};

const RENDER: Shape = Shape {
    is_async: false,
    receiver: Want::Shared,
    inputs: &["view: &View<'_>"],
    optional: 0,
    too_many: "`render` takes only `view: &View<'_>`; remove this parameter",
    returns: Some("dstar::Result<Html>"),
};

const INFO: Shape = Shape {
    is_async: true,
    receiver: Want::Exclusive,
    inputs: &["cx: &mut Ctx<'_>", "message: Message"],
    optional: 0,
    too_many: "`info` takes only `cx: &mut Ctx<'_>` and `message: Message`; remove this parameter",
    returns: Some("dstar::Result<()>"),
};

const TERMINATE: Shape = Shape {
    is_async: true,
    receiver: Want::Exclusive,
    inputs: &[],
    optional: 0,
    too_many: "`terminate` takes no parameters besides `&mut self`; remove this parameter",
    returns: None,
};

const CONNECTED: Shape = Shape {
    is_async: true,
    receiver: Want::Exclusive,
    inputs: &["cx: &mut Ctx<'_>"],
    optional: 0,
    too_many: "`connected` takes only `cx: &mut Ctx<'_>`; remove this parameter",
    returns: Some("dstar::Result<()>"),
};

const HANDLER: Shape = Shape {
    is_async: true,
    receiver: Want::Exclusive,
    inputs: &["cx: &mut Ctx<'_>"],
    optional: 1,
    too_many: "an event handler takes `cx: &mut Ctx<'_>` and at most one signals parameter; remove this parameter",
    returns: Some("dstar::Result<()>"),
};

fn methods(page: &Page, errors: &mut Errors) {
    let live = page.args.live.is_some();
    let required = [
        (
            &page.mount,
            "mount",
            MOUNT,
            "async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self>",
        ),
        (
            &page.render,
            "render",
            RENDER,
            "fn render(&self, view: &View<'_>) -> dstar::Result<Html>",
        ),
    ];
    for (method, name, shape, signature) in required {
        match method {
            Some(method) => page_method(method, &shape, errors),
            None => errors.spanned(
                &page.ty.ty,
                format_args!(
                    "page `{}` has no `{name}` method; add `{signature}`",
                    display(&page.ty.ty)
                ),
            ),
        }
    }
    for (method, shape) in [
        (&page.info, INFO),
        (&page.terminate, TERMINATE),
        (&page.connected, CONNECTED),
    ] {
        let Some(method) = method else { continue };
        if !live {
            errors.spanned(
                &method.ident,
                format_args!(
                    "`{}` only runs on live pages; add `live` to `#[dstar::page]`",
                    method.ident
                ),
            );
        }
        page_method(method, &shape, errors);
    }
}

fn page_method(method: &Method, shape: &Shape, errors: &mut Errors) {
    if let Some(event) = &method.event {
        errors.spanned(
            &event.attr,
            format_args!(
                "`{}` is a page method, not an event handler; remove `#[event]`",
                method.ident
            ),
        );
    }
    signature(method, &format!("`{}`", method.ident), shape, errors);
}

fn events(page: &Page, errors: &mut Errors) {
    let mut seen: HashMap<String, (&Method, Span)> = HashMap::new();
    for handler in &page.handlers {
        signature(
            handler,
            &format!("event handler `{}`", handler.ident),
            &HANDLER,
            errors,
        );
        let (name, span) = handler.event_name();
        if name.is_empty() {
            errors.at(span, "an event name cannot be empty");
            continue;
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
        {
            errors.at(
                span,
                format_args!(
                    "invalid event name `{}`; use only ASCII letters, digits, `_`, `-`, `.` and `:`",
                    name.escape_debug()
                ),
            );
            continue;
        }
        if let Some((first, first_span)) = seen.get(&name) {
            errors.at(
                span,
                format_args!(
                    "duplicate event `{name}`: `{}` already handles it; rename one handler or give it \
                     `#[event(name = \"...\")]`",
                    first.ident
                ),
            );
            errors.at(
                *first_span,
                format_args!("event `{name}` is first handled here"),
            );
        } else {
            seen.insert(name, (handler, span));
        }
    }
}

fn signature(method: &Method, what: &str, shape: &Shape, errors: &mut Errors) {
    let ident = &method.ident;
    match (&method.asyncness, shape.is_async) {
        (None, true) => {
            errors.spanned(method.fn_token, format_args!("{what} must be `async`; write `async fn {ident}`"));
        }
        (Some(asyncness), false) => errors.spanned(
            asyncness,
            format_args!("{what} cannot be `async`; remove `async` (load data in `mount` or an event handler)"),
        ),
        _ => {}
    }
    for (qualifier, tokens) in &method.qualifiers {
        errors.spanned(tokens, format_args!("{what} cannot be `{qualifier}`"));
    }
    if let Some(generics) = &method.generics {
        errors.spanned(
            generics,
            format_args!("{what} cannot have generic parameters"),
        );
    }
    receiver(method, what, shape.receiver, errors);
    if let Some(returns) = shape.returns
        && let Some(output) = &method.output
    {
        return_type(method, what, returns, output, errors);
    }
    if context_out_of_place(method, what, shape, errors) {
        // The parameters are there, in the wrong order: counting them would only add noise.
        return;
    }

    let required = shape.inputs.len();
    if method.inputs.len() < required {
        let missing = shape.inputs[method.inputs.len()..]
            .iter()
            .map(|input| format!("`{input}`"));
        errors.at(
            method.parens,
            format_args!(
                "{what} is missing {}",
                missing.collect::<Vec<_>>().join(" and ")
            ),
        );
    }
    for extra in method.inputs.iter().skip(required + shape.optional) {
        errors.spanned(extra.tokens(), shape.too_many);
    }
    if let (Some(returns), None) = (shape.returns, &method.output) {
        errors.at(
            method.parens,
            format_args!("{what} must return `{returns}`; add `-> {returns}`"),
        );
    }
}

/// The context parameter, `cx: &mut Ctx<'_>`, comes first. Written anywhere else (or left out
/// before a signals parameter), the type checker would only see the arguments the forwarding
/// call passes in the wrong places and say "expected `Form`, found `&mut Ctx<'_>`", or suggest
/// swapping them in unreadable code. The check is on the syntax: the context is a `&mut`
/// reference, and a parameter written as anything else is not it.
///
/// Returns whether it reported an error.
fn context_out_of_place(method: &Method, what: &str, shape: &Shape, errors: &mut Errors) -> bool {
    let Some(&context) = shape.inputs.first() else {
        return false;
    };
    if !context.contains("&mut Ctx") {
        return false;
    }
    let Some(first) = method.inputs.first() else {
        return false;
    };
    if is_mut_reference(&first.ty) {
        return false;
    }
    match method.inputs.get(1) {
        Some(second) if is_mut_reference(&second.ty) => {
            let (first, second) = (first.tokens(), second.tokens());
            errors.spanned(
                quote!(#first, #second),
                format_args!(
                    "{what} takes `{}` first; swap the parameters: `{}, {}`",
                    display(&second),
                    display(&second),
                    display(&first)
                ),
            );
        }
        _ => {
            let what_first = if shape.optional > 0 {
                "before its signals"
            } else {
                "first"
            };
            errors.spanned(
                first.tokens(),
                format_args!(
                    "{what} takes `{context}` {what_first}; write `{context}, {}`",
                    display(first.tokens())
                ),
            );
        }
    }
    true
}

fn is_mut_reference(ty: &Type) -> bool {
    match ty {
        Type::Reference(reference) => reference.mutability.is_some(),
        Type::Paren(inner) => is_mut_reference(&inner.elem),
        Type::Group(inner) => is_mut_reference(&inner.elem),
        _ => false,
    }
}

/// A return type that cannot be `returns` (`dstar::Result<T>`), told apart by its syntax so the
/// error names the fix instead of comparing two types that print alike (`Result<Home, Error>`
/// from `std::io` and from dstar):
///
/// - the success type alone (`-> Html`, `-> Self`, `-> ()`): the `Result` is missing;
/// - a `Result<T, E>` whose `E` is written as a path other than `Error` or `dstar::Error`.
///
/// A bare `Error` may be `dstar::Error` imported, and an alias (`-> AppResult<Html>`) may be
/// right, so both are left to the type checker.
fn return_type(method: &Method, what: &str, returns: &str, output: &Type, errors: &mut Errors) {
    let success = match returns {
        "dstar::Result<Self>" => "Self",
        "dstar::Result<Html>" => "Html",
        _ => "()",
    };
    let is_success = match (output, success) {
        (Type::Tuple(tuple), "()") => tuple.elems.is_empty(),
        (Type::Path(path), "Self") => path.qself.is_none() && path.path.is_ident("Self"),
        (Type::Path(path), "Html") => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|last| last.ident == "Html" && last.arguments.is_none())
        }
        _ => false,
    };
    if is_success {
        let fix = if success == "()" { "Ok(())" } else { "Ok(..)" };
        errors.spanned(
            output,
            format_args!(
                "{what} must return `{returns}`, not `{}`; write `-> {returns}` and return `{fix}`",
                display(output)
            ),
        );
        return;
    }
    let Type::Path(path) = output else { return };
    let Some(last) = path.path.segments.last() else {
        return;
    };
    let syn::PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return;
    };
    let types: Vec<&Type> = arguments
        .args
        .iter()
        .filter_map(|argument| match argument {
            syn::GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .collect();
    let [_, error] = types.as_slice() else {
        return;
    };
    if last.ident != "Result" || is_dstar_error(error) {
        return;
    }
    let method = &method.ident;
    errors.spanned(
        error,
        format_args!(
            "`{method}`'s error type must be `dstar::Error`, not `{}`; write `-> {returns}` \
             (`?` converts any `std::error::Error` into `dstar::Error`)",
            display(error)
        ),
    );
}

/// `Error` (dstar's, imported, as far as syntax can tell) or a path ending in `dstar::Error`.
fn is_dstar_error(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    path.qself.is_none()
        && match segments.as_slice() {
            [only] => only == "Error",
            [.., krate, last] => krate == "dstar" && last == "Error",
            [] => false,
        }
}

fn receiver(method: &Method, what: &str, want: Want, errors: &mut Errors) {
    let wanted = match want {
        Want::NoSelf => "",
        Want::Shared => "&self",
        Want::Exclusive => "&mut self",
    };
    let found: Option<&TokenStream> = match (&method.receiver, want) {
        (Receiver::None, Want::NoSelf)
        | (Receiver::Shared(_), Want::Shared)
        | (Receiver::Exclusive(_), Want::Exclusive) => return,
        (Receiver::None, _) => None,
        (Receiver::Shared(tokens) | Receiver::Exclusive(tokens) | Receiver::Other(tokens), _) => {
            Some(tokens)
        }
    };
    match (found, want) {
        (Some(tokens), Want::NoSelf) => errors.spanned(
            tokens,
            format_args!(
                "{what} takes no `self`: it builds the page; remove `{}`",
                display(tokens)
            ),
        ),
        (Some(tokens), _) => errors.spanned(
            tokens,
            format_args!("{what} takes `{wanted}`, not `{}`", display(tokens)),
        ),
        (None, _) => {
            errors.spanned(
                &method.ident,
                format_args!("{what} needs a `{wanted}` receiver; add `{wanted}`"),
            );
        }
    }
}

/// Tokens as a person would write them: `&mut self`, `Counter`.
fn display(tokens: impl ToTokens) -> String {
    let text = tokens.to_token_stream().to_string();
    text.replace("& ", "&")
        .replace(" :: ", "::")
        .replace(" : ", ": ")
        .replace(" , ", ", ")
        .replace(" < ", "<")
        .replace(" >", ">")
}
