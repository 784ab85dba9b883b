//! Records as OTLP spans, a batch of them written straight into the protobuf of one
//! `ExportTraceServiceRequest` (`wire`), with the attributes of OpenTelemetry's semantic conventions:
//! those every protocol shares (addresses, process, container, truncation) are added here, each
//! protocol's own come through `PayloadTelemetry`. Spans are grouped by process (pid, name, cgroup):
//! each group is a resource, the service its spans describe.

use std::{collections::HashMap, sync::Arc};

use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use rand::{rngs::SmallRng, Rng, SeedableRng};

use super::{
    wire::{self, Value},
    SCOPE_NAME, SCOPE_VERSION,
};
use crate::{
    protocol::plugin::{Convention, SpanAttributes},
    record::{ip_of, Endpoint, Record, Side},
};

/// Field numbers, by message, of the OTLP protos (collector/trace, trace, resource, common).
mod request {
    pub const RESOURCE_SPANS: u32 = 1;
}
mod resource_spans {
    pub const RESOURCE: u32 = 1;
    pub const SCOPE_SPANS: u32 = 2;
}
mod resource {
    pub const ATTRIBUTES: u32 = 1;
}
mod scope_spans {
    pub const SCOPE: u32 = 1;
    pub const SPANS: u32 = 2;
}
mod scope {
    pub const NAME: u32 = 1;
    pub const VERSION: u32 = 2;
}
mod span {
    pub const TRACE_ID: u32 = 1;
    pub const SPAN_ID: u32 = 2;
    pub const NAME: u32 = 5;
    pub const KIND: u32 = 6;
    pub const START_TIME_UNIX_NANO: u32 = 7;
    pub const END_TIME_UNIX_NANO: u32 = 8;
    pub const ATTRIBUTES: u32 = 9;
    pub const STATUS: u32 = 15;
}
mod status {
    pub const CODE: u32 = 3;
}

/// Span buffers kept for the next batch at most, and the largest kept: a batch from many processes
/// (a thousand clients of one server) must not leave a buffer per process behind.
const SPARE_BUFFERS: usize = 16;
const SPARE_BYTES: usize = 1 << 20;

/// What tells the processes of a batch apart: pid, cgroup id and name.
type Process<'a> = (u32, Option<u64>, &'a str);

/// Writes batches of records as OTLP trace requests. Owned by the exporter thread; keeps its id
/// generator and its buffers from one batch to the next.
pub struct TraceWriter {
    ids: SmallRng,
    name: String,
    resource: Vec<u8>,
    /// Span buffers of earlier batches' groups, empty, to be used again.
    spare: Vec<Vec<u8>>,
}

impl Default for TraceWriter {
    fn default() -> Self {
        Self {
            ids: SmallRng::from_os_rng(),
            name: String::new(),
            resource: Vec::new(),
            spare: Vec::new(),
        }
    }
}

impl TraceWriter {
    /// Writes `records` into `out` (cleared first) as one `ExportTraceServiceRequest`: a span each,
    /// with fresh random ids, in a resource per process, processes in the order they first appear.
    pub fn request(&mut self, records: &[Arc<Record>], host: &str, out: &mut Vec<u8>) {
        out.clear();
        let mut index: HashMap<Process<'_>, usize, foldhash::fast::RandomState> =
            HashMap::default();
        let mut groups: Vec<(&Endpoint, Vec<u8>)> = Vec::new();
        for record in records {
            let endpoint = &*record.endpoint;
            let process = (
                endpoint.pid,
                endpoint.cgroup.as_ref().map(|c| c.id),
                &*endpoint.comm,
            );
            let group = *index.entry(process).or_insert_with(|| {
                groups.push((endpoint, self.spare.pop().unwrap_or_default()));
                groups.len() - 1
            });
            self.span(record, &mut groups[group].1);
        }
        for (endpoint, mut spans) in groups {
            self.resource_spans(endpoint, host, &spans, out);
            if self.spare.len() < SPARE_BUFFERS && spans.capacity() <= SPARE_BYTES {
                spans.clear();
                self.spare.push(spans);
            }
        }
    }

    /// One `ResourceSpans` of the request: the process as the resource, then its spans, already
    /// written. Every length is known before its message is written, so the spans are copied once.
    fn resource_spans(&mut self, endpoint: &Endpoint, host: &str, spans: &[u8], out: &mut Vec<u8>) {
        self.resource.clear();
        process_resource(endpoint, host, &mut self.resource);
        let scope = wire::delimited_len(scope::NAME, SCOPE_NAME.len())
            + wire::delimited_len(scope::VERSION, SCOPE_VERSION.len());
        let scope_spans = wire::delimited_len(scope_spans::SCOPE, scope) + spans.len();
        let body = wire::delimited_len(resource_spans::RESOURCE, self.resource.len())
            + wire::delimited_len(resource_spans::SCOPE_SPANS, scope_spans);
        wire::header(out, request::RESOURCE_SPANS, body);
        wire::bytes(out, resource_spans::RESOURCE, &self.resource);
        wire::header(out, resource_spans::SCOPE_SPANS, scope_spans);
        wire::header(out, scope_spans::SCOPE, scope);
        wire::string(out, scope::NAME, SCOPE_NAME);
        wire::string(out, scope::VERSION, SCOPE_VERSION);
        out.extend_from_slice(spans);
    }

    /// The span of one record, as a `spans` field of `ScopeSpans`: its own trace, kind from its side,
    /// start and end from the record (an unanswered request ends where it started and says so).
    fn span(&mut self, record: &Record, out: &mut Vec<u8>) {
        let payload = record.exchange.payload();
        let endpoint = &record.endpoint;
        let server_side = endpoint.side == Side::Server;
        let message = wire::begin(out, scope_spans::SPANS);
        wire::bytes(out, span::TRACE_ID, &self.ids.random::<[u8; 16]>());
        wire::bytes(out, span::SPAN_ID, &self.ids.random::<[u8; 8]>());
        self.name.clear();
        payload.span_name(&mut self.name);
        wire::string(out, span::NAME, &self.name);
        let kind = if server_side {
            SpanKind::Server
        } else {
            SpanKind::Client
        };
        wire::varint(out, span::KIND, kind as u64);
        wire::fixed64(out, span::START_TIME_UNIX_NANO, record.start_unix_ns);
        let end = record.end_unix_ns.unwrap_or(record.start_unix_ns);
        wire::fixed64(out, span::END_TIME_UNIX_NANO, end);
        let mut attributes = Attributes(out);
        if let Convention::Database { system } = payload.convention() {
            attributes.text("db.system.name", system);
        }
        payload.span_attributes(&mut attributes);
        let (client, server) = endpoint.client_server();
        let (client_text, server_text) = endpoint.client_server_text();
        attributes.text("server.address", ip_of(server_text));
        attributes.int("server.port", i64::from(server.port()));
        attributes.text("client.address", ip_of(client_text));
        attributes.int("client.port", i64::from(client.port()));
        attributes.text("network.peer.address", ip_of(endpoint.remote_text()));
        attributes.int("network.peer.port", i64::from(endpoint.remote().port()));
        attributes.text("network.transport", "tcp");
        if endpoint.tls {
            attributes.text("tls.protocol.name", "tls");
        }
        for (flag, key) in [
            (record.truncated, "watcher.truncated"),
            (record.redacted, "watcher.redacted"),
            (record.end_unix_ns.is_none(), "watcher.unanswered"),
        ] {
            if flag {
                wire::attribute(attributes.0, span::ATTRIBUTES, key, Value::Bool(true));
            }
        }
        let error = payload.span_error(server_side);
        if error {
            let labels = payload.metric_labels();
            let kind = if labels.status.is_empty() {
                "_OTHER"
            } else {
                &labels.status
            };
            attributes.text("error.type", kind);
            let status = wire::begin(out, span::STATUS);
            wire::varint(out, status::CODE, StatusCode::Error as u64);
            wire::end(out, status);
        }
        wire::end(out, message);
    }
}

/// A span's attributes, written into it as the protocol gives them.
struct Attributes<'a>(&'a mut Vec<u8>);

impl SpanAttributes for Attributes<'_> {
    fn text(&mut self, key: &'static str, value: &str) {
        wire::attribute(self.0, span::ATTRIBUTES, key, Value::Text(value));
    }

    fn int(&mut self, key: &'static str, value: i64) {
        wire::attribute(self.0, span::ATTRIBUTES, key, Value::Int(value));
    }
}

/// The body of the resource of a traced process: it is the service the spans describe.
fn process_resource(endpoint: &Endpoint, host: &str, out: &mut Vec<u8>) {
    let mut attribute = |key: &str, value: Value<'_>| {
        wire::attribute(out, resource::ATTRIBUTES, key, value);
    };
    attribute("service.name", Value::Text(&endpoint.comm));
    attribute("host.name", Value::Text(host));
    attribute("process.pid", Value::Int(i64::from(endpoint.pid)));
    attribute("process.executable.name", Value::Text(&endpoint.comm));
    if let Some(cgroup) = &endpoint.cgroup {
        if !cgroup.path.is_empty() {
            attribute("process.linux.cgroup", Value::Text(&cgroup.path));
        }
        if let Some(container) = &cgroup.container {
            attribute("container.id", Value::Text(container));
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::{any_value, KeyValue},
        trace::v1::Span,
    };
    use prost::Message;

    use super::*;
    use crate::test_records::{error, ok, on, redis, redis_server};

    fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    fn request_of(records: &[Record]) -> ExportTraceServiceRequest {
        let records: Vec<Arc<Record>> = records.iter().cloned().map(Arc::new).collect();
        let mut out = Vec::new();
        TraceWriter::default().request(&records, "host-1", &mut out);
        ExportTraceServiceRequest::decode(out.as_slice()).expect("the request decodes")
    }

    fn spans(request: &ExportTraceServiceRequest) -> Vec<&Span> {
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .collect()
    }

    #[test]
    fn a_redis_server_record_is_a_server_span_with_the_conventions_attributes() {
        let mut record = on(redis("INCR", Some(error("WRONGTYPE no"))), redis_server());
        record.truncated = true;
        let request = request_of(std::slice::from_ref(&record));
        let span = spans(&request)[0];
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
        let s = |v: &str| Some(any_value::Value::StringValue(v.to_owned()));
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
            Some(any_value::Value::IntValue(6379))
        );
        assert_eq!(attribute(a, "client.address").cloned(), s("10.0.0.5"));
        assert_eq!(
            attribute(a, "network.peer.port").cloned(),
            Some(any_value::Value::IntValue(50001))
        );
        assert_eq!(attribute(a, "network.transport").cloned(), s("tcp"));
        assert_eq!(
            attribute(a, "watcher.truncated").cloned(),
            Some(any_value::Value::BoolValue(true))
        );
        assert_eq!(attribute(a, "watcher.redacted"), None);
    }

    #[test]
    fn an_answered_span_without_error_has_no_status_and_ends_at_its_reply() {
        let record = redis("GET", Some(ok()));
        let request = request_of(std::slice::from_ref(&record));
        let span = spans(&request)[0];
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(span.status, None);
        assert_eq!(Some(span.end_time_unix_nano), record.end_unix_ns);
        assert_eq!(attribute(&span.attributes, "watcher.unanswered"), None);
        assert_eq!(attribute(&span.attributes, "error.type"), None);
        let unanswered = redis("GET", None);
        let request = request_of(std::slice::from_ref(&unanswered));
        let span = spans(&request)[0];
        assert_eq!(span.end_time_unix_nano, span.start_time_unix_nano);
        assert_eq!(
            attribute(&span.attributes, "watcher.unanswered").cloned(),
            Some(any_value::Value::BoolValue(true))
        );
    }

    #[test]
    fn spans_are_grouped_by_process_in_order_of_appearance() {
        let records = [
            redis("GET", Some(ok())),
            on(redis("GET", Some(ok())), redis_server()),
            redis("SET", Some(ok())),
        ];
        let request = request_of(&records);
        assert_eq!(request.resource_spans.len(), 2);
        let names = |i: usize| -> Vec<&str> {
            request.resource_spans[i].scope_spans[0]
                .spans
                .iter()
                .map(|s| s.name.as_str())
                .collect()
        };
        assert_eq!(names(0), ["GET", "SET"]);
        assert_eq!(names(1), ["GET"]);
        for (group, record) in request
            .resource_spans
            .iter()
            .zip([&records[0], &records[1]])
        {
            let resource = group.resource.as_ref().expect("a resource");
            let a = &resource.attributes;
            assert_eq!(
                attribute(a, "host.name").cloned(),
                Some(any_value::Value::StringValue("host-1".into()))
            );
            assert_eq!(
                attribute(a, "process.pid").cloned(),
                Some(any_value::Value::IntValue(i64::from(record.endpoint.pid)))
            );
            assert_eq!(
                attribute(a, "service.name").cloned(),
                Some(any_value::Value::StringValue(
                    record.endpoint.comm.to_string()
                ))
            );
            let scope = group.scope_spans[0].scope.as_ref().expect("a scope");
            assert_eq!(
                (scope.name.as_str(), scope.version.as_str()),
                (SCOPE_NAME, SCOPE_VERSION)
            );
        }
        let ids: std::collections::HashSet<&[u8]> = spans(&request)
            .iter()
            .map(|s| s.trace_id.as_slice())
            .collect();
        assert_eq!(ids.len(), 3, "every span its own trace");
    }

    #[test]
    fn a_batch_of_spans_larger_than_a_length_byte_holds_them_all() {
        let records: Vec<Record> = (0..600).map(|_| redis("GET", Some(ok()))).collect();
        let request = request_of(&records);
        assert_eq!(spans(&request).len(), 600);
        let empty = request_of(&[]);
        assert!(empty.resource_spans.is_empty());
    }
}
