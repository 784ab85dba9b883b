//! The terminal UI end to end, driven through tmux: rows appear, the filter narrows them, `q` restores
//! the terminal.

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use crate::{
    secrets::{assert_no_secret, REDIS_PW},
    support::Redis,
};

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

/// Kills a tmux session when dropped, so a failing test leaves no watcher running behind it.
#[must_use]
struct SessionGuard(String);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.0]);
    }
}

/// Runs `command` in a detached 160x30 tmux session, killed when the guard is dropped.
fn start_session(session: &str, command: &str) -> SessionGuard {
    tmux(&[
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "160",
        "-y",
        "30",
        command,
    ]);
    SessionGuard(session.to_owned())
}

fn wait_for_file(path: &std::path::Path, failure: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{failure}");
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn the_terminal_ui_shows_traffic_filters_and_quits_cleanly() {
    let redis = Redis::start();
    let bin = crate::support::watcher_bin();
    let session = format!("watcher-e2e-{}", std::process::id());
    let marker = std::env::temp_dir().join(format!("{session}.exit"));
    let command = format!(
        "{bin} watch redis --port {}; echo $? > {}; sleep 60",
        redis.port,
        marker.display()
    );
    let _guard = start_session(&session, &command);
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
    wait_for_file(&marker, "watcher did not exit after q");
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

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn the_terminal_ui_serves_prometheus_metrics_while_it_runs() {
    let redis = Redis::start();
    let bin = crate::support::watcher_bin();
    let session = format!("watcher-e2e-metrics-{}", std::process::id());
    let metrics = crate::support::free_port();
    let command = format!(
        "{bin} watch redis --no-tls --port {} --metrics-listen 127.0.0.1:{metrics}; sleep 60",
        redis.port
    );
    let _guard = start_session(&session, &command);
    wait_for_screen(&session, "seen 0");
    redis.cli(&["SET", "tui-metrics", "1"]);
    redis.cli(&["SET", "tui-metrics", "2"]);
    let wanted = r#"db_client_operation_duration_seconds_count{protocol="redis",operation="SET",status="ok",side="server"} 2"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains(wanted) {
        thread::sleep(Duration::from_millis(200));
        let out = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{metrics}/metrics")])
            .output()
            .expect("curl runs");
        text = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    tmux(&["send-keys", "-t", &session, "q"]);
    assert!(text.contains(wanted), "the UI's watcher served:\n{text}");
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn show_reopens_a_recorded_capture_with_stats_and_export_of_the_filtered_view() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    let script = format!(
        "redis-cli -p {port} SET show-key show-value; redis-cli -p {port} GET show-key; redis-cli -p {port} GET other-key"
    );
    let run = crate::support::record("show", &["redis"], &["sh", "-c", &script]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.records.len(), 3, "{:#?}", run.records);
    // A damaged line must be reported and skipped, not end the viewing.
    let mut text = std::fs::read_to_string(&run.path).expect("capture");
    text.push_str("{\"schema\":1,\"id\":\n");
    std::fs::write(&run.path, text).expect("append a bad line");

    let bin = crate::support::watcher_bin();
    let session = format!("watcher-e2e-show-{}", std::process::id());
    let dir = std::env::temp_dir().join(&session);
    std::fs::create_dir_all(&dir).expect("export directory");
    let marker = dir.join("exit");
    let command = format!(
        "cd {dir} && {bin} show {file} 2>{dir}/stderr; echo $? > {marker}; sleep 60",
        dir = dir.display(),
        file = run.path.display(),
        marker = marker.display()
    );
    let _guard = start_session(&session, &command);
    let screen = wait_for_screen(&session, "show-value");
    assert!(
        screen.contains("show-key") && screen.contains("other-key"),
        "every record listed:\n{screen}"
    );
    assert!(screen.contains("1 bad lines skipped"), "{screen}");

    tmux(&["send-keys", "-t", &session, "Tab"]);
    let stats = wait_for_screen(&session, "stats · by command");
    let get_row = stats
        .lines()
        .find(|l| l.contains("redis GET"))
        .unwrap_or_else(|| panic!("a GET group:\n{stats}"));
    assert!(get_row.contains(" 2 "), "two GETs:\n{stats}");

    // Back to the table, filter to the GETs, export what is shown.
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "Tab",
        "/",
        "G",
        "E",
        "T",
        "Enter",
        "e",
    ]);
    let notice = "exported 2 records to ";
    let exported = wait_for_screen(&session, notice);
    let path_start = exported.find(notice).expect("the notice") + notice.len();
    let path: String = exported[path_start..]
        .split_whitespace()
        .next()
        .expect("path")
        .to_owned();
    assert!(
        path.starts_with(&*dir.display().to_string()),
        "written where watcher runs: {path}"
    );
    let lines = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let commands: Vec<String> = lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            v["redis"]["command"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    assert_eq!(commands, ["GET", "GET"], "the filtered view only");

    tmux(&["send-keys", "-t", &session, "q"]);
    wait_for_file(&marker, "watcher show did not exit after q");
    let code = std::fs::read_to_string(&marker).expect("exit code");
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    tmux(&["kill-session", "-t", &session]);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&run.path);
    assert_eq!(code.trim(), "0", "exit code; stderr:\n{stderr}");
    assert!(
        stderr.contains(":4: skipped"),
        "the bad line by number:\n{stderr}"
    );
}

/// Filters the table to AUTH, opens the record's detail, which must show `redacted` and no secret, and
/// quits.
fn check_auth_detail_and_quit(session: &str, redacted: &str, marker: &std::path::Path, what: &str) {
    let keys = [
        "send-keys",
        "-t",
        session,
        "/",
        "A",
        "U",
        "T",
        "H",
        "Enter",
        "Enter",
    ];
    tmux(&keys);
    let detail = wait_for_screen(session, redacted);
    assert_no_secret(&format!("{what}: the detail view"), &detail);
    tmux(&["send-keys", "-t", session, "Escape", "q"]);
    wait_for_file(marker, &format!("{what}: watcher did not exit after q"));
    tmux(&["kill-session", "-t", session]);
    let _ = std::fs::remove_file(marker);
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn the_screen_shows_secrets_masked_live_and_in_a_file_written_with_show_secrets() {
    let redis = Redis::start_with(&["--requirepass", REDIS_PW]);
    let auth = ["-a", REDIS_PW, "--no-auth-warning"];
    let bin = crate::support::watcher_bin();
    let session = format!("watcher-e2e-secrets-{}", std::process::id());
    let marker = std::env::temp_dir().join(format!("{session}.exit"));
    let redacted = format!("(redacted, {} bytes)", REDIS_PW.len());

    // Live: the table, then the AUTH record's detail.
    let command = format!(
        "{bin} watch redis --port {}; echo $? > {}; sleep 60",
        redis.port,
        marker.display()
    );
    let _guard = start_session(&session, &command);
    wait_for_screen(&session, "seen 0");
    redis.cli(&[&auth[..], &["SET", "ui-key", "ui-value"]].concat());
    let table = wait_for_screen(&session, "ui-key");
    assert!(table.contains("AUTH"), "the AUTH row is listed:\n{table}");
    assert_no_secret("the table", &table);
    check_auth_detail_and_quit(&session, &redacted, &marker, "the live UI");

    // A capture written with --show-secrets holds the password; `show` masks it again.
    let port = redis.port.to_string();
    let run = crate::support::record(
        "ui-show-secrets",
        &["redis", "--show-secrets"],
        &[&["redis-cli", "-p", &port], &auth[..], &["PING"]].concat(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(std::fs::read_to_string(&run.path).is_ok_and(|t| t.contains(REDIS_PW)));
    let command = format!(
        "{bin} show {}; echo $? > {}; sleep 60",
        run.path.display(),
        marker.display()
    );
    let _guard = start_session(&session, &command);
    let table = wait_for_screen(&session, "PING");
    assert_no_secret("show's table", &table);
    check_auth_detail_and_quit(&session, &redacted, &marker, "show");
    let _ = std::fs::remove_file(&run.path);
}
