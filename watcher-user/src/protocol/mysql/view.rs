//! What people see of a MySQL exchange: the table's statement and result cells (errors toned as
//! errors), the detail screen's statement, parameters, connection, columns, first rows and error, and
//! report lines.
//!
//! Pure: builds text, draws nothing.

use std::fmt::Write as _;

use super::{
    binary::type_name,
    exchange::{Column, MysqlExchange, Outcome, Param},
};
use crate::protocol::{
    common::Blob,
    plugin::{Cells, DetailLine, PayloadView, Tone},
    text::{printable, value_text},
};

/// Most characters of a statement in the table.
const SUBJECT_MAX: usize = 200;

/// The table's cells of an exchange.
pub fn cells(x: &MysqlExchange) -> Cells {
    let mut subject = String::new();
    if let Some(sql) = &x.sql {
        one_line(&sql.data, SUBJECT_MAX, &mut subject);
    } else if let Some(id) = x.statement_id {
        let _ = write!(subject, "statement #{id} (prepared before the capture)");
    } else if let Some(arg) = &x.argument {
        printable(&arg.data, SUBJECT_MAX, &mut subject);
    }
    let (outcome, tone) = outcome(x);
    Cells {
        subject,
        outcome,
        tone,
    }
}

/// The result column: rows, an OK, or the error code; toned as an error for errors.
fn outcome(x: &MysqlExchange) -> (String, Tone) {
    let Some(response) = &x.response else {
        return ("(no response)".into(), Tone::Plain);
    };
    if let Some(e) = response.error() {
        let mut text = format!("ERR {}", e.code);
        if !e.sql_state.is_empty() {
            let _ = write!(text, " ({})", e.sql_state);
        }
        return (text, Tone::Error);
    }
    let Some(last) = response.results.last() else {
        return ("(no reply expected)".into(), Tone::Plain);
    };
    let text = match last {
        Outcome::Rows(_) => plural(response.rows(), "row"),
        Outcome::Ok(ok) if ok.affected_rows > 0 => {
            format!(
                "OK, {}",
                plural(response.affected_rows(), "row") + " affected"
            )
        }
        Outcome::Ok(_) => "OK".into(),
        Outcome::Prepared(p) => format!(
            "prepared #{} ({})",
            p.statement_id,
            plural(p.params.into(), "param")
        ),
        Outcome::Fields(columns) => plural(columns.len() as u64, "field"),
        Outcome::Text(text) => {
            let mut s = String::new();
            printable(&text.data, 80, &mut s);
            s
        }
        Outcome::Infile(name) => format!("LOCAL INFILE {name}"),
        Outcome::Error(_) => String::new(),
    };
    (text, Tone::Good)
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// SQL on one line: whitespace runs as one space, at most about `max` characters.
fn one_line(sql: &[u8], max: usize, out: &mut String) {
    let mut collapsed = Vec::with_capacity(sql.len().min(max * 4));
    let mut space = false;
    for &b in sql.iter().take(max * 4) {
        if b.is_ascii_whitespace() {
            space = !collapsed.is_empty();
            continue;
        }
        if space {
            collapsed.push(b' ');
            space = false;
        }
        collapsed.push(b);
    }
    printable(&collapsed, max, out);
    if sql.len() > max * 4 && !out.ends_with('…') {
        out.push('…');
    }
}

impl PayloadView for MysqlExchange {
    fn cells(&self) -> Cells {
        cells(self)
    }

    /// The statement, its parameters, the connection, and every result.
    fn detail(&self, lines: &mut Vec<DetailLine>) {
        lines.push(DetailLine::heading("Command"));
        lines.push(DetailLine::text(format!("  {}", self.command.name())));
        if let Some(sql) = &self.sql {
            lines.push(DetailLine::text(""));
            lines.push(DetailLine::heading("Statement"));
            sql_lines(sql, lines);
        }
        if let Some(id) = self.statement_id {
            let known = if self.sql.is_some() {
                ""
            } else {
                " (prepared before the capture)"
            };
            lines.push(DetailLine::text(format!("  statement #{id}{known}")));
        }
        if let Some(arg) = &self.argument {
            lines.push(DetailLine::text(format!("  {}", value_text(arg))));
        }
        if !self.params.is_empty() {
            lines.push(DetailLine::text(""));
            lines.push(DetailLine::heading("Parameters"));
            for (i, p) in self.params.iter().enumerate() {
                lines.push(DetailLine::text(format!("  ?{} {}", i + 1, param_text(p))));
            }
        }
        if let Some(c) = &self.connection {
            lines.push(DetailLine::text(""));
            lines.push(DetailLine::heading("Connection"));
            let mut text = format!(
                "  server {}, connection id {}, user {:?}",
                c.server_version, c.connection_id, c.user
            );
            if let Some(db) = &c.database {
                let _ = write!(text, ", database {db:?}");
            }
            if c.compressed() {
                text.push_str(", compressed");
            }
            lines.push(DetailLine::text(text));
        }
        lines.push(DetailLine::text(""));
        lines.push(DetailLine::heading("Response"));
        let Some(response) = &self.response else {
            lines.push(DetailLine::text(
                "  (no response before the connection closed)",
            ));
            return;
        };
        if response.results.is_empty() {
            lines.push(DetailLine::text(
                "  (the server does not answer this command)",
            ));
        }
        for outcome in &response.results {
            outcome_lines(outcome, lines);
        }
    }

    /// The command or statement, and the result.
    fn describe(&self, out: &mut String) {
        let cells = cells(self);
        out.push_str(self.command.name());
        if !cells.subject.is_empty() {
            out.push(' ');
            out.push_str(&cells.subject);
        }
        out.push_str(" -> ");
        out.push_str(&cells.outcome);
        if let Some(e) = self.error() {
            out.push_str(": ");
            out.push_str(&e.message);
        }
    }
}

fn sql_lines(sql: &Blob, lines: &mut Vec<DetailLine>) {
    for line in String::from_utf8_lossy(&sql.data).lines() {
        let mut text = String::from("  ");
        printable(line.as_bytes(), 4096, &mut text);
        lines.push(DetailLine::text(text));
    }
    if sql.is_truncated() {
        lines.push(DetailLine::text(format!(
            "  … ({} of {} bytes captured)",
            sql.data.len(),
            sql.len()
        )));
    }
    if sql.redacted() {
        lines.push(DetailLine::text(format!(
            "  {}",
            crate::protocol::text::MASKED
        )));
    }
}

fn param_text(p: &Param) -> String {
    let value = p
        .value
        .as_ref()
        .map_or_else(|| "NULL".to_owned(), value_text);
    let unsigned = if p.unsigned { " UNSIGNED" } else { "" };
    format!("{}{unsigned} {value}", type_name(p.type_code))
}

fn columns_text(columns: &[Column]) -> String {
    let mut text = String::from("  columns:");
    for c in columns {
        let _ = write!(text, " {} {},", c.name, type_name(c.type_code));
    }
    text.pop();
    text
}

fn outcome_lines(outcome: &Outcome, lines: &mut Vec<DetailLine>) {
    match outcome {
        Outcome::Ok(ok) => {
            let mut text = format!("  OK: {} affected", plural(ok.affected_rows, "row"));
            if ok.last_insert_id != 0 {
                let _ = write!(text, ", last insert id {}", ok.last_insert_id);
            }
            if ok.warnings != 0 {
                let _ = write!(text, ", {}", plural(ok.warnings.into(), "warning"));
            }
            if !ok.info.is_empty() {
                let _ = write!(text, " ({})", ok.info);
            }
            lines.push(DetailLine::text(text));
        }
        Outcome::Error(e) => {
            lines.push(DetailLine::text(format!(
                "  ERR {} ({}): {}",
                e.code, e.sql_state, e.message
            )));
        }
        Outcome::Rows(set) => {
            let form = if set.binary { "binary" } else { "text" };
            lines.push(DetailLine::text(format!(
                "  {} ({form} rows)",
                plural(set.rows, "row")
            )));
            lines.push(DetailLine::text(columns_text(&set.columns)));
            for row in &set.first_rows {
                let mut text = String::from("   ");
                for value in row {
                    text.push_str(" | ");
                    match value {
                        Some(v) => text.push_str(&value_text(v)),
                        None => text.push_str("NULL"),
                    }
                }
                lines.push(DetailLine::text(text));
            }
            if (set.first_rows.len() as u64) < set.rows {
                lines.push(DetailLine::text(format!(
                    "    … ({} of {} rows kept)",
                    set.first_rows.len(),
                    set.rows
                )));
            }
        }
        Outcome::Prepared(p) => {
            lines.push(DetailLine::text(format!(
                "  prepared statement #{}: {}",
                p.statement_id,
                plural(p.params.into(), "parameter")
            )));
            if !p.columns.is_empty() {
                lines.push(DetailLine::text(columns_text(&p.columns)));
            }
        }
        Outcome::Fields(columns) => lines.push(DetailLine::text(columns_text(columns))),
        Outcome::Text(text) => lines.push(DetailLine::text(format!("  {}", value_text(text)))),
        Outcome::Infile(name) => {
            lines.push(DetailLine::text(format!(
                "  the server asked for the local file {name:?}"
            )));
        }
    }
}
