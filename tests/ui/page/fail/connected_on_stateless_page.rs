use dstar::{Ctx, Html, Mount, View};

struct Home;

#[dstar::page("/")]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }

    async fn connected(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
        Ok(())
    }
}

fn main() {}
