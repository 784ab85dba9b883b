//! The aggregator: records in, one [`GroupStats`] per group out, plus the orders groups are sorted in.
//! The definitions of every number are in the parent module's doc.
//!
//! Exact, not sketched: each group keeps every answered latency (8 bytes a record) and sorts them when
//! statistics are taken. `add` is on the hot path of `watcher stat` over large captures, so it must not
//! allocate once a record's group exists.

use std::{cmp::Ordering, collections::HashMap};

use serde::Serialize;

use super::keys::{GroupBy, SortBy};
use crate::record::Record;

/// Upper bounds (exclusive) of the histogram's buckets, in ns: two per decade from 1 µs to 10 s, at the
/// readable 1 and 3 of each decade. Bucket 0 counts latencies under 1 µs, bucket `i` those in
/// `[HISTOGRAM_BOUNDS_NS[i - 1], HISTOGRAM_BOUNDS_NS[i])`, and the last bucket those of 10 s or more; a
/// latency equal to a bound falls in the bucket that bound starts.
pub const HISTOGRAM_BOUNDS_NS: [u64; 15] = [
    1_000,
    3_000,
    10_000,
    30_000,
    100_000,
    300_000,
    1_000_000,
    3_000_000,
    10_000_000,
    30_000_000,
    100_000_000,
    300_000_000,
    1_000_000_000,
    3_000_000_000,
    10_000_000_000,
];

/// Buckets in [`GroupStats::histogram`]: one more than there are bounds (underflow and overflow included).
pub const HISTOGRAM_BUCKETS: usize = HISTOGRAM_BOUNDS_NS.len() + 1;

/// The histogram bucket a latency falls in (see [`HISTOGRAM_BOUNDS_NS`]).
pub fn histogram_bucket(latency_ns: u64) -> usize {
    HISTOGRAM_BOUNDS_NS.partition_point(|&bound| bound <= latency_ns)
}

/// Statistics of one group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupStats {
    /// Protocol of the group's records (`redis`, `http`).
    pub protocol: &'static str,
    /// The group key (see [`GroupBy`]).
    pub key: String,
    /// Records in the group.
    pub count: u64,
    /// Records whose response reports an error.
    pub errors: u64,
    /// `errors / count`, from 0 to 1.
    pub error_rate: f64,
    /// Records without a latency (no response came).
    pub unanswered: u64,
    /// Median latency (nearest rank) of the answered records.
    pub p50_ns: Option<u64>,
    /// 90th percentile latency (nearest rank).
    pub p90_ns: Option<u64>,
    /// 99th percentile latency (nearest rank).
    pub p99_ns: Option<u64>,
    /// Largest latency.
    pub max_ns: Option<u64>,
    /// Mean latency, rounded down.
    pub mean_ns: Option<u64>,
    /// Request bytes on the wire, summed.
    pub request_bytes: u64,
    /// Response bytes on the wire, summed.
    pub response_bytes: u64,
    /// Rows returned and changed, summed, for protocols that have rows (MySQL); `None` for the others.
    pub rows: Option<u64>,
    /// Answered records per latency bucket (see [`HISTOGRAM_BOUNDS_NS`]).
    pub histogram: [u64; HISTOGRAM_BUCKETS],
}

/// Groups records by one [`GroupBy`] and counts as they come.
#[derive(Clone, Debug)]
pub struct Aggregator {
    group_by: GroupBy,
    /// One map per protocol seen, searched linearly: there are only a few protocols, and keeping them
    /// apart lets a group be found by the key text alone, without building a `(protocol, key)` pair.
    protocols: Vec<ProtocolGroups>,
    /// Reused for every record's key, so finding an existing group allocates nothing.
    key: String,
}

#[derive(Clone, Debug)]
struct ProtocolGroups {
    protocol: &'static str,
    groups: HashMap<Box<str>, Group>,
}

#[derive(Clone, Debug, Default)]
struct Group {
    count: u64,
    errors: u64,
    request_bytes: u64,
    response_bytes: u64,
    rows: Option<u64>,
    latencies: Vec<u64>,
    histogram: [u64; HISTOGRAM_BUCKETS],
}

impl Aggregator {
    /// An empty aggregator grouping by `group_by`.
    pub fn new(group_by: GroupBy) -> Self {
        Self {
            group_by,
            protocols: Vec::new(),
            key: String::new(),
        }
    }

    /// What records are grouped by.
    pub fn group_by(&self) -> GroupBy {
        self.group_by
    }

    /// Number of groups so far.
    pub fn len(&self) -> usize {
        self.protocols.iter().map(|p| p.groups.len()).sum()
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts one record in its group.
    pub fn add(&mut self, record: &Record) {
        self.key.clear();
        self.group_by.write_key(record, &mut self.key);
        let groups = groups_of(&mut self.protocols, record.protocol());
        let key = self.key.as_str();
        if let Some(group) = groups.get_mut(key) {
            group.add(record);
            return;
        }
        let mut group = Group::default();
        group.add(record);
        groups.insert(key.into(), group);
    }

    /// Statistics of every group, in [`SortBy::default`] order. The aggregator stays usable: latencies
    /// are sorted in place, so taking statistics again after a few more records costs little.
    pub fn stats(&mut self) -> Vec<GroupStats> {
        let mut out = Vec::with_capacity(self.len());
        for p in &mut self.protocols {
            for (key, group) in &mut p.groups {
                out.push(group.stats(p.protocol, key));
            }
        }
        sort_groups(&mut out, SortBy::default());
        out
    }

    /// Statistics of every group, in [`SortBy::default`] order, consuming the aggregator.
    pub fn finish(mut self) -> Vec<GroupStats> {
        self.stats()
    }
}

/// The groups of `protocol`, added when it is new. A free function rather than a method, so the caller
/// can keep borrowing its key buffer while holding the map.
fn groups_of<'a>(
    protocols: &'a mut Vec<ProtocolGroups>,
    protocol: &'static str,
) -> &'a mut HashMap<Box<str>, Group> {
    let index = if let Some(index) = protocols.iter().position(|p| p.protocol == protocol) {
        index
    } else {
        protocols.push(ProtocolGroups {
            protocol,
            groups: HashMap::new(),
        });
        protocols.len() - 1
    };
    &mut protocols[index].groups
}

impl<'a> Extend<&'a Record> for Aggregator {
    fn extend<I: IntoIterator<Item = &'a Record>>(&mut self, records: I) {
        for record in records {
            self.add(record);
        }
    }
}

impl Group {
    fn add(&mut self, record: &Record) {
        self.count += 1;
        self.errors += u64::from(record.is_error());
        self.request_bytes = self.request_bytes.saturating_add(record.request_bytes);
        self.response_bytes = self.response_bytes.saturating_add(record.response_bytes);
        if let Some(rows) = record.exchange.payload().rows() {
            self.rows = Some(self.rows.unwrap_or(0).saturating_add(rows));
        }
        if let Some(ns) = record.latency_ns() {
            self.latencies.push(ns);
            self.histogram[histogram_bucket(ns)] += 1;
        }
    }

    fn stats(&mut self, protocol: &'static str, key: &str) -> GroupStats {
        self.latencies.sort_unstable();
        let sorted = &self.latencies;
        let mean_ns = (!sorted.is_empty()).then(|| {
            let sum: u128 = sorted.iter().map(|&ns| u128::from(ns)).sum();
            (sum / sorted.len() as u128) as u64
        });
        GroupStats {
            protocol,
            key: key.to_owned(),
            count: self.count,
            errors: self.errors,
            error_rate: self.errors as f64 / self.count as f64,
            unanswered: self.count - sorted.len() as u64,
            p50_ns: nearest_rank(sorted, 50),
            p90_ns: nearest_rank(sorted, 90),
            p99_ns: nearest_rank(sorted, 99),
            max_ns: sorted.last().copied(),
            mean_ns,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            rows: self.rows,
            histogram: self.histogram,
        }
    }
}

/// `sorted[ceil(percent/100 * n) - 1]`, with the rank computed in integers so no rounding error can
/// move it (in floating point `0.07 * 100` is `7.000000000000001`, whose ceiling is 8; for 50, 90 and 99
/// and every `n` up to 200 000 the two agree, checked when this was written).
fn nearest_rank(sorted: &[u64], percent: u64) -> Option<u64> {
    let rank = (percent * sorted.len() as u64).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

/// Sorts groups by `by`, breaking ties by key and then protocol (ascending).
pub fn sort_groups(groups: &mut [GroupStats], by: SortBy) {
    groups.sort_by(|a, b| {
        primary_order(a, b, by)
            .then_with(|| a.key.cmp(&b.key))
            .then_with(|| a.protocol.cmp(b.protocol))
    });
}

/// The order by `by` alone. Descending orders compare `b` to `a`; `None` latencies sort below every
/// value, so groups without answers come last.
fn primary_order(a: &GroupStats, b: &GroupStats, by: SortBy) -> Ordering {
    match by {
        SortBy::Count => b.count.cmp(&a.count),
        // Rates compared by cross-multiplying, exactly: b.errors/b.count vs a.errors/a.count.
        SortBy::Errors => (u128::from(b.errors) * u128::from(a.count))
            .cmp(&(u128::from(a.errors) * u128::from(b.count))),
        SortBy::P50 => b.p50_ns.cmp(&a.p50_ns),
        SortBy::P90 => b.p90_ns.cmp(&a.p90_ns),
        SortBy::P99 => b.p99_ns.cmp(&a.p99_ns),
        SortBy::Max => b.max_ns.cmp(&a.max_ns),
        SortBy::Bytes => total_bytes(b).cmp(&total_bytes(a)),
        SortBy::Key => Ordering::Equal,
    }
}

fn total_bytes(g: &GroupStats) -> u128 {
    u128::from(g.request_bytes) + u128::from(g.response_bytes)
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
