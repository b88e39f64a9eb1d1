//! Testing pages without a browser or a socket: an in-process client that speaks dstar's wire
//! protocol to your real `axum::Router`, like Phoenix's `LiveViewTest`.
//!
//! [`TestClient::get`] loads a page the way a browser tab would and returns a [`TestPage`]: a
//! model of the document (its `<body>` HTML after every patch), the client's signals, the URL
//! and the title. Actions send what the Datastar client would send:
//!
//! - [`click`](TestPage::click), [`event`](TestPage::event) and
//!   [`event_with`](TestPage::event_with) send an event with the page's signals;
//!   [`click_on`](TestPage::click_on) clicks an element and does what its `data-on:click`
//!   says (an `event(...)`, a soft-navigation `link(...)`/`navigate(...)`, or a plain link);
//! - [`navigate`](TestPage::navigate) and [`back`](TestPage::back) navigate like `link()` and the
//!   Back button (soft on live pages, a full load otherwise);
//! - [`next_update`](TestPage::next_update) and [`settle`](TestPage::settle) take in what
//!   arrives on a live page's stream without an action of its own (PubSub, other tabs).
//!
//! Every [`TestClient::get`] is a new tab of the same browser (they share cookies), so
//! multi-user pages are tested with two pages from one client.
//!
//! For tests of the bytes themselves, [`sse`] reads an event stream the way a browser's
//! `EventSource` does; the client reads every answer and stream with it.
//!
//! ```
//! use dstar_runtime::app::App;
//! use dstar_runtime::page::{Ctx, Event, Html, Mount, Page, View};
//! use dstar_runtime::route::Route;
//! use dstar_runtime::router::{Entry, Pages};
//! use dstar_runtime::testing::TestClient;
//!
//! struct Counter;
//!
//! impl Page for Counter {
//!     const ROUTE: Route =
//!         Route::new("Counter", "/", file!(), line!()).title("Counter").events(&["increment"]);
//!
//!     async fn mount(_mount: &mut Mount<'_>) -> dstar_runtime::error::Result<Self> {
//!         Ok(Counter)
//!     }
//!
//!     fn render(&self, view: &View<'_>) -> dstar_runtime::error::Result<Html> {
//!         view.render_str(
//!             r#"<p id="count" data-signals:count="0" data-text="$count">0</p>
//!                <button id="plus" data-on:click="{{ event('increment') }}">+1</button>"#,
//!             (),
//!         )
//!     }
//!
//!     async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar_runtime::error::Result<()> {
//!         #[derive(serde::Deserialize)]
//!         struct Count {
//!             count: i64,
//!         }
//!         let Count { count } = event.signals()?;
//!         cx.patch_signals(&serde_json::json!({ "count": count + 1 }))?;
//!         cx.patch_elements(format!(r#"<p id="count">{}</p>"#, count + 1));
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let app = App::builder().secret_key(b"doc test (a test key of 32+ bytes)").build().unwrap();
//! static PAGES: &[Entry] = &[Entry::of::<Counter>()];
//! let client = TestClient::new(Pages::new(PAGES).into_router(app));
//!
//! let mut page = client.get("/").await.unwrap();
//! assert_eq!(page.title(), "Counter");
//! page.assert_signal("count", 0);
//!
//! page.click("increment").await.unwrap();
//! page.assert_signal("count", 1);
//! page.assert_text("#count", "1");
//!
//! page.click_on("#plus").await.unwrap(); // finds `increment` in the button's `data-on:click`
//! page.assert_text("#count", "2");
//! # });
//! ```
//!
//! # When an action returns
//!
//! On a stateless page, an action returns once the one-shot SSE answer has been applied.
//!
//! On a live page, patches come down the stream, not in the answer. The session task queues an
//! event's patches on the stream *before* it answers `204`, and it works through its mailbox in
//! order. So after the `204` the client sends the session a no-op (an event no page has,
//! answered `404`), and when that returns, applies every stream event that has arrived. The
//! rule, with no sleeps and no guessing:
//!
//! > When an action on a live page returns, the page shows everything the action caused in its
//! > own session, and everything any other code had sent the session (PubSub messages, session
//! > handles) before the action returned.
//!
//! [`settle`](TestPage::settle) applies the same rule without an action: after another tab
//! published something, `other_tab.settle().await` is enough to see its effect.
//! [`next_update`](TestPage::next_update) instead waits (up to the client's timeout, 5 s by
//! default) until at least one new stream event arrives.
//!
//! # The model
//!
//! - Signals start from the `data-signals` attributes of the loaded document (`data-signals=
//!   "{...}"` and `data-signals:name="..."`, with values that are literals: JSON or a JavaScript
//!   object literal; expressions cannot be evaluated and are listed in assertion failures).
//!   `datastar-patch-signals` events are applied as JSON merge patches. Actions send every
//!   signal whose name does not start with `_`, like Datastar.
//! - Element patches are applied to the document text: without a selector, elements are
//!   matched by id; with one, every match is patched. Morphing is modelled as replacement.
//!   Selectors: `#id`, `tag`, `.class`, `[attr]`, `[attr="v"]`, their combinations, descendant
//!   and child combinators and lists. A patch whose target is missing is an error
//!   ([`TestError::NoTarget`]): a browser only logs it, which is easy to miss.
//!   Elements that arrive with `data-signals` attributes that were not in the document before
//!   set their signals, as Datastar does for new elements.
//! - Scripts are not run. The client recognises what dstar writes: redirects
//!   (`window.location.assign`), reloads, `document.title`, `history.pushState`/`replaceState`
//!   and the navigation token. [`TestPage::scripts`] lists every script received.
//! - Redirects are followed: `303` answers to a page load, redirect scripts, and `{"load": url}`
//!   answers to a soft navigation.

// Imports point one way, from the wire up to what users call: `sse`, then `datastar`; `html`,
// then `selector` and `patch`; `signals` and `script`; `error`; `client` and `stream`; the tab
// (`page`); then `inspect` and `actions`, which add the tab's public methods.
mod actions;
mod client;
mod datastar;
mod error;
mod html;
mod inspect;
mod page;
mod patch;
mod script;
mod selector;
mod signals;
pub mod sse;
mod stream;

pub use self::client::{DEFAULT_TIMEOUT, TestClient};
pub use self::error::TestError;
pub use self::page::TestPage;
