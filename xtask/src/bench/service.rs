//! What every overhead section shares: one service process under a load, measured alternately under
//! each of a list of setups (by default nothing attached, empty programs on each kind of watcher's
//! syscall hooks, and watcher `watch PROTOCOL --pid <service>`, possibly with extra arguments; for
//! Redis also `redis-cli MONITOR`); CPU per request of the service, of its observer and of the load
//! generator, and the rate the load kept, medians, printed as a table; and the rate's ceiling, what the
//! host's CPUs allow at those costs, which splits a loss of rate into cost and scheduling.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    thread,
    time::Duration,
};

use anyhow::Result;

use super::{
    median,
    procs::{self, Observer},
};

/// Who watches the service during a run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Baseline,
    /// `redis-cli MONITOR` (the Redis service only).
    Monitor,
    /// `watcher bench-probes --hooks HOOKS`: programs that return at once, on watcher's syscall hooks
    /// (`raw` or `tracepoints`).
    EmptyPrograms(&'static str),
    /// `watcher bench-probes --least-copy <service>`: the least a capture must do, stamp the service's
    /// reads and writes and copy their bytes into the ring (raw `sys_exit`).
    LeastCopy,
    /// `watcher watch PROTOCOL --headless --pid <service> --json-output /dev/null` and these arguments.
    Watcher(&'static [&'static str]),
    /// The same with the binary given to `cargo xtask bench --against` (see [`compare_against`]).
    Against(&'static [&'static str]),
}

/// The binary of [`Setup::Against`], when one was given.
static AGAINST: OnceLock<PathBuf> = OnceLock::new();

/// Makes every overhead table also run `binary` as a watcher, alternating with the others.
pub fn compare_against(binary: PathBuf) {
    let _ = AGAINST.set(binary);
}

/// `setups`, and after them, when a binary to compare against was given, [`Setup::Against`] with the
/// arguments of the last watcher among them (the configuration the section is about).
pub fn with_against(setups: &[Setup]) -> Vec<Setup> {
    let mut all = setups.to_vec();
    let last_watcher = setups.iter().rev().find_map(|s| match s {
        Setup::Watcher(args) => Some(*args),
        _ => None,
    });
    if let (Some(_), Some(args)) = (AGAINST.get(), last_watcher) {
        all.push(Setup::Against(args));
    }
    all
}

impl Setup {
    /// The setups of [`alternate`].
    pub const ALL: [Setup; 4] = [
        Setup::Baseline,
        Setup::EmptyPrograms("tracepoints"),
        Setup::EmptyPrograms("raw"),
        Setup::Watcher(&[]),
    ];

    pub fn label(self) -> String {
        match self {
            Setup::Baseline => "baseline".into(),
            Setup::Monitor => "redis-cli MONITOR".into(),
            Setup::EmptyPrograms(hooks) => format!("empty {hooks}"),
            Setup::LeastCopy => "least copy".into(),
            Setup::Watcher([]) => "watcher".into(),
            Setup::Watcher(args) => format!("watcher {}", args.join(" ")),
            Setup::Against([]) => "watcher --against binary".into(),
            Setup::Against(args) => format!("watcher --against binary {}", args.join(" ")),
        }
    }

    pub fn observer(
        self,
        watcher: &Path,
        protocol: &str,
        service: u32,
    ) -> Result<Option<Observer>> {
        Ok(match self {
            Setup::Baseline => None,
            Setup::Monitor => Some(Observer::start(
                Command::new("redis-cli").args(["-p", &procs::PORT.to_string(), "monitor"]),
                None,
            )?),
            Setup::EmptyPrograms(hooks) => Some(Observer::start(
                Command::new(watcher).args(["bench-probes", "--hooks", hooks]),
                Some("attached"),
            )?),
            Setup::LeastCopy => Some(Observer::start(
                Command::new(watcher).args(["bench-probes", "--least-copy", &service.to_string()]),
                Some("attached"),
            )?),
            Setup::Watcher(_) | Setup::Against(_) => Some(Observer::start(
                Command::new(match (self, AGAINST.get()) {
                    (Setup::Against(_), Some(binary)) => binary.as_path(),
                    _ => watcher,
                })
                .args([
                    "watch",
                    protocol,
                    "--headless",
                    "--pid",
                    &service.to_string(),
                ])
                .args(["--json-output", "/dev/null"])
                .args(match self {
                    Setup::Watcher(args) | Setup::Against(args) => args,
                    _ => &[][..],
                }),
                Some("capturing"),
            )?),
        })
    }
}

/// One setup's medians over its rounds.
pub struct Measured {
    /// CPU ns per request of the service.
    pub service: f64,
    /// CPU ns per request of the observer (watcher, or redis-cli).
    pub observer: f64,
    /// CPU ns per request of the load generator (redis-benchmark, wrk, sysbench).
    pub load: f64,
    /// Requests per second the load reached.
    pub rate: f64,
    /// Share of the load's time the service's threads ran, summed (1.0 = one CPU's worth).
    pub service_busy: f64,
    /// Share of the host's CPU time left idle during the load: what neither the load, the service nor
    /// the observer used (on a host the load saturates, time lost to scheduling).
    pub idle: f64,
    /// The last run's summary line from watcher (empty for other setups).
    pub summary: String,
    /// Each round's figures, in the order run (one entry for a single run): what comparisons within a
    /// round are made of.
    pub rounds: Vec<Round>,
}

/// One setup's figures in one round.
#[derive(Clone, Copy, Default)]
pub struct Round {
    /// CPU ns per request of the service.
    pub service: f64,
    /// CPU ns per request of the service and its observer together.
    pub total: f64,
    /// Requests per second the load reached.
    pub rate: f64,
}

/// The median over `rounds` rounds of `excess` in each, and in how many rounds it was at most zero. The
/// VM's speed drifts between rounds by more than most differences measured; within a round it mostly
/// cancels, so comparisons are made round by round.
pub fn by_round(rounds: usize, excess: impl Fn(usize) -> f64) -> (f64, usize) {
    let each: Vec<f64> = (0..rounds).map(excess).collect();
    let at_most_zero = each.iter().filter(|e| **e <= 0.0).count();
    (super::median(each), at_most_zero)
}

impl Measured {
    /// Round `r`'s figures (zeros for a round not run).
    pub fn round(&self, r: usize) -> Round {
        self.rounds.get(r).copied().unwrap_or_default()
    }

    /// CPU ns per request of the service and its observer together.
    pub fn total(&self) -> f64 {
        self.service + self.observer
    }

    /// CPU ns per request of the service, its observer and the load together: all the work a request
    /// made on the host.
    pub fn with_load(&self) -> f64 {
        self.total() + self.load
    }

    /// The most requests per second the host's CPUs allow at the CPU the service, the observer and the
    /// load each spent per request: the rate if no CPU ever sat idle.
    pub fn ceiling(&self) -> f64 {
        let cpus = thread::available_parallelism().map_or(1, std::num::NonZero::get);
        cpus as f64 * 1e9 / self.with_load().max(1.0)
    }

    /// The share of [`Self::ceiling`] the load reached: what scheduling lost, not anyone's work.
    pub fn reached(&self) -> f64 {
        self.rate / self.ceiling()
    }
}

/// Splits the share of `base`'s rate that `x` kept into what the CPU per request decides (the ratio
/// of the ceilings) and what scheduling decides (the ratio of the shares of the ceiling reached), and
/// says what `x`'s observer would have to cost for `floor` to be kept at baseline's scheduling.
pub fn print_ceiling(label: &str, base: &Measured, x: &Measured, floor: f64) {
    let by_cost = x.ceiling() / base.ceiling().max(1e-9);
    let by_scheduling = x.reached() / base.reached().max(1e-9);
    // floor = ceiling ratio at baseline's scheduling <=> x's CPU per request <= base's / floor.
    let observer_max = base.with_load() / floor - x.service - x.load;
    let needs = if observer_max > 0.0 {
        format!("needs {label}'s own CPU <= {observer_max:.0} ns per request at this run's service and load cost")
    } else {
        "is out of reach at this run's service and load cost even with an observer that cost nothing"
            .to_owned()
    };
    println!(
        "   ceiling: at the CPU spent per request (service + observer + load: baseline {:.0}, {label} {:.0} ns) the host's CPUs allow {:.0} and {:.0} req/s; the runs reached {:.0}% and {:.0}% of them. Kept {:.0}% = {:.0}% (CPU per request) x {:.0}% (scheduling); {:.0}% kept at baseline's scheduling {needs}",
        base.with_load(),
        x.with_load(),
        base.ceiling(),
        x.ceiling(),
        base.reached() * 100.0,
        x.reached() * 100.0,
        by_cost * by_scheduling * 100.0,
        by_cost * 100.0,
        by_scheduling * 100.0,
        floor * 100.0,
    );
}

/// One measured run: CPU ns per request of the service and of the observer, requests per second, and
/// watcher's summary.
fn run(
    watcher: &Path,
    protocol: &str,
    service: u32,
    setup: Setup,
    load: &mut impl FnMut() -> Result<(u64, f64)>,
) -> Result<Measured> {
    let observer = setup.observer(watcher, protocol, service)?;
    let observer_pid = observer.as_ref().map(Observer::pid);
    let cpu = || {
        (
            procs::cpu_ns(service),
            observer_pid.map_or(0, procs::cpu_ns),
        )
    };
    let before = cpu();
    let host_before = procs::host_ticks();
    let load_before = procs::children_cpu_ns();
    let (requests, secs) = load()?;
    let load_cpu = procs::children_cpu_ns().saturating_sub(load_before);
    let host_after = procs::host_ticks();
    let service_ran = procs::cpu_ns(service).saturating_sub(before.0);
    let requests = requests.max(1) as f64;
    // Let the observer drain what is in flight; its CPU for that belongs to these requests.
    thread::sleep(Duration::from_millis(300));
    let after = cpu();
    let summary = match observer {
        Some(o) => stop_observer(o)?,
        None => String::new(),
    };
    if matches!(setup, Setup::Watcher(_) | Setup::Against(_)) {
        let recorded = procs::parse_summary(&summary).map_or(0, |s| s.records);
        // HTTPS without TLS capture records nothing by design; elsewhere every request is a record.
        if recorded == 0 && !summary.is_empty() && !matches!(setup, Setup::Watcher(["--no-tls"])) {
            println!(
                "   warning: a {} run recorded nothing; its figures do not count for much",
                setup.label()
            );
        }
    }
    let service = (after.0 - before.0) as f64 / requests;
    let observer = (after.1 - before.1) as f64 / requests;
    let rate = requests / secs.max(1e-9);
    Ok(Measured {
        service,
        observer,
        load: load_cpu as f64 / requests,
        rate,
        service_busy: service_ran as f64 / (secs.max(1e-9) * 1e9),
        idle: (host_after.0 - host_before.0) as f64 / (host_after.1 - host_before.1).max(1) as f64,
        summary,
        rounds: vec![Round {
            service,
            total: service + observer,
            rate,
        }],
    })
}

/// The pause after an observer exits, before the next run attaches anything.
const SETTLE: Duration = Duration::from_secs(3);

/// Stops `observer` and returns its summary once the next run may attach: the kernel releases an
/// exited watcher's links a while later, and syscall tracepoints attached meanwhile were seen to miss
/// every call of the processes already running.
pub fn stop_observer(observer: Observer) -> Result<String> {
    let summary = observer.stop()?;
    thread::sleep(SETTLE);
    Ok(summary)
}

/// Runs `load` (which returns the requests it completed and the seconds it took) `rounds` times under
/// each of [`Setup::ALL`], alternating, and prints the table of [`alternate_setups`]. Returns the
/// medians, in the order of [`Setup::ALL`].
pub fn alternate(
    watcher: &Path,
    protocol: &str,
    service: u32,
    rounds: usize,
    load: impl FnMut() -> Result<(u64, f64)>,
) -> Result<Vec<Measured>> {
    alternate_setups(
        watcher,
        protocol,
        service,
        &with_against(&Setup::ALL),
        rounds,
        load,
    )
}

/// Runs `load` `rounds` times under each of `setups` (the first is what the others are compared with),
/// alternating ([`round_order`]), and prints per setup the medians of CPU ns per request (service,
/// observer, total, added to the first), of the rate kept, of the share of a CPU the service ran and
/// of the host's idle share. Returns the medians, in the order of `setups`.
pub fn alternate_setups(
    watcher: &Path,
    protocol: &str,
    service: u32,
    setups: &[Setup],
    rounds: usize,
    mut load: impl FnMut() -> Result<(u64, f64)>,
) -> Result<Vec<Measured>> {
    let mut runs: Vec<Vec<Measured>> = setups.iter().map(|_| Vec::new()).collect();
    let pair = compared_pair(setups);
    for round in 0..rounds {
        for i in round_order(round, setups.len()) {
            let i = pair.map_or(i, |pair| pair_swapped(round, pair, i));
            runs[i].push(run(watcher, protocol, service, setups[i], &mut load)?);
        }
    }
    let measured: Vec<Measured> = runs
        .into_iter()
        .map(|runs| Measured {
            service: median(runs.iter().map(|m| m.service).collect()),
            observer: median(runs.iter().map(|m| m.observer).collect()),
            load: median(runs.iter().map(|m| m.load).collect()),
            rate: median(runs.iter().map(|m| m.rate).collect()),
            service_busy: median(runs.iter().map(|m| m.service_busy).collect()),
            idle: median(runs.iter().map(|m| m.idle).collect()),
            summary: runs.last().map(|m| m.summary.clone()).unwrap_or_default(),
            rounds: runs.iter().flat_map(|m| m.rounds.iter().copied()).collect(),
        })
        .collect();
    let base = &measured[0];
    for (setup, m) in setups.iter().zip(&measured) {
        println!(
            "   {:<34} {:>8.0} {:>8.0} {:>8.0} {:>+8.0}   {:>8.0} req/s ({:.0}% of baseline)  service ran {:.0}%, host idle {:.0}%, load {:.0} ns",
            setup.label(),
            m.service,
            m.observer,
            m.total(),
            m.total() - base.total(),
            m.rate,
            m.rate / base.rate.max(1e-9) * 100.0,
            m.service_busy * 100.0,
            m.idle * 100.0,
            m.load,
        );
    }
    print_against(setups, &measured);
    Ok(measured)
}

/// The order in which round `round` (from 0) runs `setups` setups: as listed in even rounds, reversed
/// in odd ones, so that no setup always runs right after the same one or at the same point of a round.
/// What a run leaves behind for the next (a detaching watcher's work in the kernel, the service's
/// state) and a drift within a round then fall on both sides of a comparison alike, rather than always
/// on the `--against` build (listed last, right after this build's watcher).
pub fn round_order(round: usize, setups: usize) -> impl Iterator<Item = usize> {
    let reversed = round % 2 == 1;
    (0..setups).map(move |i| if reversed { setups - 1 - i } else { i })
}

/// With `--against`, the positions of this build's watcher and the other binary in `setups`.
fn compared_pair(setups: &[Setup]) -> Option<(usize, usize)> {
    let (against, args) = setups.iter().enumerate().find_map(|(i, s)| match s {
        Setup::Against(args) => Some((i, *args)),
        _ => None,
    })?;
    let this = setups.iter().position(|s| *s == Setup::Watcher(args))?;
    Some((this, against))
}

/// In rounds 2 and 3 of every 4, this build's watcher and the other binary trade places in the order
/// [`round_order`] gives. Reversing every other round alone left one of them always right after the
/// same setup in the even rounds (this build after MONITOR, the other after this build), and what a
/// run leaves behind moved a comparison by as much as the change it was measuring: at 50 000 requests
/// a second, two builds compared once each way round (5 rounds) read redis-server's CPU 530 and then
/// 882 ns higher under whichever was this build, in 5 of 5 rounds both times. Over a multiple of 4
/// rounds each of the two runs right after MONITOR, after itself and after the other as often.
fn pair_swapped(round: usize, (this, against): (usize, usize), i: usize) -> usize {
    if (round / 2).is_multiple_of(2) {
        i
    } else if i == this {
        against
    } else if i == against {
        this
    } else {
        i
    }
}

/// With `--against`, compares this build's watcher with the other binary (run with the same arguments)
/// round by round: the medians of the differences (this build's minus the other's) and in how many
/// rounds this build did better. The medians of the table's rows can disagree with these when the
/// machine drifts during the run.
fn print_against(setups: &[Setup], measured: &[Measured]) {
    let Some((this, that)) = compared_pair(setups) else {
        return;
    };
    let (this, that) = (&measured[this], &measured[that]);
    let rounds = this.rounds.len().min(that.rounds.len());
    let (service, service_better) =
        by_round(rounds, |r| this.round(r).service - that.round(r).service);
    let (total, total_better) = by_round(rounds, |r| this.round(r).total - that.round(r).total);
    // A rate is better higher: the excess is this build's shortfall against the other's rate.
    let (shortfall, rate_better) = by_round(rounds, |r| {
        1.0 - this.round(r).rate / that.round(r).rate.max(1e-9)
    });
    println!(
        "   this build against the --against binary, round by round (median difference; rounds this build did better): service CPU {service:+.0} ns ({service_better} of {rounds}), service and observer {total:+.0} ns ({total_better} of {rounds}), requests per second {:+.1}% ({rate_better} of {rounds})",
        -shortfall * 100.0,
    );
}

/// Prints the last summary of each watcher setup among `setups`, whose medians are `measured`.
pub fn print_summaries(setups: &[Setup], measured: &[Measured]) {
    for (setup, m) in setups.iter().zip(measured) {
        if matches!(setup, Setup::Watcher(_) | Setup::Against(_)) {
            println!("   last {} run: {}", setup.label(), m.summary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{by_round, pair_swapped, round_order};

    #[test]
    fn rounds_run_the_setups_in_turn_forwards_and_backwards() {
        let order = |round| round_order(round, 3).collect::<Vec<_>>();
        assert_eq!(order(0), [0, 1, 2]);
        assert_eq!(order(1), [2, 1, 0]);
        assert_eq!(order(2), [0, 1, 2]);
        assert_eq!(round_order(5, 0).count(), 0);
    }

    #[test]
    fn over_four_rounds_this_build_and_the_other_follow_the_same_setups_as_often() {
        // baseline, MONITOR, this build, the other: who runs right before each of the pair.
        let (this, against) = (2, 3);
        let order: Vec<usize> = (0..4)
            .flat_map(|round| {
                round_order(round, 4).map(move |i| pair_swapped(round, (this, against), i))
            })
            .collect();
        assert_eq!(order, [0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 3, 2, 2, 3, 1, 0]);
        let before = |setup| {
            let mut seen: Vec<usize> = order
                .windows(2)
                .filter(|w| w[1] == setup)
                .map(|w| w[0])
                .collect();
            seen.sort_unstable();
            seen
        };
        // Each runs right after MONITOR (1) once, after itself once and after the other twice.
        assert_eq!(before(this), [1, 2, 3, 3]);
        assert_eq!(before(against), [1, 2, 2, 3]);
    }

    #[test]
    fn by_round_takes_the_median_difference_and_counts_the_rounds_at_or_below_zero() {
        let differences = [30.0, -10.0, 0.0, 50.0, -5.0];
        assert_eq!(by_round(5, |r| differences[r]), (0.0, 3));
        assert_eq!(by_round(2, |r| differences[r]), (30.0, 1));
    }
}
