//! Run with `cargo run -p example-chat`, then open http://127.0.0.1:3000/chat in two tabs.
//!
//! Listens on `DSTAR_ADDR` (default `127.0.0.1:3000`).

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("DSTAR_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = example_chat::app(dstar::App::builder());
    axum::serve(listener, example_chat::router(&app))
        .with_graceful_shutdown(app.shutdown_signal())
        .await
}
