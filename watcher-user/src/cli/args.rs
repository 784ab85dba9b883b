//! Raw command-line arguments as clap parses them. Nothing outside `cli` sees these: `config` validates
//! them into a `Config` first.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// See the Redis and HTTP traffic of every process on this host, live, through eBPF.
#[derive(Debug, Parser)]
#[command(name = "watcher", version, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
  watcher watch                                    live table of every Redis and HTTP exchange on the host
  watcher watch redis                              Redis only
  watcher watch http --status 5xx --path-prefix /api
  watcher watch redis --port 6379 --side server    only what the server on 6379 answers
  watcher watch redis --command GET --command SET --min-latency 5ms
  watcher watch redis --headless --duration 30s --json-output capture.ndjson
  watcher watch redis --json-output - | jq .redis.command";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch live traffic (Redis and HTTP, or one protocol).
    Watch(Box<WatchArgs>),
    /// Benchmark aid: attach programs that do nothing to the same tracepoints until interrupted.
    #[command(hide = true)]
    BenchProbes,
}

/// `watcher watch ...`
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Protocol to decode; both when omitted.
    #[arg(value_enum)]
    pub protocol: Option<ProtocolArg>,

    /// Trace only this process id (repeatable).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Trace only threads with this command name (as in /proc/PID/comm, at most 15 bytes).
    #[arg(long, value_name = "NAME")]
    pub comm: Option<String>,
    /// Trace only connections with this local or remote port (repeatable, up to 8).
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Which end of a connection to show.
    #[arg(long, value_enum, default_value_t = SideArg::Both)]
    pub side: SideArg,

    /// Show only this Redis command (repeatable, case-insensitive).
    #[arg(long = "command", value_name = "NAME")]
    pub commands: Vec<String>,
    /// Show only commands with a key starting with this prefix.
    #[arg(long, value_name = "PREFIX")]
    pub key_prefix: Option<String>,
    /// Show only HTTP requests with this method (repeatable, case-insensitive).
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,
    /// Show only HTTP requests to this host (the Host header, with or without its port).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Show only HTTP requests whose path starts with this.
    #[arg(long, value_name = "PREFIX")]
    pub path_prefix: Option<String>,
    /// Show only HTTP requests whose path matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub path_regex: Option<String>,
    /// Show only HTTP responses with this status: 404, 5xx or 200-299 (repeatable).
    #[arg(long = "status", value_name = "STATUS")]
    pub statuses: Vec<String>,

    /// Show only exchanges at least this slow, e.g. 500us, 5ms, 1s.
    #[arg(long, value_name = "DURATION")]
    pub min_latency: Option<String>,

    /// Bytes copied from each syscall, and kept of each value or body (larger ones are marked truncated).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024)]
    pub capture_bytes: u32,
    /// Records kept in memory (oldest are dropped first).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_records: usize,
    /// Kernel ring buffer size in MiB (a power of two).
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    pub ring_mib: u32,

    /// Write records as NDJSON to FILE, or to stdout with `-` (implies --headless).
    #[arg(long, value_name = "FILE|-")]
    pub json_output: Option<PathBuf>,
    /// Run without the terminal UI (also chosen when stdout is not a terminal).
    #[arg(long)]
    pub headless: bool,
    /// Stop after this long, e.g. 30s, 5m.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// Protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// Redis and other RESP servers (Valkey, `KeyDB`, Kvrocks).
    Redis,
    /// HTTP/1.0 and HTTP/1.1.
    Http,
}

/// `--side`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SideArg {
    /// The process that sent the request.
    Client,
    /// The process that answered it.
    Server,
    /// Both (two records per exchange when both ends are on this host).
    Both,
}
