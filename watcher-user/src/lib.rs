//! watcher: see the Redis and HTTP exchanges of every process on this host, live, through eBPF.
//!
//! The crate is split by pipeline stage; each module's doc says what it owns and what it must not do:
//! `cli` (arguments to `Config`), `capture` (kernel programs and the ring reader; the only code needing
//! root), `conn` (per-connection reassembly and protocol sessions, sharded), `protocol` (pure decoders),
//! `filter`, `counters` (loss and progress counters), `store` (bounded records and snapshots), `follow`
//! (hands every stored record once to exporters and checkers), `export` (NDJSON), `import` (NDJSON back
//! into records), `findings` (`--fail-on`), `stat` (per-group counts, error rates, latency percentiles
//! and histograms), `format` (text shared by human-facing outputs), `tui`, `headless`, `recorder`
//! (`record -- CMD`), `report` (`stat`), `pipeline` (wires threads together), `bench_probes` (the
//! benchmark's empty-programs mode).
#![deny(unsafe_code)]

pub mod bench_probes;
pub mod capture;
pub mod cli;
pub mod clock;
pub mod conn;
pub mod counters;
pub mod export;
pub mod filter;
pub mod findings;
pub mod follow;
pub mod format;
pub mod headless;
pub mod import;
pub mod pipeline;
pub mod protocol;
pub mod record;
pub mod recorder;
pub mod report;
pub mod signals;
pub mod stat;
pub mod store;
#[cfg(test)]
pub(crate) mod test_records;
pub mod tui;
