//! Redis (and every RESP server: Valkey, `KeyDB`, Kvrocks): RESP decoding (`resp`), request/reply pairing
//! (`session`), the decoded exchange with its key positions, and what the rest of watcher sees of it:
//! JSON (`json`), record filters and their options (`filter`), table cells, detail lines and report
//! lines (`view`).
//!
//! Pure: no I/O.

pub mod filter;
pub mod json;
pub mod resp;
pub mod session;
pub mod view;

pub use resp::{Blob, Frame};
pub use session::{Paired, RedisSession};

use super::{
    common::Flow,
    json::read::{FieldResult, Json},
    plugin::{Cells, Columns, DetailLine, FailOn, FilterError, Payload, Protocol},
};

/// The `--fail-on` condition met by an error reply to a command.
const ERROR_CONDITION: &str = "redis-error";

/// The Redis protocol, as the registry lists it.
#[derive(Debug)]
pub struct Redis;

impl Protocol for Redis {
    const NAME: &'static str = "redis";
    const ABOUT: &'static str = "Redis and other RESP servers (Valkey, KeyDB, Kvrocks)";
    const COLUMNS: Columns = Columns {
        operation: "command",
        operation_short: "cmd",
        subject: "key",
        outcome: "reply",
    };
    const FILTER_FLAGS: &'static str = "--command/--key-prefix";
    const FAIL_ON: &'static [FailOn] = &[FailOn {
        name: ERROR_CONDITION,
    }];

    type Exchange = RedisExchange;
    type Session = RedisSession;
    type FilterArgs = filter::RedisFilterArgs;
    type Filter = filter::RedisFilter;

    fn starts_message(flow: Flow, data: &[u8]) -> bool {
        flow == Flow::Request && resp::starts_command(data)
    }

    fn session(keep_bytes: usize, in_sync: bool) -> RedisSession {
        RedisSession::new(keep_bytes, in_sync)
    }

    fn filter(args: &filter::RedisFilterArgs) -> Result<filter::RedisFilter, FilterError> {
        Ok(filter::RedisFilter::from_args(args))
    }

    fn read_json(value: Json<'_>) -> FieldResult<RedisExchange> {
        json::read(value)
    }
}

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
            Some(frame) => view::frame_summary(frame, max),
        }
    }
}

impl Payload for RedisExchange {
    fn operation(&self) -> &str {
        if self.kind == ExchangeKind::Push || self.command.is_empty() {
            "(push)"
        } else {
            &self.command
        }
    }

    fn is_error(&self) -> bool {
        matches!(self.reply, Some(Frame::Error(_)))
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        json::write(self, out);
    }

    fn cells(&self) -> Cells {
        view::cells(self)
    }

    fn detail(&self, lines: &mut Vec<DetailLine>) {
        view::detail(self, lines);
    }

    fn write_route(&self, out: &mut String) {
        out.push_str(self.operation());
    }

    fn write_status(&self, out: &mut String) {
        out.push_str(view::status(self));
    }

    fn contains_text(&self, found_in: &mut dyn FnMut(&str) -> bool) -> bool {
        found_in(&self.command)
            || self
                .args
                .iter()
                .any(|a| found_in(&String::from_utf8_lossy(&a.data)))
            || found_in(&self.reply_summary(256))
    }

    fn describe(&self, out: &mut String) {
        view::describe(self, out);
    }

    fn meets(&self, condition: &str) -> bool {
        condition == ERROR_CONDITION && self.kind == ExchangeKind::Command && self.is_error()
    }
}
