//! The consumers of a capture's records, fed by one follower thread: the NDJSON export, the
//! `--fail-on` checker, live statistics and telemetry (Prometheus, OTLP). Headless runs and the live UI
//! both use it; each leaves out what it does not need.
//!
//! A failed export (closed pipe, full disk) ends the export only: checks, statistics and telemetry
//! still see every record.

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::{
    analysis::{findings::Checker, stat::Aggregator},
    ndjson::sink::NdjsonSink,
    record::Record,
    store::follow::Sink,
    telemetry::Telemetry,
};

/// Everything that takes records, as one [`Sink`].
pub struct Consumers {
    /// The NDJSON export, while it works.
    pub export: Option<NdjsonSink>,
    /// Records written before the export failed.
    pub exported: u64,
    /// Why the export failed.
    pub export_error: Option<std::io::Error>,
    /// Told when the export fails, if the thread that decides when to stop asked to be.
    pub export_failed: Option<Sender<()>>,
    /// `--fail-on` conditions.
    pub checker: Checker,
    /// `stat`'s statistics.
    pub stats: Option<Aggregator>,
    /// Metrics and spans.
    pub telemetry: Option<Telemetry>,
}

impl Consumers {
    /// Consumers that do nothing yet.
    pub fn new(export: Option<NdjsonSink>) -> Self {
        Self {
            export,
            exported: 0,
            export_error: None,
            export_failed: None,
            checker: Checker::default(),
            stats: None,
            telemetry: None,
        }
    }

    /// Whether any consumer is present (otherwise no follower is needed).
    pub fn any(&self) -> bool {
        self.export.is_some()
            || !self.checker.is_empty()
            || self.stats.is_some()
            || self.telemetry.is_some()
    }

    /// Records written to the export.
    pub fn written(&self) -> u64 {
        self.export.as_ref().map_or(self.exported, |e| e.written)
    }

    fn export_with(&mut self, write: impl FnOnce(&mut NdjsonSink) -> std::io::Result<()>) {
        let Some(export) = &mut self.export else {
            return;
        };
        if let Err(e) = write(export) {
            self.exported = export.written;
            self.export = None;
            self.export_error = Some(e);
            if let Some(tell) = &self.export_failed {
                let _ = tell.try_send(());
            }
        }
    }
}

impl Sink for Consumers {
    fn record(&mut self, record: &Arc<Record>) -> std::io::Result<()> {
        self.checker.check(record);
        if let Some(stats) = &mut self.stats {
            stats.add(record);
        }
        if let Some(telemetry) = &mut self.telemetry {
            telemetry.record(record);
        }
        self.export_with(|export| export.write(record));
        Ok(())
    }

    fn burst_done(&mut self) -> std::io::Result<()> {
        if let Some(telemetry) = &mut self.telemetry {
            telemetry.burst_done();
        }
        self.export_with(NdjsonSink::burst_done);
        Ok(())
    }

    fn due_within(&self) -> Option<std::time::Duration> {
        self.telemetry.as_ref().and_then(Telemetry::due_within)
    }
}
