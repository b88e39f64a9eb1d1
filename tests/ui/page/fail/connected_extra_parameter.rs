use dstar::{Ctx, Html, Message, Mount, View};

struct Home;

#[dstar::page("/", live)]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }

    async fn connected(&mut self, _cx: &mut Ctx<'_>, _message: Message) -> dstar::Result<()> {
        Ok(())
    }
}

fn main() {}
