//! The kernel programs' own time, from the kernel's BPF statistics (`kernel.bpf_stats_enabled`): for
//! each watcher setup, the run time and run count of every program it loaded, read from
//! `/proc/<watcher>/fdinfo` before and after the Redis load. Unlike the CPU figures of the overhead
//! tables, which subtract two noisy measurements, this is the time spent inside the programs, so a
//! change to the kernel side shows here even when the server's added CPU is lost in the noise.
//!
//! A run with every connection filtered out by port splits watcher's time into finding a call's socket
//! and copying its bytes; the least copy (`bench-probes --least-copy`) is the copy alone.
//!
//! Statistics cost two clock reads per program run, so they are on only for this section, and are put
//! back as they were afterwards.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{Context, Result};

use super::{
    median, procs,
    service::{self, Setup},
    Plan,
};

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Watcher with every connection of the server filtered out by port: the programs run as far as the
/// socket lookup and copy nothing. Set against empty programs and full watcher, it splits watcher's
/// program time into finding the call and its socket, and copying its bytes into the ring.
const COPYING_NOTHING: Setup = Setup::Watcher(&["--port", "1"]);

/// The setups measured, before [`service::with_against`] adds an older build.
const SETUPS: [Setup; 5] = [
    Setup::EmptyPrograms("raw"),
    Setup::LeastCopy,
    Setup::Watcher(&["--syscall-hooks", "tracepoints"]),
    COPYING_NOTHING,
    Setup::Watcher(&[]),
];

/// Turns the statistics on, and back to what they were when dropped.
struct StatsOn(String);

impl StatsOn {
    fn new() -> Result<Self> {
        let was = fs::read_to_string(STATS_SYSCTL).context("reading kernel.bpf_stats_enabled")?;
        fs::write(STATS_SYSCTL, "1").context("turning on kernel.bpf_stats_enabled")?;
        Ok(Self(was.trim().to_string()))
    }
}

impl Drop for StatsOn {
    fn drop(&mut self) {
        let _ = fs::write(STATS_SYSCTL, &self.0);
    }
}

/// Total run time (ns) and run count of the programs `pid` holds, each counted once.
fn program_stats(pid: u32) -> (u64, u64) {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return (0, 0);
    };
    let mut programs = BTreeMap::new();
    for info in fds.filter_map(Result::ok) {
        let Ok(text) = fs::read_to_string(info.path()) else {
            continue;
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let (Some(id), Some(time), Some(runs)) =
            (field("prog_id:"), field("run_time_ns:"), field("run_cnt:"))
        {
            programs.insert(id, (time, runs));
        }
    }
    programs
        .values()
        .fold((0, 0), |(t, r), (time, runs)| (t + time, r + runs))
}

/// The section: program ns per request, runs per request and ns per run, medians of alternating rounds
/// at -P 1.
pub fn section(watcher: &Path, server_pid: u32, plan: &Plan) -> Result<()> {
    let n = plan.requests;
    println!(
        "\n== Kernel programs' own time (bpf_stats): redis-benchmark -c 50 -t set,get -n {n} -P 1; {} alternating rounds, medians",
        plan.rounds
    );
    println!("   program ns per request (all programs, all processes), program runs per request, ns per run");
    let _stats = StatsOn::new()?;
    let setups = service::with_against(&SETUPS);
    let mut runs: Vec<Vec<(f64, f64)>> = setups.iter().map(|_| Vec::new()).collect();
    for round in 0..plan.rounds {
        for i in service::round_order(round, setups.len()) {
            let setup = &setups[i];
            let observer = setup
                .observer(watcher, "redis", server_pid)?
                .context("a watcher setup has an observer")?;
            let before = program_stats(observer.pid());
            procs::load(n, 1, 3)?;
            let after = program_stats(observer.pid());
            service::stop_observer(observer)?;
            let requests = f64::from(n) * 2.0;
            runs[i].push((
                (after.0 - before.0) as f64 / requests,
                (after.1 - before.1) as f64 / requests,
            ));
        }
    }
    let mut time_of = BTreeMap::new();
    for (setup, runs) in setups.iter().zip(runs) {
        let time = median(runs.iter().map(|r| r.0).collect());
        let count = median(runs.iter().map(|r| r.1).collect());
        println!(
            "   {:<34} {:>8.0} ns {:>8.2} runs {:>8.0} ns/run",
            setup.label(),
            time,
            count,
            time / count.max(1e-9),
        );
        time_of.insert(setup.label(), time);
    }
    let of = |setup: Setup| time_of.get(&setup.label()).copied().unwrap_or(0.0);
    let (empty, finding, all) = (
        of(Setup::EmptyPrograms("raw")),
        of(COPYING_NOTHING),
        of(Setup::Watcher(&[])),
    );
    println!(
        "   watcher's {all:.0} ns = {empty:.0} the empty hook + {:.0} finding the call, its task and its socket \
         (--port 1, which copies nothing) + {:.0} copying the bytes into the ring; only the server's calls \
         are copied, so that last part is all added to the server",
        finding - empty,
        all - finding,
    );
    let least = of(Setup::LeastCopy);
    println!(
        "   the least copy (the server's reads and writes stamped and copied, nothing else) spends {least:.0} ns, {:.0} above the empty hook; watcher spends {:.0} above it, the part of its programs that is not the copy",
        least - empty,
        all - least,
    );
    Ok(())
}
