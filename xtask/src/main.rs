//! `cargo xtask ...`: every project task, doing its own set-up so a fresh machine needs nothing else.
//!
//! - `build-ebpf`: nightly `rust-src` and `bpf-linker` (built against the nightly's own LLVM, see
//!   docs/architecture.md) when missing, then the eBPF object.
//! - `build`: the eBPF object, then the `watcher` binary embedding it.
//! - `run -- ARGS`: build, then run `watcher ARGS` (through sudo when not root).
//! - `test`: install test packages, build, run unit tests, then the root-only end-to-end tests, then
//!   every fuzz target briefly.
//! - `fuzz [--seconds N] [--runs N] [TARGET]`: the fuzz targets in `fuzz/` (see `fuzz.rs`).
//! - `bench`: CPU cost per request of a redis-benchmark run with and without watcher attached.
#![forbid(unsafe_code)]

mod bench;
mod fuzz;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the eBPF object (installing its toolchain pieces when missing).
    BuildEbpf,
    /// Build the eBPF object and the watcher binary (release).
    Build,
    /// Build, then run watcher with the given arguments.
    Run {
        /// Arguments for watcher, after `--`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Install test prerequisites, then run unit and end-to-end tests.
    Test,
    /// Build the fuzz targets and run each (or TARGET) for a while from its seed corpus.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
        /// Also stop a target after this many executions (a campaign: `--seconds 1800 --runs 10000000`).
        #[arg(long)]
        runs: Option<u64>,
        /// Only this target.
        target: Option<String>,
    },
    /// The bench's light-traffic client (run by `bench` as a child, so its CPU is counted as the
    /// load's): SET and GET to the bench's redis-server (one connection per 10 000 requests a
    /// second), paced at RATE requests a second for SECONDS; prints how many it made.
    #[command(hide = true)]
    PacedLoad { rate: u32, seconds: f64 },
    /// Measure watcher's overhead on a local redis-server and nginx, its capacity and memory.
    Bench {
        /// Fewer, shorter runs.
        #[arg(long)]
        quick: bool,
        /// Run only this section.
        #[arg(long, value_enum)]
        only: Option<bench::Section>,
        /// Another watcher binary (e.g. one built from an older commit) to run beside this one in
        /// every overhead table, alternating, for an A/B comparison within one run.
        #[arg(long, value_name = "BINARY")]
        against: Option<std::path::PathBuf>,
        /// Alternating rounds of each overhead table (default 7, 3 with --quick): more when an A/B
        /// difference is within this machine's noise, and a multiple of 4 with --against (this
        /// build and the other trade places every second pair of rounds).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        rounds: Option<u16>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::BuildEbpf => build_ebpf(),
        Task::Build => build().map(|_| ()),
        Task::Run { args } => run(&args),
        Task::Test => test(),
        Task::Fuzz {
            seconds,
            runs,
            target,
        } => fuzz::run(seconds, runs, target.as_deref()),
        Task::PacedLoad { rate, seconds } => {
            let made = bench::paced_client(rate, std::time::Duration::from_secs_f64(seconds))?;
            println!("{made}");
            Ok(())
        }
        Task::Bench {
            quick,
            only,
            against,
            rounds,
        } => {
            setup::apt_install(&[
                "redis-server",
                "redis-tools",
                "nginx-light",
                "wrk",
                "mariadb-server",
                "mariadb-client",
                "sysbench",
                // The HTTPS section's certificate, and its Go server.
                "openssl",
                "caddy",
            ])?;
            let watcher = build()?;
            bench::run(&watcher, quick, only, against, rounds.map(usize::from))
        }
    }
}

/// The workspace root.
///
/// # Panics
/// Never in practice: xtask's manifest directory always has a parent.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command, failing with its description if it fails.
pub fn check(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn ebpf_object() -> PathBuf {
    root().join("watcher-ebpf/target/bpfel-unknown-none/release/watcher")
}

fn build_ebpf() -> Result<()> {
    setup::ebpf_toolchain()?;
    check(
        Command::new("cargo")
            .args(["+nightly", "build", "--release"])
            .current_dir(root().join("watcher-ebpf"))
            .env("PATH", setup::path_with_cargo_bin())
            // The eBPF crate has its own toolchain file; stable's variables must not leak into it.
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO"),
    )
}

fn build() -> Result<PathBuf> {
    build_ebpf()?;
    check(
        Command::new("cargo")
            .args(["build", "--release", "--package", "watcher-user"])
            .current_dir(root())
            .env("WATCHER_EBPF_OBJECT", ebpf_object()),
    )?;
    Ok(root().join("target/release/watcher"))
}

fn run(args: &[String]) -> Result<()> {
    let watcher = build()?;
    let mut cmd = if setup::is_root() {
        Command::new(&watcher)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg(&watcher);
        sudo
    };
    let status = cmd.args(args).status().context("starting watcher")?;
    std::process::exit(status.code().unwrap_or(1));
}

fn test() -> Result<()> {
    setup::apt_install(&[
        "redis-server",
        "redis-tools",
        "tmux",
        "nginx-light",
        "wrk",
        "curl",
        "python3",
        "mariadb-server",
        "mariadb-client",
        "sysbench",
        // The TLS end-to-end tests' certificates.
        "openssl",
        // The Go TLS end-to-end test's server (Go's crypto/tls, a stripped binary).
        "caddy",
        // The telemetry end-to-end test's scraper.
        "prometheus",
    ])?;
    // The chunked-HTTP end-to-end test's server and a TLS test's client (the machines' node v20 has
    // OpenSSL linked in statically; Debian's own nodejs 18 would use libssl.so.3 through libnode).
    setup::command_or_package("node", "nodejs")?;
    // The MySQL end-to-end tests' Python clients (text and binary protocol), and the OTLP decoder.
    let python = setup::python_venv(&root().join("target/e2e-python"), E2E_PYTHON_PACKAGES)?;
    let watcher = build()?;
    check(
        Command::new("cargo")
            // All targets: the criterion benchmarks run once each as tests, so they cannot rot.
            .args(["test", "--workspace", "--all-targets"])
            .current_dir(root())
            .env("WATCHER_EBPF_OBJECT", ebpf_object()),
    )?;
    if !setup::is_root() {
        bail!("the end-to-end tests load eBPF programs and must run as root (sudo -E cargo xtask test)");
    }
    check(
        Command::new("cargo")
            .args([
                "test",
                "--release",
                "--package",
                "watcher-user",
                "--test",
                "e2e",
                "--",
                "--ignored",
                "--test-threads=1",
            ])
            .current_dir(root())
            .env("WATCHER_EBPF_OBJECT", ebpf_object())
            .env("WATCHER_BIN", &watcher)
            .env("WATCHER_PYTHON", &python),
    )?;
    // Every decoder that meets untrusted bytes, briefly: long runs are `cargo xtask fuzz`.
    fuzz::run(FUZZ_SECONDS_IN_TEST, None, None)
}

/// Python packages the end-to-end tests' clients use, pinned.
/// `opentelemetry-proto` (with the `protobuf` it needs) decodes OTLP in the telemetry test's collector.
const E2E_PYTHON_PACKAGES: &[&str] = &[
    "PyMySQL==1.1.1",
    "mysql-connector-python==9.1.0",
    "opentelemetry-proto==1.45.2",
    "protobuf==6.33.6",
];

/// Seconds each fuzz target runs in `cargo xtask test`.
const FUZZ_SECONDS_IN_TEST: u32 = 20;
