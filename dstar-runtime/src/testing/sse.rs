//! Reading an event stream the way a browser's `EventSource` does (the WHATWG "event stream
//! interpretation" rules), so tests check what a client would actually see rather than what the
//! encoder meant to write. The test client reads every answer and live stream with it; use it
//! directly to check the bytes a handler or a server writes.
//!
//! - A line ends at `\r\n`, at `\n` or at a lone `\r`. A `\r` that ends one chunk and a `\n` that
//!   starts the next are one line ending, not two.
//! - `name: value` sets a field; one space after the colon is dropped, any further space kept.
//!   A line without a colon is a field with an empty value.
//! - A line starting with `:` is a comment.
//! - A UTF-8 byte order mark before the first line is skipped.
//! - A blank line ends the block. A browser only dispatches a block that has data lines;
//!   [`SseParser::next_block`] still hands back every block, so heartbeats (comment-only blocks)
//!   can be seen, and [`SseParser::next_event`] skips them as a browser does.
//! - A block the stream ends in the middle of is not handed back, as a browser drops it;
//!   [`SseParser::has_partial_block`] says whether there is one.
//!
//! ```
//! use dstar_runtime::testing::sse::{SseParser, parse};
//!
//! let blocks = parse(b": heartbeat\n\nevent: datastar-patch-signals\ndata: signals {\"n\":1}\n\n");
//! assert_eq!(blocks.len(), 2);
//! assert!(!blocks[0].is_dispatched());
//! assert_eq!(blocks[1].event_type(), "datastar-patch-signals");
//! assert_eq!(blocks[1].value("signals").as_deref(), Some("{\"n\":1}"));
//!
//! // Bytes as they arrive: a block is handed back once its blank line is in.
//! let mut parser = SseParser::new();
//! parser.feed(b"data: elements <p>hi</p>\r");
//! assert!(parser.next_event().is_none());
//! parser.feed(b"\n\r\n");
//! assert_eq!(parser.next_event().unwrap().data, ["elements <p>hi</p>"]);
//! ```

use std::collections::VecDeque;

/// One block of an event stream: everything up to a blank line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The last `event` field of the block (a browser names a block without one `message`, see
    /// [`event_type`](Self::event_type)).
    pub event: Option<String>,
    /// The last usable `id` field of the block. An id containing NUL is ignored, as a browser
    /// ignores it. (A browser also remembers the last id across blocks, as `lastEventId`; this
    /// is the block's own.)
    pub id: Option<String>,
    /// The last `retry` field made of ASCII digits only; others are ignored, as a browser
    /// ignores them.
    pub retry: Option<u64>,
    /// The value of each `data` line, in order. A browser hands them to the page joined with
    /// `\n`.
    pub data: Vec<String>,
    /// The text of each comment line, without the colon and one following space.
    pub comments: Vec<String>,
}

impl SseEvent {
    /// Whether a browser dispatches this block: only blocks with at least one data line are.
    pub fn is_dispatched(&self) -> bool {
        !self.data.is_empty()
    }

    /// The type a browser dispatches the block as: its `event` field, or `message` without one.
    pub fn event_type(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }

    /// The block's data as a browser delivers it: the data lines joined with `\n`.
    pub fn data_text(&self) -> String {
        self.data.join("\n")
    }

    /// The values of the data lines that start with `key` and a space, in order: how the
    /// Datastar client reads an argument such as `elements` or `selector`.
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.data.iter().filter_map(move |line| {
            line.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(' '))
        })
    }

    /// The values of the data lines for `key` joined with `\n`, or `None` when there is none.
    pub fn value(&self, key: &str) -> Option<String> {
        let values: Vec<&str> = self.values(key).collect();
        if values.is_empty() {
            None
        } else {
            Some(values.join("\n"))
        }
    }
}

/// An incremental parser: feed it bytes as they arrive, take blocks out as they complete.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous line ended with a CR, so an LF right after it belongs to that line ending.
    skip_lf: bool,
    seen_first_line: bool,
    block: SseEvent,
    block_has_lines: bool,
    complete: VecDeque<SseEvent>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `bytes`, the next part of the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if std::mem::take(&mut self.skip_lf) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\r' => {
                    self.end_line();
                    self.skip_lf = true;
                }
                b'\n' => self.end_line(),
                _ => self.line.push(byte),
            }
        }
    }

    /// The next complete block, if one is ready, heartbeats and other blocks without data
    /// included.
    pub fn next_block(&mut self) -> Option<SseEvent> {
        self.complete.pop_front()
    }

    /// The next complete block a browser would dispatch (one with data), if one is ready. Blocks
    /// without data before it are dropped.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        std::iter::from_fn(|| self.next_block()).find(SseEvent::is_dispatched)
    }

    /// Whether bytes of an unfinished block are pending (a stream ending now would lose them).
    pub fn has_partial_block(&self) -> bool {
        !self.line.is_empty() || self.block_has_lines
    }

    fn end_line(&mut self) {
        let mut line = std::mem::take(&mut self.line);
        if !std::mem::replace(&mut self.seen_first_line, true) && line.starts_with(b"\xEF\xBB\xBF")
        {
            line.drain(..3);
        }
        if line.is_empty() {
            if std::mem::take(&mut self.block_has_lines) {
                self.complete.push_back(std::mem::take(&mut self.block));
            }
            return;
        }
        self.block_has_lines = true;
        let line = String::from_utf8_lossy(&line);
        let (name, value) = match line.find(':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&*line, ""),
        };
        match name {
            "" => self.block.comments.push(value.to_owned()),
            "event" => self.block.event = Some(value.to_owned()),
            "data" => self.block.data.push(value.to_owned()),
            "id" if !value.contains('\0') => self.block.id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(retry) = value.parse() {
                    self.block.retry = Some(retry);
                }
            }
            _ => {}
        }
    }
}

/// Parses a whole stream into its complete blocks, heartbeats included (an unfinished last
/// block is dropped).
pub fn parse(stream: &[u8]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    parser.feed(stream);
    std::iter::from_fn(|| parser.next_block()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_ending_ends_a_line() {
        let blocks = parse(b"event: a\r\ndata: 1\rdata: 2\ndata:3\r\rid\n\n");
        assert_eq!(
            blocks,
            [
                SseEvent {
                    event: Some("a".into()),
                    data: vec!["1".into(), "2".into(), "3".into()],
                    ..SseEvent::default()
                },
                SseEvent {
                    id: Some(String::new()),
                    ..SseEvent::default()
                },
            ]
        );
    }

    #[test]
    fn crlf_split_across_feeds_is_one_line_ending() {
        let mut parser = SseParser::new();
        parser.feed(b"data: x\r");
        parser.feed(b"\n");
        assert!(parser.next_block().is_none());
        parser.feed(b"\r\n");
        assert_eq!(parser.next_block().unwrap().data, ["x"]);
    }

    #[test]
    fn comments_bom_and_unfinished_blocks() {
        let mut parser = SseParser::new();
        parser.feed(b"\xEF\xBB\xBF: hb\n\ndata:  two spaces\nretry: 1x\nretry: 20\n\ndata: lost");
        assert_eq!(parser.next_block().unwrap().comments, ["hb"]);
        let block = parser.next_block().unwrap();
        assert_eq!(block.data, [" two spaces"]);
        assert_eq!(block.retry, Some(20));
        assert!(parser.next_block().is_none());
        assert!(parser.has_partial_block());
    }

    #[test]
    fn datastar_values_are_read_by_key() {
        let block = &parse(b"data: elements <a>\ndata: selector #x\ndata: elements </a>\n\n")[0];
        assert_eq!(block.value("elements").as_deref(), Some("<a>\n</a>"));
        assert_eq!(block.value("selector").as_deref(), Some("#x"));
        assert_eq!(block.value("mode"), None);
    }

    #[test]
    fn events_across_chunks_skip_blocks_without_data() {
        let mut parser = SseParser::new();
        parser.feed(b": hb\n\nevent: datastar-patch-signals\r");
        assert!(parser.next_event().is_none());
        parser.feed(b"\nid: 3\ndata: signals {\"a\":\n");
        assert!(parser.next_event().is_none());
        parser.feed(b"data: signals 1}\r\n\r\nretry: 10\n\n");
        let events: Vec<SseEvent> = std::iter::from_fn(|| parser.next_event()).collect();
        assert_eq!(
            events,
            [SseEvent {
                event: Some("datastar-patch-signals".to_owned()),
                id: Some("3".to_owned()),
                data: vec!["signals {\"a\":".to_owned(), "signals 1}".to_owned()],
                ..SseEvent::default()
            }]
        );
        assert_eq!(events[0].event_type(), "datastar-patch-signals");
        assert_eq!(parse(b"data: x\n\n")[0].event_type(), "message");
    }
}
