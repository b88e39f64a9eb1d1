//! Pages whose names or signals need care: a raw identifier, `Self` as the signals type, a
//! user item called `Page`, and locals named like the generated ones.

use dstar::{Ctx, Html, Mount, View};

#[allow(dead_code)]
trait Page {}

#[derive(serde::Deserialize)]
struct Form {
    value: String,
}

#[dstar::page("/form")]
impl Form {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Form {
            value: String::new(),
        })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str("{{ value }}", serde_json::json!({ "value": self.value }))
    }

    #[event]
    async fn r#type(&mut self, cx: &mut Ctx<'_>, event: Self) -> dstar::Result<()> {
        self.value = event.value;
        cx.render();
        Ok(())
    }
}

fn main() {
    assert_eq!(<Form as dstar::Page>::ROUTE.events, ["type"]);
}
