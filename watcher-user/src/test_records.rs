//! Hand-built records for unit tests (statistics, `--fail-on`, encoding, the UI): one Redis client, one
//! Redis server, one HTTP client, with fixed sizes and a 1 µs latency unless a test sets its own.

use std::{net::SocketAddr, sync::Arc};

use crate::{
    protocol::{
        http::{HttpExchange, HttpRequest, HttpResponse},
        redis::{Blob, ExchangeKind, Frame, RedisExchange},
    },
    record::{Endpoint, Exchange, Record, Side},
};

/// An endpoint from address text.
pub(crate) fn endpoint(
    pid: u32,
    comm: &str,
    local: &str,
    remote: &str,
    side: Side,
) -> Arc<Endpoint> {
    Arc::new(Endpoint::new(
        pid,
        comm,
        local.parse::<SocketAddr>().unwrap(),
        remote.parse::<SocketAddr>().unwrap(),
        side,
    ))
}

/// A `+OK` reply.
pub(crate) fn ok() -> Frame {
    Frame::Simple(Blob::full("OK"))
}

/// An error reply.
pub(crate) fn error(message: &str) -> Frame {
    Frame::Error(Blob::full(message))
}

/// `redis-cli` (pid 42) talking to a server at 127.0.0.1:6379.
pub(crate) fn redis_client() -> Arc<Endpoint> {
    endpoint(
        42,
        "redis-cli",
        "127.0.0.1:50000",
        "127.0.0.1:6379",
        Side::Client,
    )
}

/// `redis-server` (pid 10) serving a client at 10.0.0.5:50001.
pub(crate) fn redis_server() -> Arc<Endpoint> {
    endpoint(
        10,
        "redis-server",
        "127.0.0.1:6379",
        "10.0.0.5:50001",
        Side::Server,
    )
}

/// A Redis command from [`redis_client`]: 20 request bytes, 5 response bytes, 1 µs latency when a reply
/// is given, none otherwise.
pub(crate) fn redis(command: &str, reply: Option<Frame>) -> Record {
    let answered = reply.is_some();
    Record {
        id: 0,
        endpoint: redis_client(),
        start_unix_ns: 1_000_000,
        end_unix_ns: answered.then_some(1_001_000),
        request_bytes: 20,
        response_bytes: 5,
        truncated: false,
        redacted: false,
        exchange: Exchange::Redis(RedisExchange {
            kind: ExchangeKind::Command,
            command: command.into(),
            args: crate::protocol::redis::exchange::Args::new(),
            reply,
        }),
    }
}

/// [`redis`] with arguments.
pub(crate) fn redis_with_args(command: &str, args: Vec<Blob>, reply: Option<Frame>) -> Record {
    let mut record = redis(command, reply);
    if let Exchange::Redis(x) = &mut record.exchange {
        x.args = args.into();
    }
    record
}

/// A Redis push (a pub/sub message) to [`redis_client`].
pub(crate) fn redis_push() -> Record {
    let mut record = redis("", Some(Frame::Push(Vec::new())));
    if let Exchange::Redis(x) = &mut record.exchange {
        x.kind = ExchangeKind::Push;
    }
    record
}

/// An HTTP request from `curl` (pid 7) to 10.0.0.9:8080: 100 request bytes, 40 response bytes, 1 µs
/// latency when a status is given, none otherwise.
pub(crate) fn http(method: &str, target: &str, status: Option<u16>) -> Record {
    Record {
        id: 0,
        endpoint: endpoint(7, "curl", "10.0.0.1:40000", "10.0.0.9:8080", Side::Client),
        start_unix_ns: 1_000_000,
        end_unix_ns: status.map(|_| 1_001_000),
        request_bytes: 100,
        response_bytes: 40,
        truncated: false,
        redacted: false,
        exchange: Exchange::Http(Box::new(HttpExchange {
            request: HttpRequest {
                method: method.into(),
                target: target.into(),
                version: 1,
                ..HttpRequest::default()
            },
            response: status.map(|status| HttpResponse {
                version: 1,
                status,
                ..HttpResponse::default()
            }),
        })),
    }
}

/// `record` with its latency set (`None`: unanswered), the response left as it was.
pub(crate) fn with_latency(mut record: Record, latency_ns: Option<u64>) -> Record {
    record.end_unix_ns = latency_ns.map(|ns| record.start_unix_ns + ns);
    record
}

/// `record` seen on `endpoint`.
pub(crate) fn on(mut record: Record, endpoint: Arc<Endpoint>) -> Record {
    record.endpoint = endpoint;
    record
}

/// A MySQL query from `app` (pid 9) to 10.0.0.7:3306 answered with `results` (unanswered when `None`).
pub(crate) fn mysql(sql: &str, results: Option<Vec<crate::protocol::mysql::Outcome>>) -> Record {
    use crate::protocol::mysql::{Command, MysqlExchange, MysqlResponse};
    let mut exchange = MysqlExchange::new(Command::QUERY);
    exchange.sql = Some(crate::protocol::Blob::full(sql));
    exchange.response = results.map(|results| MysqlResponse { results });
    Record {
        id: 1,
        endpoint: endpoint(9, "app", "10.0.0.1:40001", "10.0.0.7:3306", Side::Client),
        start_unix_ns: 2_000_000,
        end_unix_ns: exchange.response.as_ref().map(|_| 2_500_000),
        request_bytes: 4 + sql.len() as u64,
        response_bytes: 11,
        truncated: false,
        redacted: false,
        exchange: Exchange::Mysql(Box::new(exchange)),
    }
}
