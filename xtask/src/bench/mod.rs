//! `cargo xtask bench`: what watching costs the watched service, measured side by side.
//!
//! Sections, each printed with the command it ran:
//! - overhead: CPU per request of redis-server plus its observer under redis-benchmark, alternating
//!   baseline / `redis-cli MONITOR` / empty programs on our tracepoints / watcher, medians;
//! - light: the same under light traffic, one client paced at 5 000 requests a second;
//! - programs: the kernel programs' own time per request and per run, from the kernel's BPF statistics;
//! - capacity: records and loss counters at the highest rate redis-benchmark reaches, up to 1 MiB values,
//!   and what copying whole calls (up to `--max-call-bytes`) costs against cutting them at 16 KiB;
//! - growth: per-request cost with 1k/10k/100k records stored and 10/1k/10k idle connections;
//! - memory: RSS with 100 000 records stored, over a soak run, and against `--max-memory` with large
//!   records (HTTP 16 KiB bodies, 64 KiB and 1 MiB Redis values);
//! - http: CPU per request of nginx under wrk, baseline / empty programs / least copy / watcher;
//! - https: the same over TLS, baseline / watcher `--no-tls` / watcher capturing TLS plaintext;
//! - mysql: CPU per query of MariaDB under `sysbench oltp_read_write`, baseline / empty programs / watcher;
//! - telemetry: the HTTP case, watcher without and with `--metrics-listen` and `--otlp-endpoint`;
//! - in-process micro-benchmarks (criterion): the pipeline without the kernel, and UI frame time.
//!
//! `--against BINARY` adds another watcher to every overhead table, alternating with the rest, and
//! compares the two round by round; `--rounds N` runs more rounds where a difference is within the
//! machine's noise.

mod budget;
mod http;
mod https;
mod in_process;
mod mysql;
mod procs;
mod programs;
mod service;
mod telemetry;

pub use procs::paced_client;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use procs::Observer;

/// Sizes of one bench invocation.
struct Plan {
    rounds: usize,
    requests: u32,
    soak: Duration,
    quick: bool,
}

/// CPU per request of one run, in ns.
#[derive(Clone, Copy, Default)]
struct Cost {
    service: f64,
    observer: f64,
}

struct Bench<'a> {
    watcher: &'a Path,
    server_pid: u32,
}

impl Bench<'_> {
    /// Starts watcher on the server exporting to `output`, with `extra` arguments, once it is capturing.
    fn observe_to(&self, output: &Path, extra: &[&str]) -> Result<Observer> {
        Observer::start(
            Command::new(self.watcher)
                .args(["watch", "redis", "--headless", "--pid"])
                .arg(self.server_pid.to_string())
                .arg("--json-output")
                .arg(output)
                .args(extra),
            Some("capturing"),
        )
    }

    /// [`Bench::observe_to`] `/dev/null`.
    fn observe(&self, extra: &[&str]) -> Result<Observer> {
        self.observe_to(Path::new("/dev/null"), extra)
    }

    /// Runs the load once under `observer`, returning the CPU per request.
    fn measure(
        &self,
        observer: Option<&Observer>,
        load: impl FnOnce() -> Result<u32>,
    ) -> Result<Cost> {
        let observer_pid = observer.map(Observer::pid);
        let cpu = || {
            (
                procs::cpu_ns(self.server_pid),
                observer_pid.map_or(0, procs::cpu_ns),
            )
        };
        let before = cpu();
        let requests = f64::from(load()?);
        // Let the observer drain what is in flight; its CPU for that belongs to these requests.
        std::thread::sleep(Duration::from_millis(300));
        let after = cpu();
        Ok(Cost {
            service: (after.0 - before.0) as f64 / requests,
            observer: (after.1 - before.1) as f64 / requests,
        })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A part of the benchmark that can be run alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Redis overhead, -P 1 and -P 16.
    Overhead,
    /// The kernel programs' own time per request and per run (BPF statistics), Redis -P 1.
    Programs,
    /// HTTP overhead (nginx, wrk).
    Http,
    /// HTTPS overhead (nginx with TLS, wrk), without and with TLS capture.
    Https,
    /// MySQL overhead (MariaDB, sysbench).
    Mysql,
    /// What Prometheus and OTLP export add (nginx, wrk).
    Telemetry,
    /// Redis under light traffic: one client paced at a few thousand requests a second.
    Light,
    /// Redis capacity at full speed.
    Capacity,
    /// What watcher costs while idle, and growth with stored records and idle connections.
    Growth,
    /// RSS and soak.
    Memory,
    /// Criterion micro-benchmarks.
    Micro,
}

/// Runs every section, or only `only`, and prints the report.
pub fn run(
    watcher: &Path,
    quick: bool,
    only: Option<Section>,
    against: Option<std::path::PathBuf>,
    rounds: Option<usize>,
) -> Result<()> {
    let wanted = |s: Section| only.is_none_or(|o| o == s);
    if let Some(binary) = against {
        service::compare_against(binary);
    }
    procs::raise_fd_limit()?;
    let mut plan = if quick {
        Plan {
            rounds: 3,
            requests: 50_000,
            soak: Duration::from_secs(20),
            quick,
        }
    } else {
        Plan {
            rounds: 7,
            requests: 200_000,
            soak: Duration::from_mins(10),
            quick,
        }
    };
    if let Some(rounds) = rounds {
        plan.rounds = rounds;
    }
    let server = procs::redis_server()?;
    let bench = Bench {
        watcher,
        server_pid: server.0.id(),
    };
    let in_process = if wanted(Section::Overhead) || wanted(Section::Http) {
        println!("\n== In-process reference: the pipeline benches, for the observer targets");
        let (measured, runs) = in_process::measure()?;
        let each = |pick: fn(&in_process::InProcess) -> f64| {
            runs.iter()
                .map(|r| format!("{:.0}", pick(r)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "   parse+pair+store+NDJSON per record, the fastest of {} runs: Redis {:.0} ns ({}), HTTP {:.0} ns ({})",
            runs.len(),
            measured.redis_ns,
            each(|r| r.redis_ns),
            measured.http_ns,
            each(|r| r.http_ns),
        );
        Some(measured)
    } else {
        None
    };
    if let (true, Some(reference)) = (wanted(Section::Overhead), &in_process) {
        for pipeline in [1, 16] {
            overhead(
                watcher,
                bench.server_pid,
                &plan,
                pipeline,
                reference.redis_ns,
            )?;
        }
    }
    if wanted(Section::Light) {
        light(watcher, bench.server_pid, &plan)?;
    }
    if wanted(Section::Programs) {
        programs::section(watcher, bench.server_pid, &plan)?;
    }
    if let (true, Some(reference)) = (wanted(Section::Http), &in_process) {
        http::overhead(watcher, &plan, reference.http_ns)?;
    }
    if wanted(Section::Https) {
        https::overhead(watcher, &plan)?;
    }
    if wanted(Section::Mysql) {
        mysql::overhead(watcher, &plan)?;
    }
    if wanted(Section::Telemetry) {
        telemetry::overhead(watcher, &plan)?;
    }
    if wanted(Section::Capacity) {
        capacity(&bench, &plan)?;
    }
    if wanted(Section::Growth) {
        idle(&bench, &plan)?;
        growth(&bench, &plan)?;
    }
    if wanted(Section::Memory) {
        soak(&bench, &plan)?;
        budget::rss_within_budget(watcher, bench.server_pid, &plan)?;
    }
    drop(server);
    if wanted(Section::Micro) {
        micro(plan.quick)?;
    }
    Ok(())
}

/// Requests a second of the light-traffic section's paced client, lightest first: from a rate where
/// watcher's threads wake at the light pace to one where the ring is drained as under
/// redis-benchmark, so the section shows where draining less often stops paying.
const LIGHT_RATES: [u32; 3] = [5_000, 20_000, 50_000];

/// Redis under paced traffic at each of [`LIGHT_RATES`] (only the first with `--quick`), baseline /
/// MONITOR / watcher: where a drain of the ring carries fewer records than under redis-benchmark, so
/// what watcher spends per request is partly what its threads' wake-ups cost.
fn light(watcher: &Path, server_pid: u32, plan: &Plan) -> Result<()> {
    let (span, rates) = if plan.quick {
        (Duration::from_secs(3), &LIGHT_RATES[..1])
    } else {
        (Duration::from_secs(10), &LIGHT_RATES[..])
    };
    for &rate in rates {
        println!(
            "\n== Light traffic: a client paced at {rate} requests a second (SET and GET, one connection per {} a second), {}s; {} alternating rounds, medians",
            procs::PACED_PER_CONNECTION,
            span.as_secs(),
            plan.rounds
        );
        println!("   CPU ns per request: redis-server, its observer (watcher / redis-cli), total, added to baseline; requests per second; the share of a CPU the server ran and of the host left idle; the paced client's CPU per request");
        let setups = service::with_against(&[
            service::Setup::Baseline,
            service::Setup::Monitor,
            service::Setup::Watcher(&[]),
        ]);
        let m =
            service::alternate_setups(watcher, "redis", server_pid, &setups, plan.rounds, || {
                let started = Instant::now();
                let made = procs::paced_load(rate, span)?;
                Ok((made, started.elapsed().as_secs_f64()))
            })?;
        let (monitor, watcher) = (&m[1], &m[2]);
        println!(
            "   watcher's own CPU: {:.0} ns a request, {:.1} ms a second ({:.2}% of a CPU); MONITOR's redis-cli: {:.0} ns a request",
            watcher.observer,
            watcher.observer * watcher.rate / 1e6,
            watcher.observer * watcher.rate / 1e7,
            monitor.observer,
        );
        service::print_summaries(&setups, &m);
    }
    Ok(())
}

/// The Redis setups, in the order [`overhead`] reads them.
const REDIS_SETUPS: [service::Setup; 7] = [
    service::Setup::Baseline,
    service::Setup::Monitor,
    service::Setup::EmptyPrograms("tracepoints"),
    service::Setup::EmptyPrograms("raw"),
    service::Setup::LeastCopy,
    service::Setup::Watcher(&["--syscall-hooks", "tracepoints"]),
    service::Setup::Watcher(&[]),
];

/// The Redis overhead section at one pipeline depth, with the cost targets: what the hooks cost the
/// server, what watcher's own threads spend per record against the in-process `reference`, what
/// watcher adds against MONITOR, and the throughput kept.
fn overhead(
    watcher: &Path,
    server_pid: u32,
    plan: &Plan,
    pipeline: u32,
    reference: f64,
) -> Result<()> {
    let n = plan.requests * if pipeline > 1 { 4 } else { 1 };
    println!(
        "\n== Overhead: redis-benchmark -c 50 -t set,get -n {n} -P {pipeline}; {} alternating rounds, medians",
        plan.rounds
    );
    println!("   CPU ns per request: redis-server, its observer (watcher / redis-cli), total, added to baseline; requests per second kept; the share of a CPU the server ran and of the host left idle; the load generator's (redis-benchmark's) CPU per request");
    let setups = service::with_against(&REDIS_SETUPS);
    let m = service::alternate_setups(watcher, "redis", server_pid, &setups, plan.rounds, || {
        let started = Instant::now();
        procs::load(n, pipeline, 3)?;
        Ok((u64::from(n) * 2, started.elapsed().as_secs_f64()))
    })?;
    let [base, monitor, empty_tp, empty_raw, least_copy, watcher_tp, watcher] =
        [0, 1, 2, 3, 4, 5, 6].map(|i| &m[i]);
    let server_added = |x: &service::Measured| x.service - base.service;
    let total_added = |x: &service::Measured| x.total() - base.total();
    let kept = |x: &service::Measured| x.rate / base.rate.max(1e-9);
    let added = server_added(watcher);
    println!(
        "   hooks: redis-server's added CPU {added:+.0} ns = {} empty tracepoints ({:+.0}), {} empty raw sys_exit ({:+.0}); on the syscall tracepoints watcher adds {:+.0}",
        times(added, server_added(empty_tp)),
        server_added(empty_tp),
        times(added, server_added(empty_raw)),
        server_added(empty_raw),
        server_added(watcher_tp),
    );
    if pipeline == 1 {
        hook_targets(base, empty_tp, empty_raw, least_copy, watcher);
    } else {
        println!(
            "   target: redis-server's added CPU <= 10% of its baseline ({:.0}%): {}",
            added / base.service * 100.0,
            verdict(added <= 0.1 * base.service),
        );
    }
    println!(
        "   observer: watcher's own CPU {:.0} ns per record = {:.2}x the in-process {reference:.0} ns (target <= 2x): {}",
        watcher.observer,
        watcher.observer / reference,
        verdict(watcher.observer <= 2.0 * reference),
    );
    let limit = if pipeline == 1 { 0.70 } else { 0.45 };
    let vs_monitor = total_added(watcher) / total_added(monitor).max(1.0);
    println!(
        "   against MONITOR: watcher adds {:+.0} ns in all, {:.0}% of MONITOR's {:+.0} (target <= {:.0}%): {}",
        total_added(watcher),
        vs_monitor * 100.0,
        total_added(monitor),
        limit * 100.0,
        verdict(vs_monitor <= limit),
    );
    monitor_floor(
        total_added(least_copy),
        reference,
        total_added(monitor),
        limit,
    );
    let floor = if pipeline == 1 { 0.85 } else { 0.65 };
    println!(
        "   throughput kept: watcher {:.0}%, MONITOR {:.0}%, watcher on the syscall tracepoints {:.0}% (target >= {:.0}%): {}",
        kept(watcher) * 100.0,
        kept(monitor) * 100.0,
        kept(watcher_tp) * 100.0,
        floor * 100.0,
        verdict(kept(watcher) >= floor),
    );
    // Throughput follows how much of a CPU the single-threaded server gets; time the host leaves idle
    // while the load saturates it is lost to scheduling, not to anyone's work.
    println!(
        "   where it went: redis-server ran {:.0}% of a CPU (baseline {:.0}%, MONITOR {:.0}%), watcher's threads {:.0}%; the host sat idle {:.0}% (baseline {:.0}%)",
        watcher.service_busy * 100.0,
        base.service_busy * 100.0,
        monitor.service_busy * 100.0,
        watcher.observer * watcher.rate / 1e7,
        watcher.idle * 100.0,
        base.idle * 100.0,
    );
    service::print_ceiling("watcher", base, watcher, floor);
    service::print_summaries(&setups, &m);
    Ok(())
}

/// The least the MONITOR target's numerator can be in this run: any capture through our hook costs the
/// server at least what the least copy costs it and drains the ring at least as the least copy does
/// (`least_copy`: both, in all), and its observer does at least the in-process pipeline's work per
/// record (`reference`). Printed with what it leaves of the target, and with an observer at its own
/// target (2x in-process), so a run says whether the target was within reach at all.
fn monitor_floor(least_copy: f64, reference: f64, monitor: f64, limit: f64) {
    let share = |added: f64| added / monitor.max(1.0) * 100.0;
    let floor = least_copy + reference;
    let at_observer_target = least_copy + 2.0 * reference;
    println!(
        "   floor of that target: the least copy adds {least_copy:+.0} ns in all (hook, copy and drain), the in-process pipeline {reference:.0}: together {floor:+.0} = {:.0}% of MONITOR's; with an observer at its own target (2x in-process) {:.0}%: {}",
        share(floor),
        share(at_observer_target),
        if share(floor) > limit * 100.0 {
            "out of reach in this run, even for an observer that cost live what it costs in-process"
        } else if share(at_observer_target) > limit * 100.0 {
            "within reach in this run only for an observer cheaper than its own target"
        } else {
            "within reach in this run"
        },
    );
}

/// The -P 1 hook targets, judged round by round: the server's CPU under watcher against its CPU under
/// empty programs in the same round.
///
/// Every round runs each setup once, back to back, within about half a minute; the VM's speed drifts
/// over the minutes between rounds, by more than the floors themselves (the empty tracepoints' floor
/// measured anywhere from +826 to +2525 ns across runs on one VM). A difference of medians taken
/// over all rounds carries that drift; a difference within a round mostly cancels it. So each target is
/// the median, over rounds, of how far watcher's server CPU is above what the target allows in that
/// round, and how many rounds met it.
///
/// The least copy (`bench-probes --least-copy`) is judged the same way against the empty tracepoints:
/// it stamps and copies the server's reads and writes and does nothing else, so where it costs the
/// server more than the empty tracepoints, no capture through this hook and this ring can meet the
/// 1.0x target in that run, and what watcher adds above it is the part our programs could still save.
/// Likewise against 1.5x the empty raw programs: where the least copy adds more, the 1.5x target is
/// out of reach of any capture in that round.
fn hook_targets(
    base: &service::Measured,
    empty_tp: &service::Measured,
    empty_raw: &service::Measured,
    least_copy: &service::Measured,
    watcher: &service::Measured,
) {
    let round = |m: &service::Measured, r: usize| m.round(r).service;
    let rounds = watcher.rounds.len();
    let paired = |excess: &dyn Fn(usize) -> f64| service::by_round(rounds, excess);
    // Watcher's added CPU at most 1.0x the empty tracepoints' is watcher's server CPU at most theirs.
    let (over_tp, met_tp) = paired(&|r| round(watcher, r) - round(empty_tp, r));
    let (least_over_tp, least_met_tp) = paired(&|r| round(least_copy, r) - round(empty_tp, r));
    let (over_least, _) = paired(&|r| round(watcher, r) - round(least_copy, r));
    let above_raw = |m: &service::Measured, r: usize| {
        (round(m, r) - round(base, r)) - 1.5 * (round(empty_raw, r) - round(base, r))
    };
    let (over_raw, met_raw) = paired(&|r| above_raw(watcher, r));
    let (least_over_raw, least_met_raw) = paired(&|r| above_raw(least_copy, r));
    let list = |m: &service::Measured| {
        m.rounds
            .iter()
            .map(|v| format!("{:.0}", v.service))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "   redis-server's CPU per request by round: baseline {}; empty tracepoints {}; empty raw {}; least copy {}; watcher {}",
        list(base),
        list(empty_tp),
        list(empty_raw),
        list(least_copy),
        list(watcher),
    );
    println!(
        "   within a round, watcher's redis-server CPU is {over_tp:+.0} ns from the empty tracepoints' (median; at or below in {met_tp} of {rounds} rounds) and {over_raw:+.0} ns from 1.5x the empty raw programs' added CPU ({met_raw} of {rounds})",
    );
    println!(
        "   floor of any capture on this hook: the least copy adds {:+.0} ns to redis-server; within a round it is {least_over_tp:+.0} ns from the empty tracepoints (at or below in {least_met_tp} of {rounds} rounds) and {least_over_raw:+.0} ns from 1.5x the empty raw programs' added CPU ({least_met_raw} of {rounds}), and watcher is {over_least:+.0} ns above it",
        least_copy.service - base.service,
    );
    println!(
        "   target, round by round: <= 1.0x empty tracepoints: {}; <= 1.5x empty programs on the hooks used: {}",
        verdict(over_tp <= 0.0),
        verdict(over_raw <= 0.0),
    );
}

/// `added` as a multiple of `floor`, unless the floor is lost in this run's noise.
fn times(added: f64, floor: f64) -> String {
    if floor > 0.0 {
        format!("{:.2}x", added / floor)
    } else {
        "(no ratio: the floor measured <= 0, below this run's noise)".to_string()
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT MET"
    }
}

fn capacity(bench: &Bench, plan: &Plan) -> Result<()> {
    println!("\n== Capacity: watcher --pid <redis-server> --json-output /dev/null, redis-benchmark -c 50 at full speed");
    println!("   every SET and GET must become a record, with nothing lost");
    let n = plan.requests * 2;
    // Each call is copied whole up to --max-call-bytes (1 MiB): a -P 16 batch of 4 KiB values is a
    // 66 KB write, a 1 MiB value a call of just over the ceiling (its last bytes are a counted gap).
    for (pipeline, value_bytes, requests) in [
        (1, 3, n),
        (16, 3, n),
        (16, 4096, n),
        (1, 1 << 20, BIG_VALUE_REQUESTS),
    ] {
        let observer = bench.observe(&[])?;
        let started = Instant::now();
        procs::load(requests, pipeline, value_bytes)?;
        let rate = f64::from(requests * 2) / started.elapsed().as_secs_f64();
        let said = observer.stop()?;
        let summary = procs::parse_summary(&said).unwrap_or_default();
        let ok = summary.lost == 0 && summary.records >= u64::from(requests * 2);
        println!(
            "   -P {pipeline:>2} -d {value_bytes:>7} {:>7.0} req/s  {:>7} requests  {:>7} records  {:>5} lost  {}",
            rate,
            requests * 2,
            summary.records,
            summary.lost,
            verdict(ok)
        );
        print_loss(ok, &said);
    }
    export_to_file(bench, n)?;
    copy_cost(bench, plan)
}

/// The -P 16 capacity row again, exporting to a real file: every record written, none lost, none left
/// unexported, and the file holds one line per record.
fn export_to_file(bench: &Bench, requests: u32) -> Result<()> {
    let path = std::env::temp_dir().join(format!("watcher-bench-{}.ndjson", std::process::id()));
    let observer = bench.observe_to(&path, &[])?;
    let started = Instant::now();
    procs::load(requests, 16, 3)?;
    let rate = f64::from(requests * 2) / started.elapsed().as_secs_f64();
    let said = observer.stop()?;
    let summary = procs::parse_summary(&said).unwrap_or_default();
    let lines = std::fs::read_to_string(&path).map_or(0, |text| text.lines().count() as u64);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(&path);
    let ok = summary.lost == 0
        && summary.records >= u64::from(requests * 2)
        && summary.exported == summary.records
        && lines == summary.records;
    println!(
        "   -P 16 -d       3 {rate:>7.0} req/s  {:>7} requests  {:>7} records  {:>5} lost, exported to a file: {} records, {lines} lines, {} MB  {}",
        requests * 2,
        summary.records,
        summary.lost,
        summary.exported,
        size / 1_000_000,
        verdict(ok)
    );
    print_loss(ok, &said);
    Ok(())
}

/// Under a row that failed, watcher's own summary: which counters the loss is in (a full ring, a full
/// queue to the shards, ...) says where it happened.
fn print_loss(ok: bool, said: &str) {
    if !ok {
        println!("      {said}");
    }
}

/// Requests of the 1 MiB-value runs (each SET and GET moves 1 MiB through the ring).
const BIG_VALUE_REQUESTS: u32 = 200;

/// What copying every call whole costs: the same load with nothing attached, with a watcher that cuts
/// each call at 16 KiB (what one call copied before, losing pipelined commands past it) and with the
/// default 1 MiB ceiling, alternating.
fn copy_cost(bench: &Bench, plan: &Plan) -> Result<()> {
    // None: nothing attached.
    const CONFIGS: [Option<&[&str]>; 3] = [None, Some(&["--max-call-bytes", "16384"]), Some(&[])];
    let rounds = plan.rounds.min(5);
    println!("\n== Copying whole calls: CPU ns per request, baseline vs watcher --max-call-bytes 16384 vs the default 1048576, medians of {rounds} alternating rounds");
    for (pipeline, value_bytes, requests) in
        [(16, 4096, plan.requests), (1, 1 << 20, BIG_VALUE_REQUESTS)]
    {
        let mut service = [Vec::new(), Vec::new(), Vec::new()];
        let mut observer_cpu = [Vec::new(), Vec::new(), Vec::new()];
        for round in 0..rounds {
            for i in service::round_order(round, CONFIGS.len()) {
                let extra = CONFIGS[i];
                let observer = extra.map(|extra| bench.observe(extra)).transpose()?;
                let cost = bench.measure(observer.as_ref(), || {
                    procs::load(requests, pipeline, value_bytes).map(|()| requests * 2)
                })?;
                if let Some(observer) = observer {
                    observer.stop()?;
                }
                service[i].push(cost.service);
                observer_cpu[i].push(cost.observer);
            }
        }
        let [base, cut_server, whole_server] = service.map(median);
        let [_, cut_watcher, whole_watcher] = observer_cpu.map(median);
        let (cut, whole) = (cut_server + cut_watcher, whole_server + whole_watcher);
        println!(
            "   -P {pipeline:>2} -d {value_bytes:>7}: baseline server {base:.0} ns; cut at 16 KiB adds {:.0} ({:+.0} server, {cut_watcher:.0} watcher); whole up to 1 MiB adds {:.0} ({:+.0} server, {whole_watcher:.0} watcher)",
            cut - base,
            cut_server - base,
            whole - base,
            whole_server - base,
        );
    }
    Ok(())
}

/// What watcher costs while nothing happens: its CPU per second, attached to a redis-server that gets
/// no requests (and the `--against` binary's, alternating). Every wake-up of a thread costs tens of
/// microseconds of CPU on a virtual machine, so this is mostly the timers of its threads.
fn idle(bench: &Bench, plan: &Plan) -> Result<()> {
    let span = if plan.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    };
    let rounds = plan.rounds.min(3);
    let setups = service::with_against(&[service::Setup::Watcher(&[])]);
    println!(
        "\n== Idle: watcher attached to a redis-server that gets no requests, {}s, median of {rounds} rounds",
        span.as_secs()
    );
    let mut per_second = vec![Vec::new(); setups.len()];
    for _ in 0..rounds {
        for (setup, samples) in setups.iter().zip(&mut per_second) {
            let Some(observer) = setup.observer(bench.watcher, "redis", bench.server_pid)? else {
                continue;
            };
            let before = procs::cpu_ns(observer.pid());
            std::thread::sleep(span);
            let used = procs::cpu_ns(observer.pid()).saturating_sub(before);
            samples.push(used as f64 / span.as_secs_f64() / 1e6);
            service::stop_observer(observer)?;
        }
    }
    for (setup, samples) in setups.iter().zip(per_second) {
        let ms = median(samples);
        println!(
            "   {:<36} {ms:5.1} ms of CPU per second ({:.2}% of a CPU)",
            setup.label(),
            ms / 10.0,
        );
    }
    println!(
        "   the yardstick: a thread that only sleeps 10 ms at a time uses {:.1} us of CPU per wake-up on this host",
        wake_up_cost_us()?
    );
    Ok(())
}

/// CPU time (µs) one wake-up costs a thread here: a thread sleeps 10 ms at a time, and its own CPU
/// time (the kernel's, from `schedstat`) is divided by the times it ran.
fn wake_up_cost_us() -> Result<f64> {
    let schedstat = || -> Result<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
        let mut fields = text.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(cpu_ns)), _, Some(Ok(runs))) = (fields.next(), fields.next(), fields.next())
        else {
            anyhow::bail!("unexpected /proc/thread-self/schedstat: {text}");
        };
        Ok((cpu_ns, runs))
    };
    std::thread::spawn(move || {
        let (cpu_before, runs_before) = schedstat()?;
        for _ in 0..200 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let (cpu_after, runs_after) = schedstat()?;
        Ok(cpu_after.saturating_sub(cpu_before) as f64
            / runs_after.saturating_sub(runs_before).max(1) as f64
            / 1e3)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the wake-up probe thread panicked"))?
}

fn growth(bench: &Bench, plan: &Plan) -> Result<()> {
    let n = plan.requests;
    // An even number of rounds, every other one in reverse order (`service::round_order`): in a fixed
    // order the million-record row always ran last, right after the 100 000 one, and read +8% and +13%
    // in two runs where alternating pairs by hand put it 3% below the 1 000 row.
    let rounds = plan.rounds.clamp(2, 4) / 2 * 2;
    println!("\n== Growth: CPU ns per request (server + watcher), redis-benchmark -P 1 -n {n}, medians of {rounds} rounds, every other one in reverse order");
    let stored = [1_000u32, 10_000, 100_000, 1_000_000];
    let idle = [10usize, 1_000, 10_000];
    let mut by_stored = vec![Vec::new(); stored.len()];
    let mut by_idle = vec![Vec::new(); idle.len()];
    let mut rss = vec![0.0; stored.len()];
    for round in 0..rounds {
        for i in service::round_order(round, stored.len()) {
            let records = stored[i];
            // The store holds a million records, and the byte budget lets it (about 300 MB of them).
            let observer = bench.observe(&["--max-records", "1000000", "--max-memory", "4096"])?;
            procs::load(records / 2, 16, 3)?;
            std::thread::sleep(Duration::from_millis(300));
            rss[i] = procs::rss_mib(observer.pid());
            let cost = bench.measure(Some(&observer), || procs::load(n, 1, 3).map(|()| n * 2))?;
            by_stored[i].push(cost.service + cost.observer);
            observer.stop()?;
        }
        for i in service::round_order(round, idle.len()) {
            let count = idle[i];
            let observer = bench.observe(&[])?;
            let conns = procs::idle_connections(count)?;
            let cost = bench.measure(Some(&observer), || procs::load(n, 1, 3).map(|()| n * 2))?;
            by_idle[i].push(cost.service + cost.observer);
            drop(conns);
            observer.stop()?;
        }
    }
    // Per size, the median cost and its growth over the smallest.
    let report = |what: &str, sizes: &[String], costs: Vec<Vec<f64>>| -> Vec<f64> {
        let medians: Vec<f64> = costs.into_iter().map(median).collect();
        let growth: Vec<f64> = medians.iter().map(|m| m / medians[0] - 1.0).collect();
        for ((size, m), g) in sizes.iter().zip(&medians).zip(&growth) {
            println!("   {what} {size:>9}: {m:>8.0} ns ({:+.0}%)", g * 100.0);
        }
        growth
    };
    let by_stored = report(
        "stored records  ",
        &stored.map(|s| s.to_string()),
        by_stored,
    );
    let at_million = by_stored[stored.len() - 1];
    println!(
        "   growth with 1 000 000 records stored: {:+.1}% (target <= +5%): {}",
        at_million * 100.0,
        verdict(at_million <= 0.05)
    );
    let by_idle = report("idle connections", &idle.map(|s| s.to_string()), by_idle);
    let worst = by_idle.iter().copied().fold(0.0, f64::max);
    println!(
        "   growth with idle connections: {:+.0}% (target <= +20%): {}",
        worst * 100.0,
        verdict(worst <= 0.2)
    );
    let last = stored.len() - 1;
    println!(
        "\n== Memory: watcher RSS with 100 000 records stored: {:.0} MiB (target <= 150): {}; with 1 000 000: {:.0} MiB, {:.0} bytes per stored record",
        rss[2],
        verdict(rss[2] <= 150.0),
        rss[last],
        (rss[last] - rss[0]) * 1024.0 * 1024.0 / f64::from(stored[last] - stored[0]),
    );
    Ok(())
}

fn soak(bench: &Bench, plan: &Plan) -> Result<()> {
    println!(
        "\n== Soak: watcher with default settings under continuous redis-benchmark -P 16 for {}s, RSS in MiB",
        plan.soak.as_secs()
    );
    let observer = bench.observe(&[])?;
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    while started.elapsed() < plan.soak {
        procs::load(plan.requests, 16, 3)?;
        if started.elapsed() >= next_sample {
            samples.push(procs::rss_mib(observer.pid()));
            next_sample += plan.soak / 10;
        }
    }
    samples.push(procs::rss_mib(observer.pid()));
    let summary = procs::parse_summary(&observer.stop()?).unwrap_or_default();
    let settled = samples.get(1..).unwrap_or(&samples);
    let (low, high) = settled
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), s| (l.min(*s), h.max(*s)));
    let line: Vec<String> = samples.iter().map(|s| format!("{s:.0}")).collect();
    println!("   samples: {}", line.join(" "));
    println!(
        "   after the first sample: {low:.0}..{high:.0} MiB ({} records, {} lost); flat (within 10%): {}",
        summary.records,
        summary.lost,
        verdict(high <= low * 1.1)
    );
    Ok(())
}

fn micro(quick: bool) -> Result<()> {
    println!("\n== In-process: cargo bench -p watcher-user --bench pipeline --bench ui");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(crate::root()).args([
        "bench",
        "-p",
        "watcher-user",
        "--bench",
        "pipeline",
        "--bench",
        "ui",
        "--",
    ]);
    if quick {
        cmd.args(["--warm-up-time", "1", "--measurement-time", "3"]);
    }
    crate::check(&mut cmd).context("running the criterion benchmarks")
}
