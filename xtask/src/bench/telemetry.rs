//! The telemetry case of `cargo xtask bench`: CPU per request of nginx (the HTTP section's worker and
//! page) under wrk, alternating nothing attached / watcher / watcher also serving Prometheus metrics and
//! exporting OTLP spans and metrics to a collector that accepts everything (a thread here: what it
//! receives is counted, not decoded, so the collector's own cost is not watcher's). Watcher's column is
//! what turning telemetry on costs: metrics on the follower, spans written and sent by the exporter thread.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    thread,
};

use anyhow::{Context, Result};

use super::{
    http::{self, Nginx},
    service::{self, Setup},
    Plan,
};

/// Port of the collector.
const COLLECTOR_PORT: u16 = 16395;

/// What the section compares.
const SETUPS: [Setup; 3] = [
    Setup::Baseline,
    Setup::Watcher(&[]),
    Setup::Watcher(&[
        "--metrics-listen",
        "127.0.0.1:16394",
        "--otlp-endpoint",
        "http://127.0.0.1:16395",
    ]),
];

/// The telemetry section.
pub fn overhead(watcher: &Path, plan: &Plan) -> Result<()> {
    let secs = if plan.quick { 3 } else { 5 };
    println!(
        "\n== Telemetry overhead: wrk -t 1 -c 50 -d {secs}s against nginx (as in the HTTP section), watcher without and with --metrics-listen and --otlp-endpoint (a collector that accepts everything); {} alternating rounds, medians",
        plan.rounds
    );
    println!("   CPU ns per request: nginx worker, its observer, total, added to baseline; requests per second kept; the share of a CPU the server ran and of the host left idle; the load generator's CPU per request");
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    collector(Arc::clone(&requests), Arc::clone(&bytes))?;
    let nginx = Nginx::start("")?;
    let worker = nginx.worker()?;
    let url = format!("http://127.0.0.1:{}{}", http::PORT, http::PAGE);
    // With `--against`, the other binary runs with telemetry on too.
    let setups = service::with_against(&SETUPS);
    let measured =
        service::alternate_setups(watcher, "http", worker, &setups, plan.rounds, || {
            http::wrk(&url, secs)
        })?;
    service::print_summaries(&setups, &measured);
    println!(
        "   the collector received {} OTLP requests, {} MB in all (from every setup that exports)",
        requests.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed) / 1_000_000
    );
    Ok(())
}

/// Accepts OTLP/HTTP requests on [`COLLECTOR_PORT`] and answers each 200, counting them and their bytes.
/// Runs until the benchmark exits.
fn collector(requests: Arc<AtomicU64>, bytes: Arc<AtomicU64>) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", COLLECTOR_PORT))
        .with_context(|| format!("the benchmark's collector cannot listen on {COLLECTOR_PORT}"))?;
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let (requests, bytes) = (Arc::clone(&requests), Arc::clone(&bytes));
            thread::spawn(move || {
                let _ = answer_all(stream, &requests, &bytes);
            });
        }
    });
    Ok(())
}

/// Answers the requests of one keep-alive connection until it closes.
fn answer_all(stream: TcpStream, requests: &AtomicU64, bytes: &AtomicU64) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        requests.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(length as u64, Ordering::Relaxed);
        writer.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
        )?;
    }
}
