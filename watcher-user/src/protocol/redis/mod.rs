//! Redis (and every RESP server: Valkey, `KeyDB`, Kvrocks): RESP decoding (`resp`), request/reply pairing
//! (`session`), the decoded exchange with its key positions (`exchange`), and what the rest of watcher sees of it:
//! JSON (`json`), its secrets (`redact`), record filters and their options (`filter`), table cells, detail lines and report
//! lines (`view`), span attributes and metric labels (`telemetry`).
//!
//! Pure: no I/O.

pub mod exchange;
pub mod filter;
pub mod json;
pub mod redact;
pub mod resp;
pub mod session;
pub mod telemetry;
pub mod view;

pub use exchange::{ExchangeKind, RedisExchange};
pub use resp::{Blob, Frame};
pub use session::{Paired, RedisSession};

use super::{
    common::Flow,
    plugin::{Columns, Payload, Protocol, Recognition},
};

/// The `--fail-on` condition met by an error reply to a command.
const ERROR_CONDITION: &str = "redis-error";

/// The Redis protocol, as the registry lists it.
#[derive(Debug)]
pub struct Redis;

impl Protocol for Redis {
    const NAME: &'static str = "redis";
    const TITLE: &'static str = "Redis";
    const ABOUT: &'static str = "Redis and other RESP servers (Valkey, KeyDB, Kvrocks)";
    const COLUMNS: Columns = Columns {
        operation: "command",
        operation_short: "cmd",
        subject: "key",
        outcome: "reply",
    };
    const FILTER_FLAGS: &'static str = "--command/--key-prefix";
    const FAIL_ON: &'static [&'static str] = &[ERROR_CONDITION];

    type Exchange = RedisExchange;
    type Session = RedisSession;
    type Filter = filter::RedisFilter;

    /// A RESP command array is sure; an inline command line could as well be another protocol's.
    fn recognise(flow: Flow, data: &[u8]) -> Recognition {
        match flow {
            Flow::Request => resp::recognise_command(data),
            Flow::Response => Recognition::No,
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
            || found_in(&view::reply_summary(self, 256))
    }

    fn meets(&self, condition: &str) -> bool {
        condition == ERROR_CONDITION && self.kind == ExchangeKind::Command && self.is_error()
    }

    fn heap_bytes(&self) -> usize {
        RedisExchange::heap_bytes(self)
    }
}
