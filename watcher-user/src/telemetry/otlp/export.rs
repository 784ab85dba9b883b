//! The OTLP exporter: records go from the follower thread to the exporter thread in batches over a
//! bounded queue (shared, not copied), become spans there and go to the collector, a request once
//! [`BATCH`] spans are waiting or the oldest has waited the span delay; metrics are pushed every
//! interval and once more at the end.
//!
//! Capture never waits for the collector, nor for writing spans (work the follower would otherwise
//! spend away from the export and checks). The follower only ever `try_send`s: a full queue drops the
//! batch and counts its spans. The exporter retries a batch with growing pauses while the collector is
//! unreachable or says it is busy (429, 502, 503, 504), for at most [`RETRY_FOR`], and counts the spans
//! as dropped when it gives up or the collector refuses them. At the end it sends what is queued within
//! [`FINAL_FLUSH`], and counts the rest.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant, SystemTime},
};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use prost::Message;

use super::{metrics::metrics_request, spans::TraceWriter, OtlpConfig};
use crate::{counters::Counters, record::Record, telemetry::metrics::Published};

/// Spans per batch the follower hands over at most, and per request at least unless the span delay
/// (`OtlpConfig::span_delay`) is up: a request holds up to twice as many. The follower hands over what
/// each burst of records made (a few hundred under load); a request each would cost the exporter an
/// HTTP exchange per burst.
const BATCH: usize = 512;
/// Batches queued for the exporter at most.
const QUEUE: usize = 64;
/// How long one batch is retried before its spans are dropped.
const RETRY_FOR: Duration = Duration::from_secs(30);
/// The first pause between tries; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between tries.
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// How long the exporter may take to send what is queued once capture has stopped.
const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// The follower's end: hands records over in batches, to become spans on the exporter thread.
pub struct SpanQueue {
    tx: Sender<Vec<Arc<Record>>>,
    filling: Vec<Arc<Record>>,
    counters: Arc<Counters>,
}

impl SpanQueue {
    /// Adds `record`; a full batch is handed over at once.
    pub fn push(&mut self, record: &Arc<Record>) {
        self.filling.push(Arc::clone(record));
        if self.filling.len() >= BATCH {
            self.flush();
        }
    }

    /// Hands over the spans gathered so far, or counts them as dropped if the queue is full.
    pub fn flush(&mut self) {
        if self.filling.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.filling, Vec::with_capacity(BATCH));
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                Counters::add(&self.counters.user.otlp_spans_dropped, batch.len() as u64);
            }
        }
    }
}

/// The running exporter thread.
pub struct Exporter {
    thread: JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

impl Exporter {
    /// Starts the exporter thread; records reach it through the returned queue.
    pub fn start(
        cfg: OtlpConfig,
        metrics: Published,
        counters: Arc<Counters>,
    ) -> std::io::Result<(Self, SpanQueue)> {
        let (tx, rx) = bounded(QUEUE);
        let stopping = Arc::new(AtomicBool::new(false));
        let sender = Shipper {
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(cfg.timeout))
                .http_status_as_error(false)
                .build()
                .into(),
            cfg,
            host: host_name(),
            counters: Arc::clone(&counters),
            stopping: Arc::clone(&stopping),
            stop_deadline: None,
            spans: TraceWriter::default(),
            body: Vec::new(),
        };
        let thread = thread::Builder::new()
            .name("watcher-otlp".into())
            .spawn(move || sender.run(&rx, &metrics))?;
        let queue = SpanQueue {
            tx,
            filling: Vec::with_capacity(BATCH),
            counters,
        };
        Ok((Self { thread, stopping }, queue))
    }

    /// Sends what `queue` still holds and what is queued (within [`FINAL_FLUSH`]) and the last metrics,
    /// then ends the thread.
    pub fn finish(self, mut queue: SpanQueue) {
        queue.flush();
        drop(queue);
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// How a request went.
enum Outcome {
    /// Accepted.
    Done,
    /// Worth trying again (unreachable, busy).
    Retry,
    /// Refused for good.
    Refused,
}

/// The exporter thread's state.
struct Shipper {
    agent: ureq::Agent,
    cfg: OtlpConfig,
    host: String,
    counters: Arc<Counters>,
    stopping: Arc<AtomicBool>,
    stop_deadline: Option<Instant>,
    spans: TraceWriter,
    /// The request being sent, its buffer kept from one batch to the next.
    body: Vec<u8>,
}

impl Shipper {
    fn run(mut self, rx: &Receiver<Vec<Arc<Record>>>, metrics: &Published) {
        let mut next_push = Instant::now() + self.cfg.metric_interval;
        // Records handed over and not sent yet (fewer than a batch), and when they must go.
        let mut pending: Vec<Arc<Record>> = Vec::new();
        let mut send_by: Option<Instant> = None;
        loop {
            let wake = send_by.map_or(next_push, |t| t.min(next_push));
            match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(mut batch) => {
                    pending.append(&mut batch);
                    send_by.get_or_insert_with(|| Instant::now() + self.cfg.span_delay);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if pending.len() >= BATCH || send_by.is_some_and(|t| Instant::now() >= t) {
                self.send_spans(std::mem::take(&mut pending));
                send_by = None;
            }
            if Instant::now() >= next_push {
                self.push_metrics(metrics);
                next_push = Instant::now() + self.cfg.metric_interval;
            }
        }
        if !pending.is_empty() {
            self.send_spans(pending);
        }
        self.push_metrics(metrics);
    }

    /// Whether capture has stopped and the final flush's time is up.
    fn out_of_time(&mut self) -> bool {
        if !self.stopping.load(Ordering::Relaxed) {
            return false;
        }
        let deadline = *self
            .stop_deadline
            .get_or_insert_with(|| Instant::now() + FINAL_FLUSH);
        Instant::now() >= deadline
    }

    fn send_spans(&mut self, batch: Vec<Arc<Record>>) {
        let spans = batch.len() as u64;
        if self.out_of_time() {
            Counters::add(&self.counters.user.otlp_spans_dropped, spans);
            return;
        }
        let mut body = std::mem::take(&mut self.body);
        self.spans.request(&batch, &self.host, &mut body);
        drop(batch);
        let url = self.cfg.traces_url.clone();
        let sent = self.post_retrying(&url, &body);
        self.body = body;
        if sent {
            Counters::add(&self.counters.user.otlp_spans_exported, spans);
        } else {
            Counters::add(&self.counters.user.otlp_spans_dropped, spans);
        }
    }

    /// Metrics are cumulative: a push that fails is made good by the next one, so it is tried once.
    fn push_metrics(&mut self, metrics: &Published) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let request = metrics_request(&metrics.load(), &self.counters.totals(), &self.host, now);
        let url = self.cfg.metrics_url.clone();
        let _ = self.post(&url, &request.encode_to_vec());
    }

    /// Posts `body` until it is accepted, refused, [`RETRY_FOR`] has passed, or the final flush's time
    /// is up. Whether it was accepted.
    fn post_retrying(&mut self, url: &str, body: &[u8]) -> bool {
        let give_up = Instant::now() + RETRY_FOR;
        let mut pause = FIRST_PAUSE;
        loop {
            match self.post(url, body) {
                Outcome::Done => return true,
                Outcome::Refused => return false,
                Outcome::Retry => {}
            }
            if Instant::now() + pause > give_up {
                return false;
            }
            // Sleep in steps, so that the end of capture cuts the pause short.
            let wake = Instant::now() + pause;
            while Instant::now() < wake {
                if self.out_of_time() {
                    return false;
                }
                thread::sleep(Duration::from_millis(50).min(wake - Instant::now()));
            }
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    fn post(&self, url: &str, body: &[u8]) -> Outcome {
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/x-protobuf");
        for (key, value) in &self.cfg.headers {
            request = request.header(key.as_str(), value.as_str());
        }
        match request.send(body) {
            Ok(response) => match response.status().as_u16() {
                200..=299 => Outcome::Done,
                429 | 502..=504 => Outcome::Retry,
                _ => Outcome::Refused,
            },
            // Not reachable, reset, timed out: the collector may come back.
            Err(_) => Outcome::Retry,
        }
    }
}

/// This host's name, as resources name it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        net::TcpListener,
    };

    use super::*;
    use crate::{
        telemetry::metrics::Aggregator,
        test_records::{ok, redis},
    };

    fn config(port: u16) -> OtlpConfig {
        OtlpConfig {
            traces_url: format!("http://127.0.0.1:{port}/v1/traces"),
            metrics_url: format!("http://127.0.0.1:{port}/v1/metrics"),
            headers: vec![("x-token".into(), "t".into())],
            timeout: Duration::from_secs(2),
            metric_interval: Duration::from_hours(1),
            span_delay: Duration::from_hours(1),
        }
    }

    /// Answers each request with `status`, and returns what it was sent: (path, whether the x-token
    /// header came).
    fn collector(status: u16, requests: usize) -> (u16, thread::JoinHandle<Vec<(String, bool)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                let mut head = Vec::new();
                let mut byte = [0];
                while !head.ends_with(b"\r\n\r\n") {
                    stream.read_exact(&mut byte).unwrap();
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                stream.read_exact(&mut body).unwrap();
                let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                seen.push((path, head.contains("x-token: t")));
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
            }
            seen
        });
        (port, handle)
    }

    /// An exporter sending to `port`, with its own counters.
    fn exporting_to(port: u16) -> (Arc<Counters>, Exporter, SpanQueue) {
        let counters = Arc::new(Counters::default());
        let (_, published) = Aggregator::new();
        let (exporter, queue) =
            Exporter::start(config(port), published, Arc::clone(&counters)).unwrap();
        (counters, exporter, queue)
    }

    #[test]
    fn spans_and_metrics_reach_the_collector_and_are_counted() {
        let (port, collector) = collector(200, 2);
        let (counters, exporter, mut queue) = exporting_to(port);
        for _ in 0..3 {
            queue.push(&Arc::new(redis("GET", Some(ok()))));
        }
        exporter.finish(queue);
        let seen = collector.join().unwrap();
        assert_eq!(
            seen,
            [
                ("/v1/traces".to_owned(), true),
                ("/v1/metrics".to_owned(), true)
            ]
        );
        let totals = counters.totals().user;
        assert_eq!(
            (totals.otlp_spans_exported, totals.otlp_spans_dropped),
            (3, 0)
        );
    }

    #[test]
    fn refused_spans_are_dropped_and_counted() {
        let (port, collector) = collector(400, 2);
        let (counters, exporter, mut queue) = exporting_to(port);
        queue.push(&Arc::new(redis("GET", Some(ok()))));
        exporter.finish(queue);
        collector.join().unwrap();
        let totals = counters.totals().user;
        assert_eq!(
            (totals.otlp_spans_exported, totals.otlp_spans_dropped),
            (0, 1)
        );
    }

    #[test]
    fn spans_for_an_unreachable_collector_are_dropped_and_counted() {
        // A port nothing listens on: bind, note it, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (counters, exporter, mut queue) = exporting_to(port);
        queue.push(&Arc::new(redis("GET", Some(ok()))));
        queue.flush();
        exporter.finish(queue);
        assert_eq!(counters.totals().user.otlp_spans_dropped, 1);
    }

    #[test]
    fn small_batches_handed_over_in_turn_share_one_request() {
        let (port, collector) = collector(200, 2);
        let (counters, exporter, mut queue) = exporting_to(port);
        for burst in [3, 2, 4] {
            for _ in 0..burst {
                queue.push(&Arc::new(redis("GET", Some(ok()))));
            }
            queue.flush();
        }
        exporter.finish(queue);
        // Two requests in all (the span delay is an hour): the spans' one, then the metrics'.
        let seen = collector.join().unwrap();
        assert_eq!(seen[0].0, "/v1/traces");
        assert_eq!(seen[1].0, "/v1/metrics");
        assert_eq!(counters.totals().user.otlp_spans_exported, 9);
    }

    #[test]
    fn spans_waiting_for_company_go_when_the_delay_is_up() {
        let (port, collector) = collector(200, 1);
        let counters = Arc::new(Counters::default());
        let (_, published) = Aggregator::new();
        let cfg = OtlpConfig {
            span_delay: Duration::from_millis(50),
            ..config(port)
        };
        let (exporter, mut queue) = Exporter::start(cfg, published, Arc::clone(&counters)).unwrap();
        queue.push(&Arc::new(redis("GET", Some(ok()))));
        queue.flush();
        // No more records and no end of capture: the delay alone sends the span.
        let give_up = Instant::now() + Duration::from_secs(10);
        while !collector.is_finished() && Instant::now() < give_up {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(
            collector.is_finished(),
            "the span was not sent while capture went on"
        );
        exporter.finish(queue);
        assert_eq!(collector.join().unwrap()[0].0, "/v1/traces");
        assert_eq!(counters.totals().user.otlp_spans_exported, 1);
    }
}
