//! How a headless run ends by itself: after `--count` records, at the end of `--duration`, when its
//! export's reader goes away (quietly) and when its export cannot be written (with an error), each
//! without waiting for a signal.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::{Duration, Instant},
};

use crate::support::{exit_within, watch_redis_server, Redis};

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn a_run_ends_by_itself_after_count_records_and_at_the_end_of_its_duration() {
    let redis = Redis::start();
    let (mut counted, _stderr) =
        watch_redis_server(redis.port, "-", &["--count", "5"], Stdio::piped());
    for n in 0..10 {
        redis.cli(&["SET", &format!("key{n}"), "value"]);
    }
    let exit = exit_within(&mut counted.0, Duration::from_secs(10))
        .expect("watcher ends by itself after --count records");
    assert!(exit.success(), "{exit}");
    let exported = BufReader::new(counted.0.stdout.take().expect("stdout"))
        .lines()
        .count();
    assert_eq!(exported, 5, "exactly --count records are exported");

    let started = Instant::now();
    let (mut timed, _stderr) = watch_redis_server(
        redis.port,
        "/dev/null",
        &["--duration", "1s"],
        Stdio::null(),
    );
    let exit = exit_within(&mut timed.0, Duration::from_secs(20))
        .expect("watcher ends by itself at the end of --duration");
    assert!(exit.success(), "{exit}");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn a_run_ends_quietly_when_its_reader_goes_away_and_with_an_error_when_its_export_is_full() {
    let redis = Redis::start();
    let watch = |output: &str, stdout: Stdio| watch_redis_server(redis.port, output, &[], stdout);
    // A reader that takes one line and leaves, as `| head -n 1` would.
    let (mut piped, stderr) = watch("-", Stdio::piped());
    let mut records = BufReader::new(piped.0.stdout.take().expect("stdout")).lines();
    redis.cli(&["SET", "first", "value"]);
    assert!(records.next().is_some_and(|line| line.is_ok()));
    drop(records);
    // The next write finds the pipe closed.
    redis.cli(&["SET", "second", "value"]);
    let exit = exit_within(&mut piped.0, Duration::from_secs(10))
        .expect("watcher ends by itself when its reader went away");
    let said: Vec<String> = stderr.map_while(Result::ok).collect();
    assert!(exit.success(), "{exit}: {said:?}");

    let (mut full, stderr) = watch("/dev/full", Stdio::null());
    redis.cli(&["SET", "third", "value"]);
    let exit = exit_within(&mut full.0, Duration::from_secs(10))
        .expect("watcher ends by itself when its export cannot be written");
    let said = stderr.map_while(Result::ok).collect::<Vec<_>>().join("\n");
    assert!(!exit.success(), "{said}");
    assert!(
        said.contains("writing JSON records") && said.contains("No space left on device"),
        "the error says what failed and why: {said}"
    );
}
