//! The `watcher` binary: parse and validate arguments, run the chosen mode, map errors to exit codes.
//! Everything else lives in the library, stage by stage.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use watcher::{
    cli::{args::Command, Cli, Config},
    recorder::{self, exit_status},
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let recording = matches!(cli.command, Command::Record(_));
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("watcher: {e}");
            // `record` keeps 1-122 for the command's own statuses.
            return ExitCode::from(if recording {
                exit_status::NOT_STARTED
            } else {
                2
            });
        }
    };
    let result = match config {
        Config::Watch(watch) if watch.headless => match watcher::headless::run(*watch) {
            Ok(summary) => {
                eprint!("{}", summary.findings);
                eprintln!("{summary}");
                return findings_status(summary.findings.passed());
            }
            Err(e) => Err(e),
        },
        Config::Watch(watch) => watcher::tui::run(*watch),
        Config::Record(record) => return record_status(recorder::run(*record)),
        Config::Show(show) => watcher::tui::show(&show),
        Config::Stat(stat) => watcher::report::run(*stat),
        Config::BenchProbes => watcher::bench_probes::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("watcher: error: {e:#}");
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
            eprint!("{}", recorded.summary.findings);
            eprintln!("{}", recorded.summary);
            ExitCode::from(recorded.exit_status())
        }
        Err(e) => {
            eprintln!("watcher: error: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}
