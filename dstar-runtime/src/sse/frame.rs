//! Framing a session's stream: numbering events with `id:` lines (what `Last-Event-ID` replay
//! relies on) and the retry hint sent before a stream is cut.

use std::ops::Range;
use std::time::Duration;

use super::lines::push_u128;

/// Numbers the events of `batch`, each getting `*next_id + 1` and on. `batch` is this crate's
/// own encoding, where an event ends at its first blank line (the encoder never writes a blank
/// line inside an event).
///
/// For each event, writes into `out` the event's first line (`event: ...`) and its `id:` line,
/// then, when `copy_body` is set, the rest of the event. `each(id, written, body)` gets the
/// event's id, the range of `out` written for it, and the range of `batch` holding the rest
/// of the event (for callers that share those bytes instead of copying them).
pub(crate) fn number_events(
    batch: &[u8],
    next_id: &mut u64,
    out: &mut Vec<u8>,
    copy_body: bool,
    mut each: impl FnMut(u64, Range<usize>, Range<usize>),
) {
    let mut start = 0;
    while start < batch.len() {
        let rest = &batch[start..];
        let len = rest
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(rest.len(), |i| i + 2);
        let first_line = rest[..len]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(len, |i| i + 1);
        *next_id += 1;
        let written = out.len();
        out.extend_from_slice(&rest[..first_line]);
        out.extend_from_slice(b"id: ");
        push_u128(out, u128::from(*next_id));
        out.push(b'\n');
        if copy_body {
            out.extend_from_slice(&rest[first_line..len]);
        }
        each(
            *next_id,
            written..out.len(),
            start + first_line..start + len,
        );
        start += len;
    }
}

/// Writes a field-only block that sets the client's reconnection delay: sent as a stream's
/// last bytes when the server cuts it on purpose, so clients come back soon.
pub(crate) fn write_retry(out: &mut Vec<u8>, retry: Duration) {
    out.extend_from_slice(b"retry: ");
    push_u128(out, retry.as_millis());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_each_event_after_its_first_line() {
        let batch = b"event: a\ndata: x\n\nevent: b\ndata: y\ndata: z\n\n";
        let mut id = 7;
        let mut out = Vec::new();
        let mut seen = Vec::new();
        number_events(batch, &mut id, &mut out, true, |id, written, body| {
            seen.push((id, written, body));
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: a\nid: 8\ndata: x\n\nevent: b\nid: 9\ndata: y\ndata: z\n\n"
        );
        assert_eq!(id, 9);
        assert_eq!(seen[0], (8, 0..24, 9..18));
        assert_eq!(&batch[seen[1].2.clone()], b"data: y\ndata: z\n\n");
    }

    #[test]
    fn heads_only_when_bodies_are_shared() {
        let mut id = 0;
        let mut out = Vec::new();
        number_events(
            b"event: a\ndata: x\n\n",
            &mut id,
            &mut out,
            false,
            |_, _, _| {},
        );
        assert_eq!(out, b"event: a\nid: 1\n");
        let mut retry = Vec::new();
        write_retry(&mut retry, Duration::from_secs(1));
        assert_eq!(retry, b"retry: 1000\n\n");
    }
}
