//! The client's signals: JSON merge patches, `data-signals` attributes, and what an action
//! sends.

use serde_json::{Map, Value};

use super::html::Tree;

/// Applies a JSON merge patch (RFC 7386) the way Datastar does: `null` removes, objects merge,
/// anything else replaces. With `only_if_missing`, existing values are kept.
pub(crate) fn merge_patch(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    only_if_missing: bool,
) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                if !only_if_missing {
                    target.remove(key);
                }
            }
            Value::Object(patch) => {
                let entry = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    if only_if_missing {
                        continue;
                    }
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(inner) = entry {
                    merge_patch(inner, patch, only_if_missing);
                }
            }
            value => {
                if !only_if_missing || !target.contains_key(key) {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
    }
}

/// The signals an action sends: all of them except those whose name (at any depth) starts
/// with `_`, which Datastar keeps local.
pub(crate) fn outgoing(signals: &Map<String, Value>) -> Map<String, Value> {
    signals
        .iter()
        .filter(|(key, _)| !key.starts_with('_'))
        .map(|(key, value)| {
            let value = match value {
                Value::Object(inner) => Value::Object(outgoing(inner)),
                other => other.clone(),
            };
            (key.clone(), value)
        })
        .collect()
}

/// The value at a dotted path (`user.name`).
pub(crate) fn lookup<'a>(signals: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = signals.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// One `data-signals` attribute as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Declaration {
    pub(crate) attribute: String,
    pub(crate) value: String,
}

impl std::fmt::Display for Declaration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=\"{}\"", self.attribute, self.value)
    }
}

/// Every `data-signals` attribute of `html`, in document order.
pub(crate) fn declarations(html: &str) -> Vec<Declaration> {
    let tree = Tree::parse(html);
    let mut out = Vec::new();
    for element in &tree.elements {
        for (name, value) in &element.attrs {
            let is_signals = name.strip_prefix("data-signals").is_some_and(|rest| {
                rest.is_empty() || rest.starts_with(':') || rest.starts_with("__")
            });
            if is_signals {
                out.push(Declaration {
                    attribute: name.clone(),
                    value: value.clone(),
                });
            }
        }
    }
    out
}

/// Applies one declaration. The value must be a literal (JSON, or a JavaScript object literal
/// with bare keys and single-quoted strings); expressions cannot be evaluated here.
pub(crate) fn apply_declaration(
    signals: &mut Map<String, Value>,
    declaration: &Declaration,
) -> Result<(), String> {
    let rest = &declaration.attribute["data-signals".len()..];
    let (key, modifiers) = match rest.strip_prefix(':') {
        Some(keyed) => match keyed.split_once("__") {
            Some((key, modifiers)) => (Some(key), modifiers),
            None => (Some(keyed), ""),
        },
        None => (None, rest.trim_start_matches("__")),
    };
    let mut only_if_missing = false;
    let mut case = "camel";
    for modifier in modifiers.split("__").filter(|m| !m.is_empty()) {
        let mut parts = modifier.split('.');
        match parts.next() {
            Some("ifmissing") => only_if_missing = true,
            Some("case") => case = parts.next().unwrap_or("camel"),
            _ => {}
        }
    }
    let value = parse_literal(&declaration.value)?;
    let patch = match key {
        None => match value {
            Value::Object(map) => map,
            _ => return Err("`data-signals` without a key needs an object".to_owned()),
        },
        Some(key) => {
            let mut value = value;
            for part in key.rsplit('.') {
                let mut map = Map::new();
                map.insert(convert_case(part, case), value);
                value = Value::Object(map);
            }
            match value {
                Value::Object(map) => map,
                _ => unreachable!("a key always wraps the value in an object"),
            }
        }
    };
    merge_patch(signals, &patch, only_if_missing);
    Ok(())
}

/// Datastar turns `data-signals:my-count` into `myCount` unless told otherwise.
fn convert_case(key: &str, case: &str) -> String {
    let words: Vec<&str> = key.split(['-', '_']).filter(|w| !w.is_empty()).collect();
    let capitalize = |word: &str| {
        let mut chars = word.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect::<String>())
            .unwrap_or_default()
    };
    match case {
        "kebab" => words.join("-"),
        "snake" => words.join("_"),
        "pascal" => words.iter().map(|w| capitalize(w)).collect(),
        _ => words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    (*w).to_owned()
                } else {
                    capitalize(w)
                }
            })
            .collect(),
    }
}

/// Parses a JSON value, or a JavaScript literal close to one: bare and single-quoted keys,
/// single-quoted strings, trailing commas, `undefined` (as `null`).
pub(crate) fn parse_literal(source: &str) -> Result<Value, String> {
    if let Ok(value) = serde_json::from_str(source) {
        return Ok(value);
    }
    let mut parser = Literal {
        chars: source.chars().collect(),
        at: 0,
    };
    let value = parser.value()?;
    parser.space();
    if parser.at < parser.chars.len() {
        return Err(parser.unexpected());
    }
    Ok(value)
}

struct Literal {
    chars: Vec<char>,
    at: usize,
}

impl Literal {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn unexpected(&self) -> String {
        match self.peek() {
            Some(c) => format!(
                "`{c}` at offset {}: only literals can be evaluated (not expressions)",
                self.at
            ),
            None => "unexpected end".to_owned(),
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.space();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.space();
        match self.peek() {
            Some('{') => {
                self.at += 1;
                let mut map = Map::new();
                loop {
                    if self.eat('}') {
                        return Ok(Value::Object(map));
                    }
                    self.space();
                    let key = match self.peek() {
                        Some('"' | '\'') => self.string()?,
                        Some(c) if c.is_alphanumeric() || c == '_' || c == '$' => self.word(),
                        _ => return Err(self.unexpected()),
                    };
                    if !self.eat(':') {
                        return Err(self.unexpected());
                    }
                    let value = self.value()?;
                    map.insert(key, value);
                    if !self.eat(',') {
                        if self.eat('}') {
                            return Ok(Value::Object(map));
                        }
                        return Err(self.unexpected());
                    }
                }
            }
            Some('[') => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(']') {
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    if !self.eat(',') {
                        if self.eat(']') {
                            return Ok(Value::Array(items));
                        }
                        return Err(self.unexpected());
                    }
                }
            }
            Some('"' | '\'') => Ok(Value::String(self.string()?)),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let start = self.at;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
                {
                    self.at += 1;
                }
                let text: String = self.chars[start..self.at].iter().collect();
                let text = text.strip_prefix('+').unwrap_or(&text);
                serde_json::from_str::<serde_json::Number>(text)
                    .map(Value::Number)
                    .or_else(|_| {
                        text.parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map(Value::Number)
                            .ok_or_else(|| format!("`{text}` is not a number"))
                    })
            }
            Some(c) if c.is_alphabetic() => {
                let start = self.at;
                let word = self.word();
                match word.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" | "undefined" => Ok(Value::Null),
                    _ => {
                        self.at = start;
                        Err(self.unexpected())
                    }
                }
            }
            _ => Err(self.unexpected()),
        }
    }

    fn word(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
        {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or("unexpected end")?;
        self.at += 1;
        let mut out = String::new();
        loop {
            let c = self.peek().ok_or("unterminated string")?;
            self.at += 1;
            match c {
                c if c == quote => return Ok(out),
                '\\' => {
                    let escaped = self.peek().ok_or("unterminated string")?;
                    self.at += 1;
                    match escaped {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        '0' => out.push('\0'),
                        'u' => {
                            let hex: String = self
                                .chars
                                .get(self.at..self.at + 4)
                                .ok_or("bad `\\u` escape")?
                                .iter()
                                .collect();
                            self.at += 4;
                            let unit =
                                u32::from_str_radix(&hex, 16).map_err(|_| "bad `\\u` escape")?;
                            out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn merge_patches_like_datastar() {
        let mut signals = object(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 5}));
        merge_patch(
            &mut signals,
            &object(json!({"a": null, "b": {"c": 9}, "f": [1]})),
            false,
        );
        assert_eq!(
            Value::Object(signals.clone()),
            json!({"b": {"c": 9, "d": 3}, "e": 5, "f": [1]})
        );
        merge_patch(
            &mut signals,
            &object(json!({"e": 6, "g": 7, "b": {"x": 1}})),
            true,
        );
        assert_eq!(
            Value::Object(signals),
            json!({"b": {"c": 9, "d": 3, "x": 1}, "e": 5, "f": [1], "g": 7})
        );
    }

    #[test]
    fn reads_data_signals_attributes() {
        let html = r#"<div data-signals="{count: 1, 'name': 'a', list: [1, 2,], _local: true}">
            <p data-signals:my-flag="true" data-signals:user.first-name='"Ann"' data-signals:n__ifmissing="5"></p>
            <p data-signals:raw__case.kebab="-1.5e2" data-signals:expr="$count + 1"></p></div>"#;
        let mut signals = object(json!({"n": 0}));
        let mut errors = Vec::new();
        for declaration in declarations(html) {
            if let Err(err) = apply_declaration(&mut signals, &declaration) {
                errors.push((declaration.attribute, err));
            }
        }
        assert_eq!(
            Value::Object(signals.clone()),
            json!({"count": 1, "name": "a", "list": [1, 2], "_local": true, "myFlag": true,
                   "user": {"firstName": "Ann"}, "n": 0, "raw": -150.0})
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "data-signals:expr");
        assert_eq!(
            Value::Object(outgoing(&signals)),
            json!({"count": 1, "name": "a", "list": [1, 2], "myFlag": true,
                   "user": {"firstName": "Ann"}, "n": 0, "raw": -150.0})
        );
        assert_eq!(lookup(&signals, "user.firstName"), Some(&json!("Ann")));
        assert_eq!(lookup(&signals, "user.nope"), None);
    }
}
