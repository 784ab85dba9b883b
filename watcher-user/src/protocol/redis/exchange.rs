//! The decoded Redis exchange: a command with its arguments and reply (or a pushed message), the
//! command's key positions and a one-line reply summary.

use compact_str::CompactString;

use super::resp::Frame;
use crate::protocol::common::{compact_bytes, small_vec_bytes, Blob};

/// A command's arguments. Two live inside the exchange itself (most commands take one key, or a key
/// and a value): such a record costs no allocation for its arguments, and the threads that store and
/// finally drop it touch no second block of memory.
pub type Args = smallvec::SmallVec<[Blob; 2]>;

/// Whether an exchange answers a command or is pushed by the server unasked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeKind {
    /// A command and its reply.
    Command,
    /// A pub/sub message, RESP3 push or MONITOR line, with no request.
    Push,
    /// A command a primary propagates to a replica over a replication link: no reply comes.
    Replicated,
}

/// A decoded Redis exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisExchange {
    /// Command or push.
    pub kind: ExchangeKind,
    /// Upper-cased command name (empty for pushes).
    pub command: CompactString,
    /// Arguments after the command name.
    pub args: Args,
    /// The reply (or the pushed value); `None` if none came before the connection closed.
    pub reply: Option<Frame>,
}

impl RedisExchange {
    /// Heap bytes it holds (what `--max-memory` counts).
    pub fn heap_bytes(&self) -> usize {
        compact_bytes(&self.command)
            + small_vec_bytes(&self.args)
            + self.args.iter().map(Blob::heap_bytes).sum::<usize>()
            + self.reply.as_ref().map_or(0, Frame::heap_bytes)
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
}
