//! What every end-to-end test needs: free ports, a redis-server, and a headless watcher exporting to a
//! file that is read back as JSON.

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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A redis-server on a free loopback port, killed on drop.
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    pub fn start() -> Self {
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

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn cli_stdin(&self, args: &[&str], input: &[u8]) -> String {
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
pub struct Watcher {
    child: Child,
    output: PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl Watcher {
    /// Starts `watcher watch PROTOCOL --headless ...ARGS`; an empty `protocol` watches every protocol.
    pub fn start(name: &str, protocol: &[&str], args: &[&str]) -> Self {
        let output = temp_path(name, "ndjson");
        let mut child = Command::new(watcher_bin())
            .arg("watch")
            .args(protocol)
            .args(["--headless", "--json-output"])
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
    pub fn stop(mut self) -> (Vec<Value>, String) {
        thread::sleep(Duration::from_millis(500));
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("watcher exits");
        assert!(exit.success(), "watcher exited with {exit}");
        let summary: Vec<String> = self.stderr.try_iter().collect();
        let records = read_records(&self.output);
        let _ = std::fs::remove_file(&self.output);
        (records, summary.join("\n"))
    }
}

pub fn on_port(records: &[Value], side: &str, port: u16) -> Vec<Value> {
    let server = format!("127.0.0.1:{port}");
    records
        .iter()
        .filter(|r| {
            r["side"] == side && (r["local"] == server.as_str() || r["remote"] == server.as_str())
        })
        .cloned()
        .collect()
}

pub fn with_command<'a>(records: &'a [Value], command: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["redis"]["command"] == command)
        .collect()
}

/// The watcher binary under test.
pub fn watcher_bin() -> String {
    std::env::var("WATCHER_BIN")
        .expect("WATCHER_BIN names the watcher binary (set by cargo xtask test)")
}

/// A temporary file path for this test process.
pub fn temp_path(name: &str, extension: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "watcher-e2e-{name}-{}.{extension}",
        std::process::id()
    ))
}

/// Reads an NDJSON export; every line must be JSON and valid against `docs/record.schema.json`.
pub fn read_records(path: &std::path::Path) -> Vec<Value> {
    let schema: Value = serde_json::from_str(include_str!("../../../docs/record.schema.json"))
        .expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let text = std::fs::read_to_string(path).expect("export file exists");
    text.lines()
        .map(|l| {
            let record: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON line {l:?}: {e}"));
            let errors: Vec<String> = validator
                .iter_errors(&record)
                .map(|e| format!("{e} at {}", e.instance_path))
                .collect();
            assert!(errors.is_empty(), "{l} breaks the schema: {errors:#?}");
            record
        })
        .collect()
}

/// What a finished `watcher record` run left behind.
pub struct Recorded {
    /// Its exit status (None when killed by a signal).
    pub code: Option<i32>,
    pub stderr: String,
    pub records: Vec<Value>,
    /// The export (left in place; the test removes it).
    pub path: PathBuf,
}

/// Runs `watcher record ARGS --json-output FILE -- CMD...` to completion.
pub fn record(name: &str, args: &[&str], command: &[&str]) -> Recorded {
    let output = temp_path(name, "ndjson");
    let run = Command::new(watcher_bin())
        .arg("record")
        .args(args)
        .arg("--json-output")
        .arg(&output)
        .arg("--")
        .args(command)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("watcher record runs");
    Recorded {
        code: run.status.code(),
        stderr: String::from_utf8_lossy(&run.stderr).into_owned(),
        // A command that never ran leaves no file.
        records: if output.exists() {
            read_records(&output)
        } else {
            Vec::new()
        },
        path: output,
    }
}
