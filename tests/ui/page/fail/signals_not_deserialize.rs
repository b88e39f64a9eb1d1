use dstar::{Ctx, Html, Mount, View};

struct Home;

struct Form {
    _name: String,
}

#[dstar::page("/")]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }

    #[event]
    async fn save(&mut self, _cx: &mut Ctx<'_>, _form: Form) -> dstar::Result<()> {
        Ok(())
    }
}

fn main() {}
