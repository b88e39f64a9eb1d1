//! A live page with `info`, `terminate`, `connected`, kept signals, a group and a catch-all
//! path.

use dstar::{Ctx, Html, Message, Mount, View};

#[derive(serde::Deserialize)]
struct Draft {
    text: String,
}

struct Chat {
    lines: Vec<String>,
}

#[dstar::page(
    path = "/chat/{room}/{*rest}",
    live,
    background,
    keep_signals,
    group = "main",
    layout = "app.html"
)]
impl Chat {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        mount.subscribe("chat");
        Ok(Chat { lines: Vec::new() })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            "{{ lines | length }}",
            serde_json::json!({ "lines": self.lines }),
        )
    }

    #[event(name = "send")]
    async fn send_line(&mut self, cx: &mut Ctx<'_>, draft: Draft) -> dstar::Result<()> {
        cx.publish("chat", draft.text);
        Ok(())
    }

    async fn info(&mut self, _cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
        self.lines.extend(message.get::<String>().cloned());
        Ok(())
    }

    async fn terminate(&mut self) {
        self.lines.clear();
    }

    async fn connected(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        cx.patch_signals(&serde_json::json!({ "lines": self.lines.len() }))
    }
}

fn main() {
    let route = <Chat as dstar::Page>::ROUTE;
    assert!(route.live);
    assert!(route.background);
    assert!(route.keep_signals);
    assert_eq!(route.group, "main");
}
