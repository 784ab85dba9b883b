//! Which processes brought new code into memory since the finder last asked, from the kernel's
//! per-CPU notes (`watcher_common::NewCode`, taken by `watcher-ebpf/src/new_code.rs` at each `execve`
//! and each file mapped executable). One map lookup reads every CPU's notes: on an idle host that is
//! all a round of the finder costs, where listing `/proc` and re-reading every process's maps cost
//! a few milliseconds a second.
//!
//! The kernel also rings a bell at each note (a `kind::NEW_CODE` event on the ring), which the ring
//! reader passes on through a [`Bell`], so the finder looks when there is something to look at.

use std::{collections::BTreeSet, thread, time::Duration};

use aya::maps::{MapData, PerCpuArray};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use watcher_common::{NewCode, NEW_CODE_SLOTS};

/// The longest the finder waits for the bell: a bell lost to a full ring delays a look by at most
/// this long (the note itself stays).
const BELL_TIMEOUT: Duration = Duration::from_secs(2);
/// After a bell, how long the finder lets more notes come before it looks: a starting process maps
/// its libraries within milliseconds, and one look serves them all. It also bounds the finder to 50
/// looks a second on a host that starts processes all the time.
const BELL_SETTLE: Duration = Duration::from_millis(20);

/// The ring reader's end of the finder's doorbell.
#[derive(Default)]
pub struct Bell(Option<Sender<()>>);

impl Bell {
    /// A bell and the finder's end of it, which disconnects when the bell is dropped (the reader has
    /// stopped).
    fn new() -> (Self, Receiver<()>) {
        // One ring waiting is as good as many: the finder reads every note at its next look.
        let (tx, rx) = bounded(1);
        (Self(Some(tx)), rx)
    }

    /// Tells the finder that notes were taken; nothing without a finder.
    pub fn ring(&self) {
        if let Some(tx) = &self.0 {
            let _ = tx.try_send(());
        }
    }
}

/// What the notes say happened since the last look.
#[derive(Debug, PartialEq, Eq)]
pub enum Changes {
    /// No traced process brought new code.
    Nothing,
    /// These processes did.
    In(BTreeSet<u32>),
    /// Not known: the first look, notes overwritten before they were read, or a failed read.
    Unknown,
}

/// The kernel's notes, how far each CPU's have been read, and the bell that says there are more.
pub struct NewCodeNotes {
    map: PerCpuArray<MapData, NewCode>,
    /// Per CPU, the count of notes already read; empty before the first look.
    read: Vec<u64>,
    bell: Receiver<()>,
}

impl NewCodeNotes {
    /// The notes in `map`, the programs' `NEW_CODE` (taken with TLS capture on the raw hook only), and
    /// the bell the ring reader rings for them; without a map, none, and a bell that rings for nobody.
    pub fn with_bell(map: Option<PerCpuArray<MapData, NewCode>>) -> (Bell, Option<Self>) {
        let Some(map) = map else {
            return (Bell::default(), None);
        };
        let (bell, rings) = Bell::new();
        let notes = Self {
            map,
            read: Vec::new(),
            bell: rings,
        };
        (bell, Some(notes))
    }

    /// Waits for the bell (and a moment more), or [`BELL_TIMEOUT`] at most. False once the ring
    /// reader has stopped.
    pub fn wait_for_bell(&self) -> bool {
        match self.bell.recv_timeout(BELL_TIMEOUT) {
            Err(RecvTimeoutError::Disconnected) => false,
            Err(RecvTimeoutError::Timeout) => true,
            Ok(()) => {
                thread::sleep(BELL_SETTLE);
                let _ = self.bell.try_recv();
                true
            }
        }
    }

    /// What changed since the last call.
    pub fn changes(&mut self) -> Changes {
        match self.map.get(&0, 0) {
            Ok(cpus) => changes_since(&mut self.read, &cpus),
            Err(_) => Changes::Unknown,
        }
    }
}

/// The changes in `cpus` (each CPU's notes) since the counts in `read`, which are moved up to them.
fn changes_since(read: &mut Vec<u64>, cpus: &[NewCode]) -> Changes {
    if read.len() != cpus.len() {
        *read = cpus.iter().map(|cpu| cpu.count).collect();
        return Changes::Unknown;
    }
    let mut tgids = BTreeSet::new();
    let mut overwritten = false;
    for (seen, cpu) in read.iter_mut().zip(cpus) {
        // A count only grows; one that went back is as unknown as one that ran past the slots.
        let new = cpu.count.wrapping_sub(*seen);
        if new > NEW_CODE_SLOTS as u64 {
            overwritten = true;
        } else {
            tgids.extend((*seen..cpu.count).map(|n| cpu.tgids[n as usize % NEW_CODE_SLOTS]));
        }
        *seen = cpu.count;
    }
    if overwritten {
        Changes::Unknown
    } else if tgids.is_empty() {
        Changes::Nothing
    } else {
        Changes::In(tgids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CPU that has taken a note for each of `tgids`, in order.
    fn cpu(tgids: &[u32]) -> NewCode {
        let mut notes = NewCode::default();
        for &tgid in tgids {
            notes.tgids[notes.count as usize % NEW_CODE_SLOTS] = tgid;
            notes.count += 1;
        }
        notes
    }

    fn set(tgids: &[u32]) -> Changes {
        Changes::In(tgids.iter().copied().collect())
    }

    #[test]
    fn the_first_look_knows_nothing_and_later_ones_see_only_new_notes() {
        let mut read = Vec::new();
        let mut cpus = [cpu(&[7, 8]), cpu(&[])];
        assert_eq!(changes_since(&mut read, &cpus), Changes::Unknown);
        assert_eq!(changes_since(&mut read, &cpus), Changes::Nothing);
        cpus[1] = cpu(&[9, 9, 10]);
        cpus[0] = cpu(&[7, 8, 11]);
        assert_eq!(changes_since(&mut read, &cpus), set(&[9, 10, 11]));
        assert_eq!(changes_since(&mut read, &cpus), Changes::Nothing);
    }

    #[test]
    fn notes_that_wrap_around_the_slots_are_all_read_until_one_is_overwritten() {
        let mut read = Vec::new();
        let before: Vec<u32> = (1..=40).collect();
        changes_since(&mut read, &[cpu(&before)]);
        // Exactly a full set of slots since the last look, wrapping past the end: all still there.
        let full: Vec<u32> = (1..=40 + NEW_CODE_SLOTS as u32).collect();
        let expected: Vec<u32> = full[40..].to_vec();
        assert_eq!(changes_since(&mut read, &[cpu(&full)]), set(&expected));
        // One more than the slots hold: the oldest unread note is gone.
        let over: Vec<u32> = (1..=41 + 2 * NEW_CODE_SLOTS as u32).collect();
        assert_eq!(changes_since(&mut read, &[cpu(&over)]), Changes::Unknown);
        assert_eq!(changes_since(&mut read, &[cpu(&over)]), Changes::Nothing);
    }

    #[test]
    fn a_count_that_goes_back_or_a_cpu_count_that_changes_is_unknown() {
        let mut read = Vec::new();
        changes_since(&mut read, &[cpu(&[1, 2, 3])]);
        assert_eq!(changes_since(&mut read, &[cpu(&[1])]), Changes::Unknown);
        assert_eq!(
            changes_since(&mut read, &[cpu(&[1]), cpu(&[])]),
            Changes::Unknown
        );
        assert_eq!(
            changes_since(&mut read, &[cpu(&[1, 5]), cpu(&[])]),
            set(&[5])
        );
    }
}
