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

/// The markup of [`Todos`] with items `done` after `updates` updates.
pub fn todos_html(done: &[bool], updates: u64) -> String {
    use std::fmt::Write;
    let mut html = String::with_capacity(8 * 1024);
    html.push_str(
        "<section class=\"todos\"><h1>Todos</h1><form id=\"add\" \
         data-on:submit__prevent=\"@post('/todos', {headers: {'x-dstar-event': 'add'}})\">\
         <input id=\"title\" data-bind:title placeholder=\"What needs doing?\">\
         <button id=\"add-button\" type=\"submit\">Add</button></form><ul id=\"todos\">\n",
    );
    let left = done.iter().filter(|done| !**done).count();
    for (id, done) in done.iter().enumerate() {
        let (class, checked) = if *done {
            ("done", " checked")
        } else {
            ("active", "")
        };
        let _ = writeln!(
            html,
            "<li id=\"todo-{id}\" class=\"{class}\"><label><input type=\"checkbox\" \
             id=\"toggle-{id}\"{checked} data-on:change=\"@post('/todos', {{headers: \
             {{'x-dstar-event': 'toggle'}}, args: {{id: {id}}}}})\"> <span class=\"title\">\
             Write the release notes for part {id}</span></label><button id=\"delete-{id}\" \
             data-on:click=\"@post('/todos', {{headers: {{'x-dstar-event': 'delete'}}, \
             args: {{id: {id}}}}})\">&times;</button></li>"
        );
    }
    let _ = write!(
        html,
        "</ul><p id=\"left\">{left} left</p><p id=\"updates\">{} updates</p></section>",
        updates
    );
    html
}

/// How many items [`Todos`] shows.
pub const TODO_ITEMS: u64 = 20;

/// A live todo list like the showcase's: twenty items, each with a checkbox and a delete button
/// wired to events. `toggle` flips one item (round robin) and counts the update, and every
/// update re-renders the whole page (the default), so the stream carries the list again each
/// time: what compression is for.
#[derive(Debug)]
pub struct Todos {
    done: Vec<bool>,
    updates: u64,
}

impl Todos {
    /// The marker that ends the page after `n` updates (`>N updates</p>`).
    pub fn marker(n: u64) -> String {
        format!(">{n} updates</p>")
    }
}

impl Page for Todos {
    const ROUTE: Route = Route::new("Todos", "/todos", file!(), line!())
        .live()
        .events(&["toggle"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Todos {
            done: vec![false; TODO_ITEMS as usize],
            updates: 0,
        })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(todos_html(&self.done, self.updates)))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "toggle" => {
                let at = (self.updates % TODO_ITEMS) as usize;
                self.done[at] = !self.done[at];
                self.updates += 1;
                Ok(())
            }
            _ => Err(event.unknown()),
        }
    }
}
