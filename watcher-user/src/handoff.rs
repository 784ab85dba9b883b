//! Bounded queues between the pipeline's threads (router to shards, shards to the store writer, the
//! store writer's wake-ups to the follower) whose receiver sleeps when its queue is empty, instead of
//! spinning first.
//!
//! A crossbeam receiver that finds its queue empty spins, then calls `sched_yield` a few times, before
//! it sleeps. On a host whose cores are busy (the watched service and its clients run there too) each
//! yield is a context switch: profiling `watch redis` under `redis-benchmark -P 1` put a fifth of
//! watcher's CPU in that backoff. Here the receiver goes straight to sleep on a condition variable,
//! and a sender pays for a wake-up only when the receiver is asleep: a send costs the channel's own
//! work plus one fence and one load.
//!
//! The queue is crossbeam's (bounded, lock-free); this adds only the doorbell. Senders never block:
//! `try_send` is the only way to send, so a full queue is the caller's to count as loss.

use std::{
    sync::{
        atomic::{fence, AtomicBool, Ordering},
        Arc, Condvar, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

pub use crossbeam_channel::{RecvError, RecvTimeoutError, TryRecvError, TrySendError};

/// Where a sleeping receiver waits, and whether it does.
#[derive(Default)]
struct Bell {
    /// Set by the receiver, under `lock`, just before it checks its queue one last time and waits.
    asleep: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Bell {
    /// Wakes the receiver if it is asleep. Called after each send and when a sender goes.
    fn ring(&self) {
        // Orders the send before the load of `asleep`; the receiver orders its store of `asleep`
        // before its last look at the queue. So either it sees what was sent, or we see it asleep.
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::Relaxed) {
            // Taking the lock waits until the receiver is inside `wait` (it holds the lock until
            // then), so the notification cannot come between its last look and its sleep. It is
            // released before notifying: a receiver woken while the lock is still held goes back to
            // sleep on the lock, a second wake-up (each costs tens of microseconds on a VM).
            drop(self.lock.lock().unwrap_or_else(PoisonError::into_inner));
            self.wake.notify_one();
        }
    }
}

/// A queue of at most `capacity` items, its sending half (cloneable) and its receiving half.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let bell = Arc::new(Bell::default());
    (
        Sender {
            tx: Some(tx),
            bell: Arc::clone(&bell),
        },
        Receiver { rx, bell },
    )
}

/// The sending half. The receiver sees the queue disconnected once every clone is dropped.
pub struct Sender<T> {
    /// `None` only while being dropped: the channel's sender goes before the bell rings, so a
    /// receiver woken by the last sender's drop finds the queue disconnected.
    tx: Option<crossbeam_channel::Sender<T>>,
    bell: Arc<Bell>,
}

impl<T> Sender<T> {
    /// Items queued now.
    pub fn len(&self) -> usize {
        self.tx.as_ref().map_or(0, crossbeam_channel::Sender::len)
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `item` unless the queue is full or the receiver is gone; never blocks.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let Some(tx) = &self.tx else {
            return Err(TrySendError::Disconnected(item));
        };
        tx.try_send(item)?;
        self.bell.ring();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            bell: Arc::clone(&self.bell),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        drop(self.tx.take());
        self.bell.ring();
    }
}

/// The receiving half: one thread waits on it at a time (it is not `Clone`).
pub struct Receiver<T> {
    rx: crossbeam_channel::Receiver<T>,
    bell: Arc<Bell>,
}

impl<T> Receiver<T> {
    /// The next item, sleeping until one comes; an error once the queue is empty and every sender
    /// has gone.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.wait(None).map_err(|_| RecvError)
    }

    /// The next item, sleeping until one comes or `timeout` has passed; `Disconnected` once the queue
    /// is empty and every sender has gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.wait(Some(Instant::now() + timeout))
    }

    /// The next item, sleeping until one comes (or `deadline`, when given).
    fn wait(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        loop {
            match self.rx.try_recv() {
                Ok(item) => return Ok(item),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            let held = self
                .bell
                .lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.bell.asleep.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let last_look = self.rx.try_recv();
            if !matches!(last_look, Err(TryRecvError::Empty)) {
                self.bell.asleep.store(false, Ordering::Relaxed);
                return last_look.map_err(|_| RecvTimeoutError::Disconnected);
            }
            // A spurious wake-up only costs another look.
            let held = match deadline {
                None => self
                    .bell
                    .wake
                    .wait(held)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.bell.asleep.store(false, Ordering::Relaxed);
                        return Err(RecvTimeoutError::Timeout);
                    }
                    self.bell
                        .wake
                        .wait_timeout(held, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            self.bell.asleep.store(false, Ordering::Relaxed);
            drop(held);
        }
    }

    /// The next item if one is queued.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.rx.try_recv()
    }

    /// Items as they come, until the queue is empty and every sender has gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter(self)
    }

    /// The items queued now, without waiting for more.
    pub fn try_iter(&self) -> crossbeam_channel::TryIter<'_, T> {
        self.rx.try_iter()
    }
}

/// Items as they come, until the queue is empty and every sender has gone.
pub struct Iter<'a, T>(&'a Receiver<T>);

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.0.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::{thread, time::Duration};

    use super::*;

    #[test]
    fn every_item_arrives_in_order_from_a_sender_on_another_thread() {
        let (tx, rx) = bounded(4);
        let sender = thread::spawn(move || {
            for i in 0..100_000u32 {
                let mut item = i;
                // A full queue is the caller's to handle: here, try again.
                while let Err(TrySendError::Full(back)) = tx.try_send(item) {
                    item = back;
                    thread::yield_now();
                }
            }
        });
        let got: Vec<u32> = (&rx).into_iter().collect();
        sender.join().unwrap();
        assert_eq!(got, (0..100_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_sleeping_receiver_wakes_for_each_of_many_senders_and_ends_when_they_go() {
        let (tx, rx) = bounded(1024);
        let senders: Vec<_> = (0..4u64)
            .map(|s| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..2_000u64 {
                        // Pauses now and then, so the receiver falls asleep between items.
                        if i % 97 == 0 {
                            thread::sleep(Duration::from_micros(200));
                        }
                        // A receiver descheduled for long (tests run side by side on two CPUs)
                        // lets the queue fill: try again, as the first test does.
                        let mut item = s * 10_000 + i;
                        while let Err(TrySendError::Full(back)) = tx.try_send(item) {
                            item = back;
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut got: Vec<u64> = (&rx).into_iter().collect();
        for s in senders {
            s.join().unwrap();
        }
        got.sort_unstable();
        let want: Vec<u64> = (0..4u64)
            .flat_map(|s| (0..2_000).map(move |i| s * 10_000 + i))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn dropping_the_last_sender_wakes_a_receiver_that_sleeps() {
        let (tx, rx) = bounded::<u8>(1);
        let receiver = thread::spawn(move || rx.recv());
        thread::sleep(Duration::from_millis(50));
        drop(tx);
        assert_eq!(receiver.join().unwrap(), Err(RecvError));
    }

    #[test]
    fn a_wait_with_a_timeout_ends_with_an_item_a_timeout_or_the_senders_gone() {
        let (tx, rx) = bounded::<u8>(1);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            tx.try_send(7).unwrap();
            thread::sleep(Duration::from_millis(50));
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(7));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(RecvTimeoutError::Disconnected)
        );
        sender.join().unwrap();
    }

    #[test]
    fn a_full_queue_or_a_gone_receiver_hands_the_item_back() {
        let (tx, rx) = bounded(1);
        tx.try_send(1).unwrap();
        assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1]);
        drop(rx);
        assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
    }
}
