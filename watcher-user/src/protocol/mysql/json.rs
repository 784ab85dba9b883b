//! The `mysql` object of a JSON record (`docs/json-schema.md`): written and read back by the
//! exchange's `PayloadJson`. Results are one-key objects (`{"ok": …}`, `{"error": …}`, `{"rows": …}`,
//! ...) in the order the server sent them; values (SQL, parameters, row values) are blobs.

use std::sync::Arc;

use super::{
    binary::{type_code, type_name},
    command::Command,
    exchange::{
        Column, ConnectionInfo, ErrorInfo, MysqlExchange, MysqlResponse, OkInfo, Outcome, Param,
        Prepared, ResultSet, Row,
    },
};
use crate::protocol::{
    json::{
        read::{
            blob, boolean, inconsistent, list, nullable, owned_string, string, unknown, unsigned,
            unsigned_16, unsigned_32, FieldResult, Fields, Json,
        },
        write::{
            write_array, write_blob, write_bool, write_opt_str, write_opt_u64, write_str, write_u64,
        },
    },
    plugin::PayloadJson,
};

impl PayloadJson for MysqlExchange {
    /// Writes the `mysql` object of a record.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"command\":");
        write_str(out, self.command.name());
        out.extend_from_slice(b",\"code\":");
        write_u64(out, self.command.0.into());
        out.extend_from_slice(b",\"sql\":");
        write_opt_blob(out, self.sql.as_ref());
        out.extend_from_slice(b",\"statement_id\":");
        write_opt_u64(out, self.statement_id.map(u64::from));
        out.extend_from_slice(b",\"params\":");
        write_array(out, &self.params, write_param);
        out.extend_from_slice(b",\"argument\":");
        write_opt_blob(out, self.argument.as_ref());
        out.extend_from_slice(b",\"rows\":");
        write_opt_u64(out, self.response.as_ref().map(MysqlResponse::rows));
        out.extend_from_slice(b",\"error_code\":");
        write_opt_u64(out, self.error().map(|e| u64::from(e.code)));
        out.extend_from_slice(b",\"results\":");
        match &self.response {
            Some(r) => write_array(out, &r.results, write_outcome),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"connection\":");
        match &self.connection {
            Some(c) => write_connection(out, c),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }

    /// Reads the `mysql` object of a record; `command`, `rows` and `error_code` are derived and
    /// ignored.
    fn read_json(value: Json<'_>) -> FieldResult<Self> {
        let mut f = Fields::of(value)?;
        let code = f.take("code", |v| {
            let code = unsigned(v)?;
            u8::try_from(code).map_err(|_| inconsistent(format!("{code} is not a command code")))
        })?;
        Ok(MysqlExchange {
            command: Command::from_code(code),
            sql: f.take("sql", nullable(blob))?,
            statement_id: f.take("statement_id", nullable(unsigned_32))?,
            params: f.take("params", |v| list(v, param))?,
            argument: f.take("argument", nullable(blob))?,
            response: f
                .take("results", nullable(|v| list(v, outcome)))?
                .map(|results| MysqlResponse { results }),
            connection: f.take("connection", nullable(connection))?.map(Arc::new),
        })
    }
}

fn write_opt_blob(out: &mut Vec<u8>, b: Option<&crate::protocol::common::Blob>) {
    match b {
        Some(b) => write_blob(out, b),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_param(out: &mut Vec<u8>, p: &Param) {
    out.extend_from_slice(b"{\"type\":");
    write_str(out, &type_name(p.type_code));
    out.extend_from_slice(b",\"unsigned\":");
    write_bool(out, p.unsigned);
    out.extend_from_slice(b",\"value\":");
    write_opt_blob(out, p.value.as_ref());
    out.push(b'}');
}

fn write_column(out: &mut Vec<u8>, c: &Column) {
    out.extend_from_slice(b"{\"name\":");
    write_str(out, &c.name);
    out.extend_from_slice(b",\"type\":");
    write_str(out, &type_name(c.type_code));
    out.extend_from_slice(b",\"flags\":");
    write_u64(out, c.flags.into());
    out.push(b'}');
}

fn write_ok(out: &mut Vec<u8>, ok: &OkInfo) {
    out.extend_from_slice(b"{\"affected_rows\":");
    write_u64(out, ok.affected_rows);
    out.extend_from_slice(b",\"last_insert_id\":");
    write_u64(out, ok.last_insert_id);
    out.extend_from_slice(b",\"status\":");
    write_u64(out, ok.status.into());
    out.extend_from_slice(b",\"warnings\":");
    write_u64(out, ok.warnings.into());
    out.extend_from_slice(b",\"info\":");
    write_str(out, &ok.info);
    out.push(b'}');
}

fn write_row(out: &mut Vec<u8>, row: &Row) {
    write_array(out, row, |out, v| write_opt_blob(out, v.as_ref()));
}

fn write_outcome(out: &mut Vec<u8>, outcome: &Outcome) {
    match outcome {
        Outcome::Ok(ok) => {
            out.extend_from_slice(b"{\"ok\":");
            write_ok(out, ok);
        }
        Outcome::Error(e) => {
            out.extend_from_slice(b"{\"error\":{\"code\":");
            write_u64(out, e.code.into());
            out.extend_from_slice(b",\"sql_state\":");
            write_str(out, &e.sql_state);
            out.extend_from_slice(b",\"message\":");
            write_str(out, &e.message);
            out.push(b'}');
        }
        Outcome::Rows(set) => {
            out.extend_from_slice(b"{\"rows\":{\"columns\":");
            write_array(out, &set.columns, write_column);
            out.extend_from_slice(b",\"count\":");
            write_u64(out, set.rows);
            out.extend_from_slice(b",\"binary\":");
            write_bool(out, set.binary);
            out.extend_from_slice(b",\"first_rows\":");
            write_array(out, &set.first_rows, write_row);
            out.extend_from_slice(b",\"end\":");
            write_ok(out, &set.end);
            out.push(b'}');
        }
        Outcome::Prepared(p) => {
            out.extend_from_slice(b"{\"prepared\":{\"statement_id\":");
            write_u64(out, p.statement_id.into());
            out.extend_from_slice(b",\"params\":");
            write_u64(out, p.params.into());
            out.extend_from_slice(b",\"columns\":");
            write_array(out, &p.columns, write_column);
            out.extend_from_slice(b",\"warnings\":");
            write_u64(out, p.warnings.into());
            out.push(b'}');
        }
        Outcome::Fields(columns) => {
            out.extend_from_slice(b"{\"fields\":");
            write_array(out, columns, write_column);
        }
        Outcome::Text(text) => {
            out.extend_from_slice(b"{\"text\":");
            write_blob(out, text);
        }
        Outcome::Infile(name) => {
            out.extend_from_slice(b"{\"infile\":");
            write_str(out, name);
        }
    }
    out.push(b'}');
}

fn write_connection(out: &mut Vec<u8>, c: &ConnectionInfo) {
    out.extend_from_slice(b"{\"server_version\":");
    write_str(out, &c.server_version);
    out.extend_from_slice(b",\"connection_id\":");
    write_u64(out, c.connection_id.into());
    out.extend_from_slice(b",\"user\":");
    write_str(out, &c.user);
    out.extend_from_slice(b",\"database\":");
    write_opt_str(out, c.database.as_deref());
    out.extend_from_slice(b",\"capabilities\":");
    write_u64(out, c.capabilities);
    out.extend_from_slice(b",\"compressed\":");
    write_bool(out, c.compressed());
    out.push(b'}');
}

fn type_of(value: Json<'_>) -> FieldResult<u8> {
    let name = string(value)?;
    type_code(&name).ok_or_else(|| unknown("MySQL type", name))
}

fn param(value: Json<'_>) -> FieldResult<Param> {
    let mut f = Fields::of(value)?;
    Ok(Param {
        type_code: f.take("type", type_of)?,
        unsigned: f.take("unsigned", boolean)?,
        value: f.take("value", nullable(blob))?,
    })
}

fn column(value: Json<'_>) -> FieldResult<Column> {
    let mut f = Fields::of(value)?;
    Ok(Column {
        name: f.take("name", owned_string)?,
        type_code: f.take("type", type_of)?,
        flags: f.take("flags", unsigned_16)?,
    })
}

fn columns(value: Json<'_>) -> FieldResult<Vec<Column>> {
    list(value, column)
}

fn ok_info(value: Json<'_>) -> FieldResult<OkInfo> {
    let mut f = Fields::of(value)?;
    Ok(OkInfo {
        affected_rows: f.take("affected_rows", unsigned)?,
        last_insert_id: f.take("last_insert_id", unsigned)?,
        status: f.take("status", unsigned_16)?,
        warnings: f.take("warnings", unsigned_16)?,
        info: f.take("info", owned_string)?,
    })
}

fn outcome(value: Json<'_>) -> FieldResult<Outcome> {
    let Json::Object(mut fields) = value else {
        return Err(crate::protocol::json::read::wrong_type(
            "a one-key object",
            &value,
        ));
    };
    if fields.len() != 1 {
        return Err(inconsistent(format!(
            "a result has exactly one key, not {}",
            fields.len()
        )));
    }
    let (key, value) = fields.remove(0);
    let decoded = match key.as_ref() {
        "ok" => ok_info(value).map(Outcome::Ok),
        "error" => {
            let mut f = Fields::of(value)?;
            Ok(Outcome::Error(ErrorInfo {
                code: f.take("code", unsigned_16)?,
                sql_state: f.take("sql_state", owned_string)?,
                message: f.take("message", owned_string)?,
            }))
        }
        "rows" => {
            let mut f = Fields::of(value)?;
            let set = ResultSet {
                columns: f.take("columns", columns)?,
                rows: f.take("count", unsigned)?,
                binary: f.take("binary", boolean)?,
                first_rows: f.take("first_rows", |v| {
                    list(v, |row| list(row, |value| nullable(blob)(value)))
                })?,
                end: f.take("end", ok_info)?,
            };
            if set.first_rows.len() as u64 > set.rows {
                return Err(inconsistent("more `first_rows` than `count`".into()).under_key("rows"));
            }
            Ok(Outcome::Rows(Box::new(set)))
        }
        "prepared" => {
            let mut f = Fields::of(value)?;
            Ok(Outcome::Prepared(Box::new(Prepared {
                statement_id: f.take("statement_id", unsigned_32)?,
                params: f.take("params", unsigned_16)?,
                columns: f.take("columns", columns)?,
                warnings: f.take("warnings", unsigned_16)?,
            })))
        }
        "fields" => columns(value).map(Outcome::Fields),
        "text" => blob(value).map(Outcome::Text),
        "infile" => owned_string(value).map(Outcome::Infile),
        other => return Err(unknown("MySQL result", other.to_owned().into())),
    };
    decoded.map_err(|e| e.under_key(&key))
}

fn connection(value: Json<'_>) -> FieldResult<ConnectionInfo> {
    let mut f = Fields::of(value)?;
    Ok(ConnectionInfo {
        server_version: f.take("server_version", owned_string)?,
        connection_id: f.take("connection_id", unsigned_32)?,
        user: f.take("user", owned_string)?,
        database: f.take("database", nullable(owned_string))?,
        capabilities: f.take("capabilities", unsigned)?,
    })
}
