//! Record filters: the command-line ones (`--command`, `--key-prefix`, `--min-latency`, `--side`) and the
//! TUI's type-to-filter text match. One place decides what "matches" means for every view and export.

use crate::protocol::redis::ExchangeKind;
use crate::record::{Exchange, Record, Side};

/// Filters chosen on the command line, applied before records are stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Upper-cased command names; empty means all.
    pub commands: Vec<String>,
    /// Keep only commands with a key starting with this.
    pub key_prefix: Option<Vec<u8>>,
    /// Keep only exchanges at least this slow (ns). Pushes have no latency and are dropped by it.
    pub min_latency_ns: Option<u64>,
    /// Keep only this side.
    pub side: Option<Side>,
}

impl RecordFilter {
    /// Whether `record` passes every filter.
    pub fn matches(&self, record: &Record) -> bool {
        if self.side.is_some_and(|s| s != record.endpoint.side) {
            return false;
        }
        if let Some(min) = self.min_latency_ns {
            if record.latency_ns().is_none_or(|l| l < min) {
                return false;
            }
        }
        let Exchange::Redis(redis) = &record.exchange;
        if !self.commands.is_empty()
            && (redis.kind == ExchangeKind::Push || !self.commands.contains(&redis.command))
        {
            return false;
        }
        if let Some(prefix) = &self.key_prefix {
            if !redis.keys().iter().any(|k| k.data.starts_with(prefix)) {
                return false;
            }
        }
        true
    }
}

/// Case-insensitive match of `query` against what the table shows of a record: command, arguments,
/// reply summary, process, addresses. An empty query matches everything.
pub fn matches_text(record: &Record, query: &str) -> bool {
    if query.is_empty() {
        return true;
    }
    let needle = query.to_lowercase();
    let endpoint = &record.endpoint;
    let found_in = |s: &str| s.to_lowercase().contains(&needle);
    if found_in(&endpoint.comm) || found_in(&endpoint.pid.to_string()) {
        return true;
    }
    if found_in(endpoint.local_text()) || found_in(endpoint.remote_text()) {
        return true;
    }
    let Exchange::Redis(redis) = &record.exchange;
    found_in(&redis.command)
        || redis
            .args
            .iter()
            .any(|a| found_in(&String::from_utf8_lossy(&a.data)))
        || found_in(&redis.reply_summary(256))
}
