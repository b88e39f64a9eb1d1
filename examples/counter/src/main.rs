//! Run with `cargo run -p example-counter`, then open http://127.0.0.1:3000.
//!
//! Listens on `DSTAR_ADDR` (default `127.0.0.1:3000`).

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // `RUST_LOG=dstar_runtime=debug` shows each event's patches; the default is `info`.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let app = example_counter::app(dstar::App::builder());
    app.serve(example_counter::router(&app), "127.0.0.1:3000")
        .await
}
