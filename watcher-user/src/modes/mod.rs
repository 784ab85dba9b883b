//! The runnable modes, each from a validated `Config` to its end: `ui` (live `watch` with the terminal
//! UI, and `show FILE`), `headless` (`watch` without the UI), `record` (`record -- CMD`), `stat`, and
//! `bench_probes` (the benchmark's floors: empty programs, the least copy); `pipeline` wires the capture threads they
//! share, `consumers` is what their follower thread feeds (export, checks, statistics, telemetry),
//! `signals` turns SIGINT and SIGTERM into messages, and `stdio` writes to the standard streams without
//! panicking when their reader has gone.
//!
//! This is where stages meet I/O: files are opened, threads started and messages printed here. It is the
//! only place besides `main` that uses `anyhow`; the stages below it return typed errors.

pub mod bench_probes;
pub mod consumers;
pub mod headless;
pub mod pipeline;
pub mod record;
pub mod signals;
pub mod stat;
pub mod stdio;
pub mod ui;
