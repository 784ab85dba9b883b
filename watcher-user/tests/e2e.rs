//! End-to-end tests: the real watcher binary with its real eBPF programs, a real redis-server on a
//! loopback port and real clients (redis-cli, redis-benchmark, a raw socket), asserting on the NDJSON
//! records watcher exports.
//!
//! They need root and the built binary, so they are `#[ignore]`d for plain `cargo test` and run by
//! `cargo xtask test` (which passes `--ignored` and `WATCHER_BIN`). Each test panics with a message
//! saying what was expected.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A redis-server on a free loopback port, killed on drop.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (cargo xtask test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            thread::sleep(Duration::from_millis(50));
        }
        Self { port, child }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn cli_stdin(&self, args: &[&str], input: &[u8]) -> String {
        let mut child = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        String::from_utf8_lossy(&child.wait_with_output().expect("redis-cli ends").stdout)
            .into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless watcher exporting to a temporary file.
struct Watcher {
    child: Child,
    output: PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl Watcher {
    fn start(name: &str, args: &[&str]) -> Self {
        let bin = std::env::var("WATCHER_BIN")
            .expect("WATCHER_BIN names the watcher binary (set by cargo xtask test)");
        let output =
            std::env::temp_dir().join(format!("watcher-e2e-{name}-{}.ndjson", std::process::id()));
        let mut child = Command::new(bin)
            .args(["watch", "redis", "--headless", "--json-output"])
            .arg(&output)
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("watcher starts");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("watcher should print 'capturing' within 30 s");
            if line.contains("capturing") {
                break;
            }
            assert!(!line.contains("error"), "watcher failed to start: {line}");
        }
        Self {
            child,
            output,
            stderr: rx,
        }
    }

    /// Stops with SIGINT (as Ctrl-C would) and returns the exported records and the summary line.
    fn stop(mut self) -> (Vec<Value>, String) {
        thread::sleep(Duration::from_millis(500));
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("watcher exits");
        assert!(exit.success(), "watcher exited with {exit}");
        let summary: Vec<String> = self.stderr.try_iter().collect();
        let text = std::fs::read_to_string(&self.output).expect("export file exists");
        let records = text
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON line {l:?}: {e}"))
            })
            .collect();
        let _ = std::fs::remove_file(&self.output);
        (records, summary.join("\n"))
    }
}

fn on_port(records: &[Value], side: &str, port: u16) -> Vec<Value> {
    let server = format!("127.0.0.1:{port}");
    records
        .iter()
        .filter(|r| {
            r["side"] == side && (r["local"] == server.as_str() || r["remote"] == server.as_str())
        })
        .cloned()
        .collect()
}

fn with_command<'a>(records: &'a [Value], command: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["redis"]["command"] == command)
        .collect()
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn commands_arguments_replies_and_errors_are_recorded_on_both_sides() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    let watcher = Watcher::start("basic", &["--port", &port]);
    assert_eq!(redis.cli(&["SET", "greeting", "hello world"]).trim(), "OK");
    assert_eq!(redis.cli(&["GET", "greeting"]).trim(), "hello world");
    redis.cli(&["RPUSH", "list", "a", "b", "c"]);
    redis.cli(&["LRANGE", "list", "0", "-1"]);
    let wrongtype = redis.cli(&["INCR", "list"]);
    assert!(
        wrongtype.contains("WRONGTYPE"),
        "redis-cli printed {wrongtype}"
    );
    let (records, summary) = watcher.stop();

    for side in ["server", "client"] {
        let seen = on_port(&records, side, redis.port);
        let set = with_command(&seen, "SET");
        assert_eq!(set.len(), 1, "{side}: one SET in {seen:#?}");
        assert_eq!(
            set[0]["redis"]["args"],
            serde_json::json!(["greeting", "hello world"])
        );
        assert_eq!(
            set[0]["redis"]["reply"],
            serde_json::json!({"type": "simple", "value": "OK"})
        );
        let get = with_command(&seen, "GET");
        assert_eq!(
            get[0]["redis"]["reply"],
            serde_json::json!({"type": "bulk", "value": "hello world"})
        );
        let lrange = with_command(&seen, "LRANGE");
        let items: Vec<&Value> = lrange[0]["redis"]["reply"]["value"]
            .as_array()
            .expect("array")
            .iter()
            .map(|i| &i["value"])
            .collect();
        assert_eq!(items, ["a", "b", "c"]);
        let incr = with_command(&seen, "INCR");
        assert_eq!(incr[0]["redis"]["reply"]["type"], "error");
        assert_eq!(incr[0]["error"], true);
        assert!(incr[0]["redis"]["reply"]["value"]
            .as_str()
            .expect("text")
            .starts_with("WRONGTYPE"));
        for r in &seen {
            assert_eq!(r["schema"], 1);
            assert!(
                r["latency_ns"].as_u64().is_some_and(|l| l > 0),
                "latency of {r}"
            );
            assert!(r["end_unix_ns"].as_u64() >= r["start_unix_ns"].as_u64());
        }
    }
    let server_side = on_port(&records, "server", redis.port);
    assert!(
        server_side.iter().all(|r| r["comm"] == "redis-server"),
        "server records come from redis-server"
    );
    assert!(summary.contains(" 0 lost"), "no loss expected: {summary}");
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn pipelined_benchmark_pairs_every_request_in_order() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    let watcher = Watcher::start("pipeline", &["--port", &port, "--side", "server"]);
    let status = Command::new("redis-benchmark")
        .args([
            "-p", &port, "-c", "4", "-n", "4000", "-P", "16", "-t", "set,get", "-q",
        ])
        .stdout(Stdio::null())
        .status()
        .expect("redis-benchmark runs");
    assert!(status.success());
    let (records, summary) = watcher.stop();
    let seen = on_port(&records, "server", redis.port);
    let sets = with_command(&seen, "SET");
    let gets = with_command(&seen, "GET");
    assert_eq!(sets.len(), 4000, "every SET recorded ({summary})");
    assert_eq!(gets.len(), 4000, "every GET recorded ({summary})");
    assert!(
        sets.iter().all(|r| r["redis"]["reply"]["value"] == "OK"),
        "each SET paired with its +OK"
    );
    assert!(
        gets.iter().all(|r| r["redis"]["reply"]["type"] == "bulk"),
        "each GET paired with a bulk reply"
    );
    assert!(
        records.iter().all(|r| r["side"] == "server"),
        "--side server keeps only server records"
    );
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn a_one_mebibyte_value_is_counted_in_full_and_marked_truncated() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    let watcher = Watcher::start("truncate", &["--port", &port, "--side", "server"]);
    let value = vec![b'x'; 1 << 20];
    assert_eq!(redis.cli_stdin(&["-x", "SET", "big"], &value).trim(), "OK");
    redis.cli(&["STRLEN", "big"]);
    redis.cli(&["GET", "big"]);
    let (records, _) = watcher.stop();
    let seen = on_port(&records, "server", redis.port);
    let set = with_command(&seen, "SET");
    assert_eq!(set.len(), 1, "one SET in {seen:?}");
    // redis-cli -x appends the stdin as the last argument; the value is larger than one syscall's capture.
    let arg = &set[0]["redis"]["args"][1];
    assert_eq!(arg["len"], 1 << 20, "true length kept: {arg}");
    assert_eq!(set[0]["truncated"], true);
    assert!(set[0]["request_bytes"].as_u64().expect("bytes") > 1 << 20);
    assert_eq!(
        set[0]["redis"]["reply"]["value"], "OK",
        "the reply after the big value still pairs"
    );
    assert_eq!(
        with_command(&seen, "STRLEN")[0]["redis"]["reply"]["value"],
        1 << 20
    );
    let get = with_command(&seen, "GET");
    assert_eq!(get[0]["redis"]["reply"]["value"]["len"], 1 << 20);
    assert_eq!(get[0]["truncated"], true);
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn connections_open_before_the_watcher_started_are_traced() {
    let redis = Redis::start();
    let mut early = TcpStream::connect(("127.0.0.1", redis.port)).expect("connect");
    early.write_all(b"*1\r\n$4\r\nPING\r\n").expect("write");
    let mut reply = [0u8; 7];
    std::io::Read::read_exact(&mut early, &mut reply).expect("PONG");
    let port = redis.port.to_string();
    let watcher = Watcher::start("preexisting", &["--port", &port]);
    early
        .write_all(b"*3\r\n$3\r\nSET\r\n$5\r\nearly\r\n$3\r\nyes\r\n")
        .expect("write");
    let mut ok = [0u8; 5];
    std::io::Read::read_exact(&mut early, &mut ok).expect("+OK");
    let (records, _) = watcher.stop();
    for side in ["server", "client"] {
        let seen = on_port(&records, side, redis.port);
        let set = with_command(&seen, "SET");
        assert_eq!(
            set.len(),
            1,
            "{side}: the SET on the early connection is recorded: {records:?}"
        );
        assert_eq!(set[0]["redis"]["args"], serde_json::json!(["early", "yes"]));
        assert_eq!(set[0]["redis"]["reply"]["value"], "OK");
    }
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn transactions_and_pubsub_pair_correctly() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    let watcher = Watcher::start("txpubsub", &["--port", &port, "--side", "server"]);
    redis.cli_stdin(&[], b"MULTI\nSET counter 1\nINCR counter\nEXEC\n");
    let mut subscriber = Command::new("redis-cli")
        .args(["-p", &port, "SUBSCRIBE", "news"])
        .stdout(Stdio::null())
        .spawn()
        .expect("subscriber");
    thread::sleep(Duration::from_millis(500));
    assert_eq!(redis.cli(&["PUBLISH", "news", "extra"]).trim(), "1");
    thread::sleep(Duration::from_millis(300));
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    let (records, _) = watcher.stop();
    let seen = on_port(&records, "server", redis.port);
    assert_eq!(
        with_command(&seen, "MULTI")[0]["redis"]["reply"]["value"],
        "OK"
    );
    let queued = with_command(&seen, "INCR");
    assert_eq!(queued[0]["redis"]["reply"]["value"], "QUEUED");
    let exec = with_command(&seen, "EXEC");
    assert_eq!(exec[0]["redis"]["reply"]["type"], "array");
    assert_eq!(
        exec[0]["redis"]["reply"]["value"][1],
        serde_json::json!({"type": "integer", "value": 2})
    );
    let subscribe = with_command(&seen, "SUBSCRIBE");
    assert_eq!(subscribe.len(), 1, "{seen:?}");
    let pushes: Vec<&Value> = seen
        .iter()
        .filter(|r| r["redis"]["kind"] == "push")
        .collect();
    assert_eq!(
        pushes.len(),
        1,
        "the published message is its own record: {seen:?}"
    );
    let message: Vec<&Value> = pushes[0]["redis"]["reply"]["value"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| &v["value"])
        .collect();
    assert_eq!(message, ["message", "news", "extra"]);
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux must be installed (cargo xtask test installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for_screen(session: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if screen.contains(what) {
            return screen;
        }
        assert!(
            Instant::now() < deadline,
            "screen never showed {what:?}; last screen:\n{screen}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn the_terminal_ui_shows_traffic_filters_and_quits_cleanly() {
    let redis = Redis::start();
    let bin = std::env::var("WATCHER_BIN").expect("WATCHER_BIN names the watcher binary");
    let session = format!("watcher-e2e-{}", std::process::id());
    let marker = std::env::temp_dir().join(format!("{session}.exit"));
    let command = format!(
        "{bin} watch redis --port {}; echo $? > {}; sleep 60",
        redis.port,
        marker.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "160",
        "-y",
        "30",
        &command,
    ]);
    wait_for_screen(&session, "seen 0");
    redis.cli(&["SET", "tui-key", "tui-value"]);
    redis.cli(&["GET", "tui-key"]);
    let screen = wait_for_screen(&session, "tui-value");
    assert!(
        screen.contains("SET") && screen.contains("GET"),
        "both commands listed:\n{screen}"
    );

    tmux(&["send-keys", "-t", &session, "/", "G", "E", "T"]);
    let filtered = wait_for_screen(&session, "filter: GET");
    let rows: Vec<&str> = filtered.lines().filter(|l| l.contains("tui-key")).collect();
    assert!(
        !rows.is_empty() && rows.iter().all(|l| l.contains(" GET ")),
        "only GET rows remain:\n{filtered}"
    );

    tmux(&["send-keys", "-t", &session, "Enter", "q"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "watcher did not exit after q");
        thread::sleep(Duration::from_millis(200));
    }
    let code = std::fs::read_to_string(&marker).expect("exit code");
    let after = tmux(&["capture-pane", "-p", "-t", &session]);
    tmux(&["kill-session", "-t", &session]);
    let _ = std::fs::remove_file(&marker);
    assert_eq!(code.trim(), "0", "watcher exit code");
    assert!(
        !after.contains("seen "),
        "the alternate screen is left on exit:\n{after}"
    );
}
