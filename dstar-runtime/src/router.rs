//! The route table and the axum router built from it.
//!
//! `dstar::router![Home, Counter]` lists the pages; [`Pages::into_router`] checks the table at
//! start-up (no two pages may claim the same path, and no two patterns may overlap without one
//! being more specific, segment by segment) and returns an `axum::Router` to merge into the
//! app. The same table is what soft navigation matches target URLs against.

use std::fmt;

use axum::Router;
use axum::extract::Request;
use axum::routing::get;

use crate::app::App;
use crate::page::{Page, Route};

/// A page type registered in the table: its route and its handlers.
#[derive(Clone, Copy)]
pub struct Entry {
    /// The page's route.
    pub route: &'static Route,
    pub(crate) register: fn(Router<()>, &App) -> Router<()>,
    pub(crate) live: Option<crate::session::LiveEntry>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

/// The list of pages an app serves.
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct Pages {
    entries: Vec<Entry>,
}

impl Pages {
    /// No pages yet.
    pub fn new() -> Self {
        Pages::default()
    }

    /// Adds page `P`.
    pub fn page<P: Page>(mut self) -> Self {
        self.entries.push(Entry {
            route: &P::ROUTE,
            register: register::<P>,
            live: P::ROUTE.live.then(crate::session::LiveEntry::of::<P>),
        });
        self
    }

    /// The registered pages.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Checks the table and builds the router.
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
        check(&self.entries)?;
        let table: &'static [Entry] = Box::leak(self.entries.into_boxed_slice());
        let mut router = Router::new();
        for entry in table {
            router = (entry.register)(router, &app);
        }
        if table.iter().any(|entry| entry.route.live) {
            router = crate::session::register(router, &app, table);
        }
        Ok(Router::new().merge(router).with_state(()))
    }
}

fn register<P: Page>(router: Router<()>, app: &App) -> Router<()> {
    let on_get = app.clone();
    let on_post = app.clone();
    router.route(
        P::ROUTE.path,
        get(move |req: Request| crate::stateless::get::<P>(on_get.clone(), req))
            .post(move |req: Request| crate::stateless::event::<P>(on_post.clone(), req)),
    )
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    Literal(&'a str),
    Param(&'a str),
    Rest(&'a str),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    path.trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_prefix('*') {
                    Some(rest) => Segment::Rest(rest),
                    None => Segment::Param(name),
                },
                None => Segment::Literal(s),
            },
        )
        .collect()
}

fn check(entries: &[Entry]) -> Result<(), RouteError> {
    for (i, a) in entries.iter().enumerate() {
        for b in &entries[..i] {
            let clash = if same_shape(a.route.path, b.route.path) {
                Some("both serve")
            } else if ambiguous(a.route.path, b.route.path) {
                Some("overlap: some paths match both")
            } else {
                None
            };
            if let Some(what) = clash {
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

fn same_shape(a: &str, b: &str) -> bool {
    let (a, b) = (segments(a), segments(b));
    a.len() == b.len()
        && a.iter().zip(&b).all(|pair| match pair {
            (Segment::Literal(x), Segment::Literal(y)) => x == y,
            (Segment::Param(_), Segment::Param(_)) | (Segment::Rest(_), Segment::Rest(_)) => true,
            _ => false,
        })
}

/// Two patterns are ambiguous when a path matches both and neither is at least as specific as
/// the other at every segment (a literal beats a parameter, which beats a catch-all).
fn ambiguous(a: &str, b: &str) -> bool {
    let (a, b) = (segments(a), segments(b));
    let rank = |s: &Segment<'_>| match s {
        Segment::Literal(_) => 2,
        Segment::Param(_) => 1,
        Segment::Rest(_) => 0,
    };
    let mut a_wins = false;
    let mut b_wins = false;
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (None, None) => break,
            (Some(Segment::Rest(_)), _) | (_, Some(Segment::Rest(_))) => {
                let (x, y) = (a.get(i), b.get(i));
                match (x, y) {
                    (Some(Segment::Rest(_)), Some(Segment::Rest(_))) => {}
                    (Some(Segment::Rest(_)), _) => b_wins = true,
                    _ => a_wins = true,
                }
                break;
            }
            (Some(_), None) | (None, Some(_)) => return false,
            (Some(x), Some(y)) => {
                if let (Segment::Literal(p), Segment::Literal(q)) = (x, y)
                    && p != q
                {
                    return false;
                }
                match rank(x).cmp(&rank(y)) {
                    std::cmp::Ordering::Greater => a_wins = true,
                    std::cmp::Ordering::Less => b_wins = true,
                    std::cmp::Ordering::Equal => {}
                }
            }
        }
        i += 1;
    }
    a_wins && b_wins
}

/// Matches a request path against a route pattern, returning the decoded parameters.
pub fn match_path<'r>(pattern: &'r str, path: &str) -> Option<Vec<(&'r str, String)>> {
    let mut params = Vec::new();
    let mut parts = path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty());
    for segment in segments(pattern) {
        match segment {
            Segment::Literal(literal) => {
                if parts.next()? != literal {
                    return None;
                }
            }
            Segment::Param(name) => params.push((name, decode(parts.next()?))),
            Segment::Rest(name) => {
                let rest: Vec<&str> = parts.by_ref().collect();
                params.push((name, decode(&rest.join("/"))));
            }
        }
    }
    if parts.next().is_some() {
        return None;
    }
    Some(params)
}

/// Finds the page serving `path` in `table`, preferring the most specific pattern.
pub fn lookup<'t>(
    table: &'t [Entry],
    path: &str,
) -> Option<(&'t Entry, Vec<(&'static str, String)>)> {
    table
        .iter()
        .filter_map(|entry| match_path(entry.route.path, path).map(|params| (entry, params)))
        .max_by_key(|(entry, _)| specificity(entry.route.path))
}

fn specificity(pattern: &str) -> Vec<u8> {
    segments(pattern)
        .iter()
        .map(|s| match s {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Rest(_) => 0,
        })
        .collect()
}

fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        assert_eq!(
            match_path("/users/{id}", "/users/4%202"),
            Some(vec![("id", "4 2".to_owned())])
        );
        assert_eq!(match_path("/users/{id}", "/users"), None);
        assert_eq!(match_path("/", "/"), Some(vec![]));
        assert_eq!(
            match_path("/files/{*path}", "/files/a/b"),
            Some(vec![("path", "a/b".to_owned())])
        );
    }

    #[test]
    fn clashes() {
        assert!(same_shape("/users/{id}", "/users/{name}"));
        assert!(!same_shape("/users/{id}", "/users/new"));
        assert!(!ambiguous("/users/{id}", "/users/new"));
        assert!(ambiguous("/a/{x}", "/{y}/b"));
        assert!(!ambiguous("/a/{x}", "/b/{y}"));
        assert!(!ambiguous("/files/{*p}", "/files/{id}"));
    }
}
