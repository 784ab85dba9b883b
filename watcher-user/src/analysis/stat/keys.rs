//! What records are grouped by ([`GroupBy`], with each record's key) and how groups are ordered
//! ([`SortBy`]), by the names the command line and the JSON report use.

use std::{fmt, fmt::Write as _, str::FromStr};

use serde::Serialize;

use crate::record::{Record, Side};

/// Why a group-by or sort name was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not one of [`GroupBy::ALL`]'s names.
    #[error("unknown group-by `{name}`; expected one of command, endpoint (or statement), status, connection, remote, process, container, cgroup")]
    GroupBy {
        /// What was given.
        name: String,
    },
    /// Not one of [`SortBy::ALL`]'s names.
    #[error(
        "unknown sort `{name}`; expected one of count, errors, p50, p90, p99, max, bytes, key"
    )]
    SortBy {
        /// What was given.
        name: String,
    },
}

/// Another name for [`GroupBy::Endpoint`], the natural one for SQL.
const STATEMENT: &str = "statement";

/// What records are grouped by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// Redis command name (`(push)` for pushes); HTTP method.
    #[default]
    Command,
    /// What was asked, generalised, by each protocol's rule: HTTP method and path template
    /// (`GET /users/{id}`); Redis command name; MySQL statement with its literals as `?` (which is why
    /// `statement` names it too).
    Endpoint,
    /// How it was answered, by each protocol's rule: HTTP status code (`(no response)` when
    /// unanswered); Redis `ok`, the error code of an error reply
    /// (`WRONGTYPE`, `ERR`, ...) or `(no reply)`.
    Status,
    /// `pid/comm local → remote`.
    Connection,
    /// The peer: `ip:port` of a server the process is a client of; only the `ip` of a client the process
    /// serves, because client ports are ephemeral and would split one peer into many groups.
    Remote,
    /// `pid/comm`.
    Process,
    /// The container id, shortened as `docker ps` prints it; `(no container)` for the host's processes
    /// and `(unknown)` when the cgroup is not known.
    Container,
    /// The cgroup (v2) path.
    Cgroup,
}

impl GroupBy {
    /// Every group-by, in the order help text lists them.
    pub const ALL: [GroupBy; 8] = [
        GroupBy::Command,
        GroupBy::Endpoint,
        GroupBy::Status,
        GroupBy::Connection,
        GroupBy::Remote,
        GroupBy::Process,
        GroupBy::Container,
        GroupBy::Cgroup,
    ];

    /// Stable lower-case name, used on the command line, in JSON and as the key column's header.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Command => "command",
            GroupBy::Endpoint => "endpoint",
            GroupBy::Status => "status",
            GroupBy::Connection => "connection",
            GroupBy::Remote => "remote",
            GroupBy::Process => "process",
            GroupBy::Container => "container",
            GroupBy::Cgroup => "cgroup",
        }
    }

    /// Appends the record's group key to `out` (which is not cleared first). Writing into a caller's
    /// buffer lets the aggregator look groups up without allocating a key per record.
    pub fn write_key(self, record: &Record, out: &mut String) {
        let endpoint = &record.endpoint;
        // Writing to a `String` cannot fail; the results are ignored for that reason.
        match self {
            GroupBy::Command => out.push_str(record.command()),
            GroupBy::Endpoint => record.exchange.payload().write_route(out),
            GroupBy::Status => record.exchange.payload().write_status(out),
            GroupBy::Connection => {
                let _ = write!(
                    out,
                    "{}/{} {} → {}",
                    endpoint.pid,
                    endpoint.comm,
                    endpoint.local_text(),
                    endpoint.remote_text()
                );
            }
            GroupBy::Remote => match endpoint.side {
                Side::Client => out.push_str(endpoint.remote_text()),
                Side::Server => {
                    let _ = write!(out, "{}", endpoint.remote().ip());
                }
            },
            GroupBy::Process => {
                let _ = write!(out, "{}/{}", endpoint.pid, endpoint.comm);
            }
            GroupBy::Container => out.push_str(match endpoint.cgroup.as_deref() {
                None => "(unknown)",
                Some(cgroup) => cgroup.short_container().unwrap_or("(no container)"),
            }),
            GroupBy::Cgroup => out.push_str(match endpoint.cgroup.as_deref() {
                Some(cgroup) if !cgroup.path.is_empty() => &cgroup.path,
                Some(_) => "(removed)",
                None => "(unknown)",
            }),
        }
    }

    /// The record's group key as a new string.
    pub fn key(self, record: &Record) -> String {
        let mut key = String::new();
        self.write_key(record, &mut key);
        key
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GroupBy {
    type Err = ParseError;

    /// Parses a name from [`GroupBy::name`] (or `statement`, another name for `endpoint`), ignoring
    /// ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case(STATEMENT) {
            return Ok(GroupBy::Endpoint);
        }
        GroupBy::ALL
            .into_iter()
            .find(|g| g.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseError::GroupBy { name: s.to_owned() })
    }
}

/// How groups are ordered. Every order breaks ties by key, then protocol (both ascending), so output is
/// deterministic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    /// Most records first.
    #[default]
    Count,
    /// Highest error rate first.
    Errors,
    /// Slowest median first (groups without latencies last).
    P50,
    /// Slowest 90th percentile first.
    P90,
    /// Slowest 99th percentile first.
    P99,
    /// Slowest single record first.
    Max,
    /// Most request plus response bytes first.
    Bytes,
    /// Key, ascending.
    Key,
}

impl SortBy {
    /// Every sort order, in the order help text lists them.
    pub const ALL: [SortBy; 8] = [
        SortBy::Count,
        SortBy::Errors,
        SortBy::P50,
        SortBy::P90,
        SortBy::P99,
        SortBy::Max,
        SortBy::Bytes,
        SortBy::Key,
    ];

    /// Stable lower-case name, used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SortBy::Count => "count",
            SortBy::Errors => "errors",
            SortBy::P50 => "p50",
            SortBy::P90 => "p90",
            SortBy::P99 => "p99",
            SortBy::Max => "max",
            SortBy::Bytes => "bytes",
            SortBy::Key => "key",
        }
    }
}

impl fmt::Display for SortBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SortBy {
    type Err = ParseError;

    /// Parses a name from [`SortBy::name`], ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SortBy::ALL
            .into_iter()
            .find(|g| g.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseError::SortBy { name: s.to_owned() })
    }
}
