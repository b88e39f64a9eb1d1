use dstar::{Html, Mount, View};

#[derive(serde::Deserialize)]
struct Form {
    name: String,
}

struct Home;

#[dstar::page("/")]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }

    #[event]
    async fn save(&mut self, form: Form) -> dstar::Result<()> {
        let _ = form.name;
        Ok(())
    }
}

fn main() {}
