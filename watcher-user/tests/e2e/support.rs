//! What every end-to-end test needs: free ports, a redis-server, a MariaDB server, nginx and curl (each
//! server also with TLS, using a throwaway certificate), the Python that has the test clients, and a
//! headless watcher exporting to a file that is read back as JSON (or started with its export where the
//! test says).

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader, Lines, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, ChildStderr, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// Waits up to ten seconds for `what` to accept connections on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A redis-server on a free loopback port, killed on drop and its working directory removed.
pub struct Redis {
    /// The port it listens on: its TLS port when started with [`Redis::start_tls`].
    pub port: u16,
    /// The CA file `cli` and `cli_stdin` trust when the server speaks TLS.
    ca: Option<PathBuf>,
    /// Its working directory (snapshots), removed on drop.
    dir: PathBuf,
    child: Child,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A redis-server started with extra ARGS (e.g. `--requirepass`).
    pub fn start_with(args: &[&str]) -> Self {
        let port = free_port();
        Self::spawn(port, &["--port", &port.to_string()], args, None)
    }

    /// A redis-server that speaks only TLS (`--tls-port`, `--port 0`) with CERT, not asking clients for
    /// certificates; `cli` and `cli_stdin` connect with `--tls --cacert`.
    pub fn start_tls(cert: &TestCert) -> Self {
        let port = free_port();
        let (cert_file, key_file) = (
            cert.cert.display().to_string(),
            cert.key.display().to_string(),
        );
        let tls = [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &cert_file,
            "--tls-key-file",
            &key_file,
            "--tls-ca-cert-file",
            &cert_file,
            "--tls-auth-clients",
            "no",
        ];
        Self::spawn(port, &tls, &[], Some(cert.cert.clone()))
    }

    fn spawn(port: u16, listen: &[&str], args: &[&str], ca: Option<PathBuf>) -> Self {
        // Snapshots (a replica's full sync from disk) go here, never into the source tree.
        let dir = std::env::temp_dir().join(format!("watcher-e2e-redis-{port}"));
        std::fs::create_dir_all(&dir).expect("redis directory");
        let child = Command::new("redis-server")
            .args(listen)
            .args([
                "--dir",
                &dir.display().to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (cargo xtask test installs it)");
        wait_for_port(port, "redis-server");
        Self {
            port,
            ca,
            dir,
            child,
        }
    }

    /// `redis-cli -p PORT`, with `--tls --cacert` when the server speaks TLS.
    fn redis_cli(&self) -> Command {
        let mut cli = Command::new("redis-cli");
        cli.arg("-p").arg(self.port.to_string());
        if let Some(ca) = &self.ca {
            cli.arg("--tls").arg("--cacert").arg(ca);
        }
        cli
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = self
            .redis_cli()
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `redis-benchmark` against this server with ARGS (`-p` and `-q` are added) and asserts that
    /// it succeeded: the load every capture test needs to have happened.
    pub fn benchmark(&self, args: &[&str]) {
        let port = self.port.to_string();
        let status = Command::new("redis-benchmark")
            .args(["-p", &port, "-q"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("redis-benchmark runs");
        assert!(status.success(), "redis-benchmark {args:?}: {status}");
    }

    pub fn cli_stdin(&self, args: &[&str], input: &[u8]) -> String {
        let mut child = self
            .redis_cli()
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A MariaDB server on a free loopback port with a data directory of its own, made for the test, and a
/// user `app` (password [`MariaDb::PASSWORD`]) who may do anything, with a database `shop`. Killed and
/// removed on drop.
pub struct MariaDb {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl MariaDb {
    pub const PASSWORD: &'static str = "app-secret-pw";

    pub fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("watcher-e2e-mariadb-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("MariaDB directory");
        let data = dir.join("data");
        let install = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
            ])
            .arg(format!("--datadir={}", data.display()))
            .output()
            .expect(
                "mariadb-install-db must be installed (cargo xtask test installs mariadb-server)",
            );
        assert!(
            install.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        let child = Command::new("mariadbd")
            .args([
                "--no-defaults",
                "--user=root",
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        wait_for_port(port, "mariadbd");
        let server = Self { port, dir, child };
        server.admin(&format!(
            "DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES; \
             CREATE USER 'app'@'localhost' IDENTIFIED BY '{0}'; \
             CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY '{0}'; \
             GRANT ALL ON *.* TO 'app'@'localhost'; GRANT ALL ON *.* TO 'app'@'127.0.0.1'; \
             CREATE DATABASE shop;",
            Self::PASSWORD
        ));
        server
    }

    /// Runs SQL as root over the server's Unix socket (not traced: no TCP).
    pub fn admin(&self, sql: &str) {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-uroot"])
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["-e", sql])
            .output()
            .expect("mariadb client runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the `mariadb` client as `app` over TCP with extra ARGS; returns what it printed.
    pub fn client(&self, args: &[&str]) -> String {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-h127.0.0.1", "-uapp"])
            .arg(format!("-P{}", self.port))
            .arg(format!("-p{}", Self::PASSWORD))
            .args(args)
            .output()
            .expect("mariadb client runs");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, valid for a day, made with `openssl` when
/// the test starts: servers use `cert` and `key`, and clients trust `cert` as their CA. Removed on drop.
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    dir: PathBuf,
}

impl TestCert {
    pub fn make(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("watcher-e2e-cert-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("certificate directory");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl must be installed (cargo xtask test installs it)");
        assert!(
            out.status.success(),
            "openssl could not make a test certificate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { cert, key, dir }
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the Python SCRIPT with the interpreter that has the test clients (`WATCHER_PYTHON`, set by
/// cargo xtask test); returns its standard output, failing with its errors when it fails.
pub fn python(script: &str, args: &[&str]) -> String {
    let python = std::env::var("WATCHER_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{python} runs: {e}"));
    assert!(
        out.status.success(),
        "the Python client failed (is WATCHER_PYTHON the venv cargo xtask test makes?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child process killed if it is dropped still running: a test that fails before stopping a watcher
/// must not leave it running (it would hold the test run's output open, and its programs attached,
/// after the test binary has exited).
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `watcher watch ARGS` (add `--headless` and an export) with its standard output going to
/// `stdout`, and returns once it is capturing, with the rest of its stderr to read (keep it open: watcher
/// fails on a stderr closed under it).
pub fn start_watching(args: &[&str], stdout: Stdio) -> (Reaped, Lines<BufReader<ChildStderr>>) {
    let mut watcher = Reaped(
        Command::new(watcher_bin())
            .arg("watch")
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("watcher starts"),
    );
    let mut stderr = BufReader::new(watcher.0.stderr.take().expect("stderr")).lines();
    for line in stderr.by_ref() {
        let line = line.expect("watcher's stderr is text");
        assert!(!line.contains("error"), "watcher failed to start: {line}");
        if line.contains("capturing") {
            return (watcher, stderr);
        }
    }
    panic!("watcher ended before capturing");
}

/// [`start_watching`] headless on the server side of the Redis on `port`, without TLS, exporting to
/// `output` (`-` for its standard output, which goes to `stdout`), with `extra` arguments.
pub fn watch_redis_server(
    port: u16,
    output: &str,
    extra: &[&str],
    stdout: Stdio,
) -> (Reaped, Lines<BufReader<ChildStderr>>) {
    let port = port.to_string();
    let common = [
        "redis",
        "--headless",
        "--json-output",
        output,
        "--port",
        &port,
        "--side",
        "server",
        "--no-tls",
    ];
    start_watching(&[&common[..], extra].concat(), stdout)
}

/// Waits up to `limit` for `child` to exit by itself.
pub fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A headless watcher exporting to a temporary file.
pub struct Watcher {
    child: Reaped,
    output: PathBuf,
    stderr: mpsc::Receiver<String>,
    notes: Vec<String>,
}

impl Watcher {
    /// Starts `watcher watch PROTOCOL --headless ...ARGS`; an empty `protocol` watches every protocol.
    pub fn start(name: &str, protocol: &[&str], args: &[&str]) -> Self {
        Self::start_with_env(name, protocol, args, &[])
    }

    /// [`Watcher::start`] with extra environment variables.
    pub fn start_with_env(
        name: &str,
        protocol: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let output = temp_path(name, "ndjson");
        let mut child = Command::new(watcher_bin())
            .arg("watch")
            .args(protocol)
            .args(["--headless", "--json-output"])
            .arg(&output)
            .args(args)
            .envs(env.iter().copied())
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
        let mut notes = Vec::new();
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("watcher should print 'capturing' within 30 s");
            if line.contains("capturing") {
                break;
            }
            assert!(!line.contains("error"), "watcher failed to start: {line}");
            notes.push(line);
        }
        Self {
            child: Reaped(child),
            output,
            stderr: rx,
            notes,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// What watcher printed on stderr before "capturing" (its start-up notes), one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The records exported so far, complete lines only (the exporter flushes after each burst).
    pub fn records_so_far(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Stops with SIGINT (as Ctrl-C would) and returns the exported records and the summary line.
    pub fn stop(mut self) -> (Vec<Value>, String) {
        thread::sleep(Duration::from_millis(500));
        let status = Command::new("kill")
            .args(["-INT", &self.child.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.0.wait().expect("watcher exits");
        assert!(exit.success(), "watcher exited with {exit}");
        // The reader thread may not have passed on the last lines (the summary) when the child is
        // reaped: read until the pipe closes, which it does as watcher exits (the child that detaches
        // its programs closes its standard streams first). Bounded all the same.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut summary = Vec::new();
        while let Ok(line) = self
            .stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            summary.push(line);
        }
        let records = read_records(&self.output);
        let _ = std::fs::remove_file(&self.output);
        (records, summary.join("\n"))
    }
}

/// The number the headless summary line prints before WHAT (e.g. `"unrecognised connections"`).
///
/// # Panics
/// When the summary has no such count.
pub fn summary_count(summary: &str, what: &str) -> u64 {
    summary
        .split_once(&format!(" {what}"))
        .and_then(|(before, _)| before.rsplit([' ', '(', ',']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of {what} in the summary: {summary}"))
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

/// Bytes of the file nginx serves as `/big.bin`.
pub const BIG_FILE_BYTES: u64 = 5 * 1024 * 1024;

/// nginx on two loopback ports: `front` serves files from a temporary directory and proxies `/api/`
/// and `/upload` to `back`, which answers by itself. Started with [`Nginx::with_tls`], `front`'s server
/// also listens with TLS on a third port. Stopped on drop.
pub struct Nginx {
    pub front: u16,
    pub back: u16,
    /// The TLS port of `front`'s server, when there is one.
    tls: Option<u16>,
    dir: PathBuf,
    child: Child,
}

impl Nginx {
    pub fn start(name: &str) -> Self {
        Self::with_front_locations(name, "")
    }

    /// Also serves `locations` (nginx `location` blocks) on `front`.
    pub fn with_front_locations(name: &str, locations: &str) -> Self {
        Self::build(name, locations, None)
    }

    /// `front`'s server also listens with TLS (CERT; 1.3 and 1.2, where nginx 1.22 alone would not
    /// offer 1.3) on [`Nginx::tls_port`]: the same files, the same proxying to the plaintext `back`.
    pub fn with_tls(name: &str, cert: &TestCert) -> Self {
        Self::build(name, "", Some(cert))
    }

    fn build(name: &str, locations: &str, cert: Option<&TestCert>) -> Self {
        let dir =
            std::env::temp_dir().join(format!("watcher-e2e-nginx-{name}-{}", std::process::id()));
        let www = dir.join("www");
        std::fs::create_dir_all(&www).expect("nginx directory");
        std::fs::write(www.join("index.html"), "<h1>hello from nginx</h1>\n").expect("file");
        std::fs::write(www.join("data.json"), "{\"ok\":true}\n").expect("file");
        let big: Vec<u8> = (0..BIG_FILE_BYTES).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(www.join("big.bin"), big).expect("file");
        let (front, back) = (free_port(), free_port());
        let tls = cert.map(|cert| (free_port(), cert));
        let tls_listen = tls.map_or_else(String::new, |(port, cert)| {
            format!(
                "listen 127.0.0.1:{port} ssl;
    ssl_certificate {};
    ssl_certificate_key {};
    ssl_protocols TLSv1.2 TLSv1.3;",
                cert.cert.display(),
                cert.key.display()
            )
        });
        let tls = tls.map(|(port, _)| port);
        let d = dir.display();
        let config = format!(
            "worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  types {{ text/html html; application/json json; application/octet-stream bin; }}
  server {{
    listen 127.0.0.1:{front};
    {tls_listen}
    root {d}/www;
    location /api/ {{ proxy_pass http://127.0.0.1:{back}/; }}
    location /upload {{ proxy_pass http://127.0.0.1:{back}/upload; }}
    {locations}
  }}
  server {{
    listen 127.0.0.1:{back};
    location / {{ default_type application/json; return 200 '{{\"backend\":\"$request_uri\"}}'; }}
    location /upload {{ return 201 'stored\\n'; }}
  }}
}}
"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).expect("nginx.conf");
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx must be installed (cargo xtask test installs it)");
        for port in [front, back].into_iter().chain(tls) {
            wait_for_port(port, "nginx");
        }
        Self {
            front,
            back,
            tls,
            dir,
            child,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.front)
    }

    /// The TLS port of `front`'s server.
    ///
    /// # Panics
    /// When nginx was started without TLS.
    pub fn tls_port(&self) -> u16 {
        self.tls
            .expect("nginx was started without TLS: use Nginx::with_tls")
    }

    /// The `https://` URL of PATH on [`Nginx::tls_port`].
    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.tls_port())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master stops its workers before it exits.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Node.js HTTP server (the `http` module) on a loopback port that answers every request with a
/// chunked body of [`NODE_PARTS`] writes: `part I of PATH` lines, then `end`. Node sends such a response
/// as one `writev` with three buffers per chunk, far more than eight. Stopped on drop.
pub struct NodeServer {
    pub port: u16,
    child: Child,
}

/// `res.write` calls per response of [`NodeServer`], before its `res.end("end\n")`.
pub const NODE_PARTS: usize = 4;

impl NodeServer {
    pub fn chunked() -> Self {
        let port = free_port();
        let script = format!(
            "require('http').createServer((req, res) => {{
               res.setHeader('Content-Type', 'text/plain');
               for (let i = 0; i < {NODE_PARTS}; i++) res.write(`part ${{i}} of ${{req.url}}\\n`);
               res.end('end\\n');
             }}).listen({port}, '127.0.0.1');"
        );
        let child = Command::new("node")
            .args(["-e", &script])
            .stdout(Stdio::null())
            .spawn()
            .expect("node must be installed (PLATFORM.md: node v20 is on the machines)");
        wait_for_port(port, "node");
        Self { port, child }
    }

    /// The body every response of the server to `path` carries, once its chunked framing is removed.
    pub fn body(path: &str) -> String {
        let mut body = String::new();
        for i in 0..NODE_PARTS {
            let _ = writeln!(body, "part {i} of {path}");
        }
        body.push_str("end\n");
        body
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One curl fetching every URL of `urls` in order (on one keep-alive connection), bodies discarded,
/// after the options in `args`.
pub fn curl_discarding(args: &[&str], urls: &[String]) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(urls.iter().flat_map(|_| ["-o", "/dev/null"]));
    all.extend(urls.iter().map(String::as_str));
    curl(&all);
}

pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl must be installed (cargo xtask test installs it)");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Caddy (a Go program with its own `crypto/tls`, stripped) serving HTTPS with `cert` on a loopback
/// port: `/hello` answers 200, `/missing` 404. Its state stays in a temporary directory; stopped on drop.
pub struct Caddy {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl Caddy {
    /// Bytes of the file caddy serves at `/files/big.txt`.
    pub const BIG_FILE_BYTES: usize = 300_000;

    pub fn start(cert: &TestCert) -> Self {
        Self::start_on(cert, free_port())
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The content of `/files/big.txt`: lines that say where they are.
    pub fn big_file() -> Vec<u8> {
        (0..)
            .flat_map(|line| format!("line {line:08} of the big file\n").into_bytes())
            .take(Self::BIG_FILE_BYTES)
            .collect()
    }

    /// Serves HTTPS on `port` (a free one: see [`free_port`]): `/hello`, `/missing` (404), files under
    /// `/files/` ([`Self::big_file`] at `/files/big.txt`), and `/proxy/...` passed on to its own
    /// `/...` over HTTPS/1.1, so caddy is a Go TLS client too.
    pub fn start_on(cert: &TestCert, port: u16) -> Self {
        let dir =
            std::env::temp_dir().join(format!("watcher-e2e-caddy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("www")).expect("caddy directory");
        std::fs::write(dir.join("www/big.txt"), Self::big_file()).expect("caddy's big file");
        let config = format!(
            "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {d}/data\n}}\n\
             https://127.0.0.1:{port} {{\n\ttls {cert} {key}\n\
             \trespond /hello \"hi from caddy\" 200\n\trespond /missing \"nope\" 404\n\
             \thandle_path /files/* {{\n\t\troot * {d}/www\n\t\tfile_server\n\t}}\n\
             \thandle /proxy/* {{\n\t\turi strip_prefix /proxy\n\
             \t\treverse_proxy https://127.0.0.1:{port} {{\n\
             \t\t\ttransport http {{\n\t\t\t\ttls_trusted_ca_certs {cert}\n\
             \t\t\t\tversions 1.1\n\t\t\t}}\n\t\t}}\n\t}}\n}}\n",
            d = dir.display(),
            cert = cert.cert.display(),
            key = cert.key.display(),
        );
        let caddyfile = dir.join("Caddyfile");
        std::fs::write(&caddyfile, config).expect("Caddyfile");
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", &dir)
            .env("XDG_CONFIG_HOME", &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("caddy must be installed (cargo xtask test installs it)");
        wait_for_port(port, "caddy");
        Self { port, dir, child }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs wrk (one thread, `connections` connections, for `duration`) against `url`; returns the
/// requests it completed and its whole output.
pub fn wrk(connections: u64, duration: &str, url: &str) -> (u64, String) {
    let out = Command::new("wrk")
        .args([
            "-t",
            "1",
            "-c",
            &connections.to_string(),
            "-d",
            duration,
            url,
        ])
        .output()
        .expect("wrk must be installed (cargo xtask test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let completed = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .map(|(n, _)| n.to_owned())
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("wrk's request count in {text}"));
    (completed, text)
}

/// A cgroup (v2) made for a test below the cgroup v2 mount, removed at the end with what it holds.
pub struct TestCgroup {
    /// Its directory.
    pub dir: PathBuf,
    /// Its path below the mount, from `/`.
    pub path: String,
}

impl TestCgroup {
    /// Makes `relative` (below the mount; missing parents too).
    pub fn make(relative: &str) -> Self {
        let mount = cgroup2_mount();
        let dir = mount.join(relative);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot make the cgroup {}: {e}", dir.display()));
        Self {
            dir,
            path: format!("/{relative}"),
        }
    }

    /// Runs the shell script `script` inside this cgroup (the shell moves itself in first) to its end.
    pub fn run(&self, script: &str) {
        let procs = self.dir.join("cgroup.procs");
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("echo $$ > {} && {script}", procs.display()))
            .stdout(Stdio::null())
            .status()
            .expect("sh runs");
        assert!(status.success(), "{script} failed in {}", self.path);
    }

    /// The cgroup id the kernel reports: its directory's inode number.
    pub fn id(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.dir).expect("cgroup exists").ino()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Children first; a cgroup can be removed once no process is left in it.
        let mut dirs = vec![self.dir.clone()];
        let mut i = 0;
        while i < dirs.len() {
            if let Ok(entries) = std::fs::read_dir(&dirs[i]) {
                dirs.extend(
                    entries
                        .flatten()
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.path()),
                );
            }
            i += 1;
        }
        for dir in dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Where the cgroup v2 hierarchy is mounted on this host.
pub fn cgroup2_mount() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mountinfo
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if !right.starts_with("cgroup2 ") {
                return None;
            }
            left.split_whitespace().nth(4).map(PathBuf::from)
        })
        .expect("a cgroup v2 file system is mounted (PLATFORM.md: /sys/fs/cgroup/unified)")
}

/// The cgroup (v2) path of process `pid`, as `/proc/PID/cgroup` names it.
pub fn cgroup_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .expect("process exists")
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        .expect("a cgroup v2 line")
}
