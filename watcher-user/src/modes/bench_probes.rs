//! `watcher bench-probes` (hidden): the benchmark's "empty programs" configuration.
//!
//! Attaches a program that returns at once to every syscall hook `watch` uses (the raw `sys_exit`
//! tracepoint, or the syscall tracepoints with `--hooks tracepoints`), and waits for SIGINT or SIGTERM. What the traced service loses under it is the price of the hooks themselves, the floor
//! against which `cargo xtask bench` judges the cost of our real programs.

use anyhow::{Context, Result};

use super::signals;
use crate::capture::{
    loader::{self, SyscallHooks},
    preflight,
};

/// Attaches the empty programs until a termination signal.
pub fn run(hooks: SyscallHooks) -> Result<()> {
    let terminate = signals::listen().context("installing signal handlers")?;
    preflight::run()?;
    let attached = loader::load_noop(hooks).context("loading the empty programs")?;
    eprintln!("watcher: empty programs attached (Ctrl-C to stop)");
    let _ = terminate.recv();
    drop(attached);
    Ok(())
}
