//! Shard threads that run in the CPU time the watched services leave idle, and compete for CPU only
//! while they fall behind.
//!
//! On a host whose CPUs the watched service keeps busy, every slice a shard takes is a slice the
//! service waits for. Under the kernel's idle policy (`SCHED_IDLE`) a thread runs only when a CPU would
//! otherwise idle, and a normal thread that wakes takes the CPU from it at once. That alone would let a
//! service that saturates the host starve the shards until their queues overflow, so the router (on
//! the capture thread, which keeps the normal policy: it must keep the kernel's ring drained) looks at
//! the shards' queues at every flush (every drain of the ring, at most 10 ms apart). The shards are
//! behind when they have not taken every batch that waited at the last look; once they have been
//! behind for [`PATIENCE`], or [`HIGH_WATER`] batches wait, they go back on the normal policy, and
//! they yield again at the first look that finds them caught up. So under a load that saturates the
//! host they share the CPU as before, part of the time, and nothing is lost to the yielding.
//!
//! The store writer yields with the shards: it works on what they hand it, for a quarter of their CPU
//! per record, so it never needs the CPU when they do not. A reader of the store that must see every
//! record (the follower that feeds the exports) joins once it has started ([`Reader`]): it yields
//! while the shards do and it keeps up, and competes while they do or while it has fallen behind by
//! a quarter of what the store holds (which keeps what it has not seen, within `--max-memory`). Under
//! `redis-benchmark -P 16` on two CPUs, the store writer and the follower on the normal policy took
//! the CPU from the service in the moments the shards gave it up.
//!
//! They yield however little CPU watcher needs. Where it needs little (`redis-benchmark -P 1`: a tenth
//! of a CPU), competing instead saves the service the preemption of a shard at many of its wake-ups,
//! about 500 ns of CPU a request, but the service then waits for the CPU at others: in three bench runs
//! against this policy, the service kept 5-10% fewer requests per second with the shards competing.
//! An observer should not slow what it watches, so the trade goes to the service's throughput;
//! `--no-yield` takes the other side.
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

/// The scheduling of the shard threads and the threads after them.
pub struct Yielding {
    /// The shards and the store writer.
    threads: Vec<Thread>,
    /// Whether the threads are on the idle policy now.
    idle: bool,
    /// Readers that joined, each with whether it is on the idle policy now.
    readers: Vec<(Reader, bool)>,
    /// Readers joining.
    joining: Receiver<Reader>,
    /// Since when every look found the shards behind.
    behind_since: Option<Instant>,
    /// Batches sent and batches waiting at the last look.
    last_sent: u64,
    last_waiting: usize,
}

impl Yielding {
    /// Starts `threads` yielding, if this process may put a thread back on the normal policy (checked
    /// on a thread of its own first); `None` if it may not. Readers that arrive on `joining` are
    /// scheduled from the next look on.
    pub fn start(threads: Vec<Thread>, joining: Receiver<Reader>) -> Option<Self> {
        if !may_return_to_normal() {
            return None;
        }
        let mut this = Self {
            threads,
            idle: false,
            readers: Vec::new(),
            joining,
            behind_since: None,
            last_sent: 0,
            last_waiting: 0,
        };
        this.set(true);
        Some(this)
    }

    /// Whether the shards run on the idle policy now.
    #[cfg(test)]
    fn is_yielding(&self) -> bool {
        self.idle
    }

    /// Takes in how many batches were ever sent to the shards and how many of them wait now. The shards
    /// are behind when they have not taken all that waited at the last look: batches sent since then
    /// are not held against them, so a look right after a burst is sent does not count as falling
    /// behind.
    pub fn look(&mut self, sent: u64, waiting: usize, now: Instant) {
        // Saturating: a miscount here must never panic the capture thread.
        let taken_in_all = sent.saturating_sub(waiting as u64);
        let taken =
            taken_in_all.saturating_sub(self.last_sent.saturating_sub(self.last_waiting as u64));
        let behind = taken < self.last_waiting as u64;
        self.last_sent = sent;
        self.last_waiting = waiting;
        if !behind && waiting < HIGH_WATER {
            self.behind_since = None;
            if !self.idle {
                self.set(true);
            }
        } else {
            let since = *self.behind_since.get_or_insert(now);
            if self.idle && (waiting >= HIGH_WATER || now.duration_since(since) >= PATIENCE) {
                self.set(false);
            }
        }
        self.schedule_readers();
    }

    /// Takes in readers that joined, and puts each on the idle policy while the shards are and it
    /// keeps up, on the normal one otherwise.
    fn schedule_readers(&mut self) {
        self.readers
            .extend(self.joining.try_iter().map(|reader| (reader, false)));
        for (reader, idle) in &mut self.readers {
            let yielding = self.idle && !(reader.behind)();
            if yielding != *idle {
                // A reader that has ended (the follower stops by itself after `--count`) is refused.
                let _ = set_policy(reader.thread, yielding);
                *idle = yielding;
            }
        }
    }

    fn set(&mut self, yielding: bool) {
        for thread in &self.threads {
            // A shard that has already gone (the pipeline is stopping) has nothing left to schedule.
            let _ = set_policy(*thread, yielding);
        }
        self.idle = yielding;
    }
}

impl Drop for Yielding {
    /// Capture is over: the shards and readers drain what is queued on the normal policy, so stopping
    /// never waits for idle CPU time.
    fn drop(&mut self) {
        if self.idle {
            self.set(false);
        }
        self.schedule_readers();
    }
}

/// Puts `thread` on the idle policy, or back on the normal one.
#[allow(unsafe_code)]
fn set_policy(thread: Thread, idle: bool) -> bool {
    let policy = if idle {
        libc::SCHED_IDLE
    } else {
        libc::SCHED_OTHER
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `thread` names a thread of this process whose handle has not been joined, so glibc's
    // descriptor of it is valid (for a thread that has ended, the call fails with ESRCH): the shards
    // wait on their queues until those close, and the router drops this before it closes them (its
    // field order); the store writer ends after the shards, and readers are joined only after the
    // capture has stopped; the probe thread below calls this on itself. Both arguments are valid for
    // the call.
    unsafe { libc::pthread_setschedparam(thread, policy, &raw const param) == 0 }
}

/// Whether a thread of this process can leave the idle policy again.
fn may_return_to_normal() -> bool {
    std::thread::spawn(|| {
        // SAFETY: pthread_self always names the calling thread, which is alive for the call.
        #[allow(unsafe_code)]
        let this = unsafe { libc::pthread_self() };
        set_policy(this, true) && set_policy(this, false)
    })
    .join()
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yielding() -> Yielding {
        // No threads: the decisions are what is tested, not the system calls.
        Yielding {
            threads: Vec::new(),
            idle: true,
            readers: Vec::new(),
            joining: crossbeam_channel::never(),
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
                y.look(sent, waiting, t0 + PATIENCE / 2 * i);
                y.is_yielding()
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
    fn a_yielding_thread_is_put_on_the_idle_policy_and_back() {
        let Some(worker) = Parked::start() else {
            return;
        };
        let y = Yielding::start(vec![worker.thread()], crossbeam_channel::never())
            .expect("root may return a thread to the normal policy");
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
        let seen = std::sync::Arc::clone(&behind);
        join.try_send(Reader {
            thread: reader.thread(),
            behind: Box::new(move || seen.load(std::sync::atomic::Ordering::Relaxed)),
        })
        .expect("room to join");
        assert_eq!(reader.policy(), libc::SCHED_OTHER, "joins at the next look");
        let t0 = Instant::now();
        y.look(0, 0, t0);
        assert_eq!(
            reader.policy(),
            libc::SCHED_IDLE,
            "shards yield, reader keeps up"
        );
        behind.store(true, std::sync::atomic::Ordering::Relaxed);
        y.look(0, 0, t0);
        assert_eq!(
            reader.policy(),
            libc::SCHED_OTHER,
            "reader behind: it competes"
        );
        behind.store(false, std::sync::atomic::Ordering::Relaxed);
        y.look(0, 0, t0);
        assert_eq!(reader.policy(), libc::SCHED_IDLE, "caught up: yields again");
        y.look(HIGH_WATER as u64, HIGH_WATER, t0);
        assert!(!y.is_yielding());
        assert_eq!(
            reader.policy(),
            libc::SCHED_OTHER,
            "shards compete: so does it"
        );
        y.look(HIGH_WATER as u64, 0, t0);
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
