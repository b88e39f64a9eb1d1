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
pub(crate) fn clash(a: &str, b: &str) -> Option<&'static str> {
    if same_shape(a, b) {
        Some("both serve")
    } else if ambiguous(a, b) {
        Some("overlap: some paths match both")
    } else {
        None
    }
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

/// Finds the entry of `table` serving `path`, preferring the most specific pattern, with its
/// decoded parameters. `route` says where an entry keeps its route.
pub(crate) fn lookup<'t, T>(
    table: &'t [T],
    route: impl Fn(&T) -> &'static Route,
    path: &str,
) -> Option<(&'t T, Params)> {
    table
        .iter()
        .filter_map(|entry| {
            let pattern = route(entry).path;
            match_path(pattern, path).map(|params| (entry, pattern, params))
        })
        .max_by_key(|(_, pattern, _)| specificity(pattern))
        .map(|(entry, _, params)| (entry, params))
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
