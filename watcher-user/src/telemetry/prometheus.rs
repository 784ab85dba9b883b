//! `--metrics-listen`: the metrics in the Prometheus text format, served over HTTP at `/metrics`.
//!
//! The server thread answers scrapes from the last published [`MetricsSnapshot`] and the live counters;
//! it never touches the aggregator, so a slow or hostile scraper cannot slow capture. Series are folded
//! to low-cardinality labels (protocol, operation, route, status class, side, container): the peer
//! address that OTLP keeps would make a series per client here.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet},
    metrics::MetricType,
    registry::Registry,
};

use super::metrics::{Histogram, Instrument, MetricsSnapshot, Published};
use crate::{counters::Counters, record::Side};

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("--metrics-listen {addr}: cannot listen: {reason}")]
pub struct ListenError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the system said.
    pub reason: String,
}

/// The running endpoint.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    /// Where it listens (the port the system chose when asked for port 0).
    pub addr: SocketAddr,
}

impl Server {
    /// Binds `addr` and serves scrapes on a thread of its own.
    pub fn start(
        addr: SocketAddr,
        published: Published,
        counters: Arc<Counters>,
    ) -> Result<Self, ListenError> {
        let server = tiny_http::Server::http(addr).map_err(|e| ListenError {
            addr,
            reason: e.to_string(),
        })?;
        let bound = server.server_addr().to_ip().unwrap_or(addr);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Exposition {
            published,
            counters,
        }));
        let thread = thread::Builder::new()
            .name("watcher-metrics".into())
            .spawn(move || serve(&server, &registry, &stopping))
            .map_err(|e| ListenError {
                addr,
                reason: e.to_string(),
            })?;
        Ok(Self {
            stop,
            thread,
            addr: bound,
        })
    }

    /// Stops serving.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn serve(server: &tiny_http::Server, registry: &Registry, stop: &AtomicBool) {
    let content_type = tiny_http::Header::from_bytes(
        &b"Content-Type"[..],
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE.as_bytes(),
    )
    .ok();
    while !stop.load(Ordering::Relaxed) {
        let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let path = request.url().split('?').next().unwrap_or_default();
        let response = if path == "/metrics" {
            let mut body = String::new();
            match prometheus_client::encoding::prometheus_text::encode(&mut body, registry) {
                Ok(()) => {
                    let mut response = tiny_http::Response::from_string(body);
                    if let Some(header) = content_type.clone() {
                        response.add_header(header);
                    }
                    response
                }
                Err(_) => {
                    tiny_http::Response::from_string("encoding failed\n").with_status_code(500)
                }
            }
        } else {
            tiny_http::Response::from_string("watcher serves its metrics at /metrics\n")
                .with_status_code(404)
        };
        // A scraper that hung up is its own problem.
        let _ = request.respond(response);
    }
}

/// Encodes the snapshot and counters at each scrape.
#[derive(Debug)]
struct Exposition {
    published: Published,
    counters: Arc<Counters>,
}

/// A folded series' labels, in exposition order.
type Labels = Vec<(&'static str, String)>;

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.published.load();
        for instrument in [
            Instrument::DbOperation,
            Instrument::HttpServer,
            Instrument::HttpClient,
        ] {
            let folded = fold(&snapshot, instrument);
            if folded.is_empty() {
                continue;
            }
            let name = format!("{}_seconds", instrument.name().replace('.', "_"));
            let mut family = encoder.encode_descriptor(
                &name,
                instrument.description(),
                None,
                MetricType::Histogram,
            )?;
            for (labels, histogram) in &folded {
                let buckets: Vec<(f64, u64)> = instrument
                    .bounds()
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .zip(histogram.buckets.iter().copied())
                    .collect();
                family
                    .encode_family(labels)?
                    .encode_histogram::<NoLabelSet>(
                        histogram.sum,
                        histogram.count,
                        &buckets,
                        None,
                    )?;
            }
        }
        let mut records = encoder.encode_descriptor(
            "watcher_records",
            "Records made, per protocol (answered or not).",
            None,
            MetricType::Counter,
        )?;
        for (protocol, count) in &snapshot.records {
            records
                .encode_family(&[("protocol", *protocol)])?
                .encode_counter::<NoLabelSet, _, u64>(count, None)?;
        }
        let totals = self.counters.totals();
        let mut lost = encoder.encode_descriptor(
            "watcher_lost",
            "Events or records lost, per cause (the summary's loss breakdown).",
            None,
            MetricType::Counter,
        )?;
        for loss in totals.losses() {
            lost.encode_family(&[("cause", loss.cause)])?
                .encode_counter::<NoLabelSet, _, u64>(&loss.count, None)?;
        }
        let u = &totals.user;
        for (name, help, value) in [
            (
                "watcher_series_overflow",
                "Records whose labels went to an overflow series (too many distinct label sets).",
                snapshot.overflowed,
            ),
            (
                "watcher_otlp_spans_exported",
                "Spans the OTLP collector accepted.",
                u.otlp_spans_exported,
            ),
            (
                "watcher_otlp_spans_dropped",
                "Spans not exported: the queue to the collector was full, or it refused or never answered.",
                u.otlp_spans_dropped,
            ),
        ] {
            Counter(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        Ok(())
    }
}

/// A plain counter value for [`EncodeMetric`].
#[derive(Debug)]
struct Counter(u64);

impl EncodeMetric for Counter {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.0, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// The instrument's series merged over the labels Prometheus does not get (the peer).
fn fold(snapshot: &MetricsSnapshot, instrument: Instrument) -> BTreeMap<Labels, Histogram> {
    let mut folded: BTreeMap<Labels, Histogram> = BTreeMap::new();
    for (key, histogram) in snapshot
        .series
        .iter()
        .filter(|(k, _)| k.instrument == instrument)
    {
        let mut labels: Labels = vec![
            ("protocol", key.protocol.to_owned()),
            ("operation", key.labels.operation.to_string()),
        ];
        if !key.labels.route.is_empty() {
            labels.push(("route", key.labels.route.to_string()));
        }
        labels.push(("status", key.labels.status_class.to_owned()));
        labels.push((
            "side",
            match key.side {
                Side::Client => "client",
                Side::Server => "server",
            }
            .to_owned(),
        ));
        if let Some(container) = &key.container {
            labels.push(("container", container.to_string()));
        }
        folded.entry(labels).or_default().merge(histogram);
    }
    folded
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::{
        telemetry::metrics::Aggregator,
        test_records::{ok, on, redis, redis_server},
    };

    fn scrape(addr: SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn scrapes_show_folded_histograms_and_counters() {
        let (mut aggregator, published) = Aggregator::new();
        for (port, ns) in [(50_000, 2_000_000), (50_001, 7_000_000)] {
            let server = redis_server();
            let mut record = on(redis("SET", Some(ok())), Arc::clone(&server));
            record.endpoint = Arc::new(crate::record::Endpoint::new(
                server.pid,
                &server.comm,
                server.local(),
                SocketAddr::from(([10, 0, 0, 5], port)),
                server.side,
            ));
            record.end_unix_ns = Some(record.start_unix_ns + ns);
            aggregator.add(&record);
        }
        aggregator.publish(true);
        let counters = Arc::new(Counters::default());
        Counters::add(&counters.user.malformed_events, 3);
        let server = Server::start(
            "127.0.0.1:0".parse().unwrap(),
            published,
            Arc::clone(&counters),
        )
        .unwrap();
        let text = scrape(server.addr, "/metrics");
        let missing = scrape(server.addr, "/other");
        server.stop();
        assert!(
            text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE db_client_operation_duration_seconds histogram"),
            "{text}"
        );
        // Two clients, one series: the peer is folded away.
        let labels = r#"protocol="redis",operation="SET",status="ok",side="server""#;
        assert!(
            text.contains(&format!(
                "db_client_operation_duration_seconds_count{{{labels}}} 2"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "db_client_operation_duration_seconds_bucket{{le=\"0.005\",{labels}}} 1"
            )) || text.contains(&format!(
                "db_client_operation_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1"
            )),
            "{text}"
        );
        assert!(
            text.contains(r#"watcher_records_total{protocol="redis"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"watcher_lost_total{cause="malformed"} 3"#),
            "{text}"
        );
        assert!(missing.contains(" 404"), "{missing}");
    }
}
