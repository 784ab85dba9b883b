//! End-to-end tests: the real watcher binary with its real eBPF programs, real servers (redis-server,
//! nginx, MariaDB; the first two also over TLS, with a certificate made by `openssl` at test time) on
//! loopback ports and real clients (redis-cli, redis-benchmark, curl, wrk, the mariadb client, PyMySQL,
//! mysql-connector-python, sysbench, raw sockets, Python's `ssl` and node's `https`),
//! asserting on the NDJSON records watcher exports; cgroups made by the tests under the cgroup v2 mount;
//! a real Prometheus server and an OTLP collector decoding with the official protobuf definitions.
//!
//! They need root and the built binary, so they are `#[ignore]`d for plain `cargo test` and run by
//! `cargo xtask test` (which passes `--ignored` and `WATCHER_BIN`). Each test panics with a message
//! saying what was expected.

mod containers;
mod headless;
mod hooks;
mod http;
mod mysql;
mod record;
mod redis;
mod secrets;
mod support;
mod telemetry;
mod tls;
mod tui;
