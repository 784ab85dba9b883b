//! The ring-buffer reader: drains the ring every few milliseconds (and at once when the kernel signals a
//! burst), decodes each record and hands it to the [`EventSink`], and refreshes the kernel loss
//! counters. Runs as a tokio task on the capture thread.
//!
//! The kernel side submits records without waking us (see `watcher-ebpf/src/ring.rs`), so the traced
//! process never pays for a wake-up per syscall; a timer bounds how stale the display can be.
//!
//! On stop it disarms the programs first (they return at once from then on), waits out any run still
//! in progress, then drains what is left, so every event the kernel produced before the stop is
//! delivered. Detaching takes seconds (the kernel removes uprobes one at a time), so it is left to
//! happen after watcher has exited (`loader::detach_after_exit`): nobody waits for it.
//!
//! It owns the programs, so it is also where the TLS probes are attached to files found after start
//! (`tls::follow` finds them on its own thread and sends them here).

use std::{sync::Arc, time::Duration};

use aya::maps::{MapData, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    sync::{mpsc, watch},
    time::MissedTickBehavior,
};

use super::{
    event,
    loader::{self, LoadedPrograms},
    tls::TlsTarget,
    EventSink,
};
use crate::counters::Counters;

/// How often the ring is drained when the kernel has not asked for it: how stale the display and the
/// export may be. Each drain costs watcher a fixed price whatever it carries (every stage wakes, and
/// the shards fetch back the state of every busy connection), so a longer interval costs watcher less:
/// under `redis-benchmark -P 1`, 25 ms took a tenth off watcher's own CPU per record and 5 ms added a
/// sixth. But at 25 ms the watched server spent about 400 ns more per request in every A/B run, more
/// than watcher saved; the benchmark's `--against` compares the two.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longer than any program run that read the configuration just before it was disarmed (the longest,
/// copying a 16 MiB call, takes a few milliseconds).
const DISARM_SETTLE: Duration = Duration::from_millis(20);

/// Hands every record in the ring to `sink`, counting those that do not decode, then flushes it.
fn drain(ring: &mut RingBuf<MapData>, sink: &mut impl EventSink, counters: &Counters) {
    while let Some(item) = ring.next() {
        match event::decode(&item) {
            Ok(event) => sink.event(event),
            Err(_) => Counters::add(&counters.user.malformed_events, 1),
        }
    }
    sink.flush();
}

/// The next file to put the TLS probes on; never ready when TLS capture is off.
async fn next_tls_target(targets: &mut Option<mpsc::Receiver<TlsTarget>>) -> Option<TlsTarget> {
    match targets {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Reads until `stop` turns true (or its sender is dropped), attaching the TLS probes to each file that
/// arrives on `tls_targets`.
pub async fn run(
    programs: LoadedPrograms,
    mut sink: impl EventSink,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
    mut tls_targets: Option<mpsc::Receiver<TlsTarget>>,
) -> std::io::Result<()> {
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
    let mut drain_tick = tokio::time::interval(DRAIN_INTERVAL);
    drain_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut loss_tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                drain(guard.get_inner_mut(), &mut sink, &counters);
                guard.clear_ready();
            }
            _ = drain_tick.tick() => drain(ring.get_mut(), &mut sink, &counters),
            _ = loss_tick.tick() => counters.set_kernel(LoadedPrograms::sum_loss(&loss)),
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
    drain(ring.get_mut(), &mut sink, &counters);
    counters.set_kernel(LoadedPrograms::sum_loss(&loss));
    if let Some((ebpf, links)) = attached {
        loader::detach_after_exit(ebpf, links);
    }
    Ok(())
}
