//! Routes: where a page is served ([`Route`], the constant `#[dstar::page]` writes) and the
//! path patterns routes use (`/users/{id}`, `/files/{*rest}`): matching a request path,
//! finding the most specific route for a path, and telling when two patterns clash.
//!
//! Everything here is data and pure functions, so the router that registers pages and the
//! transports that look a path up at request time (soft navigation) share one implementation.

/// Decoded path parameters of a request: `(name, value)` pairs in pattern order.
pub(crate) type Params = Vec<(&'static str, String)>;

/// A page's compile-time route entry, written by `#[dstar::page]`.
///
/// Built with [`Route::new`] and its `const` setters, never a struct literal, so fields can be
/// added without breaking pages: `#[non_exhaustive]` holds everyone outside the runtime to that.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Route {
    /// The page type's name.
    pub name: &'static str,
    /// The path pattern, with `{param}` segments and an optional final `{*rest}`.
    pub path: &'static str,
    /// Whether the page is live (a session task per tab) or stateless.
    pub live: bool,
    /// Whether a live page's stream stays open while its tab is hidden (by default it pauses,
    /// giving the browser's connection back; see the session module's docs).
    pub background: bool,
    /// Whether a live page's session keeps the signals of its last event, for `info` and
    /// `connected` to read (`Ctx::last_signals`).
    pub keep_signals: bool,
    /// The session group: live pages of one group soft-navigate within one session.
    pub group: &'static str,
    /// The template `View::render` uses, if the page names one.
    pub template: Option<&'static str>,
    /// The layout wrapping the page, if it overrides the app's.
    pub layout: Option<&'static str>,
    /// The document title, if the page sets a fixed one.
    pub title: Option<&'static str>,
    /// The names of the page's events.
    pub events: &'static [&'static str],
    /// Where the page was declared.
    pub file: &'static str,
    /// The line of the declaration.
    pub line: u32,
}

impl Route {
    /// A stateless route with no events, template, layout or title, in the default group:
    /// the start of a hand-written `Page` impl's `ROUTE`
    /// (`Route::new("Home", "/", file!(), line!()).live().events(&["save"])`).
    pub const fn new(
        name: &'static str,
        path: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        Route {
            name,
            path,
            live: false,
            background: false,
            keep_signals: false,
            group: "default",
            template: None,
            layout: None,
            title: None,
            events: &[],
            file,
            line,
        }
    }

    /// Makes the page live.
    pub const fn live(mut self) -> Self {
        self.live = true;
        self
    }

    /// Keeps a live page's stream open while its tab is hidden (a chat that updates the tab's
    /// title). Such a tab keeps one of the browser's connections to the site.
    pub const fn background(mut self) -> Self {
        self.background = true;
        self
    }

    /// Makes a live page's session keep a copy of the signals its last event carried,
    /// readable in `info`, `connected` and handlers through `Ctx::last_signals` (it costs the
    /// size of those signals per session).
    pub const fn keep_signals(mut self) -> Self {
        self.keep_signals = true;
        self
    }

    /// Puts a live page in a session group.
    pub const fn group(mut self, group: &'static str) -> Self {
        self.group = group;
        self
    }

    /// Names the page's events.
    pub const fn events(mut self, events: &'static [&'static str]) -> Self {
        self.events = events;
        self
    }

    /// Sets the page's template.
    pub const fn template(mut self, template: &'static str) -> Self {
        self.template = Some(template);
        self
    }

    /// Sets the page's layout.
    pub const fn layout(mut self, layout: &'static str) -> Self {
        self.layout = Some(layout);
        self
    }

    /// Sets the page's fixed title.
    pub const fn title(mut self, title: &'static str) -> Self {
        self.title = Some(title);
        self
    }
}

impl Route {
    /// The path parameters of a request to this route (none, without matching, for a path with
    /// no `{param}`).
    pub(crate) fn params(&'static self, path: &str) -> Params {
        if self.path.contains('{') {
            match_path(self.path, path).unwrap_or_default()
        } else {
            Vec::new()
        }
    }
}

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

/// Why two path patterns cannot both be served, if they cannot: the same shape, or an overlap
/// where neither pattern is the more specific.
///
/// The rule is matchit's (axum's router): segment by segment a literal beats a `{param}`, which
/// beats a `{*catch_all}`, so `/items/new` and `/items/{id}` live side by side (`/items/new`
/// serves that one path) while `/a/{x}` and `/{y}/b` are refused: `/a/b` matches both and
/// neither wins everywhere.
///
/// `const`, so that `dstar::router!` compares the pages of one table at compile time with the
/// same rule the start-up check uses.
pub const fn clash(a: &str, b: &str) -> Option<&'static str> {
    if same_shape(a, b) {
        Some("both serve")
    } else if ambiguous(a, b) {
        Some("overlap: some paths match both")
    } else {
        None
    }
}

/// What a segment is, for comparing patterns: a literal (2) beats a parameter (1), which beats
/// a catch-all (0).
#[derive(Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    rank: u8,
}

const LITERAL: u8 = 2;
const PARAM: u8 = 1;
const REST: u8 = 0;

/// The first non-empty segment of `path` at or after byte `from` (what [`segments`] yields,
/// without allocating, so it can run in `const`).
const fn next_segment(path: &[u8], mut from: usize) -> Option<Piece> {
    while from < path.len() && path[from] == b'/' {
        from += 1;
    }
    if from == path.len() {
        return None;
    }
    let start = from;
    while from < path.len() && path[from] != b'/' {
        from += 1;
    }
    let rank = if from - start >= 2 && path[start] == b'{' && path[from - 1] == b'}' {
        if path[start + 1] == b'*' { REST } else { PARAM }
    } else {
        LITERAL
    };
    Some(Piece {
        start,
        end: from,
        rank,
    })
}

const fn same_literal(a: &[u8], x: Piece, b: &[u8], y: Piece) -> bool {
    if x.end - x.start != y.end - y.start {
        return false;
    }
    let mut i = 0;
    while i < x.end - x.start {
        if a[x.start + i] != b[y.start + i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn same_shape(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut from_a, mut from_b) = (0, 0);
    loop {
        match (next_segment(a, from_a), next_segment(b, from_b)) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x.rank != y.rank || (x.rank == LITERAL && !same_literal(a, x, b, y)) {
                    return false;
                }
                from_a = x.end;
                from_b = y.end;
            }
            _ => return false,
        }
    }
}

/// Two patterns are ambiguous when a path matches both and neither is at least as specific as
/// the other at every segment.
const fn ambiguous(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut from_a, mut from_b) = (0, 0);
    let (mut a_wins, mut b_wins) = (false, false);
    loop {
        let (x, y) = (next_segment(a, from_a), next_segment(b, from_b));
        let x_rest = matches!(x, Some(Piece { rank: REST, .. }));
        let y_rest = matches!(y, Some(Piece { rank: REST, .. }));
        if x_rest || y_rest {
            // A catch-all matches whatever is left, so the comparison ends here.
            if x_rest && !y_rest {
                b_wins = true;
            } else if y_rest && !x_rest {
                a_wins = true;
            }
            break;
        }
        match (x, y) {
            (None, None) => break,
            (Some(x), Some(y)) => {
                if x.rank == LITERAL && y.rank == LITERAL && !same_literal(a, x, b, y) {
                    return false;
                }
                if x.rank > y.rank {
                    a_wins = true;
                } else if x.rank < y.rank {
                    b_wins = true;
                }
                from_a = x.end;
                from_b = y.end;
            }
            _ => return false,
        }
    }
    a_wins && b_wins
}

/// Matches a request path against a route pattern, returning the decoded parameters.
pub(crate) fn match_path<'r>(pattern: &'r str, path: &str) -> Option<Vec<(&'r str, String)>> {
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
                // As in axum's router, a catch-all takes at least one segment: `/items` is the
                // page at `/items`, never `/items/{*rest}` with nothing in `rest`.
                let rest: Vec<&str> = parts.by_ref().collect();
                if rest.is_empty() {
                    return None;
                }
                params.push((name, decode(&rest.join("/"))));
            }
        }
    }
    if parts.next().is_some() {
        return None;
    }
    Some(params)
}

/// Finds the entry of `table` serving `path`, preferring the most specific pattern, with its
/// decoded parameters. `route` says where an entry keeps its route.
pub(crate) fn lookup<'t, T>(
    table: &'t [T],
    route: impl Fn(&T) -> &'static Route,
    path: &str,
) -> Option<(&'t T, Params)> {
    let (index, params) = best_match(table.iter().map(|entry| route(entry).path), path)?;
    Some((&table[index], params))
}

/// The index of the pattern serving `path` (the most specific of those that match it), with
/// its decoded parameters.
pub(crate) fn best_match<'r>(
    patterns: impl Iterator<Item = &'r str>,
    path: &str,
) -> Option<(usize, Vec<(&'r str, String)>)> {
    patterns
        .enumerate()
        .filter_map(|(index, pattern)| {
            match_path(pattern, path).map(|params| (index, pattern, params))
        })
        .max_by_key(|(_, pattern, _)| specificity(pattern))
        .map(|(index, _, params)| (index, params))
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
        // Nothing for the catch-all: axum routes `/files` to a page at `/files` (or nowhere),
        // so soft navigation and re-mounting must not pick `/files/{*path}` for it.
        assert_eq!(match_path("/files/{*path}", "/files"), None);
        assert_eq!(match_path("/files/{*path}", "/files/"), None);
        assert_eq!(match_path("/{*path}", "/"), None);
    }

    #[test]
    fn lookup_picks_the_page_axum_routes_to() {
        static ITEMS: Route = Route::new("Items", "/items", file!(), line!());
        static REST: Route = Route::new("Rest", "/items/{*rest}", file!(), line!());
        static ONE: Route = Route::new("One", "/items/{id}", file!(), line!());
        let table = [&ITEMS, &REST, &ONE];
        let name = |path| lookup(&table, |route| *route, path).map(|(route, _)| route.name);
        assert_eq!(name("/items"), Some("Items"));
        assert_eq!(name("/items/3"), Some("One"));
        assert_eq!(name("/items/3/4"), Some("Rest"));
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

    #[test]
    fn static_segments_win() {
        assert_eq!(clash("/items/{id}", "/items/new"), None);
        assert_eq!(clash("/items/new", "/items/{id}"), None);
        assert_eq!(clash("/items/{id}", "/items//{n}/"), Some("both serve"));
        assert_eq!(clash("/items", "/items/{*rest}"), None);
        assert_eq!(clash("/{*a}", "/{*b}"), Some("both serve"));
        assert_eq!(
            clash("/repos/{owner}/settings", "/repos/acme/{repo}"),
            Some("overlap: some paths match both")
        );
        assert_eq!(clash("/a/b", "/a/c"), None);
        assert_eq!(clash("/a/{x}", "/a/{x}/b"), None);
    }

    // The rule runs in `const`, where `dstar::router!` uses it.
    const _: () = assert!(clash("/users/{id}", "/users/{name}").is_some());
    const _: () = assert!(clash("/users/{id}", "/users/new").is_none());
}
