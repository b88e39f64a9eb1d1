//! The counter: a stateless page. The count lives in the browser as the `count` signal; each
//! click posts it back, and the handler answers with the new value as a signal patch. The
//! server keeps nothing between requests.

use dstar::app::AppBuilder;
use dstar::{App, Ctx, Html, Mount, View};
use serde::Deserialize;
use serde_json::json;

/// The signals the counter's events carry.
#[derive(Debug, Deserialize)]
pub struct Count {
    /// The count the browser shows.
    pub count: i64,
}

/// The counter page at `/`.
#[derive(Debug)]
pub struct Counter;

#[dstar::page("/", template = "counter.html", title = "Counter")]
impl Counter {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Counter)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(())
    }

    #[event]
    async fn increment(&mut self, cx: &mut Ctx<'_>, signals: Count) -> dstar::Result<()> {
        cx.patch_signals(&json!({ "count": signals.count.saturating_add(1) }))
    }

    #[event]
    async fn decrement(&mut self, cx: &mut Ctx<'_>, signals: Count) -> dstar::Result<()> {
        cx.patch_signals(&json!({ "count": signals.count.saturating_sub(1) }))
    }
}

/// The counter app; `builder` carries settings such as where the Datastar client is served.
pub fn app(builder: AppBuilder) -> App {
    builder
        .templates(dstar::templates!("templates"))
        .build()
        .expect("the counter app's configuration is complete")
}

/// The counter's routes.
pub fn router(app: &App) -> axum::Router {
    dstar::router![Counter].into_router(app.clone())
}
