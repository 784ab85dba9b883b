//! Statistics over records: group them by a key (command, endpoint, status, connection, remote peer or
//! process) and report per group the count, error rate, latency percentiles, bytes and a latency
//! histogram. `watcher stat` prints them (`table`, or one JSON document through [`Report`]) and a TUI tab
//! shows them.
//!
//! What the numbers mean, so they can be recomputed independently from `watcher`'s NDJSON:
//! - A group is one protocol plus one key text: a Redis `GET` and an HTTP `GET` are different groups.
//!   The `endpoint` and `status` keys are each protocol's own (`Payload::write_route`,
//!   `Payload::write_status`).
//! - `count` is every record of the group; `errors` those whose response reports an error by their
//!   protocol's rule (a Redis error reply, an HTTP 4xx or 5xx); `error_rate` is `errors / count`.
//! - A record is *answered* when it has a latency (`latency_ns` is not null: a response came, or it is
//!   a push, whose latency is the time its bytes took to arrive); `unanswered` counts the others.
//! - Latency percentiles use the **nearest-rank** definition over the answered records of the group:
//!   with their latencies sorted ascending as `sorted[0..n]`, percentile `p` is
//!   `sorted[ceil(p/100 * n) - 1]`. `max_ns` is `sorted[n - 1]`; `mean_ns` is the sum divided by `n`,
//!   rounded down. All of them are `None` when no record of the group was answered.
//! - The histogram counts answered records in fixed log-scale buckets ([`HISTOGRAM_BOUNDS_NS`]).
//!
//! Pure: no I/O, no clocks, no terminal; callers feed records in and print what comes out.

mod aggregate;
mod keys;
pub mod table;

pub use aggregate::{
    histogram_bucket, sort_groups, Aggregator, GroupStats, HISTOGRAM_BOUNDS_NS, HISTOGRAM_BUCKETS,
};
pub use keys::{GroupBy, ParseError, SortBy};
pub use table::{render_table, Report};

#[cfg(test)]
pub(crate) use crate::test_records;

#[cfg(test)]
mod tests;
