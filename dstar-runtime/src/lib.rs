//! The runtime behind [dstar](https://docs.rs/dstar): use it through the `dstar` crate.
//!
//! One module per concern, in layers. A module imports only from its own layer or the ones
//! below it (the `layers` test of `dstar-tests` checks every `crate::`/`super::` path):
//!
//! | layer | modules | job |
//! | --- | --- | --- |
//! | wire | [`sse`], [`compress`], [`response`], [`signals`], [`token`], [`cookie`], [`protocol`], [`security`] | Datastar's wire format, stream compression, SSE responses, untrusted signals, signed tokens, cookies (plain, signed, private), dstar's paths, headers and scripts, security headers and script nonces |
//! | base | [`route`], [`template`], [`error`], [`flash`], [`metrics`] | routes and path patterns, minijinja templates and their helpers, the error type, flash messages, the metrics dstar records |
//! | model | [`app`], [`page`], [`pubsub`], [`serve`], [`session`] (`handle`, `outcomes`, `queue`, `page`) | configuration and services, the `Page` trait and what its methods get, topics, the HTTP server (connection deadlines, accept loop, shutdown; TLS with HTTP/2 behind `tls`), session handles, the answers of recent clicks |
//! | transports | `document`, `stateless`, [`session`] (`endpoints`, `stream`, `task`, `tokens`), `nav`, `dev` | serving a page: the document, stateless requests, live sessions, soft navigation, live reload in debug builds |
//! | assembly | [`router`] | the route table and the axum router: every page and `/__dstar/*` endpoint |
//! | testing | `testing` (feature `testing`) | an in-process client for testing pages without a browser |
#![deny(missing_docs)]

pub use http;

pub mod compress;
pub mod cookie;
pub mod protocol;
pub mod response;
pub mod security;
pub mod signals;
pub mod sse;
pub mod token;

pub mod error;
pub mod flash;
pub mod metrics;
pub mod route;
pub mod template;

pub mod app;
pub mod page;
pub mod pubsub;
pub mod serve;
pub mod session;

mod dev;
mod document;
mod nav;
mod stateless;

pub mod router;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
