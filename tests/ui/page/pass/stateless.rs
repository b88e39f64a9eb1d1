//! A stateless page with every kind of method it may have.

use dstar::{Ctx, Html, Mount, View};

#[derive(serde::Deserialize)]
struct Count {
    count: i64,
}

struct Counter {
    start: i64,
}

#[dstar::page("/counter/{start}", template = "counter.html", title = "Counter")]
impl Counter {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Counter {
            start: mount.param_as("start")?,
        })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(self.start)
    }

    #[event]
    async fn increment(&mut self, cx: &mut Ctx<'_>, signals: Count) -> dstar::Result<()> {
        cx.patch_signals(&serde_json::json!({ "count": signals.count + 1 }))
    }

    #[event(name = "reset")]
    async fn reset_to_start(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        cx.patch_signals(&serde_json::json!({ "count": self.start }))
    }

    fn helper(&self) -> i64 {
        self.start * 2
    }
}

fn main() {
    let route = <Counter as dstar::Page>::ROUTE;
    assert_eq!(route.events, ["increment", "reset"]);
    assert!(!route.live);
    let _ = Counter { start: 1 }.helper();
}
