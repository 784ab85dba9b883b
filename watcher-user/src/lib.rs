//! watcher: see the Redis requests and replies of every process on this host, live, through eBPF.
//!
//! The crate is split by pipeline stage; each module's doc says what it owns and what it must not do:
//! `cli` (arguments to `Config`), `capture` (kernel programs and the ring reader; the only code needing
//! root), `conn` (per-connection reassembly and protocol sessions, sharded), `protocol` (pure decoders),
//! `filter`, `store` (bounded records and snapshots), `export` (NDJSON), `import` (NDJSON back into records),
//! `tui`, `headless`, `pipeline` (wires threads together), `bench_probes` (the benchmark's empty-programs
//! mode).
#![deny(unsafe_code)]

pub mod bench_probes;
pub mod capture;
pub mod cli;
pub mod clock;
pub mod conn;
pub mod export;
pub mod filter;
pub mod headless;
pub mod import;
pub mod pipeline;
pub mod protocol;
pub mod record;
pub mod signals;
pub mod stats;
pub mod store;
pub mod tui;
