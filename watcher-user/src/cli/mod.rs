//! Command line, in two stages: `args` (what clap parses) and `config` (validated settings).

pub mod args;
pub mod config;

pub use args::Cli;
pub use config::{Config, ConfigError, WatchConfig};
