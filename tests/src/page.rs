//! Reading what a rendered dstar page carries: its tokens.

/// The hex token that follows the first occurrence of `name` in `html` (as a signal name in a
/// live page's `data-signals`, or as a header name in a stateless page's event actions).
///
/// # Panics
///
/// When `name` is not in `html` or no token follows it.
pub fn token_after(html: &str, name: &str) -> String {
    let start = html
        .find(name)
        .unwrap_or_else(|| panic!("`{name}` is not in the page:\n{html}"));
    let rest = &html[start + name.len()..];
    // Skip the quoting between the name and the value (`&quot;:&quot;`, `&#x27;: &quot;`).
    let skip = rest
        .char_indices()
        .find(|&(i, c)| {
            c.is_ascii_hexdigit()
                && rest[i..]
                    .chars()
                    .take_while(char::is_ascii_hexdigit)
                    .count()
                    >= 64
        })
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no token follows `{name}`"));
    rest[skip..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}
