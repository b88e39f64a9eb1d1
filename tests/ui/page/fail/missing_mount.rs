use dstar::{Html, View};

struct Home;

#[dstar::page("/")]
impl Home {
    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }
}

fn main() {}
