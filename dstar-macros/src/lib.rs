//! Procedural macros for dstar. Use them through the `dstar` crate, which re-exports them and
//! the items their expansions name.
//!
//! Each entry point hands its tokens to a module working on `proc_macro2` tokens, so the
//! expansions can be unit-tested outside the compiler.

mod errors;
mod page;
mod paths;
mod templates;

use proc_macro::TokenStream;

// The summary line and a compile-fail example are on the re-export in `dstar`, whose docs
// rustdoc shows first.
/// # Example
///
/// ```
/// use dstar::{Ctx, Html, Mount, View};
///
/// #[derive(serde::Deserialize)]
/// struct Step {
///     by: i64,
/// }
///
/// struct Counter {
///     count: i64,
/// }
///
/// #[dstar::page("/counter/{start}", live, template = "counter.html")]
/// impl Counter {
///     async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
///         Ok(Counter { count: mount.param_as("start")? })
///     }
///
///     fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
///         view.render(self.count)
///     }
///
///     #[event]
///     async fn increment(&mut self, _cx: &mut Ctx<'_>, step: Step) -> dstar::Result<()> {
///         self.count += step.by;
///         Ok(())
///     }
///
///     #[event(name = "reset")]
///     async fn reset_count(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
///         self.count = 0;
///         Ok(())
///     }
/// }
///
/// assert_eq!(<Counter as dstar::Page>::ROUTE.events, ["increment", "reset"]);
/// ```
///
/// # Arguments
///
/// - `"/path"` (or `path = "/path"`), required: the route. Segments are literals,
///   parameters (`/users/{id}`, read with [`Mount::param`]) and, last, one catch-all
///   (`/files/{*rest}`). The macro rejects paths the router would not accept.
/// - `live`: a live page. Each tab gets a session task that owns the page state; events and
///   messages reach that same value, and patches flow down one stream. Without it the page is
///   stateless: every request and every event mounts it afresh.
/// - `background`, only with `live`: the page's stream stays open while its tab is hidden (a
///   chat that updates the tab's title). By default a hidden tab's stream pauses and gives the
///   browser's connection back; a background page keeps one for as long as it is open.
/// - `keep_signals`, only with `live`: the session keeps a copy of the signals its last event
///   carried, which `info` and `connected` (which get no signals of their own) read with
///   [`Ctx::last_signals`]. It costs the size of those signals per session, so it is opt-in.
/// - `group = "name"`, only with `live`: live pages of one group share a session, so
///   navigating between them is a soft navigation. The default group is `"default"`.
/// - `template = "file.html"`: the template [`View::render`] renders.
/// - `layout = "file.html"`: the layout around this page, instead of the app's.
/// - `title = "..."`: a fixed document title (or set one in `mount` with
///   [`Mount::set_title`]).
///
/// # Methods
///
/// The macro recognises these methods by name and leaves every other one alone:
///
/// ```text
/// async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self>         // required
/// fn render(&self, view: &View<'_>) -> dstar::Result<Html>             // required, not async
/// async fn info(&mut self, cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()>  // live only
/// async fn terminate(&mut self)                                        // live only
/// async fn connected(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()>  // live only
/// ```
///
/// and event handlers, marked `#[event]`:
///
/// ```text
/// #[event]
/// async fn name(&mut self, cx: &mut Ctx<'_>, signals: T) -> dstar::Result<()>
/// #[event(name = "other-name")]
/// async fn name(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()>
/// ```
///
/// An event is named after its method unless `#[event(name = "...")]` says otherwise. Its
/// signals parameter is optional; when there is one, its type must implement
/// `serde::Deserialize`, and the browser's signals are parsed into it (a malformed body answers
/// 400, a field of the wrong type 422). Event names use ASCII letters, digits, `_`, `-`, `.` and
/// `:`.
///
/// - `mount` builds the page for a request. It runs for every full load, every soft
///   navigation and, on stateless pages, every event: it is the place for authorization.
/// - `render` turns the state into the page body. It is not `async`: load data in `mount` or
///   in a handler, and render what the state holds.
/// - An event handler changes the state and queues patches through [`Ctx`]. Live pages
///   re-render after each handler unless it calls [`Ctx::skip_render`].
/// - `info` gets the [`Message`]s sent to a live page's session (`PubSub` topics it subscribed to
///   in `mount`, or a session handle).
/// - `terminate` runs once when a live page's session ends.
/// - `connected` runs each time a stream attaches to a live page's session: the tab's first
///   connection, every reconnection (a dropped network, a tab shown again after a pause) and a
///   session re-mounted in place. What it queues goes down that stream; it re-renders only
///   when it calls [`Ctx::render`].
///
/// Generic pages, trait impls, and methods that are generic, `unsafe`, `const` or `extern` are
/// rejected, as is anything else that does not match the signatures above: the errors say
/// what to change, on the token to change.
///
/// # What it expands to
///
/// The `impl` block stays as it is (minus the `#[event]` attributes), and an implementation of
/// [`Page`] forwards to its methods. For the `Counter` above, this is the equivalent code
/// without the macro:
///
/// ```
/// # use dstar::{Ctx, Html, Mount, View};
/// # #[derive(serde::Deserialize)]
/// # struct Step { by: i64 }
/// # struct Counter { count: i64 }
/// impl Counter {
///     async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
///         // ...
/// #       Ok(Counter { count: mount.param_as("start")? })
///     }
///
///     fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
///         // ...
/// #       view.render(self.count)
///     }
///
///     async fn increment(&mut self, _cx: &mut Ctx<'_>, step: Step) -> dstar::Result<()> {
///         // ...
/// #       self.count += step.by;
/// #       Ok(())
///     }
///
///     async fn reset_count(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
///         // ...
/// #       self.count = 0;
/// #       Ok(())
///     }
/// }
///
/// impl dstar::Page for Counter {
///     const ROUTE: dstar::Route = dstar::Route::new("Counter", "/counter/{start}", file!(), line!())
///         .live()
///         .template("counter.html")
///         .events(&["increment", "reset"]);
///
///     fn mount(mount: &mut Mount<'_>) -> impl Future<Output = dstar::Result<Self>> + Send {
///         // A path naming the type finds the inherent function before the trait's.
///         Counter::mount(mount)
///     }
///
///     fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
///         Counter::render(self, view)
///     }
///
///     async fn event(&mut self, cx: &mut Ctx<'_>, event: dstar::Event<'_>) -> dstar::Result<()> {
///         match event.name() {
///             "increment" => Counter::increment(self, cx, event.signals::<Step>()?).await,
///             "reset" => Counter::reset_count(self, cx).await,
///             _ => Err(event.unknown()),
///         }
///     }
/// }
/// ```
///
/// `info` and `terminate` are forwarded the same way when the page has them. The route entry is
/// data the runtime reads: `dstar::router!` lists pages by type and compares their paths at
/// compile time, naming the `file` and `line` of both pages when two clash; at start-up,
/// `into_router` checks that the template exists and sends only the page's events.
///
/// [`Page`]: https://docs.rs/dstar/latest/dstar/trait.Page.html
/// [`Mount::param`]: https://docs.rs/dstar/latest/dstar/struct.Mount.html#method.param
/// [`Mount::set_title`]: https://docs.rs/dstar/latest/dstar/struct.Mount.html#method.set_title
/// [`View::render`]: https://docs.rs/dstar/latest/dstar/struct.View.html#method.render
/// [`Ctx`]: https://docs.rs/dstar/latest/dstar/struct.Ctx.html
/// [`Ctx::skip_render`]: https://docs.rs/dstar/latest/dstar/struct.Ctx.html#method.skip_render
/// [`Ctx::render`]: https://docs.rs/dstar/latest/dstar/struct.Ctx.html#method.render
/// [`Ctx::last_signals`]: https://docs.rs/dstar/latest/dstar/struct.Ctx.html#method.last_signals
/// [`Message`]: https://docs.rs/dstar/latest/dstar/struct.Message.html
#[proc_macro_attribute]
pub fn page(args: TokenStream, item: TokenStream) -> TokenStream {
    page::expand(args.into(), item.into()).into()
}

// The summary line is on the re-export in `dstar`.
/// `dstar::templates!("templates")` names a directory relative to the calling crate's
/// `Cargo.toml`.
///
/// - In debug builds the templates are read from the directory, and re-read when they change,
///   so editing one needs no rebuild.
/// - In release builds every file under the directory (recursively, hidden files skipped) is
///   embedded in the binary with `include_str!`, named by its path relative to the directory
///   with `/` separators (`"users/show.html"`). Adding a file needs a rebuild to be seen.
///
/// A directory that does not exist is a compile error.
///
/// ```ignore
/// // With `templates/page.html` next to the crate's `Cargo.toml`: "page.html" is a template.
/// let app = dstar::App::builder().templates(dstar::templates!("templates")).build()?;
/// ```
///
#[proc_macro]
pub fn templates(input: TokenStream) -> TokenStream {
    templates::expand(input.into()).into()
}
