//! # dstar
//!
//! Server-driven web pages in Rust, on [Datastar](https://data-star.dev) v1 and axum: what
//! Phoenix LiveView is for Elixir, over plain HTTP and Server-Sent Events.
//!
//! A page is one Rust type. `#[dstar::page]` on its `impl` block makes it routable;
//! [`router!`] lists the pages and returns an `axum::Router`.
//!
//! - **Stateless pages**: a GET renders the page; each event is a POST answered by a one-shot
//!   SSE response of patches. The server keeps nothing per tab.
//! - **Live pages** (`#[dstar::page("/path", live)]`): each tab gets a session task that owns the
//!   page state; events go to the task and patches flow down one SSE stream.
//!
//! ```no_run
//! use dstar::{Ctx, Html, Mount, View};
//!
//! #[derive(serde::Deserialize)]
//! struct Count {
//!     count: i64,
//! }
//!
//! struct Counter;
//!
//! #[dstar::page("/")]
//! impl Counter {
//!     async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
//!         Ok(Counter)
//!     }
//!
//!     fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
//!         view.render_str(
//!             r#"<p data-signals:count="0" data-text="$count"></p>
//!                <button data-on:click="{{ event('increment') }}">+1</button>"#,
//!             (),
//!         )
//!     }
//!
//!     #[event]
//!     async fn increment(&mut self, cx: &mut Ctx<'_>, signals: Count) -> dstar::Result<()> {
//!         cx.patch_signals(&serde_json::json!({ "count": signals.count + 1 }))
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let app = dstar::App::builder().build()?;
//! let router: axum::Router = dstar::router![Counter].into_router(app.clone());
//! app.serve(router, "127.0.0.1:3000").await?;
//! # Ok(()) }
//! ```
//!
//! ## Features
//!
//! - `test`: `dstar::test`, an in-process client that drives your router like a browser tab.
//!   Enable it for tests only, as
//!   `[dev-dependencies] dstar = { version = "0.1", features = ["test"] }`.
//! - `tls`: TLS with HTTP/2 in `App::serve` (rustls on the `ring` provider):
//!   `App::builder().tls(serve::Tls::from_pem_files(cert, key)?)`, or `DSTAR_TLS_CERT` and
//!   `DSTAR_TLS_KEY`. Browsers then send every tab's requests over one connection.
//!
//! ## Where things are
//!
//! - `dstar` (this crate): what users name. Its modules are the runtime's, by the same names:
//!   [`sse`], [`response`], [`signals`], [`token`] and [`protocol`] are the wire (Datastar's
//!   events, SSE responses, untrusted signals, signed tokens, dstar's own paths, headers and
//!   scripts); [`route`], [`template`], [`error`] and [`metrics`] the base; [`app`], [`page`](mod@page),
//!   [`pubsub`] and [`session`] the model pages are written against, and [`serve`] the server
//!   that runs them; [`router`](mod@router) assembles them.
//! - `dstar-macros`: `#[dstar::page]`, `dstar::templates!`.
//! - `dstar-runtime`: everything that runs, in those layers, each importing only from below.
#![deny(missing_docs)]

/// Makes the type of an inherent `impl` block a routable page: implements [`Page`] for it from
/// the methods the block has.
///
/// The macro checks the block before it generates anything, and each mistake is a compile error
/// on the token to change, saying what to write instead. A page without `render`, for one,
///
/// ```compile_fail
/// use dstar::Mount;
///
/// struct Home;
///
/// #[dstar::page("/")]
/// impl Home {
///     async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
///         Ok(Home)
///     }
/// }
/// ```
///
/// is refused on `Home` with
/// `` page `Home` has no `render` method; add `fn render(&self, view: &View<'_>) -> dstar::Result<Html>` ``.
/// With it, the page compiles:
///
/// ```
/// use dstar::{Html, Mount, View};
///
/// struct Home;
///
/// #[dstar::page("/")]
/// impl Home {
///     async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
///         Ok(Home)
///     }
///
///     fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
///         view.render_str("<h1>Home</h1>", ())
///     }
/// }
/// ```
///
#[doc(inline)]
pub use dstar_macros::page;

/// The crate's templates, an expression of type [`Templates`]: read from a directory while
/// developing, embedded in the binary for release.
///
#[doc(inline)]
pub use dstar_macros::templates;

#[doc(inline)]
pub use dstar_runtime::{
    app, compress, error, metrics, page, protocol, pubsub, response, route, router, security,
    serve, session, signals, sse, template, token,
};

/// The `http` crate's types (status codes, headers) as dstar uses them.
pub use dstar_runtime::http;

#[doc(inline)]
pub use dstar_runtime::app::{App, AppState};
#[doc(inline)]
pub use dstar_runtime::cookie::{Cookie, Cookies, SameSite};
#[doc(inline)]
pub use dstar_runtime::error::{Error, Result};
#[doc(inline)]
pub use dstar_runtime::page::{Ctx, Event, Html, Message, Mount, Page, SessionEnd, View};
#[doc(inline)]
pub use dstar_runtime::route::Route;
#[doc(inline)]
pub use dstar_runtime::router::Pages;
#[doc(inline)]
pub use dstar_runtime::template::Templates;

/// The in-process test client. It is behind the `test` feature, so that production builds do
/// not carry it; enable the feature for tests only:
///
/// ```toml
/// [dev-dependencies]
/// dstar = { version = "0.1", features = ["test"] }
/// ```
///
#[cfg(feature = "test")]
#[doc(inline)]
pub use dstar_runtime::testing as test;

/// Lists the pages an app serves: `dstar::router![Home, Counter]` is a [`Pages`] table made at
/// compile time; `.into_router(app)` checks it against the app's templates and returns an
/// `axum::Router`.
///
/// Two pages of one `router!` whose paths clash are a compile error naming both pages, their
/// paths and where they were declared: the same path (`/users/{id}` and `/users/{name}`), or
/// patterns some URL matches without either being the more specific. Static segments win,
/// as in axum's router: segment by segment a literal beats a `{param}`, which beats a
/// `{*rest}`, so `/items/new` and `/items/{id}` are fine together (`/items/new` serves that one
/// path), while `/a/{x}` and `/{y}/b` both match `/a/b` and are refused. Tables joined with
/// [`Pages::and`], or put together by hand (below), get the same check at start-up, in
/// [`Pages::into_router`].
///
/// `dstar::router![Home, Counter]` is this, written by hand:
///
/// ```ignore
/// {
///     // A compile error when two routes clash.
///     const _: () = if let Some(clash) = dstar::__private::first_clash(&[&Home::ROUTE, &Counter::ROUTE]) {
///         panic!("{}", clash.as_str())
///     };
///     static PAGES: &[dstar::router::Entry] =
///         &[dstar::router::Entry::of::<Home>(), dstar::router::Entry::of::<Counter>()];
///     dstar::Pages::new(PAGES)
/// }
/// ```
///
/// ```compile_fail
/// # use dstar::{Html, Mount, View};
/// struct ById;
/// #[dstar::page("/users/{id}")]
/// impl ById {
///     async fn mount(_: &mut Mount<'_>) -> dstar::Result<Self> { Ok(ById) }
///     fn render(&self, _: &View<'_>) -> dstar::Result<Html> { Ok(Html::default()) }
/// }
/// struct ByName;
/// #[dstar::page("/users/{name}")]
/// impl ByName {
///     async fn mount(_: &mut Mount<'_>) -> dstar::Result<Self> { Ok(ByName) }
///     fn render(&self, _: &View<'_>) -> dstar::Result<Html> { Ok(Html::default()) }
/// }
/// // error: dstar::router!: routes both serve `/users/{id}` and `/users/{name}`
/// let pages = dstar::router![ById, ByName];
/// ```
#[macro_export]
macro_rules! router {
    ($($page:ty),* $(,)?) => {{
        const _: () = if let ::core::option::Option::Some(clash) =
            $crate::__private::first_clash(&[$(&<$page as $crate::Page>::ROUTE),*])
        {
            ::core::panic!("{}", clash.as_str())
        };
        static PAGES: &[$crate::router::Entry] = &[$($crate::router::Entry::of::<$page>()),*];
        $crate::Pages::new(PAGES)
    }};
}

/// Not public API: the items `#[dstar::page]` and `dstar::templates!` expansions name. They may
/// change at any time.
#[doc(hidden)]
pub mod __private {
    pub use core::future::Future;
    pub use core::result::Result::Err;

    pub use dstar_runtime::page::{Ctx, Event, Html, Message, Mount, Page, View};
    pub use dstar_runtime::route::Route;
    pub use dstar_runtime::router::first_clash;
    pub use dstar_runtime::template::Templates;

    /// What an event's signals type must be. A bound of its own so that a type that is not
    /// `Deserialize` gets an error saying what signals are, on the user's type.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be an event's signals",
        label = "not `Deserialize`",
        note = "signals are parsed from the event's JSON: add `#[derive(serde::Deserialize)]` to `{Self}`"
    )]
    pub trait Signals: serde::de::DeserializeOwned {}

    impl<T: serde::de::DeserializeOwned> Signals for T {}

    /// An event's signals as the handler's signals type.
    pub fn signals<T: Signals>(event: &Event<'_>) -> crate::Result<T> {
        event.signals()
    }
}
