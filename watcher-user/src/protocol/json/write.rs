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
/// copied in runs.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    if is_clean(bytes) {
        out.extend_from_slice(bytes);
    } else {
        write_escaped(out, bytes);
    }
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
pub fn is_clean(bytes: &[u8]) -> bool {
    #[allow(
        clippy::needless_bitwise_bool,
        reason = "branch-free on purpose, see above"
    )]
    bytes
        .iter()
        .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

pub fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run_start = 0;
    for (block_index, block) in bytes.chunks(BLOCK).enumerate() {
        if is_clean(block) {
            continue;
        }
        for (j, &b) in block.iter().enumerate() {
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => b"",
                _ => continue,
            };
            let at = block_index * BLOCK + j;
            out.extend_from_slice(&bytes[run_start..at]);
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            } else {
                out.extend_from_slice(escape);
            }
            run_start = at + 1;
        }
    }
    out.extend_from_slice(&bytes[run_start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

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
