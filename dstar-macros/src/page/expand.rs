//! Emits the `Page` impl for a checked [`Page`]: the route entry as data, and one thin
//! forwarding call per method. Everything else (dispatch, SSE, sessions) is runtime code.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::Type;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::parse::{Method, Page, Setting};
use crate::paths::{
    CTX, ERR, EVENT, FILE, FUTURE, HTML, LINE, MESSAGE, MOUNT, PAGE, RESULT, ROUTE, SEND, SIGNALS,
    VIEW,
};

pub(crate) fn page(page: &Page) -> TokenStream {
    let item = &page.item;
    let ty = &page.ty.ty;
    let route = route(page);
    let mount = mount(page);
    let render = render(page);
    let event = event(page);
    let info = info(page);
    let terminate = terminate(page);
    let connected = connected(page);
    quote! {
        #item

        #[automatically_derived]
        impl #PAGE for #ty {
            #route
            #mount
            #render
            #event
            #info
            #terminate
            #connected
        }
    }
}

/// A local of the generated code: invisible to the user's tokens and theirs to it.
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// The same local where it is passed to one of the user's parameters, so a type mismatch is
/// reported on that parameter's type.
fn argument(name: &str, method: Option<&Method>, index: usize) -> TokenStream {
    let span = Span::mixed_site();
    match method.and_then(|method| method.inputs.get(index)) {
        Some(input) => Ident::new(name, span.located_at(input.ty_span())).into_token_stream(),
        None => Ident::new(name, span).into_token_stream(),
    }
}

/// A call of the page's own method `name`: `Counter::render(self, view)`. A path naming the type
/// finds the inherent function before the trait's of the same name.
///
/// The call is written at the method's name, so that the type checker's complaints about it
/// (a wrong return type, a future that is not `Send`) point at the user's method, and each
/// argument at the parameter it is passed to.
fn call(page: &Page, method: Option<&Method>, name: &str, args: &[TokenStream]) -> TokenStream {
    let (name, span) = match method {
        Some(method) => (method.ident.clone(), method.ident.span()),
        // `check` reports a missing method before expansion gets here.
        None => (Ident::new(name, Span::call_site()), Span::call_site()),
    };
    let ty = respan(page.ty.ty.to_token_stream(), span);
    let owner = match &page.ty.ty {
        Type::Path(path)
            if path.qself.is_none() && path.path.segments.iter().all(|s| s.arguments.is_none()) =>
        {
            ty
        }
        _ => quote_spanned!(span=> <#ty>),
    };
    quote_spanned!(span=> #owner::#name(#(#args),*))
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                token = TokenTree::Group(respanned);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// `self`, written at the method's name like the rest of the call.
fn this(method: Option<&Method>) -> TokenStream {
    let span = method.map_or_else(Span::call_site, |method| method.ident.span());
    quote_spanned!(span=> self)
}

/// The route entry, built with `Route`'s `const` setters (only those that apply), so the runtime
/// can add fields to `Route` without breaking expansions.
fn route(page: &Page) -> TokenStream {
    let args = &page.args;
    let name = page
        .ty
        .name
        .as_ref()
        .map(|name| name.unraw().to_string())
        .unwrap_or_default();
    let path = &args.path;
    let mut route = quote!(#ROUTE::new(#name, #path, #FILE!(), #LINE!()));
    if args.live.is_some() {
        route.extend(quote!(.live()));
    }
    if args.background.is_some() {
        route.extend(quote!(.background()));
    }
    if args.keep_signals.is_some() {
        route.extend(quote!(.keep_signals()));
    }
    for (setter, setting) in [
        ("group", &args.group),
        ("template", &args.template),
        ("layout", &args.layout),
        ("title", &args.title),
    ] {
        if let Some(Setting { value, .. }) = setting {
            let setter = Ident::new(setter, Span::call_site());
            route.extend(quote!(.#setter(#value)));
        }
    }
    if !page.handlers.is_empty() {
        let events = page.handlers.iter().map(|handler| handler.event_name().0);
        route.extend(quote!(.events(&[#(#events),*])));
    }
    quote! {
        const ROUTE: #ROUTE = #route;
    }
}

fn mount(page: &Page) -> TokenStream {
    let method = page.mount.as_ref();
    let mount = local("mount");
    let call = call(page, method, "mount", &[argument("mount", method, 0)]);
    let future = future(method, &quote!(#RESULT<Self>));
    quote! {
        fn mount(#mount: &mut #MOUNT<'_>) -> #future {
            #call
        }
    }
}

fn render(page: &Page) -> TokenStream {
    let method = page.render.as_ref();
    let view = local("view");
    let call = call(
        page,
        method,
        "render",
        &[this(method), argument("view", method, 0)],
    );
    quote! {
        fn render(&self, #view: &#VIEW<'_>) -> #RESULT<#HTML> {
            #call
        }
    }
}

fn event(page: &Page) -> TokenStream {
    let event = local("event");
    if page.handlers.is_empty() {
        return quote! {
            async fn event(&mut self, _: &mut #CTX<'_>, #event: #EVENT<'_>) -> #RESULT<()> {
                #ERR(#event.unknown())
            }
        };
    }
    let cx = local("cx");
    let arms = page.handlers.iter().map(|handler| {
        let name = handler.event_name().0;
        let mut args = vec![this(Some(handler)), argument("cx", Some(handler), 0)];
        if let Some(ty) = handler.signals() {
            // Written at the signals type: one that is not `Deserialize` is reported there.
            let span = ty.span();
            let signals = SIGNALS.at(span);
            let event = Ident::new("event", Span::mixed_site().located_at(span));
            args.push(quote_spanned!(span=> #signals::<#ty>(&#event)?));
        }
        let call = call(page, Some(handler), "", &args);
        let span = handler.ident.span();
        quote_spanned!(span=> #name => #call.await,)
    });
    quote! {
        async fn event(&mut self, #cx: &mut #CTX<'_>, #event: #EVENT<'_>) -> #RESULT<()> {
            match #event.name() {
                #(#arms)*
                _ => #ERR(#event.unknown()),
            }
        }
    }
}

fn info(page: &Page) -> TokenStream {
    let Some(method) = &page.info else {
        return TokenStream::new();
    };
    let (cx, message) = (local("cx"), local("message"));
    let args = [
        this(Some(method)),
        argument("cx", Some(method), 0),
        argument("message", Some(method), 1),
    ];
    let call = call(page, Some(method), "info", &args);
    let future = future(Some(method), &quote!(#RESULT<()>));
    quote! {
        fn info(&mut self, #cx: &mut #CTX<'_>, #message: #MESSAGE) -> #future {
            #call
        }
    }
}

fn terminate(page: &Page) -> TokenStream {
    let Some(method) = &page.terminate else {
        return TokenStream::new();
    };
    let call = call(page, Some(method), "terminate", &[this(Some(method))]);
    let future = future(Some(method), &quote!(()));
    quote! {
        fn terminate(&mut self) -> #future {
            #call
        }
    }
}

fn connected(page: &Page) -> TokenStream {
    let Some(method) = &page.connected else {
        return TokenStream::new();
    };
    let cx = local("cx");
    let args = [this(Some(method)), argument("cx", Some(method), 0)];
    let call = call(page, Some(method), "connected", &args);
    let future = future(Some(method), &quote!(#RESULT<()>));
    quote! {
        fn connected(&mut self, #cx: &mut #CTX<'_>) -> #future {
            #call
        }
    }
}

/// `impl Future<Output = ...> + Send`, the return type of a method that hands back the user's
/// future. It is written at the user's method, where a future that is not `Send` or resolves to
/// the wrong type is then reported.
fn future(method: Option<&Method>, output: &TokenStream) -> TokenStream {
    let span = method.map_or_else(Span::call_site, |method| method.ident.span());
    let (future, send) = (FUTURE.at(span), SEND.at(span));
    quote_spanned!(span=> impl #future<Output = #output> + #send)
}
