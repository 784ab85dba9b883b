//! Following the store: hands every record to a [`Sink`] once, in id order, as snapshots are published.
//!
//! The exporter, the `--fail-on` checker and live statistics are sinks; one follower thread serves them
//! all, so each record is read from a snapshot once however many consumers there are. The follower never
//! waits for the store writer, and counts the records evicted before it could see them as lost.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use super::{Snapshot, StoreReader};
use crate::{
    counters::Counters,
    handoff::{Receiver, RecvTimeoutError},
    record::Record,
};

/// A consumer of records.
pub trait Sink: Send {
    /// Takes one record, shared with the store (a sink may keep it). An error stops the follower.
    fn record(&mut self, record: &Arc<Record>) -> std::io::Result<()>;

    /// Called after each burst of records (e.g. to flush a writer), and when [`Sink::due_within`] says.
    fn burst_done(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    /// How soon [`Sink::burst_done`] must run again even if no record comes (a sink that holds
    /// something back, to hand it over at a slower pace); `None`, the default: only after records.
    fn due_within(&self) -> Option<Duration> {
        None
    }
}

/// How far a follower got.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Followed {
    /// Records handed to the sink.
    pub records: u64,
}

/// The id of the last record a follower has passed (handed on, or counted as missed), for other
/// threads to see how far behind the store it is, and for the store to know what it may evict
/// ([`super::StoreWriter::keep_for`]).
#[derive(Debug, Default)]
pub struct Position(AtomicU64);

impl Position {
    /// The id of the last record passed (0 before the first); `u64::MAX` once the follower has
    /// stopped, since it will pass nothing more and nothing need be kept for it.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn set(&self, id: u64) {
        self.0.store(id, Ordering::Relaxed);
    }
}

/// Follows `store` until `wake` disconnects (the pipeline has stopped and published its last snapshot),
/// or after `limit` records when given, keeping `position` up to date as it goes. Returns the sink with
/// what it made of them.
pub fn run<S: Sink>(
    store: &StoreReader,
    counters: &Counters,
    wake: &Receiver<()>,
    limit: Option<u64>,
    position: &Position,
    mut sink: S,
) -> (S, Followed, std::io::Result<()>) {
    let mut last_id = 0;
    let mut followed = Followed::default();
    loop {
        // Nothing but a publication changes what there is to follow: unless the sink holds something
        // back, an idle follower sleeps until the next publication (or the end), at no cost.
        let finished = match sink.due_within() {
            None => wake.recv().is_err(),
            Some(wait) => matches!(wake.recv_timeout(wait), Err(RecvTimeoutError::Disconnected)),
        };
        let snapshot = store.snapshot();
        skip_evicted(&snapshot, &mut last_id, counters);
        let result = feed(
            &snapshot,
            &mut last_id,
            limit,
            &mut sink,
            &mut followed,
            position,
        )
        .and_then(|()| sink.burst_done());
        position.set(last_id);
        if result.is_err() || finished || limit.is_some_and(|l| last_id >= l) {
            position.set(u64::MAX);
            return (sink, followed, result);
        }
    }
}

/// Records evicted before the follower saw them are lost to it: count them and move past.
fn skip_evicted(snapshot: &Snapshot, last_id: &mut u64, counters: &Counters) {
    if snapshot.first_id() > *last_id + 1 && snapshot.total > *last_id {
        Counters::add(
            &counters.user.export_missed,
            snapshot.first_id() - *last_id - 1,
        );
        *last_id = snapshot.first_id() - 1;
    }
}

/// Hands the records after `last_id` to the sink. A burst after a lag can be long: `position` moves
/// every chunk's worth of records, so the store can let go of what was handed on meanwhile.
fn feed<S: Sink>(
    snapshot: &Snapshot,
    last_id: &mut u64,
    limit: Option<u64>,
    sink: &mut S,
    followed: &mut Followed,
    position: &Position,
) -> std::io::Result<()> {
    for record in snapshot.after(*last_id) {
        if limit.is_some_and(|l| record.id > l) {
            break;
        }
        sink.record(record)?;
        *last_id = record.id;
        followed.records += 1;
        if record.id % super::CHUNK as u64 == 0 {
            position.set(record.id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{
        sync::Mutex,
        thread,
        time::{Duration, Instant},
    };

    use super::*;
    use crate::{handoff, store};

    /// A sink that holds something back until its `burst_done`, and counts those calls.
    struct HoldsBack {
        held: bool,
        bursts: Arc<Mutex<u32>>,
    }

    impl Sink for HoldsBack {
        fn record(&mut self, _: &Arc<Record>) -> std::io::Result<()> {
            Ok(())
        }

        fn burst_done(&mut self) -> std::io::Result<()> {
            self.held = false;
            *self.bursts.lock().unwrap() += 1;
            Ok(())
        }

        fn due_within(&self) -> Option<Duration> {
            self.held.then_some(Duration::from_millis(5))
        }
    }

    fn follow_until_asked(held: bool) -> u32 {
        let (_writer, reader) = store::with_budget(16, 1 << 20);
        let (wake_tx, wake) = handoff::bounded(1);
        let bursts = Arc::new(Mutex::new(0));
        let sink = HoldsBack {
            held,
            bursts: Arc::clone(&bursts),
        };
        let counters = Counters::default();
        let position = Position::default();
        thread::scope(|scope| {
            let follower = scope.spawn(|| run(&reader, &counters, &wake, None, &position, sink));
            // No publication comes: only the sink's own deadline can bring a call.
            let deadline = Instant::now() + Duration::from_secs(5);
            while held && *bursts.lock().unwrap() == 0 && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            let before_the_end = *bursts.lock().unwrap();
            drop(wake_tx);
            let (_, _, result) = follower
                .join()
                .expect("the follower ends when its wake-ups end");
            result.expect("the sink never fails");
            before_the_end
        })
    }

    #[test]
    fn a_sink_that_holds_something_back_is_called_again_without_a_publication() {
        assert_eq!(
            follow_until_asked(true),
            1,
            "one call, then nothing is held"
        );
    }

    #[test]
    fn a_sink_that_holds_nothing_back_is_called_only_when_records_come_or_at_the_end() {
        assert_eq!(follow_until_asked(false), 0);
    }

    /// A sink that waits for a go-ahead before its first record, and counts them.
    struct Stalls {
        go: std::sync::mpsc::Receiver<()>,
        records: u64,
    }

    impl Sink for Stalls {
        fn record(&mut self, _: &Arc<Record>) -> std::io::Result<()> {
            if self.records == 0 {
                let _ = self.go.recv();
            }
            self.records += 1;
            Ok(())
        }
    }

    #[test]
    fn a_follower_that_stalls_misses_nothing_while_the_store_keeps_it_within_its_budget() {
        let inserted = 20 * store::CHUNK as u64;
        let (mut writer, reader) = store::with_budget(store::CHUNK, 1 << 30);
        let position = Arc::new(Position::default());
        writer.keep_for(Arc::clone(&position));
        let (wake_tx, wake) = handoff::bounded(1);
        let (go_tx, go) = std::sync::mpsc::channel();
        let counters = Counters::default();
        let (sink, followed) = thread::scope(|scope| {
            let follower = scope.spawn(|| {
                let sink = Stalls { go, records: 0 };
                run(&reader, &counters, &wake, None, &position, sink)
            });
            // Twenty times the capacity arrives while the sink is stuck on the first record.
            for n in 1..=inserted {
                writer.insert(super::super::tests::record(n));
                if n % 64 == 0 {
                    writer.publish();
                    let _ = wake_tx.try_send(());
                }
            }
            writer.publish();
            let _ = wake_tx.try_send(());
            go_tx.send(()).expect("the sink waits");
            drop(wake_tx);
            let (sink, followed, result) = follower.join().expect("the follower ends");
            result.expect("the sink never fails");
            (sink, followed)
        });
        assert_eq!((sink.records, followed.records), (inserted, inserted));
        assert_eq!(counters.totals().user.export_missed, 0);
        assert_eq!(position.get(), u64::MAX, "a stopped follower keeps nothing");
        // Caught up, the store goes back to its capacity at the next seal.
        for n in inserted + 1..=inserted + store::CHUNK as u64 {
            writer.insert(super::super::tests::record(n));
        }
        writer.publish();
        assert!(reader.snapshot().len() <= store::CHUNK);
    }
}
