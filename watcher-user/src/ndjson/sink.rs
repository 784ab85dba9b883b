//! Writing NDJSON out: [`NdjsonSink`] writes the records a store follower hands it, and [`write_all`]
//! writes a finished list (the TUI's `e` key). Each line is encoded by `write::RecordEncoder`.

use std::{io::Write, sync::Arc};

use super::write as json;
use crate::{record::Record, store::follow::Sink};

/// Bytes of encoded lines gathered before they are written out.
const WRITE_CHUNK: usize = 64 * 1024;

/// Writes each record as one JSON line.
///
/// Lines are encoded straight into one buffer and written in chunks of about [`WRITE_CHUNK`] (and at the
/// end of every burst, so a reader of a pipe sees records without delay): a line is copied once, not
/// once into a line buffer and again into the writer's.
pub struct NdjsonSink {
    out: Box<dyn Write + Send>,
    encoder: json::RecordEncoder,
    pending: Vec<u8>,
    pending_records: u64,
    /// Records written.
    pub written: u64,
}

impl NdjsonSink {
    /// A sink writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out,
            encoder: json::RecordEncoder::default(),
            pending: Vec::with_capacity(WRITE_CHUNK + 4096),
            pending_records: 0,
            written: 0,
        }
    }

    fn write_pending(&mut self) -> std::io::Result<()> {
        let result = self.out.write_all(&self.pending);
        self.pending.clear();
        if result.is_ok() {
            self.written += self.pending_records;
        }
        self.pending_records = 0;
        result
    }
}

impl NdjsonSink {
    /// Writes one record (into the pending chunk, written out once it is full).
    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        self.encoder.write(record, &mut self.pending);
        self.pending_records += 1;
        if self.pending.len() >= WRITE_CHUNK {
            self.write_pending()?;
        }
        Ok(())
    }
}

impl Sink for NdjsonSink {
    fn record(&mut self, record: &Arc<Record>) -> std::io::Result<()> {
        self.write(record)
    }

    fn burst_done(&mut self) -> std::io::Result<()> {
        self.write_pending()?;
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
        sink.write(record)?;
    }
    sink.burst_done()?;
    Ok(sink.written)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{
        protocol::redis::Blob,
        test_records::{ok, redis_with_args},
    };

    /// A writer whose bytes the test can read afterwards, failing from `fail_after` bytes on.
    #[derive(Clone)]
    struct Shared {
        bytes: Arc<Mutex<Vec<u8>>>,
        fail_after: usize,
    }

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut bytes = self.bytes.lock().unwrap();
            if bytes.len() + buf.len() > self.fail_after {
                return Err(std::io::Error::other("disk full"));
            }
            bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn records(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let key = Blob::full(format!("key:{i}"));
                let mut r = redis_with_args("GET", vec![key], Some(ok()));
                r.id = i as u64 + 1;
                r
            })
            .collect()
    }

    #[test]
    fn records_are_written_as_lines_in_chunks_and_at_burst_ends() {
        let out = Shared {
            bytes: Arc::default(),
            fail_after: usize::MAX,
        };
        let records = records(2000);
        let mut sink = NdjsonSink::new(Box::new(out.clone()));
        let mut expected = Vec::new();
        for r in &records[..1000] {
            sink.write(r).unwrap();
            json::write_record(r, &mut expected);
        }
        // More than one chunk's worth has gone out before the burst ended; the rest waits for its end.
        let before_end = out.bytes.lock().unwrap().len();
        assert!(before_end >= WRITE_CHUNK && before_end < expected.len());
        sink.burst_done().unwrap();
        assert_eq!(*out.bytes.lock().unwrap(), expected);
        assert_eq!(sink.written, 1000);
        assert_eq!(
            write_all(&records[1000..], Box::new(out.clone())).unwrap(),
            1000
        );
        let text = String::from_utf8(out.bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2000);
    }

    #[test]
    fn records_that_could_not_be_written_are_not_counted() {
        let out = Shared {
            bytes: Arc::default(),
            fail_after: 10,
        };
        let mut sink = NdjsonSink::new(Box::new(out));
        for r in &records(3) {
            sink.write(r).unwrap();
        }
        assert!(sink.burst_done().is_err());
        assert_eq!(sink.written, 0);
    }
}
