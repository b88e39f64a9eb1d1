use dstar::{Html, Mount, View};

struct Home;

#[dstar::page("/")]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> Html {
        Html::default()
    }
}

fn main() {}
