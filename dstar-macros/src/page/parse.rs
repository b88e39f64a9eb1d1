//! Reads the attribute's arguments and the `impl` block into a [`Page`]: the route settings and
//! the methods the page protocol knows, each keeping the spans its errors should point at.
//!
//! Only what stops the model from being built is reported here (syntax of the arguments and of
//! `#[event(...)]`, an item that is not an `impl` block); everything else is `check`'s job.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, FnArg, Ident, ImplItem, Item, ItemImpl, Lit, LitStr, Pat, Token, Type};

use crate::errors::Errors;

/// Everything `#[dstar::page]` knows about one page.
pub(crate) struct Page {
    pub(crate) args: Args,
    /// The user's `impl` block minus the `#[event]` attributes; it is emitted as it is.
    pub(crate) item: ItemImpl,
    pub(crate) ty: SelfType,
    /// `<T>` and `where` of a generic impl, for the error.
    pub(crate) generics: Option<TokenStream>,
    /// `Trait for` of a trait impl, for the error.
    pub(crate) trait_impl: Option<TokenStream>,
    /// Macro invocations among the items (`name!`): they could expand to anything, so they
    /// are refused.
    pub(crate) macros: Vec<TokenStream>,
    pub(crate) mount: Option<Method>,
    pub(crate) render: Option<Method>,
    pub(crate) info: Option<Method>,
    pub(crate) terminate: Option<Method>,
    /// `connected`: runs when a live page's stream attaches.
    pub(crate) connected: Option<Method>,
    /// Methods marked `#[event]`, in the order they are written.
    pub(crate) handlers: Vec<Method>,
}

/// The arguments of `#[dstar::page(...)]`.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) path: Option<LitStr>,
    pub(crate) live: Option<Ident>,
    /// `background`: the page's stream stays open while its tab is hidden.
    pub(crate) background: Option<Ident>,
    /// `keep_signals`: the session keeps the signals of the page's last event.
    pub(crate) keep_signals: Option<Ident>,
    pub(crate) group: Option<Setting>,
    pub(crate) template: Option<Setting>,
    pub(crate) layout: Option<Setting>,
    pub(crate) title: Option<Setting>,
}

/// A `key = "value"` argument.
pub(crate) struct Setting {
    pub(crate) key: Ident,
    pub(crate) value: LitStr,
}

/// The type the `impl` block is for.
pub(crate) struct SelfType {
    /// The page's name in its route entry: the type's last path segment, when it is a path.
    pub(crate) name: Option<Ident>,
    /// The type as the user wrote it.
    pub(crate) ty: Type,
}

/// One `fn` of the `impl` block, as much of its signature as the checks and the forwarding
/// calls need.
pub(crate) struct Method {
    pub(crate) ident: Ident,
    pub(crate) fn_token: Token![fn],
    pub(crate) asyncness: Option<Token![async]>,
    /// `const`, `unsafe` and `extern "abi"`, none of which a page method can be.
    pub(crate) qualifiers: Vec<(&'static str, TokenStream)>,
    /// Generic parameters and `where` clause, for the error.
    pub(crate) generics: Option<TokenStream>,
    pub(crate) receiver: Receiver,
    /// The parameters after the receiver.
    pub(crate) inputs: Vec<Input>,
    /// The span of the parentheses, where "missing parameter" errors go.
    pub(crate) parens: Span,
    /// The return type; `None` for a method written without `->`.
    pub(crate) output: Option<Type>,
    pub(crate) event: Option<EventAttr>,
}

/// How a method takes `self`.
pub(crate) enum Receiver {
    None,
    /// `&self`.
    Shared(TokenStream),
    /// `&mut self`.
    Exclusive(TokenStream),
    /// `self`, `self: Box<Self>` and the like.
    Other(TokenStream),
}

/// A typed parameter.
pub(crate) struct Input {
    pub(crate) pat: Pat,
    pub(crate) ty: Type,
}

/// An `#[event]` or `#[event(name = "...")]` attribute.
pub(crate) struct EventAttr {
    pub(crate) attr: TokenStream,
    pub(crate) name: Option<LitStr>,
}

impl Method {
    /// The event's name and the span that names it: `#[event(name = "...")]`'s string or
    /// the method's own name.
    pub(crate) fn event_name(&self) -> (String, Span) {
        match self.event.as_ref().and_then(|event| event.name.as_ref()) {
            Some(name) => (name.value(), name.span()),
            None => (self.ident.unraw().to_string(), self.ident.span()),
        }
    }

    /// The signals type of an event handler, if it takes signals.
    pub(crate) fn signals(&self) -> Option<&Type> {
        self.inputs.get(1).map(|input| &input.ty)
    }
}

const ARGUMENTS: &str = "expected one of: `path`, `live`, `background`, `keep_signals`, `group`, `template`, `layout`, `title`";

/// Parses `#[dstar::page(...)]`'s arguments, reporting each bad one.
pub(crate) fn args(tokens: TokenStream, errors: &mut Errors) -> Args {
    let raw = match raw_args.parse2(tokens) {
        Ok(raw) => raw,
        Err(error) => {
            errors.push(error);
            return Args::default();
        }
    };
    let mut args = Args::default();
    for (index, arg) in raw.into_iter().enumerate() {
        match arg {
            RawArg::Positional(path) => {
                if index > 0 {
                    errors.spanned(
                        &path,
                        "the route path goes first: `#[dstar::page(\"/path\", ...)]`",
                    );
                }
                // Keep a misplaced path too, so it is not also reported missing.
                args.path.get_or_insert(path);
            }
            RawArg::Named { key, value } => named_arg(&mut args, key, value, errors),
        }
    }
    args
}

enum RawArg {
    Positional(LitStr),
    Named {
        key: Ident,
        value: Option<(Token![=], Expr)>,
    },
}

fn raw_args(input: ParseStream<'_>) -> syn::Result<Vec<RawArg>> {
    let mut args = Vec::new();
    while !input.is_empty() {
        if input.peek(Lit) {
            match input.parse()? {
                Lit::Str(path) => args.push(RawArg::Positional(path)),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "expected the route path as a string, like `\"/users/{id}\"`",
                    ));
                }
            }
        } else if input.peek(Ident::peek_any) {
            let key = input.call(Ident::parse_any)?;
            let value = if input.peek(Token![=]) {
                Some((input.parse()?, input.parse()?))
            } else {
                None
            };
            args.push(RawArg::Named { key, value });
        } else {
            return Err(input.error(format!(
                "expected the route path or an argument; {ARGUMENTS}"
            )));
        }
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(args)
}

fn named_arg(args: &mut Args, key: Ident, value: Option<(Token![=], Expr)>, errors: &mut Errors) {
    let name = key.to_string();
    let flag = match name.as_str() {
        "live" => Some(&mut args.live),
        "background" => Some(&mut args.background),
        "keep_signals" => Some(&mut args.keep_signals),
        _ => None,
    };
    if let Some(flag) = flag {
        if let Some((eq, value)) = value {
            errors.spanned(
                quote!(#eq #value),
                format_args!("`{name}` takes no value; write `{name}`"),
            );
        } else if flag.is_some() {
            errors.spanned(&key, format_args!("duplicate argument `{name}`"));
        } else {
            *flag = Some(key);
        }
        return;
    }
    let (slot, example) = match name.as_str() {
        "path" if args.path.is_some() => {
            errors.spanned(&key, "duplicate argument `path`");
            return;
        }
        "path" => {
            if let Some(value) = string_value(&key, value, "/users/{id}", errors) {
                args.path = Some(value);
            }
            return;
        }
        "group" => (&mut args.group, "main"),
        "template" => (&mut args.template, "page.html"),
        "layout" => (&mut args.layout, "layout.html"),
        "title" => (&mut args.title, "Users"),
        _ => {
            errors.spanned(&key, format_args!("unknown argument `{name}`; {ARGUMENTS}"));
            return;
        }
    };
    if slot.is_some() {
        errors.spanned(&key, format_args!("duplicate argument `{name}`"));
    } else if let Some(value) = string_value(&key, value, example, errors) {
        *slot = Some(Setting { key, value });
    }
}

fn string_value(
    key: &Ident,
    value: Option<(Token![=], Expr)>,
    example: &str,
    errors: &mut Errors,
) -> Option<LitStr> {
    match value {
        Some((
            _,
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(value),
                ..
            }),
        )) => Some(value),
        Some((_, other)) => {
            errors.spanned(
                other,
                format_args!("`{key}` takes a string literal, like `{key} = \"{example}\"`"),
            );
            None
        }
        None => {
            errors.spanned(
                key,
                format_args!("`{key}` needs a value, like `{key} = \"{example}\"`"),
            );
            None
        }
    }
}

/// Parses the item under the attribute. When it is not an `impl` block, the error is reported
/// and the item is handed back to be emitted as it is.
pub(crate) fn page(
    args: Args,
    tokens: TokenStream,
    errors: &mut Errors,
) -> Result<Page, TokenStream> {
    let mut item = match syn::parse2::<Item>(tokens.clone()) {
        Ok(Item::Impl(item)) => item,
        Ok(other) => {
            errors.spanned(
                item_head(&other),
                "`#[dstar::page]` goes on an inherent `impl` block",
            );
            return Err(tokens);
        }
        Err(error) => {
            errors.push(error);
            return Err(tokens);
        }
    };

    let generics =
        (!item.generics.params.is_empty() || item.generics.where_clause.is_some()).then(|| {
            let (params, where_clause) = (&item.generics, &item.generics.where_clause);
            quote!(#params #where_clause)
        });
    let trait_impl = item
        .trait_
        .as_ref()
        .map(|(bang, path, for_token)| quote!(#bang #path #for_token));
    let ty = SelfType {
        name: match &*item.self_ty {
            Type::Path(path) if path.qself.is_none() => {
                path.path.segments.last().map(|last| last.ident.clone())
            }
            _ => None,
        },
        ty: (*item.self_ty).clone(),
    };

    let (mut mount, mut render, mut info, mut terminate) = (None, None, None, None);
    let mut connected = None;
    let mut handlers = Vec::new();
    let mut macros = Vec::new();
    for member in &mut item.items {
        let event = take_event_attr(member, errors);
        let ImplItem::Fn(function) = member else {
            if let ImplItem::Macro(mac) = member {
                macros.push({
                    let (path, bang) = (&mac.mac.path, &mac.mac.bang_token);
                    quote!(#path #bang)
                });
            }
            if let Some(event) = event {
                errors.spanned(event.attr, "`#[event]` goes on an `async fn` of the page");
            }
            continue;
        };
        let method = method(&function.sig, event);
        let slot = match method.ident.to_string().as_str() {
            "mount" => &mut mount,
            "render" => &mut render,
            "info" => &mut info,
            "terminate" => &mut terminate,
            "connected" => &mut connected,
            _ if method.event.is_some() => {
                handlers.push(method);
                continue;
            }
            _ => continue,
        };
        // A second method of the same name is rustc's error to report, not ours.
        if slot.is_none() {
            *slot = Some(method);
        }
    }
    Ok(Page {
        args,
        item,
        ty,
        generics,
        trait_impl,
        macros,
        mount,
        render,
        info,
        terminate,
        connected,
        handlers,
    })
}

/// The tokens that introduce an item (`struct Name`, `fn name`), where an error about the
/// item as a whole reads best.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Struct(item) => {
            let (keyword, ident) = (&item.struct_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Enum(item) => {
            let (keyword, ident) = (&item.enum_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Union(item) => {
            let (keyword, ident) = (&item.union_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Trait(item) => {
            let (keyword, ident) = (&item.trait_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Mod(item) => {
            let (keyword, ident) = (&item.mod_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Fn(item) => {
            let (keyword, ident) = (&item.sig.fn_token, &item.sig.ident);
            quote!(#keyword #ident)
        }
        other => other.to_token_stream(),
    }
}

/// Removes the `#[event]` attributes of an impl item and parses the first one; a second one is
/// an error.
fn take_event_attr(member: &mut ImplItem, errors: &mut Errors) -> Option<EventAttr> {
    let attrs = match member {
        ImplItem::Fn(item) => &mut item.attrs,
        ImplItem::Const(item) => &mut item.attrs,
        ImplItem::Type(item) => &mut item.attrs,
        ImplItem::Macro(item) => &mut item.attrs,
        _ => return None,
    };
    let mut event = None;
    for attr in attrs.extract_if(.., |attr| attr.path().is_ident("event")) {
        if event.is_some() {
            errors.spanned(&attr, "duplicate `#[event]` attribute");
        } else {
            event = Some(event_attr(&attr, errors));
        }
    }
    event
}

fn event_attr(attr: &Attribute, errors: &mut Errors) -> EventAttr {
    let mut event = EventAttr {
        attr: attr.to_token_stream(),
        name: None,
    };
    match &attr.meta {
        syn::Meta::Path(_) => {}
        syn::Meta::List(_) => {
            let parsed = attr.parse_nested_meta(|meta| {
                if !meta.path.is_ident("name") {
                    let key = meta.path.to_token_stream().to_string().replace(' ', "");
                    return Err(
                        meta.error(format_args!("unknown argument `{key}`; expected `name`"))
                    );
                }
                if event.name.is_some() {
                    return Err(meta.error("duplicate argument `name`"));
                }
                event.name = Some(meta.value()?.parse()?);
                Ok(())
            });
            if let Err(error) = parsed {
                errors.push(error);
            }
        }
        syn::Meta::NameValue(meta) => {
            let value = &meta.value;
            errors.spanned(
                value,
                format_args!("write `#[event(name = {})]`", value.to_token_stream()),
            );
        }
    }
    event
}

fn method(sig: &syn::Signature, event: Option<EventAttr>) -> Method {
    let mut qualifiers = Vec::new();
    if let Some(token) = &sig.constness {
        qualifiers.push(("const", token.to_token_stream()));
    }
    if let Some(token) = &sig.unsafety {
        qualifiers.push(("unsafe", token.to_token_stream()));
    }
    if let Some(abi) = &sig.abi {
        qualifiers.push(("extern", abi.to_token_stream()));
    }
    let generics = &sig.generics;
    let generics = (!generics.params.is_empty() || generics.where_clause.is_some()).then(|| {
        let where_clause = &generics.where_clause;
        quote!(#generics #where_clause)
    });
    let mut receiver = Receiver::None;
    let mut inputs = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(this) => receiver = self_kind(this),
            FnArg::Typed(typed) => inputs.push(Input {
                pat: (*typed.pat).clone(),
                ty: (*typed.ty).clone(),
            }),
        }
    }
    Method {
        ident: sig.ident.clone(),
        fn_token: sig.fn_token,
        asyncness: sig.asyncness,
        qualifiers,
        generics,
        receiver,
        inputs,
        parens: sig.paren_token.span.join(),
        output: match &sig.output {
            syn::ReturnType::Default => None,
            syn::ReturnType::Type(_, ty) => Some((**ty).clone()),
        },
        event,
    }
}

fn self_kind(receiver: &syn::Receiver) -> Receiver {
    let tokens = receiver.to_token_stream();
    match &*receiver.ty {
        Type::Reference(reference) if is_self(&reference.elem) => match reference.mutability {
            Some(_) => Receiver::Exclusive(tokens),
            None => Receiver::Shared(tokens),
        },
        _ => Receiver::Other(tokens),
    }
}

fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

impl Input {
    /// The span errors about this parameter as a whole should cover.
    pub(crate) fn tokens(&self) -> TokenStream {
        let (pat, ty) = (&self.pat, &self.ty);
        quote!(#pat: #ty)
    }

    pub(crate) fn ty_span(&self) -> Span {
        self.ty.span()
    }
}
