//! The yardstick of the observer targets: what watcher's work on one record costs in-process, with no
//! kernel, no threads and no waiting. The criterion pipeline bench (`watcher-user/benches/pipeline.rs`)
//! is run for its parse+pair+store and NDJSON benches, and their medians are read back from criterion's
//! estimates, so the figure comes from the same `cargo xtask bench` run as the live ones. It is run
//! [`RUNS`] times and the fastest figure kept: a slow spell of this VM (seen at +25% for a whole run)
//! would otherwise raise the yardstick and flatter every ratio measured against it.

use std::{path::Path, process::Command};

use anyhow::{Context, Result};

/// CPU ns per record of decoding, pairing, storing and encoding as NDJSON, on one warm core.
pub struct InProcess {
    /// A `redis-benchmark -t set,get` command and its reply.
    pub redis_ns: f64,
    /// An nginx static-page exchange with wrk.
    pub http_ns: f64,
}

/// Criterion ids of the pipeline benches, Redis then HTTP: (parse+pair+store, encode).
const REDIS: [&str; 2] = ["parse+pair+store redis commands", "ndjson encode records"];
const HTTP: [&str; 2] = [
    "parse+pair+store http exchanges",
    "ndjson encode http records",
];

/// Times the pipeline benches are run; the fastest of each figure is kept.
const RUNS: usize = 3;

/// Runs the pipeline benches [`RUNS`] times and returns the lowest cost per record of each protocol,
/// with every run's figures for the record.
pub fn measure() -> Result<(InProcess, Vec<InProcess>)> {
    let runs = (0..RUNS)
        .map(|_| measure_once())
        .collect::<Result<Vec<_>>>()?;
    let fastest = |pick: fn(&InProcess) -> f64| runs.iter().map(pick).fold(f64::MAX, f64::min);
    Ok((
        InProcess {
            redis_ns: fastest(|r| r.redis_ns),
            http_ns: fastest(|r| r.http_ns),
        },
        runs,
    ))
}

/// Runs the pipeline benches once and returns their cost per record.
fn measure_once() -> Result<InProcess> {
    let root = crate::root();
    crate::check(Command::new("cargo").current_dir(&root).args([
        "bench",
        "-p",
        "watcher-user",
        "--bench",
        "pipeline",
        "--",
        "--warm-up-time",
        "1",
        "--measurement-time",
        "3",
        "pipeline/(parse|ndjson encode)",
    ]))
    .context("running the in-process pipeline benches")?;
    let dir = root.join("target/criterion/pipeline");
    let per_record = |ids: [&str; 2]| -> Result<f64> {
        ids.iter().map(|id| ns_per_element(&dir.join(id))).sum()
    };
    Ok(InProcess {
        redis_ns: per_record(REDIS)?,
        http_ns: per_record(HTTP)?,
    })
}

/// The median time of one iteration of a criterion bench, divided by its throughput in elements.
fn ns_per_element(dir: &Path) -> Result<f64> {
    let read = |file: &str| -> Result<serde_json::Value> {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    };
    let median = read("new/estimates.json")?["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("no median in {}", dir.display()))?;
    let elements = read("new/benchmark.json")?["throughput"]["Elements"]
        .as_f64()
        .with_context(|| format!("no element count in {}", dir.display()))?;
    Ok(median / elements)
}
