use dstar::{Html, Mount, View};

struct Home<T>(T);

#[dstar::page("/")]
impl<T: Send + 'static> Home<T> {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        unimplemented!()
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::default())
    }
}

fn main() {}
