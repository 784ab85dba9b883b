//! Command codes (the first byte of a client's command packet), their names, and which of them the
//! server answers.

/// A command, by its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Command(pub u8);

/// Names of codes 0 to 31, as the protocol documentation names them without the `COM_` prefix.
const NAMES: [&str; 32] = [
    "SLEEP",
    "QUIT",
    "INIT_DB",
    "QUERY",
    "FIELD_LIST",
    "CREATE_DB",
    "DROP_DB",
    "REFRESH",
    "SHUTDOWN",
    "STATISTICS",
    "PROCESS_INFO",
    "CONNECT",
    "PROCESS_KILL",
    "DEBUG",
    "PING",
    "TIME",
    "DELAYED_INSERT",
    "CHANGE_USER",
    "BINLOG_DUMP",
    "TABLE_DUMP",
    "CONNECT_OUT",
    "REGISTER_SLAVE",
    "STMT_PREPARE",
    "STMT_EXECUTE",
    "STMT_SEND_LONG_DATA",
    "STMT_CLOSE",
    "STMT_RESET",
    "SET_OPTION",
    "STMT_FETCH",
    "DAEMON",
    "BINLOG_DUMP_GTID",
    "RESET_CONNECTION",
];

/// MariaDB's `COM_STMT_BULK_EXECUTE`.
const BULK_EXECUTE: u8 = 0xfa;

impl Command {
    /// `COM_QUIT`.
    pub const QUIT: Self = Self(0x01);
    /// `COM_INIT_DB`.
    pub const INIT_DB: Self = Self(0x02);
    /// `COM_QUERY`.
    pub const QUERY: Self = Self(0x03);
    /// `COM_FIELD_LIST`.
    pub const FIELD_LIST: Self = Self(0x04);
    /// `COM_STATISTICS`.
    pub const STATISTICS: Self = Self(0x09);
    /// `COM_PROCESS_INFO`.
    pub const PROCESS_INFO: Self = Self(0x0a);
    /// The login: not a command the client sends, but the code servers use for it internally, and the
    /// command of the record a connection's handshake makes.
    pub const CONNECT: Self = Self(0x0b);
    /// `COM_PROCESS_KILL`.
    pub const PROCESS_KILL: Self = Self(0x0c);
    /// `COM_CHANGE_USER`.
    pub const CHANGE_USER: Self = Self(0x11);
    /// `COM_BINLOG_DUMP`.
    pub const BINLOG_DUMP: Self = Self(0x12);
    /// `COM_STMT_PREPARE`.
    pub const STMT_PREPARE: Self = Self(0x16);
    /// `COM_STMT_EXECUTE`.
    pub const STMT_EXECUTE: Self = Self(0x17);
    /// `COM_STMT_SEND_LONG_DATA`.
    pub const STMT_SEND_LONG_DATA: Self = Self(0x18);
    /// `COM_STMT_CLOSE`.
    pub const STMT_CLOSE: Self = Self(0x19);
    /// `COM_STMT_RESET`.
    pub const STMT_RESET: Self = Self(0x1a);
    /// `COM_STMT_FETCH`.
    pub const STMT_FETCH: Self = Self(0x1c);
    /// `COM_BINLOG_DUMP_GTID`.
    pub const BINLOG_DUMP_GTID: Self = Self(0x1e);
    /// MariaDB's `COM_STMT_BULK_EXECUTE`.
    pub const STMT_BULK_EXECUTE: Self = Self(BULK_EXECUTE);

    /// The command with code `code`.
    pub const fn from_code(code: u8) -> Self {
        Self(code)
    }

    /// Whether clients send it (a command a server knows).
    pub fn is_known(self) -> bool {
        (self.0 < 32 && self.0 != Self::CONNECT.0) || self.0 == BULK_EXECUTE
    }

    /// Its name (`QUERY`, `STMT_EXECUTE`), or `UNKNOWN`.
    pub fn name(self) -> &'static str {
        match self.0 {
            BULK_EXECUTE => "STMT_BULK_EXECUTE",
            code => NAMES.get(usize::from(code)).copied().unwrap_or("UNKNOWN"),
        }
    }

    /// Its name where space is short (the table's command column): the prepared-statement commands
    /// without `STMT_` (`EXECUTE`, `PREPARE`, `CLOSE`), others as [`Command::name`].
    pub fn short_name(self) -> &'static str {
        match self {
            Self::STMT_BULK_EXECUTE => "BULK_EXECUTE",
            Self::STMT_SEND_LONG_DATA => "LONG_DATA",
            _ => {
                let name = self.name();
                name.strip_prefix("STMT_").unwrap_or(name)
            }
        }
    }

    /// The command named `name` (as [`Command::name`] gives it).
    pub fn from_name(name: &str) -> Option<Self> {
        if name == "STMT_BULK_EXECUTE" {
            return Some(Self::STMT_BULK_EXECUTE);
        }
        NAMES
            .iter()
            .position(|n| *n == name)
            .map(|code| Self(code as u8))
    }

    /// Whether the server answers it. `COM_STMT_CLOSE` and `COM_STMT_SEND_LONG_DATA` get no answer;
    /// `COM_QUIT` gets the connection closed.
    pub fn is_answered(self) -> bool {
        !matches!(
            self,
            Self::QUIT | Self::STMT_CLOSE | Self::STMT_SEND_LONG_DATA
        )
    }

    /// Whether its answer can be rows.
    pub fn returns_rows(self) -> bool {
        matches!(
            self,
            Self::QUERY | Self::STMT_EXECUTE | Self::PROCESS_INFO | Self::STMT_BULK_EXECUTE
        ) || !self.is_known()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for code in 0..=255u8 {
            let c = Command(code);
            if c.name() != "UNKNOWN" {
                assert_eq!(Command::from_name(c.name()), Some(c));
            }
        }
        assert_eq!(Command::QUERY.name(), "QUERY");
        assert_eq!(Command(0x99).name(), "UNKNOWN");
        assert_eq!(Command::STMT_EXECUTE.short_name(), "EXECUTE");
        assert_eq!(Command::QUERY.short_name(), "QUERY");
        assert!(!Command::STMT_CLOSE.is_answered());
        assert!(Command::STMT_BULK_EXECUTE.is_known() && !Command::CONNECT.is_known());
    }
}
