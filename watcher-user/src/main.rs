//! The `watcher` binary: parse and validate arguments, run the chosen mode, map errors to exit codes.
//! Everything else lives in the library: the modes in `modes`, the stages they run in their folders.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use watcher::{
    cli::{Cli, Config},
    modes::{
        self,
        record::{self as recorder, exit_status},
    },
    ndjson::file::OpenError,
};

/// jemalloc, for the records made on one thread and freed on another (see `Cargo.toml`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let recording = std::env::args_os().nth(1).is_some_and(|a| a == "record");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with status 0; mistakes in a `record` line must not look like
        // a status of the command it would have run.
        Err(e) if e.use_stderr() && recording => {
            let _ = e.print();
            return ExitCode::from(exit_status::NOT_STARTED);
        }
        Err(e) => e.exit(),
    };
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(e) => {
            watcher::stderr_line!("watcher: {e}");
            return ExitCode::from(if recording {
                exit_status::NOT_STARTED
            } else {
                2
            });
        }
    };
    if config.shows_secrets() {
        watcher::stderr_line!(
            "watcher: --show-secrets: passwords, tokens, cookies and other secrets are NOT masked in any output"
        );
    }
    let result = match config {
        Config::Watch(watch) if watch.headless => match modes::headless::run(&watch) {
            Ok(summary) => {
                watcher::modes::stdio::message(format_args!("{}", summary.findings));
                watcher::stderr_line!("{summary}");
                return findings_status(summary.findings.passed());
            }
            Err(e) => Err(e),
        },
        Config::Watch(watch) => modes::ui::watch(&watch),
        Config::Record(record) => return record_status(recorder::run(&record)),
        Config::Show(show) => modes::ui::show(&show),
        Config::Stat(stat) => modes::stat::run(*stat),
        Config::BenchProbes(probes) => modes::bench_probes::run(probes),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // An export that cannot be created is a mistake in the arguments, reported as one.
        Err(e) if e.downcast_ref::<OpenError>().is_some() => {
            watcher::stderr_line!("watcher: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            watcher::stderr_line!("watcher: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn findings_status(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit_status::FINDINGS)
    }
}

fn record_status(result: Result<recorder::Recorded, recorder::RecordError>) -> ExitCode {
    match result {
        Ok(recorded) => {
            watcher::modes::stdio::message(format_args!("{}", recorded.summary.findings));
            watcher::stderr_line!("{}", recorded.summary);
            // The command's statuses and watcher's own can collide (a command may exit 123 itself): say
            // which one this is.
            watcher::stderr_line!("watcher: {}", recorded.status_origin());
            ExitCode::from(recorded.exit_status())
        }
        // Like any other mistake in a `record` line.
        Err(e @ recorder::RecordError::Output(_)) => {
            watcher::stderr_line!("watcher: {e}");
            ExitCode::from(e.exit_status())
        }
        Err(e) => {
            watcher::stderr_line!("watcher: error: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}
