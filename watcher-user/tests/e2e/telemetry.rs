//! Telemetry end to end: a real Prometheus server scraping `--metrics-listen`, and an OTLP/HTTP
//! collector that decodes what watcher sends with the official OpenTelemetry protobuf definitions
//! (`PyPI`'s `opentelemetry-proto`), stopped for a while and started again.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::support::{
    curl, free_port, summary_count, temp_path, wait_for_port, Nginx, Redis, Watcher,
};

/// A Prometheus server scraping one target every second, with its own storage.
struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Prometheus {
    fn start(target: u16) -> Self {
        let dir = temp_path("prometheus", "d");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: watcher\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts (cargo xtask test installs it)");
        wait_for_port(port, "prometheus");
        Self { child, port, dir }
    }

    /// The value of an instant query that returns one number, if it returns one yet.
    fn query(&self, query: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-s", "--get", "--data-urlencode"])
            .arg(format!("query={query}"))
            .arg(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .output()
            .expect("curl runs");
        let answer: Value = serde_json::from_slice(&out.stdout).ok()?;
        answer["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    }

    /// Waits (up to 30 s) until `query` returns `expected`; returns what it last returned.
    fn wait_for(&self, query: &str, expected: f64) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.query(query);
            if value == Some(expected) || Instant::now() > deadline {
                return value;
            }
            thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn prometheus_scrapes_per_command_counts_that_match_the_traffic() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    let metrics_port = free_port();
    let listen = format!("127.0.0.1:{metrics_port}");
    let watcher = Watcher::start(
        "prometheus",
        &["redis"],
        &["--port", &port, "--no-tls", "--metrics-listen", &listen],
    );
    assert!(
        watcher
            .notes()
            .iter()
            .any(|n| n.contains(&format!("http://{listen}/metrics"))),
        "{:?}",
        watcher.notes()
    );
    let prometheus = Prometheus::start(metrics_port);
    redis.benchmark(&["-t", "set,lpush", "-n", "700", "-c", "5"]);
    let count = |operation: &str| {
        format!(
            "sum(db_client_operation_duration_seconds_count{{protocol=\"redis\",operation=\"{operation}\",side=\"server\",status=\"ok\"}})"
        )
    };
    assert_eq!(prometheus.wait_for(&count("SET"), 700.0), Some(700.0));
    assert_eq!(prometheus.wait_for(&count("LPUSH"), 700.0), Some(700.0));
    // Buckets are cumulative and end at +Inf with the count.
    assert_eq!(
        prometheus.query(
            "sum(db_client_operation_duration_seconds_bucket{operation=\"SET\",side=\"server\",le=\"+Inf\"})"
        ),
        Some(700.0)
    );
    assert_eq!(
        prometheus.query("sum(watcher_lost_total)"),
        Some(0.0),
        "watcher's own counters are scraped too"
    );
    let (records, _) = watcher.stop();
    let sets = records
        .iter()
        .filter(|r| r["side"] == "server" && r["redis"]["command"] == "SET")
        .count();
    assert_eq!(sets, 700, "the export agrees with the metrics");
}

/// An OTLP/HTTP collector: decodes every request with `opentelemetry-proto` and appends one JSON line per
/// span (with its resource) and one per metrics request to a file.
const COLLECTOR: &str = r#"
import json, sys
from http.server import HTTPServer, BaseHTTPRequestHandler
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

port, out = int(sys.argv[1]), sys.argv[2]

class Collector(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        lines = []
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            for rs in request.resource_spans:
                resource = {kv.key: MessageToDict(kv.value) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        lines.append({"signal": "span", "resource": resource, "span": MessageToDict(span)})
        elif self.path == "/v1/metrics":
            request = ExportMetricsServiceRequest.FromString(body)
            lines.append({"signal": "metrics", "request": MessageToDict(request)})
        with open(out, "a") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

print("ready", flush=True)
HTTPServer(("127.0.0.1", port), Collector).serve_forever()
"#;

/// The collector, running until dropped.
struct Collector {
    child: Child,
}

impl Collector {
    fn start(port: u16, out: &Path) -> Self {
        let python = std::env::var("WATCHER_PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .arg("-c")
            .arg(COLLECTOR)
            .arg(port.to_string())
            .arg(out)
            .stdout(Stdio::null())
            .spawn()
            .expect("the collector starts");
        wait_for_port(
            port,
            "the OTLP collector (is WATCHER_PYTHON the venv cargo xtask test makes?)",
        );
        Self { child }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the collector wrote so far, by signal.
fn received(out: &Path) -> (Vec<Value>, Vec<Value>) {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("the collector writes JSON"))
        .collect();
    let (spans, metrics): (Vec<Value>, Vec<Value>) =
        lines.into_iter().partition(|l| l["signal"] == "span");
    (spans, metrics)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(200));
    }
}

/// A span attribute's value as text (OTLP's JSON gives integers as strings too).
fn attribute(attributes: &Value, key: &str) -> Option<String> {
    let value = attributes.as_array()?.iter().find(|a| a["key"] == key)?["value"].clone();
    value
        .as_object()?
        .values()
        .next()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
}

fn redis_cli(port: &str, args: &[&str]) {
    let status = Command::new("redis-cli")
        .args(["-p", port])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli runs");
    assert!(status.success());
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn otlp_spans_and_metrics_reach_a_collector_that_goes_away_and_comes_back() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    let collector_port = free_port();
    let out = temp_path("otlp", "jsonl");
    let _ = std::fs::remove_file(&out);
    let collector = Collector::start(collector_port, &out);
    let endpoint = format!("http://127.0.0.1:{collector_port}");
    let watcher = Watcher::start_with_env(
        "otlp",
        &["redis"],
        &["--port", &port, "--no-tls", "--otlp-endpoint", &endpoint],
        &[("OTEL_METRIC_EXPORT_INTERVAL", "500")],
    );
    for i in 0..10 {
        redis_cli(&port, &["SET", &format!("user:{i}"), "secret value"]);
    }
    redis_cli(&port, &["INCR", "user:0"]);
    // 11 commands, each seen by the client and the server.
    wait_until("the first 22 spans", || received(&out).0.len() >= 22);
    let before_outage = received(&out).0.len();

    drop(collector);
    for i in 0..5 {
        redis_cli(&port, &["GET", &format!("user:{i}")]);
    }
    // The exporter retries while the collector is away.
    thread::sleep(Duration::from_secs(2));
    let collector = Collector::start(collector_port, &out);
    redis_cli(&port, &["DEL", "user:9"]);
    let (records, summary) = watcher.stop();
    drop(collector);

    let (spans, metrics) = received(&out);
    let otlp = summary
        .split_once("OTLP: ")
        .expect("the summary counts spans")
        .1;
    let exported = summary_count(otlp, "spans exported");
    let dropped = summary_count(otlp, "dropped");
    assert_eq!(records.len(), 34, "{summary}");
    assert_eq!(
        spans.len() as u64,
        exported,
        "every exported span arrived once: {summary}"
    );
    assert_eq!(
        exported + dropped,
        records.len() as u64,
        "every span not exported is counted: {summary}"
    );
    assert!(
        spans.len() > before_outage,
        "export resumed after the collector came back: {summary}"
    );

    check_spans(&spans, &port, redis.pid());
    check_metrics(&metrics);
    let _ = std::fs::remove_file(&out);
}

/// A SET seen by redis-server is a SERVER span with the database conventions' attributes; the INCR of a
/// non-number is an error with the reply's code.
fn check_spans(spans: &[Value], port: &str, server_pid: u32) {
    // A SET seen by redis-server: a SERVER span with the database conventions' attributes.
    let set = spans
        .iter()
        .find(|s| s["span"]["name"] == "SET" && s["span"]["kind"] == "SPAN_KIND_SERVER")
        .expect("a server-side SET span");
    let a = &set["span"]["attributes"];
    assert_eq!(attribute(a, "db.system.name").as_deref(), Some("redis"));
    assert_eq!(attribute(a, "db.operation.name").as_deref(), Some("SET"));
    let query = attribute(a, "db.query.text").unwrap();
    assert!(
        query.starts_with("SET user:") && query.ends_with(" ?"),
        "{query}"
    );
    assert!(
        !set.to_string().contains("secret value"),
        "values never leave: {set}"
    );
    assert_eq!(attribute(a, "server.port"), Some(port.to_owned()));
    assert_eq!(attribute(a, "server.address").as_deref(), Some("127.0.0.1"));
    assert!(attribute(a, "client.port").is_some() && attribute(a, "network.peer.port").is_some());
    let start: u64 = set["span"]["startTimeUnixNano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let end: u64 = set["span"]["endTimeUnixNano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(end > start, "start and end from the record");
    let resource = &set["resource"];
    assert_eq!(resource["service.name"]["stringValue"], "redis-server");
    assert_eq!(
        resource["process.pid"]["intValue"].as_str(),
        Some(server_pid.to_string().as_str())
    );
    assert!(resource["host.name"]["stringValue"]
        .as_str()
        .is_some_and(|h| !h.is_empty()));
    // The INCR of a non-number is an error: the span says so, with the reply's code.
    let incr = spans
        .iter()
        .find(|s| s["span"]["name"] == "INCR" && s["span"]["kind"] == "SPAN_KIND_CLIENT")
        .expect("a client-side INCR span");
    assert_eq!(incr["span"]["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(
        attribute(&incr["span"]["attributes"], "db.response.status_code").as_deref(),
        Some("ERR")
    );
}

/// The conventions' histogram with its bucket boundaries, and watcher's own counters.
fn check_metrics(metrics: &[Value]) {
    // Metrics: the conventions' histogram with its bucket boundaries, and watcher's own counters.
    let last = &metrics.last().expect("metrics were pushed")["request"];
    let all: Vec<&Value> = last["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .collect();
    let duration = all
        .iter()
        .find(|m| m["name"] == "db.client.operation.duration")
        .expect("db.client.operation.duration");
    assert_eq!(duration["unit"], "s");
    let points = duration["histogram"]["dataPoints"].as_array().unwrap();
    assert_eq!(
        points[0]["explicitBounds"],
        serde_json::json!([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0])
    );
    let sets: u64 = points
        .iter()
        .filter(|p| attribute(&p["attributes"], "db.operation.name").as_deref() == Some("SET"))
        .map(|p| p["count"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sets, 20, "10 SETs on each side");
    assert!(all.iter().any(|m| m["name"] == "watcher.lost"));
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn otlp_http_spans_follow_the_http_conventions_on_each_side() {
    let nginx = Nginx::start("otlp");
    let collector_port = free_port();
    let out = temp_path("otlp-http", "jsonl");
    let _ = std::fs::remove_file(&out);
    let collector = Collector::start(collector_port, &out);
    let endpoint = format!("http://127.0.0.1:{collector_port}");
    let front = nginx.front.to_string();
    let watcher = Watcher::start_with_env(
        "otlp-http",
        &["http"],
        &["--port", &front, "--no-tls", "--otlp-endpoint", &endpoint],
        &[("OTEL_METRIC_EXPORT_INTERVAL", "500")],
    );
    curl(&["-o", "/dev/null", &nginx.url("/index.html")]);
    curl(&["-o", "/dev/null", &nginx.url("/missing?x=1")]);
    let (records, summary) = watcher.stop();
    drop(collector);
    let (spans, metrics) = received(&out);
    assert_eq!(spans.len(), records.len(), "{summary}");
    let missing = |kind: &str| {
        spans
            .iter()
            .find(|s| {
                s["span"]["kind"] == kind
                    && attribute(&s["span"]["attributes"], "url.path").as_deref()
                        == Some("/missing")
            })
            .unwrap_or_else(|| panic!("a {kind} span of /missing in {spans:#?}"))
    };
    let server = missing("SPAN_KIND_SERVER");
    let a = &server["span"]["attributes"];
    assert_eq!(attribute(a, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute(a, "url.query").as_deref(), Some("x=1"));
    assert_eq!(
        attribute(a, "http.response.status_code").as_deref(),
        Some("404")
    );
    assert_eq!(attribute(a, "server.port"), Some(front.clone()));
    assert!(
        server["span"]["status"].get("code").is_none(),
        "a 404 is not the server's error: {server}"
    );
    assert!(server["resource"]["service.name"]["stringValue"]
        .as_str()
        .is_some_and(|s| s.starts_with("nginx")));
    let client = missing("SPAN_KIND_CLIENT");
    assert_eq!(client["span"]["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(
        attribute(&client["span"]["attributes"], "error.type").as_deref(),
        Some("404")
    );
    assert_eq!(client["resource"]["service.name"]["stringValue"], "curl");
    let last = &metrics.last().expect("metrics were pushed")["request"];
    let names: Vec<&str> = last["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    for name in [
        "http.server.request.duration",
        "http.client.request.duration",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let _ = std::fs::remove_file(&out);
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn record_serves_metrics_while_its_command_runs() {
    let redis = Redis::start();
    let metrics_port = free_port();
    let scraped = temp_path("record-metrics", "txt");
    let _ = std::fs::remove_file(&scraped);
    // The command itself scrapes, until the SETs it made are counted (publication is throttled).
    let script = format!(
        "for i in 1 2 3; do redis-cli -p {port} SET k$i v >/dev/null; done; \
         for i in $(seq 100); do curl -s http://127.0.0.1:{metrics_port}/metrics > {out}; \
         grep -q 'operation=\"SET\",status=\"ok\",side=\"client\"}} 3' {out} && break; sleep 0.1; done",
        port = redis.port,
        out = scraped.display()
    );
    let listen = format!("127.0.0.1:{metrics_port}");
    let recorded = crate::support::record(
        "record-metrics",
        &["redis", "--no-tls", "--metrics-listen", &listen],
        &["sh", "-c", &script],
    );
    let _ = std::fs::remove_file(&recorded.path);
    assert_eq!(recorded.code, Some(0), "{}", recorded.stderr);
    let text = std::fs::read_to_string(&scraped).unwrap_or_default();
    let _ = std::fs::remove_file(&scraped);
    assert!(
        text.contains(
            r#"db_client_operation_duration_seconds_count{protocol="redis",operation="SET",status="ok",side="client"} 3"#
        ),
        "the command scraped:\n{text}\nwatcher said:\n{}",
        recorded.stderr
    );
    assert_eq!(recorded.records.len(), 3);
}
