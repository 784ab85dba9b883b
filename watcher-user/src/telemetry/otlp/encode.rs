//! Records as OTLP spans and the metrics snapshot as OTLP metrics, with the attributes of OpenTelemetry's
//! semantic conventions. Attributes every protocol shares (addresses, process, container, truncation)
//! are added here; each protocol adds its own through `PayloadTelemetry`.

use std::{collections::HashMap, sync::Arc};

use opentelemetry_proto::tonic::{
    collector::{metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest},
    common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue},
    metrics::v1::{
        metric::Data, number_data_point, AggregationTemporality, Histogram as OtlpHistogram,
        HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    },
    resource::v1::Resource,
    trace::v1::{span::SpanKind, status::StatusCode, ResourceSpans, ScopeSpans, Span, Status},
};
use rand::{rngs::SmallRng, Rng, SeedableRng};

use crate::{
    counters::Totals,
    protocol::plugin::{Attribute, AttributeValue, Convention},
    record::{Endpoint, Record, Side},
    telemetry::metrics::{Instrument, MetricsSnapshot, SeriesKey},
};

/// A span with the endpoint whose process it belongs to (its resource).
pub type SpanOf = (Arc<Endpoint>, Span);

/// Makes spans with fresh random ids.
pub struct SpanMaker {
    ids: SmallRng,
    scratch: Vec<Attribute>,
}

impl Default for SpanMaker {
    fn default() -> Self {
        Self {
            ids: SmallRng::from_os_rng(),
            scratch: Vec::new(),
        }
    }
}

impl SpanMaker {
    /// The span of one record: its own trace, kind from its side, start and end from the record (an
    /// unanswered request ends where it started and says so).
    pub fn span(&mut self, record: &Record) -> Span {
        let payload = record.exchange.payload();
        let endpoint = &record.endpoint;
        let server_side = endpoint.side == Side::Server;
        let mut name = String::new();
        payload.span_name(&mut name);
        let mut attributes = Vec::with_capacity(16);
        if let Convention::Database { system } = payload.convention() {
            attributes.push(text("db.system.name", system));
        }
        self.scratch.clear();
        payload.span_attributes(&mut self.scratch);
        attributes.extend(self.scratch.drain(..).map(key_value));
        let (client, server) = endpoint.client_server();
        attributes.push(text("server.address", server.ip().to_string()));
        attributes.push(int("server.port", i64::from(server.port())));
        attributes.push(text("client.address", client.ip().to_string()));
        attributes.push(int("client.port", i64::from(client.port())));
        let remote = endpoint.remote();
        attributes.push(text("network.peer.address", remote.ip().to_string()));
        attributes.push(int("network.peer.port", i64::from(remote.port())));
        attributes.push(text("network.transport", "tcp"));
        if endpoint.tls {
            attributes.push(text("tls.protocol.name", "tls"));
        }
        if record.truncated {
            attributes.push(boolean("watcher.truncated", true));
        }
        if record.redacted {
            attributes.push(boolean("watcher.redacted", true));
        }
        if record.end_unix_ns.is_none() {
            attributes.push(boolean("watcher.unanswered", true));
        }
        let error = payload.span_error(server_side);
        if error {
            let labels = payload.metric_labels();
            let kind = if labels.status.is_empty() {
                "_OTHER".to_owned()
            } else {
                labels.status
            };
            attributes.push(text("error.type", kind));
        }
        Span {
            trace_id: self.ids.random::<[u8; 16]>().to_vec(),
            span_id: self.ids.random::<[u8; 8]>().to_vec(),
            name,
            kind: if server_side {
                SpanKind::Server
            } else {
                SpanKind::Client
            } as i32,
            start_time_unix_nano: record.start_unix_ns,
            end_time_unix_nano: record.end_unix_ns.unwrap_or(record.start_unix_ns),
            attributes,
            status: error.then(|| Status {
                code: StatusCode::Error as i32,
                message: String::new(),
            }),
            ..Span::default()
        }
    }
}

/// One request for `spans`, grouped by process (pid, name, container): each group is a resource.
pub fn traces_request(spans: Vec<SpanOf>, host: &str) -> ExportTraceServiceRequest {
    // Keyed by process: pid, name and cgroup.
    type Process = (u32, Box<str>, Option<u64>);
    let mut groups: HashMap<Process, (Arc<Endpoint>, Vec<Span>)> = HashMap::new();
    for (endpoint, span) in spans {
        let key = (
            endpoint.pid,
            endpoint.comm.clone(),
            endpoint.cgroup.as_ref().map(|c| c.id),
        );
        groups
            .entry(key)
            .or_insert_with(|| (endpoint, Vec::new()))
            .1
            .push(span);
    }
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_values()
            .map(|(endpoint, spans)| ResourceSpans {
                resource: Some(process_resource(&endpoint, host)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

/// The resource of a traced process: it is the service the spans describe.
fn process_resource(endpoint: &Endpoint, host: &str) -> Resource {
    let mut attributes = vec![
        text("service.name", &*endpoint.comm),
        text("host.name", host),
        int("process.pid", i64::from(endpoint.pid)),
        text("process.executable.name", &*endpoint.comm),
    ];
    if let Some(cgroup) = &endpoint.cgroup {
        if !cgroup.path.is_empty() {
            attributes.push(text("process.linux.cgroup", &*cgroup.path));
        }
        if let Some(container) = &cgroup.container {
            attributes.push(text("container.id", &**container));
        }
    }
    Resource {
        attributes,
        ..Resource::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "watcher".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..InstrumentationScope::default()
    }
}

/// The metrics at `now_unix_ns`: cumulative duration histograms per series, with watcher's own counters.
pub fn metrics_request(
    snapshot: &MetricsSnapshot,
    totals: &Totals,
    host: &str,
    now_unix_ns: u64,
) -> ExportMetricsServiceRequest {
    let span = (snapshot.start_unix_ns, now_unix_ns);
    let mut metrics: Vec<Metric> = [
        Instrument::DbOperation,
        Instrument::HttpServer,
        Instrument::HttpClient,
    ]
    .into_iter()
    .filter_map(|instrument| duration_metric(snapshot, instrument, span))
    .collect();
    metrics.push(counter(
        "watcher.records",
        "Records made, per protocol.",
        span,
        snapshot
            .records
            .iter()
            .map(|(protocol, n)| (vec![text("watcher.protocol", *protocol)], *n))
            .collect(),
    ));
    metrics.push(counter(
        "watcher.lost",
        "Events or records lost, per cause.",
        span,
        totals
            .losses()
            .iter()
            .map(|loss| (vec![text("watcher.cause", loss.cause)], loss.count))
            .collect(),
    ));
    metrics.push(counter(
        "watcher.otlp.spans.dropped",
        "Spans not exported.",
        span,
        vec![(Vec::new(), totals.user.otlp_spans_dropped)],
    ));
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "watcher"),
                    text("host.name", host),
                    int("process.pid", i64::from(std::process::id())),
                ],
                ..Resource::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// One duration histogram metric, with a data point per series; `None` without any.
fn duration_metric(
    snapshot: &MetricsSnapshot,
    instrument: Instrument,
    (start, now): (u64, u64),
) -> Option<Metric> {
    let data_points: Vec<HistogramDataPoint> = snapshot
        .series
        .iter()
        .filter(|(key, _)| key.instrument == instrument)
        .map(|(key, histogram)| HistogramDataPoint {
            attributes: series_attributes(key),
            start_time_unix_nano: start,
            time_unix_nano: now,
            count: histogram.count,
            sum: Some(histogram.sum),
            bucket_counts: histogram.buckets.clone(),
            explicit_bounds: instrument.bounds().to_vec(),
            min: Some(histogram.min),
            max: Some(histogram.max),
            ..HistogramDataPoint::default()
        })
        .collect();
    (!data_points.is_empty()).then(|| Metric {
        name: instrument.name().to_owned(),
        description: instrument.description().to_owned(),
        unit: "s".to_owned(),
        data: Some(Data::Histogram(OtlpHistogram {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Metric::default()
    })
}

/// A series' attributes, by the conventions of its metric.
fn series_attributes(key: &SeriesKey) -> Vec<KeyValue> {
    let mut attributes = Vec::new();
    if let Some(system) = key.system {
        attributes.push(text("db.system.name", system));
        attributes.push(text("db.operation.name", &*key.labels.operation));
        if !key.labels.status.is_empty() {
            attributes.push(text("db.response.status_code", &*key.labels.status));
        }
    } else {
        attributes.push(text("http.request.method", &*key.labels.operation));
        attributes.push(text("http.route", &*key.labels.route));
        if let Ok(code) = key.labels.status.parse::<i64>() {
            attributes.push(int("http.response.status_code", code));
        }
    }
    if matches!(key.labels.status_class, "error" | "5xx")
        || (key.labels.status_class == "4xx" && key.side == Side::Client)
    {
        attributes.push(text("error.type", &*key.labels.status));
    }
    if let Some(server) = key.server {
        attributes.push(text("server.address", server.ip().to_string()));
        attributes.push(int("server.port", i64::from(server.port())));
    }
    attributes.push(text("watcher.side", key.side.as_str()));
    if let Some(container) = &key.container {
        attributes.push(text("container.id", &**container));
    }
    attributes
}

/// A monotonic cumulative sum with a data point per attribute set.
fn counter(
    name: &str,
    description: &str,
    (start, now): (u64, u64),
    points: Vec<(Vec<KeyValue>, u64)>,
) -> Metric {
    Metric {
        name: name.to_owned(),
        description: description.to_owned(),
        unit: "1".to_owned(),
        data: Some(Data::Sum(Sum {
            data_points: points
                .into_iter()
                .map(|(attributes, value)| NumberDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: now,
                    value: Some(number_data_point::Value::AsInt(
                        i64::try_from(value).unwrap_or(i64::MAX),
                    )),
                    ..NumberDataPoint::default()
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Metric::default()
    }
}

fn key_value(attribute: Attribute) -> KeyValue {
    kv(
        attribute.key,
        match attribute.value {
            AttributeValue::Text(s) => Value::StringValue(s),
            AttributeValue::Int(i) => Value::IntValue(i),
            AttributeValue::Bool(b) => Value::BoolValue(b),
        },
    )
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

fn int(key: &str, value: i64) -> KeyValue {
    kv(key, Value::IntValue(value))
}

fn boolean(key: &str, value: bool) -> KeyValue {
    kv(key, Value::BoolValue(value))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::{
        telemetry::metrics::Aggregator,
        test_records::{error, ok, on, redis, redis_server},
    };

    fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn a_redis_server_record_is_a_server_span_with_the_conventions_attributes() {
        let mut record = on(redis("INCR", Some(error("WRONGTYPE no"))), redis_server());
        record.truncated = true;
        let span = SpanMaker::default().span(&record);
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(span.name, "INCR");
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
        assert_eq!(span.start_time_unix_nano, record.start_unix_ns);
        assert_eq!(Some(span.end_time_unix_nano), record.end_unix_ns);
        assert_eq!(
            span.status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
        let a = &span.attributes;
        let s = |v: &str| Some(Value::StringValue(v.to_owned()));
        assert_eq!(attribute(a, "db.system.name").cloned(), s("redis"));
        assert_eq!(attribute(a, "db.operation.name").cloned(), s("INCR"));
        assert_eq!(
            attribute(a, "db.response.status_code").cloned(),
            s("WRONGTYPE")
        );
        assert_eq!(attribute(a, "error.type").cloned(), s("WRONGTYPE"));
        assert_eq!(attribute(a, "server.address").cloned(), s("127.0.0.1"));
        assert_eq!(
            attribute(a, "server.port").cloned(),
            Some(Value::IntValue(6379))
        );
        assert_eq!(attribute(a, "client.address").cloned(), s("10.0.0.5"));
        assert_eq!(
            attribute(a, "network.peer.port").cloned(),
            Some(Value::IntValue(50001))
        );
        assert_eq!(
            attribute(a, "watcher.truncated").cloned(),
            Some(Value::BoolValue(true))
        );
    }

    #[test]
    fn spans_are_grouped_by_process_and_encode() {
        let mut maker = SpanMaker::default();
        let spans: Vec<SpanOf> = [
            redis("GET", Some(ok())),
            redis("SET", Some(ok())),
            on(redis("GET", Some(ok())), redis_server()),
        ]
        .iter()
        .map(|r| (Arc::clone(&r.endpoint), maker.span(r)))
        .collect();
        let request = traces_request(spans, "host-1");
        assert_eq!(request.resource_spans.len(), 2);
        let bytes = request.encode_to_vec();
        let back = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let total: usize = back
            .resource_spans
            .iter()
            .map(|r| r.scope_spans[0].spans.len())
            .sum();
        assert_eq!(total, 3);
        let resource = back.resource_spans[0].resource.as_ref().unwrap();
        assert_eq!(
            attribute(&resource.attributes, "host.name").cloned(),
            Some(Value::StringValue("host-1".into()))
        );
    }

    #[test]
    fn histograms_carry_the_conventions_bounds() {
        let (mut aggregator, published) = Aggregator::new();
        aggregator.add(&redis("GET", Some(ok())));
        aggregator.publish(true);
        let request = metrics_request(&published.load(), &Totals::default(), "h", 5);
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        let duration = metrics
            .iter()
            .find(|m| m.name == "db.client.operation.duration")
            .unwrap();
        let Some(Data::Histogram(h)) = &duration.data else {
            panic!("a histogram")
        };
        assert_eq!(
            h.data_points[0].explicit_bounds,
            crate::telemetry::metrics::DB_BOUNDS
        );
        assert_eq!(h.data_points[0].count, 1);
        assert_eq!(h.data_points[0].bucket_counts.iter().sum::<u64>(), 1);
        assert!(metrics.iter().any(|m| m.name == "watcher.lost"));
    }
}
