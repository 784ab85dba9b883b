//! Duration histograms per series, as OpenTelemetry's semantic conventions define them, aggregated from
//! records and published as immutable snapshots for the Prometheus endpoint and the OTLP exporter.
//!
//! One [`Aggregator`] is owned by the follower thread, which alone adds to it; readers load the last
//! [`MetricsSnapshot`] through `ArcSwap` and never wait for it. Series are bounded: past
//! [`MAX_SERIES`], new label combinations are counted in one overflow series per metric, so hostile
//! traffic (random command names, random paths) cannot grow memory.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use arc_swap::ArcSwap;

use crate::{
    protocol::plugin::{Convention, MetricLabels},
    record::{Record, Side},
};

/// `db.client.operation.duration` bucket boundaries, in seconds (the conventions' advice).
pub const DB_BOUNDS: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
/// `http.server.request.duration` and `http.client.request.duration` bucket boundaries, in seconds.
pub const HTTP_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Most series kept; later label combinations go to an overflow series.
pub const MAX_SERIES: usize = 5000;
/// The operation of the overflow series.
pub const OVERFLOW: &str = "(other)";
/// Snapshots are published at most this often (readers scrape every few seconds).
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Which duration metric a record goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Instrument {
    /// `db.client.operation.duration`.
    DbOperation,
    /// `http.server.request.duration`.
    HttpServer,
    /// `http.client.request.duration`.
    HttpClient,
}

impl Instrument {
    fn of(convention: Convention, side: Side) -> Self {
        match (convention, side) {
            (Convention::Database { .. }, _) => Instrument::DbOperation,
            (Convention::Http, Side::Server) => Instrument::HttpServer,
            (Convention::Http, Side::Client) => Instrument::HttpClient,
        }
    }

    /// The conventions' name.
    pub fn name(self) -> &'static str {
        match self {
            Instrument::DbOperation => "db.client.operation.duration",
            Instrument::HttpServer => "http.server.request.duration",
            Instrument::HttpClient => "http.client.request.duration",
        }
    }

    /// What it measures, for HELP lines and descriptions.
    pub fn description(self) -> &'static str {
        match self {
            Instrument::DbOperation => "Duration of database client operations, seen on the wire.",
            Instrument::HttpServer => "Duration of HTTP server requests, seen on the wire.",
            Instrument::HttpClient => "Duration of HTTP client requests, seen on the wire.",
        }
    }

    /// Its bucket boundaries, in seconds.
    pub fn bounds(self) -> &'static [f64] {
        match self {
            Instrument::DbOperation => &DB_BOUNDS,
            Instrument::HttpServer | Instrument::HttpClient => &HTTP_BOUNDS,
        }
    }
}

/// What one series is: the metric and every label the exports may use. Prometheus folds away the
/// peer (`server`), which would make too many series for it; OTLP keeps it, as the conventions ask.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The metric.
    pub instrument: Instrument,
    /// The protocol's name.
    pub protocol: &'static str,
    /// `db.system.name` for databases.
    pub system: Option<&'static str>,
    /// Operation, route and status.
    pub labels: MetricLabels,
    /// Which end the traced process was.
    pub side: Side,
    /// The container id, shortened as `docker ps` prints it.
    pub container: Option<Box<str>>,
    /// The server's address and port.
    pub server: Option<SocketAddr>,
}

/// One histogram: a count per bucket (the last is above every bound), their sum and total.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Counts per bucket, `bounds().len() + 1` of them; not cumulative.
    pub buckets: Vec<u64>,
    /// Sum of the durations, in seconds.
    pub sum: f64,
    /// Number of durations.
    pub count: u64,
    /// The smallest and largest durations, in seconds.
    pub min: f64,
    /// See `min`.
    pub max: f64,
}

impl Histogram {
    fn add(&mut self, bounds: &[f64], seconds: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; bounds.len() + 1];
            self.min = seconds;
            self.max = seconds;
        }
        let bucket = bounds.partition_point(|b| *b < seconds);
        self.buckets[bucket] += 1;
        self.sum += seconds;
        self.count += 1;
        self.min = self.min.min(seconds);
        self.max = self.max.max(seconds);
    }

    /// Adds `other`'s counts (same bounds).
    pub fn merge(&mut self, other: &Histogram) {
        if self.buckets.is_empty() {
            *self = other.clone();
            return;
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// The metrics at one moment.
#[derive(Clone, Debug, Default)]
pub struct MetricsSnapshot {
    /// Every series with at least one duration.
    pub series: Vec<(SeriesKey, Histogram)>,
    /// Records seen, per protocol, answered or not.
    pub records: Vec<(&'static str, u64)>,
    /// Records whose label combination went to an overflow series.
    pub overflowed: u64,
    /// When aggregation began, ns since the Unix epoch (the start of every cumulative series).
    pub start_unix_ns: u64,
}

/// The latest snapshot, shared with readers.
pub type Published = Arc<ArcSwap<MetricsSnapshot>>;

/// Adds records to the series; owned by one thread.
pub struct Aggregator {
    series: HashMap<SeriesKey, Histogram, foldhash::fast::RandomState>,
    /// The key of the record being added, made in the same strings every time: a record of a
    /// series already there costs no allocation.
    key: SeriesKey,
    /// Records per protocol: a handful of protocols, found by a look along.
    records: Vec<(&'static str, u64)>,
    overflowed: u64,
    start_unix_ns: u64,
    changed: bool,
    last_publish: Instant,
    published: Published,
}

impl Aggregator {
    /// An empty aggregator, and where its snapshots appear.
    pub fn new() -> (Self, Published) {
        let start_unix_ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let published: Published = Arc::new(ArcSwap::from_pointee(MetricsSnapshot {
            start_unix_ns,
            ..MetricsSnapshot::default()
        }));
        let aggregator = Self {
            series: HashMap::default(),
            key: SeriesKey {
                instrument: Instrument::DbOperation,
                protocol: "",
                system: None,
                labels: MetricLabels::default(),
                side: Side::Client,
                container: None,
                server: None,
            },
            records: Vec::new(),
            overflowed: 0,
            start_unix_ns,
            changed: false,
            last_publish: Instant::now(),
            published: Arc::clone(&published),
        };
        (aggregator, published)
    }

    /// Counts `record`, and its duration when it was answered.
    pub fn add(&mut self, record: &Record) {
        self.changed = true;
        let protocol = record.protocol();
        match self.records.iter_mut().find(|(p, _)| *p == protocol) {
            Some((_, n)) => *n += 1,
            None => self.records.push((protocol, 1)),
        }
        let Some(latency) = record.latency_ns() else {
            return;
        };
        let payload = record.exchange.payload();
        let convention = payload.convention();
        let instrument = Instrument::of(convention, record.endpoint.side);
        let key = &mut self.key;
        key.instrument = instrument;
        key.protocol = protocol;
        key.system = match convention {
            Convention::Database { system } => Some(system),
            Convention::Http => None,
        };
        payload.write_metric_labels(&mut key.labels);
        key.side = record.endpoint.side;
        let container = record
            .endpoint
            .cgroup
            .as_deref()
            .and_then(|c| c.short_container());
        if key.container.as_deref() != container {
            key.container = container.map(Into::into);
        }
        key.server = Some(record.endpoint.client_server().1);
        #[allow(clippy::cast_precision_loss)]
        let seconds = latency as f64 / 1e9;
        if let Some(histogram) = self.series.get_mut(key) {
            histogram.add(instrument.bounds(), seconds);
            return;
        }
        let mut key = key.clone();
        if self.series.len() >= MAX_SERIES {
            self.overflowed += 1;
            key.labels = MetricLabels {
                operation: OVERFLOW.into(),
                status_class: key.labels.status_class,
                ..MetricLabels::default()
            };
            key.container = None;
            key.server = None;
        }
        self.series
            .entry(key)
            .or_default()
            .add(instrument.bounds(), seconds);
    }

    /// How soon [`Aggregator::publish`] will publish what changed since the last snapshot, if anything
    /// did.
    pub fn publish_due_within(&self) -> Option<Duration> {
        self.changed
            .then(|| PUBLISH_EVERY.saturating_sub(self.last_publish.elapsed()))
    }

    /// Publishes a snapshot if anything changed and the last one is old enough (`force`: if anything
    /// changed at all).
    pub fn publish(&mut self, force: bool) {
        if !self.changed || (!force && self.last_publish.elapsed() < PUBLISH_EVERY) {
            return;
        }
        self.published.store(Arc::new(self.snapshot()));
        self.changed = false;
        self.last_publish = Instant::now();
    }

    fn snapshot(&self) -> MetricsSnapshot {
        let mut series: Vec<_> = self
            .series
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let mut records = self.records.clone();
        records.sort_unstable();
        MetricsSnapshot {
            series,
            records,
            overflowed: self.overflowed,
            start_unix_ns: self.start_unix_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_records::{error, ok, on, redis, redis_server};

    fn with_latency(mut record: Record, ns: u64) -> Record {
        record.end_unix_ns = Some(record.start_unix_ns + ns);
        record
    }

    #[test]
    fn durations_fall_in_the_conventions_buckets() {
        let (mut aggregator, published) = Aggregator::new();
        for ns in [500_000, 3_000_000, 3_000_000, 20_000_000_000] {
            aggregator.add(&with_latency(redis("GET", Some(ok())), ns));
        }
        aggregator.add(&with_latency(redis("GET", Some(error("ERR no"))), 1_000));
        let mut unanswered = redis("GET", None);
        unanswered.end_unix_ns = None;
        aggregator.add(&unanswered);
        aggregator.publish(true);
        let snapshot = published.load();
        assert_eq!(snapshot.records, [("redis", 6)]);
        assert_eq!(
            snapshot.series.len(),
            2,
            "ok and error series: {:?}",
            snapshot.series
        );
        let (key, ok_hist) = snapshot
            .series
            .iter()
            .find(|(k, _)| k.labels.status_class == "ok")
            .unwrap();
        assert_eq!(key.instrument, Instrument::DbOperation);
        assert_eq!(key.system, Some("redis"));
        assert_eq!(key.labels.operation, "GET");
        // 0.5 ms ≤ 1 ms; 3 ms twice in (1 ms, 5 ms]; 20 s above every bound.
        assert_eq!(ok_hist.buckets, [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(ok_hist.count, 4);
        assert!((ok_hist.sum - 20.0065).abs() < 1e-9);
        assert!((ok_hist.max - 20.0).abs() < 1e-9);
    }

    #[test]
    fn series_are_bounded_and_the_rest_overflow() {
        let (mut aggregator, published) = Aggregator::new();
        for i in 0..MAX_SERIES + 10 {
            let record = with_latency(redis(&format!("CMD{i}"), Some(ok())), 1000);
            aggregator.add(&record);
        }
        aggregator.publish(true);
        let snapshot = published.load();
        assert_eq!(snapshot.series.len(), MAX_SERIES + 1);
        assert_eq!(snapshot.overflowed, 10);
        let overflow = snapshot
            .series
            .iter()
            .find(|(k, _)| k.labels.operation == OVERFLOW)
            .unwrap();
        assert_eq!(overflow.1.count, 10);
    }

    #[test]
    fn sides_and_servers_make_separate_series() {
        let (mut aggregator, published) = Aggregator::new();
        aggregator.add(&with_latency(redis("GET", Some(ok())), 1000));
        aggregator.add(&with_latency(
            on(redis("GET", Some(ok())), redis_server()),
            1000,
        ));
        aggregator.publish(true);
        let snapshot = published.load();
        let sides: Vec<Side> = snapshot.series.iter().map(|(k, _)| k.side).collect();
        assert_eq!(sides, [Side::Client, Side::Server]);
        assert!(snapshot
            .series
            .iter()
            .all(|(k, _)| k.server == Some(SocketAddr::from(([127, 0, 0, 1], 6379)))));
    }

    /// The aggregator makes each record's key in the same strings: what one record set (an error's
    /// status) must not stay for the next.
    #[test]
    fn records_of_series_in_turn_each_count_in_their_own() {
        let (mut aggregator, published) = Aggregator::new();
        let records = [
            redis("GET", Some(error("WRONGTYPE no"))),
            redis("GET", Some(ok())),
            redis("SET", Some(ok())),
            redis("GET", Some(ok())),
            redis("GET", Some(error("WRONGTYPE no"))),
            redis("GET", Some(error("ERR other"))),
        ];
        for record in records {
            aggregator.add(&with_latency(record, 1000));
        }
        aggregator.publish(true);
        let snapshot = published.load();
        let mut counts: Vec<(&str, &str, &str, u64)> = snapshot
            .series
            .iter()
            .map(|(k, h)| {
                let l = &k.labels;
                (
                    l.operation.as_str(),
                    l.status.as_str(),
                    l.status_class,
                    h.count,
                )
            })
            .collect();
        counts.sort_unstable();
        assert_eq!(
            counts,
            [
                ("GET", "", "ok", 2),
                ("GET", "ERR", "error", 1),
                ("GET", "WRONGTYPE", "error", 2),
                ("SET", "", "ok", 1),
            ]
        );
        assert_eq!(snapshot.records, [("redis", 6)]);
    }

    /// The same for HTTP and MySQL, whose labels have a route and a numeric status.
    #[test]
    fn http_and_mysql_labels_made_in_turn_keep_their_own_fields() {
        use crate::{
            protocol::mysql::{
                exchange::{ErrorInfo, OkInfo},
                Outcome,
            },
            test_records::{http, mysql},
        };
        let (mut aggregator, published) = Aggregator::new();
        let failed = Outcome::Error(ErrorInfo {
            code: 1146,
            ..ErrorInfo::default()
        });
        let done = Outcome::Ok(OkInfo::default());
        for record in [
            http("GET", "/users/42", Some(500)),
            http("POST", "/login", Some(200)),
            mysql("SELECT 1", Some(vec![failed])),
            mysql("SELECT 1", Some(vec![done])),
        ] {
            aggregator.add(&record);
        }
        aggregator.publish(true);
        let snapshot = published.load();
        let mut labels: Vec<(&str, &str, &str, &str)> = snapshot
            .series
            .iter()
            .map(|(k, _)| {
                let l = &k.labels;
                let route = l.route.as_str();
                (
                    l.operation.as_str(),
                    route,
                    l.status.as_str(),
                    l.status_class,
                )
            })
            .collect();
        labels.sort_unstable();
        assert_eq!(
            labels,
            [
                ("GET", "/users/{id}", "500", "5xx"),
                ("POST", "/login", "200", "2xx"),
                ("SELECT", "", "", "ok"),
                ("SELECT", "", "1146", "error"),
            ]
        );
    }
}
