//! The connection phase: the server's greeting (`Protocol::HandshakeV10`), the client's answer
//! (`HandshakeResponse41`, or the short `SSLRequest` after which TLS follows), and the capability flags
//! they agree on. What is kept is what people need to know about a connection; the auth data is read
//! past and never kept.

#[cfg(test)]
use super::exchange::CLIENT_COMPRESS;
use super::{exchange::ConnectionInfo, wire::Reader};

/// `CLIENT_LONG_PASSWORD`: set by every 4.1+ client; MariaDB clears it to say it is MariaDB.
const CLIENT_MYSQL: u64 = 1;
/// `CLIENT_CONNECT_WITH_DB`.
const CLIENT_CONNECT_WITH_DB: u64 = 1 << 3;
/// `CLIENT_PROTOCOL_41`.
const CLIENT_PROTOCOL_41: u64 = 1 << 9;
/// `CLIENT_SSL`.
const CLIENT_SSL: u64 = 1 << 11;
/// `CLIENT_SECURE_CONNECTION`.
const CLIENT_SECURE_CONNECTION: u64 = 1 << 15;
/// `CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA`.
const CLIENT_PLUGIN_AUTH_LENENC_DATA: u64 = 1 << 21;
/// `CLIENT_DEPRECATE_EOF`.
pub const CLIENT_DEPRECATE_EOF: u64 = 1 << 24;
/// `CLIENT_OPTIONAL_RESULTSET_METADATA` (MySQL 8).
pub const CLIENT_OPTIONAL_RESULTSET_METADATA: u64 = 1 << 25;
/// `CLIENT_QUERY_ATTRIBUTES` (MySQL 8).
pub const CLIENT_QUERY_ATTRIBUTES: u64 = 1 << 27;
/// `MARIADB_CLIENT_CACHE_METADATA`, MariaDB's extended flag 4, kept in the upper 32 bits.
pub const MARIADB_CLIENT_CACHE_METADATA: u64 = 1 << (32 + 4);

/// Bytes of an `SSLRequest`: the fixed part of a handshake response, without user or auth data.
const SSL_REQUEST_LEN: u64 = 32;

/// The server's greeting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Greeting {
    /// Its version string.
    pub server_version: String,
    /// The connection's id.
    pub connection_id: u32,
    /// What the server can do.
    pub capabilities: u64,
}

/// Reads a greeting: protocol version 10, then the version string, connection id, two parts of the
/// auth challenge and the capability flags around them. `None` when it is not one.
pub fn greeting(payload: &[u8]) -> Option<Greeting> {
    let mut r = Reader::new(payload);
    if r.u8()? != 10 {
        return None;
    }
    let version = r.nul_terminated();
    let connection_id = r.u32()?;
    r.skip(9)?; // auth challenge part 1 and a filler
    let lower = u64::from(r.u16()?);
    let mut capabilities = lower;
    if let (Some(_charset), Some(_status), Some(upper)) = (r.u8(), r.u16(), r.u16()) {
        capabilities |= u64::from(upper) << 16;
        // Auth data length, then 6 reserved bytes and MariaDB's 4 bytes of extended flags.
        r.skip(7)?;
        if capabilities & CLIENT_MYSQL == 0 {
            capabilities |= u64::from(r.u32()?) << 32;
        }
    }
    Some(Greeting {
        server_version: super::wire::text(version),
        connection_id,
        capabilities,
    })
}

/// What the client answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A login: the user and database, and the capabilities asked for.
    Login {
        /// Flags the client set.
        capabilities: u64,
        /// The user.
        user: String,
        /// The database to start in.
        database: Option<String>,
    },
    /// `SSLRequest`: TLS follows, then the real response inside it.
    Tls,
}

/// Reads a `HandshakeResponse41` (or an `SSLRequest`); `None` when it is neither.
pub fn answer(payload: &[u8], len: u64) -> Option<Answer> {
    let mut r = Reader::new(payload);
    let mut capabilities = u64::from(r.u32()?);
    if capabilities & CLIENT_PROTOCOL_41 == 0 {
        return None;
    }
    r.skip(4 + 1 + 19)?; // max packet size, character set, filler
    let extended = r.u32()?;
    if capabilities & CLIENT_MYSQL == 0 {
        capabilities |= u64::from(extended) << 32;
    }
    if capabilities & CLIENT_SSL != 0 && len == SSL_REQUEST_LEN {
        return Some(Answer::Tls);
    }
    let user = super::wire::text(r.nul_terminated());
    if capabilities & CLIENT_PLUGIN_AUTH_LENENC_DATA != 0 {
        r.lenenc_bytes()?;
    } else if capabilities & CLIENT_SECURE_CONNECTION != 0 {
        let n = r.u8()?;
        r.skip(usize::from(n))?;
    } else {
        r.nul_terminated();
    }
    let database = (capabilities & CLIENT_CONNECT_WITH_DB != 0)
        .then(|| r.nul_terminated())
        .filter(|db| !db.is_empty())
        .map(super::wire::text);
    Some(Answer::Login {
        capabilities,
        user,
        database,
    })
}

/// The connection's description once both sides have spoken.
pub fn connection(
    greeting: &Greeting,
    client_capabilities: u64,
    user: String,
    database: Option<String>,
) -> ConnectionInfo {
    ConnectionInfo {
        server_version: greeting.server_version.clone(),
        connection_id: greeting.connection_id,
        user,
        database,
        capabilities: greeting.capabilities & client_capabilities,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A MariaDB-style greeting (no `CLIENT_MYSQL` bit, extended flags in the reserved bytes).
    pub fn mariadb_greeting(version: &str, id: u32, capabilities: u64) -> Vec<u8> {
        let mut p = vec![10];
        p.extend(version.as_bytes());
        p.push(0);
        p.extend(id.to_le_bytes());
        p.extend(b"abcdefgh\0");
        p.extend((capabilities as u16).to_le_bytes());
        p.push(45);
        p.extend(2u16.to_le_bytes());
        p.extend(((capabilities >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend([0; 6]);
        p.extend(((capabilities >> 32) as u32).to_le_bytes());
        p.extend(b"ijklmnopqrst\0mysql_native_password\0");
        p
    }

    /// A handshake response with a 20-byte auth response.
    pub fn login(capabilities: u64, user: &str, database: Option<&str>) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend((capabilities as u32).to_le_bytes());
        p.extend(16_777_216u32.to_le_bytes());
        p.push(45);
        p.extend([0; 19]);
        p.extend(((capabilities >> 32) as u32).to_le_bytes());
        p.extend(user.as_bytes());
        p.push(0);
        p.push(20);
        p.extend([0xaa; 20]);
        if let Some(db) = database {
            p.extend(db.as_bytes());
            p.push(0);
        }
        p.extend(b"mysql_native_password\0");
        p
    }

    pub const CLIENT: u64 = CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | CLIENT_CONNECT_WITH_DB
        | CLIENT_DEPRECATE_EOF
        | (1 << 19);

    #[test]
    fn greeting_and_login_give_the_connection_without_the_auth_data() {
        let g = greeting(&mariadb_greeting(
            "10.11.6-MariaDB",
            42,
            CLIENT | CLIENT_COMPRESS | MARIADB_CLIENT_CACHE_METADATA,
        ))
        .unwrap();
        assert_eq!(g.server_version, "10.11.6-MariaDB");
        assert_eq!(g.connection_id, 42);
        assert!(g.capabilities & MARIADB_CLIENT_CACHE_METADATA != 0);
        let payload = login(CLIENT | CLIENT_COMPRESS, "app", Some("shop"));
        let Some(Answer::Login {
            capabilities,
            user,
            database,
        }) = answer(&payload, payload.len() as u64)
        else {
            panic!("a login");
        };
        assert_eq!((user.as_str(), database.as_deref()), ("app", Some("shop")));
        let info = connection(&g, capabilities, user, database);
        assert!(info.compressed());
        assert_eq!(
            info.capabilities & MARIADB_CLIENT_CACHE_METADATA,
            0,
            "the client did not ask"
        );
        let mut ssl = login(CLIENT | CLIENT_SSL, "", None);
        ssl.truncate(32);
        assert_eq!(answer(&ssl, 32), Some(Answer::Tls));
        assert_eq!(greeting(b"\x09old"), None);
        assert_eq!(answer(&[1, 2], 2), None);
    }
}
