//! Just enough HTML for the test client: a tokenizer that finds tags, comments and raw text, a
//! tree of element boundaries (byte ranges into the source) and text content. Selectors are in
//! `selector`, element patches in `patch`.
//!
//! This is not an HTML5 parser. It knows void elements, raw-text elements (`script`, `style`,
//! `textarea`, `title`), comments, quoted attributes, `/>` and the common implied end tags
//! (`li`, `p`, table cells, `option`, `dt`/`dd`). Markup a server renders is well-formed in
//! practice, and that is what it is for.

use std::ops::Range;

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// Elements whose content is not markup.
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title"];

/// Start tags that end an open `<p>`.
const CLOSES_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "details",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Start {
        name: String,
        attrs: Vec<(String, String)>,
        self_closing: bool,
        range: Range<usize>,
    },
    End {
        name: String,
        range: Range<usize>,
    },
    /// Text; `raw` for the content of `script` and `style` (not shown as text).
    Text {
        range: Range<usize>,
        raw: bool,
    },
    Comment,
}

/// Splits `html` into tokens.
pub(crate) fn tokenize(html: &str) -> Vec<Token> {
    let bytes = html.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut text_start = 0;
    let flush = |tokens: &mut Vec<Token>, start: usize, end: usize| {
        if end > start {
            tokens.push(Token::Text {
                range: start..end,
                raw: false,
            });
        }
    };
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        if rest.starts_with(b"<!--") {
            flush(&mut tokens, text_start, i);
            let end = find(bytes, i + 4, b"-->").map_or(bytes.len(), |at| at + 3);
            tokens.push(Token::Comment);
            i = end;
            text_start = i;
        } else if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            flush(&mut tokens, text_start, i);
            let end = find(bytes, i, b">").map_or(bytes.len(), |at| at + 1);
            tokens.push(Token::Comment);
            i = end;
            text_start = i;
        } else if rest.len() > 2 && rest[1] == b'/' && rest[2].is_ascii_alphabetic() {
            flush(&mut tokens, text_start, i);
            let name_end = scan_name(bytes, i + 2);
            let name = html[i + 2..name_end].to_ascii_lowercase();
            let end = find(bytes, name_end, b">").map_or(bytes.len(), |at| at + 1);
            tokens.push(Token::End {
                name,
                range: i..end,
            });
            i = end;
            text_start = i;
        } else if rest.len() > 1 && rest[1].is_ascii_alphabetic() {
            flush(&mut tokens, text_start, i);
            let (token, end) = start_tag(html, i);
            i = end;
            text_start = i;
            let raw_name = match &token {
                Token::Start {
                    name, self_closing, ..
                } if !self_closing && RAW_TEXT.contains(&name.as_str()) => Some(name.clone()),
                _ => None,
            };
            tokens.push(token);
            if let Some(name) = raw_name {
                let close = find_close_tag(bytes, i, &name).unwrap_or(bytes.len());
                if close > i {
                    tokens.push(Token::Text {
                        range: i..close,
                        raw: name == "script" || name == "style",
                    });
                }
                i = close;
                text_start = i;
            }
        } else {
            i += 1;
        }
    }
    flush(&mut tokens, text_start, bytes.len());
    tokens
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from >= bytes.len() {
        return None;
    }
    bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| from + at)
}

/// The start of the `</name` that ends raw text begun at `from`.
fn find_close_tag(bytes: &[u8], from: usize, name: &str) -> Option<usize> {
    let mut at = from;
    while let Some(lt) = find(bytes, at, b"</") {
        let after = lt + 2;
        let candidate = bytes.get(after..after + name.len())?;
        let boundary = bytes
            .get(after + name.len())
            .is_none_or(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/');
        if candidate.eq_ignore_ascii_case(name.as_bytes()) && boundary {
            return Some(lt);
        }
        at = after;
    }
    None
}

fn scan_name(bytes: &[u8], from: usize) -> usize {
    let mut end = from;
    while end < bytes.len()
        && !bytes[end].is_ascii_whitespace()
        && !matches!(bytes[end], b'/' | b'>')
    {
        end += 1;
    }
    end
}

/// Parses the start tag at `start` (which is `<` followed by a letter).
fn start_tag(html: &str, start: usize) -> (Token, usize) {
    let bytes = html.as_bytes();
    let name_end = scan_name(bytes, start + 1);
    let name = html[start + 1..name_end].to_ascii_lowercase();
    let mut attrs = Vec::new();
    let mut i = name_end;
    let mut self_closing = false;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        match bytes[i] {
            b'>' => {
                i += 1;
                break;
            }
            b'/' => {
                i += 1;
                if bytes.get(i) == Some(&b'>') {
                    self_closing = true;
                    i += 1;
                    break;
                }
                continue;
            }
            _ => {}
        }
        let attr_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        if i == attr_start {
            // A stray `=`: skip it.
            i += 1;
            continue;
        }
        let attr_name = html[attr_start..i].to_ascii_lowercase();
        let mut j = i;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        let mut value = String::new();
        if bytes.get(j) == Some(&b'=') {
            j += 1;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            match bytes.get(j) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let close = bytes[j + 1..]
                        .iter()
                        .position(|b| *b == quote)
                        .map_or(bytes.len(), |at| j + 1 + at);
                    value = crate::sse::unescape_html(&html[j + 1..close]);
                    i = (close + 1).min(bytes.len());
                }
                Some(_) => {
                    let value_start = j;
                    while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'>' {
                        j += 1;
                    }
                    value = crate::sse::unescape_html(&html[value_start..j]);
                    i = j;
                }
                None => i = j,
            }
        }
        attrs.push((attr_name, value));
    }
    (
        Token::Start {
            name,
            attrs,
            self_closing,
            range: start..i,
        },
        i,
    )
}

/// One element: its name, attributes and where it is in the source.
#[derive(Debug, Clone)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    /// From `<` of the start tag to after the `>` of the end tag.
    pub(crate) outer: Range<usize>,
    /// The content between the tags.
    pub(crate) inner: Range<usize>,
    pub(crate) parent: Option<usize>,
}

impl Element {
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|classes| classes.split_ascii_whitespace().any(|c| c == class))
    }
}

/// The elements of a document, in document order.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub(crate) elements: Vec<Element>,
}

impl Tree {
    pub(crate) fn parse(html: &str) -> Tree {
        let mut elements: Vec<Element> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        for token in tokenize(html) {
            match token {
                Token::Start {
                    name,
                    attrs,
                    self_closing,
                    range,
                } => {
                    while let Some(&top) = open.last() {
                        if !implicitly_closed_by(&elements[top].name, &name) {
                            break;
                        }
                        elements[top].inner.end = range.start;
                        elements[top].outer.end = range.start;
                        open.pop();
                    }
                    let leaf = self_closing || VOID.contains(&name.as_str());
                    let index = elements.len();
                    elements.push(Element {
                        name,
                        attrs,
                        outer: range.start..range.end,
                        inner: range.end..range.end,
                        parent: open.last().copied(),
                    });
                    if !leaf {
                        open.push(index);
                    }
                }
                Token::End { name, range } => {
                    let Some(position) = open.iter().rposition(|&i| elements[i].name == name)
                    else {
                        continue;
                    };
                    for &unclosed in &open[position + 1..] {
                        elements[unclosed].inner.end = range.start;
                        elements[unclosed].outer.end = range.start;
                    }
                    let closed = open[position];
                    elements[closed].inner.end = range.start;
                    elements[closed].outer.end = range.end;
                    open.truncate(position);
                }
                Token::Text { .. } | Token::Comment => {}
            }
        }
        for unclosed in open {
            elements[unclosed].inner.end = html.len();
            elements[unclosed].outer.end = html.len();
        }
        Tree { elements }
    }

    /// The elements that have no parent element (a fragment's top level).
    pub(crate) fn top_level(&self) -> impl Iterator<Item = &Element> {
        self.elements.iter().filter(|e| e.parent.is_none())
    }

    pub(crate) fn by_id(&self, id: &str) -> Option<usize> {
        self.elements.iter().position(|e| e.attr("id") == Some(id))
    }
}

fn implicitly_closed_by(open: &str, start: &str) -> bool {
    match open {
        "p" => CLOSES_P.contains(&start),
        "li" => start == "li",
        "dt" | "dd" => matches!(start, "dt" | "dd"),
        "option" => matches!(start, "option" | "optgroup"),
        "td" | "th" => matches!(start, "td" | "th" | "tr"),
        "tr" => start == "tr",
        _ => false,
    }
}

/// The text of `html` as a browser shows it: tags, comments, scripts and styles dropped,
/// entities decoded, runs of whitespace collapsed to one space, trimmed.
pub(crate) fn text_content(html: &str) -> String {
    let mut text = String::new();
    for token in tokenize(html) {
        if let Token::Text { range, raw: false } = token {
            text.push_str(&crate::sse::unescape_html(&html[range]));
        }
    }
    collapse_whitespace(&text)
}

pub(crate) fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_ascii_whitespace()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// A short excerpt of `html` for messages.
pub(crate) fn snippet(html: &str) -> String {
    const MAX: usize = 120;
    if html.len() <= MAX {
        return html.to_owned();
    }
    let mut end = MAX;
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &html[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_what_a_reader_sees() {
        assert_eq!(
            text_content(
                "<p> a &amp; <b>b</b>\n &lt;c&gt; &#39;d&#x27; &quot;e&quot;<script>x</script><!-- f --></p>"
            ),
            "a & b <c> 'd' \"e\""
        );
    }
}
