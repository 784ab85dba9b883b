//! TLS end to end: the plaintext under OpenSSL, taken from uprobes on `libssl.so.3` (nginx, curl, wrk,
//! redis-server, redis-cli, a Python started after the watcher), on a copy of it that a process loads
//! after the start, on the OpenSSL linked into `node` and on Go's `crypto/tls` (caddy, started before
//! the watcher and after it, and watched by `--pid`), decoded as HTTP and Redis and marked `"tls":
//! true`; the ciphertext beneath it never decoded and never counted as unrecognised; and with
//! `--no-tls`, TLS connections counted as encrypted, nothing more.
//!
//! Every server uses a certificate made when the test starts ([`TestCert`]), which every client is told
//! to trust: no test turns certificate checks off (wrk, which never checks, aside).

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::support::{
    curl, curl_discarding, free_port, on_port, summary_count, temp_path, with_command, wrk, Caddy,
    Nginx, Redis, TestCert, Watcher,
};

/// The body curl POSTs through nginx to its backend.
const POST_BODY: &str = "hello over tls";

/// Whether RECORD was decoded from TLS plaintext (a record from a plain socket has no `tls` field).
fn is_tls(record: &Value) -> bool {
    record["tls"] == true
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// HTTP records of COMM on SIDE whose `local` (server side) or `remote` (client side) is PORT, in the
/// order their requests started (different connections can reach the store in either order).
fn http_at<'a>(records: &'a [Value], comm: &str, side: &str, port: u16) -> Vec<&'a Value> {
    let end = if side == "server" { "local" } else { "remote" };
    let mut found: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["protocol"] == "http"
                && r["comm"] == comm
                && r["side"] == side
                && r[end] == addr(port).as_str()
        })
        .collect();
    found.sort_by_key(|r| r["start_unix_ns"].as_u64());
    found
}

/// Method, target and status of each record, for comparing a whole conversation at once.
fn exchanges(records: &[&Value]) -> Vec<(String, String, Option<u64>)> {
    records
        .iter()
        .map(|r| {
            let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
            (
                text(&r["http"]["method"]),
                text(&r["http"]["target"]),
                r["http"]["status"].as_u64(),
            )
        })
        .collect()
}

fn exchange(method: &str, target: &str, status: u64) -> (String, String, Option<u64>) {
    (method.to_owned(), target.to_owned(), Some(status))
}

fn assert_all_tls(records: &[&Value], what: &str) {
    let plain: Vec<&&Value> = records.iter().filter(|r| !is_tls(r)).collect();
    assert!(
        plain.is_empty(),
        "{what}: every record must carry \"tls\": true, these do not: {plain:#?}"
    );
}

fn assert_none_tls(records: &[&Value], what: &str) {
    let marked: Vec<&&Value> = records.iter().filter(|r| is_tls(r)).collect();
    assert!(
        marked.is_empty(),
        "{what}: plaintext on the socket, so no \"tls\" field expected: {marked:#?}"
    );
}

fn assert_nothing_unrecognised(summary: &str) {
    assert_eq!(
        summary_count(summary, "unrecognised connections"),
        0,
        "the ciphertext under captured plaintext must not be decoded nor counted as unrecognised: {summary}"
    );
}

/// Runs `program flag script PORT CERT` (a client script given inline) and returns what it printed.
fn run_client(program: &str, flag: &str, script: &str, port: u16, cert: &TestCert) -> String {
    let out = Command::new(program)
        .arg(flag)
        .arg(script)
        .arg(port.to_string())
        .arg(&cert.cert)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the {program} client failed: {printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}

/// The start-up note listing what the TLS probes were attached to.
fn tls_note(watcher: &Watcher) -> String {
    watcher
        .notes()
        .iter()
        .map(|l| l.trim_start_matches("watcher: "))
        .find(|l| l.starts_with("TLS:"))
        .unwrap_or_else(|| {
            panic!(
                "a start-up line starting with `TLS:` should list the instrumented files: {:#?}",
                watcher.notes()
            )
        })
        .to_owned()
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn https_through_nginx_is_plaintext_on_both_ends_and_the_proxy_hop_stays_plain() {
    let cert = TestCert::make("nginx");
    let nginx = Nginx::with_tls("tls-curl", &cert);
    let (tls, back) = (nginx.tls_port(), nginx.back);
    let watcher = Watcher::start(
        "tls-curl",
        &["http"],
        &["--port", &tls.to_string(), "--port", &back.to_string()],
    );
    let note = tls_note(&watcher);
    assert!(
        note.contains("libssl.so.3"),
        "nginx and curl use libssl.so.3, so the TLS note should name it: {note}"
    );
    run_https_curl_cases(&nginx, &cert);
    let (records, summary) = watcher.stop();

    let served = http_at(&records, "nginx", "server", tls);
    let fetched = http_at(&records, "curl", "client", tls);
    check_tls_ends(&served, &fetched, tls);
    let proxied = http_at(&records, "nginx", "client", back);
    let at_backend = http_at(&records, "nginx", "server", back);
    check_proxy_hop(&proxied, &at_backend);
    // Nothing else: no record decoded from the ciphertext, nothing given up as unrecognised.
    assert_eq!(
        records.len(),
        served.len() + fetched.len() + proxied.len() + at_backend.len(),
        "only the HTTP exchanges above, on their four ends: {records:#?}"
    );
    assert_nothing_unrecognised(&summary);
    assert!(summary.contains(" 0 lost"), "{summary}");
    assert!(summary.contains(" 0 sync losses"), "{summary}");
}

/// One curl on one keep-alive connection with four requests (one proxied to the backend, one a 404),
/// then a POST with a body (proxied too): the exchanges [`check_tls_ends`] expects.
fn run_https_curl_cases(nginx: &Nginx, cert: &TestCert) {
    let ca = cert.cert.display().to_string();
    curl_discarding(
        &["--cacert", &ca],
        &[
            nginx.https_url("/index.html"),
            nginx.https_url("/data.json"),
            nginx.https_url("/api/users?id=7"),
            nginx.https_url("/missing.html"),
        ],
    );
    let stored = curl(&[
        "--cacert",
        &ca,
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        POST_BODY,
        &nginx.https_url("/upload/tls"),
    ]);
    assert_eq!(stored, "stored\n", "the backend answered the POST");
}

/// (a) nginx's HTTPS server side and (b) curl's client side: the same five exchanges, in plaintext,
/// marked TLS, and the keep-alive connection's addresses agreeing at both ends.
fn check_tls_ends(served: &[&Value], fetched: &[&Value], tls: u16) {
    let expected = [
        exchange("GET", "/index.html", 200),
        exchange("GET", "/data.json", 200),
        exchange("GET", "/api/users?id=7", 200),
        exchange("GET", "/missing.html", 404),
        exchange("POST", "/upload/tls", 201),
    ];
    for (seen, what) in [
        (served, "nginx serving HTTPS"),
        (fetched, "curl over HTTPS"),
    ] {
        assert_eq!(exchanges(seen), expected, "{what}: {seen:#?}");
        assert_all_tls(seen, what);
        for r in seen {
            assert!(
                r["latency_ns"].as_u64().is_some_and(|l| l > 0),
                "{what}: a latency: {r:#}"
            );
        }
        assert_eq!(
            seen[1]["http"]["response"]["body"], "{\"ok\":true}\n",
            "{what}: the decrypted response body"
        );
        let post = seen[4];
        assert_eq!(
            post["http"]["request"]["body"], POST_BODY,
            "{what}: {post:#}"
        );
        assert_eq!(
            post["http"]["request"]["body_bytes"],
            POST_BODY.len(),
            "{what}: {post:#}"
        );
        assert_eq!(post["http"]["response"]["body"], "stored\n", "{what}");
        // Keep-alive: the first four are one connection.
        assert!(
            seen[..4].iter().all(|r| r["local"] == seen[0]["local"]),
            "{what}: one connection for the first four: {seen:#?}"
        );
    }
    assert_eq!(served[0]["local"], addr(tls).as_str());
    assert_eq!(
        fetched[0]["local"], served[0]["remote"],
        "curl's end is nginx's peer"
    );
}

/// (c) The hop from nginx to its backend is plain HTTP, recorded at both of its ends, without `tls`.
fn check_proxy_hop(proxied: &[&Value], at_backend: &[&Value]) {
    let hop = [
        exchange("GET", "/users?id=7", 200),
        exchange("POST", "/upload/tls", 201),
    ];
    for (seen, what) in [
        (proxied, "nginx to its backend"),
        (at_backend, "the backend"),
    ] {
        assert_eq!(exchanges(seen), hop, "{what}: {seen:#?}");
        assert_none_tls(seen, what);
        assert_eq!(seen[1]["http"]["request"]["body"], POST_BODY, "{what}");
    }
    assert_eq!(
        proxied[0]["http"]["response"]["body"],
        "{\"backend\":\"/users?id=7\"}"
    );
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn every_wrk_response_over_https_is_recorded_on_the_server_side() {
    const CONNECTIONS: u64 = 2;
    let cert = TestCert::make("wrk");
    let nginx = Nginx::with_tls("tls-wrk", &cert);
    let tls = nginx.tls_port();
    let watcher = Watcher::start(
        "tls-wrk",
        &["http"],
        &["--port", &tls.to_string(), "--side", "server"],
    );
    // wrk does not check certificates: nothing to pass it.
    let (completed, text) = wrk(CONNECTIONS, "2s", &nginx.https_url("/index.html"));
    let (records, summary) = watcher.stop();
    let served = http_at(&records, "nginx", "server", tls);
    assert_all_tls(&served, "nginx serving wrk over HTTPS");
    let answered = served.iter().filter(|r| r["http"]["status"] == 200).count() as u64;
    let unanswered = served
        .iter()
        .filter(|r| r["http"]["status"].is_null())
        .count() as u64;
    assert!(completed > 100, "wrk ran: {text}");
    assert!(summary.contains(" 0 lost"), "{summary}");
    assert_nothing_unrecognised(&summary);
    // wrk counts the responses it read; requests still in flight when it stopped have none.
    assert!(
        (completed..=completed + CONNECTIONS).contains(&answered),
        "{answered} answered records for {completed} wrk responses ({summary})"
    );
    assert!(unanswered <= CONNECTIONS, "{unanswered} unanswered");
    assert_eq!(
        answered + unanswered,
        served.len() as u64,
        "only 200s and in-flight requests"
    );
    assert!(served.iter().all(|r| r["http"]["target"] == "/index.html"));
    assert_eq!(
        records.len(),
        served.len(),
        "only wrk's requests, only HTTP"
    );
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn redis_over_tls_commands_and_replies_are_recorded_on_both_sides() {
    const PIPELINED: usize = 10;
    let cert = TestCert::make("redis");
    let redis = Redis::start_tls(&cert);
    let port = redis.port.to_string();
    let watcher = Watcher::start("tls-redis", &["redis"], &["--port", &port]);
    assert_eq!(redis.cli(&["SET", "greeting", "hello tls"]).trim(), "OK");
    assert_eq!(redis.cli(&["GET", "greeting"]).trim(), "hello tls");
    assert_eq!(redis.cli(&["INCR", "counter"]).trim(), "1");
    // `redis-cli --pipe`: every command in one write ahead of the replies, then its own final ECHO.
    let mut input = String::new();
    for i in 0..PIPELINED {
        input.push_str(&resp(&["SET", &format!("pipe:{i}"), &format!("value {i}")]));
    }
    for _ in 0..PIPELINED {
        input.push_str(&resp(&["INCR", "hits"]));
    }
    let piped = redis.cli_stdin(&["--pipe"], input.as_bytes());
    assert!(
        piped.contains(&format!("errors: 0, replies: {}", 2 * PIPELINED)),
        "{piped}"
    );
    let (records, summary) = watcher.stop();

    for (side, comm) in [("server", "redis-server"), ("client", "redis-cli")] {
        let seen = on_port(&records, side, redis.port);
        let seen_refs: Vec<&Value> = seen.iter().collect();
        assert_all_tls(&seen_refs, &format!("redis {side}"));
        assert!(
            seen.iter()
                .all(|r| r["protocol"] == "redis" && r["comm"] == comm),
            "{side}: only Redis records of {comm}: {seen:#?}"
        );
        let set = with_command(&seen, "SET");
        let greeting: Vec<&&Value> = set
            .iter()
            .filter(|r| r["redis"]["args"][0] == "greeting")
            .collect();
        assert_eq!(greeting.len(), 1, "{side}: one SET greeting in {seen:#?}");
        assert_eq!(
            greeting[0]["redis"]["args"],
            json!(["greeting", "hello tls"])
        );
        assert_eq!(
            greeting[0]["redis"]["reply"],
            json!({"type": "simple", "value": "OK"})
        );
        let get = with_command(&seen, "GET");
        assert_eq!(get.len(), 1, "{side}: one GET");
        assert_eq!(
            get[0]["redis"]["reply"],
            json!({"type": "bulk", "value": "hello tls"})
        );
        let incr = with_command(&seen, "INCR");
        let counter: Vec<&&Value> = incr
            .iter()
            .filter(|r| r["redis"]["args"] == json!(["counter"]))
            .collect();
        assert_eq!(counter.len(), 1, "{side}: one INCR counter");
        assert_eq!(
            counter[0]["redis"]["reply"],
            json!({"type": "integer", "value": 1})
        );
        // The pipeline: each command paired with its own reply, in order.
        let mut piped_sets: Vec<&&Value> = set
            .iter()
            .filter(|r| r["redis"]["args"][0] != "greeting")
            .collect();
        piped_sets.sort_by_key(|r| r["start_unix_ns"].as_u64());
        assert_eq!(piped_sets.len(), PIPELINED, "{side}: every pipelined SET");
        for (i, r) in piped_sets.iter().enumerate() {
            assert_eq!(
                r["redis"]["args"],
                json!([format!("pipe:{i}"), format!("value {i}")]),
                "{side}"
            );
            assert_eq!(r["redis"]["reply"]["value"], "OK", "{side}: {r}");
        }
        let mut hits: Vec<&&Value> = incr
            .iter()
            .filter(|r| r["redis"]["args"] == json!(["hits"]))
            .collect();
        hits.sort_by_key(|r| r["start_unix_ns"].as_u64());
        let replies: Vec<Option<i64>> = hits
            .iter()
            .map(|r| r["redis"]["reply"]["value"].as_i64())
            .collect();
        let counted: Vec<Option<i64>> = (1..=PIPELINED as i64).map(Some).collect();
        assert_eq!(replies, counted, "{side}: INCR hits replies in order");
        // SET greeting, GET, INCR counter, the pipeline and redis-cli's final ECHO: nothing else.
        assert_eq!(
            seen.len(),
            3 + 2 * PIPELINED + 1,
            "{side}: only the commands sent: {seen:#?}"
        );
    }
    assert_eq!(
        records.len(),
        2 * (3 + 2 * PIPELINED + 1),
        "no record on another port, none decoded from the ciphertext: {records:#?}"
    );
    assert_nothing_unrecognised(&summary);
    assert!(summary.contains(" 0 lost"), "{summary}");
    assert!(summary.contains(" 0 sync losses"), "{summary}");
}

/// One RESP command.
fn resp(words: &[&str]) -> String {
    use std::fmt::Write as _;
    let mut out = format!("*{}\r\n", words.len());
    for w in words {
        let _ = write!(out, "${}\r\n{w}\r\n", w.len());
    }
    out
}

/// Three GETs on one connection with only Python's standard library (`ssl`, `http.client`), trusting
/// the CA file; prints each status, then the connection's local port.
const PYTHON_CLIENT: &str = r#"
import http.client, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPSConnection(
    "127.0.0.1", port, context=ssl.create_default_context(cafile=ca))
for path in ["/index.html", "/data.json", "/missing.html"]:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    print(response.status)
print(conn.sock.getsockname()[1])
conn.close()
"#;

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn a_python_that_loads_libssl_after_the_watcher_started_is_recorded() {
    let cert = TestCert::make("python");
    let nginx = Nginx::with_tls("tls-python", &cert);
    let tls = nginx.tls_port();
    let watcher = Watcher::start("tls-python", &["http"], &["--port", &tls.to_string()]);
    // Started only now: `import ssl` maps libssl.so.3 into a process the watcher has never seen.
    let printed = run_client("python3", "-c", PYTHON_CLIENT, tls, &cert);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines[..3], ["200", "200", "404"], "Python's statuses");
    let local = addr(lines[3].parse().expect("Python printed its local port"));
    let (records, summary) = watcher.stop();

    let mut python: Vec<&Value> = records
        .iter()
        .filter(|r| r["side"] == "client" && r["local"] == local.as_str())
        .collect();
    python.sort_by_key(|r| r["start_unix_ns"].as_u64());
    assert_eq!(
        exchanges(&python),
        [
            exchange("GET", "/index.html", 200),
            exchange("GET", "/data.json", 200),
            exchange("GET", "/missing.html", 404),
        ],
        "Python's three requests on its connection from {local}: {records:#?}"
    );
    assert_all_tls(&python, "Python over HTTPS");
    assert!(
        python
            .iter()
            .all(|r| r["comm"] == "python3" && r["remote"] == addr(tls).as_str()),
        "recorded as python3's, to nginx's TLS port: {python:#?}"
    );
    assert!(
        records.iter().all(|r| r["protocol"] == "http"),
        "{records:#?}"
    );
    assert_nothing_unrecognised(&summary);
}

/// Asserts that each of `records` is the exchange `expected` (a test that repeated one request until
/// it was recorded knows only what each was, not how many).
fn assert_every_exchange(records: &[&Value], expected: &(String, String, Option<u64>), what: &str) {
    assert!(
        exchanges(records).iter().all(|e| e == expected),
        "{what}: {records:#?}"
    );
}

/// Repeats `request` (at most every 200 ms, for at most 20 s) until the watcher has exported a record
/// that `wanted` picks: probes put on a file found after the start take a round of the TLS finder, and
/// what passes before them is ciphertext.
fn until_recorded(
    watcher: &Watcher,
    what: &str,
    mut request: impl FnMut(),
    wanted: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        request();
        if watcher.records_so_far().iter().any(&wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not recorded within 20 s: {:#?}",
            watcher.records_so_far()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Long enough for the TLS finder's first round, which re-reads every process's maps whatever the
/// kernel's notes say: a process started after it is found by its notes or not at all.
const FINDER_SETTLED: Duration = Duration::from_secs(1);

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn a_go_server_started_after_the_watcher_is_found_by_its_exec_and_recorded() {
    let cert = TestCert::make("caddy-late");
    let port = free_port();
    let watcher = Watcher::start("tls-caddy-late", &["http"], &["--port", &port.to_string()]);
    thread::sleep(FINDER_SETTLED);
    // Started only now. On the raw `sys_exit` hook the finder no longer lists `/proc` on a timer:
    // the kernel's note of caddy's `execve` is what leads it to the binary.
    let caddy = Caddy::start_on(&cert, port);
    let cacert = cert.cert.to_string_lossy().into_owned();
    let url = format!("https://127.0.0.1:{port}/hello");
    until_recorded(
        &watcher,
        "caddy's side of a request, in plaintext",
        || {
            assert_eq!(
                curl(&["--http1.1", "--cacert", &cacert, &url]),
                "hi from caddy"
            );
        },
        |r| r["comm"] == "caddy" && r["side"] == "server" && is_tls(r),
    );
    let (records, summary) = watcher.stop();
    drop(caddy);

    let served = http_at(&records, "caddy", "server", port);
    assert_every_exchange(&served, &exchange("GET", "/hello", 200), "caddy's side");
    assert_all_tls(&served, "caddy, started after the watcher");
    assert_eq!(served[0]["http"]["response"]["body"], "hi from caddy");
    assert!(
        summary_count(&summary, "TLS connections decrypted") >= 1,
        "{summary}"
    );
}

/// Imports `ssl` (which loads libssl through the dynamic loader), prints `ready`, then for each line
/// on stdin GETs `/index.html` from 127.0.0.1:PORT over HTTPS, trusting CA, and prints the status.
const PYTHON_ASKED: &str = r#"
import http.client, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=ca)
print("ready", flush=True)
for _ in sys.stdin:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context)
    conn.request("GET", "/index.html")
    response = conn.getresponse()
    response.read()
    conn.close()
    print(response.status, flush=True)
"#;

/// Where the host's libssl may be.
const HOST_LIBSSL: [&str; 4] = [
    "/lib/x86_64-linux-gnu/libssl.so.3",
    "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    "/usr/lib64/libssl.so.3",
    "/usr/lib/libssl.so.3",
];

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn a_libssl_of_its_own_loaded_after_the_watcher_started_is_found_by_its_mapping_and_recorded() {
    let cert = TestCert::make("own-libssl");
    let nginx = Nginx::with_tls("tls-own-libssl", &cert);
    let tls = nginx.tls_port();
    // A copy is another file (another inode) than the host's libssl, which is probed at start: only
    // the finder can find it, once a process maps it.
    let dir = temp_path("own-libssl", "lib");
    std::fs::create_dir_all(&dir).expect("library directory");
    let host = HOST_LIBSSL
        .iter()
        .find(|p| Path::new(p).exists())
        .expect("the host's libssl.so.3 (cargo xtask test installs OpenSSL)");
    std::fs::copy(host, dir.join("libssl.so.3")).expect("copy libssl");
    let watcher = Watcher::start("tls-own-libssl", &["http"], &["--port", &tls.to_string()]);
    thread::sleep(FINDER_SETTLED);
    let mut python = Command::new("python3")
        .args(["-c", PYTHON_ASKED, &tls.to_string()])
        .arg(&cert.cert)
        .env("LD_LIBRARY_PATH", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut ask = python.stdin.take().expect("stdin");
    let mut answers = BufReader::new(python.stdout.take().expect("stdout"));
    let mut line = String::new();
    answers
        .read_line(&mut line)
        .expect("python says it is ready");
    assert_eq!(line.trim(), "ready");
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", python.id())).expect("maps");
    assert!(
        maps.contains(&*dir.to_string_lossy()),
        "python should have loaded the copy in {}: {maps}",
        dir.display()
    );
    until_recorded(
        &watcher,
        "python's request through its own libssl, in plaintext",
        || {
            writeln!(ask, "go").expect("ask python");
            line.clear();
            answers.read_line(&mut line).expect("python answers");
            assert_eq!(line.trim(), "200", "python's status");
        },
        |r| r["comm"] == "python3" && r["side"] == "client" && is_tls(r),
    );
    drop(ask);
    assert!(python.wait().expect("python exits").success());
    let (records, summary) = watcher.stop();
    let _ = std::fs::remove_dir_all(&dir);

    let python = http_at(&records, "python3", "client", tls);
    assert!(!python.is_empty(), "{records:#?}");
    assert_every_exchange(
        &python,
        &exchange("GET", "/index.html", 200),
        "python's side",
    );
    assert_all_tls(&python, "python through a libssl of its own");
    assert_nothing_unrecognised(&summary);
}

/// Two `https.get`s on one keep-alive socket, trusting the CA file through `ca:`; prints each status,
/// then the socket's local port.
const NODE_CLIENT: &str = r"
const https = require('https');
const fs = require('fs');
const [port, ca] = process.argv.slice(1);
const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
let local;
const get = (path) => new Promise((resolve, reject) => {
  https.get({ host: '127.0.0.1', port: Number(port), path, ca: fs.readFileSync(ca), agent }, (res) => {
    local = res.socket.localPort;
    res.resume();
    res.on('end', () => resolve(res.statusCode));
  }).on('error', reject);
});
(async () => {
  console.log(await get('/index.html'));
  console.log(await get('/data.json'));
  console.log(local);
  agent.destroy();
})().catch((e) => { console.error(e); process.exit(1); });
";

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn node_with_openssl_linked_in_is_recorded() {
    if let Err(e) = Command::new("node").arg("--version").output() {
        eprintln!(
            "SKIPPED node_with_openssl_linked_in_is_recorded: `node` cannot run here ({e}); \
             cargo xtask test installs Debian's nodejs when no node is on PATH"
        );
        return;
    }
    let cert = TestCert::make("node");
    let nginx = Nginx::with_tls("tls-node", &cert);
    let tls = nginx.tls_port();
    let watcher = Watcher::start("tls-node", &["http"], &["--port", &tls.to_string()]);
    let printed = run_client("node", "-e", NODE_CLIENT, tls, &cert);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines[..2], ["200", "200"], "node's statuses");
    let local = addr(lines[2].parse().expect("node printed its local port"));
    let (records, summary) = watcher.stop();

    let node = http_at(&records, "node", "client", tls);
    assert_eq!(
        exchanges(&node),
        [
            exchange("GET", "/index.html", 200),
            exchange("GET", "/data.json", 200),
        ],
        "node's two requests: {records:#?}"
    );
    assert_all_tls(&node, "node over HTTPS");
    assert!(
        node.iter().all(|r| r["local"] == local.as_str()),
        "both on node's one socket from {local}: {node:#?}"
    );
    assert_eq!(node[1]["http"]["response"]["body"], "{\"ok\":true}\n");
    assert!(
        records.iter().all(|r| r["protocol"] == "http"),
        "{records:#?}"
    );
    assert_nothing_unrecognised(&summary);
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn with_no_tls_an_https_connection_is_counted_as_encrypted_and_not_decoded() {
    let cert = TestCert::make("no-tls");
    let nginx = Nginx::with_tls("no-tls", &cert);
    let (tls, front) = (nginx.tls_port(), nginx.front);
    let watcher = Watcher::start(
        "no-tls",
        &["http"],
        &[
            "--no-tls",
            "--port",
            &tls.to_string(),
            "--port",
            &front.to_string(),
        ],
    );
    let ca = cert.cert.display().to_string();
    curl_discarding(
        &["--cacert", &ca],
        &[
            nginx.https_url("/index.html"),
            nginx.https_url("/data.json"),
        ],
    );
    // Plain HTTP beside it, to show the watcher was capturing all along.
    curl(&["-o", "/dev/null", &nginx.url("/index.html")]);
    let (records, summary) = watcher.stop();

    let on_tls: Vec<&Value> = records
        .iter()
        .filter(|r| r["local"] == addr(tls).as_str() || r["remote"] == addr(tls).as_str())
        .collect();
    assert!(
        on_tls.is_empty(),
        "--no-tls: nothing decoded on the TLS port: {on_tls:#?}"
    );
    let plain = [
        http_at(&records, "nginx", "server", front),
        http_at(&records, "curl", "client", front),
    ]
    .concat();
    assert_eq!(
        exchanges(&plain),
        [
            exchange("GET", "/index.html", 200),
            exchange("GET", "/index.html", 200),
        ],
        "the plain request, on both ends: {records:#?}"
    );
    assert_none_tls(&plain, "plain HTTP");
    assert_eq!(records.len(), 2, "nothing else: {records:#?}");
    assert_nothing_unrecognised(&summary);
    assert_eq!(
        summary_count(&summary, "encrypted connections"),
        2,
        "curl's one HTTPS connection, seen at both of its ends, is counted as encrypted: {summary}"
    );
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn caddy_with_go_crypto_tls_is_recorded_on_both_ends() {
    let cert = TestCert::make("caddy");
    let caddy = Caddy::start(&cert);
    let port = caddy.port;
    let watcher = Watcher::start("tls-caddy", &["http"], &["--port", &port.to_string()]);
    let note = tls_note(&watcher);
    assert!(
        note.contains("caddy"),
        "the stripped Go binary should be instrumented: {note}"
    );
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let cacert = cert.cert.to_string_lossy().into_owned();
    // HTTP/1.1: decrypted HTTP/2 is not decoded (README, "TLS").
    let fetched = curl(&[
        "--http1.1",
        "--cacert",
        &cacert,
        &url("/hello"),
        &url("/missing"),
    ]);
    assert_eq!(fetched, "hi from caddynope");
    curl(&[
        "--http1.1",
        "--cacert",
        &cacert,
        "--data",
        "x=1",
        &url("/hello"),
        "-o",
        "/dev/null",
    ]);
    let (records, summary) = watcher.stop();

    let expected = [
        exchange("GET", "/hello", 200),
        exchange("GET", "/missing", 404),
        exchange("POST", "/hello", 200),
    ];
    let served = http_at(&records, "caddy", "server", port);
    assert_eq!(exchanges(&served), expected, "caddy's side: {records:#?}");
    assert_all_tls(&served, "caddy (Go crypto/tls)");
    assert_eq!(served[0]["http"]["response"]["body"], "hi from caddy");
    let fetched = http_at(&records, "curl", "client", port);
    assert_eq!(exchanges(&fetched), expected, "curl's side: {records:#?}");
    assert_all_tls(&fetched, "curl to caddy");
    assert_eq!(records.len(), 6, "nothing else: {records:#?}");
    assert_nothing_unrecognised(&summary);
    assert_eq!(summary_count(&summary, "lost"), 0, "{summary}");
}

/// Go's TLS carries large bodies whole, on both of its ends: caddy serves a 300 000-byte file (many
/// records from its writes) and takes a 100 000-byte upload (many reads), and as a reverse proxy to
/// itself it is a Go TLS client that writes that upload and reads that file.
#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn go_tls_carries_large_bodies_whole_as_server_and_as_client() {
    const UPLOAD_BYTES: usize = 100_000;
    let cert = TestCert::make("caddy-big");
    let caddy = Caddy::start(&cert);
    let port = caddy.port;
    let upload = temp_path("caddy-upload", "bin");
    let upload_body: Vec<u8> = (0..UPLOAD_BYTES).map(|i| b'a' + (i % 23) as u8).collect();
    std::fs::write(&upload, &upload_body).expect("upload file");
    let watcher = Watcher::start("tls-caddy-big", &["http"], &["--port", &port.to_string()]);
    let _ = tls_note(&watcher);
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let cacert = cert.cert.to_string_lossy().into_owned();
    let fetched = curl(&[
        "--http1.1",
        "--cacert",
        &cacert,
        &url("/proxy/files/big.txt"),
    ]);
    assert_eq!(
        fetched.as_bytes(),
        Caddy::big_file(),
        "the file through the proxy"
    );
    curl(&[
        "--http1.1",
        "--cacert",
        &cacert,
        "-H",
        "Expect:",
        "--data-binary",
        &format!("@{}", upload.display()),
        &url("/proxy/hello"),
        "-o",
        "/dev/null",
    ]);
    let (records, summary) = watcher.stop();
    let _ = std::fs::remove_file(&upload);

    let served = http_at(&records, "caddy", "server", port);
    let proxied = http_at(&records, "caddy", "client", port);
    assert_all_tls(&served, "caddy serving");
    assert_all_tls(&proxied, "caddy proxying");
    let mut served_exchanges = exchanges(&served);
    served_exchanges.sort();
    assert_eq!(
        served_exchanges,
        [
            exchange("GET", "/files/big.txt", 200),
            exchange("GET", "/proxy/files/big.txt", 200),
            exchange("POST", "/hello", 200),
            exchange("POST", "/proxy/hello", 200),
        ],
        "caddy's server side: {served:#?}"
    );
    assert_eq!(
        exchanges(&proxied),
        [
            exchange("GET", "/files/big.txt", 200),
            exchange("POST", "/hello", 200),
        ],
        "caddy's client side: {proxied:#?}"
    );
    let file_start = String::from_utf8_lossy(&Caddy::big_file()[..64]).into_owned();
    for record in served.iter().chain(&proxied) {
        let (sent, bytes) = if record["http"]["method"] == "GET" {
            (&record["http"]["response"], Caddy::BIG_FILE_BYTES)
        } else {
            (&record["http"]["request"], UPLOAD_BYTES)
        };
        assert_eq!(
            sent["body_bytes"].as_u64(),
            Some(bytes as u64),
            "the whole body: {record:#}"
        );
        // A body longer than the capture comes as `{"len", "text", "truncated"}`.
        let body = sent["body"]
            .as_str()
            .or_else(|| sent["body"]["text"].as_str())
            .unwrap_or_default();
        let expected_start = if bytes == UPLOAD_BYTES {
            String::from_utf8_lossy(&upload_body[..64]).into_owned()
        } else {
            file_start.clone()
        };
        assert!(
            body.starts_with(&expected_start),
            "the body from its first byte: {record:#}"
        );
    }
    assert_nothing_unrecognised(&summary);
    assert_eq!(summary_count(&summary, "lost"), 0, "{summary}");
}

/// With `--pid`, a Go server's TLS is recorded for every request, whichever of its threads served it:
/// caddy serves eight parallel connections from several threads, and curl, which maps the same host
/// libssl as every other client, is filtered out.
#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn with_pid_a_go_servers_tls_is_recorded_for_all_of_its_parallel_requests() {
    const REQUESTS: usize = 24;
    let cert = TestCert::make("caddy-pid");
    let caddy = Caddy::start(&cert);
    let port = caddy.port;
    let watcher = Watcher::start(
        "tls-caddy-pid",
        &["http"],
        &["--pid", &caddy.pid().to_string()],
    );
    let note = tls_note(&watcher);
    assert!(
        note.contains("caddy"),
        "caddy should be instrumented: {note}"
    );
    let cacert = cert.cert.to_string_lossy().into_owned();
    let urls: Vec<String> = (0..REQUESTS)
        .map(|_| format!("https://127.0.0.1:{port}/hello"))
        .collect();
    curl_discarding(
        &[
            "--http1.1",
            "--cacert",
            &cacert,
            "--parallel",
            "--parallel-max",
            "8",
        ],
        &urls,
    );
    let (records, summary) = watcher.stop();

    let served = http_at(&records, "caddy", "server", port);
    assert_eq!(
        exchanges(&served),
        vec![exchange("GET", "/hello", 200); REQUESTS],
        "every request on caddy's side: {records:#?}"
    );
    assert_all_tls(&served, "caddy with --pid");
    assert_eq!(records.len(), REQUESTS, "nothing of curl's: {records:#?}");
    assert_nothing_unrecognised(&summary);
    assert_eq!(summary_count(&summary, "lost"), 0, "{summary}");
}
