//! Export stage: NDJSON records to a file or stdout. `json` encodes one record; [`NdjsonSink`] writes
//! the records a `follow` loop hands it, and [`write_all`] writes a finished list (the TUI's `e` key).

pub mod json;

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::PathBuf,
    time::SystemTime,
};

use crate::{follow::Sink, record::Record};

/// Writes each record as one JSON line.
pub struct NdjsonSink {
    out: Box<dyn Write + Send>,
    line: Vec<u8>,
    /// Records written.
    pub written: u64,
}

impl NdjsonSink {
    /// A sink writing to `out` (buffer it: lines are written one by one).
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out,
            line: Vec::with_capacity(4096),
            written: 0,
        }
    }
}

impl Sink for NdjsonSink {
    fn record(&mut self, record: &Record) -> std::io::Result<()> {
        self.line.clear();
        json::write_record(record, &mut self.line);
        self.out.write_all(&self.line)?;
        self.written += 1;
        Ok(())
    }

    fn burst_done(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Writes `records` to `out` and flushes; returns how many were written.
pub fn write_all<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    out: Box<dyn Write + Send>,
) -> std::io::Result<u64> {
    let mut sink = NdjsonSink::new(out);
    for record in records {
        sink.record(record)?;
    }
    sink.burst_done()?;
    Ok(sink.written)
}

/// Creates `PREFIX-YYYYMMDD-HHMMSS.ndjson` (UTC, `now`) in the current directory, adding `-1`, `-2`, ...
/// rather than overwriting an earlier file of the same second.
pub fn create_timestamped(prefix: &str, now: SystemTime) -> std::io::Result<(PathBuf, File)> {
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter_map(|c| match c {
            'T' => Some('-'),
            c if c.is_ascii_digit() => Some(c),
            _ => None,
        })
        .collect();
    let mut attempt = 0;
    loop {
        let name = if attempt == 0 {
            format!("{prefix}-{stamp}.ndjson")
        } else {
            format!("{prefix}-{stamp}-{attempt}.ndjson")
        };
        match OpenOptions::new().write(true).create_new(true).open(&name) {
            Ok(file) => return Ok((PathBuf::from(name), file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
