//! A shard: owns a set of connections and turns their events into records.
//!
//! Each connection tracks the stream position of both directions, so bytes the kernel did not deliver
//! (past `--max-call-bytes`, unreadable, or lost) reach the protocol session as gaps of exact length,
//! and each direction is mapped to request or response by the process's side. The shard thread is the
//! only owner of this state; it talks to the rest by channels.
//!
//! A TLS connection has two streams per direction: the socket's ciphertext and the TLS library's
//! plaintext (events flagged `flags::TLS`, with positions of their own). The first plaintext event
//! switches the connection to its plaintext for good: it gets a fresh session and positions, and its
//! records are marked TLS. The kernel stops sending the ciphertext then; what came before (a handshake
//! the probes did not see) was taken for TLS records and counted as encrypted, never decoded.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, Sender};
use watcher_common::{direction, flags, kind, side, EventHeader, SocketAddrs};

use super::{ConnEvent, ConnKey, EventBatch};
use crate::{
    cgroup,
    clock::WallClock,
    counters::Counters,
    handoff::{self, RecvTimeoutError, TrySendError},
    protocol::{
        detect::{Decoding, Session},
        plugin::Chunk,
        redact::Redaction,
        Exchange, Flow, Paired, SessionStats,
    },
    record::{filter::RecordFilter, Endpoint, Record, Side},
};

/// How long after the last hand-over a shard hands its records to the store writer, once it has
/// processed an event batch: every other drain while the ring is drained every 10 ms (busy traffic,
/// `capture::reader::DRAIN_INTERVAL`), every drain when they are further apart. Each hand-over wakes
/// the store writer and then the follower, and a wake-up costs tens of microseconds of CPU on a
/// virtual machine: handed over after every event batch, the records of one drain woke each of them
/// about one and a half times under `redis-benchmark -P 1`.
const HANDOVER_INTERVAL: Duration = Duration::from_millis(15);

/// How long records wait at most for a hand-over when no event batch comes: how much later than their
/// drain they may reach the store (the live table, the export). Longer than two busy drains, so that
/// in steady traffic the hand-over comes with a batch, not with a wake-up of its own.
const HANDOVER_LATEST: Duration = Duration::from_millis(40);

/// Records that are handed over at once, whatever the pace: a burst is not held back.
const HANDOVER_RECORDS: usize = 4096;

/// When a shard's records go to the store writer (see [`HANDOVER_INTERVAL`]).
#[derive(Debug)]
struct Handover {
    /// When the last went.
    last: Instant,
}

impl Handover {
    /// Whether `waiting` records go now, an event batch having been processed.
    fn due(&self, waiting: usize, now: Instant) -> bool {
        waiting > 0
            && (waiting >= HANDOVER_RECORDS
                || now.saturating_duration_since(self.last) >= HANDOVER_INTERVAL)
    }

    /// The latest that records waiting now go, whether or not a batch comes.
    fn deadline(&self) -> Instant {
        self.last + HANDOVER_LATEST
    }
}

/// What every shard shares (read-only) and where it sends records.
#[derive(Clone)]
pub struct ShardContext {
    /// Protocols to decode and bytes of each value kept.
    pub decoding: Decoding,
    /// Filters applied before records leave the shard.
    pub filter: RecordFilter,
    /// Which secrets are masked before records leave the shard.
    pub redaction: Arc<Redaction>,
    /// Kernel-to-wall-clock conversion.
    pub clock: WallClock,
    /// Ports listening when tracing began (side of pre-existing connections).
    pub listeners: Arc<HashSet<u16>>,
    /// Shared counters.
    pub counters: Arc<Counters>,
}

struct Connection {
    endpoint: Arc<Endpoint>,
    session: Session,
    next_pos: [u64; 2],
    reported: SessionStats,
    /// Whether the connection was seen from its start (its open event was not mid-stream).
    from_start: bool,
}

/// The queues of a running shard.
pub struct Queues {
    /// Event batches from the router.
    pub input: handoff::Receiver<EventBatch>,
    /// Record batches to the store writer.
    pub output: handoff::Sender<Vec<Arc<Record>>>,
    /// Emptied event batches, back to the router.
    pub spare_batches: Sender<EventBatch>,
    /// Emptied record batches from the store writer. Reusing them saves growing a fresh vector for
    /// every batch: under load that was a fifth of a shard's time, in `realloc` and page faults.
    pub spare_records: Receiver<Vec<Arc<Record>>>,
}

/// Connection state for the connections routed to one shard.
pub struct Shard {
    ctx: ShardContext,
    /// Looked up once per event. Keys are kernel-chosen (pid, fd), not remote input, so a fast
    /// non-cryptographic hasher is safe here.
    conns: HashMap<ConnKey, Connection, foldhash::fast::RandomState>,
    records: Vec<Arc<Record>>,
    tally: Tally,
    cgroups: cgroup::Names,
}

impl Shard {
    /// An empty shard.
    pub fn new(ctx: ShardContext) -> Self {
        Self {
            ctx,
            conns: HashMap::default(),
            records: Vec::new(),
            tally: Tally::default(),
            cgroups: cgroup::Names::default(),
        }
    }

    /// Runs until the input closes, handing each emptied event batch back. Records go to the store
    /// writer after an event batch once [`HANDOVER_INTERVAL`] has passed since they last went (or
    /// [`HANDOVER_RECORDS`] wait), at [`HANDOVER_LATEST`] when no batch comes, and all of them when the
    /// input closes; the next are collected in an emptied record batch the store writer handed back.
    pub fn run(mut self, queues: &Queues) {
        let mut handover = Handover {
            last: Instant::now(),
        };
        loop {
            let next = if self.records.is_empty() {
                queues
                    .input
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                // Records wait: the next batch is awaited only until they must go.
                let left = handover
                    .deadline()
                    .saturating_duration_since(Instant::now());
                queues.input.recv_timeout(left)
            };
            match next {
                Ok(mut batch) => {
                    self.process(&batch);
                    batch.clear();
                    let _ = queues.spare_batches.try_send(batch);
                    let now = Instant::now();
                    if handover.due(self.records.len(), now) {
                        self.hand_over(queues);
                        handover.last = now;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.hand_over(queues);
                    handover.last = Instant::now();
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.hand_over(queues);
                    return;
                }
            }
        }
    }

    /// Sends the records made so far to the store writer (counted as lost if its queue is full).
    fn hand_over(&mut self, queues: &Queues) {
        if self.records.is_empty() {
            return;
        }
        let next = queues.spare_records.try_recv().unwrap_or_default();
        let records = std::mem::replace(&mut self.records, next);
        if let Err(TrySendError::Full(lost) | TrySendError::Disconnected(lost)) =
            queues.output.try_send(records)
        {
            Counters::add(
                &self.ctx.counters.user.queue_full_records,
                lost.len() as u64,
            );
        }
    }

    /// Records finished so far.
    pub fn take_records(&mut self) -> Vec<Arc<Record>> {
        std::mem::take(&mut self.records)
    }

    /// Applies a batch of events.
    pub fn process(&mut self, batch: &EventBatch) {
        for event in &batch.events {
            let key = ConnKey::of(&event.header);
            match event.header.kind {
                kind::OPEN => self.open(key, event),
                kind::CLOSE => self.close(key),
                kind::DATA => self.data(key, &event.header, batch.payload_of(event)),
                _ => {}
            }
        }
        self.tally.publish(&self.ctx.counters);
    }

    fn open(&mut self, key: ConnKey, event: &ConnEvent) {
        // A second open for a known key means the kernel re-classified the fd (its close was missed or
        // its entry evicted): whatever the old state was waiting for will not come.
        self.close(key);
        let mut endpoint = endpoint_of(&event.header, &event.addrs, &self.ctx.listeners);
        // Id 0 means the kernel could not tell (it never is a cgroup's id).
        if event.cgroup_id != 0 {
            endpoint.cgroup = Some(self.cgroups.get(event.cgroup_id, event.header.tgid));
        }
        let in_sync = event.header.flags & flags::MID_STREAM == 0;
        self.conns.insert(key, new_connection(endpoint, in_sync));
    }

    fn close(&mut self, key: ConnKey) {
        if let Some(mut conn) = self.conns.remove(&key) {
            finish_session(&self.ctx, &mut conn, &mut self.records, &mut self.tally);
        }
    }

    fn data(&mut self, key: ConnKey, header: &EventHeader, payload: &[u8]) {
        let Self {
            ctx,
            conns,
            records,
            tally,
            ..
        } = self;
        // One hash lookup per event: this is the hot path.
        let conn = conns.entry(key).or_insert_with(|| {
            // The open event was lost: trace what we can, from the next message start.
            let endpoint = endpoint_of(header, &SocketAddrs::default(), &ctx.listeners);
            new_connection(endpoint, false)
        });
        if header.flags & flags::TLS != 0 {
            if !conn.endpoint.tls {
                to_plaintext(ctx, conn, header, records, tally);
                tally.tls_connections += 1;
            }
        } else if conn.endpoint.tls {
            // Ciphertext of a connection whose plaintext is known: sent only if it was already on its
            // way when the first plaintext was captured.
            return;
        }
        if feed(ctx, conn, header, payload, records, tally) {
            tally.unrecognised_connections += 1;
        }
        tally_stats(conn, tally);
    }
}

/// Counts a shard accumulates while it works through a batch, published to the shared [`Counters`]
/// once per batch: an atomic add per record would bounce the counters' cache line between shards.
#[derive(Default)]
struct Tally {
    lost_sync: u64,
    dropped_requests: u64,
    orphan_replies: u64,
    unrecognised_connections: u64,
    encrypted_connections: u64,
    tls_connections: u64,
    records_decoded: u64,
    records_filtered: u64,
}

impl Tally {
    fn publish(&mut self, counters: &Counters) {
        let tally = std::mem::take(self);
        let counters = &counters.user;
        for (counter, n) in [
            (&counters.lost_sync, tally.lost_sync),
            (&counters.dropped_requests, tally.dropped_requests),
            (&counters.orphan_replies, tally.orphan_replies),
            (
                &counters.unrecognised_connections,
                tally.unrecognised_connections,
            ),
            (&counters.encrypted_connections, tally.encrypted_connections),
            (&counters.tls_connections, tally.tls_connections),
            (&counters.records_decoded, tally.records_decoded),
            (&counters.records_filtered, tally.records_filtered),
        ] {
            Counters::add(counter, n);
        }
    }
}

/// Ends the connection's session (closed, or replaced by its TLS plaintext's): what it still holds
/// becomes records, and what it counted since the last look, its close included, is tallied.
fn finish_session(
    ctx: &ShardContext,
    conn: &mut Connection,
    records: &mut Vec<Arc<Record>>,
    tally: &mut Tally,
) {
    conn.session
        .on_close(&mut record_each(ctx, &conn.endpoint, records, tally));
    tally_stats(conn, tally);
}

/// Tallies what the connection's session counted since the last look.
fn tally_stats(conn: &mut Connection, tally: &mut Tally) {
    let stats = conn.session.stats();
    tally.lost_sync += stats.lost_sync - conn.reported.lost_sync;
    tally.dropped_requests += stats.dropped_requests - conn.reported.dropped_requests;
    tally.orphan_replies += stats.orphan_replies - conn.reported.orphan_replies;
    tally.encrypted_connections += stats.encrypted - conn.reported.encrypted;
    conn.reported = stats;
}

/// What the sessions of `endpoint`'s connection give each exchange they finish to: it becomes a
/// record there and then, kept in `records` if it passes the filters.
fn record_each<'a>(
    ctx: &'a ShardContext,
    endpoint: &'a Arc<Endpoint>,
    records: &'a mut Vec<Arc<Record>>,
    tally: &'a mut Tally,
) -> impl FnMut(Paired<Exchange>) + 'a {
    |paired| {
        // Boxed as it is made: the batch and the store writer then move a pointer, not the record (its
        // moves were a tenth of watcher's CPU under load). Filtered out afterwards, which is rare.
        let record = Arc::new(record(ctx, endpoint, paired));
        tally.records_decoded += 1;
        if ctx.filter.matches(&record) {
            records.push(record);
        } else {
            tally.records_filtered += 1;
        }
    }
}

// Inlined into `record_each`: returned from a call, each record was copied once more on its way into
// its box.
#[inline]
fn record(ctx: &ShardContext, endpoint: &Arc<Endpoint>, mut paired: Paired<Exchange>) -> Record {
    // Before the record exists, so no later stage ever sees a secret.
    let redacted = paired.exchange.redact(&ctx.redaction);
    Record {
        id: 0,
        endpoint: Arc::clone(endpoint),
        start_unix_ns: ctx.clock.to_unix_ns(paired.start_ns),
        end_unix_ns: paired.end_ns.map(|t| ctx.clock.to_unix_ns(t)),
        request_bytes: paired.request_bytes,
        response_bytes: paired.response_bytes,
        truncated: paired.truncated,
        redacted,
        exchange: paired.exchange,
    }
}

fn new_connection(endpoint: Endpoint, in_sync: bool) -> Connection {
    Connection {
        endpoint: Arc::new(endpoint),
        session: Session::new(in_sync),
        next_pos: [0; 2],
        reported: SessionStats::default(),
        from_start: in_sync,
    }
}

/// Switches a connection to its TLS plaintext, which `header` is the first event of. Whatever the
/// ciphertext session held is finished (as records of the connection before the switch); its counts
/// stay counted.
fn to_plaintext(
    ctx: &ShardContext,
    conn: &mut Connection,
    header: &EventHeader,
    records: &mut Vec<Arc<Record>>,
    tally: &mut Tally,
) {
    finish_session(ctx, conn, records, tally);
    // Plaintext positions count from the socket's first TLS call: from the start if the connection was.
    let from_start = conn.from_start && header.stream_pos == 0 && header.chunk_offset == 0;
    conn.session = Session::new(from_start);
    // The old session's figures were reported; the new one counts from zero.
    conn.reported = SessionStats::default();
    conn.next_pos = [0; 2];
    conn.endpoint = Arc::new(conn.endpoint.with_tls());
}

/// Feeds one data chunk to a connection, turning holes in the stream position into gaps. Returns true
/// the one time the connection is given up as unrecognised.
fn feed(
    ctx: &ShardContext,
    conn: &mut Connection,
    header: &EventHeader,
    payload: &[u8],
    records: &mut Vec<Arc<Record>>,
    tally: &mut Tally,
) -> bool {
    let dir = usize::from(header.direction & 1);
    let ingress = header.direction == direction::INGRESS;
    let flow = match (conn.endpoint.side, ingress) {
        (Side::Client, false) | (Side::Server, true) => Flow::Request,
        _ => Flow::Response,
    };
    let pos = header.stream_pos + u64::from(header.chunk_offset);
    let next = conn.next_pos[dir];
    let mut data = payload;
    let mut call_start = header.chunk_offset == 0;
    let mut out = record_each(ctx, &conn.endpoint, records, tally);
    if pos > next {
        conn.session.on_gap(flow, pos - next, &mut out);
    } else if pos < next {
        // Already seen (positions skewed by concurrent writers): skip the overlap.
        let skip = usize::try_from(next - pos)
            .unwrap_or(usize::MAX)
            .min(data.len());
        data = &data[skip..];
        call_start = false;
    }
    let mut unrecognised = false;
    if !data.is_empty() {
        unrecognised = conn.session.on_data(
            &ctx.decoding,
            Chunk {
                flow,
                data,
                ts_ns: header.ts_ns,
                call_start,
            },
            &mut out,
        );
    }
    let chunk_end = pos + payload.len() as u64;
    conn.next_pos[dir] = conn.next_pos[dir].max(chunk_end);
    if header.flags & flags::LAST_CHUNK != 0 {
        let call_end = header.stream_pos + header.call_bytes;
        if call_end > conn.next_pos[dir] {
            conn.session
                .on_gap(flow, call_end - conn.next_pos[dir], &mut out);
            conn.next_pos[dir] = call_end;
        }
    }
    unrecognised
}

fn endpoint_of(header: &EventHeader, addrs: &SocketAddrs, listeners: &HashSet<u16>) -> Endpoint {
    let side = match header.side {
        side::CLIENT => Side::Client,
        side::SERVER => Side::Server,
        _ if addrs.local_port != 0 && listeners.contains(&addrs.local_port) => Side::Server,
        _ => Side::Client,
    };
    let comm_len = header
        .comm
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(header.comm.len());
    let comm = if comm_len > 0 {
        String::from_utf8_lossy(&header.comm[..comm_len]).into_owned()
    } else {
        // Data events carry no name (see `EventHeader::comm`); this connection's open event was lost.
        process_name(header.tgid)
    };
    Endpoint::new(
        header.tgid,
        &comm,
        socket_addr(addrs.family, &addrs.local_addr, addrs.local_port),
        socket_addr(addrs.family, &addrs.remote_addr, addrs.remote_port),
        side,
    )
}

/// The name of a process from procfs, or an empty name if it has gone.
fn process_name(tgid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{tgid}/comm"))
        .map(|name| name.trim_end().to_owned())
        .unwrap_or_default()
}

fn socket_addr(family: u16, addr: &[u8; 16], port: u16) -> SocketAddr {
    const AF_INET6: u16 = 10;
    let ip = if family == AF_INET6 {
        let v6 = Ipv6Addr::from(*addr);
        // Show v4-mapped addresses the way people write them.
        v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
    } else {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    };
    SocketAddr::new(ip, port)
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
