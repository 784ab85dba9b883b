//! Shard threads that give the watched services the CPU first: while they keep up they never preempt
//! a service, and run only in the CPU time the services leave idle while watcher needs much of the
//! host's CPU; they compete for CPU only while they fall behind.
//!
//! On a host whose CPUs the watched service keeps busy, every slice a shard takes is a slice the
//! service waits for. Under the kernel's idle policy (`SCHED_IDLE`) a thread runs only when a CPU would
//! otherwise idle, and a normal thread that wakes takes the CPU from it at once. That alone would let a
//! service that saturates the host starve the shards until their queues overflow, so the router (on
//! the capture thread, which keeps the normal policy: it must keep the kernel's ring drained) looks at
//! the shards' queues at every flush (every drain of the ring: 10 ms apart under `redis-benchmark -P
//! 16`, which makes watcher heavy; up to 100 ms apart under light traffic). The shards are behind
//! when they have not taken every batch that waited at the last look; once they have been behind for
//! [`PATIENCE`], or [`HIGH_WATER`] batches wait, they go back on the normal policy, and they yield
//! again at the first look that finds them caught up. So under a load that saturates the host they
//! share the CPU as before, part of the time, and nothing is lost to the yielding.
//!
//! The idle policy is for a watcher that needs much of the host's CPU. Where it needs little
//! (`redis-benchmark -P 1`: 4% of two CPUs), the service's wake-ups are what it costs: each one on a
//! CPU where a shard runs preempts the shard, and the switch is paid in the service's time. There the
//! threads take the batch policy (`SCHED_BATCH`) instead: a thread on it never preempts a running
//! service when it wakes, and a service that wakes while it runs may wait for the end of the thread's
//! short slice rather than take the CPU at once, so far fewer switches are made. In the overhead
//! bench at `-P 1` (15 alternating rounds against the idle policy throughout), redis-server's CPU per
//! request was 819 ns lower (in 12 of 15 rounds), all CPU together 795 ns lower, for 1.5% fewer
//! requests per second (better in 6 of 15 rounds; runs of 7 rounds: -711 ns and -1.9%, and with the
//! order of every other round reversed, -896 ns and +2.7%, -418 ns and -4.3%). The
//! normal policy, tried there before, preempted the service at the threads' wake-ups and kept 5-10%
//! fewer requests per second in three bench runs.
//! But the batch policy competes at full weight for the CPU the service needs: under `-P 16`, where
//! watcher takes ~20% of the host, it kept 13% fewer requests per second than the idle policy (four
//! hand-run pairs, the batch policy throughout). So watcher's own CPU ([`Demand`], this process's CPU
//! time over [`WINDOW`]) decides: from [`YIELD_ABOVE`] of the host's the threads take the idle policy,
//! under [`BATCH_BELOW`] the batch one. A load that starts turns watcher heavy as soon as a window has
//! used a heavy window's CPU time; only a whole window turns it light again. Under `-P 16` the shards
//! left the batch policy 105-150 ms after the load began (sampled every 15 ms, four runs), against
//! ~250 ms when only a window's end decided.
//!
//! The store writer yields with the shards: it works on what they hand it, for a quarter of their CPU
//! per record, so it never needs the CPU when they do not. A reader of the store that must see every
//! record (the follower that feeds the exports) joins once it has started ([`Reader`]): it yields
//! while the shards do and it keeps up, and competes while they do or while it has fallen behind by
//! a quarter of what the store holds (which keeps what it has not seen, within `--max-memory`). Under
//! `redis-benchmark -P 16` on two CPUs, the store writer and the follower on the normal policy took
//! the CPU from the service in the moments the shards gave it up.
//!
//! Switching a thread back to the normal policy needs `CAP_SYS_NICE` (root has it): where it is
//! refused, the shards never yield, rather than risk staying on the idle policy.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

/// Batches waiting in the shards' queues at which the shards compete at once (up to 4 MiB of events: a
/// batch is sent at 256 KiB, or sooner at a drain).
const HIGH_WATER: usize = 16;
/// How long work may wait in the shards' queues before the shards compete: a bound on what yielding
/// adds to a record's delay.
const PATIENCE: Duration = Duration::from_millis(30);
/// Watcher's share of the host's CPU time (all its CPUs) from which the threads yield on the idle
/// policy: on two CPUs, 20% of one. Measured there, watcher takes ~40% of one under `redis-benchmark
/// -P 16`, ~30% under `wrk` against nginx, and ~8% under `-P 1`.
const YIELD_ABOVE: f64 = 0.10;
/// The share below which they take the batch policy again (14% of one CPU of two); between the two
/// they keep what they have, so a demand near one bound does not flip the policy at every window.
const BATCH_BELOW: f64 = 0.07;
/// How long watcher's CPU time is summed for each decision.
const WINDOW: Duration = Duration::from_millis(250);

/// A thread, as the scheduler calls it.
pub type Thread = libc::pthread_t;

/// A thread that reads the store and joins the shards' scheduling after it has started.
pub struct Reader {
    /// The thread. Its handle must not be joined while the capture runs (the pipeline joins its
    /// readers after stopping the capture); a thread that has ended is harmless to name.
    pub thread: Thread,
    /// Whether it has fallen behind, asked at every look.
    pub behind: Box<dyn Fn() -> bool + Send>,
}

/// The kernel's scheduling policies the threads move between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    /// `SCHED_OTHER`: competes for the CPU, and a thread that wakes preempts a service.
    Normal,
    /// `SCHED_BATCH`: competes for the CPU, but never preempts a service when it wakes.
    Batch,
    /// `SCHED_IDLE`: runs only in CPU time no other thread wants.
    Idle,
}

impl Policy {
    fn kernel(self) -> libc::c_int {
        match self {
            Policy::Normal => libc::SCHED_OTHER,
            Policy::Batch => libc::SCHED_BATCH,
            Policy::Idle => libc::SCHED_IDLE,
        }
    }
}

/// The scheduling of the shard threads and the threads after them.
pub struct Yielding {
    /// The shards and the store writer.
    threads: Vec<Thread>,
    /// The policy they are on now.
    policy: Policy,
    /// Readers that joined, each with the policy it is on now.
    readers: Vec<(Reader, Policy)>,
    /// Readers joining.
    joining: Receiver<Reader>,
    /// Whether watcher's CPU is a share of the host's for which the idle policy pays.
    demand: Demand,
    /// Since when every look found the shards behind.
    behind_since: Option<Instant>,
    /// Batches sent and batches waiting at the last look.
    last_sent: u64,
    last_waiting: usize,
}

impl Yielding {
    /// Starts `threads` yielding, if this process may put a thread back on the normal policy (checked
    /// on a thread of its own first); `None` if it may not. They start on the batch policy, that of a
    /// light watcher. Readers that arrive on `joining` are scheduled from the next look on.
    pub fn start(threads: Vec<Thread>, joining: Receiver<Reader>) -> Option<Self> {
        if !may_return_to_normal() {
            return None;
        }
        let mut this = Self {
            threads,
            policy: Policy::Normal,
            readers: Vec::new(),
            joining,
            demand: Demand::new(Instant::now(), process_cpu_time(), host_cpus()),
            behind_since: None,
            last_sent: 0,
            last_waiting: 0,
        };
        this.set(Policy::Batch);
        Some(this)
    }

    /// Takes in how many batches were ever sent to the shards and how many of them wait now. The shards
    /// are behind when they have not taken all that waited at the last look: batches sent since then
    /// are not held against them, so a look right after a burst is sent does not count as falling
    /// behind. Also takes in watcher's CPU time when its demand wants it ([`Demand::wants_cpu_time`]).
    pub fn look(&mut self, sent: u64, waiting: usize, now: Instant) {
        if self.demand.wants_cpu_time(now) {
            self.demand.take(now, process_cpu_time());
        }
        self.decide(sent, waiting, now);
    }

    /// [`Self::look`] once watcher's demand is known.
    fn decide(&mut self, sent: u64, waiting: usize, now: Instant) {
        // Saturating: a miscount here must never panic the capture thread.
        let taken_in_all = sent.saturating_sub(waiting as u64);
        let taken =
            taken_in_all.saturating_sub(self.last_sent.saturating_sub(self.last_waiting as u64));
        let behind = taken < self.last_waiting as u64;
        self.last_sent = sent;
        self.last_waiting = waiting;
        let policy = if !behind && waiting < HIGH_WATER {
            self.behind_since = None;
            if self.demand.heavy {
                Policy::Idle
            } else {
                Policy::Batch
            }
        } else {
            let since = *self.behind_since.get_or_insert(now);
            if waiting >= HIGH_WATER || now.duration_since(since) >= PATIENCE {
                Policy::Normal
            } else {
                self.policy
            }
        };
        if policy != self.policy {
            self.set(policy);
        }
        self.schedule_readers();
    }

    /// Takes in readers that joined, and puts each on the shards' policy while it keeps up, on the
    /// normal one otherwise.
    fn schedule_readers(&mut self) {
        self.readers.extend(
            self.joining
                .try_iter()
                .map(|reader| (reader, Policy::Normal)),
        );
        for (reader, policy) in &mut self.readers {
            let wanted = if (reader.behind)() {
                Policy::Normal
            } else {
                self.policy
            };
            if wanted != *policy {
                // A reader that has ended (the follower stops by itself after `--count`) is refused.
                let _ = set_policy(reader.thread, wanted);
                *policy = wanted;
            }
        }
    }

    fn set(&mut self, policy: Policy) {
        for thread in &self.threads {
            // A shard that has already gone (the pipeline is stopping) has nothing left to schedule.
            let _ = set_policy(*thread, policy);
        }
        self.policy = policy;
    }
}

impl Drop for Yielding {
    /// Capture is over: the shards and readers drain what is queued on the normal policy, so stopping
    /// never waits for idle CPU time.
    fn drop(&mut self) {
        if self.policy != Policy::Normal {
            self.set(Policy::Normal);
        }
        self.schedule_readers();
    }
}

/// Whether watcher's own CPU is a large enough share of the host's for the idle policy to pay, decided
/// from this process's CPU time (every thread's: capture, shards, store, exports, UI) at the end of
/// each [`WINDOW`], and turned heavy within one as soon as it has used a heavy window's worth.
#[derive(Debug)]
struct Demand {
    /// When the window began, and the process's CPU time then.
    since: Instant,
    cpu_then: Duration,
    /// The CPUs this process may run on.
    cpus: f64,
    /// Whether the share was heavy at the last decision (between the bounds: as before).
    heavy: bool,
}

impl Demand {
    /// Starts the first window at `now`, light.
    fn new(now: Instant, cpu: Duration, cpus: usize) -> Self {
        Self {
            since: now,
            cpu_then: cpu,
            cpus: cpus.max(1) as f64,
            heavy: false,
        }
    }

    /// Whether the window has ended.
    fn window_over(&self, now: Instant) -> bool {
        now.duration_since(self.since) >= WINDOW
    }

    /// Whether a look at `now` should read the process's CPU time (about a microsecond here): at the
    /// end of each window, and at every look while light (every drain of the ring: ~100 a second when
    /// the timer paces them), so that a load that starts is seen before the window ends (see
    /// [`Self::take`]).
    fn wants_cpu_time(&self, now: Instant) -> bool {
        !self.heavy || self.window_over(now)
    }

    /// Takes in that the process had used `cpu` in all at `now`. At the end of the window, decides from
    /// the window's share and starts the next one. Within it, a light demand turns heavy as soon as the
    /// window has used as much CPU time as a heavy share of the whole window (it can only grow, so the
    /// end of the window would decide the same), so under a load that starts the threads leave the
    /// batch policy's full weight sooner (see the module doc). It turns light only at the end of a
    /// window.
    fn take(&mut self, now: Instant, cpu: Duration) {
        let used = cpu.saturating_sub(self.cpu_then).as_secs_f64();
        let share_of = |wall: f64| used / (wall * self.cpus);
        if !self.window_over(now) {
            if share_of(WINDOW.as_secs_f64()) >= YIELD_ABOVE {
                self.heavy = true;
            }
            return;
        }
        let wall = now.duration_since(self.since).as_secs_f64();
        if wall > 0.0 {
            let share = share_of(wall);
            if share >= YIELD_ABOVE {
                self.heavy = true;
            } else if share < BATCH_BELOW {
                self.heavy = false;
            }
        }
        self.since = now;
        self.cpu_then = cpu;
    }
}

/// The CPU time every thread of this process has used (zero where the clock cannot be read, which
/// leaves the threads on the batch policy: that of a process that looks light).
fn process_cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

/// The CPUs this process may run on.
fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Puts `thread` on `policy`.
#[allow(unsafe_code)]
fn set_policy(thread: Thread, policy: Policy) -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `thread` names a thread of this process whose handle has not been joined, so glibc's
    // descriptor of it is valid (for a thread that has ended, the call fails with ESRCH): the shards
    // wait on their queues until those close, and the router drops this before it closes them (its
    // field order); the store writer ends after the shards, and readers are joined only after the
    // capture has stopped; the probe thread below calls this on itself. Both arguments are valid for
    // the call.
    unsafe { libc::pthread_setschedparam(thread, policy.kernel(), &raw const param) == 0 }
}

/// Whether a thread of this process can leave the idle policy again.
fn may_return_to_normal() -> bool {
    std::thread::spawn(|| {
        // SAFETY: pthread_self always names the calling thread, which is alive for the call.
        #[allow(unsafe_code)]
        let this = unsafe { libc::pthread_self() };
        set_policy(this, Policy::Idle) && set_policy(this, Policy::Normal)
    })
    .join()
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A demand already heavy (on one CPU), so that the shards' queues decide.
    fn heavy(now: Instant) -> Demand {
        let mut demand = Demand::new(now, Duration::ZERO, 1);
        demand.take(now + WINDOW, WINDOW);
        assert!(demand.heavy);
        demand
    }

    fn yielding() -> Yielding {
        // No threads: the decisions are what is tested, not the system calls.
        Yielding {
            threads: Vec::new(),
            policy: Policy::Idle,
            readers: Vec::new(),
            joining: crossbeam_channel::never(),
            demand: heavy(Instant::now()),
            behind_since: None,
            last_sent: 0,
            last_waiting: 0,
        }
    }

    /// Feeds looks of (batches sent in all, batches waiting), `PATIENCE / 2` apart; returns whether the
    /// shards yield after each.
    fn after(looks: &[(u64, usize)]) -> Vec<bool> {
        let mut y = yielding();
        let t0 = Instant::now();
        (0u32..)
            .zip(looks)
            .map(|(i, &(sent, waiting))| {
                y.decide(sent, waiting, t0 + PATIENCE / 2 * i);
                y.policy == Policy::Idle
            })
            .collect()
    }

    #[test]
    fn shards_that_keep_up_keep_yielding() {
        // Each look finds the batches of the last one taken, whatever was sent since.
        assert_eq!(
            after(&[(0, 0), (3, 3), (6, 3), (9, 2), (12, 3), (12, 0)]),
            [true; 6]
        );
    }

    #[test]
    fn shards_behind_for_the_patience_compete_until_they_catch_up() {
        let yields = after(&[(4, 4), (5, 4), (6, 4), (7, 4), (8, 1), (9, 1)]);
        // (5, 4): behind since this look; (6, 4): half the patience; (7, 4): the whole of it.
        assert_eq!(yields, [true, true, true, false, true, true]);
    }

    #[test]
    fn a_look_that_finds_them_caught_up_restarts_the_wait() {
        // Behind from (5, 4); caught up at (6, 0); behind again from (8, 2), so the patience runs
        // out at (10, 4), not at (7, 1).
        let yields = after(&[(4, 4), (5, 4), (6, 0), (7, 1), (8, 2), (9, 3), (10, 4)]);
        assert_eq!(yields, [true, true, true, true, true, true, false]);
    }

    #[test]
    fn a_pile_of_work_makes_them_compete_at_once() {
        let pile = HIGH_WATER as u64;
        assert_eq!(
            after(&[(pile - 1, HIGH_WATER - 1), (2 * pile, HIGH_WATER)]),
            [true, false]
        );
    }

    /// Feeds a demand one window at a time, each using `shares` of a window's CPU time on `cpus` CPUs;
    /// returns whether it is heavy after each.
    fn heavy_after(cpus: usize, shares: &[f64]) -> Vec<bool> {
        let t0 = Instant::now();
        let mut demand = Demand::new(t0, Duration::from_secs(7), cpus);
        let mut cpu = Duration::from_secs(7);
        (1u32..)
            .zip(shares)
            .map(|(i, share)| {
                cpu += WINDOW.mul_f64(share * cpus as f64);
                demand.take(t0 + WINDOW * i, cpu);
                demand.heavy
            })
            .collect()
    }

    #[test]
    fn watcher_is_heavy_only_while_it_needs_a_large_share_of_the_host() {
        // Above the upper bound: heavy; in between: as before; below the lower bound: light.
        let mid = f64::midpoint(YIELD_ABOVE, BATCH_BELOW);
        assert_eq!(
            heavy_after(
                2,
                &[mid, YIELD_ABOVE, mid, mid, BATCH_BELOW / 2.0, mid, 0.9]
            ),
            [false, true, true, true, false, false, true]
        );
        // The share is of every CPU: the same CPU time is heavy on one CPU, light among four.
        assert_eq!(heavy_after(1, &[YIELD_ABOVE * 1.5]), [true]);
        assert_eq!(heavy_after(4, &[YIELD_ABOVE * 1.5 / 4.0]), [false]);
    }

    #[test]
    fn a_light_watcher_takes_the_batch_policy_and_competes_only_when_behind() {
        let mut y = yielding();
        let t0 = Instant::now();
        y.demand = Demand::new(t0, Duration::ZERO, 1);
        y.decide(0, 0, t0);
        assert_eq!(y.policy, Policy::Batch, "light and caught up");
        // Behind from the second look on (as in `shards_behind_for_the_patience_compete_...`).
        y.decide(4, 4, t0);
        y.decide(5, 4, t0 + PATIENCE / 2);
        y.decide(6, 4, t0 + PATIENCE);
        assert_eq!(y.policy, Policy::Batch, "behind, within the patience");
        y.decide(7, 4, t0 + PATIENCE * 3 / 2);
        assert_eq!(y.policy, Policy::Normal, "behind for the patience");
        y.decide(7, 0, t0 + PATIENCE * 2);
        assert_eq!(y.policy, Policy::Batch, "caught up");
        y.demand = heavy(t0);
        y.decide(7, 0, t0 + PATIENCE * 3);
        assert_eq!(y.policy, Policy::Idle, "heavy and caught up");
    }

    #[test]
    fn a_load_that_starts_makes_watcher_heavy_within_the_window_but_only_its_end_makes_it_light() {
        let t0 = Instant::now();
        let cpus = 2;
        let heavy_window = WINDOW.mul_f64(YIELD_ABOVE * f64::from(cpus));
        let mut demand = Demand::new(t0, Duration::ZERO, cpus.try_into().unwrap());
        assert!(
            demand.wants_cpu_time(t0 + WINDOW / 10),
            "light: at every look"
        );
        demand.take(t0 + WINDOW / 10, heavy_window.mul_f64(0.9));
        assert!(!demand.heavy, "not yet a heavy window's CPU time");
        demand.take(t0 + WINDOW / 5, heavy_window);
        assert!(demand.heavy, "a heavy window's CPU time in a fifth of it");
        assert!(
            !demand.wants_cpu_time(t0 + WINDOW / 2),
            "heavy: at the window's end only"
        );
        demand.take(t0 + WINDOW, heavy_window);
        assert!(demand.heavy, "the whole window decides the same");
        demand.take(t0 + WINDOW * 3 / 2, heavy_window);
        assert!(
            demand.heavy,
            "no CPU time since, but the window has not ended"
        );
        demand.take(t0 + WINDOW * 2, heavy_window);
        assert!(!demand.heavy, "a window without CPU time");
    }

    #[test]
    fn the_window_ends_only_after_its_length() {
        let t0 = Instant::now();
        let demand = Demand::new(t0, Duration::ZERO, 2);
        assert!(!demand.window_over(t0 + WINDOW / 2));
        assert!(demand.window_over(t0 + WINDOW));
    }

    /// A thread that waits until it is told to end, whose scheduling policy a test reads back.
    struct Parked {
        wake: std::sync::mpsc::Sender<()>,
        handle: std::thread::JoinHandle<()>,
    }

    impl Parked {
        /// `None` (having said the test is skipped) where this user may not return a thread to the
        /// normal policy.
        fn start() -> Option<Self> {
            if !may_return_to_normal() {
                println!(
                    "skipped: this user may not return a thread to the normal policy (needs root)"
                );
                return None;
            }
            let (wake, rx) = std::sync::mpsc::channel::<()>();
            let handle = std::thread::spawn(move || {
                let _ = rx.recv();
            });
            Some(Self { wake, handle })
        }

        fn thread(&self) -> Thread {
            std::os::unix::thread::JoinHandleExt::as_pthread_t(&self.handle)
        }

        fn policy(&self) -> i32 {
            let mut policy = 0;
            let mut param = libc::sched_param { sched_priority: 0 };
            // SAFETY: the thread is alive (it waits on the channel) and not joined.
            #[allow(unsafe_code)]
            unsafe {
                libc::pthread_getschedparam(self.thread(), &raw mut policy, &raw mut param);
            }
            policy
        }

        fn end(self) {
            drop(self.wake);
            self.handle.join().expect("the thread ends");
        }
    }

    #[test]
    fn a_yielding_thread_is_put_on_the_batch_or_idle_policy_and_back() {
        let Some(worker) = Parked::start() else {
            return;
        };
        let mut y = Yielding::start(vec![worker.thread()], crossbeam_channel::never())
            .expect("root may return a thread to the normal policy");
        assert_eq!(worker.policy(), libc::SCHED_BATCH, "light until measured");
        y.demand = heavy(Instant::now());
        y.decide(0, 0, Instant::now());
        assert_eq!(worker.policy(), libc::SCHED_IDLE);
        drop(y);
        assert_eq!(
            worker.policy(),
            libc::SCHED_OTHER,
            "capture over: back to normal"
        );
        worker.end();
    }

    #[test]
    fn a_reader_yields_with_the_shards_unless_it_falls_behind() {
        let Some(reader) = Parked::start() else {
            return;
        };
        let behind = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (join, joining) = crossbeam_channel::bounded(1);
        let mut y = Yielding::start(Vec::new(), joining).expect("root may");
        y.demand = heavy(Instant::now());
        let seen = std::sync::Arc::clone(&behind);
        join.try_send(Reader {
            thread: reader.thread(),
            behind: Box::new(move || seen.load(std::sync::atomic::Ordering::Relaxed)),
        })
        .expect("room to join");
        assert_eq!(reader.policy(), libc::SCHED_OTHER, "joins at the next look");
        let t0 = Instant::now();
        y.decide(0, 0, t0);
        assert_eq!(
            reader.policy(),
            libc::SCHED_IDLE,
            "shards yield, reader keeps up"
        );
        behind.store(true, std::sync::atomic::Ordering::Relaxed);
        y.decide(0, 0, t0);
        assert_eq!(
            reader.policy(),
            libc::SCHED_OTHER,
            "reader behind: it competes"
        );
        behind.store(false, std::sync::atomic::Ordering::Relaxed);
        y.decide(0, 0, t0);
        assert_eq!(reader.policy(), libc::SCHED_IDLE, "caught up: yields again");
        y.decide(HIGH_WATER as u64, HIGH_WATER, t0);
        assert_eq!(y.policy, Policy::Normal);
        assert_eq!(
            reader.policy(),
            libc::SCHED_OTHER,
            "shards compete: so does it"
        );
        y.decide(HIGH_WATER as u64, 0, t0);
        assert_eq!(reader.policy(), libc::SCHED_IDLE);
        drop(y);
        assert_eq!(
            reader.policy(),
            libc::SCHED_OTHER,
            "capture over: back to normal"
        );
        reader.end();
    }
}
