//! Bytes as text for people: the helpers every protocol's table cells, detail lines and report lines
//! share, so a value, a header or a body reads the same whichever protocol carried it.
//!
//! Pure functions of their arguments.

use std::fmt::Write as _;

use super::{common::Blob, plugin::DetailLine, redact::MASK};

/// Most body bytes shown on the detail screen; the rest is summarised.
const MAX_SHOWN: usize = 16 * 1024;

/// Short printable form of bytes: text as text, control and non-UTF-8 bytes escaped, at most about
/// `max` bytes (then `…`).
pub fn printable(bytes: &[u8], max: usize, out: &mut String) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if out.len() >= max {
                out.push('…');
                return;
            }
            if c.is_control() {
                let _ = write!(out, "{}", c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// What marks a value, header or body whose secrets were masked.
pub const MASKED: &str = "(secrets masked)";

/// A value as quoted text when printable, otherwise as a hex dump; with its true length when truncated.
/// A value that was a secret as a whole shows only its length.
pub fn value_text(b: &Blob) -> String {
    let mut s = String::new();
    if b.redacted() && b.data.iter().all(|&c| c == MASK) {
        let _ = write!(s, "(redacted, {} bytes)", b.len());
        return s;
    }
    if is_text(&b.data) {
        let _ = write!(s, "{:?}", String::from_utf8_lossy(&b.data));
    } else {
        s.push_str("hex ");
        for byte in b.data.iter().take(4096) {
            let _ = write!(s, "{byte:02x}");
        }
    }
    if b.is_truncated() {
        let _ = write!(s, " … ({} of {} bytes captured)", b.data.len(), b.len());
    }
    if b.redacted() {
        let _ = write!(s, " {MASKED}");
    }
    s
}

/// Whether `data` is UTF-8 without control characters other than line breaks and tabs.
pub fn is_text(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|t| {
        !t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    })
}

/// A body as indented detail lines: pretty JSON when it is complete JSON and `says_json`, text when
/// printable, otherwise a hex dump; then how much was captured and shown when that is not all of it.
pub fn body_lines(body: &Blob, says_json: bool, lines: &mut Vec<DetailLine>) {
    let shown = &body.data[..body.data.len().min(MAX_SHOWN)];
    let json = (says_json && !body.is_truncated())
        .then(|| serde_json::from_slice::<serde_json::Value>(&body.data).ok())
        .flatten()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    if let Some(pretty) = json {
        lines.extend(pretty.lines().map(|l| DetailLine::text(format!("  {l}"))));
    } else if is_text(shown) {
        let text = String::from_utf8_lossy(shown);
        lines.extend(
            text.lines()
                .map(|l| DetailLine::text(format!("  {}", l.trim_end_matches('\r')))),
        );
    } else {
        for (i, row) in shown.chunks(16).enumerate() {
            let mut line = format!("  {:06x}  ", i * 16);
            for byte in row {
                let _ = write!(line, "{byte:02x} ");
            }
            lines.push(DetailLine::text(line));
        }
    }
    if (body.data.len() as u64) < body.len() || shown.len() < body.data.len() {
        lines.push(DetailLine::text(format!(
            "  … ({} of {} bytes captured, {} shown)",
            body.data.len(),
            body.len(),
            shown.len()
        )));
    }
    if body.redacted() {
        lines.push(DetailLine::text(format!("  {MASKED}")));
    }
}
