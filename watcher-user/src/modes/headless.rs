//! Headless mode: capture without the UI, exporting and checking `--fail-on` conditions, until a signal,
//! `--duration`, `--count` or (for `record`) the end of a command; then a one-line summary for stderr.
//!
//! [`Capture`] is the part every headless mode shares: the pipeline plus one follower thread that feeds
//! the consumers (export, checker, statistics, telemetry), and the telemetry threads. It never prints;
//! callers decide what to say.

use std::{
    io::ErrorKind,
    sync::Arc,
    thread::{self, JoinHandle},
    time::Instant,
};

use anyhow::{Context, Result};
use crossbeam_channel::{bounded, select, Receiver, Sender};

use super::{
    consumers::Consumers,
    pipeline::{Pipeline, StartNotes, Subscriber},
    signals,
};
use crate::{
    analysis::{
        findings::{Checker, Findings},
        stat::Aggregator,
    },
    cli::WatchConfig,
    counters::Totals,
    handoff,
    invoker::Invoker,
    ndjson::{file, sink::NdjsonSink},
    store::{
        follow::{self, Followed},
        Snapshot,
    },
    telemetry::Service,
};

/// What a finished run saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Records stored.
    pub records: u64,
    /// Records written to the export.
    pub exported: u64,
    /// Records with a truncated value.
    pub truncated: u64,
    /// Counters at the end.
    pub totals: Totals,
    /// `--fail-on` conditions that were met.
    pub findings: Findings,
    /// Whether spans were exported over OTLP (the summary then says how many).
    pub otlp: bool,
    /// Records the store evicted to stay within `--max-memory` (still exported and checked: the
    /// follower saw them first, or counted them as not exported).
    pub evicted_for_memory: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.totals;
        write!(
            f,
            "watcher: {} records ({} exported), {} lost, {} truncated ({} calls longer than --max-call-bytes; {}; {} sync losses, {} unrecognised connections, {} encrypted connections, {} TLS connections decrypted)",
            self.records,
            self.exported,
            t.lost(),
            self.truncated,
            t.kernel.truncated_calls,
            t.loss_breakdown(),
            t.user.lost_sync,
            t.user.unrecognised_connections,
            t.user.encrypted_connections,
            t.user.tls_connections,
        )?;
        if self.evicted_for_memory > 0 {
            write!(
                f,
                "; {} records evicted from memory to stay within --max-memory",
                self.evicted_for_memory
            )?;
        }
        if self.otlp {
            write!(
                f,
                "; OTLP: {} spans exported, {} dropped",
                t.user.otlp_spans_exported, t.user.otlp_spans_dropped
            )?;
        }
        Ok(())
    }
}

type Follower = JoinHandle<(Consumers, Followed, std::io::Result<()>)>;

/// A headless capture in progress.
pub struct Capture {
    pipeline: Pipeline,
    follower: Option<Follower>,
    /// Ready once the follower has ended (after `--count` records) or the export has failed.
    ended: Receiver<()>,
    telemetry: Option<Service>,
    otlp: bool,
}

impl Capture {
    /// Starts the pipeline and, when anything consumes records (`export`, checks, `stats`,
    /// telemetry) or `--count` needs them counted, the follower.
    pub fn start(
        cfg: &WatchConfig,
        export: Option<Box<dyn std::io::Write + Send>>,
        stats: Option<Aggregator>,
    ) -> Result<(Self, StartNotes)> {
        let mut consumers = Consumers::new(export.map(NdjsonSink::new));
        consumers.checker = Checker::new(&cfg.fail_on);
        consumers.stats = stats;
        let (end_tx, ended) = bounded(1);
        consumers.export_failed = Some(end_tx.clone());
        let consumes = consumers.any() || cfg.telemetry.is_on() || cfg.count.is_some();
        let (wake_tx, wake_rx) = handoff::bounded(1);
        let position = Arc::new(follow::Position::default());
        let subscribers = if consumes {
            vec![Subscriber::Follower {
                wake: wake_tx,
                position: Arc::clone(&position),
            }]
        } else {
            Vec::new()
        };
        let (pipeline, mut notes) = Pipeline::start(&cfg.pipeline, subscribers)?;
        let telemetry = match Service::start(&cfg.telemetry, &pipeline.counters) {
            Ok(started) => started,
            Err(e) => {
                let _ = pipeline.stop();
                return Err(e);
            }
        };
        let telemetry = telemetry.map(|(service, sink, more_notes)| {
            consumers.telemetry = Some(sink);
            notes.extend(more_notes);
            service
        });
        let (follower, ended) = if consumes {
            let follower =
                spawn_follower(&pipeline, wake_rx, position, cfg.count, end_tx, consumers)?;
            (Some(follower), ended)
        } else {
            (None, crossbeam_channel::never())
        };
        Ok((
            Self {
                pipeline,
                follower,
                ended,
                telemetry,
                otlp: cfg.telemetry.otlp.is_some(),
            },
            notes,
        ))
    }

    /// Ready (a message, once) when the follower has ended, which it does by itself after `--count`
    /// records, or when writing the export failed (e.g. its reader went away); never without a
    /// follower. The capture goes on regardless until [`Capture::finish`].
    pub fn ended(&self) -> &Receiver<()> {
        &self.ended
    }

    /// Stops capturing, lets the follower see every record, and sums up.
    pub fn finish(self) -> Result<Summary> {
        self.finish_with_stats().map(|(summary, _)| summary)
    }

    /// [`Capture::finish`], also returning the statistics gathered, if asked for at start.
    pub fn finish_with_stats(self) -> Result<(Summary, Option<Aggregator>)> {
        let store = self.pipeline.store.clone();
        let counters = Arc::clone(&self.pipeline.counters);
        self.pipeline.stop()?;
        let (exported, checker, stats) = match self.follower {
            None => (0, Checker::default(), None),
            Some(handle) => {
                let Ok((mut consumers, _, result)) = handle.join() else {
                    anyhow::bail!("the exporter panicked");
                };
                // The last spans and metrics go out before the summary counts them.
                if let (Some(service), Some(sink)) = (self.telemetry, consumers.telemetry.take()) {
                    service.finish(sink);
                }
                // A reader that went away (`| head`) is how a pipe ends, not an error.
                match result.err().or(consumers.export_error.take()) {
                    Some(e) if e.kind() != ErrorKind::BrokenPipe => {
                        return Err(e).context("writing JSON records");
                    }
                    _ => {}
                }
                (consumers.written(), consumers.checker, consumers.stats)
            }
        };
        let snapshot = store.snapshot();
        let totals = counters.totals();
        let summary = Summary {
            records: snapshot.total,
            exported,
            truncated: count_truncated(&snapshot),
            findings: checker.finish(&totals),
            totals,
            otlp: self.otlp,
            evicted_for_memory: snapshot.evicted_for_memory,
        };
        Ok((summary, stats))
    }
}

/// Starts the follower subscribed to the pipeline with `wake` and `position`: it stops after `limit`
/// records when given, and tells `ended` when it has stopped.
fn spawn_follower(
    pipeline: &Pipeline,
    wake: handoff::Receiver<()>,
    position: Arc<follow::Position>,
    limit: Option<u64>,
    ended: Sender<()>,
    sink: Consumers,
) -> Result<Follower> {
    let store = pipeline.store.clone();
    let counters = Arc::clone(&pipeline.counters);
    let handle = thread::Builder::new()
        .name("watcher-follow".into())
        .spawn(move || {
            let followed = follow::run(&store, &counters, &wake, limit, &position, sink);
            let _ = ended.try_send(());
            followed
        })
        .context("starting the exporter")?;
    pipeline.schedule_follower(&handle);
    Ok(handle)
}

/// Runs a headless `watch` until a signal, `--duration` or `--count`.
pub fn run(cfg: &WatchConfig) -> Result<Summary> {
    run_with_stats(cfg, None).map(|(summary, _)| summary)
}

/// [`run`], feeding every record to `stats` as well.
pub fn run_with_stats(
    cfg: &WatchConfig,
    stats: Option<Aggregator>,
) -> Result<(Summary, Option<Aggregator>)> {
    let terminate = signals::listen().context("installing signal handlers")?;
    let export = cfg
        .output
        .as_ref()
        .map(|target| file::open(target, Invoker::file_owner()))
        .transpose()?;
    let (capture, notes) = Capture::start(cfg, export.map(|e| e.writer), stats)?;
    for note in notes {
        crate::stderr_line!("watcher: {note}");
    }
    crate::stderr_line!("watcher: capturing (Ctrl-C to stop)");
    // Every reason to stop arrives as a message, so the thread sleeps until one does: a signal, the
    // end of `--duration`, the follower's end (after `--count`) or a failed export.
    let out_of_time = cfg
        .duration
        .and_then(|d| Instant::now().checked_add(d))
        .map_or_else(crossbeam_channel::never, crossbeam_channel::at);
    select! {
        recv(terminate) -> _ => {}
        recv(out_of_time) -> _ => {}
        recv(capture.ended()) -> _ => {}
    }
    capture.finish_with_stats()
}

fn count_truncated(snapshot: &Snapshot) -> u64 {
    snapshot.iter().filter(|r| r.truncated).count() as u64
}
