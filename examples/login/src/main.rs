//! Run with `cargo run -p example-login`, then open http://127.0.0.1:3000/login.
//!
//! Listens on `DSTAR_ADDR` (default `127.0.0.1:3000`).

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let app = example_login::app(dstar::App::builder());
    app.serve(example_login::router(&app), "127.0.0.1:3000")
        .await
}
