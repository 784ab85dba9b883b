//! Headless mode: capture and export until a signal, `--duration` or `--count`, then print a one-line
//! summary to stderr. Used by scripts and CI, and whenever stdout is not a terminal.

use std::{
    io::ErrorKind,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use crossbeam_channel::bounded;

use crate::{
    cli::WatchConfig,
    export::{self, ExportError},
    pipeline::Pipeline,
    signals,
    stats::Totals,
    store::Snapshot,
};

/// What a finished run saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Records stored.
    pub records: u64,
    /// Records written to the export.
    pub exported: u64,
    /// Records with a truncated value.
    pub truncated: u64,
    /// Counters at the end.
    pub totals: Totals,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.totals;
        write!(
            f,
            "watcher: {} records ({} exported), {} lost, {} truncated (kernel: {} ring-full, {} copy-failed; user: {} queue-full, {} sync losses, {} unrecognised connections)",
            self.records,
            self.exported,
            t.lost(),
            self.truncated,
            t.ring_full_events,
            t.copy_failed,
            t.queue_full_events + t.queue_full_records,
            t.lost_sync,
            t.unrecognised_connections,
        )
    }
}

/// Runs a headless capture.
pub fn run(mut cfg: WatchConfig) -> Result<Summary> {
    let terminate = signals::listen().context("installing signal handlers")?;
    let writer = cfg.take_writer();
    let (wake_tx, wake_rx) = bounded(1);
    let subscribers = if writer.is_some() {
        vec![wake_tx]
    } else {
        Vec::new()
    };
    let (pipeline, notes) = Pipeline::start(&cfg.pipeline, subscribers)?;
    for note in notes {
        eprintln!("watcher: {note}");
    }
    eprintln!("watcher: capturing (Ctrl-C to stop)");
    let exporter = writer.map(|out| {
        let store = Arc::clone(&pipeline.store);
        let counters = Arc::clone(&pipeline.counters);
        let limit = cfg.count;
        thread::Builder::new()
            .name("watcher-export".into())
            .spawn(move || export::run(&store, &counters, out, &wake_rx, limit))
    });
    let started = Instant::now();
    loop {
        if terminate.recv_timeout(Duration::from_millis(50)).is_ok() {
            break;
        }
        if cfg.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if cfg
            .count
            .is_some_and(|n| pipeline.store.snapshot().total >= n)
        {
            break;
        }
    }
    let store = Arc::clone(&pipeline.store);
    let counters = Arc::clone(&pipeline.counters);
    pipeline.stop()?;
    let exported = match exporter {
        None => 0,
        Some(handle) => match handle.context("starting the exporter")?.join() {
            Ok(Ok(summary)) => summary.written,
            Ok(Err(ExportError::Write(e))) if e.kind() == ErrorKind::BrokenPipe => 0,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => anyhow::bail!("the exporter panicked"),
        },
    };
    let snapshot = store.snapshot();
    Ok(Summary {
        records: snapshot.total,
        exported,
        truncated: count_truncated(&snapshot),
        totals: counters.totals(),
    })
}

fn count_truncated(snapshot: &Snapshot) -> u64 {
    snapshot.iter().filter(|r| r.truncated).count() as u64
}
