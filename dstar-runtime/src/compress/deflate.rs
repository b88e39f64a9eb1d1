//! A small streaming gzip encoder whose memory is fixed: an 8 KiB window, hash chains over it,
//! and DEFLATE's fixed Huffman codes (RFC 1951, 3.2.6), so no per-block code tables or symbol
//! buffers are kept. Every [`Gzip::flush`] ends the data so far with a sync flush (an empty
//! stored block), which a decoder can decode up to without waiting for more.
//!
//! Why not `flate2`: its pure-Rust backend (miniz_oxide) allocates about 350 KB per encoder and
//! its zlib backends fix `memLevel` at 8 (128 KB of hash and symbol buffers before the window);
//! a live stream must cost tens of KB. Fixed codes lose little here: a stream's events repeat
//! the page they patch, so most of the output is long matches into the previous events.

use bytes::Bytes;

/// The window: matches reach at most this far back.
const WINDOW: usize = 1 << 13;
/// The buffer holds the window and as much new input again; when full it slides by `WINDOW`.
const BUFFER: usize = 2 * WINDOW;
const HASH_BITS: u32 = 12;
const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;
/// How many earlier positions with the same hash are tried for each match.
const MAX_CHAIN: usize = 16;

/// The gzip member header: deflate, no flags, no time, no extra flags, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DISTANCE_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DISTANCE_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// A gzip stream being written, one flushed piece at a time.
#[derive(Debug, Default)]
pub(crate) struct Gzip {
    /// Allocated with the first byte, so a stream that never sends anything costs nothing.
    state: Option<Box<Matcher>>,
    crc: crc32fast::Hasher,
    /// The input length modulo 2^32, as the trailer wants it.
    size: u32,
    started: bool,
    block_open: bool,
    bits: Bits,
}

#[derive(Debug)]
struct Matcher {
    buffer: Box<[u8]>,
    /// Bytes of `buffer` in use; everything before it has been encoded.
    filled: usize,
    /// The latest position of each hash; 0 is "none" (position 0 is never matched).
    head: Box<[u16]>,
    /// For each position (modulo the window), the previous position with the same hash.
    prev: Box<[u16]>,
}

#[derive(Debug, Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    count: u32,
}

impl Bits {
    /// Appends the low `n` bits of `value`, least significant first.
    fn put(&mut self, value: u32, n: u32) {
        self.acc |= u64::from(value) << self.count;
        self.count += n;
        while self.count >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.count -= 8;
        }
    }

    /// Appends a Huffman code, which DEFLATE stores most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        self.put(code.reverse_bits() >> (32 - len), len);
    }

    /// Pads to a byte boundary with zero bits.
    fn align(&mut self) {
        if self.count > 0 {
            self.out.push(self.acc as u8);
            self.acc = 0;
            self.count = 0;
        }
    }

    fn literal_or_length(&mut self, symbol: u16) {
        let symbol = u32::from(symbol);
        match symbol {
            0..=143 => self.code(0x30 + symbol, 8),
            144..=255 => self.code(0x190 + symbol - 144, 9),
            256..=279 => self.code(symbol - 256, 7),
            _ => self.code(0xc0 + symbol - 280, 8),
        }
    }

    fn copy(&mut self, length: usize, distance: usize) {
        let l = LENGTH_BASE.partition_point(|&base| usize::from(base) <= length) - 1;
        self.literal_or_length(257 + l as u16);
        self.put(
            (length - usize::from(LENGTH_BASE[l])) as u32,
            u32::from(LENGTH_EXTRA[l]),
        );
        let d = DISTANCE_BASE.partition_point(|&base| usize::from(base) <= distance) - 1;
        self.code(d as u32, 5);
        self.put(
            (distance - usize::from(DISTANCE_BASE[d])) as u32,
            u32::from(DISTANCE_EXTRA[d]),
        );
    }
}

impl Matcher {
    fn new() -> Box<Self> {
        Box::new(Matcher {
            buffer: vec![0; BUFFER].into_boxed_slice(),
            filled: 0,
            head: vec![0; 1 << HASH_BITS].into_boxed_slice(),
            prev: vec![0; WINDOW].into_boxed_slice(),
        })
    }

    fn hash(bytes: &[u8]) -> usize {
        let word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        (word.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize
    }

    fn insert(&mut self, at: usize, end: usize) {
        if at + MIN_MATCH <= end {
            let hash = Self::hash(&self.buffer[at..]);
            self.prev[at % WINDOW] = self.head[hash];
            self.head[hash] = at as u16;
        }
    }

    /// Moves the newest window to the front and rebases every position.
    fn slide(&mut self) {
        self.buffer.copy_within(WINDOW.., 0);
        self.filled -= WINDOW;
        for position in self.head.iter_mut().chain(self.prev.iter_mut()) {
            *position = position.saturating_sub(WINDOW as u16);
        }
    }

    /// The longest earlier match for the bytes at `at` (which must not reach past `end`):
    /// (length, distance), length 0 when there is none worth a copy.
    fn longest(&self, at: usize, end: usize) -> (usize, usize) {
        let max = (end - at).min(MAX_MATCH);
        if max < MIN_MATCH {
            return (0, 0);
        }
        let mut candidate = usize::from(self.head[Self::hash(&self.buffer[at..])]);
        let mut best = (0, 0);
        for _ in 0..MAX_CHAIN {
            if candidate == 0 || candidate >= at || at - candidate > WINDOW {
                break;
            }
            // A candidate that differs where the best one ends cannot beat it.
            if best.0 == 0 || self.buffer[candidate + best.0] == self.buffer[at + best.0] {
                let length = common_prefix(&self.buffer[candidate..], &self.buffer[at..at + max]);
                if length > best.0 {
                    best = (length, at - candidate);
                    if length == max {
                        break;
                    }
                }
            }
            let next = usize::from(self.prev[candidate % WINDOW]);
            if next >= candidate {
                break;
            }
            candidate = next;
        }
        if best.0 < MIN_MATCH { (0, 0) } else { best }
    }

    /// Encodes `buffer[from..filled]` as literals and copies.
    fn encode(&mut self, from: usize, bits: &mut Bits) {
        let end = self.filled;
        let mut at = from;
        while at < end {
            let (length, distance) = self.longest(at, end);
            if length == 0 {
                bits.literal_or_length(u16::from(self.buffer[at]));
                self.insert(at, end);
                at += 1;
            } else {
                bits.copy(length, distance);
                for p in at..at + length {
                    self.insert(p, end);
                }
                at += length;
            }
        }
    }
}

/// How many leading bytes `a` and `b` share (at most `b.len()`), eight at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut n = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let diff = u64::from_le_bytes(x.try_into().unwrap_or_default())
            ^ u64::from_le_bytes(y.try_into().unwrap_or_default());
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + a[n..]
        .iter()
        .zip(&b[n..])
        .take_while(|(x, y)| x == y)
        .count()
}

impl Gzip {
    /// Compresses `data` into the open block (handed out by the next [`Gzip::flush`]).
    pub(crate) fn write(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.open_block();
        self.crc.update(data);
        self.size = self.size.wrapping_add(data.len() as u32);
        let matcher = self.state.get_or_insert_with(Matcher::new);
        while !data.is_empty() {
            if matcher.filled == BUFFER {
                matcher.slide();
            }
            let from = matcher.filled;
            let n = (BUFFER - from).min(data.len());
            matcher.buffer[from..from + n].copy_from_slice(&data[..n]);
            matcher.filled += n;
            data = &data[n..];
            matcher.encode(from, &mut self.bits);
        }
    }

    /// Closes the open block with a sync flush and hands out everything written so far: a
    /// decoder can decode every byte given to [`Gzip::write`] from it. Empty when nothing was
    /// written since the last flush.
    pub(crate) fn flush(&mut self) -> Bytes {
        if self.block_open {
            self.close_block();
            // An empty stored block ends on a byte boundary: the decoder has every bit before.
            self.bits.put(0, 3);
            self.bits.align();
            self.bits.out.extend_from_slice(&[0, 0, 0xff, 0xff]);
        }
        Bytes::from(std::mem::take(&mut self.bits.out))
    }

    /// Ends the stream: the last block and the trailer (CRC-32 and length). Frees the window.
    pub(crate) fn finish(&mut self) -> Bytes {
        if self.block_open {
            self.close_block();
        }
        self.header();
        // The final block: BFINAL, fixed codes, end of block.
        self.bits.put(1, 1);
        self.bits.put(1, 2);
        self.bits.literal_or_length(256);
        self.bits.align();
        let crc = std::mem::take(&mut self.crc).finalize();
        self.bits.out.extend_from_slice(&crc.to_le_bytes());
        self.bits.out.extend_from_slice(&self.size.to_le_bytes());
        self.state = None;
        Bytes::from(std::mem::take(&mut self.bits.out))
    }

    fn header(&mut self) {
        if !self.started {
            self.bits.out.extend_from_slice(&HEADER);
            self.started = true;
        }
    }

    /// Opens a block with fixed codes (not the last one), unless one is open.
    fn open_block(&mut self) {
        self.header();
        if !self.block_open {
            self.bits.put(0, 1);
            self.bits.put(1, 2);
            self.block_open = true;
        }
    }

    fn close_block(&mut self) {
        self.bits.literal_or_length(256);
        self.block_open = false;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;

    /// Feeds `pieces` one flush each to a streaming decoder, checking after every flush that
    /// everything written so far decodes; then checks the finished stream as a whole.
    fn round_trip(pieces: &[Vec<u8>]) {
        let mut gzip = Gzip::default();
        let mut decoder = flate2::write::GzDecoder::new(Vec::new());
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for piece in pieces {
            gzip.write(piece);
            expected.extend_from_slice(piece);
            let flushed = gzip.flush();
            wire.extend_from_slice(&flushed);
            decoder.write_all(&flushed).unwrap();
            decoder.flush().unwrap();
            assert_eq!(decoder.get_ref().len(), expected.len(), "decoded so far");
            assert!(decoder.get_ref() == &expected, "decoded bytes differ");
        }
        let end = gzip.finish();
        wire.extend_from_slice(&end);
        let mut whole = flate2::read::GzDecoder::new(&wire[..]);
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(&mut whole, &mut decoded).unwrap();
        assert!(
            decoded == expected,
            "the finished stream decodes to the input"
        );
    }

    #[test]
    fn empty_and_tiny_streams() {
        round_trip(&[]);
        round_trip(&[vec![]]);
        round_trip(&[b"a".to_vec()]);
        round_trip(&[b": hb\n\n".to_vec(), b": hb\n\n".to_vec()]);
    }

    #[test]
    fn long_runs_windows_and_slides() {
        // Overlapping copies, the longest copy, and more than the buffer in one write.
        round_trip(&[vec![b'x'; 100_000]]);
        let text: Vec<u8> = (0..40_000u32)
            .flat_map(|i| format!("<li id=\"todo-{}\">{}</li>\n", i % 97, i % 13).into_bytes())
            .collect();
        round_trip(std::slice::from_ref(&text));
        round_trip(&text.chunks(3_000).map(<[u8]>::to_vec).collect::<Vec<_>>());
    }

    #[test]
    fn repeated_events_compress_into_matches() {
        let event = b"event: datastar-patch-elements\ndata: elements <ul id=\"todos\"><li>one</li><li>two</li></ul>\n\n".to_vec();
        let mut gzip = Gzip::default();
        gzip.write(&event);
        let first = gzip.flush().len();
        gzip.write(&event);
        let second = gzip.flush().len();
        // The second copy is one match into the first plus the block and flush framing.
        assert!(
            second < 15,
            "a repeated event took {second} bytes (first {first})"
        );
        assert!(second < first / 4);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_pieces_round_trip(pieces in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3_000),
            0..12,
        )) {
            round_trip(&pieces);
        }
    }
}
