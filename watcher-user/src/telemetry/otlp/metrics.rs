//! The metrics snapshot as an OTLP `ExportMetricsServiceRequest`: cumulative duration histograms per
//! series, with the attributes of OpenTelemetry's semantic conventions, and watcher's own counters.
//! Made once per push interval, not per record, so it is built from the generated message structs
//! (spans, made per record, are written field by field instead: `spans`).

use opentelemetry_proto::tonic::{
    collector::metrics::v1::ExportMetricsServiceRequest,
    common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue},
    metrics::v1::{
        metric::Data, number_data_point, AggregationTemporality, Histogram as OtlpHistogram,
        HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    },
    resource::v1::Resource,
};

use super::{SCOPE_NAME, SCOPE_VERSION};
use crate::{
    counters::Totals,
    record::Side,
    telemetry::metrics::{Instrument, MetricsSnapshot, SeriesKey},
};

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_owned(),
        version: SCOPE_VERSION.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        telemetry::metrics::Aggregator,
        test_records::{ok, redis},
    };

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
