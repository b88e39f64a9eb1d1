//! Signatures the syntax checks must not refuse: the error type written out or imported, the
//! context type by its full path, a live page's `info` with its parameters in order.

use dstar::{Error, Html, Message, Mount, View};

type PageResult<T> = dstar::Result<T>;

struct Home;

#[dstar::page("/", live)]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> Result<Self, dstar::Error> {
        Ok(Home)
    }

    fn render(&self, _view: &View<'_>) -> core::result::Result<Html, Error> {
        Ok(Html::default())
    }

    async fn info(&mut self, _cx: &mut dstar::Ctx<'_>, _message: Message) -> PageResult<()> {
        Ok(())
    }

    #[event]
    async fn save(&mut self, _cx: &mut dstar::Ctx<'_>, _value: u32) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {}
