//! `cargo xtask bench`: CPU time per request of redis-server (plus watcher, when attached) under a fixed
//! redis-benchmark load, alternating runs with and without watcher, reporting medians.
//!
//! CPU time comes from `/proc/<pid>/task/*/schedstat` (hardware counters are unavailable here).

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::{Context, Result};

use crate::check;

const PORT: &str = "16390";

fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn one_run(server_pid: u32, watcher: Option<u32>, requests: u32, pipeline: u32) -> Result<f64> {
    let before = cpu_ns(server_pid) + watcher.map_or(0, cpu_ns);
    check(
        Command::new("redis-benchmark")
            .args(["-p", PORT, "-c", "50", "-t", "set,get", "-q", "-n"])
            .arg(requests.to_string())
            .arg("-P")
            .arg(pipeline.to_string())
            .stdout(Stdio::null()),
    )?;
    thread::sleep(Duration::from_millis(300)); // let watcher drain
    let after = cpu_ns(server_pid) + watcher.map_or(0, cpu_ns);
    // set and get: two requests per -n
    Ok((after - before) as f64 / f64::from(requests * 2))
}

/// Runs the benchmark and prints a table.
pub fn run(watcher: &Path, quick: bool) -> Result<()> {
    let server = Server(
        Command::new("redis-server")
            .args(["--port", PORT, "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server")?,
    );
    thread::sleep(Duration::from_millis(500));
    let (rounds, requests) = if quick { (3, 50_000) } else { (7, 200_000) };
    println!("redis-benchmark -c 50 -t set,get -n {requests}, {rounds} alternating rounds, CPU ns per request (server + watcher), median");
    for pipeline in [1, 16] {
        let (mut base, mut watched) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            base.push(one_run(server.0.id(), None, requests, pipeline)?);
            let mut w = Command::new(watcher)
                .args(["watch", "redis", "--headless", "--pid"])
                .arg(server.0.id().to_string())
                .args(["--json-output", "/dev/null"])
                .stderr(Stdio::null())
                .spawn()
                .context("starting watcher")?;
            thread::sleep(Duration::from_millis(1500));
            watched.push(one_run(server.0.id(), Some(w.id()), requests, pipeline)?);
            let _ = Command::new("kill")
                .args(["-INT", &w.id().to_string()])
                .status();
            let _ = w.wait();
        }
        let (b, w) = (median(base), median(watched));
        println!("-P {pipeline:>2}: baseline {b:>8.0} ns  with watcher {w:>8.0} ns  overhead {:>+7.0} ns ({:+.0}%)", w - b, (w / b - 1.0) * 100.0);
    }
    Ok(())
}
