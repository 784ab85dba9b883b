//! Record filters: the command-line ones (common: `--side`, `--min-latency`, `--errors`; each protocol's own, such as
//! Redis's `--command` or HTTP's `--status`, from its folder through the registry) and the TUI's
//! type-to-filter text match. One place decides what "matches" means for every view and export.

use crate::protocol::registry::ProtocolFilters;
use crate::record::{Record, Side};

/// Filters chosen on the command line, applied before records are stored. Which protocols are kept is
/// not a filter: protocols that are not wanted are not decoded at all (`PipelineConfig::protocols`).
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    /// Keep only exchanges at least this slow (ns). Pushes have no latency and are dropped by it.
    pub min_latency_ns: Option<u64>,
    /// Keep only this side.
    pub side: Option<Side>,
    /// Keep only errors (each protocol's error rule).
    pub errors_only: bool,
    /// Each protocol's own filters.
    pub protocols: ProtocolFilters,
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
        if self.errors_only && !record.exchange.payload().is_error() {
            return false;
        }
        self.protocols.matches(&record.exchange)
    }
}

/// Case-insensitive match of `query` against what the table shows of a record: command or method,
/// arguments or target, reply summary or status, process, addresses. An empty query matches everything.
pub fn matches_text(record: &Record, query: &str) -> bool {
    if query.is_empty() {
        return true;
    }
    let needle = query.to_lowercase();
    let endpoint = &record.endpoint;
    let mut found_in = |s: &str| s.to_lowercase().contains(&needle);
    if found_in(&endpoint.comm) || found_in(&endpoint.pid.to_string()) {
        return true;
    }
    if found_in(endpoint.local_text()) || found_in(endpoint.remote_text()) {
        return true;
    }
    record.exchange.payload().contains_text(&mut found_in)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        protocol::redis::{Blob, Frame},
        test_records::redis,
    };

    #[test]
    fn errors_keeps_only_what_its_protocol_calls_an_error() {
        let filter = RecordFilter {
            errors_only: true,
            ..RecordFilter::default()
        };
        let error = redis("INCR", Some(Frame::Error(Blob::full(b"WRONGTYPE no"))));
        let fine = redis("GET", Some(Frame::Bulk(Blob::full(b"v"))));
        assert!(filter.matches(&error));
        assert!(!filter.matches(&fine));
        assert!(RecordFilter::default().matches(&fine));
    }
}
