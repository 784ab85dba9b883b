//! Raw command-line arguments as clap parses them. Nothing outside `cli` sees these: `config` validates
//! them into a `Config` first.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    capture::loader,
    protocol::{registry::ProtocolFilterArgs, ProtocolId},
};

/// See the Redis, HTTP and MySQL traffic of every process on this host, live, through eBPF.
#[derive(Debug, Parser)]
#[command(name = "watcher", version, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
  watcher watch                                    live table of every Redis, HTTP and MySQL exchange on the host
  watcher watch redis                              Redis only
  watcher watch mysql --sql-regex '(?i)^update' --errors
  watcher watch http --status 5xx --path-prefix /api
  watcher watch redis --port 6379 --side server    only what the server on 6379 answers
  watcher watch redis --command GET --command SET --min-latency 5ms
  watcher watch redis --headless --duration 30s --json-output capture.ndjson
  watcher watch redis --json-output - | jq .redis.command
  watcher record --fail-on redis-error -- ./run-tests.sh
  watcher show capture.ndjson
  watcher stat capture.ndjson --group-by endpoint";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch live traffic (Redis, HTTP and MySQL, or one protocol).
    Watch(Box<WatchArgs>),
    /// Run a command and record the traffic of it and every process it starts; exit with its status.
    #[command(after_help = RECORD_HELP)]
    Record(Box<RecordArgs>),
    /// Open an NDJSON capture in the terminal UI (no root needed).
    Show(Box<ShowArgs>),
    /// Aggregate records by command, endpoint, status, connection, remote, process, container or cgroup.
    #[command(after_help = STAT_HELP)]
    Stat(Box<StatArgs>),
    /// Benchmark aid: attach programs that do nothing to the same tracepoints until interrupted.
    #[command(hide = true)]
    BenchProbes {
        /// Which syscall hooks get the empty programs.
        #[arg(long, value_enum, default_value_t = HooksArg::Raw)]
        hooks: HooksArg,
        /// Instead of the empty programs, the least a capture must do for process PID, on the raw
        /// `sys_exit` hook: stamp its reads and writes and copy their bytes into the ring buffer,
        /// which this process drains.
        #[arg(long, value_name = "PID", conflicts_with = "hooks")]
        least_copy: Option<u32>,
    },
}

const RECORD_HELP: &str = "Exit status:
  0        CMD succeeded and no --fail-on condition was met
  N        CMD failed with status N: passed through (even when a --fail-on condition was met too)
  128+N    CMD was killed by signal N
  123      CMD succeeded but a --fail-on condition was met (the offending records are listed on stderr)
  124      the capture failed while CMD ran (its records may be incomplete)
  125      watcher could not start (bad arguments, no privileges, no kernel support); CMD did not run
  126/127  CMD could not be executed / was not found
A command may exit 123-127 itself: watcher's last line on stderr says whose status it is.

Examples:
  watcher record -- ./integration-tests.sh
  watcher record redis --fail-on redis-error --json-output run.ndjson -- redis-benchmark -n 1000 -q
  watcher record --port 6379 -- ./client     also every process's traffic on port 6379 (e.g. the server)
  watcher record http --fail-on http-5xx --fail-on 'latency>200ms' -- curl -s http://localhost:8080/";

const STAT_HELP: &str =
    "Percentiles are nearest-rank over answered requests: pN = the ceil(N/100 * n)-th fastest.

Examples:
  watcher stat capture.ndjson                          by command
  watcher stat capture.ndjson --group-by endpoint --sort p99
  watcher stat mysql --duration 30s --group-by statement   SQL with its literals as ?
  watcher stat redis --duration 30s --group-by process live, then print
  watcher stat capture.ndjson --group-by container     which container asked
  watcher stat capture.ndjson --json | jq '.groups[0]'";

/// Which processes and connections the kernel side traces (shared by `watch`, `record` and `stat`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Tracing")]
pub struct TraceArgs {
    /// Trace only this process id (repeatable). With `record`: also trace it.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Trace only threads with this command name (as in /proc/PID/comm, at most 15 bytes).
    #[arg(long, value_name = "NAME")]
    pub comm: Option<String>,
    /// Trace only connections with this local or remote port (repeatable, up to 8). With `record`:
    /// also trace every process's connections on this port.
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Trace only processes in this cgroup (v2) or below it (repeatable, with --container up to 8): a
    /// path under the cgroup mount as /proc/PID/cgroup shows it, e.g. /system.slice/nginx.service.
    #[arg(long = "cgroup", value_name = "PATH")]
    pub cgroups: Vec<PathBuf>,
    /// Trace only this container (repeatable): its id or a prefix of it, as `docker ps` prints it.
    /// Found through the cgroup layouts of Docker, containerd/CRI, CRI-O, Podman and Kubernetes.
    #[arg(long = "container", value_name = "ID")]
    pub containers: Vec<String>,
    /// Bytes kept of each value or body; longer ones keep their true length and are marked truncated.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024)]
    pub capture_bytes: u32,
    /// Bytes copied from one syscall at most, so the stream stays decodable; the rest of a longer call
    /// is a counted gap.
    #[arg(long, value_name = "BYTES", default_value_t = loader::DEFAULT_MAX_CALL_BYTES)]
    pub max_call_bytes: u32,
    /// Records kept in memory (oldest are dropped first).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_records: usize,
    /// Memory the stored records may take, in MiB (oldest are dropped first; counted in the status bar
    /// and the summary). Whichever of this and --max-records is reached first applies.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub max_memory: usize,
    /// Kernel ring buffer size in MiB (a power of two).
    #[arg(long, value_name = "MIB", default_value_t = loader::DEFAULT_RING_MIB)]
    pub ring_mib: u32,
    /// Do not capture TLS plaintext. By default uprobes on OpenSSL (`libssl`, and programs with it
    /// built in) show HTTPS and Redis-over-TLS decrypted; without them TLS connections are only counted.
    #[arg(long)]
    pub no_tls: bool,
    /// Kernel hooks on socket syscalls: `raw` is one program per call on the raw `sys_exit` tracepoint
    /// (x86-64), `tracepoints` two per call on the syscall tracepoints; `auto` uses raw where it can be
    /// attached and says so at start when it falls back.
    #[arg(long, value_enum, value_name = "HOOKS", default_value_t = HooksArg::Auto)]
    pub syscall_hooks: HooksArg,
    /// Keep the decoding threads, the store writer and the exporter on the normal scheduling policy. By
    /// default they never preempt a traced service (the batch policy), run only in CPU time the
    /// services leave idle while watcher uses 10% or more of the host's CPU (the idle policy), and
    /// compete for CPU only while events wait for the decoders (30 ms, or a pile of 16 batches) or the
    /// exporter falls behind, so a busy service loses less to watcher and nothing is lost to the
    /// yielding.
    #[arg(long)]
    pub no_yield: bool,
}

/// Which records are kept (shared by every subcommand): the common filters, then each protocol's own.
#[derive(Debug, Args)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    /// Which end of a connection to show.
    #[arg(long, value_enum, default_value_t = SideArg::Both)]
    pub side: SideArg,
    #[command(flatten)]
    pub protocols: ProtocolFilterArgs,
    /// Show only exchanges at least this slow, e.g. 500us, 5ms, 1s.
    #[arg(long, value_name = "DURATION")]
    pub min_latency: Option<String>,
    /// Show only errors: Redis error replies, HTTP 4xx and 5xx, MySQL ERR packets.
    #[arg(long)]
    pub errors: bool,
}

/// Which secrets are masked (shared by every subcommand: live captures mask them as they decode, files
/// are masked again as they are read).
#[derive(Debug, Args)]
#[command(next_help_heading = "Secrets")]
pub struct SecretArgs {
    /// Do not mask passwords, tokens, cookies and other secrets (they are masked by default, in every
    /// output).
    #[arg(long)]
    pub show_secrets: bool,
    /// Also mask the values of HTTP header NAME, in any case (repeatable).
    #[arg(long, value_name = "NAME", conflicts_with = "show_secrets")]
    pub redact_header: Vec<String>,
}

/// What a capture decodes, traces and keeps (shared by `watch` and `record`).
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Protocol to decode; all when omitted.
    #[arg(value_enum)]
    pub protocol: Option<ProtocolId>,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub secrets: SecretArgs,
}

/// Where a capture's records go and what fails it (shared by `watch` and `record`, each giving the help
/// its own wording).
#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Write records as NDJSON to FILE, or to stdout with `-`.
    #[arg(long, value_name = "FILE|-")]
    pub json_output: Option<PathBuf>,
    /// Exit with status 123 and list the offending records if CONDITION is met (repeatable):
    /// redis-error, http-5xx, http-4xx, mysql-error, latency>DURATION (e.g. latency>50ms), lost.
    // Listed after the subcommand's own output options.
    #[arg(long = "fail-on", value_name = "CONDITION", display_order = 100)]
    pub fail_on: Vec<String>,
    /// Serve metrics in the Prometheus text format at `http://ADDR/metrics`: duration histograms per
    /// protocol, operation (and HTTP route), status class, side and container, and watcher's own
    /// counters. ADDR is HOST:PORT, or :PORT for every interface.
    #[arg(long, value_name = "ADDR", help_heading = "Telemetry")]
    pub metrics_listen: Option<String>,
    /// Send a span per record and the duration metrics to an OpenTelemetry collector over OTLP/HTTP
    /// (protobuf), at `URL/v1/traces` and `URL/v1/metrics`, e.g. `http://localhost:4318`. Also read from
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (with `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`,
    /// `OTEL_METRIC_EXPORT_INTERVAL` and `OTEL_BSP_SCHEDULE_DELAY`).
    #[arg(long, value_name = "URL", help_heading = "Telemetry")]
    pub otlp_endpoint: Option<String>,
}

const WATCH_JSON_OUTPUT: &str =
    "Write records as NDJSON to FILE, or to stdout with `-` (implies --headless)";
const WATCH_FAIL_ON: &str = "Headless: exit with status 123 and list the offending records if CONDITION is met (repeatable): redis-error, http-5xx, http-4xx, mysql-error, latency>DURATION (e.g. latency>50ms), lost";
const RECORD_JSON_OUTPUT: &str = "Write records as NDJSON to FILE, or to stdout with `-` [default: watcher-YYYYMMDD-HHMMSS.ndjson]";

/// `watcher watch ...`
#[derive(Debug, Args)]
#[command(
    mut_arg("json_output", |a| a.help(WATCH_JSON_OUTPUT)),
    mut_arg("fail_on", |a| a.help(WATCH_FAIL_ON)),
)]
pub struct WatchArgs {
    #[command(flatten)]
    pub capture: CaptureArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Run without the terminal UI (also chosen when stdout is not a terminal).
    #[arg(long, help_heading = "Output")]
    pub headless: bool,
    /// Stop after this long, e.g. 30s, 5m.
    #[arg(long, value_name = "DURATION", help_heading = "Output")]
    pub duration: Option<String>,
    /// Stop after this many records.
    #[arg(long, value_name = "N", help_heading = "Output")]
    pub count: Option<u64>,
}

/// `watcher record ... -- CMD [ARGS...]`
#[derive(Debug, Args)]
#[command(mut_arg("json_output", |a| a.help(RECORD_JSON_OUTPUT)))]
pub struct RecordArgs {
    #[command(flatten)]
    pub capture: CaptureArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Run the command as root when watcher was started through sudo (by default it runs as the user
    /// who ran sudo, with that user's groups).
    #[arg(long, help_heading = "Command")]
    pub as_root: bool,
    /// The command to run, after `--`.
    #[arg(
        last = true,
        required = true,
        value_name = "CMD",
        help_heading = "Command"
    )]
    pub command: Vec<std::ffi::OsString>,
}

/// `watcher show FILE`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// An NDJSON capture written by `watch --json-output` or `record`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub secrets: SecretArgs,
}

/// `watcher stat [redis|http|mysql|FILE]`
#[derive(Debug, Args)]
pub struct StatArgs {
    /// `redis`, `http` or `mysql` to capture live (all when omitted), or an NDJSON file to read.
    #[arg(value_name = "redis|http|mysql|FILE")]
    pub source: Option<PathBuf>,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// What to group records by: command, endpoint (or statement: SQL with its literals as ?),
    /// status, connection, remote, process, container or cgroup.
    #[arg(
        long,
        value_name = "KEY",
        default_value = "command",
        help_heading = "Statistics"
    )]
    pub group_by: String,
    /// Order of the groups: count, errors, p50, p90, p99, max, bytes or key.
    #[arg(
        long,
        value_name = "COLUMN",
        default_value = "count",
        help_heading = "Statistics"
    )]
    pub sort: String,
    /// Print at most this many groups.
    #[arg(long, value_name = "N", help_heading = "Statistics")]
    pub top: Option<usize>,
    /// Print one JSON document instead of a table.
    #[arg(long, help_heading = "Statistics")]
    pub json: bool,
    /// Live: stop after this long, e.g. 30s (otherwise at Ctrl-C).
    #[arg(long, value_name = "DURATION", help_heading = "Statistics")]
    pub duration: Option<String>,
    /// Live: stop after this many records.
    #[arg(long, value_name = "N", help_heading = "Statistics")]
    pub count: Option<u64>,
}

/// `--syscall-hooks`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HooksArg {
    /// Raw `sys_exit` where it can be attached, otherwise the syscall tracepoints.
    Auto,
    /// The raw `sys_exit` tracepoint only.
    Raw,
    /// The syscall tracepoints only.
    Tracepoints,
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
