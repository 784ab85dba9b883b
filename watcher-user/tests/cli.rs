//! The `watcher` binary's answer to mistakes it can judge without root or kernel support: an export
//! that cannot be created is reported like any other mistake in the arguments, with the flag named and
//! the exit status of a bad command line (2 for `watch`, 125 for `record`, whose command never runs).

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
