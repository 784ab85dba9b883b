//! Writing JSON values straight into a byte buffer: the primitives the record encoder (`ndjson::write`)
//! and every protocol's payload encoder (`protocol/<name>/json.rs`) are built from.
//!
//! Binary-safe values ("blobs") are a JSON string when complete and valid UTF-8, and otherwise an object
//! `{"text"|"base64": ..., "len": true_length, "truncated": bool}`, so no byte is ever lost or guessed; a
//! value whose secrets were masked is always an object, with `"redacted": true`.
//!
//! Not through serde: export touches every field of every record and is the busiest stage of a capture.
//! Keys are constants the callers write in one piece (`serde_json` escapes each key on every record) and
//! strings are escaped in runs. The tests read the output back with `serde_json`, so the encoder is held
//! to a real JSON parser.

use base64::Engine as _;

use crate::protocol::common::Blob;

/// A JSON array of `items`, each written by `write_item`.
pub fn write_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write_item: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_item(out, item);
    }
    out.push(b']');
}

/// A two-element JSON array (a map entry, a header field).
pub fn write_pair(
    out: &mut Vec<u8>,
    first: impl FnOnce(&mut Vec<u8>),
    second: impl FnOnce(&mut Vec<u8>),
) {
    out.push(b'[');
    first(out);
    out.push(b',');
    second(out);
    out.push(b']');
}

/// An unsigned integer.
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// An unsigned integer or `null`.
pub fn write_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => write_u64(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// `true` or `false`.
pub fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Writes `s` as a JSON string: quotes, backslashes and control characters escaped, everything else
/// copied in runs (a clean string in one).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s.as_bytes());
    out.push(b'"');
}

/// A string or `null`.
pub fn write_opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(v) => write_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// A binary-safe value (see the module doc).
pub fn write_blob(out: &mut Vec<u8>, b: &Blob) {
    write_value(out, &b.data, b.len, b.redacted);
}

/// A value of true length `len` of which `data` was kept, its secrets masked when `redacted` (see the
/// module doc).
pub fn write_value(out: &mut Vec<u8>, data: &[u8], len: u64, redacted: bool) {
    let truncated = (data.len() as u64) < len;
    let text = std::str::from_utf8(data).ok();
    if let (Some(text), false, false) = (text, truncated, redacted) {
        return write_str(out, text);
    }
    if let Some(text) = text {
        out.extend_from_slice(b"{\"text\":");
        write_str(out, text);
    } else {
        out.extend_from_slice(b"{\"base64\":\"");
        // Base64 needs no escaping.
        let encoded = base64::engine::general_purpose::STANDARD.encode(data);
        out.extend_from_slice(encoded.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"len\":");
    write_u64(out, len);
    out.extend_from_slice(b",\"truncated\":");
    write_bool(out, truncated);
    if redacted {
        out.extend_from_slice(b",\"redacted\":true");
    }
    out.push(b'}');
}

/// Bytes checked at a time when a string does need escaping: values such as stored JSON have a quote
/// every few dozen bytes, and checking a block at once keeps the clean stretches between them cheap.
const BLOCK: usize = 16;

/// Whether no byte of `bytes` needs escaping. Deliberately not short-circuiting, so that it compiles
/// to a vectorised scan.
#[inline]
fn is_clean(bytes: &[u8]) -> bool {
    #[allow(
        clippy::needless_bitwise_bool,
        reason = "branch-free on purpose, see above"
    )]
    bytes.iter().fold(true, |ok, &b| ok & !needs_escape(b))
}

#[inline]
#[allow(
    clippy::needless_bitwise_bool,
    reason = "branch-free, so that scans over it vectorise"
)]
fn needs_escape(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// Copies `bytes` with the bytes that need it escaped. Clean blocks are skipped whole; in a block that
/// is not, the positions to escape come from [`escape_flags`] at once, so the clean bytes between them
/// cost no branch each (what byte-by-byte matching cost before: a 4 KiB value with a backslash every
/// 75 bytes, as redis-benchmark writes, took twice as long).
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + bytes.len() / 4);
    let mut run_start = 0;
    let mut escape_at = |at: usize, out: &mut Vec<u8>| {
        out.extend_from_slice(&bytes[run_start..at]);
        write_escape(out, bytes[at]);
        run_start = at + 1;
    };
    let mut blocks = bytes.chunks_exact(BLOCK);
    for (index, block) in (&mut blocks).enumerate() {
        if is_clean(block) {
            continue;
        }
        let (low, high) = block.split_at(BLOCK / 2);
        let mut flags =
            u128::from(escape_flags(word(low))) | u128::from(escape_flags(word(high))) << 64;
        while flags != 0 {
            escape_at(index * BLOCK + flags.trailing_zeros() as usize / 8, out);
            flags &= flags - 1;
        }
    }
    let tail_start = bytes.len() - blocks.remainder().len();
    for (j, &b) in blocks.remainder().iter().enumerate() {
        if needs_escape(b) {
            escape_at(tail_start + j, out);
        }
    }
    out.extend_from_slice(&bytes[run_start..]);
}

/// Eight bytes as one little-endian word (byte `i` in bits `8i..8i+8`).
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// The top bit of each byte of `w` that needs escaping (a control character, a quote or a backslash),
/// computed for all eight at once. Each test adds within a byte's low seven bits only, so no carry
/// crosses into the next byte and every flag is exact.
fn escape_flags(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    const LOWS: u64 = !TOPS;
    // A byte is at least 0x20 when its top bit is set or its low seven bits reach 0x20.
    let control = !(((w & LOWS) + ONES * (0x80 - 0x20)) | w) & TOPS;
    // A byte equals `c` when `w ^ c` is zero there: neither its top bit nor any low bit set.
    let equal = |c: u8| {
        let x = w ^ (ONES * u64::from(c));
        !(((x & LOWS) + LOWS) | x) & TOPS
    };
    control | equal(b'"') | equal(b'\\')
}

/// The escape sequence of one byte that needs one.
fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            let (high, low) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]);
            return out.extend_from_slice(&[b'\\', b'u', b'0', b'0', high, low]);
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_flags_mark_exactly_the_bytes_that_need_escaping() {
        for b in 0..=u8::MAX {
            for position in 0..8 {
                // The byte among neighbours on both sides of every threshold the flags test against.
                let mut bytes = [0x1f_u8, 0x20, b'"' - 1, b'"' + 1, 0x5b, 0x5d, 0x7f, 0xff];
                bytes[position] = b;
                let flags = escape_flags(u64::from_le_bytes(bytes));
                for (i, &x) in bytes.iter().enumerate() {
                    assert_eq!(
                        flags >> (8 * i + 7) & 1 == 1,
                        needs_escape(x),
                        "{x:#x} at {i}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// Escaping works on blocks; whatever the string and wherever its special bytes fall relative
        /// to the block boundaries, a JSON parser reads back exactly the string.
        #[test]
        fn strings_read_back_exactly(
            s in proptest::string::string_regex("[a-z\"\\\\\n\t\u{1}\u{1f}é€]{0,70}").unwrap()
        ) {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }
}
