//! dstar: server-driven web pages on Datastar and axum.
#![deny(missing_docs)]

#[doc(inline)]
pub use dstar_runtime::{response, signals, sse};
