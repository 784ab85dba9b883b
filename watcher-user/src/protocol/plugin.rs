//! The seam between protocols and the rest of watcher: what one protocol folder provides, as a small set of
//! traits.
//!
//! - [`Protocol`]: the static side — its name, how its messages start, its table columns, its
//!   `--fail-on` conditions, and its exchange, session and filter types.
//! - [`Session`]: decoding and pairing the two byte streams of one connection into exchanges.
//! - [`ExchangeFilter`]: its record filters and their command-line options.
//! - [`Redact`] (in `redact.rs`): which parts of its exchanges are secrets.
//! - [`Payload`], with [`PayloadJson`], [`PayloadView`] and [`PayloadTelemetry`]: what every later stage
//!   asks of one decoded exchange (its operation, whether it is an error, its `stat` keys; its JSON; its
//!   table cells, detail and report lines; its OpenTelemetry span attributes and metric labels). Object-safe, so the registry hands out `&dyn Payload` and no stage outside
//!   `protocol/` ever names a protocol's types.
//!
//! What the UI shows is described here in plain data ([`Cells`], [`DetailLine`], [`Tone`]); the TUI
//! decides colours and layout. Nothing here does I/O.

use std::fmt;

use compact_str::CompactString;

use super::{
    common::{Flow, Paired, SessionStats},
    json::read::{FieldResult, Json},
    redact::Redact,
};

/// One protocol: implemented by a unit type in `protocol/<name>/mod.rs` and listed once in
/// `protocol/registry.rs`.
pub trait Protocol: 'static {
    /// Lower-case name: the `watch` argument, the JSON `protocol` value and payload key, the UI's label.
    const NAME: &'static str;
    /// Its name in sentences (`Redis`, `HTTP`).
    const TITLE: &'static str;
    /// One line for `--help`.
    const ABOUT: &'static str;
    /// Headings of the table's three protocol columns.
    const COLUMNS: Columns;
    /// The flags of its filter options, for messages (`--command/--key-prefix`).
    const FILTER_FLAGS: &'static str;
    /// The names of the `--fail-on` conditions this protocol judges (`redis-error`).
    const FAIL_ON: &'static [&'static str];

    /// A decoded exchange (request and response, or a message without a request).
    type Exchange: Payload + Redact + Clone + fmt::Debug + PartialEq + Send + Sync + 'static;
    /// The decoding and pairing state of one connection.
    type Session: Session<Exchange = Self::Exchange> + fmt::Debug + Send;
    /// Its record filters.
    type Filter: ExchangeFilter<Self::Exchange>;

    /// Whether `data`, the start of a syscall's bytes flowing `flow`, opens one of this protocol's
    /// messages, and how sure that is. Decides which protocol a connection speaks.
    fn recognise(flow: Flow, data: &[u8]) -> Recognition;
}

/// How sure a protocol is that bytes open one of its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Recognition {
    /// They do not.
    No,
    /// They could, but would pass for another protocol's too (a Redis inline command is any line of
    /// words, an HTTP request line among them): taken only when no protocol is sure.
    Maybe,
    /// They do, by a form no other protocol shares.
    Yes,
}

/// Bytes of one direction of a connection, as a syscall (or a part of one) moved them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Which way they flowed.
    pub flow: Flow,
    /// The bytes.
    pub data: &'a [u8],
    /// When they moved (monotonic ns).
    pub ts_ns: u64,
    /// Whether they begin a syscall's bytes: the only place sync can be regained.
    pub call_start: bool,
}

impl<'a> Chunk<'a> {
    /// `data` flowing `flow` at `ts_ns`, beginning a syscall's bytes when `call_start`.
    pub const fn new(flow: Flow, data: &'a [u8], ts_ns: u64, call_start: bool) -> Self {
        Self {
            flow,
            data,
            ts_ns,
            call_start,
        }
    }
}

/// Where a session puts each exchange as it finishes it. The shard makes it a record there and then
/// ([`FinishWith`]): a buffer in between copied every exchange (a couple of hundred bytes) in and out
/// again, 2.4% of the Redis pipeline bench and 4% of the HTTP one. Tests and fuzz targets collect them
/// in a `Vec`.
pub trait Finish<X> {
    /// Takes one finished exchange.
    fn push(&mut self, paired: Paired<X>);
}

impl<X> Finish<X> for Vec<Paired<X>> {
    fn push(&mut self, paired: Paired<X>) {
        Vec::push(self, paired);
    }
}

/// A closure as a [`Finish`].
pub struct FinishWith<F>(pub F);

impl<X, F: FnMut(Paired<X>)> Finish<X> for FinishWith<F> {
    fn push(&mut self, paired: Paired<X>) {
        (self.0)(paired);
    }
}

/// Decoding and pairing of one connection. Owned by the one shard thread that owns the connection.
pub trait Session {
    /// What it produces.
    type Exchange;

    /// A session keeping at most `keep_bytes` of each value; `in_sync` is false for connections met in
    /// the middle of their life.
    fn new(keep_bytes: usize, in_sync: bool) -> Self
    where
        Self: Sized;

    /// Feeds one chunk of bytes.
    fn on_data(&mut self, chunk: Chunk<'_>, out: &mut impl Finish<Self::Exchange>);

    /// Accounts for `len` bytes of one direction that were not captured.
    fn on_gap(&mut self, flow: Flow, len: u64, out: &mut impl Finish<Self::Exchange>);

    /// The connection closed: what is still waiting is reported without a response.
    fn on_close(&mut self, out: &mut impl Finish<Self::Exchange>);

    /// Counters so far.
    fn stats(&self) -> SessionStats;
}

/// A protocol's record filters, built from its command-line options.
pub trait ExchangeFilter<X>: Sized + Clone + fmt::Debug + Default + Send + Sync + 'static {
    /// Its command-line options (flattened into every subcommand's filters).
    type Args: clap::Args + fmt::Debug;

    /// Validates the options.
    fn from_args(args: &Self::Args) -> Result<Self, FilterError>;

    /// Whether any filter is set (giving only one protocol's filters selects that protocol).
    fn is_set(&self) -> bool;

    /// Whether `exchange` passes.
    fn matches(&self, exchange: &X) -> bool;
}

/// A rejected filter option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {reason}")]
pub struct FilterError {
    /// The flag.
    pub flag: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// What every stage after decoding asks of one exchange: what it means (here), its JSON
/// ([`PayloadJson`], in the protocol's `json.rs`) and how people see it ([`PayloadView`], in its
/// `view.rs`).
pub trait Payload: PayloadJson + PayloadView + PayloadTelemetry {
    /// What was asked, as views and statistics name it: a Redis command (`(push)` for a push), an HTTP
    /// method.
    fn operation(&self) -> &str;

    /// Whether the response reports an error (this protocol's error rule).
    fn is_error(&self) -> bool;

    /// Appends the `stat --group-by endpoint` key: what was asked, generalised (`GET /users/{id}`).
    fn write_route(&self, out: &mut String);

    /// Appends the `stat --group-by status` key: how it was answered (`ok`, `WRONGTYPE`, `404`).
    fn write_status(&self, out: &mut String);

    /// Whether the text the table shows of it contains something `found_in` accepts (the UI's search).
    fn contains_text(&self, found_in: &mut dyn FnMut(&str) -> bool) -> bool;

    /// Whether it meets the `--fail-on` condition named `condition` (one of its protocol's
    /// [`Protocol::FAIL_ON`]).
    fn meets(&self, condition: &str) -> bool;

    /// Heap bytes it holds (its own size aside): what the store's `--max-memory` budget counts. Values
    /// are bounded by `--capture-bytes`, so counting the containers and the kept bytes is enough.
    fn heap_bytes(&self) -> usize;

    /// Rows it touched, for protocols that have rows (SQL: rows returned plus rows changed); `stat`
    /// sums them per group.
    fn rows(&self) -> Option<u64> {
        None
    }
}

/// An exchange's JSON: the protocol's section of `docs/json-schema.md`.
pub trait PayloadJson {
    /// Writes the payload as one JSON value.
    fn write_json(&self, out: &mut Vec<u8>);

    /// Reads the payload back from what [`PayloadJson::write_json`] wrote.
    fn read_json(value: Json<'_>) -> FieldResult<Self>
    where
        Self: Sized;
}

/// An exchange as people see it.
pub trait PayloadView {
    /// The table's subject and outcome cells.
    fn cells(&self) -> Cells;

    /// Appends the detail screen's lines about the exchange (after the common summary).
    fn detail(&self, lines: &mut Vec<DetailLine>);

    /// Appends one line for reports: what was asked and what came back.
    fn describe(&self, out: &mut String);
}

/// An exchange as OpenTelemetry's semantic conventions describe it (the protocol's `telemetry.rs`).
/// Attributes common to every protocol (addresses, process, container) are added by `telemetry`.
pub trait PayloadTelemetry {
    /// Which conventions apply.
    fn convention(&self) -> Convention;

    /// Appends the span's name (`GET`, `SELECT`, `GET /users/{id}`): low cardinality, by the conventions'
    /// rule for the protocol.
    fn span_name(&self, out: &mut String);

    /// Gives `out` the protocol's span attributes (`db.*`, `http.*`, `url.*`), secrets already masked
    /// and query text sanitised.
    fn span_attributes(&self, out: &mut dyn SpanAttributes);

    /// Whether the span's status is an error, seen from `server_side` or the client's: the conventions
    /// count an HTTP 4xx as an error of the client only.
    fn span_error(&self, server_side: bool) -> bool;

    /// Sets `out` to the labels of its duration metrics (few distinct values, whatever the traffic),
    /// in the strings `out` already has: the aggregator does this for every record, into the labels of
    /// the record before. So it starts with [`MetricLabels::reset`] and sets every label it uses.
    fn write_metric_labels(&self, out: &mut MetricLabels);

    /// The labels of its duration metrics, in strings of their own.
    fn metric_labels(&self) -> MetricLabels {
        let mut labels = MetricLabels::default();
        self.write_metric_labels(&mut labels);
        labels
    }
}

/// Which family of semantic conventions an exchange follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Convention {
    /// A database client call; `system` is `db.system.name` (`redis`, `mysql`).
    Database {
        /// `db.system.name`.
        system: &'static str,
    },
    /// An HTTP request.
    Http,
}

/// Where a protocol's span attributes go: the OTLP encoder writes each straight into its span, so a
/// value the exchange already holds is never copied into a string of its own.
pub trait SpanAttributes {
    /// A text attribute, `key` as the conventions name it (`db.operation.name`).
    fn text(&mut self, key: &'static str, value: &str);

    /// An integer attribute.
    fn int(&mut self, key: &'static str, value: i64);
}

/// One span attribute, as the protocols' tests collect them.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// Its name in the conventions.
    pub key: &'static str,
    /// Its value.
    pub value: AttributeValue,
}

/// An attribute's value.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
}

#[cfg(test)]
impl Attribute {
    /// A text attribute.
    pub fn text(key: &'static str, value: impl Into<String>) -> Self {
        Self {
            key,
            value: AttributeValue::Text(value.into()),
        }
    }

    /// An integer attribute.
    pub fn int(key: &'static str, value: i64) -> Self {
        Self {
            key,
            value: AttributeValue::Int(value),
        }
    }
}

#[cfg(test)]
impl SpanAttributes for Vec<Attribute> {
    fn text(&mut self, key: &'static str, value: &str) {
        self.push(Attribute::text(key, value));
    }

    fn int(&mut self, key: &'static str, value: i64) {
        self.push(Attribute::int(key, value));
    }
}

/// The labels of an exchange's duration metrics. Their values are short: held inline, so the
/// aggregator compares and copies them without the heap (and an empty one is never the dangling
/// pointer of an empty `String`, which this VM's `memcmp` takes ~80 ns to read: an AVX-512 masked load
/// from page zero).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricLabels {
    /// What was asked: a Redis command, an HTTP method, a SQL verb.
    pub operation: CompactString,
    /// HTTP: the path template (`/users/{id}`); empty for databases.
    pub route: CompactString,
    /// The precise answer (`200`, `WRONGTYPE`, `1146`); empty when it was not an error for databases.
    pub status: CompactString,
    /// Its class (`2xx`, `ok`, `error`, `none`): the Prometheus label.
    pub status_class: &'static str,
}

impl MetricLabels {
    /// Labels for `operation` with no route and no status yet (class `none`), in the strings these
    /// labels already have.
    pub fn reset(&mut self, operation: &str) {
        self.operation.clear();
        self.operation.push_str(operation);
        self.route.clear();
        self.status.clear();
        self.status_class = "none";
    }
}

/// Headings of the table's three protocol columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Columns {
    /// What was asked (`command`, `method`).
    pub operation: &'static str,
    /// [`Columns::operation`] short enough to share the column with other protocols' (`cmd`).
    pub operation_short: &'static str,
    /// What it was about (`key`, `host + target`).
    pub subject: &'static str,
    /// How it was answered (`reply`, `status`).
    pub outcome: &'static str,
}

/// How a cell or line should stand out; the UI picks the colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tone {
    /// Nothing special.
    #[default]
    Plain,
    /// Success (HTTP 2xx).
    Good,
    /// Informational (HTTP 1xx).
    Info,
    /// A redirection (HTTP 3xx).
    Redirect,
    /// The client's fault (HTTP 4xx).
    Warning,
    /// An error (a Redis error reply, HTTP 5xx).
    Error,
}

/// The table's protocol cells of one record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cells {
    /// What it was about: a Redis key, an HTTP host and target.
    pub subject: String,
    /// How it was answered: a reply summary, a status.
    pub outcome: String,
    /// How the outcome stands out.
    pub tone: Tone,
}

/// One line of the detail screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailLine {
    /// The text.
    pub text: String,
    /// Whether it heads a section.
    pub heading: bool,
}

impl DetailLine {
    /// A section heading.
    pub fn heading(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            heading: true,
        }
    }

    /// An ordinary line.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            heading: false,
        }
    }
}
