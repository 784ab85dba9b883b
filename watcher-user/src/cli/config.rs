//! Validating raw arguments into the `Config` the rest of the program runs on. Every user mistake in the
//! arguments is caught here, before anything is loaded, with a message naming the flag. The only I/O is
//! looking things up: `--cgroup`/`--container` against the cgroup mount, the `OTEL_EXPORTER_OTLP_*`
//! variables in the environment. Files named here (the export) are opened by the mode that runs, before
//! it loads anything, and a failure there is reported the same way (`watcher: --json-output: ...`).

use std::{ffi::OsString, io::IsTerminal, net::SocketAddr, path::PathBuf, time::Duration};

use watcher_common::{
    side, KernelConfig, COMM_LEN, MAX_CALL_BYTES, MAX_CGROUP_FILTERS, MAX_PORT_FILTERS,
};

use super::args::{
    CaptureArgs, Cli, Command, FilterArgs, HooksArg, OutputArgs, RecordArgs, SecretArgs, ShowArgs,
    SideArg, StatArgs, TraceArgs, WatchArgs,
};
use crate::{
    analysis::{
        findings::Condition,
        stat::{GroupBy, SortBy},
    },
    capture::loader::SyscallHooks,
    cgroup,
    ndjson::file::Target,
    protocol::{plugin::FilterError, redact::Redaction, ProtocolId, ProtocolSet},
    record::{filter::RecordFilter, Side},
    telemetry::{otlp::OtlpConfig, TelemetryConfig},
};

/// A rejected argument.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag's value is out of range or malformed.
    #[error("{flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl From<FilterError> for ConfigError {
    fn from(e: FilterError) -> Self {
        invalid(e.flag, e.reason)
    }
}

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        reason: reason.into(),
    }
}

/// What the pipeline needs to run.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Kernel filters and limits (offsets are filled in at start).
    pub kernel: KernelConfig,
    /// `--pid` values.
    pub pids: Vec<u32>,
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    pub ring_bytes: u32,
    /// Bytes kept of each value or body (`--capture-bytes`).
    pub keep_bytes: usize,
    /// Shard threads.
    pub shards: usize,
    /// Store capacity.
    pub max_records: usize,
    /// Store budget in bytes (`--max-memory`).
    pub max_memory: usize,
    /// User-space record filters.
    pub filter: RecordFilter,
    /// Protocols decoded.
    pub protocols: ProtocolSet,
    /// Secrets masked.
    pub redaction: Redaction,
    /// The cgroups `--cgroup` and `--container` name (paths below the mount), for the start notes.
    pub cgroups: Vec<String>,
    /// Which kernel hooks see socket syscalls (`--syscall-hooks`).
    pub hooks: SyscallHooks,
    /// Whether the shard threads run in idle CPU time while they keep up (not `--no-yield`).
    pub yield_cpu: bool,
}

/// A validated `watch` invocation (also the capture part of `record` and live `stat`).
pub struct WatchConfig {
    /// Pipeline settings.
    pub pipeline: PipelineConfig,
    /// Run without the TUI.
    pub headless: bool,
    /// Where the export goes, if anywhere (opened when the mode starts).
    pub output: Option<Target>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// `--fail-on` conditions (headless runs only).
    pub fail_on: Vec<Condition>,
    /// Prometheus and OTLP export.
    pub telemetry: TelemetryConfig,
}

/// A validated `record` invocation.
pub struct RecordConfig {
    /// The capture: kernel filters follow the command's processes.
    pub watch: WatchConfig,
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// Run it as root even when watcher was started through `sudo`.
    pub as_root: bool,
}

/// A validated `show` invocation.
pub struct ShowConfig {
    /// The capture to open.
    pub file: PathBuf,
    /// Records shown.
    pub filter: RecordFilter,
    /// Secrets masked.
    pub redaction: Redaction,
}

/// Where `stat` takes its records from.
pub enum StatSource {
    /// A live capture.
    Live(Box<WatchConfig>),
    /// An NDJSON capture file, with the filters to apply to it.
    File {
        /// The file.
        path: PathBuf,
        /// Records counted.
        filter: Box<RecordFilter>,
        /// Secrets masked.
        redaction: Redaction,
    },
}

/// A validated `stat` invocation.
pub struct StatConfig {
    /// Records from.
    pub source: StatSource,
    /// Grouped by.
    pub group_by: GroupBy,
    /// Ordered by.
    pub sort: SortBy,
    /// At most this many groups printed.
    pub top: Option<usize>,
    /// One JSON document instead of a table.
    pub json: bool,
}

/// What to run.
pub enum Config {
    /// `watcher watch`.
    Watch(Box<WatchConfig>),
    /// `watcher record -- CMD`.
    Record(Box<RecordConfig>),
    /// `watcher show FILE`.
    Show(Box<ShowConfig>),
    /// `watcher stat [redis|http|FILE]`.
    Stat(Box<StatConfig>),
    /// `watcher bench-probes` (hidden).
    BenchProbes(Probes),
}

/// What `watcher bench-probes` attaches: a floor the benchmark measures our programs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probes {
    /// Programs that return at once, on these hooks: the price of the hooks alone.
    Empty(SyscallHooks),
    /// The least a capture must do for this process's reads and writes (the raw `sys_exit` hook).
    LeastCopy(u32),
}

impl Config {
    /// Validates parsed arguments.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        match cli.command {
            Command::Watch(args) => Ok(Config::Watch(Box::new(watch(
                &args,
                std::io::stdout().is_terminal(),
            )?))),
            Command::Record(args) => Ok(Config::Record(Box::new(record(*args)?))),
            Command::Show(args) => Ok(Config::Show(Box::new(show(*args)?))),
            Command::Stat(args) => Ok(Config::Stat(Box::new(stat(&args)?))),
            Command::BenchProbes { hooks, least_copy } => Ok(Config::BenchProbes(
                least_copy.map_or(Probes::Empty(syscall_hooks(hooks)), Probes::LeastCopy),
            )),
        }
    }
}

impl Config {
    /// Whether this run shows secrets unmasked (`--show-secrets`), which is said at start.
    pub fn shows_secrets(&self) -> bool {
        let redaction = match self {
            Config::Watch(watch) => &watch.pipeline.redaction,
            Config::Record(record) => &record.watch.pipeline.redaction,
            Config::Show(show) => &show.redaction,
            Config::Stat(stat) => match &stat.source {
                StatSource::Live(watch) => &watch.pipeline.redaction,
                StatSource::File { redaction, .. } => redaction,
            },
            Config::BenchProbes(_) => return false,
        };
        !redaction.is_enabled()
    }
}

/// `--duration`, when given.
fn stop_after(text: Option<&str>) -> Result<Option<Duration>, ConfigError> {
    text.map(|t| parse_duration("--duration", t)).transpose()
}

/// Parses `5ms`, `1.5s`, `30s`, `2m`.
pub fn parse_duration(flag: &'static str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        invalid(
            flag,
            format!("{text:?} is not a duration ({e}); try 5ms or 30s"),
        )
    })
}

/// `on_terminal`: whether stdout is a terminal (the UI needs one).
fn watch(args: &WatchArgs, on_terminal: bool) -> Result<WatchConfig, ConfigError> {
    if args.count == Some(0) {
        return Err(invalid("--count", "must be at least 1"));
    }
    let pipeline = capture(&args.capture, false)?;
    let output = args.output.json_output.clone().map(Target::from_arg);
    let headless = args.headless || output == Some(Target::Stdout) || !on_terminal;
    let fail_on = fail_on(&args.output)?;
    if !fail_on.is_empty() && !headless {
        return Err(invalid(
            "--fail-on",
            "judges headless runs only; add --headless (or --json-output)",
        ));
    }
    Ok(WatchConfig {
        pipeline,
        headless,
        output,
        duration: stop_after(args.duration.as_deref())?,
        count: args.count,
        fail_on,
        telemetry: telemetry(&args.output)?,
    })
}

/// `--metrics-listen` and the OTLP endpoint (`--otlp-endpoint` or the `OTEL_EXPORTER_OTLP_*` variables).
fn telemetry(args: &OutputArgs) -> Result<TelemetryConfig, ConfigError> {
    let metrics_listen = args
        .metrics_listen
        .as_deref()
        .map(|text| {
            let full = match text.strip_prefix(':') {
                Some(port) => format!("0.0.0.0:{port}"),
                None => text.to_owned(),
            };
            full.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "--metrics-listen",
                    format!("{text:?} is not HOST:PORT or :PORT (e.g. 127.0.0.1:9464)"),
                )
            })
        })
        .transpose()?;
    let otlp = OtlpConfig::from_sources(args.otlp_endpoint.as_deref(), |name| {
        std::env::var(name).ok()
    })
    .map_err(|e| invalid("--otlp-endpoint", e.to_string()))?;
    Ok(TelemetryConfig {
        metrics_listen,
        otlp,
    })
}

fn record(args: RecordArgs) -> Result<RecordConfig, ConfigError> {
    if args.capture.trace.comm.is_some() {
        return Err(invalid(
            "--comm",
            "record traces the command's own processes; add others with --pid or --port",
        ));
    }
    let pipeline = capture(&args.capture, true)?;
    let fail_on = fail_on(&args.output)?;
    let output = match &args.output.json_output {
        Some(path) => Target::from_arg(path.clone()),
        None => Target::Timestamped("watcher"),
    };
    Ok(RecordConfig {
        watch: WatchConfig {
            pipeline,
            headless: true,
            output: Some(output),
            duration: None,
            count: None,
            fail_on,
            telemetry: telemetry(&args.output)?,
        },
        command: args.command,
        as_root: args.as_root,
    })
}

fn show(args: ShowArgs) -> Result<ShowConfig, ConfigError> {
    let (filter, _) = filters(None, &args.filters)?;
    Ok(ShowConfig {
        file: args.file,
        filter,
        redaction: redaction(&args.secrets)?,
    })
}

fn stat(args: &StatArgs) -> Result<StatConfig, ConfigError> {
    let group_by = args
        .group_by
        .parse::<GroupBy>()
        .map_err(|e| invalid("--group-by", e.to_string()))?;
    let sort = args
        .sort
        .parse::<SortBy>()
        .map_err(|e| invalid("--sort", e.to_string()))?;
    if args.top == Some(0) {
        return Err(invalid("--top", "must be at least 1"));
    }
    // A protocol's name captures live; anything else is a file.
    let protocol = match &args.source {
        None => Ok(None),
        Some(source) => source
            .to_str()
            .and_then(ProtocolId::from_name)
            .map(Some)
            .ok_or_else(|| source.clone()),
    };
    let source = match protocol {
        Ok(protocol) => StatSource::Live(Box::new(stat_live(protocol, args)?)),
        Err(path) => {
            if args.duration.is_some() || args.count.is_some() {
                return Err(invalid(
                    "--duration/--count",
                    "apply to live captures only, not to a file",
                ));
            }
            let t = &args.trace;
            if !t.pids.is_empty()
                || t.comm.is_some()
                || !t.ports.is_empty()
                || !t.cgroups.is_empty()
                || !t.containers.is_empty()
            {
                return Err(invalid(
                    "--pid/--comm/--port/--cgroup/--container",
                    "trace live processes only; to select records of a file use --side, --command, --method, ...",
                ));
            }
            let (filter, _) = filters(None, &args.filters)?;
            StatSource::File {
                path,
                filter: Box::new(filter),
                redaction: redaction(&args.secrets)?,
            }
        }
    };
    Ok(StatConfig {
        source,
        group_by,
        sort,
        top: args.top,
        json: args.json,
    })
}

fn stat_live(protocol: Option<ProtocolId>, args: &StatArgs) -> Result<WatchConfig, ConfigError> {
    if args.count == Some(0) {
        return Err(invalid("--count", "must be at least 1"));
    }
    Ok(WatchConfig {
        pipeline: pipeline(protocol, &args.trace, &args.filters, &args.secrets, false)?,
        headless: true,
        output: None,
        duration: stop_after(args.duration.as_deref())?,
        count: args.count,
        fail_on: Vec::new(),
        telemetry: TelemetryConfig::default(),
    })
}

/// The pipeline of a `watch` or `record` capture.
fn capture(args: &CaptureArgs, record: bool) -> Result<PipelineConfig, ConfigError> {
    pipeline(
        args.protocol,
        &args.trace,
        &args.filters,
        &args.secrets,
        record,
    )
}

/// Kernel and record filters. `record` makes the pid filter follow the command's process tree, with
/// `--pid` and `--port` adding to it instead of narrowing it.
fn pipeline(
    protocol: Option<ProtocolId>,
    trace: &TraceArgs,
    filter_args: &FilterArgs,
    secrets: &SecretArgs,
    record: bool,
) -> Result<PipelineConfig, ConfigError> {
    let (mut kernel, cgroups) = kernel_config(trace)?;
    kernel.side_filter = match filter_args.side {
        SideArg::Client => side::CLIENT,
        SideArg::Server => side::SERVER,
        SideArg::Both => 0,
    };
    if record {
        kernel.pid_filter_on = 1;
        kernel.follow_children = 1;
        kernel.widen_by_port = u8::from(kernel.port_count > 0);
    }
    let (filter, protocols) = filters(protocol, filter_args)?;
    Ok(PipelineConfig {
        kernel,
        pids: trace.pids.clone(),
        ring_bytes: trace.ring_mib * 1024 * 1024,
        keep_bytes: trace.capture_bytes as usize,
        shards: shard_count(),
        max_records: trace.max_records,
        max_memory: trace.max_memory.saturating_mul(1024 * 1024),
        filter,
        protocols,
        redaction: redaction(secrets)?,
        cgroups,
        hooks: syscall_hooks(trace.syscall_hooks),
        yield_cpu: !trace.no_yield,
    })
}

fn syscall_hooks(arg: HooksArg) -> SyscallHooks {
    match arg {
        HooksArg::Auto => SyscallHooks::Auto,
        HooksArg::Raw => SyscallHooks::RawExit,
        HooksArg::Tracepoints => SyscallHooks::Tracepoints,
    }
}

/// The redaction policy: every rule, or none with `--show-secrets`; `--redact-header` names must be
/// header names (HTTP tokens).
fn redaction(args: &SecretArgs) -> Result<Redaction, ConfigError> {
    if args.show_secrets {
        return Ok(Redaction::off());
    }
    let is_token_byte = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if let Some(bad) = args
        .redact_header
        .iter()
        .find(|name| name.is_empty() || !name.bytes().all(is_token_byte))
    {
        return Err(invalid(
            "--redact-header",
            format!("{bad:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"),
        ));
    }
    Ok(Redaction::new(args.redact_header.clone()))
}

/// Largest `--capture-bytes`: what one value or body may hold in memory.
const MAX_KEEP_BYTES: u32 = 64 * 1024 * 1024;
/// Smallest `--max-call-bytes`: below a page, ordinary requests would be cut.
const MIN_CALL_BYTES: u32 = 4096;

/// The kernel's filters and limits, with the paths of the cgroups it admits.
fn kernel_config(args: &TraceArgs) -> Result<(KernelConfig, Vec<String>), ConfigError> {
    if args.capture_bytes == 0 || args.capture_bytes > MAX_KEEP_BYTES {
        return Err(invalid(
            "--capture-bytes",
            format!("must be between 1 and {MAX_KEEP_BYTES}"),
        ));
    }
    if !(MIN_CALL_BYTES..=MAX_CALL_BYTES).contains(&args.max_call_bytes) {
        return Err(invalid(
            "--max-call-bytes",
            format!("must be between {MIN_CALL_BYTES} and {MAX_CALL_BYTES}"),
        ));
    }
    if args.ports.len() > MAX_PORT_FILTERS {
        return Err(invalid(
            "--port",
            format!("at most {MAX_PORT_FILTERS} ports"),
        ));
    }
    if args.max_memory == 0 {
        return Err(invalid("--max-memory", "must be at least 1 (MiB)"));
    }
    if args.max_records == 0 {
        return Err(invalid("--max-records", "must be at least 1"));
    }
    if !args.ring_mib.is_power_of_two() || args.ring_mib > 1024 {
        return Err(invalid("--ring-mib", "must be a power of two up to 1024"));
    }
    if u64::from(args.max_call_bytes) * 4 > u64::from(args.ring_mib) * 1024 * 1024 {
        return Err(invalid(
            "--max-call-bytes",
            format!(
                "{} bytes do not fit four times in a ring of {} MiB; raise --ring-mib",
                args.max_call_bytes, args.ring_mib
            ),
        ));
    }
    let mut kernel = KernelConfig {
        max_call_bytes: args.max_call_bytes,
        pid_filter_on: u8::from(!args.pids.is_empty()),
        tls: u8::from(!args.no_tls),
        ..KernelConfig::default()
    };
    if let Some(comm) = &args.comm {
        if comm.is_empty() || comm.len() >= COMM_LEN {
            return Err(invalid(
                "--comm",
                format!(
                    "must be 1 to {} bytes (the kernel's comm length)",
                    COMM_LEN - 1
                ),
            ));
        }
        kernel.comm_filter_on = 1;
        kernel.comm[..comm.len()].copy_from_slice(comm.as_bytes());
    }
    for (slot, port) in kernel.ports.iter_mut().zip(&args.ports) {
        *slot = *port;
    }
    kernel.port_count = args.ports.len() as u8;
    let cgroups = cgroup::resolve_filter(&args.cgroups, &args.containers).map_err(|e| {
        let flag = match e {
            cgroup::FilterError::NoContainer(_)
            | cgroup::FilterError::Ambiguous { .. }
            | cgroup::FilterError::NotHex(_) => "--container",
            _ => "--cgroup",
        };
        invalid(flag, e.to_string())
    })?;
    if cgroups.len() > MAX_CGROUP_FILTERS {
        return Err(invalid(
            "--cgroup/--container",
            format!("at most {MAX_CGROUP_FILTERS} in all"),
        ));
    }
    for (slot, entry) in kernel.cgroups.iter_mut().zip(&cgroups) {
        slot.id = entry.id;
        slot.level = entry.level;
    }
    kernel.cgroup_count = cgroups.len() as u32;
    Ok((kernel, cgroups.into_iter().map(|c| c.path).collect()))
}

/// Shard threads: one per two CPUs, from one to four. The watched service and its clients run on the
/// same CPUs, and one shard keeps up with several hundred thousand records a second (`cargo xtask bench`,
/// capacity), so on a small machine a second shard only adds switching and cache misses.
fn shard_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4))
}

/// The record filter, and the protocols worth decoding for it.
fn filters(
    protocol: Option<ProtocolId>,
    args: &FilterArgs,
) -> Result<(RecordFilter, ProtocolSet), ConfigError> {
    let min_latency_ns = args
        .min_latency
        .as_deref()
        .map(|t| parse_duration("--min-latency", t))
        .transpose()?
        .map(|d| d.as_nanos() as u64);
    let protocol_filters = args.protocols.filters()?;
    let protocols = protocols(protocol, protocol_filters.set())?;
    let side = match args.side {
        SideArg::Client => Some(Side::Client),
        SideArg::Server => Some(Side::Server),
        SideArg::Both => None,
    };
    Ok((
        RecordFilter {
            min_latency_ns,
            side,
            errors_only: args.errors,
            protocols: protocol_filters,
        },
        protocols,
    ))
}

fn fail_on(args: &OutputArgs) -> Result<Vec<Condition>, ConfigError> {
    args.fail_on
        .iter()
        .flat_map(|t| t.split(','))
        .map(|t| Condition::parse(t).map_err(|e| invalid("--fail-on", e.to_string())))
        .collect()
}

/// The protocols decoded: the one named (whose filters alone may be given), or those whose filters
/// were given, or all.
fn protocols(
    chosen: Option<ProtocolId>,
    filtered: ProtocolSet,
) -> Result<ProtocolSet, ConfigError> {
    let Some(chosen) = chosen else {
        return Ok(if filtered.is_empty() {
            ProtocolSet::all()
        } else {
            filtered
        });
    };
    if let Some(other) = filtered.iter().find(|p| *p != chosen) {
        return Err(invalid(
            other.filter_flags(),
            format!(
                "{} filters do not apply to `watch {}`; use `watch {}` or `watch`",
                other.title(),
                chosen.name(),
                other.name()
            ),
        ));
    }
    Ok(ProtocolSet::only(chosen))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut full = vec!["watcher", "watch", "redis", "--headless"];
        full.extend_from_slice(args);
        Config::from_cli(Cli::try_parse_from(full).expect("clap accepts"))
    }

    #[test]
    fn filters_become_kernel_and_record_filters() {
        let Ok(Config::Watch(w)) = parse(&[
            "--port",
            "6379",
            "--side",
            "server",
            "--command",
            "get",
            "--min-latency",
            "5ms",
        ]) else {
            panic!("a watch configuration");
        };
        assert_eq!(w.pipeline.kernel.port_count, 1);
        assert_eq!(w.pipeline.kernel.ports[0], 6379);
        assert_eq!(w.pipeline.kernel.side_filter, side::SERVER);
        assert_eq!(
            w.pipeline.filter.protocols.redis.commands,
            vec!["GET".to_string()]
        );
        assert_eq!(w.pipeline.filter.min_latency_ns, Some(5_000_000));
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (args, flag) in [
            (&["--capture-bytes", "0"][..], "--capture-bytes"),
            (&["--max-call-bytes", "100"][..], "--max-call-bytes"),
            (
                &["--max-call-bytes", "16777216", "--ring-mib", "32"][..],
                "--max-call-bytes",
            ),
            (&["--min-latency", "fast"][..], "--min-latency"),
            (&["--comm", "a-name-longer-than-15"][..], "--comm"),
        ] {
            let err = parse(args).err().expect("rejected").to_string();
            assert!(err.starts_with(flag), "{err}");
        }
    }

    fn watch_config(args: &[&str]) -> Result<WatchConfig, ConfigError> {
        let mut full = vec!["watcher", "watch"];
        full.extend_from_slice(args);
        full.push("--headless");
        match Config::from_cli(Cli::try_parse_from(full).expect("clap accepts"))? {
            Config::Watch(w) => Ok(*w),
            _ => panic!("a watch configuration"),
        }
    }

    #[test]
    fn protocols_follow_the_subcommand_or_the_filters_given() {
        let protocols = |args: &[&str]| watch_config(args).map(|w| w.pipeline.protocols);
        assert_eq!(protocols(&[]).unwrap(), ProtocolSet::all());
        assert!(!protocols(&["redis"]).unwrap().contains(ProtocolId::Http));
        assert!(!protocols(&["http"]).unwrap().contains(ProtocolId::Redis));
        let only_http = protocols(&["--status", "5xx"]).unwrap();
        assert_eq!(only_http, ProtocolSet::only(ProtocolId::Http));
        for (args, flag) in [
            (&["redis", "--method", "GET"][..], "--method"),
            (&["http", "--command", "GET"][..], "--command"),
            (&["http", "--status", "6"][..], "--status"),
            (&["http", "--path-regex", "(unclosed"][..], "--path-regex"),
        ] {
            let err = watch_config(args).err().expect("rejected").to_string();
            assert!(err.contains(flag), "{err}");
        }
        let w = watch_config(&["http", "--method", "post", "--status", "200-299"]).unwrap();
        assert_eq!(w.pipeline.filter.protocols.http.methods, ["POST"]);
        assert_eq!(w.pipeline.filter.protocols.http.statuses, [(200, 299)]);
    }

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let mut full = vec!["watcher"];
        full.extend_from_slice(args);
        Config::from_cli(Cli::try_parse_from(full).expect("clap accepts"))
    }

    #[test]
    fn bench_probes_attach_empty_programs_or_the_least_copy() {
        let probes = |args: &[&str]| match config(args) {
            Ok(Config::BenchProbes(probes)) => Some(probes),
            _ => None,
        };
        assert_eq!(
            probes(&["bench-probes"]),
            Some(Probes::Empty(SyscallHooks::RawExit))
        );
        assert_eq!(
            probes(&["bench-probes", "--hooks", "tracepoints"]),
            Some(Probes::Empty(SyscallHooks::Tracepoints))
        );
        assert_eq!(
            probes(&["bench-probes", "--least-copy", "4242"]),
            Some(Probes::LeastCopy(4242))
        );
        // The least copy has its own hook: a choice of hooks beside it is a mistake.
        assert!(Cli::try_parse_from([
            "watcher",
            "bench-probes",
            "--least-copy",
            "1",
            "--hooks",
            "raw"
        ])
        .is_err());
    }

    #[test]
    fn secrets_are_masked_unless_shown_in_every_subcommand() {
        let masked = |args: &[&str]| {
            let config = config(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            !config.shows_secrets()
        };
        assert!(masked(&["watch", "--headless"]));
        assert!(masked(&["show", "f.ndjson"]));
        assert!(masked(&["stat", "f.ndjson"]));
        assert!(masked(&["stat", "redis"]));
        assert!(masked(&["record", "--json-output", "-", "--", "true"]));
        for args in [
            &["watch", "--headless", "--show-secrets"][..],
            &["show", "f.ndjson", "--show-secrets"],
            &["stat", "f.ndjson", "--show-secrets"],
            &[
                "record",
                "--show-secrets",
                "--json-output",
                "-",
                "--",
                "true",
            ],
        ] {
            assert!(!masked(args), "{args:?}");
        }
        let Ok(Config::Show(show)) = config(&["show", "f", "--redact-header", "X-Trace"]) else {
            panic!("a show configuration")
        };
        assert!(show.redaction.is_extra_header("x-trace"));
        let Err(e) = config(&["show", "f", "--redact-header", "a:b"]) else {
            panic!("not a header name")
        };
        assert!(e.to_string().starts_with("--redact-header"), "{e}");
    }

    #[test]
    fn record_follows_the_command_and_widens_by_pid_and_port() {
        let out = std::env::temp_dir().join(format!("watcher-cfg-{}.ndjson", std::process::id()));
        let out = out.to_str().unwrap();
        let Ok(Config::Record(r)) = config(&["record", "--json-output", out, "--", "make", "-j2"])
        else {
            panic!("a record configuration");
        };
        let k = r.watch.pipeline.kernel;
        assert_eq!(
            (k.pid_filter_on, k.follow_children, k.widen_by_port),
            (1, 1, 0)
        );
        assert_eq!(r.command, ["make", "-j2"]);
        assert!(r.watch.headless);
        let Ok(Config::Record(r)) = config(&[
            "record",
            "redis",
            "--port",
            "6379",
            "--fail-on",
            "redis-error,latency>5ms",
            "--json-output",
            out,
            "--",
            "true",
        ]) else {
            panic!("a record configuration");
        };
        assert_eq!(r.watch.pipeline.kernel.widen_by_port, 1);
        assert_eq!(
            r.watch.fail_on,
            [
                Condition::parse("redis-error").unwrap(),
                Condition::SlowerThan(5_000_000)
            ]
        );
        let _ = std::fs::remove_file(out);
        let err = config(&["record", "--comm", "x", "--", "true"])
            .err()
            .expect("rejected");
        assert!(err.to_string().starts_with("--comm"), "{err}");
        let err = config(&["record", "--fail-on", "sometimes", "--", "true"])
            .err()
            .expect("rejected");
        assert!(err.to_string().starts_with("--fail-on"), "{err}");
        assert!(
            Cli::try_parse_from(["watcher", "record"]).is_err(),
            "CMD is required"
        );
    }

    #[test]
    fn fail_on_needs_a_headless_watch() {
        let err = config(&["watch", "--fail-on", "lost"]);
        // Under `cargo test` stdout may not be a terminal, which makes the run headless by itself.
        if std::io::stdout().is_terminal() {
            assert!(err
                .err()
                .expect("rejected")
                .to_string()
                .starts_with("--fail-on"));
        }
        let Ok(Config::Watch(w)) = config(&["watch", "--headless", "--fail-on", "http-5xx"]) else {
            panic!("a watch configuration");
        };
        assert_eq!(w.fail_on, [Condition::parse("http-5xx").unwrap()]);
    }

    #[test]
    fn stat_reads_a_file_or_captures_live_by_protocol() {
        let Ok(Config::Stat(s)) =
            config(&["stat", "http", "--group-by", "endpoint", "--sort", "p99"])
        else {
            panic!("a stat configuration");
        };
        let StatSource::Live(w) = &s.source else {
            panic!("live");
        };
        assert_eq!(w.pipeline.protocols, ProtocolSet::only(ProtocolId::Http));
        assert_eq!((s.group_by, s.sort), (GroupBy::Endpoint, SortBy::P99));
        let Ok(Config::Stat(s)) = config(&["stat", "capture.ndjson", "--command", "get"]) else {
            panic!("a stat configuration");
        };
        let StatSource::File { path, filter, .. } = &s.source else {
            panic!("a file");
        };
        assert_eq!(path.to_str(), Some("capture.ndjson"));
        assert_eq!(filter.protocols.redis.commands, ["GET"]);
        for (args, flag) in [
            (&["stat", "f.ndjson", "--pid", "1"][..], "--pid"),
            (&["stat", "f.ndjson", "--duration", "1s"][..], "--duration"),
            (&["stat", "--group-by", "colour"][..], "--group-by"),
            (&["stat", "--sort", "size"][..], "--sort"),
            (&["stat", "--top", "0"][..], "--top"),
        ] {
            let err = config(args).err().expect("rejected").to_string();
            assert!(err.starts_with(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn show_takes_the_record_filters() {
        let Ok(Config::Show(s)) =
            config(&["show", "x.ndjson", "--status", "5xx", "--side", "server"])
        else {
            panic!("a show configuration");
        };
        assert_eq!(s.filter.protocols.http.statuses, [(500, 599)]);
        assert_eq!(s.filter.side, Some(Side::Server));
    }
}
