//! The dstar pages the benchmarks serve, written as plain `impl dstar::Page` blocks (what
//! `#[dstar::page]` expands to), so the numbers do not depend on the macro.

use dstar::{Ctx, Event, Html, Message, Mount, Page, Route, View};
use serde::{Deserialize, Serialize};

/// The PubSub topic [`Counter`] sessions subscribe to.
pub const TOPIC: &str = "all";

/// The name of the template [`TemplatedCounter`] renders.
pub const COUNTER_TEMPLATE: &str = "counter.html";

/// The source of [`COUNTER_TEMPLATE`]: the same markup [`Counter`] writes by hand.
pub const COUNTER_TEMPLATE_SOURCE: &str = r#"<p id="n">{{ n }}</p>"#;

/// The markup of a counter at `n`: what every live page and baseline here sends as a patch.
pub fn counter_html(n: u64) -> String {
    format!(r#"<p id="n">{n}</p>"#)
}

/// A live page with no state at all and no subscription: the cost of a bare session.
#[derive(Debug)]
pub struct Idle;

impl Page for Idle {
    const ROUTE: Route = Route::new("Idle", "/idle", file!(), line!()).live();

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Idle)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from("<p>idle</p>"))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        Err(event.unknown())
    }
}

/// A live counter (8 bytes of state) subscribed to [`TOPIC`]: `bump` adds one, a `u64`
/// message sets the count. Rendered by hand with `format!`, so round trips measure the runtime
/// rather than a template engine.
#[derive(Debug)]
pub struct Counter {
    count: u64,
}

impl Page for Counter {
    const ROUTE: Route = Route::new("Counter", "/live", file!(), line!())
        .live()
        .events(&["bump"]);

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        mount.subscribe(TOPIC);
        Ok(Counter { count: 0 })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(counter_html(self.count)))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "bump" => {
                self.count += 1;
                Ok(())
            }
            _ => Err(event.unknown()),
        }
    }

    async fn info(&mut self, _cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
        if let Some(n) = message.get::<u64>() {
            self.count = *n;
        }
        Ok(())
    }
}

/// [`Counter`] rendered through a minijinja template (`view.render`), as a macro-written page
/// with `template = "counter.html"` would be.
#[derive(Debug)]
pub struct TemplatedCounter {
    count: u64,
}

impl Page for TemplatedCounter {
    const ROUTE: Route = Route::new("TemplatedCounter", "/live-tpl", file!(), line!())
        .live()
        .template(COUNTER_TEMPLATE)
        .events(&["bump"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(TemplatedCounter { count: 0 })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(serde_json::json!({ "n": self.count }))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "bump" => {
                self.count += 1;
                Ok(())
            }
            _ => Err(event.unknown()),
        }
    }
}

/// The signals a stateless count event carries.
#[derive(Debug, Deserialize)]
pub struct CountIn {
    /// The client's count.
    pub count: i64,
}

/// The signals a stateless count event answers with.
#[derive(Debug, Serialize)]
pub struct CountOut {
    /// The client's count plus one.
    pub count: i64,
}

/// A stateless page whose `increment` event answers `{"count": n + 1}` as a signals patch.
#[derive(Debug)]
pub struct Count;

impl Page for Count {
    const ROUTE: Route = Route::new("Count", "/count", file!(), line!()).events(&["increment"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Count)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from(
            r#"<p data-signals:count="0" data-text="$count"></p>"#,
        ))
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "increment" => {
                let signals: CountIn = event.signals()?;
                cx.patch_signals(&CountOut {
                    count: signals.count + 1,
                })
            }
            _ => Err(event.unknown()),
        }
    }
}

/// A live page whose every render is about 1 KB (a list of sixteen rows): `bump` changes one
/// row, and the re-render of the whole list is what a busy session's replay ring keeps.
#[derive(Debug)]
pub struct Busy {
    count: u64,
}

impl Page for Busy {
    const ROUTE: Route = Route::new("Busy", "/busy", file!(), line!())
        .live()
        .events(&["bump"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Busy { count: 0 })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        let mut html = String::with_capacity(1100);
        html.push_str("<ul id=\"rows\">");
        for row in 0..16 {
            html.push_str(&format!(
                "<li id=\"row-{row}\" class=\"row\">Row {row}: seen {} times</li>",
                self.count + row
            ));
        }
        html.push_str("</ul>");
        Ok(Html(html))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "bump" => {
                self.count += 1;
                Ok(())
            }
            _ => Err(event.unknown()),
        }
    }
}
