//! The runtime behind [dstar](https://docs.rs/dstar): use it through the `dstar` crate.
//!
//! One module per concern:
//!
//! - [`sse`]: the Datastar v1 wire format, encoded in one pass into a byte buffer.
//! - [`response`]: the `text/event-stream` response type for axum, one-shot or streaming.
//! - [`signals`]: reading (untrusted) signals from a request.
//! - [`token`]: HMAC-signed tokens for streams, navigation and CSRF.
//! - [`template`]: minijinja templates with dstar's action helpers.
//! - [`page`]: the `Page` trait and what its methods receive.
//! - [`router`]: the route table and the axum router built from it.
//! - [`stateless`]: serving stateless pages and their events.
//! - [`session`]: live pages' session tasks.
//! - [`nav`]: soft navigation between live pages.
//! - [`pubsub`]: topics live sessions subscribe to.
//! - [`app`]: configuration and shared services.
//! - `testing` (with the `testing` feature): an in-process client for testing pages without a
//!   browser.
#![deny(missing_docs)]

pub use http;

pub mod app;
pub mod error;
pub mod nav;
pub mod page;
pub mod pubsub;
pub mod response;
pub mod router;
pub mod session;
pub mod signals;
pub mod sse;
pub mod stateless;
pub mod template;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod token;
