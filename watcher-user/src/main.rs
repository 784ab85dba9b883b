//! The `watcher` binary: parse and validate arguments, run the chosen mode, map errors to exit codes.
//! Everything else lives in the library, stage by stage.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use watcher::cli::{Cli, Config};

fn main() -> ExitCode {
    let config = match Config::from_cli(Cli::parse()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("watcher: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match config {
        Config::Watch(watch) if watch.headless => {
            watcher::headless::run(*watch).map(|summary| eprintln!("{summary}"))
        }
        Config::Watch(watch) => watcher::tui::run(*watch),
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
