//! Which parts of a MySQL exchange are secrets: passwords written into SQL (`CREATE USER`/`ALTER USER`
//! `... IDENTIFIED BY '…'`, `IDENTIFIED WITH plugin AS '…'`, MariaDB's `IDENTIFIED VIA … USING '…'`,
//! `SET PASSWORD ... = '…'`, `PASSWORD('…')`, `MASTER_PASSWORD = '…'` and every other word ending in
//! `PASSWORD`), the values bound to such a statement's placeholders, the statement as an error message
//! quotes it back, and result columns named like secrets (`password`, `authentication_string`).
//!
//! After a word that introduces a secret, every string literal up to the next `,` or `;` is masked:
//! the rule may mask a little more than the secret (the plugin name of `IDENTIFIED WITH`, the user of
//! `SET PASSWORD FOR`), never less. The auth data of the handshake is never kept in the first place.

use super::{
    exchange::{MysqlExchange, Outcome},
    sql::{scan, Token},
};
use crate::protocol::redact::{is_secret_name, mask, Redact, Redaction};

impl Redact for MysqlExchange {
    fn redact(&mut self, policy: &Redaction) -> bool {
        if !policy.is_enabled() {
            return false;
        }
        let mut found = false;
        let mut placeholders = false;
        if let Some(sql) = &mut self.sql {
            let mut secret = Secrets::default();
            found |= sql.redact_with(|text| {
                secret = mask_sql(text);
                secret.literals
            });
            placeholders = secret.placeholders;
        }
        if placeholders {
            for param in &mut self.params {
                if let Some(value) = &mut param.value {
                    value.redact();
                    found = true;
                }
            }
        }
        let said_secret = found;
        let shows = self
            .sql
            .as_ref()
            .is_some_and(|s| super::sql::verb(&s.data) == Some("SHOW"));
        if let Some(response) = &mut self.response {
            for outcome in &mut response.results {
                match outcome {
                    Outcome::Error(e) if said_secret => {
                        // `... near 'BY 'secret'' at line 1`: the server quotes the statement back.
                        let mut bytes = std::mem::take(&mut e.message).into_bytes();
                        if let Some(near) = memchr::memmem::find(&bytes, b"near ") {
                            found |= mask(&mut bytes[near + 5..]);
                        }
                        e.message = String::from_utf8_lossy(&bytes).into_owned();
                    }
                    Outcome::Rows(set) => {
                        let secret_columns: Vec<bool> = set
                            .columns
                            .iter()
                            .map(|c| {
                                is_secret_name(c.name.as_bytes())
                                    || c.name.eq_ignore_ascii_case("authentication_string")
                            })
                            .collect();
                        for row in &mut set.first_rows {
                            for (value, secret) in row.iter_mut().zip(&secret_columns) {
                                let Some(value) = value else { continue };
                                if *secret && !value.data.is_empty() {
                                    value.redact();
                                    found = true;
                                } else if shows {
                                    // `SHOW CREATE USER` shows the statement, hash and all.
                                    found |= value.redact_with(|text| mask_sql(text).literals);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        found
    }
}

/// What [`mask_sql`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Literals it masked.
    pub literals: bool,
    /// Placeholders (`?`) where a secret goes: the values bound to them are secrets.
    pub placeholders: bool,
}

/// Masks the string literals that hold secrets in SQL text (see the module doc).
pub fn mask_sql(sql: &mut [u8]) -> Secrets {
    if !mentions_secret_word(sql) {
        return Secrets::default();
    }
    let mut spans = Vec::new();
    let mut found = Secrets::default();
    let mut armed = false;
    scan(sql, |token, range| {
        match token {
            Token::Word(word)
                if word.eq_ignore_ascii_case(b"IDENTIFIED") || ends_with_password(word) =>
            {
                armed = true;
            }
            Token::Literal if armed => spans.push(range),
            Token::Punct(b'?') if armed => found.placeholders = true,
            Token::Punct(b',' | b';') => armed = false,
            _ => {}
        }
        true
    });
    for range in spans {
        let literal = &mut sql[range];
        // Only quoted literals hold text; the quotes stay.
        if let [b'\'' | b'"', inner @ .., last] = literal {
            if matches!(last, b'\'' | b'"') {
                found.literals |= mask(inner);
            }
        }
    }
    found
}

/// Whether `IDENTIFIED` or `PASSWORD` (any case) occurs anywhere in `sql`: without either, no word can
/// arm [`mask_sql`]. Every statement is checked, so this looks only at the rare letters of the two
/// words (`W`, `F`) with a vectorised search, instead of scanning the SQL token by token.
fn mentions_secret_word(sql: &[u8]) -> bool {
    let around = |at: usize, before: &[u8], after: &[u8]| {
        at >= before.len()
            && sql[at - before.len()..at].eq_ignore_ascii_case(before)
            && sql
                .get(at + 1..at + 1 + after.len())
                .is_some_and(|a| a.eq_ignore_ascii_case(after))
    };
    memchr::memchr2_iter(b'w', b'W', sql).any(|at| around(at, b"PASS", b"ORD"))
        || memchr::memchr2_iter(b'f', b'F', sql).any(|at| around(at, b"IDENTI", b"IED"))
}

fn ends_with_password(word: &[u8]) -> bool {
    word.len() >= 8 && word[word.len() - 8..].eq_ignore_ascii_case(b"PASSWORD")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(sql: &str) -> (String, Secrets) {
        let mut bytes = sql.as_bytes().to_vec();
        let found = mask_sql(&mut bytes);
        (String::from_utf8(bytes).unwrap(), found)
    }

    #[test]
    fn passwords_in_sql_are_masked_and_the_rest_stays() {
        let cases = [
            (
                "CREATE USER 'app'@'%' IDENTIFIED BY 's3cret', 'ro'@'%'",
                "CREATE USER 'app'@'%' IDENTIFIED BY '******', 'ro'@'%'",
            ),
            (
                "ALTER USER bob IDENTIFIED WITH mysql_native_password BY 'p''w'",
                "ALTER USER bob IDENTIFIED WITH mysql_native_password BY '****'",
            ),
            (
                "SET PASSWORD FOR 'u'@'h' = PASSWORD('x1')",
                "SET PASSWORD FOR '*'@'*' = PASSWORD('**')",
            ),
            (
                "CHANGE MASTER TO MASTER_USER='repl', MASTER_PASSWORD='topsecret'",
                "CHANGE MASTER TO MASTER_USER='repl', MASTER_PASSWORD='*********'",
            ),
            (
                "GRANT ALL ON *.* TO x IDENTIFIED VIA ed25519 USING PASSWORD('pw'); SELECT 'visible'",
                "GRANT ALL ON *.* TO x IDENTIFIED VIA ed25519 USING PASSWORD('**'); SELECT 'visible'",
            ),
        ];
        for (sql, want) in cases {
            let (got, found) = masked(sql);
            assert_eq!(got, want);
            assert!(found.literals);
        }
        let (got, found) = masked("SELECT * FROM users WHERE name = 'bob'");
        assert_eq!(got, "SELECT * FROM users WHERE name = 'bob'");
        assert_eq!(found, Secrets::default());
        assert!(masked("CREATE USER ? IDENTIFIED BY ?").1.placeholders);
        assert!(mentions_secret_word(b"x identified y") && mentions_secret_word(b"SET PassWord"));
        assert!(!mentions_secret_word(
            b"SELECT pass, word FROM identity WHERE f = 'identifie'"
        ));
    }
}
