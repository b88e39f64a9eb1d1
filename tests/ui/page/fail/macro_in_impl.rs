use dstar::{Html, Mount, View};

struct Home;

macro_rules! methods {
    () => {};
}

#[dstar::page("/")]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }

    methods!();
}

fn main() {}
