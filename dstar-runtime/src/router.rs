//! The route table and the axum router built from it: the one place that knows every page and
//! every `/__dstar/*` endpoint.
//!
//! `dstar::router![Home, Counter]` expands to a `static` table of [`Entry`] values, one per
//! page, each made at compile time by [`Entry::of`]: the page's route constant and the function
//! that registers its handlers, picked once for the kind of page (stateless or live), so no
//! request re-checks which kind it hit. [`Pages::into_router`] checks the table at start-up (no
//! two pages may claim the same path, and no two patterns may overlap without one being more
//! specific, segment by segment; every template a page names exists and sends only events the
//! page has), registers each page, and, when the table has live pages, the
//! stream, event and navigation endpoints. The same table is what soft navigation matches
//! target URLs against.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use http::{Method, StatusCode, Uri};

use crate::app::App;
use crate::page::Page;
use crate::protocol::{EVENT_PATH, NAV_PATH, STREAM_PATH};
use crate::route::Route;
use crate::session::page::{LiveEntry, LiveTarget};

/// A page in the table: its route, how its handlers are registered, and, for a live page, its
/// type-erased entry points (soft navigation mounts it inside a running session).
#[derive(Clone, Copy)]
pub struct Entry {
    /// The page's route.
    pub route: &'static Route,
    register: fn(Router<()>, &App) -> Router<()>,
    live: Option<LiveEntry>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// The entry of page `P`, made at compile time (`static PAGES: &[Entry] =
    /// &[Entry::of::<Home>()]` is what `dstar::router!` writes).
    pub const fn of<P: Page>() -> Self {
        if P::ROUTE.live {
            Entry {
                route: &P::ROUTE,
                register: crate::session::endpoints::register_page::<P>,
                live: Some(LiveEntry::of::<P>()),
            }
        } else {
            Entry {
                route: &P::ROUTE,
                register: crate::stateless::register::<P>,
                live: None,
            }
        }
    }
}

/// The pages an app serves: a table made at compile time by `dstar::router![...]`, or several
/// joined with [`and`](Self::and).
#[derive(Debug, Clone)]
#[must_use]
pub struct Pages {
    /// Borrowed from the `static` a `router!` wrote; owned once tables are joined.
    table: Cow<'static, [Entry]>,
}

impl Pages {
    /// The pages of `table`.
    pub const fn new(table: &'static [Entry]) -> Self {
        Pages {
            table: Cow::Borrowed(table),
        }
    }

    /// The registered pages.
    pub fn entries(&self) -> &[Entry] {
        &self.table
    }

    /// These pages and `other`'s, in one table: for an app whose pages are listed in several
    /// places (`admin::pages().and(shop::pages())`). `dstar::router!` compares the paths of
    /// its own pages at compile time; pages of different tables are compared at start-up, by
    /// [`into_router`](Self::into_router), which names both when they clash.
    pub fn and(self, other: Pages) -> Pages {
        let mut table = self.table.into_owned();
        table.extend_from_slice(&other.table);
        Pages {
            table: Cow::Owned(table),
        }
    }

    /// Checks the table and builds the router.
    ///
    /// # The app's own routes
    ///
    /// A page claims only the methods it answers on its path: `GET` (and `HEAD`), plus `POST`
    /// for a stateless page that has events. A live page takes its events at `/__dstar/event`,
    /// never on its own path. So an app adds its own handler for any other method beside a
    /// page, on the returned router or merged from another one (axum joins method routers of
    /// the same path when their methods differ):
    ///
    /// ```ignore
    /// let router = dstar::router![Login, Dashboard]
    ///     .into_router(app)
    ///     .route("/login", axum::routing::post(sign_in))
    ///     .merge(api_routes);
    /// ```
    ///
    /// A method the page already answers cannot be routed twice: axum panics with its
    /// "overlapping method route" message (a stateless page with events owns `POST`).
    ///
    /// # Start-up checks
    ///
    /// Before any request, the table is checked, and every problem is reported at once, each
    /// naming the page and the `file:line` it was declared at:
    ///
    /// - two pages claim the same or overlapping paths (within one `dstar::router!` this is
    ///   already a compile error; tables joined with [`and`](Self::and) or put together by
    ///   hand are checked here);
    /// - a page's `template` or `layout` is not among the app's templates;
    /// - a page's template calls `event('name')` for an event the page does not handle. Only
    ///   calls with a literal name in the page's own template are checked (not included or
    ///   extended templates, which may serve several pages, and not `event(name)` with a
    ///   computed name), so the check never refuses a template that could be right.
    ///
    /// # Panics
    ///
    /// On any of those problems, with the message [`try_into_router`](Self::try_into_router)
    /// returns. Panicking keeps start-up a one-liner, as axum's own `Router::route` does for a
    /// route registered twice: these are programming mistakes, not conditions to recover from.
    pub fn into_router<S: Clone + Send + Sync + 'static>(self, app: App) -> Router<S> {
        self.try_into_router(app)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Checks the table and builds the router, or says what is wrong (see
    /// "Start-up checks" in [`into_router`](Self::into_router)), for an app that reports start-up
    /// errors its own way.
    pub fn try_into_router<S: Clone + Send + Sync + 'static>(
        self,
        app: App,
    ) -> Result<Router<S>, RouteError> {
        check(&self.table, &app)?;
        app.templates()
            .add_routes(self.table.iter().map(|entry| entry.route));
        let mut router = Router::new();
        for entry in self.table.iter() {
            router = (entry.register)(router, &app);
        }
        if self.table.iter().any(|entry| entry.live.is_some()) {
            let table: Arc<[Entry]> = self.table.into();
            let remount = Arc::clone(&table);
            router = crate::session::endpoints::register_endpoints(router, &app, move |path| {
                live_target(&remount, path)
            });
            router = crate::nav::register(router, &app, move |path| live_target(&table, path));
            for path in [STREAM_PATH, EVENT_PATH, NAV_PATH] {
                router = router.route(path, MethodRouter::new().fallback(wrong_method));
            }
        }
        router = crate::dev::register(router, &app);
        Ok(Router::new().merge(router).with_state(()))
    }
}

/// The answer to a method other than `POST` on one of dstar's own endpoints (axum's own is an
/// empty 405): it names the method and the path. axum adds the `Allow` header.
async fn wrong_method(method: Method, uri: Uri) -> Response {
    let message = format!(
        "`{method}` is not allowed on `{}`: it takes `POST`",
        uri.path()
    );
    let mut response = (StatusCode::METHOD_NOT_ALLOWED, message).into_response();
    crate::security::no_store(response.headers_mut());
    response
}

/// The live page serving `path`, for soft navigation.
fn live_target(table: &[Entry], path: &str) -> Option<LiveTarget> {
    let (entry, params) = crate::route::lookup(table, |entry| entry.route, path)?;
    Some(LiveTarget {
        route: entry.route,
        live: entry.live?,
        params,
    })
}

/// What the start-up check found wrong with a route table: clashing paths, a missing template
/// or layout, a template calling an event its page does not have. The message lists every
/// problem, one after the other, each with the page's `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    message: String,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RouteError {}

/// The compile-time route check `dstar::router!` runs in a `const`: the first two routes of its
/// table that clash (by [`route::clash`](crate::route::clash), the rule the start-up check
/// uses), as a message naming both pages, their paths and where they were declared. The macro
/// panics with it, which makes it a compile error at the `router!` call. Not public API.
#[doc(hidden)]
pub const fn first_clash(routes: &[&Route]) -> Option<ClashMessage> {
    let mut i = 0;
    while i < routes.len() {
        let mut j = 0;
        while j < i {
            let (a, b) = (routes[j], routes[i]);
            if let Some(what) = crate::route::clash(a.path, b.path) {
                let mut message = ClashMessage::new();
                message.push("dstar::router!: routes ");
                message.push(what);
                message.push(" `");
                message.push(a.path);
                message.push("` and `");
                message.push(b.path);
                message.push("`; give one of them its own path");
                message.push_location(a);
                message.push_location(b);
                return Some(message);
            }
            j += 1;
        }
        i += 1;
    }
    None
}

/// A message built in `const`, where there is no `format!`: whole strings are appended while
/// they fit, so the text stays valid UTF-8. Not public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct ClashMessage {
    bytes: [u8; 1024],
    len: usize,
}

impl ClashMessage {
    const fn new() -> Self {
        ClashMessage {
            bytes: [0; 1024],
            len: 0,
        }
    }

    const fn push(&mut self, text: &str) {
        let text = text.as_bytes();
        if self.len + text.len() > self.bytes.len() {
            return;
        }
        let mut i = 0;
        while i < text.len() {
            self.bytes[self.len + i] = text[i];
            i += 1;
        }
        self.len += text.len();
    }

    /// `\n  --> file:line (`Name`)`, as the start-up check writes it.
    const fn push_location(&mut self, route: &Route) {
        self.push("\n  --> ");
        self.push(route.file);
        self.push(":");
        self.push_number(route.line);
        self.push(" (`");
        self.push(route.name);
        self.push("`)");
    }

    const fn push_number(&mut self, mut number: u32) {
        let mut digits = [0u8; 10];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (number % 10) as u8;
            number /= 10;
            if number == 0 {
                break;
            }
        }
        match std::str::from_utf8(digits.split_at(start).1) {
            Ok(digits) => self.push(digits),
            Err(_) => unreachable!(),
        }
    }

    /// The message.
    pub const fn as_str(&self) -> &str {
        match std::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(text) => text,
            Err(_) => "dstar::router!: two routes clash",
        }
    }
}

/// Everything wrong with the table, found before any request: clashing paths, then the
/// templates (see [`templates`]). All problems are reported together.
fn check(entries: &[Entry], app: &App) -> Result<(), RouteError> {
    let mut problems = Vec::new();
    for (i, a) in entries.iter().enumerate() {
        for b in &entries[..i] {
            if let Some(what) = crate::route::clash(a.route.path, b.route.path) {
                problems.push(format!(
                    "dstar: routes {what} `{}` and `{}`\n{}\n{}",
                    b.route.path,
                    a.route.path,
                    location(b.route),
                    location(a.route),
                ));
            }
        }
    }
    templates(entries, app, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RouteError {
            message: problems.join("\n"),
        })
    }
}

/// `  --> file:line (`Name`)`, where a page was declared.
fn location(route: &Route) -> String {
    format!("  --> {}:{} (`{}`)", route.file, route.line, route.name)
}

/// The templates pages name: a page's `template` and `layout` must exist among the app's
/// templates, and every `event('name')` its template sends by a literal name must be one of the
/// page's events ([`event_calls`](crate::template::event_calls) says which calls count). A
/// template that does not parse is left to the render, whose error names the template's line.
fn templates(entries: &[Entry], app: &App, problems: &mut Vec<String>) {
    let env = app.templates().env();
    for route in entries.iter().map(|entry| entry.route) {
        for (what, name) in [("template", route.template), ("layout", route.layout)] {
            let Some(name) = name else { continue };
            let template = match env.get_template(name) {
                Ok(template) => template,
                Err(err) if err.kind() == minijinja::ErrorKind::TemplateNotFound => {
                    problems.push(format!(
                        "dstar: page `{}` names {what} `{name}`, which is not among the app's \
                         templates\n{}",
                        route.name,
                        location(route),
                    ));
                    continue;
                }
                Err(_) => continue,
            };
            if what != "template" {
                continue;
            }
            for (event, line) in crate::template::event_calls(template.source()) {
                if route.events.contains(&event) {
                    continue;
                }
                let known = if route.events.is_empty() {
                    "it has no events".to_owned()
                } else {
                    let names: Vec<String> =
                        route.events.iter().map(|e| format!("`{e}`")).collect();
                    format!("its events: {}", names.join(", "))
                };
                problems.push(format!(
                    "dstar: template `{name}` line {line} calls `event('{event}')`, but page `{}` \
                     has no event `{event}` ({known}); add a handler for it or fix the call\n{}",
                    route.name,
                    location(route),
                ));
            }
        }
    }
}
