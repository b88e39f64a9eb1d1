//! Run with `cargo run -p example-counter`, then open http://127.0.0.1:3000.
//!
//! Listens on `DSTAR_ADDR` (default `127.0.0.1:3000`).

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = example_counter::app(dstar::App::builder());
    app.serve(example_counter::router(&app), "127.0.0.1:3000")
        .await
}
