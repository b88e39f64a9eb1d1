//! The frames nodes exchange on a namespace's Redis channel: written here, read here, and
//! nowhere else (the layout is in the crate's docs).

use std::fmt;
use std::ops::Range;

/// The only layout this version writes and reads.
pub(crate) const VERSION: u8 = 1;

const MESSAGE: u8 = 1;
const EVENTS: u8 = 2;
const MARK: u8 = 3;
const HAS_SENDER: u8 = 1;

/// Where the sequence number sits: written last, by the task that publishes frames in order.
const SEQ: Range<usize> = 10..18;
/// The fixed part: version, kind, origin, sequence number, topic length.
const HEAD: usize = 20;

/// The longest topic a frame can carry (its length is a `u16`).
pub(crate) const MAX_TOPIC: usize = u16::MAX as usize;
/// The longest message type name a frame can carry (its length is a `u8`).
pub(crate) const MAX_TYPE_NAME: usize = u8::MAX as usize;

/// Starts a frame of `kind` from node `origin` on `topic`, its sequence number left at 0;
/// `None` for a topic longer than [`MAX_TOPIC`].
fn head(kind: u8, origin: u64, topic: &str, body: usize) -> Option<Vec<u8>> {
    let topic_len = u16::try_from(topic.len()).ok()?;
    let mut out = Vec::with_capacity(HEAD + topic.len() + body);
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(&origin.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(&topic_len.to_be_bytes());
    out.extend_from_slice(topic.as_bytes());
    Some(out)
}

/// A message frame: `write_json` appends the payload's JSON. `None` for a topic too long.
pub(crate) fn message(
    origin: u64,
    topic: &str,
    sender: Option<u128>,
    type_name: &str,
    write_json: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> Option<serde_json::Result<Vec<u8>>> {
    debug_assert!(type_name.len() <= MAX_TYPE_NAME, "checked when registered");
    let mut out = head(MESSAGE, origin, topic, 64)?;
    match sender {
        Some(id) => {
            out.push(HAS_SENDER);
            out.extend_from_slice(&id.to_be_bytes());
        }
        None => out.push(0),
    }
    out.push(type_name.len() as u8);
    out.extend_from_slice(type_name.as_bytes());
    Some(write_json(&mut out).map(|()| out))
}

/// A frame of pre-encoded SSE events. `None` for a topic too long.
pub(crate) fn events(origin: u64, topic: &str, events: &[u8]) -> Option<Vec<u8>> {
    let mut out = head(EVENTS, origin, topic, events.len())?;
    out.extend_from_slice(events);
    Some(out)
}

/// A mark: a frame with only a number (sent on every connection, so peers see a gap at once).
pub(crate) fn mark(origin: u64) -> Option<Vec<u8>> {
    head(MARK, origin, "", 0)
}

/// Writes the frame's sequence number.
pub(crate) fn stamp(frame: &mut [u8], seq: u64) {
    frame[SEQ].copy_from_slice(&seq.to_be_bytes());
}

/// A frame as read: the topic borrowed, the body's parts as ranges of the frame (so the
/// caller can slice them out of its `Bytes` without copying).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) origin: u64,
    pub(crate) seq: u64,
    pub(crate) topic: &'a str,
    pub(crate) body: Body<'a>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    Message {
        sender: Option<u128>,
        type_name: &'a str,
        json: Range<usize>,
    },
    Events(Range<usize>),
    Mark,
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Written by a version of dstar-redis that this one does not know.
    Version(u8),
    Kind(u8),
    Truncated(&'static str),
    NotUtf8(&'static str),
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Version(v) => write!(f, "frame version {v} (this node reads {VERSION})"),
            Malformed::Kind(k) => write!(f, "unknown frame kind {k}"),
            Malformed::Truncated(what) => write!(f, "frame ends inside its {what}"),
            Malformed::NotUtf8(what) => write!(f, "the frame's {what} is not UTF-8"),
        }
    }
}

/// Reads a frame.
pub(crate) fn parse(frame: &[u8]) -> Result<Frame<'_>, Malformed> {
    let mut at = Reader { frame, at: 0 };
    let version = at.byte("header")?;
    if version != VERSION {
        return Err(Malformed::Version(version));
    }
    let kind = at.byte("header")?;
    let origin = u64::from_be_bytes(at.array("header")?);
    let seq = u64::from_be_bytes(at.array("header")?);
    let topic_len = u16::from_be_bytes(at.array("header")?);
    let topic = at.text(usize::from(topic_len), "topic")?;
    let body = match kind {
        MESSAGE => {
            let sender = match at.byte("sender")? & HAS_SENDER {
                0 => None,
                _ => Some(u128::from_be_bytes(at.array("sender")?)),
            };
            let name_len = at.byte("type name")?;
            let type_name = at.text(usize::from(name_len), "type name")?;
            Body::Message {
                sender,
                type_name,
                json: at.at..frame.len(),
            }
        }
        EVENTS => Body::Events(at.at..frame.len()),
        MARK => Body::Mark,
        other => return Err(Malformed::Kind(other)),
    };
    Ok(Frame {
        origin,
        seq,
        topic,
        body,
    })
}

struct Reader<'a> {
    frame: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let bytes = self
            .frame
            .get(self.at..self.at + n)
            .ok_or(Malformed::Truncated(what))?;
        self.at += n;
        Ok(bytes)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Malformed> {
        let bytes = self.take(N, what)?;
        Ok(bytes.try_into().unwrap_or([0; N]))
    }

    fn text(&mut self, n: usize, what: &'static str) -> Result<&'a str, Malformed> {
        std::str::from_utf8(self.take(n, what)?).map_err(|_| Malformed::NotUtf8(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_frame_reads_back() {
        let mut frame = message(7, "room", Some(u128::MAX - 1), "note", |out| {
            serde_json::to_writer(out, &serde_json::json!({ "text": "hi" }))
        })
        .unwrap()
        .unwrap();
        stamp(&mut frame, 42);
        let read = parse(&frame).unwrap();
        assert_eq!((read.origin, read.seq, read.topic), (7, 42, "room"));
        let Body::Message {
            sender,
            type_name,
            json,
        } = read.body
        else {
            panic!("a message frame")
        };
        assert_eq!((sender, type_name), (Some(u128::MAX - 1), "note"));
        assert_eq!(&frame[json], br#"{"text":"hi"}"#);
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let mut frame = events(0x0102, "t", b"event: x\n\n").unwrap();
        stamp(&mut frame, 3);
        let mut expected = vec![1, 2, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1];
        expected.extend_from_slice(b"tevent: x\n\n");
        assert_eq!(frame, expected);

        let mut mark = mark(9).unwrap();
        stamp(&mut mark, 1);
        assert_eq!(
            mark,
            [1, 3, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(parse(&mark).unwrap().body, Body::Mark);

        let anonymous = message(1, "", None, "n", |out| {
            out.extend_from_slice(b"1");
            Ok(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(&anonymous[18..], b"\0\0\0\x01n1");
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let good = events(1, "room", b"x").unwrap();
        assert_eq!(parse(&[]), Err(Malformed::Truncated("header")));
        assert_eq!(parse(&good[..22]), Err(Malformed::Truncated("topic")));
        let mut future = good.clone();
        future[0] = 2;
        assert_eq!(parse(&future), Err(Malformed::Version(2)));
        assert_eq!(
            parse(&future).unwrap_err().to_string(),
            "frame version 2 (this node reads 1)"
        );
        let mut kind = good.clone();
        kind[1] = 9;
        assert_eq!(parse(&kind), Err(Malformed::Kind(9)));
        let mut topic = good;
        topic[20] = 0xff;
        assert_eq!(parse(&topic), Err(Malformed::NotUtf8("topic")));
        let cut = message(1, "r", Some(5), "name", |_| Ok(()))
            .unwrap()
            .unwrap();
        assert_eq!(parse(&cut[..30]), Err(Malformed::Truncated("sender")));
        assert_eq!(parse(&cut[..39]), Err(Malformed::Truncated("type name")));
    }

    #[test]
    fn topics_too_long_for_a_frame_are_refused() {
        let long = "x".repeat(MAX_TOPIC + 1);
        assert!(events(1, &long, b"").is_none());
        assert!(message(1, &long, None, "n", |_| Ok(())).is_none());
        assert!(events(1, &long[1..], b"").is_some());
    }
}
