//! What people see of a Redis exchange: the table's key and reply cells, the detail screen's arguments
//! and reply tree, one-line reply summaries and report lines, and the reply's status for statistics.
//!
//! Pure: builds text, draws nothing.

use std::fmt::Write as _;

use super::{
    exchange::{ExchangeKind, RedisExchange},
    resp::Frame,
};
use crate::protocol::{
    plugin::{Cells, DetailLine, PayloadView, Tone},
    text::{printable, value_text},
};

impl PayloadView for RedisExchange {
    /// The key (the first one, by the command's key positions) and the reply summary, red for an error.
    fn cells(&self) -> Cells {
        let mut subject = String::new();
        if let Some(key) = self.keys().first() {
            printable(&key.data, 40, &mut subject);
        }
        Cells {
            subject,
            outcome: reply_summary(self, 60),
            tone: if matches!(self.reply, Some(Frame::Error(_))) {
                Tone::Error
            } else {
                Tone::Plain
            },
        }
    }

    fn detail(&self, lines: &mut Vec<DetailLine>) {
        lines.push(DetailLine::heading("Arguments"));
        for (i, arg) in self.args.iter().enumerate() {
            lines.push(DetailLine::text(format!(
                "  {}: {}",
                i + 1,
                value_text(arg)
            )));
        }
        lines.push(DetailLine::text(""));
        lines.push(DetailLine::heading("Reply"));
        match &self.reply {
            Some(frame) => frame_lines(frame, 1, lines),
            None => lines.push(DetailLine::text(
                "  (no reply before the connection closed)",
            )),
        }
    }

    /// The command with its first arguments, and the reply summary.
    fn describe(&self, out: &mut String) {
        out.push_str(crate::protocol::plugin::Payload::operation(self));
        // The first three arguments share one budget of about 40 bytes, whatever precedes them.
        let mut args = String::new();
        for arg in self.args.iter().take(3) {
            args.push(' ');
            printable(&arg.data, 40, &mut args);
        }
        out.push_str(&args);
        let _ = write!(out, " -> {}", reply_summary(self, 80));
    }
}

fn frame_lines(frame: &Frame, indent: usize, out: &mut Vec<DetailLine>) {
    let pad = "  ".repeat(indent);
    let mut push = |text: String| out.push(DetailLine::text(format!("{pad}{text}")));
    match frame {
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            let kind = match frame {
                Frame::Set(_) => "set",
                Frame::Push(_) => "push",
                _ => "array",
            };
            push(format!("({kind} of {})", items.len()));
            for item in items {
                frame_lines(item, indent + 1, out);
            }
        }
        Frame::Map(pairs) => {
            push(format!("(map of {})", pairs.len()));
            for (k, v) in pairs {
                frame_lines(k, indent + 1, out);
                frame_lines(v, indent + 2, out);
            }
        }
        Frame::Bulk(b) => push(value_text(b)),
        Frame::Cut { kept, len } => {
            frame_lines(kept, indent, out);
            let shown = kept.elements().map_or_else(
                || {
                    if let Frame::Map(pairs) = &**kept {
                        pairs.len()
                    } else {
                        0
                    }
                },
                <[Frame]>::len,
            );
            out.push(DetailLine::text(format!(
                "{pad}… {shown} of {len} elements captured (--capture-bytes)"
            )));
        }
        other => push(frame_summary(other, 4096)),
    }
}

/// What stands for the reply of a command propagated to a replica (none comes).
const REPLICATED: &str = "(replicated)";

/// Longest error code taken from an error reply; a longer first word is not a code.
const MAX_ERROR_CODE: usize = 32;

/// `ok`, the error code of an error reply, or `(no reply)`.
///
/// Redis error replies start with an upper-case code word (`ERR`, `WRONGTYPE`, `NOAUTH`, `MOVED`, ...).
/// A reply whose first word does not look like one (empty, lower-case, too long, not UTF-8) is grouped
/// as `(error)`, so free-form messages cannot each become a group of their own.
pub fn status(x: &RedisExchange) -> &str {
    if x.kind == ExchangeKind::Replicated {
        return REPLICATED;
    }
    match &x.reply {
        None => "(no reply)",
        Some(Frame::Error(blob)) => {
            let word = blob.data.split(|&b| b == b' ').next().unwrap_or_default();
            let is_code = !word.is_empty()
                && word.len() <= MAX_ERROR_CODE
                && word.iter().all(|&b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            match std::str::from_utf8(word) {
                Ok(code) if is_code => code,
                _ => "(error)",
            }
        }
        Some(_) => "ok",
    }
}

/// One-line, human summary of the reply for tables, at most about `max` characters.
pub fn reply_summary(x: &RedisExchange, max: usize) -> String {
    if x.kind == ExchangeKind::Replicated {
        return REPLICATED.to_owned();
    }
    match &x.reply {
        None => "(no reply)".to_owned(),
        Some(frame) => frame_summary(frame, max),
    }
}

/// One-line, human summary of a frame, at most about `max` characters.
pub fn frame_summary(frame: &Frame, max: usize) -> String {
    let mut s = String::new();
    summarize(frame, &mut s, max);
    s
}

fn summarize(frame: &Frame, out: &mut String, max: usize) {
    if out.len() >= max {
        return;
    }
    match frame {
        Frame::Simple(b) => printable(&b.data, max, out),
        Frame::Error(b) => {
            out.push_str("(error) ");
            printable(&b.data, max, out);
        }
        Frame::Integer(i) => {
            let _ = write!(out, "(integer) {i}");
        }
        Frame::Bulk(b) => {
            out.push('"');
            printable(&b.data, max, out);
            out.push('"');
            if b.is_truncated() {
                let _ = write!(out, " ({} bytes)", b.len());
            }
        }
        Frame::Null => out.push_str("(nil)"),
        Frame::Double(d) => {
            let _ = write!(out, "(double) {d}");
        }
        Frame::Boolean(b) => {
            let _ = write!(out, "(boolean) {b}");
        }
        Frame::BigNumber(n) => {
            let _ = write!(out, "(big number) {n}");
        }
        Frame::Verbatim { text, .. } => printable(&text.data, max, out),
        Frame::Cut { kept, len } => {
            let _ = write!(out, "({len} elements, cut) ");
            summarize(kept, out, max);
        }
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            let label = match frame {
                Frame::Set(_) => "set",
                Frame::Push(_) => "push",
                _ => "array",
            };
            let _ = write!(out, "({label} of {}) ", items.len());
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if out.len() >= max {
                    out.push('…');
                    break;
                }
                summarize(item, out, max);
            }
        }
        Frame::Map(pairs) => {
            let _ = write!(out, "(map of {})", pairs.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{common::Blob, redis::ExchangeKind};

    #[test]
    fn a_description_cuts_the_arguments_to_one_budget_whatever_precedes_them() {
        let command = |args: Vec<Blob>| RedisExchange {
            kind: ExchangeKind::Command,
            command: "SET".into(),
            args: args.into(),
            reply: Some(Frame::Integer(1)),
        };
        let prefix = "#1 redis 22816/redis-cli client, a prefix longer than forty bytes ";
        let mut line = prefix.to_owned();
        command(vec![Blob::full("k"), Blob::full("v")]).describe(&mut line);
        assert_eq!(&line[prefix.len()..], "SET k v -> (integer) 1");
        let mut line = prefix.to_owned();
        command(vec![Blob::full("a".repeat(60)), Blob::full("v")]).describe(&mut line);
        let cut = format!("SET {}… … -> (integer) 1", "a".repeat(39));
        assert_eq!(&line[prefix.len()..], cut);
    }
}
