//! The macros' expansions are lint-clean: this file uses every feature of `#[dstar::page]` and
//! `dstar::templates!` under `#![deny(warnings, clippy::pedantic)]`, so a warning in generated
//! code fails the build (and `cargo clippy --all-targets -- -D warnings`).
#![deny(warnings, clippy::pedantic)]

use dstar::{Ctx, Html, Message, Mount, Page, View};
use serde::Deserialize;

#[derive(Deserialize)]
struct Step {
    by: i64,
}

/// A stateless page: parameters, a template, a title, events with and without signals, one of
/// them renamed, and a helper the macro leaves alone.
struct Counter {
    start: i64,
}

/// Where the route entry says the page is declared: the line of its attribute.
const COUNTER_LINE: u32 = line!() + 1;
#[dstar::page("/counter/{start}", template = "counter.html", title = "Counter")]
impl Counter {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        let start = mount.param_as("start")?;
        std::future::ready(()).await;
        Ok(Counter { start })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(self.doubled())
    }

    #[event]
    async fn increment(&mut self, cx: &mut Ctx<'_>, step: Step) -> dstar::Result<()> {
        self.start += step.by;
        std::future::ready(()).await;
        cx.render();
        Ok(())
    }

    #[event(name = "reset")]
    async fn reset_to_zero(&mut self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
        self.start = 0;
        std::future::ready(()).await;
        cx.render();
        Ok(())
    }

    fn doubled(&self) -> i64 {
        self.start * 2
    }
}

/// A live page in a named group with a catch-all path, a layout, `info` and `terminate`.
struct Files {
    path: String,
    notices: Vec<String>,
}

#[dstar::page("/files/{*path}", live, group = "files", layout = "files.html")]
impl Files {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        mount.subscribe("files");
        let path = mount.param("path").unwrap_or_default().to_owned();
        std::future::ready(()).await;
        Ok(Files {
            path,
            notices: Vec::new(),
        })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            "{{ path }}: {{ notices | length }}",
            serde_json::json!({ "path": self.path, "notices": self.notices }),
        )
    }

    #[event(name = "files.refresh")]
    async fn refresh(&mut self, cx: &mut Ctx<'_>, step: Step) -> dstar::Result<()> {
        std::future::ready(()).await;
        self.notices.push(format!("refreshed by {}", step.by));
        cx.skip_render();
        Ok(())
    }

    async fn info(&mut self, cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
        std::future::ready(()).await;
        if let Some(notice) = message.get::<String>() {
            self.notices.push(notice.clone());
            cx.render();
        }
        Ok(())
    }

    async fn terminate(&mut self) {
        std::future::ready(()).await;
        self.notices.clear();
    }
}

/// A page with no events at all.
struct About {
    version: &'static str,
}

#[dstar::page(path = "/about", title = "About")]
impl About {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        std::future::ready(()).await;
        Ok(About { version: "1.0" })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            "<h1>About {{ version }}</h1>",
            serde_json::json!({ "version": self.version }),
        )
    }
}

#[test]
fn stateless_route() {
    let route = <Counter as Page>::ROUTE;
    assert_eq!(route.name, "Counter");
    assert_eq!(route.path, "/counter/{start}");
    assert!(!route.live);
    assert_eq!(route.group, "default");
    assert_eq!(route.template, Some("counter.html"));
    assert_eq!(route.layout, None);
    assert_eq!(route.title, Some("Counter"));
    assert_eq!(route.events, ["increment", "reset"]);
    assert!(route.file.ends_with("pedantic.rs"), "{}", route.file);
    assert_eq!(route.line, COUNTER_LINE);
}

#[test]
fn live_route() {
    let route = <Files as Page>::ROUTE;
    assert_eq!(route.name, "Files");
    assert_eq!(route.path, "/files/{*path}");
    assert!(route.live);
    assert_eq!(route.group, "files");
    assert_eq!(route.template, None);
    assert_eq!(route.layout, Some("files.html"));
    assert_eq!(route.title, None);
    assert_eq!(route.events, ["files.refresh"]);
}

#[test]
fn the_pages_fit_in_one_table() {
    let pages = dstar::router![Counter, Files, About];
    let paths: Vec<&str> = pages
        .entries()
        .iter()
        .map(|entry| entry.route.path)
        .collect();
    assert_eq!(paths, ["/counter/{start}", "/files/{*path}", "/about"]);
    assert!(<About as Page>::ROUTE.events.is_empty());
}

#[test]
fn templates_name_the_directory() {
    let templates: dstar::Templates = dstar::templates!("ui/templates/fixture");
    let debug = format!("{templates:?}");
    if cfg!(debug_assertions) {
        assert!(debug.contains("ui/templates/fixture"), "{debug}");
    } else {
        assert!(
            debug.contains("page.html") && debug.contains("partials/item.html"),
            "{debug}"
        );
    }
}
