use dstar::{Mount, View};

struct Home;

#[dstar::page("/")]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<String> {
        Ok(String::new())
    }
}

fn main() {}
