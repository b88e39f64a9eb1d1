//! Helpers shared by dstar's integration tests (the tests themselves live in `tests/`).
//!
//! - [`TestServer`] serves an axum `Router` on `127.0.0.1` at an ephemeral port and talks
//!   HTTP/1.1 to it with a small hand-written client: whole responses with
//!   [`TestServer::get`] and [`TestServer::post`], event streams block by block with
//!   [`TestServer::sse`].
//! - Event streams are parsed with `dstar::test::sse`, the way a browser does, so assertions
//!   are about what a Datastar client would see.

pub mod page;
pub mod server;

pub use page::token_after;
pub use server::{Response, SseStream, TestServer};
