//! Run with `cargo run -p example-sdk-conformance`, then point the official Datastar SDK test
//! runner (or `cargo test -p dstar-tests --test conformance`) at it.
//!
//! Serves `GET /test` and `POST /test` as the official runner expects: the request's signals
//! hold `{"events": [...]}`, each event an SDK call with its options, and the response is the
//! SSE stream those calls produce. Listens on `DSTAR_ADDR` (default `127.0.0.1:7331`).
// The server announces its address on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("DSTAR_ADDR").unwrap_or_else(|_| "127.0.0.1:7331".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, example_sdk_conformance::app()).await
}
