//! The decoded MySQL exchange: a command with what it carried (SQL, a prepared statement's bound
//! parameters, a schema or user name), the results the server sent back, and what the connection's
//! handshake said (shared by every record of the connection).

use std::sync::Arc;

use super::command::Command;
use crate::protocol::common::{vec_bytes, Blob};

/// `CLIENT_COMPRESS`: the capability flag of the compressed protocol.
pub const CLIENT_COMPRESS: u64 = 1 << 5;

/// What the connection phase said, shared by the records of one connection. Never the auth data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The server's version string (`10.11.6-MariaDB-0+deb12u1`).
    pub server_version: String,
    /// The server's id for the connection (what `SHOW PROCESSLIST` and `KILL` use).
    pub connection_id: u32,
    /// The user the client logged in as.
    pub user: String,
    /// The database named at login, if any.
    pub database: Option<String>,
    /// Capability flags both ends agreed on (MariaDB's extended flags in the upper 32 bits).
    pub capabilities: u64,
}

impl ConnectionInfo {
    /// Whether the compressed protocol was agreed.
    pub fn compressed(&self) -> bool {
        self.capabilities & CLIENT_COMPRESS != 0
    }
}

/// A prepared statement's bound parameter, or a value of a result row's column type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// The MySQL type code (`MYSQL_TYPE_LONGLONG` is 8).
    pub type_code: u8,
    /// Whether the integer is unsigned.
    pub unsigned: bool,
    /// The value as text (numbers and dates formatted, strings as sent); `None` for NULL.
    pub value: Option<Blob>,
}

/// A column of a result set (or a prepared statement's parameter as the server describes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Its name (or alias).
    pub name: String,
    /// The MySQL type code.
    pub type_code: u8,
    /// Its flags (`UNSIGNED` is 0x20).
    pub flags: u16,
}

/// One row: a value per column, `None` for NULL.
pub type Row = Vec<Option<Blob>>;

/// An OK packet (or the EOF that ends a result set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OkInfo {
    /// Rows changed.
    pub affected_rows: u64,
    /// The `AUTO_INCREMENT` value the statement generated.
    pub last_insert_id: u64,
    /// Server status flags.
    pub status: u16,
    /// Warnings raised.
    pub warnings: u16,
    /// Human-readable information (`Rows matched: 1  Changed: 1  Warnings: 0`).
    pub info: String,
}

/// An ERR packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The error number (1146: table doesn't exist).
    pub code: u16,
    /// The SQLSTATE (`42S02`), when sent.
    pub sql_state: String,
    /// The message.
    pub message: String,
}

/// A result set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// Its columns.
    pub columns: Vec<Column>,
    /// Rows sent (all of them, not only those kept).
    pub rows: u64,
    /// The first rows, as many as the capture size allows.
    pub first_rows: Vec<Row>,
    /// Whether rows came in the binary protocol (a prepared statement's).
    pub binary: bool,
    /// What ended it.
    pub end: OkInfo,
}

/// The answer to `COM_STMT_PREPARE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The statement's id on this connection.
    pub statement_id: u32,
    /// Parameters it takes.
    pub params: u16,
    /// Columns its results will have.
    pub columns: Vec<Column>,
    /// Warnings raised.
    pub warnings: u16,
}

/// One of the things the server sent back for a command; a command with several statements or a stored
/// procedure gets several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done, without rows.
    Ok(OkInfo),
    /// Failed.
    Error(ErrorInfo),
    /// Rows.
    Rows(Box<ResultSet>),
    /// A statement was prepared.
    Prepared(Box<Prepared>),
    /// Column definitions alone (`COM_FIELD_LIST`).
    Fields(Vec<Column>),
    /// A line of text (`COM_STATISTICS`).
    Text(Blob),
    /// The server asked the client for a file (`LOAD DATA LOCAL INFILE`); what it did with it follows.
    Infile(String),
}

/// The server's answer to one command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MysqlResponse {
    /// What it sent, in order; empty for commands the server does not answer (`COM_STMT_CLOSE`).
    pub results: Vec<Outcome>,
}

impl MysqlResponse {
    /// The first error, if any.
    pub fn error(&self) -> Option<&ErrorInfo> {
        self.results.iter().find_map(|r| match r {
            Outcome::Error(e) => Some(e),
            _ => None,
        })
    }

    /// Rows sent over every result set.
    pub fn rows(&self) -> u64 {
        self.results
            .iter()
            .map(|r| match r {
                Outcome::Rows(set) => set.rows,
                _ => 0,
            })
            .sum()
    }

    /// Rows changed over every OK.
    pub fn affected_rows(&self) -> u64 {
        self.results
            .iter()
            .map(|r| match r {
                Outcome::Ok(ok) => ok.affected_rows,
                _ => 0,
            })
            .sum()
    }
}

/// A decoded MySQL exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MysqlExchange {
    /// The command.
    pub command: Command,
    /// The SQL: of `COM_QUERY` and `COM_STMT_PREPARE`, and the prepared statement's for
    /// `COM_STMT_EXECUTE` when its preparation was seen.
    pub sql: Option<Blob>,
    /// The prepared statement a `COM_STMT_*` command names.
    pub statement_id: Option<u32>,
    /// `COM_STMT_EXECUTE`'s bound parameters (and a query's attributes).
    pub params: Vec<Param>,
    /// The command's other argument as text: the schema of `COM_INIT_DB`, the table of
    /// `COM_FIELD_LIST`, the user of `COM_CHANGE_USER` and of a login.
    pub argument: Option<Blob>,
    /// The server's answer; `None` when none came before the connection closed.
    pub response: Option<MysqlResponse>,
    /// The connection's handshake, when it was seen.
    pub connection: Option<Arc<ConnectionInfo>>,
}

/// Heap bytes of columns.
fn columns_bytes(columns: &Vec<Column>) -> usize {
    vec_bytes(columns) + columns.iter().map(|c| c.name.capacity()).sum::<usize>()
}

impl Outcome {
    /// Heap bytes it holds.
    fn heap_bytes(&self) -> usize {
        match self {
            Outcome::Ok(ok) => ok.info.capacity(),
            Outcome::Error(e) => e.sql_state.capacity() + e.message.capacity(),
            Outcome::Rows(set) => {
                size_of::<ResultSet>()
                    + columns_bytes(&set.columns)
                    + vec_bytes(&set.first_rows)
                    + set
                        .first_rows
                        .iter()
                        .map(|row| {
                            vec_bytes(row)
                                + row.iter().flatten().map(Blob::heap_bytes).sum::<usize>()
                        })
                        .sum::<usize>()
                    + set.end.info.capacity()
            }
            Outcome::Prepared(p) => size_of::<Prepared>() + columns_bytes(&p.columns),
            Outcome::Fields(columns) => columns_bytes(columns),
            Outcome::Text(blob) => blob.heap_bytes(),
            Outcome::Infile(name) => name.capacity(),
        }
    }
}

impl MysqlExchange {
    /// Heap bytes it holds (what `--max-memory` counts); the connection's handshake is shared by its
    /// records and not counted.
    pub fn heap_bytes(&self) -> usize {
        self.sql.as_ref().map_or(0, Blob::heap_bytes)
            + vec_bytes(&self.params)
            + self
                .params
                .iter()
                .filter_map(|p| p.value.as_ref())
                .map(Blob::heap_bytes)
                .sum::<usize>()
            + self.argument.as_ref().map_or(0, Blob::heap_bytes)
            + self.response.as_ref().map_or(0, |r| {
                vec_bytes(&r.results) + r.results.iter().map(Outcome::heap_bytes).sum::<usize>()
            })
    }

    /// An exchange of `command` with nothing decoded yet.
    pub fn new(command: Command) -> Self {
        Self {
            command,
            sql: None,
            statement_id: None,
            params: Vec::new(),
            argument: None,
            response: None,
            connection: None,
        }
    }

    /// The first error the server sent back.
    pub fn error(&self) -> Option<&ErrorInfo> {
        self.response.as_ref().and_then(MysqlResponse::error)
    }
}
