//! What the HTTP, HTTPS and MySQL sections share: one service process under a load, measured
//! alternately under each of a list of setups (by default nothing attached, empty programs on watcher's
//! tracepoints, and watcher `watch PROTOCOL --pid <service>`, possibly with extra arguments); CPU per
//! request of the service and of its observer, medians, printed as a table.

use std::{path::Path, process::Command, thread, time::Duration};

use anyhow::Result;

use super::{
    median,
    procs::{self, Observer},
};

/// Who watches the service during a run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Baseline,
    EmptyPrograms,
    /// `watcher watch PROTOCOL --headless --pid <service> --json-output /dev/null` and these arguments.
    Watcher(&'static [&'static str]),
}

impl Setup {
    /// The setups of [`alternate`].
    const ALL: [Setup; 3] = [Setup::Baseline, Setup::EmptyPrograms, Setup::Watcher(&[])];

    fn label(self) -> String {
        match self {
            Setup::Baseline => "baseline".into(),
            Setup::EmptyPrograms => "empty programs".into(),
            Setup::Watcher([]) => "watcher".into(),
            Setup::Watcher(args) => format!("watcher {}", args.join(" ")),
        }
    }

    fn observer(self, watcher: &Path, protocol: &str, service: u32) -> Result<Option<Observer>> {
        Ok(match self {
            Setup::Baseline => None,
            Setup::EmptyPrograms => Some(Observer::start(
                Command::new(watcher).arg("bench-probes"),
                Some("attached"),
            )?),
            Setup::Watcher(args) => Some(Observer::start(
                Command::new(watcher)
                    .args([
                        "watch",
                        protocol,
                        "--headless",
                        "--pid",
                        &service.to_string(),
                    ])
                    .args(["--json-output", "/dev/null"])
                    .args(args),
                Some("capturing"),
            )?),
        })
    }
}

/// One measured run: CPU ns per request of the service and of the observer, requests per second, and
/// watcher's summary.
fn run(
    watcher: &Path,
    protocol: &str,
    service: u32,
    setup: Setup,
    load: &mut impl FnMut() -> Result<(u64, f64)>,
) -> Result<(f64, f64, f64, String)> {
    let observer = setup.observer(watcher, protocol, service)?;
    let observer_pid = observer.as_ref().map(Observer::pid);
    let cpu = || {
        (
            procs::cpu_ns(service),
            observer_pid.map_or(0, procs::cpu_ns),
        )
    };
    let before = cpu();
    let (requests, secs) = load()?;
    let requests = requests.max(1) as f64;
    // Let the observer drain what is in flight; its CPU for that belongs to these requests.
    thread::sleep(Duration::from_millis(300));
    let after = cpu();
    let summary = match observer {
        Some(o) => o.stop()?,
        None => String::new(),
    };
    Ok((
        (after.0 - before.0) as f64 / requests,
        (after.1 - before.1) as f64 / requests,
        requests / secs.max(1e-9),
        summary,
    ))
}

/// Runs `load` (which returns the requests it completed and the seconds it took) `rounds` times under
/// each setup, alternating, and prints per setup the medians of CPU ns per request (service, observer,
/// total, added to the baseline) and of the rate kept. Returns the last watcher run's summary.
pub fn alternate(
    watcher: &Path,
    protocol: &str,
    service: u32,
    rounds: usize,
    load: impl FnMut() -> Result<(u64, f64)>,
) -> Result<String> {
    let summaries = alternate_setups(watcher, protocol, service, &Setup::ALL, rounds, load)?;
    Ok(summaries.into_iter().last().unwrap_or_default().1)
}

/// [`alternate`] over `setups` (the first is what the others are compared with). Returns, per setup
/// that runs a watcher, its label and its last run's summary.
pub fn alternate_setups(
    watcher: &Path,
    protocol: &str,
    service: u32,
    setups: &[Setup],
    rounds: usize,
    mut load: impl FnMut() -> Result<(u64, f64)>,
) -> Result<Vec<(String, String)>> {
    let mut runs: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); setups.len()];
    let mut last_summaries = vec![String::new(); setups.len()];
    for _ in 0..rounds {
        for (i, setup) in setups.iter().enumerate() {
            let (cost, observer, rate, summary) =
                run(watcher, protocol, service, *setup, &mut load)?;
            runs[i].push((cost, observer, rate));
            last_summaries[i] = summary;
        }
    }
    let total = |i: usize| median(runs[i].iter().map(|(s, o, _)| s + o).collect());
    let rate = |i: usize| median(runs[i].iter().map(|r| r.2).collect());
    for (i, setup) in setups.iter().enumerate() {
        println!(
            "   {:<18} {:>8.0} {:>8.0} {:>8.0} {:>+8.0}   {:>8.0} req/s ({:.0}% of baseline)",
            setup.label(),
            median(runs[i].iter().map(|c| c.0).collect()),
            median(runs[i].iter().map(|c| c.1).collect()),
            total(i),
            total(i) - total(0),
            rate(i),
            rate(i) / rate(0).max(1e-9) * 100.0,
        );
    }
    Ok(setups
        .iter()
        .zip(last_summaries)
        .filter(|(setup, _)| matches!(setup, Setup::Watcher(_)))
        .map(|(setup, summary)| (setup.label(), summary))
        .collect())
}
