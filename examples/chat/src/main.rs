//! Run with `cargo run -p example-chat`, then open http://127.0.0.1:3000/chat in two tabs.
//!
//! Listens on `DSTAR_ADDR` (default `127.0.0.1:3000`).

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = example_chat::app(dstar::App::builder());
    app.serve(example_chat::router(&app), "127.0.0.1:3000")
        .await
}
