//! Export stage: writes records as NDJSON to a file or stdout, reading them from store snapshots.
//!
//! The exporter never touches the store lock; it follows snapshots by record id, so it sees every record
//! once, in order, and counts those evicted before it could write them.

pub mod json;

use std::{io::Write, time::Duration};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::{stats::Counters, store::Store};

/// How an export ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    /// Records written.
    pub written: u64,
}

/// Why an export stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing failed (disk full, closed pipe, ...).
    #[error("writing JSON records failed: {0}")]
    Write(#[from] std::io::Error),
}

/// Follows the store until `wake` disconnects, writing each record once. Stops after `limit` records
/// when given.
pub fn run(
    store: &Store,
    counters: &Counters,
    mut out: Box<dyn Write + Send>,
    wake: &Receiver<()>,
    limit: Option<u64>,
) -> Result<ExportSummary, ExportError> {
    let mut last_id = 0;
    let mut summary = ExportSummary::default();
    let mut line = Vec::with_capacity(4096);
    loop {
        let finished = match wake.recv_timeout(Duration::from_millis(100)) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let snapshot = store.snapshot();
        if snapshot.first_id() > last_id + 1 && snapshot.total > last_id {
            Counters::add(&counters.export_missed, snapshot.first_id() - last_id - 1);
            last_id = snapshot.first_id() - 1;
        }
        for record in snapshot.after(last_id) {
            if limit.is_some_and(|l| record.id > l) {
                break;
            }
            line.clear();
            json::write_record(record, &mut line);
            out.write_all(&line)?;
            last_id = record.id;
            summary.written += 1;
        }
        out.flush()?;
        if finished || limit.is_some_and(|l| last_id >= l) {
            return Ok(summary);
        }
    }
}
