//! Command line, in two stages: `args` (what clap parses) and `config` (validated settings, without I/O).
//! Each protocol's filter options come from its folder through the registry.

pub mod args;
pub mod config;

pub use args::Cli;
pub use config::{Config, ConfigError, WatchConfig};
