//! Writing lines: the encoder's byte-level helpers. Multi-line values are split on CR, LF and
//! CRLF (each piece its own line); single-line values lose their line breaks.

/// Writes `prefix` + line + `\n` for every line of `value`, splitting on `\r\n`, `\r` and `\n`.
///
/// Inlined so that each caller's prefix is a constant the compiler writes with a couple of
/// stores instead of a `memcpy` call per line.
#[inline(always)]
pub(super) fn push_data_lines(out: &mut Vec<u8>, prefix: &[u8], value: &str) {
    let bytes = value.as_bytes();
    let mut start = 0;
    while let Some(offset) = find_line_break(&bytes[start..]) {
        let end = start + offset;
        push_line(out, prefix, &bytes[start..end]);
        start = end + 1;
        if bytes[end] == b'\r' && bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
    }
    // The last piece is written even when empty, so a trailing line break survives the trip.
    push_line(out, prefix, &bytes[start..]);
}

/// The index of the first CR or LF in `bytes`.
///
/// This is the encoder's hot loop, so it tests eight bytes at once in a `u64` (16 per round):
/// XOR with a byte repeated eight times turns exactly the bytes equal to it into zero, and
/// [`zero_bytes`] marks zero bytes. A false mark can only appear above a real one, so the
/// lowest mark is the first line break.
pub(super) fn find_line_break(bytes: &[u8]) -> Option<usize> {
    const ROUND: usize = 16;
    let mut rounds = bytes.chunks_exact(ROUND);
    let mut offset = 0;
    for round in &mut rounds {
        let (low, high) = round.split_at(ROUND / 2);
        let (low, high) = (line_break_marks(low), line_break_marks(high));
        if low | high != 0 {
            let bit = if low != 0 {
                low.trailing_zeros()
            } else {
                64 + high.trailing_zeros()
            };
            return Some(offset + bit as usize / 8);
        }
        offset += ROUND;
    }
    rounds
        .remainder()
        .iter()
        .position(|&byte| byte == b'\n' || byte == b'\r')
        .map(|index| offset + index)
}

const BYTE_ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const BYTE_HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The top bit of each byte of the little-endian word `eight` that is CR or LF (plus, possibly,
/// false marks above the first one).
#[inline]
fn line_break_marks(eight: &[u8]) -> u64 {
    let word = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
    zero_bytes(word ^ (BYTE_ONES * u64::from(b'\n')))
        | zero_bytes(word ^ (BYTE_ONES * u64::from(b'\r')))
}

/// Sets the top bit of each zero byte of `word`, exactly for every byte below the lowest
/// zero byte and that byte itself. (A byte above it can be marked falsely by a borrow.)
#[inline]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(BYTE_ONES) & !word & BYTE_HIGHS
}

#[inline]
fn push_line(out: &mut Vec<u8>, prefix: &[u8], line: &[u8]) {
    out.extend_from_slice(prefix);
    out.extend_from_slice(line);
    out.push(b'\n');
}

/// Writes a value that must stay on one line: CR, LF and NUL become spaces.
pub(super) fn push_single_line(out: &mut Vec<u8>, value: &str) {
    let start = out.len();
    out.extend_from_slice(value.as_bytes());
    for byte in &mut out[start..] {
        // NUL too: a browser ignores an event id that contains one.
        if matches!(*byte, b'\r' | b'\n' | b'\0') {
            *byte = b' ';
        }
    }
}

/// Writes `n` in decimal, without going through a `String`.
pub(crate) fn push_u128(out: &mut Vec<u8>, mut n: u128) {
    let mut digits = [0u8; 40];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_break_search_matches_a_byte_by_byte_search() {
        // Bytes next to CR and LF in value, and bytes with the top bit set, around every
        // position of both rounds of the word-at-a-time search and its remainder.
        for len in 0..48 {
            for at in 0..len {
                for (filler, needle) in [(b'a', b'\n'), (0x0b, b'\r'), (0x8d, b'\n'), (0x00, b'\r')]
                {
                    let mut bytes = vec![filler; len];
                    bytes[at] = needle;
                    if at + 1 < len {
                        bytes[at + 1] = if needle == b'\n' { b'\r' } else { b'\n' };
                    }
                    assert_eq!(find_line_break(&bytes), Some(at), "{bytes:?}");
                }
            }
            assert_eq!(find_line_break(&vec![0x8a; len]), None);
            assert_eq!(find_line_break(&vec![0x0e; len]), None);
        }
    }
}
