//! Tests of group keys and of the group-by and sort names.

use super::{
    test_records::{endpoint, error, http, ok, on, redis, redis_push, redis_server},
    GroupBy, ParseError, SortBy,
};
use crate::{protocol::redis::Frame, record::Side};

#[test]
fn group_by_names_round_trip_and_unknown_names_fail() {
    for g in GroupBy::ALL {
        assert_eq!(g.name().parse::<GroupBy>(), Ok(g));
        assert_eq!(g.to_string(), g.name());
    }
    assert_eq!("Remote".parse::<GroupBy>(), Ok(GroupBy::Remote));
    assert_eq!("statement".parse::<GroupBy>(), Ok(GroupBy::Endpoint));
    let names: Vec<_> = GroupBy::ALL.iter().map(|g| g.name()).collect();
    assert_eq!(
        names,
        [
            "command",
            "endpoint",
            "status",
            "connection",
            "remote",
            "process",
            "container",
            "cgroup"
        ]
    );
    assert_eq!(
        "host".parse::<GroupBy>(),
        Err(ParseError::GroupBy {
            name: "host".into()
        })
    );
    assert_eq!(GroupBy::default(), GroupBy::Command);
}

#[test]
fn sort_by_names_round_trip_and_unknown_names_fail() {
    for s in SortBy::ALL {
        assert_eq!(s.name().parse::<SortBy>(), Ok(s));
    }
    let names: Vec<_> = SortBy::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        ["count", "errors", "p50", "p90", "p99", "max", "bytes", "key"]
    );
    let err = "p95".parse::<SortBy>().unwrap_err();
    assert!(err.to_string().contains("`p95`"), "{err}");
    assert_eq!(SortBy::default(), SortBy::Count);
}

#[test]
fn command_key_names_redis_commands_pushes_and_http_methods() {
    let by = GroupBy::Command;
    assert_eq!(by.key(&redis("GET", Some(ok()))), "GET");
    assert_eq!(by.key(&redis_push()), "(push)");
    assert_eq!(by.key(&http("POST", "/users/42", Some(201))), "POST");
}

#[test]
fn endpoint_key_templates_http_paths_and_names_redis_commands() {
    let by = GroupBy::Endpoint;
    assert_eq!(
        by.key(&http("GET", "/users/42/orders/7?x=1", Some(200))),
        "GET /users/{id}/orders/{id}"
    );
    assert_eq!(
        by.key(&http("GET", "http://api.test/users/9", Some(200))),
        "GET /users/{id}",
        "absolute-form targets lose scheme and authority"
    );
    assert_eq!(by.key(&redis("HGETALL", Some(ok()))), "HGETALL");
    assert_eq!(by.key(&redis_push()), "(push)");
}

#[test]
fn status_key_for_http_codes_and_missing_responses() {
    let by = GroupBy::Status;
    assert_eq!(by.key(&http("GET", "/", Some(200))), "200");
    assert_eq!(by.key(&http("GET", "/", Some(503))), "503");
    assert_eq!(by.key(&http("GET", "/", None)), "(no response)");
}

#[test]
fn status_key_for_redis_ok_error_codes_and_missing_replies() {
    let by = GroupBy::Status;
    assert_eq!(by.key(&redis("SET", Some(ok()))), "ok");
    assert_eq!(by.key(&redis("GET", Some(Frame::Null))), "ok");
    assert_eq!(by.key(&redis("GET", None)), "(no reply)");
    assert_eq!(
        by.key(&redis(
            "INCR",
            Some(error("WRONGTYPE Operation against a key"))
        )),
        "WRONGTYPE"
    );
    assert_eq!(
        by.key(&redis("FOO", Some(error("ERR unknown command 'FOO'")))),
        "ERR"
    );
    assert_eq!(
        by.key(&redis(
            "GET",
            Some(error("NOAUTH Authentication required."))
        )),
        "NOAUTH"
    );
    assert_eq!(by.key(&redis("GET", Some(error("LOADING")))), "LOADING");
    // First words that are not codes are grouped together rather than one group per message.
    assert_eq!(by.key(&redis("GET", Some(error("")))), "(error)");
    assert_eq!(
        by.key(&redis("GET", Some(error("oops something")))),
        "(error)"
    );
    assert_eq!(
        by.key(&redis("GET", Some(error(&"X".repeat(33))))),
        "(error)"
    );
}

#[test]
fn connection_and_process_keys_name_pid_comm_and_addresses() {
    let get = redis("GET", Some(ok()));
    assert_eq!(
        GroupBy::Connection.key(&get),
        "42/redis-cli 127.0.0.1:50000 → 127.0.0.1:6379"
    );
    assert_eq!(GroupBy::Process.key(&get), "42/redis-cli");
    let served = on(redis("GET", Some(ok())), redis_server());
    assert_eq!(
        GroupBy::Connection.key(&served),
        "10/redis-server 127.0.0.1:6379 → 10.0.0.5:50001"
    );
    assert_eq!(GroupBy::Process.key(&served), "10/redis-server");
}

#[test]
fn container_and_cgroup_keys_tell_host_unknown_and_containers_apart() {
    use std::sync::Arc;

    use crate::cgroup::Cgroup;
    let in_cgroup = |path: &str| {
        let mut record = redis("GET", Some(ok()));
        let mut endpoint = (*record.endpoint).clone();
        endpoint.cgroup = Some(Arc::new(Cgroup::new(7, path)));
        record.endpoint = Arc::new(endpoint);
        record
    };
    let id = "0123456789abcdef".repeat(4);
    let docker = in_cgroup(&format!("/system.slice/docker-{id}.scope"));
    assert_eq!(GroupBy::Container.key(&docker), "0123456789ab");
    assert_eq!(
        GroupBy::Cgroup.key(&docker),
        format!("/system.slice/docker-{id}.scope")
    );
    let host = in_cgroup("/system.slice/redis-server.service");
    assert_eq!(GroupBy::Container.key(&host), "(no container)");
    assert_eq!(GroupBy::Cgroup.key(&in_cgroup("")), "(removed)");
    let unknown = redis("GET", Some(ok()));
    assert_eq!(GroupBy::Container.key(&unknown), "(unknown)");
    assert_eq!(GroupBy::Cgroup.key(&unknown), "(unknown)");
}

#[test]
fn remote_key_keeps_server_port_and_drops_client_port() {
    let by = GroupBy::Remote;
    assert_eq!(by.key(&redis("GET", Some(ok()))), "127.0.0.1:6379");
    assert_eq!(
        by.key(&on(redis("GET", Some(ok())), redis_server())),
        "10.0.0.5"
    );
    let v6_server = endpoint(1, "api", "[::1]:50000", "[2001:db8::1]:443", Side::Client);
    let v6_client = endpoint(1, "api", "[::1]:8080", "[2001:db8::2]:51234", Side::Server);
    assert_eq!(
        by.key(&on(http("GET", "/", Some(200)), v6_server)),
        "[2001:db8::1]:443"
    );
    assert_eq!(
        by.key(&on(http("GET", "/", Some(200)), v6_client)),
        "2001:db8::2"
    );
}

#[test]
fn write_key_appends_without_clearing() {
    let mut buffer = String::from("x:");
    GroupBy::Command.write_key(&redis("GET", Some(ok())), &mut buffer);
    assert_eq!(buffer, "x:GET");
}
