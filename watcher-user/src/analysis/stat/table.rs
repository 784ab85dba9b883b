//! Output of statistics: an aligned plain-text table for terminals, and the [`Report`] document that
//! `--json` serializes.
//!
//! Builds text and serializable values only; writing them anywhere is the caller's job. No terminal
//! styling, so the table can be piped into files and other tools.

use std::fmt::Write as _;

use serde::Serialize;

use super::{
    aggregate::{GroupStats, HISTOGRAM_BOUNDS_NS},
    keys::GroupBy,
};
use crate::format::latency;

/// Space between columns.
const GAP: &str = "  ";

/// Columns after protocol and key, all right-aligned.
const NUMERIC_HEADERS: [&str; 8] = [
    "count",
    "err%",
    "p50",
    "p90",
    "p99",
    "max",
    "req bytes",
    "rsp bytes",
];

/// Renders `groups`, in their order, as an aligned table with a header line; every line ends in `\n`.
/// The key column's header is the group-by name. With `limit`, at most that many groups are shown and a
/// last line says how many were left out.
pub fn render_table(groups: &[GroupStats], group_by: GroupBy, limit: Option<usize>) -> String {
    let shown = &groups[..limit.map_or(groups.len(), |l| l.min(groups.len()))];
    // A rows column only when a shown group's protocol has rows.
    let with_rows = shown.iter().any(|g| g.rows.is_some());
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(shown.len() + 1);
    let mut header = vec!["protocol".to_owned(), group_by.name().to_owned()];
    header.extend(NUMERIC_HEADERS.iter().map(|&h| h.to_owned()));
    if with_rows {
        header.push("rows".to_owned());
    }
    rows.push(header);
    rows.extend(shown.iter().map(|g| cells(g, with_rows)));

    // Widths in characters, not bytes: `µs` and `→` are one column each.
    let mut widths = vec![0; rows[0].len()];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        push_line(row, &widths, &mut out);
    }
    let hidden = groups.len() - shown.len();
    if hidden > 0 {
        let plural = if hidden == 1 { "" } else { "s" };
        // Writing to a `String` cannot fail.
        let _ = writeln!(out, "… {hidden} more group{plural}");
    }
    out
}

fn cells(g: &GroupStats, with_rows: bool) -> Vec<String> {
    let mut cells = vec![
        g.protocol.to_owned(),
        printable(&g.key),
        g.count.to_string(),
        format!("{:.1}%", g.error_rate * 100.0),
        latency(g.p50_ns),
        latency(g.p90_ns),
        latency(g.p99_ns),
        latency(g.max_ns),
        g.request_bytes.to_string(),
        g.response_bytes.to_string(),
    ];
    if with_rows {
        cells.push(g.rows.map_or_else(|| "-".to_owned(), |r| r.to_string()));
    }
    cells
}

/// `text` with control characters escaped: keys come from the traffic (command names, paths, process
/// names), and an escape sequence in one must not reach the terminal.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The first two columns (protocol, key) are text and left-aligned; the rest are numbers, right-aligned,
/// which also means no line ends in padding.
fn push_line(row: &[String], widths: &[usize], out: &mut String) {
    for (i, (cell, &width)) in row.iter().zip(widths).enumerate() {
        if i > 0 {
            out.push_str(GAP);
        }
        let pad = width - cell.chars().count();
        if i < 2 {
            out.push_str(cell);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(cell);
        }
    }
    out.push('\n');
}

/// The `--json` document: `{"schema":1,"group_by":"command","histogram_bounds_ns":[...],"groups":[...]}`.
#[derive(Clone, Debug, Serialize)]
pub struct Report<'a> {
    /// Version of this document's shape; bumped on incompatible changes.
    pub schema: u32,
    /// What the groups are keyed by.
    pub group_by: GroupBy,
    /// Bounds of the histogram buckets, so the document describes itself (see [`HISTOGRAM_BOUNDS_NS`]).
    pub histogram_bounds_ns: &'static [u64],
    /// The groups, in the order the caller sorted them.
    pub groups: &'a [GroupStats],
}

impl<'a> Report<'a> {
    /// The current [`Report::schema`].
    pub const SCHEMA: u32 = 1;

    /// A report of `groups`, keyed by `group_by`.
    pub fn new(group_by: GroupBy, groups: &'a [GroupStats]) -> Self {
        Self {
            schema: Self::SCHEMA,
            group_by,
            histogram_bounds_ns: &HISTOGRAM_BOUNDS_NS,
            groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{render_table, Report};
    use crate::analysis::stat::{
        test_records::{error, http, mysql, ok, redis, with_latency},
        Aggregator, GroupBy, HISTOGRAM_BUCKETS,
    };

    fn sample() -> Vec<crate::analysis::stat::GroupStats> {
        let mut agg = Aggregator::new(GroupBy::Command);
        agg.add(&with_latency(redis("GET", Some(ok())), Some(250_000)));
        agg.add(&with_latency(redis("GET", Some(ok())), Some(1_500_000)));
        agg.add(&with_latency(
            redis("GET", Some(error("ERR x"))),
            Some(2_000_000_000),
        ));
        agg.add(&with_latency(
            http("POST", "/users", Some(201)),
            Some(12_000),
        ));
        agg.finish()
    }

    #[test]
    fn table_aligns_text_left_and_numbers_right() {
        let table = render_table(&sample(), GroupBy::Command, None);
        let expected = "\
protocol  command  count   err%     p50    p90    p99    max  req bytes  rsp bytes
redis     GET          3  33.3%  1.50ms  2.00s  2.00s  2.00s         60         15
http      POST         1   0.0%    12µs   12µs   12µs   12µs        100         40
";
        assert_eq!(table, expected, "\n{table}");
    }

    #[test]
    fn a_rows_column_appears_with_sql_groups_and_sums_returned_and_changed_rows() {
        use crate::protocol::mysql::{exchange::OkInfo, exchange::ResultSet, Outcome};
        let mut agg = Aggregator::new(GroupBy::Endpoint);
        let select = |n| {
            Outcome::Rows(Box::new(ResultSet {
                rows: n,
                ..ResultSet::default()
            }))
        };
        let update = |n| {
            Outcome::Ok(OkInfo {
                affected_rows: n,
                ..OkInfo::default()
            })
        };
        agg.add(&mysql(
            "SELECT * FROM t WHERE id IN (1, 2)",
            Some(vec![select(2)]),
        ));
        agg.add(&mysql(
            "SELECT * FROM t WHERE id IN (3)",
            Some(vec![select(1)]),
        ));
        agg.add(&mysql("UPDATE t SET a = 1", Some(vec![update(7)])));
        agg.add(&redis("GET", Some(ok())));
        let groups = agg.finish();
        let table = render_table(&groups, GroupBy::Endpoint, None);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].ends_with("rsp bytes  rows"), "{table}");
        let select = lines
            .iter()
            .find(|l| l.contains("IN (...)"))
            .expect("one group");
        assert!(select.ends_with("  3"), "{table}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("UPDATE") && l.ends_with("  7")),
            "{table}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("redis") && l.ends_with("  -")),
            "{table}"
        );
        assert!(!render_table(&sample(), GroupBy::Command, None).contains("rows"));
    }

    #[test]
    fn limit_cuts_rows_and_says_how_many_are_hidden() {
        let table = render_table(&sample(), GroupBy::Endpoint, Some(1));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("protocol  endpoint  count"), "{table}");
        assert!(lines[1].starts_with("redis     GET"), "{table}");
        assert_eq!(lines[2], "… 1 more group");
        let all = render_table(&sample(), GroupBy::Command, Some(5));
        assert_eq!(
            all.lines().count(),
            3,
            "a limit above the count hides nothing"
        );
    }

    #[test]
    fn control_characters_in_keys_are_escaped() {
        let mut agg = Aggregator::new(GroupBy::Command);
        agg.add(&redis("GET\u{1b}[2J\n", Some(ok())));
        let table = render_table(&agg.finish(), GroupBy::Command, None);
        assert!(table.contains("GET\\u{1b}[2J\\n "), "{table}");
        assert!(!table.contains('\u{1b}'), "{table}");
    }

    #[test]
    fn no_groups_is_a_header_alone() {
        let table = render_table(&[], GroupBy::Status, None);
        assert_eq!(
            table,
            "protocol  status  count  err%  p50  p90  p99  max  req bytes  rsp bytes\n"
        );
    }

    #[test]
    fn report_json_has_schema_group_by_bounds_and_groups() {
        let groups = sample();
        let json = serde_json::to_string(&Report::new(GroupBy::Command, &groups)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["group_by"], "command");
        assert_eq!(v["histogram_bounds_ns"].as_array().unwrap().len(), 15);
        let g = &v["groups"][0];
        assert_eq!(g["protocol"], "redis");
        assert_eq!(g["key"], "GET");
        assert_eq!(g["count"], 3);
        assert_eq!(g["errors"], 1);
        assert!((g["error_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(g["unanswered"], 0);
        assert_eq!(g["p50_ns"], 1_500_000);
        assert_eq!(g["p90_ns"], 2_000_000_000);
        assert_eq!(g["p99_ns"], 2_000_000_000);
        assert_eq!(g["max_ns"], 2_000_000_000);
        assert_eq!(g["mean_ns"], 667_250_000);
        assert_eq!(g["request_bytes"], 60);
        assert_eq!(g["response_bytes"], 15);
        let histogram = g["histogram"].as_array().unwrap();
        assert_eq!(histogram.len(), HISTOGRAM_BUCKETS);
        assert_eq!(
            histogram.iter().map(|n| n.as_u64().unwrap()).sum::<u64>(),
            3
        );
        let mut fields: Vec<&str> = g.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "count",
                "error_rate",
                "errors",
                "histogram",
                "key",
                "max_ns",
                "mean_ns",
                "p50_ns",
                "p90_ns",
                "p99_ns",
                "protocol",
                "request_bytes",
                "response_bytes",
                "rows",
                "unanswered"
            ]
        );
    }

    #[test]
    fn report_json_writes_missing_latencies_as_null() {
        let mut agg = Aggregator::new(GroupBy::Status);
        agg.add(&with_latency(http("GET", "/", None), None));
        let groups = agg.finish();
        let v = serde_json::to_value(Report::new(GroupBy::Status, &groups)).unwrap();
        let g = &v["groups"][0];
        assert_eq!(g["key"], "(no response)");
        assert_eq!(g["unanswered"], 1);
        for field in ["p50_ns", "p90_ns", "p99_ns", "max_ns", "mean_ns"] {
            assert!(g[field].is_null(), "{field}: {g}");
        }
    }
}
