//! HTTP end to end: nginx serving static files and proxying to a backend server block, driven by curl
//! (keep-alive, HEAD, chunked upload, `Expect: 100-continue`, a 5 MB download) and wrk; and Redis and
//! HTTP watched at once.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use serde_json::Value;

use crate::support::{
    curl, curl_discarding, wrk, Nginx, NodeServer, Redis, Watcher, BIG_FILE_BYTES,
};

const UPLOAD_BYTES: usize = 100_000;

fn http<'a>(records: &'a [Value], comm: &str, side: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["protocol"] == "http" && r["comm"] == comm && r["side"] == side)
        .collect()
}

fn target_of(r: &Value) -> &str {
    r["http"]["target"].as_str().unwrap_or_default()
}

fn with_target<'a>(records: &[&'a Value], target: &str) -> Vec<&'a Value> {
    records
        .iter()
        .copied()
        .filter(|r| target_of(r) == target)
        .collect()
}

fn header<'a>(message: &'a Value, name: &str) -> Option<&'a str> {
    message["headers"].as_array()?.iter().find_map(|h| {
        (h[0].as_str()?.eq_ignore_ascii_case(name))
            .then(|| h[1].as_str())
            .flatten()
    })
}

fn one<'a>(records: &[&'a Value], what: &str) -> &'a Value {
    assert_eq!(records.len(), 1, "exactly one {what}: {records:#?}");
    records[0]
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn nginx_and_curl_exchanges_are_framed_and_paired_on_every_hop() {
    let nginx = Nginx::start("curl");
    let (front, back) = (nginx.front.to_string(), nginx.back.to_string());
    let watcher = Watcher::start("http", &["http"], &["--port", &front, "--port", &back]);
    run_curl_cases(&nginx);
    let (records, summary) = watcher.stop();

    // No garbage: every record is HTTP, on our ports, with a response.
    assert!(
        records.iter().all(|r| r["protocol"] == "http"),
        "{records:#?}"
    );
    let unanswered: Vec<_> = records
        .iter()
        .filter(|r| r["http"]["status"].is_null())
        .collect();
    assert!(
        unanswered.is_empty(),
        "every request answered: {unanswered:#?}"
    );
    assert!(summary.contains(" 0 lost"), "{summary}");
    check_curl_side(&records);
    check_nginx_side(&records, &back);
}

/// Keep-alive over four URLs (one a 404), HEAD, a chunked upload, an `Expect: 100-continue` upload and a
/// 5 MB download, in that order.
fn run_curl_cases(nginx: &Nginx) {
    // Keep-alive: three URLs on one connection, then one 404.
    curl_discarding(
        &[],
        &[
            nginx.url("/index.html"),
            nginx.url("/data.json"),
            nginx.url("/api/users?id=7"),
            nginx.url("/missing.html"),
        ],
    );
    curl(&["-I", &nginx.url("/index.html")]);
    let upload = std::env::temp_dir().join(format!("watcher-e2e-upload-{}", std::process::id()));
    std::fs::write(&upload, vec![b'u'; UPLOAD_BYTES]).expect("upload file");
    let from_file = format!("@{}", upload.display());
    let chunked = [
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &from_file,
    ];
    assert_eq!(
        curl(&[&chunked[..], &[nginx.url("/upload/chunked").as_str()][..]].concat()),
        "stored\n"
    );
    let expect = ["-H", "Expect: 100-continue", "--data-binary", &from_file];
    assert_eq!(
        curl(&[&expect[..], &[nginx.url("/upload/expect").as_str()][..]].concat()),
        "stored\n"
    );
    curl(&["-o", "/dev/null", &nginx.url("/big.bin")]);
    let _ = std::fs::remove_file(&upload);
}

fn check_curl_side(records: &[Value]) {
    // Records of different connections can reach the store in either order (they are decoded by
    // different shards), so order by when each request started.
    let mut by_curl = http(records, "curl", "client");
    by_curl.sort_by_key(|r| r["start_unix_ns"].as_u64());
    let targets: Vec<&str> = by_curl.iter().map(|r| target_of(r)).collect();
    assert_eq!(
        targets,
        [
            "/index.html",
            "/data.json",
            "/api/users?id=7",
            "/missing.html",
            "/index.html",
            "/upload/chunked",
            "/upload/expect",
            "/big.bin",
        ],
        "curl's requests in order"
    );
    // Keep-alive: the first four share one connection.
    assert!(by_curl[..4]
        .iter()
        .all(|r| r["local"] == by_curl[0]["local"]));
    let statuses: Vec<_> = by_curl
        .iter()
        .map(|r| r["http"]["status"].as_u64())
        .collect();
    let ok = Some(200);
    assert_eq!(
        statuses,
        [ok, ok, ok, Some(404), ok, Some(201), Some(201), ok]
    );
    assert_eq!(by_curl[1]["http"]["response"]["body"], "{\"ok\":true}\n");

    let head = by_curl[4];
    assert_eq!(head["http"]["method"], "HEAD");
    assert_eq!(head["http"]["response"]["body_bytes"], 0);
    assert!(header(&head["http"]["response"], "content-length").is_some());

    for (r, how) in [(by_curl[5], "chunked"), (by_curl[6], "expect")] {
        let request = &r["http"]["request"];
        assert_eq!(r["http"]["method"], "POST");
        assert_eq!(request["body_bytes"], UPLOAD_BYTES as u64, "{how}: {r:#}");
        assert_eq!(r["http"]["response"]["body"], "stored\n", "{how}");
        if how == "chunked" {
            assert_eq!(header(request, "transfer-encoding"), Some("chunked"));
        } else {
            assert_eq!(header(request, "expect"), Some("100-continue"));
        }
    }

    let big = by_curl[7];
    assert_eq!(big["http"]["response"]["body_bytes"], BIG_FILE_BYTES);
    assert_eq!(big["http"]["response"]["body_truncated"], true);
    assert_eq!(big["truncated"], true);
}

fn check_nginx_side(records: &[Value], back: &str) {
    // nginx sends it with sendfile: still framed, counted in full, marked truncated.
    let served = http(records, "nginx", "server");
    let big_served = one(&with_target(&served, "/big.bin"), "/big.bin served");
    assert_eq!(big_served["http"]["response"]["body_bytes"], BIG_FILE_BYTES);
    assert!(big_served["response_bytes"].as_u64() > Some(BIG_FILE_BYTES));

    // Both hops of the proxy, each with its own latency.
    let inbound = one(
        &with_target(&served, "/api/users?id=7"),
        "inbound proxy request",
    );
    let proxied = http(records, "nginx", "client");
    let outbound = one(
        &with_target(&proxied, "/users?id=7"),
        "outbound proxy request",
    );
    assert_eq!(outbound["remote"], format!("127.0.0.1:{back}"));
    assert_eq!(
        outbound["http"]["response"]["body"],
        "{\"backend\":\"/users?id=7\"}"
    );
    let at_backend = one(
        &with_target(&served, "/users?id=7"),
        "request answered by the backend",
    );
    assert_eq!(at_backend["local"], format!("127.0.0.1:{back}"));
    let latency = |r: &Value| r["latency_ns"].as_u64().expect("latency");
    assert!(
        latency(inbound) > latency(outbound),
        "{inbound:#} {outbound:#}"
    );
    // The uploads crossed the proxy too, and their bodies with them.
    assert_eq!(with_target(&proxied, "/upload/chunked").len(), 1);
    assert_eq!(
        with_target(&served, "/upload/expect")
            .iter()
            .filter(|r| r["http"]["request"]["body_bytes"] == UPLOAD_BYTES as u64)
            .count(),
        2,
        "the expect upload at the front and at the backend"
    );
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn every_wrk_response_is_recorded_and_paired() {
    let nginx = Nginx::start("wrk");
    let front = nginx.front.to_string();
    let watcher = Watcher::start("wrk", &["http"], &["--port", &front, "--side", "client"]);
    let (completed, text) = wrk(4, "3s", &nginx.url("/index.html"));
    let (records, summary) = watcher.stop();
    let wrk: Vec<&Value> = records.iter().filter(|r| r["comm"] == "wrk").collect();
    let answered = wrk.iter().filter(|r| r["http"]["status"] == 200).count() as u64;
    let unanswered = wrk.iter().filter(|r| r["http"]["status"].is_null()).count() as u64;
    assert!(completed > 100, "wrk ran: {text}");
    assert!(summary.contains(" 0 lost"), "{summary}");
    // wrk counts the responses it read; requests still in flight when it stopped have none.
    assert!(
        (completed..=completed + 4).contains(&answered),
        "{answered} answered records for {completed} wrk responses"
    );
    assert!(unanswered <= 4, "{unanswered} unanswered");
    assert_eq!(
        answered + unanswered,
        wrk.len() as u64,
        "only 200s and in-flight requests"
    );
    assert!(wrk.iter().all(|r| target_of(r) == "/index.html"));
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn redis_and_http_are_watched_at_once_and_old_connections_resync() {
    let nginx = Nginx::start("both");
    let redis = Redis::start();
    // A keep-alive connection that is older than the watcher, with an exchange already behind it.
    let mut early = TcpStream::connect(("127.0.0.1", nginx.front)).expect("connect");
    let request = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: early\r\n\r\n");
    early
        .write_all(request("/index.html").as_bytes())
        .expect("send");
    read_response(&mut early);
    let (front, port) = (nginx.front.to_string(), redis.port.to_string());
    let watcher = Watcher::start("both", &[], &["--port", &front, "--port", &port]);
    early
        .write_all(request("/data.json").as_bytes())
        .expect("send");
    read_response(&mut early);
    curl(&["-o", "/dev/null", &nginx.url("/index.html")]);
    assert_eq!(redis.cli(&["SET", "both", "yes"]).trim(), "OK");
    let (records, _) = watcher.stop();

    let on = |port: &str| -> Vec<&Value> {
        let addr = format!("127.0.0.1:{port}");
        records
            .iter()
            .filter(|r| r["local"] == addr.as_str() || r["remote"] == addr.as_str())
            .collect()
    };
    assert!(on(&front).iter().all(|r| r["protocol"] == "http"));
    assert!(on(&port).iter().all(|r| r["protocol"] == "redis"));
    let served = http(&records, "nginx", "server");
    assert_eq!(
        with_target(&served, "/data.json").len(),
        1,
        "old connection resynced"
    );
    assert!(with_target(&served, "/index.html")
        .iter()
        .all(|r| r["http"]["host"] != "early"));
    assert!(records
        .iter()
        .any(|r| r["redis"]["command"] == "SET" && r["side"] == "server"));
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn a_node_server_answering_chunked_is_decoded_on_both_sides() {
    const REQUESTS: usize = 10;
    let node = NodeServer::chunked();
    let port = node.port.to_string();
    let watcher = Watcher::start("node", &["http"], &["--port", &port]);
    // One curl, one keep-alive connection, ten requests: each response is one writev of about
    // seventeen buffers from node, read by curl in one or more reads.
    let urls: Vec<String> = (0..REQUESTS)
        .map(|i| format!("http://127.0.0.1:{port}/r{i}"))
        .collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let fetched = curl(&urls);
    assert_eq!(
        fetched,
        (0..REQUESTS)
            .map(|i| NodeServer::body(&format!("/r{i}")))
            .collect::<String>(),
        "curl got every chunked body"
    );
    let (records, summary) = watcher.stop();

    for (comm, side) in [("node", "server"), ("curl", "client")] {
        let seen = http(&records, comm, side);
        assert_eq!(seen.len(), REQUESTS, "{comm} {side}: {seen:#?}");
        for i in 0..REQUESTS {
            let path = format!("/r{i}");
            let r = one(&with_target(&seen, &path), &format!("{comm} {side} {path}"));
            assert_eq!(r["http"]["status"], 200, "{comm} {side}: {r:#}");
            let response = &r["http"]["response"];
            assert_eq!(
                header(response, "Transfer-Encoding"),
                Some("chunked"),
                "{r:#}"
            );
            assert_eq!(response["body"], NodeServer::body(&path).as_str(), "{r:#}");
            assert_eq!(response["body_truncated"], false, "{r:#}");
            assert_eq!(r["truncated"], false, "{r:#}");
        }
    }
    assert!(summary.contains(" 0 lost"), "{summary}");
    assert!(summary.contains(" 0 sync losses"), "{summary}");
}

/// Reads one small response with a Content-Length from a keep-alive connection.
fn read_response(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).expect("response");
        assert!(n > 0, "nginx closed the connection");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|n| n.trim().parse().ok())
                .expect("Content-Length");
            if body.len() >= length {
                return;
            }
        }
    }
}
