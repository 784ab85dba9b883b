//! `watcher bench-probes` (hidden): the benchmark's floors, what our programs are judged against.
//!
//! By default it attaches a program that returns at once to every syscall hook `watch` uses (the raw
//! `sys_exit` tracepoint, or the syscall tracepoints with `--hooks tracepoints`): what the traced
//! service loses under it is the price of the hooks themselves. With `--least-copy PID` it attaches
//! instead the least a capture must do for that process (stamp each read and write, vectored or not,
//! and copy its bytes into the ring buffer, see the kernel side's `floor`) and drains the ring as watcher's reader does,
//! on a short timer: the price of copying the bytes out at all. Either waits for SIGINT or SIGTERM.

use anyhow::{Context, Result};
use crossbeam_channel::RecvTimeoutError;

use super::signals;
use crate::{
    capture::{loader, preflight, reader::DRAIN_INTERVAL},
    cli::config::Probes,
};

/// Attaches `probes` until a termination signal.
pub fn run(probes: Probes) -> Result<()> {
    let terminate = signals::listen().context("installing signal handlers")?;
    preflight::run()?;
    match probes {
        Probes::Empty(hooks) => {
            let attached = loader::load_noop(hooks).context("loading the empty programs")?;
            crate::stderr_line!("watcher: empty programs attached (Ctrl-C to stop)");
            let _ = terminate.recv();
            drop(attached);
        }
        Probes::LeastCopy(pid) => {
            let mut attached =
                loader::load_least_copy(pid).context("loading the least-copy program")?;
            crate::stderr_line!(
                "watcher: least-copy program attached to process {pid} (Ctrl-C to stop)"
            );
            let mut events = 0u64;
            while let Err(RecvTimeoutError::Timeout) = terminate.recv_timeout(DRAIN_INTERVAL) {
                while attached.ring.next().is_some() {
                    events += 1;
                }
            }
            let loss = loader::LoadedPrograms::sum_loss(&attached.loss);
            drop(attached);
            // A floor that lost events did less work than a capture must: say so.
            crate::stderr_line!(
                "watcher: {events} events drained, {} lost to a full ring, {} copies failed",
                loss.ring_full_events,
                loss.copy_failed
            );
        }
    }
    Ok(())
}
