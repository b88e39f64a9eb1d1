use dstar::{Html, Mount, View};

struct Home;

trait Render {
    fn render(&self, view: &View<'_>) -> dstar::Result<Html>;
}

#[dstar::page("/")]
impl Render for Home {
    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }
}

impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }
}

fn main() {}
