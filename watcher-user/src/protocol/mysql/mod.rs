//! MySQL and every server of its classic protocol (MariaDB, MatrixOne, TiDB): packet framing and the
//! compressed protocol (`packet`) over the wire's primitive types (`wire`), the connection phase
//! (`handshake`), command codes (`command`), answers (`response`), the binary protocol's values
//! (`binary`), pairing and prepared statements per connection (`session`), the decoded exchange
//! (`exchange`), SQL shapes for statistics and the table (`sql`), and what the rest of watcher sees of it:
//! JSON (`json`), its secrets (`redact`), record filters and their options (`filter`), table cells,
//! detail lines and report lines (`view`), span attributes and metric labels (`telemetry`).
//!
//! Pure: no I/O.

pub mod binary;
pub mod command;
pub mod exchange;
pub mod filter;
pub mod handshake;
pub mod json;
pub mod packet;
pub mod redact;
pub mod response;
pub mod session;
pub mod sql;
pub mod telemetry;
pub mod view;
pub mod wire;

pub use command::Command;
pub use exchange::{ConnectionInfo, MysqlExchange, MysqlResponse, Outcome};
pub use session::{MysqlSession, Paired};

use super::{
    common::Flow,
    plugin::{Columns, Payload, Protocol, Recognition},
};

/// The `--fail-on` condition met by an error answer.
const ERROR_CONDITION: &str = "mysql-error";

/// The MySQL protocol, as the registry lists it.
#[derive(Debug)]
pub struct Mysql;

impl Protocol for Mysql {
    const NAME: &'static str = "mysql";
    const TITLE: &'static str = "MySQL";
    const ABOUT: &'static str = "MySQL and its protocol's other servers (MariaDB, MatrixOne, TiDB)";
    const COLUMNS: Columns = Columns {
        operation: "command",
        operation_short: "cmd",
        subject: "statement",
        outcome: "result",
    };
    const FILTER_FLAGS: &'static str = "--sql-regex";
    const FAIL_ON: &'static [&'static str] = &[ERROR_CONDITION];

    type Exchange = MysqlExchange;
    type Session = MysqlSession;
    type Filter = filter::MysqlFilter;

    /// The server's greeting is sure. So is a whole command packet (sequence id 0, a known command,
    /// the length the header gives): a connection met in the middle is picked up at its next command.
    /// An error packet in the greeting's place (a refused connection) is plausible.
    fn recognise(flow: Flow, data: &[u8]) -> Recognition {
        match flow {
            Flow::Response => {
                let first_packet = data.len() > 5 && data[3] == 0 && packet_fits(data);
                if first_packet && handshake::greeting(&data[4..]).is_some() {
                    Recognition::Yes
                } else if first_packet
                    && data[4] == 0xff
                    && data.get(7..).is_some_and(super::text::is_text)
                {
                    // A server refusing the connection instead of greeting it: an error code (two bytes
                    // after the 0xff, so a packet too short to hold them is no error) and text.
                    Recognition::Maybe
                } else {
                    Recognition::No
                }
            }
            Flow::Request => {
                let is_command = data.len() > 4
                    && data[3] == 0
                    && packet_fits(data)
                    && Command::from_code(data[4]).is_known()
                    && (data[4] != Command::QUERY.0 || sql::looks_like_sql(&data[5..]));
                if is_command {
                    Recognition::Yes
                } else {
                    Recognition::No
                }
            }
        }
    }
}

/// Whether `data` holds exactly one whole packet, as its header says.
fn packet_fits(data: &[u8]) -> bool {
    let len = usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16;
    data.len() == 4 + len
}

impl Payload for MysqlExchange {
    /// A query's statement keyword (`SELECT`, `BEGIN`); otherwise the command, short (`EXECUTE`).
    fn operation(&self) -> &str {
        match (&self.sql, self.command) {
            (Some(sql), Command::QUERY) => sql::verb(&sql.data).unwrap_or("QUERY"),
            _ => self.command.short_name(),
        }
    }

    fn is_error(&self) -> bool {
        self.error().is_some()
    }

    /// The normalised statement (literals as `?`, lists collapsed), or the command.
    fn write_route(&self, out: &mut String) {
        match &self.sql {
            Some(sql) => sql::normalise(&sql.data, out),
            None => out.push_str(self.command.name()),
        }
    }

    /// `ok`, or the error code (`1146`), or `(no response)`.
    fn write_status(&self, out: &mut String) {
        match (&self.response, self.error()) {
            (None, _) => out.push_str("(no response)"),
            (Some(_), Some(e)) => out.push_str(itoa::Buffer::new().format(e.code)),
            (Some(_), None) => out.push_str("ok"),
        }
    }

    fn contains_text(&self, found_in: &mut dyn FnMut(&str) -> bool) -> bool {
        let cells = view::cells(self);
        found_in(self.operation()) || found_in(&cells.subject) || found_in(&cells.outcome)
    }

    fn meets(&self, condition: &str) -> bool {
        condition == ERROR_CONDITION && self.is_error()
    }

    fn heap_bytes(&self) -> usize {
        MysqlExchange::heap_bytes(self)
    }

    /// Rows returned plus rows changed; `None` without an answer.
    fn rows(&self) -> Option<u64> {
        self.response
            .as_ref()
            .map(|r| r.rows().saturating_add(r.affected_rows()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_commands_and_refusals_are_recognised() {
        let greeting = handshake::tests::mariadb_greeting("10.11.6-MariaDB", 1, 0);
        let mut packet = vec![greeting.len() as u8, 0, 0, 0];
        packet.extend(&greeting);
        assert_eq!(Mysql::recognise(Flow::Response, &packet), Recognition::Yes);
        assert_eq!(
            Mysql::recognise(Flow::Request, b"\x09\x00\x00\x00\x03SELECT 1"),
            Recognition::Yes
        );
        assert_eq!(
            Mysql::recognise(
                Flow::Request,
                b"\x09\x00\x00\x00\x03\x00\x01\x02\x03\x04\x05\x06\x07"
            ),
            Recognition::No
        );
        // Too short to hold an error code: found by the fuzzer, which once indexed past its end.
        assert_eq!(
            Mysql::recognise(Flow::Response, b"\x02\x00\x00\x00\xff\x10"),
            Recognition::No
        );
        let refused = b"\x17\x00\x00\x00\xff\x10\x04Too many connections";
        assert_eq!(
            Mysql::recognise(Flow::Response, refused),
            Recognition::Maybe
        );
        assert_eq!(
            Mysql::recognise(Flow::Response, b"HTTP/1.1 200 OK\r\n\r\n"),
            Recognition::No
        );
        assert_eq!(
            Mysql::recognise(Flow::Request, b"GET / HTTP/1.1\r\n\r\n"),
            Recognition::No
        );
    }
}
