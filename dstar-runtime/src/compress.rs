//! Compressed event streams: `Accept-Encoding` negotiation and per-stream encoders that flush
//! after every frame.
//!
//! An event stream is many small writes over a long time, so an encoder here must give up each
//! write's bytes at once (a decoder can decode all of it from what it received so far), and it
//! lives as long as the stream, so its memory is what a stream costs. Both encodings are set up
//! for that:
//!
//! - `gzip`: dstar's own encoder (`deflate`): an 8 KiB window with hash chains and DEFLATE's
//!   fixed codes, 40 KB of tables allocated with the first byte (41 KB more heap per stream than
//!   identity, measured). Matches reach into the previous events, which a stream's patches
//!   mostly repeat.
//! - `br`: the `brotli` crate at quality 1 with an 8 KiB window (`lgwin` 13), 55 KB more heap
//!   per stream. Qualities 0 and 1 keep no hash table between writes, so a flushed write only
//!   matches inside itself; quality 2 and up match across writes but keep a hash table of at
//!   least 2^16 four-byte buckets (256 KB) per stream.
//!
//! When a client accepts both equally, gzip is chosen: within the memory bound it compresses a
//! stream of re-rendered pages three times better than brotli (28x against 9x on a todo list;
//! BENCHMARKS.md has the measurement).

mod deflate;

use std::fmt;

use brotli::enc::StandardAlloc;
use brotli::enc::encode::{
    BrotliEncoderDestroyInstance, BrotliEncoderOperation, BrotliEncoderParameter,
    BrotliEncoderStateStruct,
};
use brotli::interface::{InputPair, InputReferenceMut, PredictionModeContextMap, StaticCommand};
use bytes::Bytes;
use http::HeaderMap;
use http::header::ACCEPT_ENCODING;

use self::deflate::Gzip;

/// The brotli quality streams are compressed at (0-11): 1 is the best that keeps memory small.
const BROTLI_QUALITY: u32 = 1;
/// The brotli window, as a power of two.
const BROTLI_LGWIN: u32 = 13;

/// A content coding dstar can compress a stream with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `br`, Brotli (RFC 7932).
    Brotli,
}

/// The codings in the server's order of preference, for clients that accept several equally.
const PREFERENCE: [Encoding; 2] = [Encoding::Gzip, Encoding::Brotli];

impl Encoding {
    /// The coding's token, as `Content-Encoding` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
        }
    }

    fn matches(self, token: &str) -> bool {
        token.eq_ignore_ascii_case(self.as_str())
            || (self == Encoding::Gzip && token.eq_ignore_ascii_case("x-gzip"))
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Chooses a coding from a request's `Accept-Encoding` headers (RFC 9110, 12.5.3): the
/// accepted coding with the highest weight (`q`), the server's preference on a tie; `*`
/// stands for codings not named; `q=0` refuses. `None` (send the body as it is) when the
/// header is missing, accepts neither coding, or weighs `identity` above the best of them.
/// Entries with a malformed weight are ignored.
pub fn negotiate(headers: &HeaderMap) -> Option<Encoding> {
    let mut named: [Option<u16>; 2] = [None; 2];
    let mut any: Option<u16> = None;
    let mut identity: Option<u16> = None;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for entry in value.split(',') {
            let mut parts = entry.split(';');
            let token = parts.next().unwrap_or("").trim();
            if token.is_empty() {
                continue;
            }
            let Some(weight) = weight(parts) else {
                continue;
            };
            if token == "*" {
                any = Some(weight);
            } else if token.eq_ignore_ascii_case("identity") {
                identity = Some(weight);
            } else if let Some(i) = PREFERENCE.iter().position(|e| e.matches(token)) {
                named[i] = Some(weight);
            }
        }
    }
    let mut best: Option<(Encoding, u16)> = None;
    for (i, encoding) in PREFERENCE.into_iter().enumerate() {
        let weight = named[i].or(any).unwrap_or(0);
        if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
            best = Some((encoding, weight));
        }
    }
    let (encoding, weight) = best?;
    // `identity` is always acceptable; it wins only when weighed (by name or by `*`) strictly
    // above the best coding.
    let identity = identity.or(any).unwrap_or(0);
    (weight >= identity).then_some(encoding)
}

/// The weight in an entry's parameters, in thousandths (`q=0.5` is 500); 1000 without one,
/// `None` when malformed.
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut weight = 1000;
    for param in params {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        weight = parse_qvalue(value.trim())?;
    }
    Some(weight)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn parse_qvalue(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, digit| n * 10 + u16::from(digit - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// One response body's encoder: bytes go in with [`write`](Encoder::write), and each
/// [`flush`](Encoder::flush) hands out what a decoder needs to decode all of them.
pub struct Encoder {
    inner: Inner,
}

enum Inner {
    Gzip(Gzip),
    Brotli(Box<BrotliEncoderStateStruct<StandardAlloc>>, Vec<u8>),
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("encoding", &self.encoding())
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// A new stream in `encoding`. Allocates little until the first write.
    pub fn new(encoding: Encoding) -> Self {
        let inner = match encoding {
            Encoding::Gzip => Inner::Gzip(Gzip::default()),
            Encoding::Brotli => {
                let mut state = Box::new(BrotliEncoderStateStruct::new(StandardAlloc::default()));
                state.set_parameter(BrotliEncoderParameter::BROTLI_PARAM_QUALITY, BROTLI_QUALITY);
                state.set_parameter(BrotliEncoderParameter::BROTLI_PARAM_LGWIN, BROTLI_LGWIN);
                Inner::Brotli(state, Vec::new())
            }
        };
        Encoder { inner }
    }

    /// The coding this encoder writes.
    pub fn encoding(&self) -> Encoding {
        match self.inner {
            Inner::Gzip(_) => Encoding::Gzip,
            Inner::Brotli(..) => Encoding::Brotli,
        }
    }

    /// Compresses `data`; its bytes come out of the next [`flush`](Encoder::flush).
    pub fn write(&mut self, data: &[u8]) {
        match &mut self.inner {
            Inner::Gzip(gzip) => gzip.write(data),
            Inner::Brotli(state, out) => {
                brotli_run(
                    state,
                    BrotliEncoderOperation::BROTLI_OPERATION_PROCESS,
                    data,
                    out,
                );
            }
        }
    }

    /// Everything written since the last flush, compressed and flushed: a decoder that gets
    /// these bytes can decode every byte written so far.
    pub fn flush(&mut self) -> Bytes {
        match &mut self.inner {
            Inner::Gzip(gzip) => gzip.flush(),
            Inner::Brotli(state, out) => {
                brotli_run(
                    state,
                    BrotliEncoderOperation::BROTLI_OPERATION_FLUSH,
                    &[],
                    out,
                );
                Bytes::from(std::mem::take(out))
            }
        }
    }

    /// Ends the stream: what is left and the coding's end marker (gzip's trailer, brotli's
    /// last meta-block). Write nothing after it.
    pub fn finish(&mut self) -> Bytes {
        match &mut self.inner {
            Inner::Gzip(gzip) => gzip.finish(),
            Inner::Brotli(state, out) => {
                brotli_run(
                    state,
                    BrotliEncoderOperation::BROTLI_OPERATION_FINISH,
                    &[],
                    out,
                );
                Bytes::from(std::mem::take(out))
            }
        }
    }

    /// `data` as a whole compressed body.
    pub fn compress(encoding: Encoding, data: &[u8]) -> Bytes {
        let mut encoder = Encoder::new(encoding);
        encoder.write(data);
        encoder.finish()
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        if let Inner::Brotli(state, _) = &mut self.inner {
            BrotliEncoderDestroyInstance(state);
        }
    }
}

/// Runs the brotli encoder on `input` with `op` until it has taken all of it and, for a flush
/// or finish, given out everything, appending the output to `out`.
fn brotli_run(
    state: &mut BrotliEncoderStateStruct<StandardAlloc>,
    op: BrotliEncoderOperation,
    input: &[u8],
    out: &mut Vec<u8>,
) {
    let mut available_in = input.len();
    let mut in_offset = 0;
    let mut nop = |_: &mut PredictionModeContextMap<InputReferenceMut<'_>>,
                   _: &mut [StaticCommand],
                   _: InputPair<'_>,
                   _: &mut StandardAlloc| ();
    loop {
        let mut out_offset = out.len();
        // Room for the input and the block framing; grown below when the encoder wants more.
        out.resize(out_offset + available_in + 64, 0);
        let mut available_out = out.len() - out_offset;
        let ok = state.compress_stream(
            op,
            &mut available_in,
            input,
            &mut in_offset,
            &mut available_out,
            out,
            &mut out_offset,
            &mut None,
            &mut nop,
        );
        out.truncate(out_offset);
        // The encoder fails only on misuse (input after finishing), which this module never does.
        debug_assert!(ok, "brotli refused an operation");
        let done = match op {
            BrotliEncoderOperation::BROTLI_OPERATION_FINISH => state.is_finished(),
            _ => available_in == 0 && !state.has_more_output(),
        };
        if done || !ok {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn pick(accept: &[&str]) -> Option<Encoding> {
        let mut headers = HeaderMap::new();
        for value in accept {
            headers.append(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        }
        negotiate(&headers)
    }

    #[test]
    fn negotiation_follows_weights_wildcards_and_identity() {
        use Encoding::{Brotli, Gzip};
        assert_eq!(pick(&[]), None);
        assert_eq!(pick(&[""]), None);
        assert_eq!(pick(&["gzip, deflate"]), Some(Gzip));
        assert_eq!(pick(&["gzip, deflate, br, zstd"]), Some(Gzip));
        assert_eq!(pick(&["br"]), Some(Brotli));
        assert_eq!(pick(&["BR;Q=1"]), Some(Brotli));
        assert_eq!(pick(&["gzip;q=0.5, br;q=0.8"]), Some(Brotli));
        assert_eq!(pick(&["gzip;q=0.9", "br;q=0.8"]), Some(Gzip));
        assert_eq!(pick(&["x-gzip"]), Some(Gzip));
        assert_eq!(pick(&["gzip;q=0"]), None);
        assert_eq!(pick(&["gzip;q=0.000, br;q=0"]), None);
        assert_eq!(pick(&["*"]), Some(Gzip));
        assert_eq!(pick(&["*;q=0.5, gzip;q=0"]), Some(Brotli));
        assert_eq!(pick(&["*;q=0"]), None);
        assert_eq!(pick(&["deflate, compress"]), None);
        assert_eq!(pick(&["identity"]), None);
        // identity weighed above every coding we have: send as is.
        assert_eq!(pick(&["gzip;q=0.5, identity"]), None);
        assert_eq!(pick(&["gzip;q=0.5, identity;q=0.4"]), Some(Gzip));
        assert_eq!(pick(&["gzip, identity;q=0"]), Some(Gzip));
        // Malformed weights are ignored, not guessed at.
        assert_eq!(pick(&["gzip;q=2"]), None);
        assert_eq!(pick(&["gzip;q=0.5x, br"]), Some(Brotli));
        assert_eq!(pick(&["gzip;q=1.5"]), None);
        assert_eq!(pick(&["gzip;q"]), None);
        assert_eq!(pick(&["gzip ; q=0.7 , br ; q=0.6"]), Some(Gzip));
    }

    #[test]
    fn brotli_flushes_decode_as_they_come_and_the_end_closes_the_stream() {
        let mut encoder = Encoder::new(Encoding::Brotli);
        let mut decoder = brotli::DecompressorWriter::new(Vec::new(), BROTLI_OUT);
        let mut expected = Vec::new();
        for i in 0..50 {
            let event =
                format!("event: datastar-patch-elements\ndata: elements <p id=\"n\">{i}</p>\n\n");
            encoder.write(event.as_bytes());
            expected.extend_from_slice(event.as_bytes());
            let piece = encoder.flush();
            assert!(!piece.is_empty());
            std::io::Write::write_all(&mut decoder, &piece).unwrap();
            std::io::Write::flush(&mut decoder).unwrap();
            assert_eq!(decoder.get_ref(), &expected);
        }
        std::io::Write::write_all(&mut decoder, &encoder.finish()).unwrap();
        assert_eq!(decoder.into_inner().unwrap(), expected);
        let whole = Encoder::compress(Encoding::Gzip, &expected);
        let mut gunzip = flate2::read::GzDecoder::new(&whole[..]);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut gunzip, &mut out).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn pieces_of_large_events_decode_after_each_flush() {
        for encoding in [Encoding::Brotli, Encoding::Gzip] {
            let mut encoder = Encoder::new(encoding);
            let mut decoder = Decoder::new(encoding);
            let mut expected = Vec::new();
            for i in 0..40 {
                let head = format!("event: datastar-patch-elements\nid: {i}\n");
                let body: String = (0..20)
                    .map(|j| {
                        format!(
                            "data: elements <li id=\"todo-{j}\" class=\"{}\">part {j}</li>\n",
                            (i + j) % 3
                        )
                    })
                    .chain(std::iter::once(format!(
                        "data: elements <p>{i} updates</p>\n\n"
                    )))
                    .collect::<String>()
                    .repeat(if i % 7 == 0 { 30 } else { 3 });
                encoder.write(head.as_bytes());
                encoder.write(body.as_bytes());
                expected.extend_from_slice(head.as_bytes());
                expected.extend_from_slice(body.as_bytes());
                decoder.feed(&encoder.flush());
                assert_eq!(
                    decoder.decoded(),
                    expected.len(),
                    "{encoding} after event {i}"
                );
            }
        }
    }

    /// `brotli::DecompressorWriter` hands out no more output once its input is used up, so
    /// its buffer must hold a whole flushed frame.
    const BROTLI_OUT: usize = 1 << 20;

    /// An independent decoder of either coding.
    enum Decoder {
        Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
        Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
    }

    impl Decoder {
        fn new(encoding: Encoding) -> Self {
            match encoding {
                Encoding::Gzip => {
                    Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new())))
                }
                Encoding::Brotli => Decoder::Brotli(Box::new(brotli::DecompressorWriter::new(
                    Vec::new(),
                    BROTLI_OUT,
                ))),
            }
        }

        fn feed(&mut self, bytes: &[u8]) {
            use std::io::Write;
            match self {
                Decoder::Gzip(d) => {
                    d.write_all(bytes).unwrap();
                    d.flush().unwrap();
                }
                Decoder::Brotli(d) => {
                    d.write_all(bytes).unwrap();
                    d.flush().unwrap();
                }
            }
        }

        fn decoded(&self) -> usize {
            match self {
                Decoder::Gzip(d) => d.get_ref().len(),
                Decoder::Brotli(d) => d.get_ref().len(),
            }
        }
    }

    #[test]
    fn qvalues_parse_to_thousandths() {
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.125"), Some(125));
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("1.001"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
        assert_eq!(parse_qvalue(".5"), None);
        assert_eq!(parse_qvalue(""), None);
    }
}
