//! MySQL end to end, against a real MariaDB server on loopback: the `mariadb` command-line client
//! (queries, an error, `USE`, a multi-statement, compression, a password being set), PyMySQL (text
//! protocol, a multi-statement), mysql-connector-python with server-side prepared statements (binary protocol) and with
//! compression, and `sysbench oltp_read_write`, whose own count of queries the records must match.

use std::process::Command;

use serde_json::Value;

use crate::support::{on_port, python, MariaDb, Watcher};

/// Records of `command` (`QUERY`, `STMT_EXECUTE`, ...).
fn with_mysql_command<'a>(records: &'a [Value], command: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["mysql"]["command"] == command)
        .collect()
}

/// The SQL of a record as text.
fn sql(record: &Value) -> String {
    match &record["mysql"]["sql"] {
        Value::String(s) => s.clone(),
        Value::Object(o) => o["text"].as_str().unwrap_or_default().to_owned(),
        _ => String::new(),
    }
}

fn with_sql<'a>(records: &'a [Value], text: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| sql(r) == text).collect()
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn the_mariadb_client_queries_errors_use_multi_statements_compression_and_logins_on_both_sides() {
    let db = MariaDb::start();
    let port = db.port.to_string();
    let watcher = Watcher::start("mysql-cli", &["mysql"], &["--port", &port]);
    let out = db.client(&[
        "shop",
        "-e",
        "CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(40), price DECIMAL(8,2)); \
         INSERT INTO items (name, price) VALUES ('pen', 1.50), ('ink', NULL), ('pad', 3.25); \
         SELECT id, name, price FROM items ORDER BY id; \
         SELECT * FROM missing_table;",
    ]);
    assert!(out.contains("doesn't exist"), "the client printed {out}");
    db.client(&["-e", "USE shop; SELECT COUNT(*) FROM items"]);
    // With another delimiter the client sends both statements as one query.
    db.client(&[
        "shop",
        "--delimiter=//",
        "-e",
        "SELECT name FROM items WHERE price IS NULL; UPDATE items SET price = 2 WHERE name = 'pen'//",
    ]);
    db.client(&[
        "--compress",
        "shop",
        "-e",
        "SELECT name FROM items WHERE id IN (1, 3)",
    ]);
    db.client(&[
        "-e",
        "CREATE USER 'reader'@'localhost' IDENTIFIED BY 'hunter2-secret'",
    ]);
    let (records, summary) = watcher.stop();
    assert!(
        summary.contains(" 0 lost,") && summary.contains(" 0 sync losses"),
        "nothing lost: {summary}"
    );
    let text = serde_json::to_string(&records).expect("JSON");
    assert!(
        !text.contains("hunter2-secret"),
        "the new user's password never leaves the host"
    );
    assert!(!text.contains(MariaDb::PASSWORD), "nor the login's");

    for side in ["server", "client"] {
        check_cli_side(&on_port(&records, side, db.port), side);
    }
}

/// What one side of the `mariadb` client test must show.
fn check_cli_side(seen: &[Value], side: &str) {
    let logins = with_mysql_command(seen, "CONNECT");
    assert_eq!(logins.len(), 5, "{side}: one login per client run");
    let connection = &logins[0]["mysql"]["connection"];
    assert_eq!(connection["user"], "app");
    assert_eq!(connection["database"], "shop");
    assert!(connection["server_version"]
        .as_str()
        .unwrap_or_default()
        .contains("MariaDB"));
    assert!(logins
        .iter()
        .any(|l| l["mysql"]["connection"]["compressed"] == true));

    let insert = with_sql(
        seen,
        "INSERT INTO items (name, price) VALUES ('pen', 1.50), ('ink', NULL), ('pad', 3.25)",
    );
    assert_eq!(insert.len(), 1, "{side}: {seen:#?}");
    assert_eq!(insert[0]["mysql"]["results"][0]["ok"]["affected_rows"], 3);
    let select = with_sql(seen, "SELECT id, name, price FROM items ORDER BY id");
    assert_eq!(select.len(), 1);
    let rows = &select[0]["mysql"]["results"][0]["rows"];
    assert_eq!(rows["count"], 3);
    assert_eq!(rows["columns"][1]["name"], "name");
    assert_eq!(rows["first_rows"][1], serde_json::json!(["2", "ink", null]));
    assert!(select[0]["latency_ns"].as_u64().is_some_and(|l| l > 0));

    let missing = with_sql(seen, "SELECT * FROM missing_table");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["error"], true);
    assert_eq!(missing[0]["mysql"]["error_code"], 1146);
    assert_eq!(
        missing[0]["mysql"]["results"][0]["error"]["sql_state"],
        "42S02"
    );

    let use_db = with_mysql_command(seen, "INIT_DB");
    assert!(
        use_db.iter().any(|r| r["mysql"]["argument"] == "shop"),
        "{side}: USE shop"
    );

    let count = with_sql(seen, "SELECT COUNT(*) FROM items");
    assert_eq!(count.len(), 1, "{side}: the query after USE");
    assert_eq!(
        count[0]["mysql"]["results"][0]["rows"]["first_rows"][0][0],
        "3"
    );

    let multi = with_sql(
        seen,
        "SELECT name FROM items WHERE price IS NULL; UPDATE items SET price = 2 WHERE name = 'pen'",
    );
    assert_eq!(multi.len(), 1, "{side}: one record for the multi-statement");
    let results = multi[0]["mysql"]["results"].as_array().expect("results");
    assert_eq!(
        results.len(),
        2,
        "{side}: both statements' results: {results:#?}"
    );
    assert_eq!(results[0]["rows"]["first_rows"][0][0], "ink");
    assert_eq!(results[1]["ok"]["affected_rows"], 1);

    let compressed = with_sql(seen, "SELECT name FROM items WHERE id IN (1, 3)");
    assert_eq!(
        compressed.len(),
        1,
        "{side}: the compressed connection's query"
    );
    assert_eq!(compressed[0]["mysql"]["rows"], 2);

    let create_user = seen
        .iter()
        .find(|r| sql(r).starts_with("CREATE USER 'reader'"))
        .unwrap_or_else(|| panic!("{side}: CREATE USER recorded"));
    assert_eq!(create_user["redacted"], true);
    assert!(sql(create_user).contains("IDENTIFIED BY '**************'"));

    for r in seen {
        let unanswered = r["end_unix_ns"].is_null();
        assert!(
            !unanswered || r["mysql"]["command"] == "QUIT",
            "{side}: unanswered {r:#?}"
        );
    }
}

/// Text protocol through PyMySQL, prepared statements through mysql-connector-python, and a compressed
/// mysql-connector-python connection, in one client process.
const PYTHON_CLIENTS: &str = r#"
import datetime, sys
import pymysql, mysql.connector
port = int(sys.argv[1]); password = sys.argv[2]
db = pymysql.connect(host="127.0.0.1", port=port, user="app", password=password, database="shop")
with db.cursor() as c:
    c.execute("CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40), born DATETIME, score DOUBLE)")
    c.execute("INSERT INTO people VALUES (%s, %s, %s, %s)", (1, "Ada", datetime.datetime(1815, 12, 10, 8, 30), 9.5))
    c.execute("INSERT INTO people VALUES (%s, %s, %s, %s)", (2, "Alan", None, 7.25))
    db.commit()
    c.execute("SELECT name FROM people WHERE id = %s", (2,))
    assert c.fetchone() == ("Alan",)
db.close()
multi = pymysql.connect(host="127.0.0.1", port=port, user="app", password=password, database="shop",
                        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
with multi.cursor() as c:
    c.execute("SELECT COUNT(*) FROM people; UPDATE people SET name = 'Ada L' WHERE id = 1")
    assert c.fetchone() == (2,)
    c.nextset()
    multi.commit()
multi.close()
cn = mysql.connector.connect(host="127.0.0.1", port=port, user="app", password=password, database="shop")
c = cn.cursor(prepared=True)
c.execute("SELECT id, name, born, score FROM people WHERE id >= ? AND name <> ? AND score > ?", (1, "nobody", 1.5))
rows = c.fetchall()
assert len(rows) == 2, rows
c.execute("UPDATE people SET score = ? WHERE born IS NULL OR born < ?", (8.0, datetime.datetime(1900, 1, 1)))
cn.commit()
c.close()
cn.close()
cz = mysql.connector.connect(host="127.0.0.1", port=port, user="app", password=password, database="shop", compress=True)
z = cz.cursor()
z.execute("SELECT COUNT(*) FROM people WHERE name LIKE 'A%'")
print(z.fetchall())
cz.close()
"#;

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn python_clients_text_protocol_prepared_statements_and_compression_are_decoded() {
    let db = MariaDb::start();
    let port = db.port.to_string();
    // No protocol named: MySQL is told from Redis and HTTP by detection alone.
    let watcher = Watcher::start("mysql-python", &[], &["--port", &port]);
    let printed = python(PYTHON_CLIENTS, &[&port, MariaDb::PASSWORD]);
    assert!(printed.contains("(2,)"), "the compressed count: {printed}");
    let (records, _summary) = watcher.stop();

    for side in ["server", "client"] {
        let seen = on_port(&records, side, db.port);
        let insert = seen
            .iter()
            .find(|r| sql(r).starts_with("INSERT INTO people VALUES (1, 'Ada'"))
            .unwrap_or_else(|| panic!("{side}: PyMySQL's first INSERT in {seen:#?}"));
        assert_eq!(insert["mysql"]["command"], "QUERY");
        assert_eq!(insert["mysql"]["results"][0]["ok"]["affected_rows"], 1);

        let prepare = with_mysql_command(&seen, "STMT_PREPARE");
        assert_eq!(prepare.len(), 2, "{side}: two statements prepared");
        let select_sql =
            "SELECT id, name, born, score FROM people WHERE id >= ? AND name <> ? AND score > ?";
        let prepared = &prepare
            .iter()
            .find(|r| sql(r) == select_sql)
            .expect("the SELECT prepared")["mysql"]["results"][0]["prepared"];
        assert_eq!(prepared["params"], 3);
        assert_eq!(prepared["columns"].as_array().map(Vec::len), Some(4));

        let executes = with_mysql_command(&seen, "STMT_EXECUTE");
        assert_eq!(executes.len(), 2, "{side}: two executions");
        let select = executes
            .iter()
            .find(|r| sql(r) == select_sql)
            .expect("the SELECT executed");
        let params: Vec<&Value> = select["mysql"]["params"]
            .as_array()
            .expect("params")
            .iter()
            .map(|p| &p["value"])
            .collect();
        assert_eq!(
            params,
            [
                &Value::from("1"),
                &Value::from("nobody"),
                &Value::from("1.5")
            ]
        );
        let rows = &select["mysql"]["results"][0]["rows"];
        assert_eq!(rows["binary"], true);
        assert_eq!(rows["count"], 2);
        assert_eq!(
            rows["first_rows"][0],
            serde_json::json!(["1", "Ada L", "1815-12-10 08:30:00", "9.5"])
        );
        assert_eq!(rows["first_rows"][1][2], Value::Null);
        let update = executes
            .iter()
            .find(|r| sql(r).starts_with("UPDATE people"))
            .expect("the UPDATE");
        assert_eq!(update["mysql"]["params"][1]["value"], "1900-01-01 00:00:00");
        assert_eq!(update["mysql"]["results"][0]["ok"]["affected_rows"], 2);

        let multi = with_sql(
            &seen,
            "SELECT COUNT(*) FROM people; UPDATE people SET name = 'Ada L' WHERE id = 1",
        );
        assert_eq!(multi.len(), 1, "{side}: one record for the multi-statement");
        let results = multi[0]["mysql"]["results"].as_array().expect("results");
        assert_eq!(
            results.len(),
            2,
            "{side}: both statements' results: {results:#?}"
        );
        assert_eq!(results[0]["rows"]["first_rows"][0][0], "2");
        assert_eq!(results[1]["ok"]["affected_rows"], 1);

        let count = with_sql(&seen, "SELECT COUNT(*) FROM people WHERE name LIKE 'A%'");
        assert_eq!(count.len(), 1, "{side}: the compressed connection's query");
        assert_eq!(
            count[0]["mysql"]["results"][0]["rows"]["first_rows"][0][0],
            "2"
        );
        assert_eq!(count[0]["mysql"]["connection"]["compressed"], true);
    }
}

/// What sysbench printed in its "queries performed" section (read, write, other, total) and the
/// queries that failed, which it retried and left out of those counts (deadlocks between its threads).
fn sysbench_queries(report: &str) -> [u64; 5] {
    let number = |label: &str| -> u64 {
        let line = report
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no `{label}` in sysbench's report:\n{report}"));
        line.split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no number in {line:?}"))
    };
    [
        number("read:"),
        number("write:"),
        number("other:"),
        number("total:"),
        number("ignored errors:"),
    ]
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn sysbench_oltp_read_write_every_query_is_recorded_and_paired() {
    let db = MariaDb::start();
    let port = db.port.to_string();
    let sysbench = |phase: &str, extra: &[&str]| {
        let out = Command::new("sysbench")
            .args([
                "oltp_read_write",
                "--db-driver=mysql",
                "--mysql-host=127.0.0.1",
                "--mysql-user=app",
                "--mysql-db=shop",
            ])
            .arg(format!("--mysql-port={port}"))
            .arg(format!("--mysql-password={}", MariaDb::PASSWORD))
            .args(["--tables=1", "--table-size=1000"])
            .args(extra)
            .arg(phase)
            .output()
            .expect("sysbench must be installed (cargo xtask test installs it)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sysbench {phase}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    sysbench("prepare", &[]);
    let watcher = Watcher::start(
        "mysql-sysbench",
        &["mysql"],
        &["--port", &port, "--side", "client"],
    );
    // A fixed number of transactions, not a time: a timed run stops counting while its last
    // transactions are still executing.
    let report = sysbench("run", &["--events=500", "--time=0", "--threads=2"]);
    let (records, summary) = watcher.stop();
    let [read, write, other, total, failed] = sysbench_queries(&report);
    assert_eq!(read + write + other, total);
    let queries: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["comm"]
                .as_str()
                .is_some_and(|c| c.starts_with("sysbench"))
        })
        .filter(|r| {
            matches!(
                r["mysql"]["command"].as_str(),
                Some("QUERY" | "STMT_EXECUTE")
            )
        })
        .collect();
    assert!(total > 100, "sysbench ran: {report}");
    assert_eq!(
        queries.len() as u64,
        total + failed,
        "every query sysbench ran is a record; summary: {summary}"
    );
    let errors = queries.iter().filter(|r| r["error"] == true).count() as u64;
    assert_eq!(errors, failed, "the failed ones are the errors");
    let unanswered = queries
        .iter()
        .filter(|r| r["end_unix_ns"].is_null())
        .count();
    assert_eq!(unanswered, 0, "all paired");
    let selects = queries
        .iter()
        .filter(|r| r["error"] == false && sql(r).starts_with("SELECT"))
        .count() as u64;
    assert_eq!(selects, read, "reads are the SELECTs");
    assert!(
        summary.contains(" 0 lost,") && summary.contains(" 0 sync losses"),
        "nothing lost: {summary}"
    );
}
