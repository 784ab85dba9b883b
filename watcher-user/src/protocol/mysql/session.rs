//! One MySQL connection: the connection phase (greeting, login, auth round trips; a record for the
//! login itself, `CONNECT`), then commands paired with their answers, prepared statements remembered
//! so their executions show SQL and decoded parameters, and the compressed protocol switched on where
//! the login agreed it.
//!
//! The client speaks one command at a time, but the queue of pending commands follows the rules shared
//! by every request/response protocol (`protocol::pairing`), so clients that pipeline
//! (`COM_STMT_PREPARE` then `COM_STMT_EXECUTE` of statement -1, as MariaDB Connector/C does) pair
//! correctly. A command packet always has sequence id 0; client packets with another id continue the
//! current exchange (auth data, a `LOCAL INFILE` file) and are counted, never decoded.
//!
//! A connection met in the middle (the watcher started after it) is decoded from the first command
//! packet that starts a syscall's bytes (a compressed one too: the compressed protocol is then switched on
//! for both directions); what its handshake said is then unknown. An `SSLRequest` means
//! TLS follows: the connection is counted as encrypted and not decoded further.
//!
//! Memory is bounded whatever either side sends: at most [`MAX_PENDING`] commands wait, at most
//! [`MAX_STATEMENTS`] prepared statements are remembered per connection, and every payload, row and
//! value is kept to the capture size.
//!
//! Pure: no I/O; owned by the one shard thread that owns the connection.

use std::{collections::HashMap, sync::Arc};

use super::{
    binary,
    command::Command,
    exchange::{
        Column, ConnectionInfo, MysqlExchange, MysqlResponse, Outcome, Param, CLIENT_COMPRESS,
    },
    handshake::{self, Answer, Greeting, CLIENT_DEPRECATE_EOF, CLIENT_QUERY_ATTRIBUTES},
    packet::{self, Control, Fed, Packet, Stream},
    response::{Expect, Progress, ResponseReader},
    wire::{self, Reader},
};
use crate::protocol::{
    common::{Blob, BlobData, Flow, SessionStats},
    pairing::{Pairing, PendingRequest},
    plugin::{Chunk, Finish, Session},
};

/// A finished MySQL exchange with its timing.
pub type Paired = crate::protocol::common::Paired<MysqlExchange>;

/// Most commands waiting for answers on one connection.
pub const MAX_PENDING: usize = 1024;

/// Most prepared statements remembered per connection (servers allow 16 382 by default, across all
/// connections).
pub const MAX_STATEMENTS: usize = 4096;

/// Payload bytes kept per packet at least, whatever the capture size: enough for every packet that is
/// not a value (definitions, OK, ERR, a handshake).
const MIN_PACKET_KEEP: usize = 16 * 1024;

/// `COM_STMT_EXECUTE` flag: the parameter count is sent (query attributes).
const PARAMETER_COUNT_AVAILABLE: u8 = 0x08;

/// The statement id MariaDB's clients use for "the statement prepared just before".
const LAST_PREPARED: u32 = u32::MAX;

/// Bytes of a packet's header.
const HEADER: u64 = 4;

/// A prepared statement, as far as its preparation was seen.
#[derive(Debug)]
struct Statement {
    sql: Option<Blob>,
    params: u16,
    columns: Arc<[Column]>,
    /// Parameter types of the last execution (sent only when they change).
    types: Vec<(u8, bool)>,
    /// Parameters sent with `COM_STMT_SEND_LONG_DATA` since the last execution, and their bytes.
    long_data: Vec<(u16, u64)>,
}

#[derive(Debug)]
struct Pending {
    exchange: MysqlExchange,
    start_ns: u64,
    end_ns: u64,
    request_bytes: u64,
    response_bytes: u64,
    truncated: bool,
    reader: ResponseReader,
}

impl PendingRequest for Pending {
    fn start_ns(&self) -> u64 {
        self.start_ns
    }
}

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server's greeting.
    Greeting,
    /// Waiting for the client's login.
    Login,
    /// Commands (the login's auth round trips are the first exchange's answer).
    Command,
    /// TLS follows: nothing more is decoded.
    Encrypted,
    /// A replica is receiving the binary log: the server's packets are events, not answers.
    Binlog,
}

/// Everything but the two byte streams and the queue.
#[derive(Debug)]
struct Conversation {
    phase: Phase,
    keep: usize,
    greeting: Option<Greeting>,
    info: Option<Arc<ConnectionInfo>>,
    statements: HashMap<u32, Statement, foldhash::fast::RandomState>,
    last_prepared: Option<u32>,
    /// A prepared statement's answer may still have an EOF to come (see `ResponseReader`).
    trailing_eof: bool,
    /// The login agreed compression: the client's next bytes are compressed.
    compress_requests: bool,
    /// Monotonic ns of the last bytes seen (gaps carry no time).
    last_ns: u64,
}

/// Decoding and pairing state of one MySQL connection.
#[derive(Debug)]
pub struct MysqlSession {
    pairing: Pairing<Stream, Pending>,
    conversation: Conversation,
}

impl Session for MysqlSession {
    type Exchange = MysqlExchange;

    fn new(keep_bytes: usize, in_sync: bool) -> Self {
        let packet_keep = keep_bytes.max(MIN_PACKET_KEEP);
        Self {
            pairing: Pairing::new(|flow| Stream::new(flow, packet_keep, in_sync)),
            conversation: Conversation {
                phase: if in_sync {
                    Phase::Greeting
                } else {
                    Phase::Command
                },
                keep: keep_bytes,
                greeting: None,
                info: None,
                statements: HashMap::default(),
                last_prepared: None,
                trailing_eof: false,
                compress_requests: false,
                last_ns: 0,
            },
        }
    }

    fn on_data(&mut self, chunk: Chunk<'_>, out: &mut impl Finish<MysqlExchange>) {
        let c = &mut self.conversation;
        c.last_ns = chunk.ts_ns;
        if matches!(c.phase, Phase::Encrypted)
            || (c.phase == Phase::Binlog && chunk.flow == Flow::Response)
        {
            return;
        }
        if c.phase == Phase::Command
            && c.info.is_none()
            && chunk.flow == Flow::Request
            && chunk.call_start
            && !self.pairing.requests.in_sync()
            && !self.pairing.requests.is_compressed()
            && packet::opens_compressed_command(chunk.data)
        {
            // Met in the middle, after a login that agreed compression.
            self.pairing.requests.compress();
            self.pairing.responses.compress();
        }
        self.pairing.decoder_for(chunk);
        self.with_stream(chunk.flow, out, |stream, handle| {
            stream.feed(chunk.data, chunk.ts_ns, handle)
        });
    }

    fn on_gap(&mut self, flow: Flow, len: u64, out: &mut impl Finish<MysqlExchange>) {
        let c = &mut self.conversation;
        if c.phase == Phase::Encrypted {
            return;
        }
        let ts = c.last_ns;
        self.with_stream(flow, out, |stream, handle| stream.gap(len, ts, handle));
    }

    fn on_close(&mut self, out: &mut impl Finish<MysqlExchange>) {
        for p in self.pairing.pending.drain(..) {
            out.push(paired(p, false));
        }
    }

    fn stats(&self) -> SessionStats {
        SessionStats {
            encrypted: u64::from(self.conversation.phase == Phase::Encrypted),
            ..self.pairing.stats
        }
    }
}

impl MysqlSession {
    /// Runs `step` (feeding bytes or a gap) on `flow`'s stream, with the conversation's handler of that
    /// direction's packets, then applies what followed.
    fn with_stream(
        &mut self,
        flow: Flow,
        out: &mut impl Finish<MysqlExchange>,
        step: impl FnOnce(&mut Stream, &mut dyn FnMut(Packet<'_>) -> Control) -> Fed,
    ) {
        let c = &mut self.conversation;
        let Pairing {
            requests,
            responses,
            pending,
            stats,
        } = &mut self.pairing;
        let fed = match flow {
            Flow::Request => step(requests, &mut |p| c.on_request(&p, pending, out)),
            Flow::Response => step(responses, &mut |p| c.on_response(&p, pending, stats, out)),
        };
        self.after(fed);
    }

    /// After bytes were fed: compression the login switched on, and the loss rules.
    fn after(&mut self, fed: Fed) {
        if std::mem::take(&mut self.conversation.compress_requests) {
            self.pairing.requests.compress();
        }
        if fed == Fed::LostSync {
            self.pairing.lose_sync();
            self.conversation.trailing_eof = false;
        }
    }

    /// Whether the connection switched to TLS and is no longer decoded.
    pub fn is_encrypted(&self) -> bool {
        self.conversation.phase == Phase::Encrypted
    }
}

impl Conversation {
    fn on_request(
        &mut self,
        p: &Packet<'_>,
        pending: &mut std::collections::VecDeque<Pending>,
        out: &mut impl Finish<MysqlExchange>,
    ) -> Control {
        match self.phase {
            Phase::Greeting | Phase::Encrypted | Phase::Binlog => Control::Continue,
            Phase::Login => self.login(p, pending),
            Phase::Command if p.seq != 0 => {
                // Auth data or a file's contents: part of the exchange under way.
                if let Some(front) = pending.front_mut() {
                    front.request_bytes += p.len + HEADER;
                }
                Control::Continue
            }
            Phase::Command => self.command(p, pending, out),
        }
    }

    /// The client's answer to the greeting.
    fn login(
        &mut self,
        p: &Packet<'_>,
        pending: &mut std::collections::VecDeque<Pending>,
    ) -> Control {
        match handshake::answer(p.payload, p.len) {
            Some(Answer::Tls) => {
                self.phase = Phase::Encrypted;
                Control::Stop
            }
            Some(Answer::Login {
                capabilities,
                user,
                database,
            }) => {
                let greeting = self.greeting.take().unwrap_or_default();
                let info = handshake::connection(&greeting, capabilities, user, database);
                let mut exchange = MysqlExchange::new(Command::CONNECT);
                exchange.argument = Some(Blob::full(info.user.clone()));
                let info = Arc::new(info);
                exchange.connection = Some(Arc::clone(&info));
                self.info = Some(info);
                self.phase = Phase::Command;
                pending.push_back(Pending {
                    exchange,
                    start_ns: p.start_ns,
                    end_ns: p.end_ns,
                    request_bytes: p.len + HEADER,
                    response_bytes: 0,
                    truncated: false,
                    reader: ResponseReader::new(Command::CONNECT, Expect::default(), 0),
                });
                Control::Continue
            }
            None => {
                self.phase = Phase::Command;
                Control::LoseSync
            }
        }
    }

    fn expect(&self) -> Expect {
        Expect {
            binary_columns: None,
            deprecate_eof: self
                .info
                .as_ref()
                .map(|i| i.capabilities & CLIENT_DEPRECATE_EOF != 0),
        }
    }

    fn capability(&self, flag: u64) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| i.capabilities & flag != 0)
    }

    /// A command packet.
    fn command(
        &mut self,
        p: &Packet<'_>,
        pending: &mut std::collections::VecDeque<Pending>,
        out: &mut impl Finish<MysqlExchange>,
    ) -> Control {
        let command = Command::from_code(p.first());
        if !command.is_known() || p.payload.is_empty() {
            return Control::LoseSync;
        }
        let mut exchange = MysqlExchange::new(command);
        exchange.connection.clone_from(&self.info);
        let mut expect = self.expect();
        let body = &p.payload[1..];
        let body_len = p.len - 1;
        let mut truncated = !p.complete;
        match command {
            Command::QUERY => {
                let mut r = Reader::new(body);
                if self.capability(CLIENT_QUERY_ATTRIBUTES) {
                    exchange.params = self.query_attributes(&mut r);
                }
                let sql_len = body_len - (body.len() - r.rest().len()) as u64;
                exchange.sql = Some(self.text_blob(r.rest(), sql_len));
            }
            Command::STMT_PREPARE => exchange.sql = Some(self.text_blob(body, body_len)),
            Command::STMT_EXECUTE => self.execute(body, &mut exchange, &mut expect),
            Command::STMT_CLOSE
            | Command::STMT_RESET
            | Command::STMT_SEND_LONG_DATA
            | Command::STMT_FETCH
            | Command::STMT_BULK_EXECUTE => {
                if let Some(id) = Reader::new(body).u32() {
                    let id = self.statement_id(id);
                    exchange.statement_id = Some(id);
                    let statement = if command == Command::STMT_CLOSE {
                        self.statements.remove(&id)
                    } else {
                        None
                    };
                    if let Some(s) = statement.as_ref().or_else(|| self.statements.get(&id)) {
                        exchange.sql.clone_from(&s.sql);
                        expect.binary_columns = Some(Arc::clone(&s.columns));
                    }
                    self.long_data(command, id, body, body_len);
                }
            }
            Command::INIT_DB | Command::FIELD_LIST | Command::CHANGE_USER => {
                let name = Reader::new(body).nul_terminated();
                exchange.argument = Some(self.text_blob(name, name.len() as u64));
            }
            Command::PROCESS_KILL => {
                if let Some(id) = Reader::new(body).u32() {
                    exchange.argument = Some(Blob::full(id.to_string()));
                }
            }
            _ => {}
        }
        truncated |= exchange.sql.as_ref().is_some_and(Blob::is_truncated);
        let mut entry = Pending {
            exchange,
            start_ns: p.start_ns,
            end_ns: p.end_ns,
            request_bytes: p.len + HEADER,
            response_bytes: 0,
            truncated,
            reader: ResponseReader::new(command, expect, self.keep),
        };
        if !command.is_answered() {
            entry.exchange.response = Some(MysqlResponse::default());
            out.push(paired(entry, true));
            return Control::Continue;
        }
        if pending.len() >= MAX_PENDING {
            return Control::LoseSync;
        }
        pending.push_back(entry);
        Control::Continue
    }

    /// What `COM_STMT_SEND_LONG_DATA` (statement id, parameter, data) and `COM_STMT_RESET` do to the
    /// statement's long data.
    fn long_data(&mut self, command: Command, id: u32, body: &[u8], body_len: u64) {
        let Some(statement) = self.statements.get_mut(&id) else {
            return;
        };
        match command {
            Command::STMT_RESET => statement.long_data.clear(),
            Command::STMT_SEND_LONG_DATA => {
                let Some(param) = body.get(4..6).map(|b| u16::from_le_bytes([b[0], b[1]])) else {
                    return;
                };
                if param >= statement.params {
                    return;
                }
                let bytes = body_len.saturating_sub(6);
                match statement.long_data.iter_mut().find(|(p, _)| *p == param) {
                    Some((_, total)) => *total = total.saturating_add(bytes),
                    None => statement.long_data.push((param, bytes)),
                }
            }
            _ => {}
        }
    }

    fn statement_id(&self, id: u32) -> u32 {
        match (id, self.last_prepared) {
            (LAST_PREPARED, Some(last)) => last,
            _ => id,
        }
    }

    /// `COM_STMT_EXECUTE`: the statement, its SQL and its bound parameters.
    fn execute(&mut self, body: &[u8], exchange: &mut MysqlExchange, expect: &mut Expect) {
        let mut r = Reader::new(body);
        let Some(id) = r.u32() else { return };
        let id = self.statement_id(id);
        exchange.statement_id = Some(id);
        let flags = r.u8().unwrap_or(0);
        r.u32(); // iteration count, always 1
        let keep = self.keep;
        let Some(statement) = self.statements.get_mut(&id) else {
            expect.binary_columns = Some(Arc::from([]));
            return;
        };
        exchange.sql.clone_from(&statement.sql);
        expect.binary_columns = Some(Arc::clone(&statement.columns));
        let mut count = usize::from(statement.params);
        if flags & PARAMETER_COUNT_AVAILABLE != 0 {
            count = r
                .lenenc()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
        }
        if count > 0 && u16::try_from(count).is_ok() {
            let long_data = &statement.long_data;
            if let Some(params) =
                binary::params(&mut r, count, &mut statement.types, long_data, keep)
            {
                exchange.params = params;
            }
        }
        // The server forgets long data once the statement has run.
        statement.long_data.clear();
    }

    /// MySQL 8's query attributes before a query's text: count, set count, then named binary values.
    fn query_attributes(&self, r: &mut Reader<'_>) -> Vec<Param> {
        let (Some(count), Some(_sets)) = (r.lenenc(), r.lenenc()) else {
            return Vec::new();
        };
        let Ok(count) = usize::try_from(count) else {
            return Vec::new();
        };
        if count == 0 || count > usize::from(u16::MAX) {
            return Vec::new();
        }
        let Some(bitmap) = r.bytes(count.div_ceil(8)) else {
            return Vec::new();
        };
        let bitmap = bitmap.to_vec();
        if r.u8() != Some(1) {
            return Vec::new();
        }
        let mut types = Vec::with_capacity(count);
        for _ in 0..count {
            let (Some(code), Some(flag), Some(_name)) = (r.u8(), r.u8(), r.lenenc_bytes()) else {
                return Vec::new();
            };
            types.push((code, flag & 0x80 != 0));
        }
        let mut params = Vec::with_capacity(count);
        for (i, (code, unsigned)) in types.into_iter().enumerate() {
            let value = if bitmap[i / 8] & (1 << (i % 8)) != 0 {
                None
            } else {
                match binary::value(r, code, unsigned, self.keep) {
                    Some(v) => Some(v),
                    None => return params,
                }
            };
            params.push(Param {
                type_code: code,
                unsigned,
                value,
            });
        }
        params
    }

    fn text_blob(&self, bytes: &[u8], len: u64) -> Blob {
        Blob::new(
            BlobData::from_slice(&bytes[..bytes.len().min(self.keep)]),
            len,
        )
    }

    /// A server packet.
    fn on_response(
        &mut self,
        p: &Packet<'_>,
        pending: &mut std::collections::VecDeque<Pending>,
        stats: &mut SessionStats,
        out: &mut impl Finish<MysqlExchange>,
    ) -> Control {
        match self.phase {
            Phase::Greeting => {
                if let Some(greeting) = handshake::greeting(p.payload) {
                    self.greeting = Some(greeting);
                    self.phase = Phase::Login;
                } else if p.first() == 0xff {
                    // Refused before any greeting ("Too many connections", a blocked host): the
                    // login's record, with the error.
                    out.push(refused(p));
                }
                return Control::Continue;
            }
            Phase::Login | Phase::Encrypted | Phase::Binlog => return Control::Continue,
            Phase::Command => {}
        }
        if std::mem::take(&mut self.trailing_eof) && p.first() == 0xfe && p.len == 5 {
            return Control::Continue;
        }
        let Some(front) = pending.front_mut() else {
            stats.orphan_replies += 1;
            return Control::LoseSync;
        };
        front.response_bytes += p.len + HEADER;
        front.end_ns = p.end_ns;
        front.truncated |= !p.complete;
        match front.reader.on_packet(p) {
            Progress::More => Control::Continue,
            Progress::Bad => Control::LoseSync,
            Progress::Done => {
                let Some(mut done) = pending.pop_front() else {
                    return Control::Continue;
                };
                self.trailing_eof = done.reader.trailing_eof;
                let reader = std::mem::replace(
                    &mut done.reader,
                    ResponseReader::new(Command::QUERY, Expect::default(), 0),
                );
                done.exchange.response = Some(MysqlResponse {
                    results: reader.into_results(),
                });
                let control = self.answered(&done.exchange);
                out.push(paired(done, true));
                control
            }
        }
    }

    /// What an answered exchange changes about the connection.
    fn answered(&mut self, exchange: &MysqlExchange) -> Control {
        let results = exchange.response.as_ref().map_or(&[][..], |r| &r.results);
        let ok = matches!(results.last(), Some(Outcome::Ok(_)));
        match exchange.command {
            Command::STMT_PREPARE => {
                if let Some(Outcome::Prepared(p)) = results.first() {
                    if self.statements.len() >= MAX_STATEMENTS {
                        let evicted = self.statements.keys().next().copied();
                        if let Some(id) = evicted {
                            self.statements.remove(&id);
                        }
                    }
                    self.statements.insert(
                        p.statement_id,
                        Statement {
                            sql: exchange.sql.clone(),
                            params: p.params,
                            columns: p.columns.clone().into(),
                            types: Vec::new(),
                            long_data: Vec::new(),
                        },
                    );
                    self.last_prepared = Some(p.statement_id);
                }
            }
            Command::CONNECT if ok && self.capability(CLIENT_COMPRESS) => {
                self.compress_requests = true;
                return Control::Compress;
            }
            Command::CHANGE_USER if ok => {
                if let (Some(info), Some(user)) = (&self.info, &exchange.argument) {
                    let mut info = ConnectionInfo::clone(info);
                    info.user = wire::text(&user.data);
                    self.info = Some(Arc::new(info));
                }
                // A new session: the server forgot every prepared statement.
                self.statements.clear();
            }
            Command::BINLOG_DUMP | Command::BINLOG_DUMP_GTID if exchange.error().is_none() => {
                self.phase = Phase::Binlog;
            }
            _ => {}
        }
        Control::Continue
    }
}

/// The record of a connection the server refused with `error` instead of a greeting.
fn refused(error: &Packet<'_>) -> Paired {
    let mut exchange = MysqlExchange::new(Command::CONNECT);
    exchange.response = Some(MysqlResponse {
        results: vec![Outcome::Error(super::response::err_packet(error.payload))],
    });
    Paired {
        exchange,
        start_ns: error.start_ns,
        end_ns: Some(error.end_ns),
        request_bytes: 0,
        response_bytes: error.len + HEADER,
        truncated: !error.is_whole(),
    }
}

fn paired(p: Pending, answered: bool) -> Paired {
    Paired {
        end_ns: answered.then_some(p.end_ns),
        truncated: p.truncated,
        exchange: p.exchange,
        start_ns: p.start_ns,
        request_bytes: p.request_bytes,
        response_bytes: p.response_bytes,
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
