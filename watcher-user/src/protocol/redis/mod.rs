//! Redis: RESP decoding (`resp`), request/reply pairing (`session`), and the decoded exchange type with
//! the helpers the filters and views need (command keys, reply summaries).
//!
//! Pure: no I/O.

pub mod resp;
pub mod session;

use std::fmt::Write as _;

pub use resp::{Blob, Frame};
pub use session::{Paired, RedisSession};

pub use crate::protocol::{Flow, SessionStats};

/// Whether an exchange answers a command or is pushed by the server unasked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeKind {
    /// A command and its reply.
    Command,
    /// A pub/sub message, RESP3 push or MONITOR line, with no request.
    Push,
}

/// A decoded Redis exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisExchange {
    /// Command or push.
    pub kind: ExchangeKind,
    /// Upper-cased command name (empty for pushes).
    pub command: String,
    /// Arguments after the command name.
    pub args: Vec<Blob>,
    /// The reply (or the pushed value); `None` if none came before the connection closed.
    pub reply: Option<Frame>,
}

impl RedisExchange {
    /// Whether the reply is an error.
    pub fn is_error(&self) -> bool {
        matches!(self.reply, Some(Frame::Error(_)))
    }

    /// The key arguments of the command, per the command's documented key positions.
    pub fn keys(&self) -> Vec<&Blob> {
        if self.kind == ExchangeKind::Push {
            return Vec::new();
        }
        let args = &self.args;
        match self.command.as_str() {
            // Commands without keys.
            "PING" | "ECHO" | "AUTH" | "HELLO" | "SELECT" | "INFO" | "CONFIG" | "CLIENT"
            | "MULTI" | "EXEC" | "DISCARD" | "QUIT" | "DBSIZE" | "FLUSHDB" | "FLUSHALL"
            | "SCAN" | "KEYS" | "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE"
            | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" | "PUBLISH" | "SPUBLISH" | "PUBSUB" | "MONITOR"
            | "COMMAND" | "SCRIPT" | "FUNCTION" | "SLOWLOG" | "LATENCY" | "MEMORY" | "TIME"
            | "LASTSAVE" | "SAVE" | "BGSAVE" | "BGREWRITEAOF" | "SHUTDOWN" | "ROLE"
            | "REPLICAOF" | "SLAVEOF" | "ACL" | "CLUSTER" | "READONLY" | "READWRITE" | "WAIT"
            | "UNWATCH" | "RESET" | "SWAPDB" | "DEBUG" | "MODULE" => Vec::new(),
            // Every argument is a key.
            "DEL" | "UNLINK" | "EXISTS" | "TOUCH" | "MGET" | "WATCH" | "SINTER" | "SUNION"
            | "SDIFF" | "PFCOUNT" => args.iter().collect(),
            // Key, value pairs.
            "MSET" | "MSETNX" => args.iter().step_by(2).collect(),
            // Keys, then a timeout.
            "BLPOP" | "BRPOP" | "BZPOPMIN" | "BZPOPMAX" => {
                args.iter().take(args.len().saturating_sub(1)).collect()
            }
            // A key count, then that many keys.
            "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO" => {
                let count = args
                    .get(1)
                    .and_then(|b| std::str::from_utf8(&b.data).ok())
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(0);
                args.iter().skip(2).take(count).collect()
            }
            // Most commands take one key first.
            _ => args.first().into_iter().collect(),
        }
    }

    /// One-line, human summary of the reply for tables.
    pub fn reply_summary(&self, max: usize) -> String {
        match &self.reply {
            None => "(no reply)".to_owned(),
            Some(frame) => frame_summary(frame, max),
        }
    }
}

/// One-line, human summary of a frame, at most about `max` characters.
pub fn frame_summary(frame: &Frame, max: usize) -> String {
    let mut s = String::new();
    summarize(frame, &mut s, max);
    s
}

/// Short printable form of bytes: text as text, control and non-UTF-8 bytes escaped.
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
                let _ = write!(out, " ({} bytes)", b.len);
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
