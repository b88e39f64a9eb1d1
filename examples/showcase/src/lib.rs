//! The flagship: four live pages in one session group, `main`. The nav bar's links
//! soft-navigate: the session task swaps the page, and the same SSE stream carries the new
//! body, title and history entry. State the pages keep in app state (the count, the todo list,
//! the chat room) survives navigating away and back.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use dstar::app::AppBuilder;
use dstar::{App, Ctx, Error, Html, Message, Mount, View};
use example_chat::{Chat, ChatRoom};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The home page.
#[derive(Debug)]
pub struct Home;

#[dstar::page(
    "/",
    live,
    group = "main",
    template = "home.html",
    title = "dstar showcase"
)]
impl Home {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Home)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(())
    }
}

/// The shared count behind [`Counter`].
#[derive(Debug, Clone, Default)]
pub struct Count(Arc<AtomicI64>);

/// A live counter; the count is app state.
#[derive(Debug)]
pub struct Counter {
    count: Count,
}

#[dstar::page(
    "/counter",
    live,
    group = "main",
    template = "counter.html",
    title = "Counter"
)]
impl Counter {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Counter {
            count: mount.state::<Count>()?.clone(),
        })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(json!({ "count": self.count.0.load(Ordering::SeqCst) }))
    }

    #[event]
    async fn increment(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
        self.count.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    #[event]
    async fn decrement(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
        self.count.0.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

/// One todo.
#[derive(Debug, Clone, Serialize)]
pub struct Todo {
    /// Its id.
    pub id: u64,
    /// What to do.
    pub title: String,
    /// Whether it is done.
    pub done: bool,
}

/// The shared todo list behind [`Todos`].
#[derive(Debug, Clone, Default)]
pub struct TodoList(Arc<Mutex<(u64, Vec<Todo>)>>);

impl TodoList {
    fn with<R>(&self, f: impl FnOnce(&mut u64, &mut Vec<Todo>) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (next, todos) = &mut *guard;
        f(next, todos)
    }
}

const TODOS: &str = "todos";

/// Which todos are shown; it lives in the URL query (`?filter=done`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    /// Every todo.
    #[default]
    All,
    /// Todos not done.
    Active,
    /// Todos done.
    Done,
}

/// The `add` event's signals.
#[derive(Debug, Deserialize)]
pub struct NewTodo {
    /// The new todo's title.
    pub title: String,
}

/// Signals naming one todo.
#[derive(Debug, Deserialize)]
pub struct TodoId {
    /// The todo's id.
    pub id: u64,
}

/// Signals choosing a filter.
#[derive(Debug, Deserialize)]
pub struct ChooseFilter {
    /// The filter.
    pub filter: Filter,
}

#[derive(Debug, Deserialize)]
struct TodoQuery {
    #[serde(default)]
    filter: Filter,
}

/// A todo list shared by every tab; the filter is per tab and kept in the URL.
#[derive(Debug)]
pub struct Todos {
    list: TodoList,
    filter: Filter,
}

#[dstar::page(
    "/todos",
    live,
    group = "main",
    template = "todos.html",
    title = "Todos"
)]
impl Todos {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        let query: TodoQuery = mount.query_as()?;
        mount.subscribe(TODOS);
        Ok(Todos {
            list: mount.state::<TodoList>()?.clone(),
            filter: query.filter,
        })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        let (todos, left) = self.list.with(|_, todos| {
            let shown: Vec<Todo> = todos
                .iter()
                .filter(|t| match self.filter {
                    Filter::All => true,
                    Filter::Active => !t.done,
                    Filter::Done => t.done,
                })
                .cloned()
                .collect();
            (shown, todos.iter().filter(|t| !t.done).count())
        });
        view.render(json!({ "todos": todos, "left": left, "filter": self.filter }))
    }

    #[event]
    async fn add(&mut self, cx: &mut Ctx<'_>, todo: NewTodo) -> dstar::Result<()> {
        let title = todo.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(Error::unprocessable(
                "a todo needs a title of 1 to 200 characters",
            ));
        }
        self.list.with(|next, todos| {
            *next += 1;
            todos.push(Todo {
                id: *next,
                title: title.to_owned(),
                done: false,
            });
        });
        cx.publish_others(TODOS, ());
        cx.patch_signals(&json!({ "title": "" }))
    }

    #[event]
    async fn toggle(&mut self, cx: &mut Ctx<'_>, todo: TodoId) -> dstar::Result<()> {
        let found = self.list.with(|_, todos| {
            todos
                .iter_mut()
                .find(|t| t.id == todo.id)
                .map(|t| t.done = !t.done)
                .is_some()
        });
        if !found {
            return Err(Error::not_found(format!("no todo {}", todo.id)));
        }
        cx.publish_others(TODOS, ());
        Ok(())
    }

    #[event]
    async fn delete(&mut self, cx: &mut Ctx<'_>, todo: TodoId) -> dstar::Result<()> {
        self.list.with(|_, todos| todos.retain(|t| t.id != todo.id));
        cx.publish_others(TODOS, ());
        Ok(())
    }

    #[event]
    async fn filter(&mut self, cx: &mut Ctx<'_>, choice: ChooseFilter) -> dstar::Result<()> {
        self.filter = choice.filter;
        let query = match choice.filter {
            Filter::All => String::new(),
            Filter::Active => "filter=active".to_owned(),
            Filter::Done => "filter=done".to_owned(),
        };
        cx.push_query(&query);
        Ok(())
    }

    async fn info(&mut self, _cx: &mut Ctx<'_>, _message: Message) -> dstar::Result<()> {
        // Another tab changed the list: the default re-render shows it.
        Ok(())
    }
}

/// The showcase app; `builder` carries settings such as where the Datastar client is served.
pub fn app(builder: AppBuilder) -> App {
    builder
        .templates(dstar::templates!("templates").and(example_chat::templates()))
        .layout("layout.html")
        .state(Count::default())
        .state(TodoList::default())
        .state(ChatRoom::default())
        .build()
        .expect("the showcase's configuration is complete")
}

/// The showcase's routes.
pub fn router(app: &App) -> axum::Router {
    dstar::router![Home, Counter, Todos, Chat].into_router(app.clone())
}
