//! The memory-budget case of `cargo xtask bench`: watcher's resident memory while several times its
//! `--max-memory` (default 256 MiB) of large records pass through its store, for three loads whose
//! records are big: HTTP responses of 16 KiB (nginx writing them, not `sendfile`), Redis values of
//! 64 KiB with `--capture-bytes 65536`, and Redis values of 1 MiB with `--capture-bytes 1048576`.
//! RSS is sampled every 100 ms; what the peak holds above the budget is watcher's fixed overhead
//! (programs' buffers, the ring, queues, allocator slack).

use std::{
    path::Path,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use anyhow::{Context, Result};

use super::{
    http::{self, Nginx},
    procs::{self, Observer},
    Plan,
};

/// The default `--max-memory`, in MiB.
const BUDGET_MIB: f64 = 256.0;

/// Peak RSS of `observer` (MiB) while `load` runs.
fn peak_rss(observer: &Observer, load: impl FnOnce() -> Result<()>) -> Result<f64> {
    let pid = observer.pid();
    let done = Arc::new(AtomicBool::new(false));
    let sampling = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut peak = 0.0f64;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(procs::rss_mib(pid));
                thread::sleep(Duration::from_millis(100));
            }
            peak.max(procs::rss_mib(pid))
        })
    };
    let loaded = load();
    thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::Relaxed);
    let peak = sampling.join().unwrap_or(0.0);
    loaded.map(|()| peak)
}

fn report(what: &str, peak: f64, summary: &str) {
    let records = summary
        .strip_prefix("watcher: ")
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("?");
    let evicted = summary
        .split("; ")
        .find_map(|part| {
            part.strip_suffix(" records evicted from memory to stay within --max-memory")
        })
        .unwrap_or("0");
    println!(
        "   {what:<44} peak RSS {peak:>6.0} MiB = budget + {:>4.0} MiB   ({records} records, {evicted} evicted for memory)",
        peak - BUDGET_MIB
    );
}

/// The memory-budget section.
pub fn rss_within_budget(watcher: &Path, server_pid: u32, plan: &Plan) -> Result<()> {
    println!(
        "\n== Memory budget: watcher RSS with --max-memory {BUDGET_MIB:.0} (the default) while several times that passes through its store"
    );
    let redis = |capture: &str, values: u32, requests: u32| -> Result<(f64, String)> {
        let observer = Observer::start(
            Command::new(watcher)
                .args([
                    "watch",
                    "redis",
                    "--headless",
                    "--pid",
                    &server_pid.to_string(),
                ])
                .args(["--json-output", "/dev/null", "--capture-bytes", capture]),
            Some("capturing"),
        )?;
        let peak = peak_rss(&observer, || procs::load(requests, 1, values))?;
        Ok((peak, observer.stop()?))
    };
    let scale = if plan.quick { 1 } else { 2 };
    let (peak, summary) = redis("65536", 65536, 6000 * scale)?;
    report(
        "redis-benchmark -d 65536, --capture-bytes 65536",
        peak,
        &summary,
    );
    let (peak, summary) = redis("1048576", 1024 * 1024, 400 * scale)?;
    report(
        "redis-benchmark -d 1048576, --capture-bytes 1048576",
        peak,
        &summary,
    );

    let nginx = Nginx::start("sendfile off;")?;
    nginx.write_page("body16k.json", &vec![b'x'; 16 * 1024])?;
    let worker = nginx.worker()?;
    let observer = Observer::start(
        Command::new(watcher)
            .args(["watch", "http", "--headless", "--pid", &worker.to_string()])
            .args(["--json-output", "/dev/null"]),
        Some("capturing"),
    )?;
    let url = format!("http://127.0.0.1:{}/body16k.json", http::PORT);
    let secs = if plan.quick { 5 } else { 10 };
    let peak = peak_rss(&observer, || http::wrk(&url, secs).map(|_| ()))
        .context("the HTTP budget load")?;
    report("wrk, 16 KiB HTTP bodies, defaults", peak, &observer.stop()?);
    Ok(())
}
