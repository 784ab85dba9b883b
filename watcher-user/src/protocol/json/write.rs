//! Writing JSON values straight into a byte buffer: the primitives the record encoder (`ndjson::write`)
//! and every protocol's payload encoder (`protocol/<name>/json.rs`) are built from.
//!
//! Binary-safe values ("blobs") are a JSON string when complete and valid UTF-8, and otherwise an object
//! `{"text"|"base64": ..., "len": true_length, "truncated": bool}`, so no byte is ever lost or guessed; a
//! value whose secrets were masked is always an object, with `"redacted": true`.
//!
//! Not through serde: export touches every field of every record and is the busiest stage of a capture.
//! Keys are constants the callers write in one piece (`serde_json` escapes each key on every record),
//! strings are escaped sixteen bytes at a step, and a value is checked as UTF-8 by the same scan. The
//! tests read the output back with `serde_json`, so the encoder is held to a real JSON parser.

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
    // Two copies of known length, not one of a length known only at run time (a `memcpy` call).
    if v {
        out.extend_from_slice(b"true");
    } else {
        out.extend_from_slice(b"false");
    }
}

/// Writes `s` as a JSON string: quotes, backslashes and control characters escaped, everything else
/// copied a block at a step (see [`write_escaped`]).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s.as_bytes(), Utf8::Known);
    out.push(b'"');
}

/// A name of watcher's own (a protocol, a kind of exchange, a reply type, an HTTP version): constant
/// ASCII text with nothing to escape, copied between its quotes without the escaping scan. Three of
/// the strings of every Redis record are such names.
pub fn write_name(out: &mut Vec<u8>, name: &'static str) {
    debug_assert!(
        name.bytes().all(|b| b.is_ascii() && !needs_escape(b)),
        "{name:?} needs escaping"
    );
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.push(b'"');
}

/// Writes `bytes` as a JSON string if they are UTF-8, and otherwise writes nothing and says so.
/// Checking them on the way costs nothing while they are ASCII: the scan that looks for bytes to
/// escape sees the first byte that is not, and only from there on are they checked as UTF-8 (a
/// separate check first was a third of what encoding a 4 KiB value cost).
fn write_text(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let start = out.len();
    out.push(b'"');
    if !write_escaped(out, bytes, Utf8::Unchecked) {
        out.truncate(start);
        return false;
    }
    out.push(b'"');
    true
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
    write_value(out, &b.data, b.len(), b.redacted());
}

/// A value of true length `len` of which `data` was kept, its secrets masked when `redacted` (see the
/// module doc).
pub fn write_value(out: &mut Vec<u8>, data: &[u8], len: u64, redacted: bool) {
    let truncated = (data.len() as u64) < len;
    let whole = !truncated && !redacted;
    let start = out.len();
    if !whole {
        out.extend_from_slice(b"{\"text\":");
    }
    if write_text(out, data) {
        if whole {
            return;
        }
    } else {
        out.truncate(start);
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

/// Bytes looked at at once: four [`LANE`]s, one bit each in a [`Marks`] word.
const BLOCK: usize = 64;
/// Bytes looked at at once where less than a [`BLOCK`] is left: an SSE2 register's worth.
const LANE: usize = 16;

#[inline]
#[allow(
    clippy::needless_bitwise_bool,
    reason = "branch-free, so that scans over it vectorise"
)]
fn needs_escape(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// What [`write_escaped`] knows of its bytes.
#[derive(Clone, Copy, PartialEq)]
enum Utf8 {
    /// They come from a `str`.
    Known,
    /// They are to be checked, and nothing is written unless they are UTF-8.
    Unchecked,
}

/// Copies `bytes` with the bytes that need it escaped, and says whether they were UTF-8 (always, for
/// [`Utf8::Known`]).
///
/// Each step finds at once ([`marks`]) where in a [`BLOCK`] (a [`LANE`] near the end) the bytes to
/// escape are. A clean block is copied whole; a block with escapes is written by [`escape_block`].
/// A record of a 4 KiB value with a backslash every 64 bytes, as redis-benchmark writes, took 890 ns
/// to encode when runs were found byte by byte, 660 with 16-byte blocks that started again after each
/// escape, and 550 with the runs between escapes copied one by one (`cargo bench --bench pipeline --
/// "4 KiB"`). Copying whole blocks (in [`escape_block`]) and finding a tail's escapes a lane at a time
/// (in [`tail_escapes`]) then took 13% off that record, 13% off an HTTP record of a 630-byte HTML page
/// and 9% off a small Redis record (7 alternating runs, medians).
///
/// The first byte beyond ASCII starts the UTF-8 check of the rest; everything before it was ASCII,
/// so the block it is in starts a character. ASCII, the common case, is thus checked by the scan.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8], mut utf8: Utf8) -> bool {
    out.reserve(bytes.len() + bytes.len() / 8 + BLOCK);
    let mut at = 0;
    while let Some(block) = bytes[at..].first_chunk::<BLOCK>() {
        let marks = marks(block);
        if marks.beyond_ascii && utf8 == Utf8::Unchecked {
            if std::str::from_utf8(&bytes[at..]).is_err() {
                return false;
            }
            utf8 = Utf8::Known;
        }
        if marks.escape == 0 {
            out.extend_from_slice(block);
        } else {
            escape_block(out, block, marks.escape);
        }
        at += BLOCK;
    }
    // The last few bytes (all of a short string): their escapes found a lane at a time, then copied
    // in runs between escapes.
    let tail = &bytes[at..];
    if utf8 == Utf8::Unchecked && !tail.is_ascii() && std::str::from_utf8(tail).is_err() {
        return false;
    }
    let mut escape = tail_escapes(bytes, at);
    let mut run_start = 0;
    while escape != 0 {
        let at = escape.trailing_zeros() as usize;
        out.extend_from_slice(&tail[run_start..at]);
        write_escape(out, tail[at]);
        run_start = at + 1;
        escape &= escape - 1;
    }
    out.extend_from_slice(&tail[run_start..]);
    true
}

/// Where in `bytes[at..]`, shorter than a [`BLOCK`], the bytes to escape are (bit `i` for byte
/// `at + i`). Whole lanes are looked at where they fit. The bytes after the last whole lane are looked
/// at in the lane that ends where `bytes` ends, which overlaps bytes already seen (their marks are
/// dropped); a string shorter than a lane is looked at in words ([`short_escapes`]). Header names
/// and values, most of the strings of an HTTP record, are such tails.
fn tail_escapes(bytes: &[u8], at: usize) -> u64 {
    let len = bytes.len() - at;
    let mut escape = 0;
    let mut seen = 0;
    while let Some(lane) = bytes[at + seen..].first_chunk::<LANE>() {
        escape |= lane_marks(lane).escape << seen;
        seen += LANE;
    }
    if seen < len {
        let first = at + seen;
        let rest = if let Some(last) = bytes.last_chunk::<LANE>() {
            lane_marks(last).escape >> (first - (bytes.len() - LANE))
        } else {
            short_escapes(&bytes[first..])
        };
        escape |= rest << seen;
    }
    escape
}

/// Where the bytes to escape are in `bytes`, shorter than a [`LANE`] (bit `i` for byte `i`), found in
/// words read straight out of it: two that overlap, or one put together from its first, middle and
/// last bytes (a byte read twice is flagged the same both times). Copying the string into a padded
/// lane first made the lane's load wait on the copy's narrower stores, a stall that was half of what
/// escaping a short string cost (command names, keys and small values: most strings of a record).
fn short_escapes(bytes: &[u8]) -> u64 {
    let flags = |w: u64| u64::from(top_bits(escape_flags(w)));
    let len = bytes.len();
    if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        return flags(u64::from_le_bytes(*first)) | flags(u64::from_le_bytes(*last)) << (len - 8);
    }
    let w = if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        u64::from(u32::from_le_bytes(*first))
            | u64::from(u32::from_le_bytes(*last)) << (8 * (len - 4))
    } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
        u64::from(first)
            | u64::from(bytes[len / 2]) << (8 * (len / 2))
            | u64::from(last) << (8 * (len - 1))
    } else {
        return 0;
    };
    // The bytes past the end are zeros, which would read as control characters.
    flags(w) & ((1 << len) - 1)
}

/// The longest escape of a byte: `\u00XX`.
const LONGEST_ESCAPE: usize = 6;

/// Writes `block` with the bytes marked in `escape` escaped.
///
/// The runs between escapes are short in text (a newline ends every line of an HTML page or a log):
/// copied one by one, each was a call to `memcpy` with a length known only at run time. Here each run
/// is copied as a whole block's worth of bytes (a fixed length: a few vector moves), of which only the
/// run is kept, since the next write starts where the run ends. The block is first placed in a buffer
/// of twice its size, so that those copies never read beyond it.
#[allow(unsafe_code)]
fn escape_block(out: &mut Vec<u8>, block: &[u8; BLOCK], mut escape: u64) {
    /// The most a block can take, every byte escaped, with room for the last whole-block copy.
    const ROOM: usize = BLOCK * LONGEST_ESCAPE + BLOCK;
    let mut padded = [0u8; 2 * BLOCK];
    padded[..BLOCK].copy_from_slice(block);
    out.reserve(ROOM);
    let start = out.len();
    let room = &mut out.spare_capacity_mut()[..ROOM];
    let mut len = 0;
    let mut run_start = 0;
    while escape != 0 {
        let at = escape.trailing_zeros() as usize;
        room[len..][..BLOCK].write_copy_of_slice(&padded[run_start..][..BLOCK]);
        len += at - run_start;
        let (escaped, escaped_len) = escape_of(block[at]);
        room[len..][..LONGEST_ESCAPE].write_copy_of_slice(&escaped);
        len += escaped_len;
        run_start = at + 1;
        escape &= escape - 1;
    }
    room[len..][..BLOCK].write_copy_of_slice(&padded[run_start..][..BLOCK]);
    len += BLOCK - run_start;
    // SAFETY: the first `len` bytes after `start` were written above (each write covered at least
    // the bytes it kept), and `len <= ROOM`, which was reserved.
    unsafe { out.set_len(start + len) };
}

/// Where in a block the bytes to escape are (bit `i` for byte `i`), and whether any byte is beyond
/// ASCII.
#[derive(Debug, PartialEq)]
struct Marks {
    escape: u64,
    beyond_ascii: bool,
}

/// [`Marks`] of a whole block, from those of its lanes.
#[inline]
fn marks(block: &[u8; BLOCK]) -> Marks {
    let mut all = Marks {
        escape: 0,
        beyond_ascii: false,
    };
    for (index, lane) in block.as_chunks::<LANE>().0.iter().enumerate() {
        let marks = lane_marks(lane);
        all.escape |= marks.escape << (LANE * index);
        all.beyond_ascii |= marks.beyond_ascii;
    }
    all
}

/// [`Marks`] from one compare per kind of byte over the whole lane.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
#[allow(unsafe_code)]
fn lane_marks(lane: &[u8; LANE]) -> Marks {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: these intrinsics only need SSE2, which this code is compiled for (the `cfg` above; it
    // is part of x86_64 itself); the load reads the lane's 16 bytes and allows any alignment.
    let (flagged, beyond_ascii) = unsafe {
        let v = _mm_loadu_si128(lane.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Compared as signed bytes, those below 0x20 are the control characters and every byte
        // beyond ASCII (negative), which the top bits tell apart.
        let below_space = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
        let flagged = _mm_or_si128(_mm_or_si128(quote, backslash), below_space);
        (_mm_movemask_epi8(flagged), _mm_movemask_epi8(v))
    };
    Marks {
        escape: u64::from((flagged & !beyond_ascii) as u16),
        beyond_ascii: beyond_ascii != 0,
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn lane_marks(lane: &[u8; LANE]) -> Marks {
    portable_lane_marks(lane)
}

/// [`Marks`] from the eight bytes of a word at a time, on machines without SSE2.
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    allow(dead_code, reason = "tested against SSE2's")
)]
fn portable_lane_marks(lane: &[u8; LANE]) -> Marks {
    let (low, high) = lane.split_at(LANE / 2);
    let (low, high) = (word(low), word(high));
    Marks {
        escape: u64::from(top_bits(escape_flags(low)) | top_bits(escape_flags(high)) << 8),
        beyond_ascii: (low | high) & TOPS != 0,
    }
}

/// The top bit of each byte of `w` as one bit each (byte `i` to bit `i`): the multiplication moves
/// each byte's bit to the top byte without carries.
fn top_bits(w: u64) -> u32 {
    ((w >> 7 & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

/// The top bit of each byte of a word.
const TOPS: u64 = 0x8080_8080_8080_8080;

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
    let (escaped, len) = escape_of(b);
    out.extend_from_slice(&escaped[..len]);
}

/// The escape sequence of `b`, in the first bytes of the array, and its length.
fn escape_of(b: u8) -> ([u8; LONGEST_ESCAPE], usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            let (high, low) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]);
            return ([b'\\', b'u', b'0', b'0', high, low], LONGEST_ESCAPE);
        }
    };
    ([b'\\', short, 0, 0, 0, 0], 2)
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

    #[test]
    fn short_escapes_mark_exactly_the_bytes_to_escape_at_every_length_below_a_lane() {
        const ROW: &[u8; LANE] = b"a\x1f b\"c\\d\x7f~\xffz09{}";
        for len in 0..LANE {
            for b in 0..=u8::MAX {
                for position in 0..len {
                    let mut bytes = *ROW;
                    bytes[position] = b;
                    let bytes = &bytes[..len];
                    let want = bytes
                        .iter()
                        .enumerate()
                        .fold(0, |marks, (i, &x)| marks | u64::from(needs_escape(x)) << i);
                    assert_eq!(short_escapes(bytes), want, "{bytes:?}");
                }
            }
        }
        assert_eq!(short_escapes(b""), 0);
    }

    #[test]
    fn marks_find_exactly_the_bytes_to_escape_and_beyond_ascii() {
        const ROW: &[u8; LANE] = b"\x1f !#[]\x7f~az09AZ{}";
        for b in 0..=u8::MAX {
            for position in 0..BLOCK {
                let mut block = [0; BLOCK];
                for lane in block.chunks_exact_mut(LANE) {
                    lane.copy_from_slice(ROW);
                }
                block[position] = b;
                let expected = |bytes: &[u8]| Marks {
                    escape: (0..bytes.len())
                        .filter(|&i| needs_escape(bytes[i]))
                        .map(|i| 1 << i)
                        .sum(),
                    beyond_ascii: !bytes.is_ascii(),
                };
                assert_eq!(marks(&block), expected(&block), "{b:#x} at {position}");
                let lane = block[position / LANE * LANE..][..LANE].try_into().unwrap();
                assert_eq!(lane_marks(lane), expected(lane), "{b:#x} at {position}");
                assert_eq!(
                    portable_lane_marks(lane),
                    expected(lane),
                    "{b:#x} at {position}"
                );
            }
        }
    }

    #[test]
    fn integers_are_written_as_their_decimal_text() {
        // Every length: both sides of each power of ten, and the largest numbers.
        let mut values = vec![0, u64::MAX, u64::MAX - 1];
        for power in 0..20 {
            let p = 10_u64.pow(power);
            values.extend([p - 1, p, p + 1, p.saturating_mul(5)]);
        }
        for v in values {
            let mut out = b"x".to_vec();
            write_u64(&mut out, v);
            assert_eq!(out, format!("x{v}").into_bytes());
        }
    }

    /// Wherever a byte to escape falls, at every length (whole blocks, whole lanes, the last lane that
    /// overlaps bytes already seen, a string shorter than a lane), and when every byte needs escaping
    /// (the most a block can grow), a JSON parser reads back exactly the string.
    #[test]
    fn escapes_at_every_position_and_length_read_back() {
        for len in 0..=200 {
            let mut strings = vec![
                "\u{1}".repeat(len),
                "\"\\\n".repeat(len / 3),
                "a".repeat(len),
            ];
            for at in 0..len {
                let mut s = "a".repeat(len);
                s.replace_range(at..=at, "\"");
                strings.push(s);
            }
            for s in strings {
                let mut out = b"x".to_vec();
                write_str(&mut out, &s);
                let back: String = serde_json::from_slice(&out[1..]).unwrap();
                assert_eq!(back, s);
            }
        }
    }

    proptest::proptest! {
        /// Whatever the number, and whatever the buffer held before it, its decimal text is appended.
        #[test]
        fn any_integer_reads_back(v in proptest::prelude::any::<u64>(), before in 0_usize..40) {
            let mut out = vec![b'x'; before];
            write_u64(&mut out, v);
            let text = v.to_string();
            proptest::prop_assert_eq!(&out[before..], text.as_bytes());
        }

        /// Escaping works on blocks; whatever the string and wherever its special bytes fall relative
        /// to the block boundaries, a JSON parser reads back exactly the string.
        #[test]
        fn strings_read_back_exactly(
            s in proptest::string::string_regex("[a-z\"\\\\\n\t\u{1}\u{1f}é€]{0,300}").unwrap()
        ) {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }

        /// A value is checked as UTF-8 while it is escaped, from its first byte beyond ASCII on;
        /// wherever that byte and an invalid one fall, the value reads back as exactly its bytes: a
        /// string when it is UTF-8, base64 otherwise, and a valid value in either case.
        #[test]
        fn values_read_back_exactly(
            ascii in proptest::string::string_regex("[a-z\"\\\n]{0,160}").unwrap(),
            rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..160),
            utf8_rest in proptest::string::string_regex("[a-zé€\"]{0,160}").unwrap(),
            valid in proptest::prelude::any::<bool>(),
            truncated in proptest::prelude::any::<bool>(),
        ) {
            let mut data = ascii.into_bytes();
            data.extend_from_slice(if valid { utf8_rest.as_bytes() } else { &rest });
            let len = data.len() as u64 + u64::from(truncated);
            let mut out = b"[".to_vec();
            write_value(&mut out, &data, len, false);
            out.push(b']');
            let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let text = std::str::from_utf8(&data).ok();
            let back = &back[0];
            match (text, truncated) {
                (Some(text), false) => proptest::prop_assert_eq!(back.as_str(), Some(text)),
                (Some(text), true) => proptest::prop_assert_eq!(back["text"].as_str(), Some(text)),
                (None, _) => {
                    let encoded = back["base64"].as_str().unwrap();
                    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
                    proptest::prop_assert_eq!(decoded, data);
                }
            }
        }
    }
}
