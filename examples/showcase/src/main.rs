//! Run with `cargo run -p example-showcase`, then open http://127.0.0.1:3000.
//!
//! Listens on `DSTAR_ADDR` (default `127.0.0.1:3000`). Stop it with ctrl-c: open streams are
//! ended with a retry hint and every page's `terminate` runs.

/// mimalloc gives freed memory back to the OS when run with `MIMALLOC_PURGE_DELAY=0` in the
/// environment (its default keeps freed pages until the thread that owns them allocates
/// again); glibc's malloc keeps what a peak of sessions used for ever (BENCHMARKS.md, "Memory
/// given back").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // `RUST_LOG=dstar_runtime=debug` shows each event's patches; the default is `info`.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let app = example_showcase::app(dstar::App::builder());
    app.serve(example_showcase::router(&app), "127.0.0.1:3000")
        .await
}
