//! `watcher record -- CMD`, `--fail-on` and `stat` end to end: a real redis-server that was running
//! before the recording, real clients started by the recorded command, and an unrelated client whose
//! traffic must not be recorded.

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
};

use serde_json::Value;

use crate::support::{read_records, record, temp_path, watcher_bin, with_command, Redis};

/// A client outside the recorded command's process tree, busy for as long as it lives.
struct Bystander(Child);

impl Bystander {
    fn start(redis: &Redis) -> Self {
        let script = format!(
            "while true; do redis-cli -p {} INCR bystander >/dev/null; sleep 0.01; done",
            redis.port
        );
        Self(
            Command::new("sh")
                .args(["-c", &script])
                .stdout(Stdio::null())
                .spawn()
                .expect("sh runs"),
        )
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn record_captures_exactly_the_commands_process_tree_and_passes_its_exit_status() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    let bystander = Bystander::start(&redis);

    let run = record(
        "benchmark",
        &["redis"],
        &[
            "redis-benchmark",
            "-p",
            &port,
            "-n",
            "500",
            "-c",
            "5",
            "-t",
            "set,get",
            "-q",
        ],
    );
    assert_eq!(
        run.code,
        Some(0),
        "redis-benchmark's status; stderr:\n{}",
        run.stderr
    );
    let records = &run.records;
    assert_eq!(with_command(records, "SET").len(), 500, "every SET once");
    assert_eq!(with_command(records, "GET").len(), 500, "every GET once");
    for r in records {
        assert_eq!(r["side"], "client", "only the benchmark's own side: {r}");
        assert_eq!(r["comm"], "redis-benchmark", "only the benchmark: {r}");
        assert!(
            ["SET", "GET", "CONFIG"].contains(&r["redis"]["command"].as_str().unwrap_or("")),
            "nothing but the benchmark's commands: {r}"
        );
        assert!(r["latency_ns"].is_u64(), "every request answered: {r}");
    }
    assert!(run.stderr.contains(" 0 lost"), "{}", run.stderr);
    let _ = std::fs::remove_file(&run.path);

    // A grandchild (redis-cli under sh) is followed too, and the shell's status comes back.
    let script = format!("redis-cli -p {port} SET via-shell 1 >/dev/null; exit 7");
    let run = record("shell", &["redis"], &["sh", "-c", &script]);
    assert_eq!(
        run.code,
        Some(7),
        "the command's own status; stderr:\n{}",
        run.stderr
    );
    assert_eq!(
        run.records.len(),
        1,
        "only the shell's child: {:#?}",
        run.records
    );
    assert_eq!(run.records[0]["redis"]["args"][0], "via-shell");
    let _ = std::fs::remove_file(&run.path);

    // --port adds the server side of that port, whoever runs it (here redis-server, not a child).
    let run = record(
        "port",
        &["redis", "--port", &port, "--command", "GET"],
        &["redis-cli", "-p", &port, "GET", "via-port"],
    );
    let sides: Vec<&str> = run
        .records
        .iter()
        .filter_map(|r| r["side"].as_str())
        .collect();
    assert!(
        sides.contains(&"client") && sides.contains(&"server"),
        "both ends of the GET: {:#?}",
        run.records
    );
    assert!(
        run.records.iter().all(|r| r["redis"]["command"] == "GET"),
        "record filters still apply"
    );
    let _ = std::fs::remove_file(&run.path);
    drop(bystander);

    let killed = record("killed", &[], &["sh", "-c", "kill -KILL $$"]);
    assert_eq!(
        killed.code,
        Some(137),
        "128 + SIGKILL; stderr:\n{}",
        killed.stderr
    );
    assert!(
        killed.stderr.contains("killed by signal 9"),
        "{}",
        killed.stderr
    );
    let _ = std::fs::remove_file(&killed.path);

    let bad_args = record("bad-args", &["--fail-on", "whenever"], &["true"]);
    assert_eq!(bad_args.code, Some(125), "{}", bad_args.stderr);
    let unknown_flag = record("unknown-flag", &["--no-such-flag"], &["true"]);
    assert_eq!(unknown_flag.code, Some(125), "{}", unknown_flag.stderr);

    let missing = record("missing", &[], &["/nonexistent/command"]);
    assert_eq!(missing.code, Some(127), "{}", missing.stderr);
    assert!(
        !missing.path.exists(),
        "no export is left by a command that never ran"
    );
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn fail_on_redis_error_fails_a_run_with_wrongtype_and_passes_a_clean_one() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    redis.cli(&["SET", "a-string", "v"]);

    let clean = record(
        "clean",
        &["--fail-on", "redis-error"],
        &["redis-cli", "-p", &port, "GET", "a-string"],
    );
    assert_eq!(clean.code, Some(0), "{}", clean.stderr);
    assert_eq!(clean.records.len(), 1);

    let failing = record(
        "wrongtype",
        &["--fail-on", "redis-error", "--fail-on", "latency>10s"],
        &["redis-cli", "-p", &port, "LPUSH", "a-string", "x"],
    );
    assert_eq!(
        failing.code,
        Some(123),
        "findings give 123 when the command itself succeeded; stderr:\n{}",
        failing.stderr
    );
    assert!(
        failing.stderr.contains("--fail-on redis-error: 1 record\n")
            && failing
                .stderr
                .contains("LPUSH a-string x -> (error) WRONGTYPE"),
        "the report names the offending record:\n{}",
        failing.stderr
    );
    assert!(
        !failing.stderr.contains("latency>10s"),
        "{}",
        failing.stderr
    );

    let script = format!("redis-cli -p {port} LPUSH a-string x >/dev/null; exit 5");
    let both = record(
        "both",
        &["--fail-on", "redis-error"],
        &["sh", "-c", &script],
    );
    assert_eq!(both.code, Some(5), "the command's failure comes first");
    assert!(
        both.stderr.contains("--fail-on redis-error"),
        "{}",
        both.stderr
    );

    for run in [clean, failing, both] {
        let _ = std::fs::remove_file(&run.path);
    }
}

/// Nearest-rank percentile, computed here independently of watcher.
fn nearest_rank(sorted: &[u64], p: u64) -> u64 {
    let rank = (p * sorted.len() as u64).div_ceil(100).max(1);
    sorted[rank as usize - 1]
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn stat_agrees_with_percentiles_computed_from_the_same_ndjson() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    let run = record(
        "stat",
        &["redis"],
        &[
            "redis-benchmark",
            "-p",
            &port,
            "-n",
            "300",
            "-c",
            "3",
            "-t",
            "set,get,incr",
            "-q",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut latencies: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for r in &run.records {
        let command = r["redis"]["command"].as_str().expect("command").to_owned();
        *counts.entry(command.clone()).or_default() += 1;
        latencies
            .entry(command)
            .or_default()
            .extend(r["latency_ns"].as_u64());
    }

    let out = Command::new(crate::support::watcher_bin())
        .arg("stat")
        .arg(&run.path)
        .args(["--group-by", "command", "--json"])
        .output()
        .expect("watcher stat runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["group_by"], "command");
    let groups = report["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), latencies.len(), "{report:#}");
    for (command, mut values) in latencies {
        values.sort_unstable();
        let group = groups
            .iter()
            .find(|g| g["key"] == command.as_str())
            .unwrap_or_else(|| panic!("a group for {command}: {report:#}"));
        assert_eq!(group["count"], counts[&command], "{command}");
        for (field, p) in [
            ("p50_ns", 50),
            ("p90_ns", 90),
            ("p99_ns", 99),
            ("max_ns", 100),
        ] {
            assert_eq!(
                group[field].as_u64(),
                Some(nearest_rank(&values, p)),
                "{command} {field}"
            );
        }
    }

    let table = Command::new(crate::support::watcher_bin())
        .arg("stat")
        .arg(&run.path)
        .args(["--sort", "key"])
        .output()
        .expect("watcher stat runs");
    let text = String::from_utf8_lossy(&table.stdout);
    let get = text.find("GET").expect("a GET row");
    let set = text.find("SET").expect("a SET row");
    assert!(get < set, "sorted by key:\n{text}");
    let _ = std::fs::remove_file(&run.path);
}

/// The output of a command run as root, trimmed.
fn ask(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn started_through_sudo_the_command_runs_as_the_invoking_user_unless_as_root() {
    use std::os::unix::fs::MetadataExt;
    let redis = Redis::start();
    let uid = ask("id", &["-u", "nobody"]);
    let gid = ask("id", &["-g", "nobody"]);
    let groups = ask("id", &["-G", "nobody"]);
    let home = ask("getent", &["passwd", "nobody"])
        .rsplit(':')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let script = format!(
        "id -u; id -G; echo \"$HOME\"; redis-cli -p {} PING >/dev/null",
        redis.port
    );
    // What `sudo` leaves for the program it starts.
    let run = |extra: &[&str]| {
        let output = temp_path("sudo", "ndjson");
        let out = Command::new(watcher_bin())
            .arg("record")
            .args(extra)
            .arg("--json-output")
            .arg(&output)
            .args(["--", "sh", "-c", &script])
            .env("SUDO_UID", &uid)
            .env("SUDO_GID", &gid)
            .env("SUDO_USER", "nobody")
            .current_dir("/tmp")
            .output()
            .expect("watcher record runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let owner = std::fs::metadata(&output).expect("the export").uid();
        let records = read_records(&output);
        let _ = std::fs::remove_file(&output);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (stdout, stderr, owner, records)
    };

    let (stdout, stderr, owner, records) = run(&["redis"]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [uid.as_str(), groups.as_str(), home.as_str()],
        "{stderr}"
    );
    assert!(stderr.contains("running the command as nobody"), "{stderr}");
    assert_eq!(owner.to_string(), uid, "the capture belongs to the user");
    assert_eq!(
        with_command(&records, "PING").len(),
        1,
        "the command is still traced: {records:#?}"
    );

    let (stdout, _, owner, records) = run(&["redis", "--as-root"]);
    assert_eq!(stdout.lines().next(), Some("0"), "--as-root keeps root");
    assert_eq!(
        owner.to_string(),
        uid,
        "the capture still belongs to the user"
    );
    assert_eq!(with_command(&records, "PING").len(), 1);
}
