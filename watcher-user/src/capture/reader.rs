//! The ring-buffer reader: drains the ring every few milliseconds (and at once when the kernel signals a
//! burst), decodes each record and hands it to the [`EventSink`], and refreshes the kernel loss
//! counters. Runs as a tokio task on the capture thread.
//!
//! The kernel side submits records without waking us (see `watcher-ebpf/src/ring.rs`), so the traced
//! process never pays for a wake-up per syscall; a timer bounds how stale the display can be. While the
//! ring stays empty the timer backs off ([`Pace`]), and then the reader goes to sleep: it asks the
//! programs to wake it at the next record and sets the timer to [`ASLEEP_INTERVAL`]. A wake-up costs a
//! thread tens of microseconds of CPU on a virtual machine, so an idle watcher waking a hundred times a
//! second used 1% of a CPU. The timer is the kernel's (`timer`), which wakes the thread once per drain
//! where tokio's woke it twice for most waits.
//!
//! On stop it disarms the programs first (they return at once from then on), waits out any run still
//! in progress, then drains what is left, so every event the kernel produced before the stop is
//! delivered. Detaching takes seconds (the kernel removes uprobes one at a time), so it is left to
//! happen after watcher has exited (`loader::detach_after_exit`): nobody waits for it.
//!
//! It owns the programs, so it is also where the TLS probes are attached to files found after start
//! (`tls::follow` finds them on its own thread and sends them here).

use std::{sync::Arc, time::Duration};

use aya::maps::{MapData, PerCpuArray, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    sync::{mpsc, watch},
    time::Instant,
};
use watcher_common::{KernelConfig, KernelLoss};

use super::{
    event::{self, RawEvent},
    loader::{self, LoadedPrograms},
    timer::Timer,
    tls::{new_code::Bell, TlsTarget},
    EventSink,
};
use crate::counters::Counters;

/// How often at most the ring is drained when the kernel has not asked for it: under busy traffic,
/// how stale the display and the export may be. Each drain costs watcher a fixed price whatever it
/// carries (every stage wakes, and the shards fetch back the state of every busy connection), so a
/// longer interval costs watcher less: under `redis-benchmark -P 1`, 25 ms took a tenth off watcher's
/// own CPU per record and 5 ms added a sixth. But at 25 ms the watched server's CPU per request rose
/// by about 400 ns in each of four A/B runs, more than watcher saved (the records of a drain then
/// took more of the caches: the kernel writes them there); the benchmark's `--against` compares two
/// builds this way.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(10);
/// Records a drain is meant to find: the ring is drained about when it holds this many (within
/// [`DRAIN_INTERVAL`] and [`LIGHT_INTERVAL`]). So it is drained every 10 ms from about 204 800
/// records a second, every 20 ms at 102 400 (51 200 requests), every 100 ms up to 20 480.
///
/// Against 512 (every 10 ms from 51 200 records a second, with the light pace at 40 ms then), this
/// value and the 100 ms light pace together, in one bench run with the two builds in balanced places
/// (`cargo xtask bench --only light --rounds 8 --against`), redis-server's CPU per request and
/// watcher's own:
/// - at 5 000 requests a second: -194 ns (better in 6 of 8 rounds); watcher 2 392 -> 1 432 ns;
/// - at 20 000 (drained every 51 ms instead of 13): -243 ns (5 of 8); watcher 1 335 -> 1 033 ns;
/// - at 50 000 (every 20 ms instead of 10): +120 ns (4 of 8), even; watcher 858 -> 820 ns.
///
/// Under `redis-benchmark -P 1` (about 160 000 records a second, drained every 13 ms instead of 10)
/// one run in the old order read the server even (+38 ns, better in 4 of 9 rounds) and watcher
/// 924 -> 880 ns a record. Runs
/// before the bench balanced the two builds' places read the server at 20 000 and 50 000 as anything
/// from -2 085 to +882 ns, by where each build ran (`xtask/src/bench/service.rs`, `pair_swapped`).
const DRAIN_RECORDS: usize = 2048;
/// The longest wait between drains while records come: how stale the display and the export may be
/// under light traffic, where a drain finds few records and its fixed price is most of what watcher
/// spends (every stage wakes once a drain, tens of microseconds each on a virtual machine). Below
/// 20 480 records a second (10 240 requests) the ring is drained at this pace. At 5 000 requests a
/// second, 100 ms against 40 took two fifths off watcher's own CPU and cost the server nothing
/// measurable (see [`DRAIN_RECORDS`]); a live view then refreshes ten times a second, which still
/// reads as live.
const LIGHT_INTERVAL: Duration = Duration::from_millis(100);
/// The longest wait between drains once they find the ring empty; a drain at this pace that finds
/// nothing either puts the reader to sleep.
const QUIET_INTERVAL: Duration = Duration::from_millis(200);
/// The wait of a reader asleep, which the next record cuts short. It bounds the delay of a record
/// whose program read the configuration just before the reader asked to be woken (so it did not
/// wake it) and committed it after the reader's last drain; the loss counters are read at this pace
/// too.
const ASLEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How often the kernel's loss counters are read (at the next drain after this much time).
const LOSS_INTERVAL: Duration = Duration::from_millis(200);
/// Longer than any program run that read the configuration just before it was disarmed (the longest,
/// copying a 16 MiB call, takes a few milliseconds).
const DISARM_SETTLE: Duration = Duration::from_millis(20);

/// Where the records of the ring go: the connections' events to the sink, the kernel's bells to the
/// TLS finder, and a count of those that do not decode.
struct Outlets<S> {
    sink: S,
    bell: Bell,
    counters: Arc<Counters>,
}

impl<S: EventSink> Outlets<S> {
    /// Hands every record in the ring on, then flushes the sink. Returns how many records it took.
    fn drain(&mut self, ring: &mut RingBuf<MapData>) -> usize {
        let mut taken = 0;
        while let Some(item) = ring.next() {
            taken += 1;
            match event::decode(&item) {
                Ok(RawEvent::NewCode { .. }) => self.bell.ring(),
                Ok(event) => self.sink.event(event),
                Err(_) => Counters::add(&self.counters.user.malformed_events, 1),
            }
        }
        self.sink.flush();
        taken
    }
}

/// When to drain next. While drains find records, about when the ring will hold [`DRAIN_RECORDS`] at
/// the rate the last drain found, but never sooner than [`DRAIN_INTERVAL`] nor later than
/// [`LIGHT_INTERVAL`]. After each drain that finds none, twice as long as the last wait, up to
/// [`QUIET_INTERVAL`]; after one more, asleep.
#[derive(Debug)]
struct Pace {
    wait: Duration,
    /// When the last drain was.
    last: Instant,
}

/// What follows a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Drain again after this long.
    Drain(Duration),
    /// Sleep until the next record.
    Sleep,
}

impl Pace {
    /// The pace of a reader that starts at `now`.
    fn new(now: Instant) -> Self {
        Self {
            wait: DRAIN_INTERVAL,
            last: now,
        }
    }

    /// What to do after a drain at `now` that took `taken` records.
    fn after_drain(&mut self, taken: usize, now: Instant) -> Next {
        let since_last = now.saturating_duration_since(self.last);
        self.last = now;
        if taken == 0 && self.wait == QUIET_INTERVAL {
            return Next::Sleep;
        }
        self.wait = if taken > 0 {
            since_last
                .mul_f64(DRAIN_RECORDS as f64 / taken as f64)
                .clamp(DRAIN_INTERVAL, LIGHT_INTERVAL)
        } else {
            (self.wait * 2).min(QUIET_INTERVAL)
        };
        Next::Drain(self.wait)
    }
}

/// The ring reader's side of its sleep: whether it asked the programs to wake it at the next record.
struct Sleep {
    asleep: bool,
}

impl Sleep {
    /// Acts on `next` (from a drain): sets the timer, or goes to sleep. Going to sleep, the reader asks
    /// to be woken and then drains once more, since records that came before the programs saw the
    /// request did not wake it; if that drain takes any, it stays awake. Where the request cannot be
    /// written the reader stays at the quiet pace.
    fn follow(
        &mut self,
        next: Next,
        programs: (&mut aya::Ebpf, &KernelConfig),
        drain_again: impl FnOnce() -> usize,
        pace: &mut Pace,
        timer: &Timer,
    ) -> std::io::Result<()> {
        let wait = match next {
            Next::Drain(wait) => wait,
            Next::Sleep => {
                let (ebpf, config) = programs;
                if LoadedPrograms::wake_at_next_record(ebpf, config, true).is_err() {
                    QUIET_INTERVAL
                } else {
                    self.asleep = true;
                    let taken = drain_again();
                    if taken > 0 {
                        self.wake(ebpf, config);
                        match pace.after_drain(taken, Instant::now()) {
                            Next::Drain(wait) => wait,
                            Next::Sleep => DRAIN_INTERVAL,
                        }
                    } else {
                        ASLEEP_INTERVAL
                    }
                }
            }
        };
        timer.set(wait)
    }

    /// Called at every wake-up before draining: if asleep, sets the wake-ups back to bursts only (until
    /// then every record wakes the reader, a cost to the traced process). The pace is left at the quiet
    /// one, so a wake-up that finds nothing (the timer's) goes back to sleep at once, and one that finds
    /// records goes to the busy pace.
    fn wake(&mut self, ebpf: &mut aya::Ebpf, config: &KernelConfig) {
        // Failing, the programs keep waking the reader at every record (costly, never wrong), and the
        // next wake-up tries again.
        if self.asleep && LoadedPrograms::wake_at_next_record(ebpf, config, false).is_ok() {
            self.asleep = false;
        }
    }
}

/// Reads the kernel's loss counters into `counters` if [`LOSS_INTERVAL`] has passed since `last`.
fn read_loss_if_due(
    last: &mut Instant,
    now: Instant,
    loss: &PerCpuArray<MapData, KernelLoss>,
    counters: &Counters,
) {
    if now.duration_since(*last) >= LOSS_INTERVAL {
        counters.set_kernel(LoadedPrograms::sum_loss(loss));
        *last = now;
    }
}

/// The next file to put the TLS probes on; never ready when TLS capture is off.
async fn next_tls_target(targets: &mut Option<mpsc::Receiver<TlsTarget>>) -> Option<TlsTarget> {
    match targets {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Reads until `stop` turns true (or its sender is dropped), attaching the TLS probes to each file that
/// arrives on `tls_targets` and ringing `bell` at each of the kernel's notes of new code.
pub async fn run(
    programs: LoadedPrograms,
    sink: impl EventSink,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
    mut tls_targets: Option<mpsc::Receiver<TlsTarget>>,
    bell: Bell,
) -> std::io::Result<()> {
    let mut out = Outlets {
        sink,
        bell,
        counters: Arc::clone(&counters),
    };
    let LoadedPrograms {
        mut ebpf,
        mut links,
        ring,
        loss,
        config,
        ..
    } = programs;
    // SAFETY: the RingBuf owns its fd and keeps it open for as long as the AsyncFd holds it; the fd is
    // not closed or replaced behind tokio's back (the I/O-safety condition of `register`).
    #[allow(unsafe_code)]
    let mut ring = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    let mut pace = Pace::new(Instant::now());
    let mut sleep = Sleep { asleep: false };
    let next_drain = Timer::new()?;
    next_drain.set(DRAIN_INTERVAL)?;
    let mut loss_read = Instant::now();
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                sleep.wake(&mut ebpf, &config);
                let mut guard = guard?;
                let taken = out.drain(guard.get_inner_mut());
                guard.clear_ready();
                // A burst (or the first record after a sleep): more is on its way, so the timer goes
                // back to the busy pace. Bursts that keep coming keep pushing the timer back, so the
                // loss counters are read here too: a ring that overflows is when they matter.
                let next = pace.after_drain(taken, Instant::now());
                let again = || out.drain(ring.get_mut());
                sleep.follow(next, (&mut ebpf, &config), again, &mut pace, &next_drain)?;
                read_loss_if_due(&mut loss_read, Instant::now(), &loss, &counters);
            }
            expired = next_drain.expired() => {
                expired?;
                sleep.wake(&mut ebpf, &config);
                let taken = out.drain(ring.get_mut());
                let next = pace.after_drain(taken, Instant::now());
                let again = || out.drain(ring.get_mut());
                sleep.follow(next, (&mut ebpf, &config), again, &mut pace, &next_drain)?;
                read_loss_if_due(&mut loss_read, Instant::now(), &loss, &counters);
            }
            target = next_tls_target(&mut tls_targets) => match target {
                Some(target) => {
                    let counter = match loader::attach_tls(&mut ebpf, &mut links, &target) {
                        Ok(()) => &counters.user.tls_files,
                        Err(_) => &counters.user.tls_attach_failures,
                    };
                    Counters::add(counter, 1);
                }
                // The finder stopped (it never does before we do); stop asking it.
                None => tls_targets = None,
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    let attached = if LoadedPrograms::disarm(&mut ebpf, &config).is_ok() {
        tokio::time::sleep(DISARM_SETTLE).await;
        Some((ebpf, links))
    } else {
        // The programs still run: only detaching stops them, and it must come before the last drain.
        loader::detach(ebpf, links);
        None
    };
    out.drain(ring.get_mut());
    // The bell goes with the reader, which tells the finder to stop.
    drop(out);
    counters.set_kernel(LoadedPrograms::sum_loss(&loss));
    if let Some((ebpf, links)) = attached {
        loader::detach_after_exit(ebpf, links);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drains at the waits the pace asks for, finding `taken` records each; returns what it asked.
    fn drains(pace: &mut Pace, now: &mut Instant, taken: &[usize]) -> Vec<Next> {
        taken
            .iter()
            .map(|&taken| {
                let next = pace.after_drain(taken, *now);
                *now += match next {
                    Next::Drain(wait) => wait,
                    Next::Sleep => ASLEEP_INTERVAL,
                };
                next
            })
            .collect()
    }

    fn ms(wait: u64) -> Next {
        Next::Drain(Duration::from_millis(wait))
    }

    #[test]
    fn drains_back_off_while_the_ring_is_empty_then_sleep_and_return_at_the_first_record() {
        let mut now = Instant::now();
        let mut pace = Pace::new(now);
        now += DRAIN_INTERVAL;
        assert_eq!(
            drains(&mut pace, &mut now, &[4096, 0, 0, 0, 0, 0, 0, 1, 0]),
            [
                ms(10),
                ms(20),
                ms(40),
                ms(80),
                ms(160),
                ms(200),
                Next::Sleep,
                ms(100),
                ms(200)
            ]
        );
        // Woken from a sleep by the timer, with nothing to drain: asleep again at once. Woken by the
        // first record: at the light pace until the traffic says otherwise.
        assert_eq!(
            drains(&mut pace, &mut now, &[0, 0, 0, 1]),
            [Next::Sleep, Next::Sleep, Next::Sleep, ms(100)]
        );
    }

    #[test]
    fn drains_follow_the_traffic_between_the_busy_and_the_light_interval() {
        // Steady traffic of `per_ms` records a millisecond: the waits it settles at.
        let settled = |per_ms: f64| {
            let mut now = Instant::now();
            let mut pace = Pace::new(now);
            let mut wait = DRAIN_INTERVAL;
            for _ in 0..8 {
                now += wait;
                let taken = (per_ms * wait.as_secs_f64() * 1e3).round() as usize;
                match pace.after_drain(taken, now) {
                    Next::Drain(next) => wait = next,
                    Next::Sleep => panic!("asleep under traffic"),
                }
            }
            wait.as_millis()
        };
        // `redis-benchmark -P 16` here: drained as often as ever.
        assert_eq!(settled(800.0), 10);
        // `redis-benchmark -P 1`, and 50 000 requests a second (two records each): about
        // DRAIN_RECORDS a drain.
        assert_eq!(settled(160.0), 12);
        assert_eq!(settled(100.0), 20);
        // 20 000 requests a second: about DRAIN_RECORDS a drain still.
        assert_eq!(settled(40.0), 51);
        // 5 000: the light pace.
        assert_eq!(settled(10.0), 100);
    }
}
