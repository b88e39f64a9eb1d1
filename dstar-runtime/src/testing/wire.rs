//! Reading what the server sends: Server-Sent Events (parsed the way a browser's `EventSource`
//! does) and the two Datastar events inside them.

use crate::sse::Mode;

/// One dispatched SSE event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field (`message` when absent).
    pub(crate) event: String,
    pub(crate) id: Option<String>,
    /// Each `data:` line, in order.
    pub(crate) data: Vec<String>,
}

/// An incremental SSE parser: feed it bytes as they arrive, get whole events back.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    id: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.buffer[start..];
            let Some(end) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                break;
            };
            // A CR at the end of what arrived may be the first half of a CRLF: wait for more.
            if rest[end] == b'\r' && end + 1 == rest.len() {
                break;
            }
            let line = String::from_utf8_lossy(&rest[..end]).into_owned();
            let skip = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            start += end + skip;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.buffer.drain(..start);
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            let data = std::mem::take(&mut self.data);
            if data.is_empty() {
                return None;
            }
            return Some(SseEvent {
                event: event.unwrap_or_else(|| "message".to_owned()),
                id: self.id.clone(),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

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
        match event.event.as_str() {
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

    #[test]
    fn parses_across_chunks_and_line_endings() {
        let mut parser = SseParser::default();
        assert!(
            parser
                .push(b": hb\n\nevent: datastar-patch-signals\r")
                .is_empty()
        );
        assert!(parser.push(b"\nid: 3\ndata: signals {\"a\":\n").is_empty());
        let events = parser.push(b"data: signals 1}\r\n\r\nretry: 10\n\n");
        assert_eq!(
            events,
            [SseEvent {
                event: "datastar-patch-signals".to_owned(),
                id: Some("3".to_owned()),
                data: vec!["signals {\"a\":".to_owned(), "signals 1}".to_owned()],
            }]
        );
        assert_eq!(
            Datastar::decode(&events[0]),
            Ok(Datastar::Signals {
                json: "{\"a\":\n1}".to_owned(),
                only_if_missing: false
            })
        );
    }

    #[test]
    fn decodes_element_patches() {
        let mut parser = SseParser::default();
        let events = parser.push(
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
