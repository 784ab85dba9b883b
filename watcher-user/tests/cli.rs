//! The `watcher` binary's answer to mistakes it can judge without root or kernel support: an export
//! that cannot be created is reported like any other mistake in the arguments, with the flag named and
//! the exit status of a bad command line (2 for `watch`, 125 for `record`, whose command never runs);
//! output whose reader has gone ends the run quietly, not with a panic.

use std::process::{Command, Output};

fn watcher(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watcher"))
        .args(args)
        .output()
        .expect("the watcher binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_export_that_cannot_be_created_is_a_mistake_in_the_arguments() {
    let unwritable = "/nonexistent-dir/capture.ndjson";
    let watch = watcher(&["watch", "--headless", "--json-output", unwritable]);
    assert_eq!(watch.status.code(), Some(2), "{}", stderr(&watch));
    assert!(
        stderr(&watch).starts_with("watcher: --json-output: cannot create /nonexistent-dir/"),
        "{}",
        stderr(&watch)
    );

    let marker = std::env::temp_dir().join(format!("watcher-cli-ran-{}", std::process::id()));
    let record = watcher(&[
        "record",
        "--json-output",
        unwritable,
        "--",
        "touch",
        marker.to_str().expect("a UTF-8 temp path"),
    ]);
    assert_eq!(record.status.code(), Some(125), "{}", stderr(&record));
    assert!(
        stderr(&record).starts_with("watcher: --json-output: cannot create /nonexistent-dir/"),
        "{}",
        stderr(&record)
    );
    assert!(!marker.exists(), "the command must not run");
}

/// `watcher stat FILE | head`: standard output and standard error are pipes whose readers have gone
/// before watcher writes (the file has a bad line, so there is a note for stderr too). `print!` and
/// `eprintln!` panicked there (status 101, "failed printing to stdout").
#[test]
fn output_whose_reader_has_gone_ends_the_run_quietly() {
    let record = r#"{"schema":1,"id":1,"protocol":"redis","side":"server","pid":10,"comm":"redis-server","local":"127.0.0.1:6379","remote":"127.0.0.1:36136","start_unix_ns":1000,"end_unix_ns":2000,"latency_ns":1000,"request_bytes":35,"response_bytes":5,"truncated":false,"redacted":false,"error":false,"redis":{"kind":"command","command":"PING","args":[],"reply":{"type":"simple","value":"PONG"}}}"#;
    let path = std::env::temp_dir().join(format!("watcher-cli-gone-{}.ndjson", std::process::id()));
    std::fs::write(&path, format!("{record}\nnot a record\n"))
        .expect("the capture file is written");

    let file = path.to_str().expect("a UTF-8 temp path");
    let (out_reader, out_writer) = std::io::pipe().expect("a pipe");
    let (err_reader, err_writer) = std::io::pipe().expect("a pipe");
    // Both readers gone before watcher starts: its first write to either fails.
    drop((out_reader, err_reader));
    let status = Command::new(env!("CARGO_BIN_EXE_watcher"))
        .args(["stat", file])
        .stdout(out_writer)
        .stderr(err_writer)
        .status()
        .expect("the watcher binary runs");
    assert_eq!(status.code(), Some(0), "{status}");
    // The same run with its output read: the statistics are there, so the run above had them to write.
    let read = watcher(&["stat", file]);
    assert_eq!(read.status.code(), Some(0), "{}", stderr(&read));
    let printed = String::from_utf8_lossy(&read.stdout);
    assert!(printed.contains("PING"), "{printed}");
    let _ = std::fs::remove_file(&path);
}
