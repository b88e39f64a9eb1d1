//! The CSS selectors the test client understands, and matching them against a [`Tree`].

use super::html::{Element, Tree};

/// A parsed selector: a list of alternatives (`a, b`), each a chain of compounds joined by
/// descendant (` `) or child (`>`) combinators.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    alternatives: Vec<Vec<(Combinator, Compound)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combinator {
    Descendant,
    Child,
}

/// `tag#id.class[attr=value]`: every part optional, at least one present.
#[derive(Debug, Clone, Default)]
struct Compound {
    tag: Option<String>,
    id: Option<String>,
    classes: Vec<String>,
    attrs: Vec<(String, Option<String>)>,
}

impl Compound {
    fn matches(&self, element: &Element) -> bool {
        self.tag.as_ref().is_none_or(|tag| *tag == element.name)
            && self
                .id
                .as_ref()
                .is_none_or(|id| element.attr("id") == Some(id))
            && self.classes.iter().all(|class| element.has_class(class))
            && self.attrs.iter().all(|(name, value)| match value {
                None => element.attr(name).is_some(),
                Some(value) => element.attr(name) == Some(value),
            })
    }

    fn is_empty(&self) -> bool {
        self.tag.is_none() && self.id.is_none() && self.classes.is_empty() && self.attrs.is_empty()
    }
}

/// What selectors the test client understands, for error messages.
pub(crate) const SUPPORTED_SELECTORS: &str = "`#id`, `tag`, `*`, `.class`, `[attr]`, `[attr=\"value\"]`, \
     combinations like `li.done`, descendant (`ul li`) and child (`ul > li`) combinators, and lists (`a, b`)";

impl Selector {
    pub(crate) fn parse(source: &str) -> Result<Selector, String> {
        let mut alternatives = Vec::new();
        for alternative in source.split(',') {
            alternatives.push(parse_complex(alternative)?);
        }
        Ok(Selector { alternatives })
    }
}

fn parse_complex(source: &str) -> Result<Vec<(Combinator, Compound)>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    let mut chain = Vec::new();
    let mut combinator = Combinator::Descendant;
    loop {
        let mut saw_space = false;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
            saw_space = true;
        }
        if i >= chars.len() {
            break;
        }
        if chars[i] == '>' {
            if chain.is_empty() {
                return Err("a selector cannot start with `>`".to_owned());
            }
            combinator = Combinator::Child;
            i += 1;
            continue;
        }
        if !chain.is_empty() && !saw_space && combinator == Combinator::Descendant {
            return Err(format!("unexpected `{}`", chars[i]));
        }
        let mut compound = Compound::default();
        let universal = chars[i] == '*';
        if universal {
            i += 1;
        } else if chars[i].is_ascii_alphabetic() {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            compound.tag = Some(chars[start..i].iter().collect::<String>().to_lowercase());
        }
        loop {
            match chars.get(i) {
                Some('#') => {
                    let (ident, next) = ident(&chars, i + 1)?;
                    compound.id = Some(ident);
                    i = next;
                }
                Some('.') => {
                    let (ident, next) = ident(&chars, i + 1)?;
                    compound.classes.push(ident);
                    i = next;
                }
                Some('[') => {
                    let close = chars[i..]
                        .iter()
                        .position(|c| *c == ']')
                        .map(|at| i + at)
                        .ok_or("an attribute selector is missing its `]`")?;
                    let inside: String = chars[i + 1..close].iter().collect();
                    let (name, value) = match inside.split_once('=') {
                        Some((name, value)) => {
                            if name.ends_with(['~', '|', '^', '$', '*']) {
                                return Err(format!(
                                    "attribute operator `{}=` is not supported",
                                    &name[name.len() - 1..]
                                ));
                            }
                            let value = value.trim();
                            let unquoted = value
                                .strip_prefix('"')
                                .and_then(|v| v.strip_suffix('"'))
                                .or_else(|| {
                                    value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
                                })
                                .unwrap_or(value);
                            (name.trim().to_lowercase(), Some(unquoted.to_owned()))
                        }
                        None => (inside.trim().to_lowercase(), None),
                    };
                    if name.is_empty() {
                        return Err("an attribute selector needs a name".to_owned());
                    }
                    compound.attrs.push((name, value));
                    i = close + 1;
                }
                Some(':') => return Err("pseudo-classes are not supported".to_owned()),
                Some(c) if c.is_whitespace() || *c == '>' => break,
                Some(c) => return Err(format!("unexpected `{c}`")),
                None => break,
            }
        }
        if compound.is_empty() && !universal {
            return Err("empty selector".to_owned());
        }
        chain.push((combinator, compound));
        combinator = Combinator::Descendant;
    }
    if chain.is_empty() {
        return Err("empty selector".to_owned());
    }
    if combinator == Combinator::Child {
        return Err("a selector cannot end with `>`".to_owned());
    }
    Ok(chain)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '_'
}

fn ident(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut end = start;
    while end < chars.len() && is_ident(chars[end]) {
        end += 1;
    }
    if end == start {
        return Err("expected a name after `#` or `.`".to_owned());
    }
    Ok((chars[start..end].iter().collect(), end))
}

impl Tree {
    /// The indices of the elements matching `selector`, in document order.
    pub(crate) fn select(&self, selector: &Selector) -> Vec<usize> {
        (0..self.elements.len())
            .filter(|&i| selector.alternatives.iter().any(|alt| self.matches(i, alt)))
            .collect()
    }

    fn matches(&self, index: usize, complex: &[(Combinator, Compound)]) -> bool {
        let Some(((_, last), rest)) = complex.split_last() else {
            return false;
        };
        if !last.matches(&self.elements[index]) {
            return false;
        }
        // The combinator stored with a compound joins it to the compound before it.
        let combinator = complex.last().map_or(Combinator::Descendant, |(c, _)| *c);
        self.matches_ancestors(index, rest, combinator)
    }

    fn matches_ancestors(
        &self,
        index: usize,
        rest: &[(Combinator, Compound)],
        combinator: Combinator,
    ) -> bool {
        let Some(((next_combinator, compound), before)) = rest.split_last() else {
            return true;
        };
        let mut parent = self.elements[index].parent;
        while let Some(p) = parent {
            if compound.matches(&self.elements[p])
                && self.matches_ancestors(p, before, *next_combinator)
            {
                return true;
            }
            if combinator == Combinator::Child {
                return false;
            }
            parent = self.elements[p].parent;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outer<'a>(html: &'a str, selector: &str) -> Vec<&'a str> {
        let tree = Tree::parse(html);
        tree.select(&Selector::parse(selector).unwrap())
            .into_iter()
            .map(|i| &html[tree.elements[i].outer.clone()])
            .collect()
    }

    #[test]
    fn finds_element_boundaries() {
        let html = r#"<div id="a" title='x > y'><br><img src=x /><!-- <p id="c"> --><script>if (a < b) { "</div>" }</script><p id="b">one<p>two</div><span id=u>u</span>"#;
        assert_eq!(
            outer(html, "#a"),
            [
                r#"<div id="a" title='x > y'><br><img src=x /><!-- <p id="c"> --><script>if (a < b) { "</div>" }</script><p id="b">one<p>two</div>"#
            ]
        );
        assert_eq!(outer(html, "#b"), [r#"<p id="b">one"#]);
        assert_eq!(outer(html, "p"), [r#"<p id="b">one"#, "<p>two"]);
        assert!(outer(html, "#c").is_empty(), "comments are not markup");
        assert_eq!(outer(html, "span#u"), ["<span id=u>u</span>"]);
        assert_eq!(outer(html, "div > p"), [r#"<p id="b">one"#, "<p>two"]);
        assert_eq!(outer(html, "div br, span"), ["<br>", "<span id=u>u</span>"]);
        assert_eq!(outer(html, "[title=\"x > y\"] > br"), ["<br>"]);
        assert_eq!(outer(html, "*").len(), 7);
    }

    #[test]
    fn unsupported_selectors_say_why() {
        for bad in ["li:first-child", "a + b", "", "> a", "[x~=y]", "#"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}
