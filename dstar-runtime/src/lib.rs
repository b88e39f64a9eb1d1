//! The runtime behind [dstar](https://docs.rs/dstar): use it through the `dstar` crate.
//!
//! One module per concern:
//!
//! - [`sse`]: the Datastar v1 wire format, encoded in one pass into a byte buffer.
//! - [`response`]: the `text/event-stream` response type for axum, one-shot or streaming.
//! - [`signals`]: reading (untrusted) signals from a request.
#![deny(missing_docs)]

pub mod response;
pub mod signals;
pub mod sse;
