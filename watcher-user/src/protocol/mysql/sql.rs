//! SQL text as watcher reads it, without parsing SQL: a light scan that knows string literals
//! (`'…'`, `"…"`, with backslash escapes and doubled quotes), quoted identifiers (`` `…` ``), comments
//! (`-- `, `#`, `/* */`), numbers and words.
//!
//! - [`verb`]: the statement's first keyword, for the table's command column and `--group-by command`;
//! - [`normalise`]: the statement's shape for `stat --group-by statement`: literals become `?`, a list
//!   of them after `IN` or `VALUES` becomes `(...)`, comments go and whitespace is one space, so
//!   `SELECT * FROM t WHERE id IN (1, 2, 3)` and `select`-ing other ids land in one group;
//! - [`looks_like_sql`]: whether bytes could be a query's text (protocol detection).

/// Keywords that open statements, as [`verb`] reports them.
const VERBS: &[&str] = &[
    "ALTER",
    "ANALYZE",
    "BEGIN",
    "CALL",
    "CHANGE",
    "CHECK",
    "COMMIT",
    "CREATE",
    "DEALLOCATE",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DO",
    "DROP",
    "EXECUTE",
    "EXPLAIN",
    "FLUSH",
    "GRANT",
    "HANDLER",
    "INSERT",
    "KILL",
    "LOAD",
    "LOCK",
    "OPTIMIZE",
    "PREPARE",
    "RELEASE",
    "RENAME",
    "REPAIR",
    "REPLACE",
    "RESET",
    "REVOKE",
    "ROLLBACK",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "SHOW",
    "START",
    "TABLE",
    "TRUNCATE",
    "UNLOCK",
    "UPDATE",
    "USE",
    "VALUES",
    "WITH",
    "XA",
];

/// Longest normalised statement, in bytes; a longer one is cut (groups of very long statements are
/// told apart by their start).
const MAX_NORMALISED: usize = 1024;

/// A token of the scan ([`scan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// A word or quoted identifier, as written.
    Word(&'a [u8]),
    /// A string or number literal.
    Literal,
    /// One punctuation byte.
    Punct(u8),
    /// Whitespace or a comment.
    Space,
}

/// Splits `sql` into tokens, calling `each` with each and the range it covers.
pub fn scan<'a>(sql: &'a [u8], mut each: impl FnMut(Token<'a>, std::ops::Range<usize>) -> bool) {
    let mut i = 0;
    while i < sql.len() {
        let start = i;
        let b = sql[i];
        let token = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                while i < sql.len() && sql[i].is_ascii_whitespace() {
                    i += 1;
                }
                Token::Space
            }
            b'#' => {
                i = line_end(sql, i);
                Token::Space
            }
            b'-' if sql.get(i + 1) == Some(&b'-')
                && sql.get(i + 2).is_none_or(u8::is_ascii_whitespace) =>
            {
                i = line_end(sql, i);
                Token::Space
            }
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                i = memchr::memmem::find(&sql[i + 2..], b"*/").map_or(sql.len(), |e| i + 2 + e + 2);
                Token::Space
            }
            b'\'' | b'"' => {
                i = quoted_end(sql, i, b);
                Token::Literal
            }
            b'`' => {
                i = memchr::memchr(b'`', &sql[i + 1..]).map_or(sql.len(), |e| i + 1 + e + 1);
                Token::Word(&sql[start..i])
            }
            b'0'..=b'9' => {
                i += 1;
                while i < sql.len()
                    && (sql[i].is_ascii_alphanumeric()
                        || sql[i] == b'.'
                        || ((sql[i] == b'+' || sql[i] == b'-')
                            && matches!(sql[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                Token::Literal
            }
            b'.' if sql.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i += 1;
                while i < sql.len() && sql[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                Token::Literal
            }
            _ if is_word_byte(b) => {
                while i < sql.len() && is_word_byte(sql[i]) {
                    i += 1;
                }
                Token::Word(&sql[start..i])
            }
            _ => {
                i += 1;
                Token::Punct(b)
            }
        };
        if !each(token, start..i) {
            return;
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'@' || b >= 0x80
}

fn line_end(sql: &[u8], from: usize) -> usize {
    memchr::memchr(b'\n', &sql[from..]).map_or(sql.len(), |e| from + e)
}

/// The end (one past the closing quote) of the literal opened by `quote` at `from`.
pub fn quoted_end(sql: &[u8], from: usize, quote: u8) -> usize {
    let mut i = from + 1;
    while i < sql.len() {
        match sql[i] {
            b'\\' => i += 2,
            c if c == quote => {
                if sql.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    sql.len()
}

/// The statement's first keyword, upper-case, if it is one of the statement keywords.
pub fn verb(sql: &[u8]) -> Option<&'static str> {
    let mut found = None;
    scan(sql, |token, _| match token {
        Token::Space | Token::Punct(b'(') => true,
        Token::Word(word) => {
            found = VERBS
                .iter()
                .find(|v| v.as_bytes().eq_ignore_ascii_case(word))
                .copied();
            false
        }
        _ => false,
    });
    found
}

/// Appends the statement's shape to `out` (see the module doc).
pub fn normalise(sql: &[u8], out: &mut String) {
    let start = out.len();
    let mut pending_space = false;
    // Where the `(` of a list that may collapse was written, while it holds only literals.
    let mut list: Option<usize> = None;
    let mut after_list_keyword = false;
    scan(sql, |token, _| {
        if out.len() - start >= MAX_NORMALISED {
            out.push('…');
            return false;
        }
        if token == Token::Space {
            pending_space = out.len() > start;
            return true;
        }
        let glue = matches!(token, Token::Punct(b',' | b')' | b'.' | b';'))
            || out.ends_with('(')
            || out.ends_with('.');
        if pending_space && !glue {
            out.push(' ');
        }
        pending_space = false;
        match token {
            Token::Word(word) if is_literal_word(word) => out.push('?'),
            Token::Word(word) => {
                after_list_keyword =
                    word.eq_ignore_ascii_case(b"IN") || word.eq_ignore_ascii_case(b"VALUES");
                out.push_str(&String::from_utf8_lossy(word));
                list = None;
            }
            Token::Literal => out.push('?'),
            Token::Punct(b'(') => {
                let next_row = out.trim_end_matches(' ').ends_with("(...),");
                list = (list.is_none() && (after_list_keyword || next_row)).then_some(out.len());
                after_list_keyword = false;
                out.push('(');
            }
            Token::Punct(b')') => {
                out.push(')');
                if let Some(open) = list.take() {
                    out.truncate(open);
                    // A further row of a VALUES list joins the first.
                    let trimmed = out.trim_end_matches(' ').len();
                    if out[..trimmed].ends_with("(...),") {
                        out.truncate(trimmed - 1);
                    } else {
                        out.push_str("(...)");
                    }
                }
            }
            Token::Punct(b) => {
                if !matches!(b, b'?' | b',' | b'-' | b'+') {
                    list = None;
                    after_list_keyword = false;
                }
                out.push(char::from(b));
            }
            Token::Space => {}
        }
        true
    });
    // A trailing `;` says nothing about the statement.
    while out.len() > start && (out.ends_with(';') || out.ends_with(' ')) {
        out.pop();
    }
}

/// Words that are values: `NULL`, `TRUE`, `FALSE`.
fn is_literal_word(word: &[u8]) -> bool {
    [&b"NULL"[..], b"TRUE", b"FALSE"]
        .iter()
        .any(|w| w.eq_ignore_ascii_case(word))
}

/// Whether `data` could be the text of a query: it starts, after spaces and comments, with a word or
/// an opening parenthesis, and is mostly printable.
pub fn looks_like_sql(data: &[u8]) -> bool {
    let head = &data[..data.len().min(64)];
    if head.is_empty() || head.iter().any(|&b| b < 0x09 || (b > 0x0d && b < 0x20)) {
        return false;
    }
    let mut starts_well = false;
    scan(head, |token, _| {
        match token {
            Token::Space => return true,
            Token::Word(_) | Token::Punct(b'(') => starts_well = true,
            _ => {}
        }
        false
    });
    starts_well
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(sql: &str) -> String {
        let mut out = String::new();
        normalise(sql.as_bytes(), &mut out);
        out
    }

    #[test]
    fn literals_become_placeholders_and_lists_collapse() {
        assert_eq!(
            norm("SELECT  *\n FROM t WHERE id = 42 AND name = 'o''brien' -- who\n"),
            "SELECT * FROM t WHERE id = ? AND name = ?"
        );
        assert_eq!(
            norm("select c from sbtest1 where id in (1, 2,3) order by c;"),
            "select c from sbtest1 where id in (...) order by c"
        );
        assert_eq!(
            norm("INSERT INTO t (a, b) VALUES (1, 'x'), (2, \"y\"),(3,'z\\'s')"),
            "INSERT INTO t (a, b) VALUES (...)"
        );
        assert_eq!(
            norm("SELECT f(1.5e-3, .5) /* hint */ FROM `t 1`"),
            "SELECT f(?, ?) FROM `t 1`"
        );
        assert_eq!(
            norm("UPDATE t SET k=k+1 WHERE id=?"),
            "UPDATE t SET k=k+? WHERE id=?"
        );
        assert_eq!(
            norm("SELECT a FROM t WHERE x IN (SELECT b FROM u WHERE c = 3)"),
            "SELECT a FROM t WHERE x IN (SELECT b FROM u WHERE c = ?)"
        );
        assert_eq!(norm("SELECT 'unterminated"), "SELECT ?");
    }

    #[test]
    fn the_verb_is_the_first_keyword() {
        assert_eq!(verb(b"  /* c */ select 1"), Some("SELECT"));
        assert_eq!(verb(b"(SELECT 1) UNION (SELECT 2)"), Some("SELECT"));
        assert_eq!(verb(b"BEGIN"), Some("BEGIN"));
        assert_eq!(verb(b"frobnicate"), None);
        assert_eq!(verb(b""), None);
    }

    #[test]
    fn sql_is_told_from_binary() {
        assert!(looks_like_sql(b"select @@version_comment limit 1"));
        assert!(looks_like_sql(b"/* ping */ SELECT 1"));
        assert!(!looks_like_sql(b"\x00\x01\x02"));
        assert!(!looks_like_sql(b""));
        assert!(!looks_like_sql(b"'just a string'"));
    }
}
