//! watcher: see the Redis and HTTP exchanges of every process on this host, live, through eBPF.
//!
//! One folder per stage, in the order data flows (see `docs/architecture.md`):
//! `capture` (the kernel side: loading, the ring reader, event decoding; the only code needing root)
//! → `conn` (routing events to shards, per-connection streams) → `protocol` (one folder per protocol
//! behind one registry: detection, decoding and pairing, and what each record means) → `store`
//! (bounded records published as snapshots, and the follower that hands each record on once) → the
//! readers: `tui`, `ndjson` (the NDJSON format: writing, reading, files), `analysis` (`stat` groups and
//! `--fail-on` findings), `telemetry` (metrics for Prometheus, spans and metrics for OTLP). `record` is
//! the record every stage after `conn` passes on, `cgroup` which cgroup and container it came from,
//! `counters` what is seen, kept and lost. `modes` runs each subcommand from the `Config` that `cli`
//! validates; `clock`, `format`, `handoff` (the queues between the pipeline's threads) and `invoker`
//! (the user behind `sudo`) are small shared helpers.
#![deny(unsafe_code)]

pub mod analysis;
pub mod capture;
pub mod cgroup;
pub mod cli;
pub mod clock;
pub mod conn;
pub mod counters;
pub mod format;
pub mod handoff;
pub mod invoker;
pub mod modes;
pub mod ndjson;
pub mod protocol;
pub mod record;
pub mod store;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod test_records;
pub mod tui;
