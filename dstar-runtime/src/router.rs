//! The route table and the axum router built from it: the one place that knows every page and
//! every `/__dstar/*` endpoint.
//!
//! `dstar::router![Home, Counter]` expands to a `static` table of [`Entry`] values, one per
//! page, each made at compile time by [`Entry::of`]: the page's route constant and the function
//! that registers its handlers, picked once for the kind of page (stateless or live), so no
//! request re-checks which kind it hit. [`Pages::into_router`] checks the table at start-up (no
//! two pages may claim the same path, and no two patterns may overlap without one being more
//! specific, segment by segment), registers each page, and, when the table has live pages, the
//! stream, event and navigation endpoints. The same table is what soft navigation matches
//! target URLs against.

use std::fmt;

use axum::Router;

use crate::app::App;
use crate::page::Page;
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

/// The pages an app serves: a table made at compile time by `dstar::router![...]`.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct Pages {
    table: &'static [Entry],
}

impl Pages {
    /// The pages of `table`.
    pub const fn new(table: &'static [Entry]) -> Self {
        Pages { table }
    }

    /// The registered pages.
    pub fn entries(&self) -> &'static [Entry] {
        self.table
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
    /// # Panics
    ///
    /// When two pages claim the same or overlapping paths; the message names both pages and
    /// where they were declared. Use [`try_into_router`](Self::try_into_router) to handle it.
    pub fn into_router<S: Clone + Send + Sync + 'static>(self, app: App) -> Router<S> {
        self.try_into_router(app)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Checks the table and builds the router, or says which routes clash.
    pub fn try_into_router<S: Clone + Send + Sync + 'static>(
        self,
        app: App,
    ) -> Result<Router<S>, RouteError> {
        check(self.table)?;
        let mut router = Router::new();
        for entry in self.table {
            router = (entry.register)(router, &app);
        }
        if self.table.iter().any(|entry| entry.live.is_some()) {
            let table = self.table;
            router = crate::session::endpoints::register_endpoints(router, &app, move |path| {
                live_target(table, path)
            });
            router = crate::nav::register(router, &app, move |path| live_target(table, path));
        }
        Ok(Router::new().merge(router).with_state(()))
    }
}

/// The live page serving `path`, for soft navigation.
fn live_target(table: &'static [Entry], path: &str) -> Option<LiveTarget> {
    let (entry, params) = crate::route::lookup(table, |entry| entry.route, path)?;
    Some(LiveTarget {
        route: entry.route,
        live: entry.live?,
        params,
    })
}

/// Two pages claim paths that clash.
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

fn check(entries: &[Entry]) -> Result<(), RouteError> {
    for (i, a) in entries.iter().enumerate() {
        for b in &entries[..i] {
            if let Some(what) = crate::route::clash(a.route.path, b.route.path) {
                return Err(RouteError {
                    message: format!(
                        "dstar: routes {what} `{}` and `{}`\n  --> {}:{} (`{}`)\n  --> {}:{} (`{}`)",
                        b.route.path,
                        a.route.path,
                        b.route.file,
                        b.route.line,
                        b.route.name,
                        a.route.file,
                        a.route.line,
                        a.route.name,
                    ),
                });
            }
        }
    }
    Ok(())
}
