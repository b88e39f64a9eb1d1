use dstar::{Html, Mount, View};

struct Home;

#[dstar::page("/")]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> Result<Self, std::io::Error> {
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }
}

fn main() {}
