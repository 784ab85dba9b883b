//! The ring-buffer reader: waits for the ring's fd to become readable, drains it into the router and
//! refreshes the kernel loss counters. Runs as a tokio task on the capture thread.
//!
//! On stop it detaches the programs first, then drains what is left, so every event the kernel produced
//! before the stop is delivered.

use std::{sync::Arc, time::Duration};

use tokio::{io::unix::AsyncFd, sync::watch};

use super::loader::LoadedPrograms;
use crate::{conn::router::Router, stats::Counters};

/// Reads until `stop` turns true (or its sender is dropped).
pub async fn run(
    programs: LoadedPrograms,
    mut router: Router,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let LoadedPrograms { ebpf, ring, loss } = programs;
    // SAFETY: the RingBuf owns its fd and keeps it open for as long as the AsyncFd holds it; the fd is
    // not closed or replaced behind tokio's back (the I/O-safety condition of `register`).
    #[allow(unsafe_code)]
    let mut ring = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                let ring = guard.get_inner_mut();
                while let Some(item) = ring.next() {
                    router.route(&item);
                }
                router.flush();
                guard.clear_ready();
            }
            _ = tick.tick() => counters.set_kernel(&LoadedPrograms::sum_loss(&loss)),
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    drop(ebpf);
    let ring = ring.get_mut();
    while let Some(item) = ring.next() {
        router.route(&item);
    }
    router.flush();
    counters.set_kernel(&LoadedPrograms::sum_loss(&loss));
    Ok(())
}
