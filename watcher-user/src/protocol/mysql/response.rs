//! Reading the server's answer to one command, packet by packet, into [`Outcome`]s: OK, ERR, result
//! sets in the text and binary row formats (column definitions, rows counted, the first rows kept),
//! the answer to `COM_STMT_PREPARE`, `COM_FIELD_LIST`'s columns, `LOCAL INFILE` requests, the auth
//! exchange of a login or `COM_CHANGE_USER`, and several result sets for one command (multi-statements,
//! stored procedures), to the last packet of the last one.
//!
//! Both forms of ending a result set are read without being told which one the connection uses:
//! with `CLIENT_DEPRECATE_EOF` off, an EOF packet (0xFE and exactly 5 bytes) follows the column
//! definitions and another ends the rows; with it on, no EOF follows the definitions and an OK packet
//! with a 0xFE header (7 bytes or more) ends the rows. A row never starts with 0xFE unless it is at least
//! 16 MiB long.

use super::{
    command::Command,
    exchange::{Column, ErrorInfo, OkInfo, Outcome, Prepared, ResultSet, Row},
    packet::{Packet, MAX_PHYSICAL},
    wire::{self, Reader},
};
use crate::protocol::common::{Blob, BlobData};

/// Status flag: another result follows.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
/// Status flag: a cursor was opened; rows come with `COM_STMT_FETCH`.
const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x0040;

/// Rows kept of one result set at most (besides the byte budget): enough to see what a query returns;
/// every row is still counted. Keeping a hundred made a 100-row range query cost watcher 23 µs of its
/// own CPU, most of it spent keeping and exporting rows nobody reads (`cargo xtask bench --only mysql`).
pub const MAX_KEPT_ROWS: usize = 10;

/// Bytes of an EOF packet (header, warnings, status).
const EOF_LEN: u64 = 5;

/// ERR code of MariaDB's progress reports, which are not errors and do not end the answer.
const PROGRESS_REPORT: u16 = 0xffff;

/// What one packet did to the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More packets belong to it.
    More,
    /// It is complete.
    Done,
    /// The packet cannot be part of it.
    Bad,
}

/// What the reader expects next.
#[derive(Debug)]
enum State {
    /// The first packet of a result.
    First,
    /// Column definitions of a result set.
    Columns { left: u64, set: Box<ResultSet> },
    /// After the definitions: the classic EOF, a row or the end.
    AfterColumns(Box<ResultSet>),
    /// Rows until the end.
    Rows(Box<ResultSet>),
    /// Definitions of a prepared statement's parameters (read past), then its `columns`.
    PrepareParams {
        left: u16,
        columns: u16,
        prepared: Box<Prepared>,
    },
    /// Definitions of a prepared statement's columns.
    PrepareColumns { left: u16, prepared: Box<Prepared> },
    /// The classic EOF after a prepared statement's definitions.
    PrepareEof(Box<Prepared>),
    /// `COM_FIELD_LIST`'s definitions until an EOF.
    Fields(Vec<Column>),
    /// The client is sending a file; then OK or ERR.
    Infile,
    /// Auth round trips until OK or ERR.
    Auth,
}

/// How a command's answer is read.
#[derive(Debug, Default, Clone)]
pub struct Expect {
    /// Rows are in the binary protocol, with these columns when the definitions are not resent.
    pub binary_columns: Option<std::sync::Arc<[Column]>>,
    /// Whether `CLIENT_DEPRECATE_EOF` is known to be on (`Some(true)`), off, or unknown.
    pub deprecate_eof: Option<bool>,
}

/// The answer to one command being read.
#[derive(Debug)]
pub struct ResponseReader {
    command: Command,
    expect: Expect,
    state: State,
    results: Vec<Outcome>,
    /// Row bytes still to keep.
    budget: usize,
    /// An EOF may still follow although the answer is complete (a prepared statement's definitions when
    /// it is unknown whether the connection sends EOFs).
    pub trailing_eof: bool,
}

impl ResponseReader {
    /// A reader of the answer to `command`, keeping `keep` bytes of rows.
    pub fn new(command: Command, expect: Expect, keep: usize) -> Self {
        let state = match command {
            Command::CONNECT | Command::CHANGE_USER => State::Auth,
            Command::STMT_FETCH => State::Rows(Box::new(ResultSet {
                binary: true,
                columns: expect
                    .binary_columns
                    .as_deref()
                    .unwrap_or_default()
                    .to_vec(),
                ..ResultSet::default()
            })),
            _ => State::First,
        };
        Self {
            command,
            expect,
            state,
            results: Vec::new(),
            budget: keep,
            trailing_eof: false,
        }
    }

    /// What the server sent so far.
    pub fn into_results(self) -> Vec<Outcome> {
        self.results
    }

    /// Reads one packet of the answer.
    pub fn on_packet(&mut self, p: &Packet<'_>) -> Progress {
        let state = std::mem::replace(&mut self.state, State::First);
        let (state, progress) = self.step(state, p);
        self.state = state;
        progress
    }

    fn step(&mut self, state: State, p: &Packet<'_>) -> (State, Progress) {
        let first = p.first();
        match state {
            State::First => self.first(p),
            State::Auth => match first {
                0x00 => self.ok(p),
                0xff => self.error(p, State::Auth),
                _ => (State::Auth, Progress::More),
            },
            State::Infile => match first {
                0x00 => self.ok(p),
                0xff => self.error(p, State::Infile),
                _ => (State::Infile, Progress::Bad),
            },
            State::Columns { left, mut set } => {
                if first == 0xff {
                    return self.error(p, State::First);
                }
                let Some(column) = column(p.payload) else {
                    return (State::Columns { left, set }, Progress::Bad);
                };
                set.columns.push(column);
                if left > 1 {
                    (
                        State::Columns {
                            left: left - 1,
                            set,
                        },
                        Progress::More,
                    )
                } else {
                    (State::AfterColumns(set), Progress::More)
                }
            }
            State::AfterColumns(set) => {
                if first == 0xfe && p.len == EOF_LEN {
                    let end = eof(p.payload);
                    if end.status & SERVER_STATUS_CURSOR_EXISTS != 0 {
                        return self.end_rows(set, end);
                    }
                    return (State::Rows(set), Progress::More);
                }
                self.rows(set, p)
            }
            State::Rows(set) => self.rows(set, p),
            state @ (State::PrepareParams { .. }
            | State::PrepareColumns { .. }
            | State::PrepareEof(_)) => self.step_prepare(state, p),
            State::Fields(mut columns) => match first {
                0xfe if p.len < 9 => {
                    self.results.push(Outcome::Fields(columns));
                    (State::First, Progress::Done)
                }
                0xff => self.error(p, State::First),
                _ => match column(p.payload) {
                    Some(c) => {
                        columns.push(c);
                        (State::Fields(columns), Progress::More)
                    }
                    None => (State::Fields(columns), Progress::Bad),
                },
            },
        }
    }

    /// A packet of `COM_STMT_PREPARE`'s answer after its OK.
    fn step_prepare(&mut self, state: State, p: &Packet<'_>) -> (State, Progress) {
        let first = p.first();
        match state {
            State::PrepareParams {
                left,
                columns,
                prepared,
            } => {
                if left == 0 {
                    // The classic EOF after the parameters, or already a column.
                    if first == 0xfe && p.len < 9 {
                        return self.prepare_columns(prepared, columns, true);
                    }
                    return self.step(
                        State::PrepareColumns {
                            left: columns,
                            prepared,
                        },
                        p,
                    );
                }
                if column(p.payload).is_none() {
                    let state = State::PrepareParams {
                        left,
                        columns,
                        prepared,
                    };
                    return (state, Progress::Bad);
                }
                if left == 1 && columns == 0 {
                    return self.prepare_end(prepared);
                }
                (
                    State::PrepareParams {
                        left: left - 1,
                        columns,
                        prepared,
                    },
                    Progress::More,
                )
            }
            State::PrepareColumns { left, mut prepared } => {
                let Some(c) = column(p.payload) else {
                    return (State::PrepareColumns { left, prepared }, Progress::Bad);
                };
                prepared.columns.push(c);
                if left > 1 {
                    (
                        State::PrepareColumns {
                            left: left - 1,
                            prepared,
                        },
                        Progress::More,
                    )
                } else {
                    self.prepare_end(prepared)
                }
            }
            State::PrepareEof(prepared) => {
                if first == 0xfe && p.len < 9 {
                    self.results.push(Outcome::Prepared(prepared));
                    (State::First, Progress::Done)
                } else {
                    (State::PrepareEof(prepared), Progress::Bad)
                }
            }
            other => (other, Progress::Bad),
        }
    }

    /// The first packet of a result.
    fn first(&mut self, p: &Packet<'_>) -> (State, Progress) {
        let first = p.first();
        if p.payload.is_empty() {
            return (State::First, Progress::Bad);
        }
        if self.command == Command::STATISTICS {
            self.results.push(Outcome::Text(blob(p.payload, p.len)));
            return (State::First, Progress::Done);
        }
        match first {
            0x00 if self.command == Command::STMT_PREPARE => self.prepared(p),
            0x00 => self.ok(p),
            0xff => self.error(p, State::First),
            0xfe if p.len < 9 => self.ok(p),
            0xfb if self.command == Command::QUERY => {
                let name = wire::text(&p.payload[1..]);
                self.results.push(Outcome::Infile(name));
                (State::Infile, Progress::More)
            }
            _ if self.command == Command::FIELD_LIST => self.step(State::Fields(Vec::new()), p),
            _ if self.command.returns_rows() => self.column_count(p),
            _ => (State::First, Progress::Bad),
        }
    }

    /// A result set's column count, and with MariaDB's metadata caching, whether definitions follow.
    fn column_count(&mut self, p: &Packet<'_>) -> (State, Progress) {
        let mut r = Reader::new(p.payload);
        let Some(count) = r.lenenc().filter(|&n| n > 0 && n <= 4096) else {
            return (State::First, Progress::Bad);
        };
        let binary = self.expect.binary_columns.is_some();
        let set = Box::new(ResultSet {
            binary,
            columns: Vec::with_capacity(count as usize),
            ..ResultSet::default()
        });
        let metadata_follows = r.u8().is_none_or(|b| b != 0);
        if !metadata_follows {
            // The definitions are the ones the client cached; the classic EOF still follows.
            let mut set = set;
            set.columns = self
                .expect
                .binary_columns
                .as_deref()
                .unwrap_or_default()
                .to_vec();
            return (State::AfterColumns(set), Progress::More);
        }
        (State::Columns { left: count, set }, Progress::More)
    }

    /// A row, or what ends the rows.
    fn rows(&mut self, mut set: Box<ResultSet>, p: &Packet<'_>) -> (State, Progress) {
        match p.first() {
            0xfe if p.len < MAX_PHYSICAL as u64 => {
                let end = if p.len == EOF_LEN {
                    eof(p.payload)
                } else {
                    ok_packet(p.payload)
                };
                self.end_rows(set, end)
            }
            0xff => {
                if err_packet(p.payload).code == PROGRESS_REPORT {
                    return (State::Rows(set), Progress::More);
                }
                self.results.push(Outcome::Rows(set));
                self.error(p, State::First)
            }
            _ => {
                set.rows += 1;
                if self.budget > 0 && set.first_rows.len() < MAX_KEPT_ROWS {
                    let row = self.row(&set, p.payload);
                    set.first_rows.push(row);
                }
                (State::Rows(set), Progress::More)
            }
        }
    }

    fn row(&mut self, set: &ResultSet, payload: &[u8]) -> Row {
        let mut r = Reader::new(payload);
        let row = if set.binary {
            r.u8();
            let types: Vec<(u8, bool)> = set
                .columns
                .iter()
                .map(|c| (c.type_code, c.flags & super::binary::UNSIGNED_FLAG != 0))
                .collect();
            super::binary::row(&mut r, &types, self.budget)
        } else {
            let mut row = Row::with_capacity(set.columns.len());
            let mut left = self.budget;
            for _ in 0..set.columns.len() {
                let Some(value) = r.text_value() else { break };
                row.push(value.map(|(data, len)| {
                    let kept = &data[..data.len().min(left)];
                    left -= kept.len();
                    Blob::new(BlobData::from_slice(kept), len)
                }));
            }
            row
        };
        let used: usize = row.iter().flatten().map(|v| v.data.len()).sum();
        self.budget = self.budget.saturating_sub(used.max(1));
        row
    }

    fn end_rows(&mut self, mut set: Box<ResultSet>, end: OkInfo) -> (State, Progress) {
        let more = end.status & SERVER_MORE_RESULTS_EXISTS != 0;
        set.end = end;
        self.results.push(Outcome::Rows(set));
        (
            State::First,
            if more { Progress::More } else { Progress::Done },
        )
    }

    fn ok(&mut self, p: &Packet<'_>) -> (State, Progress) {
        let ok = if p.first() == 0xfe && p.len == EOF_LEN {
            eof(p.payload)
        } else {
            ok_packet(p.payload)
        };
        let more = ok.status & SERVER_MORE_RESULTS_EXISTS != 0 && self.command != Command::CONNECT;
        self.results.push(Outcome::Ok(ok));
        (
            State::First,
            if more { Progress::More } else { Progress::Done },
        )
    }

    fn error(&mut self, p: &Packet<'_>, state: State) -> (State, Progress) {
        let error = err_packet(p.payload);
        if error.code == PROGRESS_REPORT {
            return (state, Progress::More);
        }
        self.results.push(Outcome::Error(error));
        (State::First, Progress::Done)
    }

    /// `COM_STMT_PREPARE`'s OK: statement id, column and parameter counts, warnings.
    fn prepared(&mut self, p: &Packet<'_>) -> (State, Progress) {
        let mut r = Reader::new(&p.payload[1..]);
        let (Some(id), Some(columns), Some(params)) = (r.u32(), r.u16(), r.u16()) else {
            return (State::First, Progress::Bad);
        };
        r.u8();
        let warnings = r.u16().unwrap_or(0);
        let prepared = Box::new(Prepared {
            statement_id: id,
            params,
            columns: Vec::with_capacity(usize::from(columns)),
            warnings,
        });
        if params > 0 {
            return (
                State::PrepareParams {
                    left: params,
                    columns,
                    prepared,
                },
                Progress::More,
            );
        }
        self.prepare_columns(prepared, columns, false)
    }

    fn prepare_columns(
        &mut self,
        prepared: Box<Prepared>,
        left: u16,
        after_eof: bool,
    ) -> (State, Progress) {
        if left == 0 {
            if after_eof {
                self.results.push(Outcome::Prepared(prepared));
                return (State::First, Progress::Done);
            }
            return self.prepare_end(prepared);
        }
        (State::PrepareColumns { left, prepared }, Progress::More)
    }

    /// After a prepared statement's last definition: the classic EOF, unless the connection deprecates
    /// it; when that is unknown, the answer ends here and a trailing EOF is let through.
    fn prepare_end(&mut self, prepared: Box<Prepared>) -> (State, Progress) {
        let had_definitions = prepared.params > 0 || !prepared.columns.is_empty();
        match self.expect.deprecate_eof {
            Some(false) if had_definitions => (State::PrepareEof(prepared), Progress::More),
            _ => {
                self.trailing_eof = had_definitions && self.expect.deprecate_eof.is_none();
                self.results.push(Outcome::Prepared(prepared));
                (State::First, Progress::Done)
            }
        }
    }
}

fn blob(payload: &[u8], len: u64) -> Blob {
    Blob::new(BlobData::from_slice(payload), len)
}

/// An OK packet (0x00 or 0xFE header): affected rows, last insert id, status, warnings, info.
pub fn ok_packet(payload: &[u8]) -> OkInfo {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let mut ok = OkInfo {
        affected_rows: r.lenenc().unwrap_or(0),
        last_insert_id: r.lenenc().unwrap_or(0),
        status: r.u16().unwrap_or(0),
        warnings: r.u16().unwrap_or(0),
        info: String::new(),
    };
    let rest = r.rest();
    // With `CLIENT_SESSION_TRACK` the info is length-encoded (and session state may follow).
    let info = match Reader::new(rest).lenenc_bytes() {
        Some(text) if !rest.is_empty() && usize::from(rest[0]) < rest.len() && rest[0] < 0xfb => {
            text
        }
        _ => rest,
    };
    ok.info = wire::text(info);
    ok
}

/// An EOF packet: warnings and status.
fn eof(payload: &[u8]) -> OkInfo {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    OkInfo {
        warnings: r.u16().unwrap_or(0),
        status: r.u16().unwrap_or(0),
        ..OkInfo::default()
    }
}

/// An ERR packet: code, `#` and SQLSTATE (when sent), message.
pub fn err_packet(payload: &[u8]) -> ErrorInfo {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let code = r.u16().unwrap_or(0);
    let mut sql_state = String::new();
    if r.rest().first() == Some(&b'#') {
        r.skip(1);
        sql_state = r.bytes(5).map(wire::text).unwrap_or_default();
    }
    ErrorInfo {
        code,
        sql_state,
        message: wire::text(r.take_rest()),
    }
}

/// A column definition (`ColumnDefinition41`): name, type and flags; MariaDB's extended type info is
/// read past.
pub fn column(payload: &[u8]) -> Option<Column> {
    let mut r = Reader::new(payload);
    for _ in 0..4 {
        r.lenenc_bytes()?; // catalog, schema, table, original table
    }
    let name = wire::text(r.lenenc_bytes()?);
    r.lenenc_bytes()?; // original name
    let mut fixed = r.lenenc()?;
    if fixed != 0x0c || r.rest().len() < 12 {
        r.skip(usize::try_from(fixed).ok()?)?;
        fixed = r.lenenc()?;
    }
    if fixed != 0x0c {
        return None;
    }
    r.skip(2 + 4)?; // character set, length
    let type_code = r.u8()?;
    let flags = r.u16()?;
    Some(Column {
        name,
        type_code,
        flags,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A column definition of `name` and `type_code`.
    pub fn column_def(name: &str, type_code: u8) -> Vec<u8> {
        let mut p = Vec::new();
        for part in ["def", "shop", "t", "t", name, name] {
            p.push(part.len() as u8);
            p.extend(part.as_bytes());
        }
        p.push(0x0c);
        p.extend(33u16.to_le_bytes());
        p.extend(11u32.to_le_bytes());
        p.push(type_code);
        p.extend(0u16.to_le_bytes());
        p.extend([0, 0, 0]);
        p
    }

    fn packet(payload: &[u8]) -> Packet<'_> {
        Packet {
            seq: 1,
            payload,
            len: payload.len() as u64,
            complete: true,
            start_ns: 0,
            end_ns: 0,
        }
    }

    fn read(
        command: Command,
        expect: Expect,
        packets: &[Vec<u8>],
    ) -> (Vec<Progress>, Vec<Outcome>) {
        let mut reader = ResponseReader::new(command, expect, 1024);
        let progress = packets
            .iter()
            .map(|p| reader.on_packet(&packet(p)))
            .collect();
        (progress, reader.into_results())
    }

    #[test]
    fn a_result_set_ends_with_either_form_of_end() {
        use Progress::{Done, More};
        let classic = vec![
            vec![2],
            column_def("id", 3),
            column_def("name", 0xfd),
            vec![0xfe, 0, 0, 0x22, 0],
            b"\x011\x03ann".to_vec(),
            vec![0x01, b'2', 0xfb],
            vec![0xfe, 1, 0, 0x22, 0],
        ];
        let modern = vec![
            vec![2],
            column_def("id", 3),
            column_def("name", 0xfd),
            b"\x011\x03ann".to_vec(),
            vec![0x01, b'2', 0xfb],
            vec![0xfe, 0, 0, 0x22, 0, 1, 0],
        ];
        for (packets, progress) in [
            (classic, vec![More, More, More, More, More, More, Done]),
            (modern, vec![More, More, More, More, More, Done]),
        ] {
            let (got, results) = read(Command::QUERY, Expect::default(), &packets);
            assert_eq!(got, progress);
            let [Outcome::Rows(set)] = &results[..] else {
                panic!("{results:?}")
            };
            assert_eq!(set.rows, 2);
            assert_eq!(set.columns[1].name, "name");
            assert_eq!(
                set.first_rows[0][1].as_ref().unwrap().data.as_slice(),
                b"ann"
            );
            assert_eq!(set.first_rows[1][1], None);
        }
    }

    #[test]
    fn multi_statements_run_to_the_last_result_and_errors_end_them() {
        use Progress::{Done, More};
        let packets = vec![
            vec![0x00, 1, 5, 0x0a, 0, 0, 0],
            vec![1],
            column_def("x", 8),
            vec![0x01, b'7'],
            vec![0xfe, 0, 0, 0x0a, 0, 0, 0],
            b"\xff\x7a\x04#42S02Table 'shop.nope' doesn't exist".to_vec(),
        ];
        let (got, results) = read(Command::QUERY, Expect::default(), &packets);
        assert_eq!(got, vec![More, More, More, More, More, Done]);
        assert_eq!(results.len(), 3);
        assert!(
            matches!(&results[0], Outcome::Ok(ok) if ok.affected_rows == 1 && ok.last_insert_id == 5)
        );
        let Outcome::Error(e) = &results[2] else {
            panic!()
        };
        assert_eq!((e.code, e.sql_state.as_str()), (1146, "42S02"));
        assert_eq!(e.message, "Table 'shop.nope' doesn't exist");
    }

    #[test]
    fn prepare_answers_are_read_with_and_without_eofs() {
        use Progress::{Done, More};
        let ok = |params: u16, cols: u16| {
            let mut p = vec![0, 7, 0, 0, 0];
            p.extend(cols.to_le_bytes());
            p.extend(params.to_le_bytes());
            p.extend([0, 0, 0]);
            p
        };
        let eof = vec![0xfe, 0, 0, 2, 0];
        let classic = vec![
            ok(2, 1),
            column_def("?", 0xfd),
            column_def("?", 0xfd),
            eof.clone(),
            column_def("a", 3),
            eof.clone(),
        ];
        let (got, results) = read(
            Command::STMT_PREPARE,
            Expect {
                deprecate_eof: Some(false),
                ..Expect::default()
            },
            &classic,
        );
        assert_eq!(got, vec![More, More, More, More, More, Done]);
        let [Outcome::Prepared(p)] = &results[..] else {
            panic!()
        };
        assert_eq!((p.statement_id, p.params, p.columns.len()), (7, 2, 1));
        let modern = vec![
            ok(2, 1),
            column_def("?", 0xfd),
            column_def("?", 0xfd),
            column_def("a", 3),
        ];
        let (got, _) = read(
            Command::STMT_PREPARE,
            Expect {
                deprecate_eof: Some(true),
                ..Expect::default()
            },
            &modern,
        );
        assert_eq!(got, vec![More, More, More, Done]);
        // Unknown: the answer ends at the last definition and a trailing EOF may follow.
        let mut reader = ResponseReader::new(Command::STMT_PREPARE, Expect::default(), 64);
        for p in &classic[..5] {
            reader.on_packet(&packet(p));
        }
        assert!(reader.trailing_eof);
        assert_eq!(
            read(Command::STMT_PREPARE, Expect::default(), &[ok(0, 0)]).0,
            vec![Done]
        );
    }

    #[test]
    fn binary_rows_infile_statistics_and_auth() {
        use Progress::{Bad, Done, More};
        let binary = Expect {
            binary_columns: Some(Vec::new().into()),
            deprecate_eof: Some(true),
        };
        let packets = vec![
            vec![1],
            column_def("n", 8),
            [&[0u8, 0][..], &42u64.to_le_bytes()].concat(),
            vec![0xfe, 0, 0, 2, 0, 0, 0],
        ];
        let (got, results) = read(Command::STMT_EXECUTE, binary, &packets);
        assert_eq!(got, vec![More, More, More, Done]);
        let Outcome::Rows(set) = &results[0] else {
            panic!()
        };
        assert_eq!(
            set.first_rows[0][0].as_ref().unwrap().data.as_slice(),
            b"42"
        );
        let (got, results) = read(
            Command::QUERY,
            Expect::default(),
            &[b"\xfb/tmp/x.csv".to_vec(), vec![0, 3, 0, 2, 0, 0, 0]],
        );
        assert_eq!(got, vec![More, Done]);
        assert_eq!(results[0], Outcome::Infile("/tmp/x.csv".into()));
        let (got, _) = read(
            Command::STATISTICS,
            Expect::default(),
            &[b"Uptime: 5".to_vec()],
        );
        assert_eq!(got, vec![Done]);
        let (got, results) = read(
            Command::CHANGE_USER,
            Expect::default(),
            &[
                b"\xfemysql_native_password\0salt".to_vec(),
                vec![0, 0, 0, 2, 0, 0, 0],
            ],
        );
        assert_eq!(got, vec![More, Done]);
        assert!(matches!(results[..], [Outcome::Ok(_)]));
        assert_eq!(
            read(Command::from_code(0x0e), Expect::default(), &[vec![0x42]]).0,
            vec![Bad]
        );
    }
}
