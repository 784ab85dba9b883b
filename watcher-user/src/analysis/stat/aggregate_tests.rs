//! Tests of the aggregator's numbers against hand-computed values, and of the sort orders.

use super::{
    histogram_bucket, nearest_rank, sort_groups, Aggregator, GroupStats, HISTOGRAM_BOUNDS_NS,
};
use crate::{
    analysis::stat::{
        test_records::{error, http, ok, redis, with_latency},
        GroupBy, SortBy,
    },
    protocol::redis::Frame,
};

/// Statistics of one group of `GET`s with these latencies (`None`: unanswered).
fn group_of(latencies: &[Option<u64>]) -> GroupStats {
    let mut agg = Aggregator::new(GroupBy::Command);
    for &latency in latencies {
        agg.add(&with_latency(redis("GET", Some(ok())), latency));
    }
    let mut groups = agg.finish();
    assert_eq!(groups.len(), 1);
    groups.remove(0)
}

fn percentiles(g: &GroupStats) -> [Option<u64>; 5] {
    [g.p50_ns, g.p90_ns, g.p99_ns, g.max_ns, g.mean_ns]
}

#[test]
fn one_record_is_every_percentile() {
    let g = group_of(&[Some(700)]);
    assert_eq!(percentiles(&g), [Some(700); 5]);
}

#[test]
fn two_records_put_the_median_on_the_lower() {
    // ceil(0.5 * 2) = 1 → sorted[0]; ceil(0.9 * 2) = ceil(0.99 * 2) = 2 → sorted[1].
    let g = group_of(&[Some(300), Some(100)]);
    assert_eq!(
        percentiles(&g),
        [Some(100), Some(300), Some(300), Some(300), Some(200)]
    );
}

#[test]
fn ten_records_use_nearest_rank() {
    // 10..=100 by 10, shuffled: ceil(5) = 5 → 50, ceil(9) = 9 → 90, ceil(9.9) = 10 → 100.
    let latencies = [70, 10, 100, 40, 20, 90, 60, 30, 80, 50].map(Some);
    let g = group_of(&latencies);
    assert_eq!(
        percentiles(&g),
        [Some(50), Some(90), Some(100), Some(100), Some(55)]
    );
}

#[test]
fn a_hundred_records_use_nearest_rank() {
    // 1..=100 in a scrambled order (37 is coprime with 100, so every value appears once).
    let latencies: Vec<Option<u64>> = (0..100u64).map(|i| Some(i * 37 % 100 + 1)).collect();
    let g = group_of(&latencies);
    // Mean 50.5, rounded down.
    assert_eq!(
        percentiles(&g),
        [Some(50), Some(90), Some(99), Some(100), Some(50)]
    );
}

#[test]
fn three_records_round_the_rank_up() {
    // ceil(1.5) = 2 → the middle one.
    let g = group_of(&[Some(5), Some(1), Some(9)]);
    assert_eq!(g.p50_ns, Some(5));
}

#[test]
fn nearest_rank_of_nothing_is_none() {
    assert_eq!(nearest_rank(&[], 50), None);
    assert_eq!(nearest_rank(&[4], 1), Some(4));
}

#[test]
fn unanswered_records_count_but_have_no_latency() {
    let g = group_of(&[None, Some(100), None, Some(300), Some(200)]);
    assert_eq!((g.count, g.unanswered), (5, 2));
    // Over the three answered: ceil(1.5) = 2 → 200.
    assert_eq!(
        percentiles(&g),
        [Some(200), Some(300), Some(300), Some(300), Some(200)]
    );
    assert_eq!(g.histogram.iter().sum::<u64>(), 3);
}

#[test]
fn a_group_without_answers_has_no_latencies() {
    let g = group_of(&[None, None]);
    assert_eq!((g.count, g.unanswered), (2, 2));
    assert_eq!(percentiles(&g), [None; 5]);
    assert_eq!(g.histogram.iter().sum::<u64>(), 0);
}

#[test]
fn error_rate_counts_redis_error_replies_and_http_4xx_5xx() {
    let mut agg = Aggregator::new(GroupBy::Command);
    agg.add(&redis("GET", Some(ok())));
    agg.add(&redis("GET", Some(error("ERR x"))));
    agg.add(&redis("GET", None));
    agg.add(&redis("GET", Some(Frame::Null)));
    for status in [200, 301, 404, 500, 503] {
        agg.add(&http("GET", "/", Some(status)));
    }
    agg.add(&http("GET", "/", None));
    let groups = agg.finish();
    let find = |protocol: &str| groups.iter().find(|g| g.protocol == protocol).unwrap();
    let redis = find("redis");
    assert_eq!((redis.count, redis.errors, redis.error_rate), (4, 1, 0.25));
    let http = find("http");
    assert_eq!((http.count, http.errors, http.error_rate), (6, 3, 0.5));
}

#[test]
fn bytes_are_summed_per_group() {
    let mut agg = Aggregator::new(GroupBy::Command);
    for _ in 0..3 {
        agg.add(&redis("SET", Some(ok())));
    }
    let mut big = redis("GET", Some(ok()));
    big.request_bytes = 1_000;
    big.response_bytes = 2_000_000;
    agg.add(&big);
    agg.add(&redis("GET", None));
    let groups = agg.finish();
    let get = groups.iter().find(|g| g.key == "GET").unwrap();
    let set = groups.iter().find(|g| g.key == "SET").unwrap();
    assert_eq!((get.request_bytes, get.response_bytes), (1_020, 2_000_005));
    assert_eq!((set.request_bytes, set.response_bytes), (60, 15));
}

#[test]
fn the_same_key_in_two_protocols_is_two_groups() {
    let mut agg = Aggregator::new(GroupBy::Command);
    agg.add(&redis("GET", Some(ok())));
    agg.add(&redis("GET", Some(ok())));
    agg.add(&http("GET", "/", Some(200)));
    assert_eq!(agg.len(), 2);
    let groups = agg.finish();
    let summary: Vec<_> = groups
        .iter()
        .map(|g| (g.protocol, g.key.as_str(), g.count))
        .collect();
    assert_eq!(summary, [("redis", "GET", 2), ("http", "GET", 1)]);
}

#[test]
fn histogram_bounds_start_their_bucket() {
    assert_eq!(HISTOGRAM_BOUNDS_NS.len(), 15);
    assert_eq!(HISTOGRAM_BOUNDS_NS[0], 1_000);
    assert_eq!(HISTOGRAM_BOUNDS_NS[14], 10_000_000_000);
    assert!(HISTOGRAM_BOUNDS_NS.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(histogram_bucket(0), 0);
    assert_eq!(histogram_bucket(999), 0);
    assert_eq!(histogram_bucket(1_000), 1);
    assert_eq!(histogram_bucket(2_999), 1);
    assert_eq!(histogram_bucket(3_000), 2);
    assert_eq!(histogram_bucket(999_999), 6);
    assert_eq!(histogram_bucket(1_000_000), 7);
    assert_eq!(histogram_bucket(9_999_999_999), 14);
    assert_eq!(histogram_bucket(10_000_000_000), 15);
    assert_eq!(histogram_bucket(u64::MAX), 15);
}

#[test]
fn histogram_counts_each_answered_record_once() {
    let g = group_of(&[
        Some(999),
        Some(1_000),
        Some(1_000),
        Some(10_000_000_000),
        None,
    ]);
    let mut expected = [0; 16];
    expected[0] = 1;
    expected[1] = 2;
    expected[15] = 1;
    assert_eq!(g.histogram, expected);
}

#[test]
fn stats_can_be_taken_again_after_more_records() {
    let mut agg = Aggregator::new(GroupBy::Command);
    agg.add(&with_latency(redis("GET", Some(ok())), Some(300)));
    agg.add(&with_latency(redis("GET", Some(ok())), Some(100)));
    assert_eq!(agg.stats()[0].p50_ns, Some(100));
    agg.add(&with_latency(redis("GET", Some(ok())), Some(50)));
    agg.add(&with_latency(redis("GET", Some(ok())), Some(60)));
    let again = agg.stats();
    assert_eq!(
        (again[0].count, again[0].p50_ns, again[0].max_ns),
        (4, Some(60), Some(300))
    );
}

/// A group with the given key and numbers; everything else empty.
fn stats(key: &str, count: u64, errors: u64, p50: Option<u64>, bytes: u64) -> GroupStats {
    GroupStats {
        protocol: "redis",
        key: key.into(),
        count,
        errors,
        error_rate: errors as f64 / count as f64,
        unanswered: 0,
        p50_ns: p50,
        p90_ns: p50.map(|ns| ns * 2),
        p99_ns: p50.map(|ns| ns * 3),
        max_ns: p50.map(|ns| 1_000 - ns),
        mean_ns: p50,
        request_bytes: bytes,
        response_bytes: 1,
        rows: None,
        histogram: [0; 16],
    }
}

fn sorted_keys(groups: &[GroupStats], by: SortBy) -> Vec<String> {
    let mut groups = groups.to_vec();
    sort_groups(&mut groups, by);
    groups.into_iter().map(|g| g.key).collect()
}

#[test]
fn each_sort_order_ranks_by_its_number() {
    let groups = [
        stats("a", 10, 1, Some(100), 50),
        stats("b", 30, 3, Some(300), 10),
        stats("c", 20, 10, None, 90),
        stats("d", 5, 4, Some(200), 70),
    ];
    let order = |by| sorted_keys(&groups, by);
    assert_eq!(order(SortBy::Count), ["b", "c", "a", "d"]);
    // Rates: a 0.1, b 0.1, c 0.5, d 0.8; a and b tie and go by key.
    assert_eq!(order(SortBy::Errors), ["d", "c", "a", "b"]);
    // No latency sorts last in every latency order.
    assert_eq!(order(SortBy::P50), ["b", "d", "a", "c"]);
    assert_eq!(order(SortBy::P90), ["b", "d", "a", "c"]);
    assert_eq!(order(SortBy::P99), ["b", "d", "a", "c"]);
    // max is 1000 - p50: a 900, d 800, b 700.
    assert_eq!(order(SortBy::Max), ["a", "d", "b", "c"]);
    assert_eq!(order(SortBy::Bytes), ["c", "d", "a", "b"]);
    assert_eq!(order(SortBy::Key), ["a", "b", "c", "d"]);
}

#[test]
fn ties_are_broken_by_key_then_protocol() {
    let mut http_b = stats("b", 10, 0, Some(1), 1);
    http_b.protocol = "http";
    let groups = [
        stats("c", 10, 0, Some(1), 1),
        stats("b", 10, 0, Some(1), 1),
        http_b,
        stats("a", 10, 0, Some(1), 1),
    ];
    for by in SortBy::ALL {
        let mut sorted = groups.to_vec();
        sort_groups(&mut sorted, by);
        let order: Vec<_> = sorted
            .iter()
            .map(|g| (g.key.as_str(), g.protocol))
            .collect();
        assert_eq!(
            order,
            [
                ("a", "redis"),
                ("b", "http"),
                ("b", "redis"),
                ("c", "redis")
            ],
            "{by}"
        );
    }
}
