//! `cargo xtask fuzz [--seconds N] [--runs N] [TARGET]`: the fuzz targets in `fuzz/`, built the way
//! cargo-fuzz builds them (nightly, libFuzzer's coverage instrumentation, the address sanitizer) without
//! needing cargo-fuzz installed, then run one after the other for N seconds (or N executions, whichever
//! comes first) each from the seed corpus in
//! `fuzz/corpus/<target>/`. New inputs found go to a scratch corpus under `target/`, so the seeds in the
//! repository change only when someone copies an input there. A crash stops the run and leaves the
//! input in `fuzz/artifacts/<target>/`; it then belongs in a regression test.

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{bail, Context, Result};

use crate::{check, root};

/// Every target, in the order they run.
pub const TARGETS: &[&str] = &[
    "resp",
    "redis_session",
    "http_session",
    "mysql_session",
    "connection",
    "ndjson_import",
    "redact",
    "tls_elf",
];

/// The flags cargo-fuzz passes for libFuzzer with the address sanitizer.
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Zsanitizer=address";

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// Builds the targets and runs `only` (or every target) for `seconds` each, or `runs` executions if
/// that comes first; prints each target's number of executions and time.
pub fn run(seconds: u32, runs: Option<u64>, only: Option<&str>) -> Result<()> {
    let targets: Vec<&str> = match only {
        Some(name) if TARGETS.contains(&name) => vec![name],
        Some(name) => bail!(
            "no fuzz target {name:?}; the targets are {}",
            TARGETS.join(", ")
        ),
        None => TARGETS.to_vec(),
    };
    let dir = root().join("fuzz");
    check(
        Command::new("cargo")
            .args([
                "+nightly",
                "build",
                "--release",
                "--bins",
                "--target",
                TRIPLE,
            ])
            .current_dir(&dir)
            .env("RUSTFLAGS", RUSTFLAGS)
            // The main workspace's stable toolchain must not leak into the nightly build.
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO"),
    )?;
    for target in targets {
        let scratch = dir.join("target/scratch-corpus").join(target);
        let artifacts = dir.join("artifacts").join(target);
        std::fs::create_dir_all(&scratch).context("creating the scratch corpus")?;
        std::fs::create_dir_all(&artifacts).context("creating the artifacts directory")?;
        let binary: PathBuf = dir.join("target").join(TRIPLE).join("release").join(target);
        let started = Instant::now();
        let output = Command::new(&binary)
            .arg(&scratch)
            .arg(dir.join("corpus").join(target))
            .arg(format!("-max_total_time={seconds}"))
            .args(runs.map(|n| format!("-runs={n}")))
            .arg("-rss_limit_mb=2048")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .output()
            .with_context(|| format!("running {}", binary.display()))?;
        let log = String::from_utf8_lossy(&output.stderr);
        let executed = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map_or("?", str::trim)
            .to_owned();
        if !output.status.success() {
            eprintln!("{log}");
            bail!(
                "fuzz target {target} failed after {executed} executions; the input is in {}",
                artifacts.display()
            );
        }
        println!(
            "xtask: fuzz {target}: {executed} executions in {:.0} s, no crash",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
