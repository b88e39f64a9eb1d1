use std::rc::Rc;

use dstar::{Html, Mount, View};

struct Home;

#[dstar::page("/")]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        let shared = Rc::new(());
        std::future::ready(()).await;
        drop(shared);
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }
}

fn main() {}
