//! Cgroups and containers end to end: clients in cgroups the test makes under the cgroup v2 mount (one
//! laid out as Docker lays out a container's), `--cgroup` and `--container` filtering in the kernel,
//! every record naming its cgroup, and `stat --group-by container`.

use std::process::Command;

use serde_json::Value;

use crate::support::{
    cgroup_of, on_port, temp_path, watcher_bin, with_command, Redis, TestCgroup, Watcher,
};

/// A client loop: `count` commands, each from a new redis-cli (so a new connection) in the cgroup.
fn loop_in(cgroup: &TestCgroup, port: u16, command: &str, count: u32) {
    cgroup.run(&format!(
        "for i in $(seq {count}); do redis-cli -p {port} {command} >/dev/null || exit 1; done"
    ));
}

fn cgroup_path(record: &Value) -> &str {
    record["cgroup"]["path"]
        .as_str()
        .unwrap_or_else(|| panic!("record names no cgroup: {record}"))
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn cgroup_and_container_filters_keep_only_their_cgroups_and_records_name_them() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    let root = format!("watcher-e2e-{}", std::process::id());
    let id: String = "5eed".repeat(16);
    // Declared first so that it is removed last, after the cgroups inside it.
    let _parent = TestCgroup::make(&root);
    let plain = TestCgroup::make(&format!("{root}/plain"));
    let container = TestCgroup::make(&format!("{root}/docker-{id}.scope"));
    let by_cgroup = Watcher::start(
        "cgroup",
        &["redis"],
        &["--port", &port, "--no-tls", "--cgroup", &plain.path],
    );
    // The prefix as `docker ps` prints it, in capitals to show case does not matter.
    let by_container = Watcher::start(
        "container",
        &["redis"],
        &[
            "--port",
            &port,
            "--no-tls",
            "--container",
            &id[..12].to_uppercase(),
        ],
    );
    assert!(
        by_container
            .notes()
            .iter()
            .any(|n| n.contains("tracing only processes in") && n.contains(&container.path)),
        "the container's cgroup is named at start: {:?}",
        by_container.notes()
    );
    let everything = Watcher::start("cgroup-all", &["redis"], &["--port", &port, "--no-tls"]);
    loop_in(&plain, redis.port, "SET plain 1", 5);
    loop_in(&container, redis.port, "GET boxed", 4);
    let (only_plain, _) = by_cgroup.stop();
    let (only_container, _) = by_container.stop();
    let (all, all_summary) = everything.stop();

    // --cgroup: the 5 SETs of the plain cgroup's clients, nothing of the server or the other cgroup.
    assert_eq!(only_plain.len(), 5, "{only_plain:#?}");
    for r in &only_plain {
        assert_eq!(
            (r["side"].as_str(), r["redis"]["command"].as_str()),
            (Some("client"), Some("SET"))
        );
        assert_eq!(cgroup_path(r), plain.path);
        assert_eq!(r["cgroup"]["id"].as_u64(), Some(plain.id()));
        assert!(r.get("container").is_none(), "no container: {r}");
    }
    // --container: the 4 GETs of the container's clients, each naming the container in full.
    assert_eq!(only_container.len(), 4, "{only_container:#?}");
    for r in &only_container {
        assert_eq!(r["redis"]["command"], "GET");
        assert_eq!(cgroup_path(r), container.path);
        assert_eq!(r["container"].as_str(), Some(id.as_str()));
    }
    // Unfiltered: both cgroups' clients and the server, each record naming where it ran.
    let server_cgroup = cgroup_of(redis.pid());
    let served = on_port(&all, "server", redis.port);
    assert_eq!(served.len(), 9, "{all_summary}");
    assert!(served.iter().all(|r| cgroup_path(r) == server_cgroup));
    let clients = on_port(&all, "client", redis.port);
    assert_eq!(with_command(&clients, "SET").len(), 5);
    for r in &clients {
        let expected = if r["redis"]["command"] == "SET" {
            &plain.path
        } else {
            &container.path
        };
        assert_eq!(cgroup_path(r), expected, "{r}");
    }

    // stat groups the same file by container.
    let file = temp_path("cgroup-stat", "ndjson");
    let lines: Vec<String> = all.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let stat = Command::new(watcher_bin())
        .args(["stat", "--group-by", "container", "--json"])
        .arg(&file)
        .output()
        .expect("watcher stat runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        stat.status.success(),
        "{}",
        String::from_utf8_lossy(&stat.stderr)
    );
    let report: Value = serde_json::from_slice(&stat.stdout).expect("stat --json prints JSON");
    let count_of = |key: &str| {
        report["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["key"] == key)
            .and_then(|g| g["count"].as_u64())
    };
    assert_eq!(count_of(&id[..12]), Some(4), "{report}");
    assert_eq!(count_of("(no container)"), Some(14), "{report}");
}

#[test]
#[ignore = "needs root and the built binary: run by cargo xtask test"]
fn an_unknown_container_or_cgroup_is_refused_with_a_clear_message() {
    for (args, expected) in [
        (
            &["--container", "deadbeef0042"][..],
            "no running container's id starts with \"deadbeef0042\"",
        ),
        (&["--container", "web-1"][..], "is not a container id"),
        (
            &["--cgroup", "/no/such/cgroup"][..],
            "/no/such/cgroup is not a cgroup",
        ),
    ] {
        let out = Command::new(watcher_bin())
            .args(["watch", "redis", "--headless", "--duration", "1s"])
            .args(args)
            .output()
            .expect("watcher runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
