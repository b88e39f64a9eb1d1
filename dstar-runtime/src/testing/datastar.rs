//! The two Datastar events inside an event stream, decoded as the Datastar client reads them.

use super::sse::SseEvent;
use crate::sse::Mode;

/// A Datastar event, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Datastar {
    Elements {
        selector: Option<String>,
        mode: Mode,
        elements: String,
    },
    Signals {
        json: String,
        only_if_missing: bool,
    },
    /// Anything else (ignored, like the browser does).
    Other,
}

impl Datastar {
    pub(crate) fn decode(event: &SseEvent) -> Result<Datastar, String> {
        let mut fields: Vec<(&str, Vec<&str>)> = Vec::new();
        for line in &event.data {
            let (key, value) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            match fields.iter_mut().find(|(k, _)| *k == key) {
                Some((_, values)) => values.push(value),
                None => fields.push((key, vec![value])),
            }
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, values)| values.join("\n"))
        };
        match event.event_type() {
            "datastar-patch-elements" => {
                let mode = match field("mode") {
                    None => Mode::Outer,
                    Some(name) => Mode::from_name(name.trim())
                        .ok_or_else(|| format!("unknown patch mode `{name}`"))?,
                };
                Ok(Datastar::Elements {
                    selector: field("selector").filter(|s| !s.trim().is_empty()),
                    mode,
                    elements: field("elements").unwrap_or_default(),
                })
            }
            "datastar-patch-signals" => Ok(Datastar::Signals {
                json: field("signals").ok_or("a signals patch without `signals`")?,
                only_if_missing: field("onlyIfMissing").is_some_and(|v| v.trim() == "true"),
            }),
            _ => Ok(Datastar::Other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sse::{SseParser, parse};

    #[test]
    fn decodes_signal_patches_split_over_lines_and_chunks() {
        let mut parser = SseParser::new();
        parser.feed(b": hb\n\nevent: datastar-patch-signals\r");
        parser.feed(b"\nid: 3\ndata: signals {\"a\":\n");
        parser.feed(b"data: signals 1}\r\n\r\nretry: 10\n\n");
        let event = parser.next_event().unwrap();
        assert_eq!(
            Datastar::decode(&event),
            Ok(Datastar::Signals {
                json: "{\"a\":\n1}".to_owned(),
                only_if_missing: false
            })
        );
    }

    #[test]
    fn decodes_element_patches() {
        let events = parse(
            b"event: datastar-patch-elements\ndata: selector #l\ndata: mode append\ndata: elements <li>\ndata: elements a</li>\n\n",
        );
        assert_eq!(
            Datastar::decode(&events[0]),
            Ok(Datastar::Elements {
                selector: Some("#l".to_owned()),
                mode: Mode::Append,
                elements: "<li>\na</li>".to_owned()
            })
        );
    }
}
