//! Run with `cargo run -p example-showcase`, then open http://127.0.0.1:3000.
//!
//! Listens on `DSTAR_ADDR` (default `127.0.0.1:3000`). Stop it with ctrl-c: open streams are
//! ended with a retry hint and every page's `terminate` runs.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("DSTAR_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = example_showcase::app(dstar::App::builder());
    axum::serve(listener, example_showcase::router(&app))
        .with_graceful_shutdown(app.shutdown_signal())
        .await
}
