//! The terminal UI end to end, driven through tmux: rows appear, the filter narrows them, `q` restores
//! the terminal.

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use crate::support::Redis;

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
