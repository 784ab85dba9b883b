//! Secrets end to end: a redis-server with `requirepass` and ACL users, and nginx receiving bearer
//! tokens, cookies, secret query parameters, form and JSON passwords and a custom header (and proxying
//! them to its backend), all watched on both sides; and MariaDB given passwords in SQL, one of them in a
//! statement the server rejects and quotes back. No secret may reach the capture file, `stat` or the
//! `--fail-on` report; each must be found masked, with its length, where it was; `--show-secrets`
//! must show them. (The UI screen is checked in `tui.rs`.)

use std::process::Command;

use serde_json::{json, Value};

use crate::support::{curl, record, temp_path, watcher_bin, MariaDb, Nginx, Redis, Watcher};

pub const REDIS_PW: &str = "redis-pw-Zq8xK2";
const ACL_PW: &str = "acl-pw-Hy3Lm7";
const WRONG_PW: &str = "wrong-pw-Xc4Vb8";
pub const BEARER: &str = "bearer-tok-Pw4Nd9";
const COOKIE: &str = "cookie-val-Rt6Ys1";
const SET_COOKIE: &str = "setcookie-Vb2Qe5";
const QUERY_TOKEN: &str = "query-tok-Jk7Wc3";
const FORM_PW: &str = "form-pw-Gx5Tn8";
const JSON_PW: &str = "json-pw-Lp9Fz4";
const CUSTOM: &str = "custom-Mn3Kd6";
const SQL_PW: &str = "sql-pw-Bt5Rw2";
const SQL_PW_SET: &str = "sql-pw-set-Kc8Hd1";
const SQL_PW_BAD: &str = "sql-pw-bad-Wm4Jp6";

const SECRETS: &[&str] = &[
    REDIS_PW,
    ACL_PW,
    WRONG_PW,
    BEARER,
    COOKIE,
    SET_COOKIE,
    QUERY_TOKEN,
    FORM_PW,
    JSON_PW,
    CUSTOM,
    SQL_PW,
    SQL_PW_SET,
    SQL_PW_BAD,
];

pub fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} holds the secret {secret:?}:\n{text}"
        );
    }
}

/// A masked value of `len` bytes, as NDJSON writes it.
fn masked(text: &str) -> Value {
    json!({"text": text, "len": text.len(), "truncated": false, "redacted": true})
}

fn stars(n: usize) -> String {
    "*".repeat(n)
}

fn redis_traffic(redis: &Redis) {
    let cli = |args: &[&str]| {
        let mut all = vec!["-a", REDIS_PW, "--no-auth-warning"];
        all.extend_from_slice(args);
        redis.cli(&all)
    };
    cli(&["SET", "user:1", "alice"]);
    assert!(cli(&["CONFIG", "GET", "requirepass"]).contains(REDIS_PW));
    let setuser = format!(">{ACL_PW}");
    cli(&["ACL", "SETUSER", "alice", "on", &setuser, "~*", "+@all"]);
    cli(&["ACL", "LIST"]);
    cli(&["ACL", "GETUSER", "alice"]);
    redis.cli(&["HELLO", "3", "AUTH", "default", REDIS_PW]);
    redis.cli(&[
        "--user",
        "alice",
        "--pass",
        ACL_PW,
        "--no-auth-warning",
        "PING",
    ]);
}

fn http_traffic(nginx: &Nginx) {
    curl(&[
        "-o",
        "/dev/null",
        "-H",
        &format!("Authorization: Bearer {BEARER}"),
        "-b",
        &format!("theme=dark; session={COOKIE}"),
        &nginx.url(&format!("/upload?token={QUERY_TOKEN}&page=2")),
    ]);
    curl(&[
        "-o",
        "/dev/null",
        "-d",
        &format!("user=bob&password={FORM_PW}"),
        &nginx.url("/upload/form"),
    ]);
    curl(&[
        "-o",
        "/dev/null",
        "-H",
        "Content-Type: application/json",
        "-d",
        &format!(r#"{{"user":"bob","password":"{JSON_PW}"}}"#),
        &nginx.url("/upload/json"),
    ]);
    curl(&[
        "-o",
        "/dev/null",
        "-H",
        &format!("X-Internal-Trace: {CUSTOM}"),
        &nginx.url("/index.html"),
    ]);
    curl(&["-o", "/dev/null", &nginx.url("/login")]);
}

fn nginx_with_login() -> Nginx {
    Nginx::with_front_locations(
        "secrets",
        &format!(
            "location /login {{ add_header Set-Cookie \"sid={SET_COOKIE}; Path=/; HttpOnly\"; return 204; }}"
        ),
    )
}

fn redis_records<'a>(
    records: &'a [Value],
    command: &str,
    first_arg: Option<&str>,
) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| {
            r["redis"]["command"] == command && first_arg.is_none_or(|a| r["redis"]["args"][0] == a)
        })
        .collect()
}

fn http_records<'a>(records: &'a [Value], path: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["http"]["path"] == path)
        .collect()
}

fn header<'a>(message: &'a Value, name: &str) -> &'a Value {
    message["headers"]
        .as_array()
        .and_then(|h| {
            h.iter()
                .find(|f| f[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        })
        .map_or(&Value::Null, |f| &f[1])
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn no_secret_reaches_the_capture_stat_or_the_report_and_each_is_marked_where_it_was() {
    let redis = Redis::start_with(&["--requirepass", REDIS_PW]);
    let nginx = nginx_with_login();
    let (port, front, back) = (
        redis.port.to_string(),
        nginx.front.to_string(),
        nginx.back.to_string(),
    );
    let watcher = Watcher::start(
        "secrets",
        &[],
        &[
            "--port",
            &port,
            "--port",
            &front,
            "--port",
            &back,
            "--redact-header",
            "x-internal-trace",
        ],
    );
    redis_traffic(&redis);
    http_traffic(&nginx);
    let (records, summary) = watcher.stop();
    let text: String = records.iter().map(|r| r.to_string() + "\n").collect();
    assert_no_secret("the capture", &text);
    assert_no_secret("the summary", &summary);

    check_redis(&records);
    check_http(&records);
    check_stat(&text);
    check_report(&port);
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn show_secrets_shows_them_and_says_so_and_reading_the_file_back_masks_them_again() {
    let redis = Redis::start_with(&["--requirepass", REDIS_PW]);
    let port = redis.port.to_string();
    let run = record(
        "show-secrets",
        &["redis", "--show-secrets"],
        &[
            "redis-cli",
            "-p",
            &port,
            "-a",
            REDIS_PW,
            "--no-auth-warning",
            "PING",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("--show-secrets"),
        "said at start:\n{}",
        run.stderr
    );
    let auth = redis_records(&run.records, "AUTH", None);
    assert_eq!(auth.len(), 1, "{:#?}", run.records);
    assert_eq!(auth[0]["redis"]["args"], json!([REDIS_PW]));
    assert_eq!(auth[0]["redacted"], false);

    // Reading that file back masks it again unless asked not to (see `tui.rs` for what `show` then
    // shows); only the run that shows secrets says so.
    let stat = |extra: &[&str]| {
        let out = Command::new(watcher_bin())
            .arg("stat")
            .arg(&run.path)
            .args(extra)
            .output()
            .expect("stat runs");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = stat(&[]);
    assert!(!quiet.contains("--show-secrets"), "{quiet}");
    let warned = stat(&["--show-secrets"]);
    assert!(warned.contains("NOT masked"), "{warned}");
    let _ = std::fs::remove_file(&run.path);
}

/// Redis: each credential is there, masked, on both ends of the connection.
fn check_redis(records: &[Value]) {
    let auth = redis_records(records, "AUTH", None);
    assert!(
        auth.len() >= 4,
        "AUTH of -a and of --user, both sides: {auth:#?}"
    );
    assert!(auth.iter().all(|r| r["redacted"] == true));
    assert!(auth
        .iter()
        .any(|r| r["redis"]["args"] == json!([masked(&stars(REDIS_PW.len()))])));
    assert!(auth.iter().any(|r| r["redis"]["args"]
        == json!([masked(&stars("alice".len())), masked(&stars(ACL_PW.len()))])));
    let config_get = redis_records(records, "CONFIG", Some("GET"));
    assert_eq!(config_get.len(), 2, "client and server side");
    for r in &config_get {
        assert_eq!(
            r["redis"]["reply"]["value"][1]["value"],
            masked(&stars(REDIS_PW.len()))
        );
    }
    let setuser = redis_records(records, "ACL", Some("SETUSER"));
    assert_eq!(setuser.len(), 2);
    for r in &setuser {
        assert_eq!(
            r["redis"]["args"][3],
            masked(&format!(">{}", stars(ACL_PW.len())))
        );
        assert_eq!(r["redis"]["args"][4], "~*", "other rules stay");
    }
    let hello = redis_records(records, "HELLO", None);
    assert_eq!(hello.len(), 2);
    for r in &hello {
        assert_eq!(r["redis"]["args"][3], masked(&stars(REDIS_PW.len())));
    }
    let list = redis_records(records, "ACL", Some("LIST"));
    assert!(list.iter().all(|r| r["redacted"] == true), "{list:#?}");
    let set = redis_records(records, "SET", None);
    assert!(set
        .iter()
        .all(|r| r["redacted"] == false && r["redis"]["args"][1] == "alice"));
}

/// HTTP: curl → nginx and nginx → its backend both carry the credentials; each is masked.
fn check_http(records: &[Value]) {
    let upload = http_records(records, "/upload");
    assert_eq!(upload.len(), 4, "two hops, two sides each: {upload:#?}");
    for r in &upload {
        let target = r["http"]["target"].as_str().unwrap_or_default();
        assert!(
            target.ends_with(&format!("?token={}&page=2", stars(QUERY_TOKEN.len()))),
            "{target}"
        );
        let request = &r["http"]["request"];
        assert_eq!(
            header(request, "authorization"),
            &masked(&format!("Bearer {}", stars(BEARER.len())))
        );
        assert_eq!(
            header(request, "cookie"),
            &masked(&format!("theme=****; session={}", stars(COOKIE.len())))
        );
    }
    for (path, body) in [
        (
            "/upload/form",
            format!("user=bob&password={}", stars(FORM_PW.len())),
        ),
        (
            "/upload/json",
            format!(r#"{{"user":"bob","password":"{}"}}"#, stars(JSON_PW.len())),
        ),
    ] {
        let found = http_records(records, path);
        assert_eq!(found.len(), 4, "{path}: {found:#?}");
        for r in &found {
            assert_eq!(r["http"]["request"]["body"], masked(&body), "{path}");
        }
    }
    let login = http_records(records, "/login");
    assert_eq!(login.len(), 2);
    for r in &login {
        let set_cookie = header(&r["http"]["response"], "set-cookie");
        assert_eq!(
            set_cookie,
            &masked(&format!(
                "sid={}; Path=/; HttpOnly",
                stars(SET_COOKIE.len())
            ))
        );
    }
    let index = http_records(records, "/index.html");
    assert_eq!(index.len(), 2);
    for r in &index {
        assert_eq!(
            header(&r["http"]["request"], "x-internal-trace"),
            &masked(&stars(CUSTOM.len()))
        );
    }
}

/// `stat` of the capture, by every key.
fn check_stat(text: &str) {
    let file = temp_path("secrets-stat", "ndjson");
    std::fs::write(&file, text).expect("capture file");
    for group in [
        "command",
        "endpoint",
        "status",
        "connection",
        "remote",
        "process",
    ] {
        let out = Command::new(watcher_bin())
            .arg("stat")
            .arg(&file)
            .args(["--group-by", group])
            .output()
            .expect("stat runs");
        assert!(out.status.success(), "stat --group-by {group}");
        assert_no_secret(
            &format!("stat --group-by {group}"),
            &String::from_utf8_lossy(&out.stdout),
        );
    }
    let _ = std::fs::remove_file(&file);
}

/// A failed AUTH makes `--fail-on redis-error` list it, without the password tried.
fn check_report(port: &str) {
    let run = record(
        "secrets-report",
        &["redis", "--fail-on", "redis-error"],
        &[
            "redis-cli",
            "-p",
            port,
            "-a",
            WRONG_PW,
            "--no-auth-warning",
            "PING",
        ],
    );
    let _ = std::fs::remove_file(&run.path);
    assert_eq!(
        run.code,
        Some(123),
        "the AUTH error fails the run:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("AUTH"),
        "the report lists AUTH:\n{}",
        run.stderr
    );
    // The report, not the line echoing the command the user typed (which holds what they typed).
    let report = &run.stderr[run.stderr.find("--fail-on").unwrap_or(0)..];
    assert_no_secret("the --fail-on report", report);
    assert_no_secret(
        "record's capture",
        &run.records.iter().map(Value::to_string).collect::<String>(),
    );
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn mysql_passwords_never_reach_the_capture_stat_or_the_failure_report() {
    let db = MariaDb::start();
    let port = db.port.to_string();
    let sql = format!(
        "CREATE USER 'viewer'@'localhost' IDENTIFIED BY '{SQL_PW}'; \
         SET PASSWORD FOR 'viewer'@'localhost' = PASSWORD('{SQL_PW_SET}'); \
         ALTER USER 'viewer'@'localhost' IDENTIFIED BY '{SQL_PW_BAD}' BOGUS;"
    );
    let run = record(
        "secrets-mysql",
        &["mysql", "--fail-on", "mysql-error"],
        &[
            "mariadb",
            "--no-defaults",
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uapp",
            &format!("-p{}", MariaDb::PASSWORD),
            "-e",
            &sql,
        ],
    );
    assert_eq!(
        run.code,
        Some(1),
        "mariadb fails on the bad statement:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1064"),
        "the report lists the syntax error:\n{}",
        run.stderr
    );
    let report = &run.stderr[run.stderr.find("--fail-on").unwrap_or(0)..];
    assert_no_secret("the --fail-on report", report);
    let text: String = run.records.iter().map(|r| r.to_string() + "\n").collect();
    assert_no_secret("the capture", &text);
    let statements: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["mysql"]["command"] == "QUERY" && r["redacted"] == true)
        .collect();
    assert_eq!(
        statements.len(),
        3,
        "each statement masked: {:#?}",
        run.records
    );
    let bad = statements
        .iter()
        .find(|r| r["error"] == true)
        .expect("the rejected one");
    let message = bad["mysql"]["results"][0]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("near ") && message.contains('*'),
        "the quoted statement masked: {message}"
    );
    check_stat(&text);
    let _ = std::fs::remove_file(&run.path);
}
