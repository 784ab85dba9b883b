//! Unit tests of the MySQL session: whole conversations built from the protocol documentation's
//! packet layouts, fed whole and split at every byte, with `CLIENT_DEPRECATE_EOF` on and off, with and
//! without compression, from the start and from the middle.

use std::io::Write as _;

use super::*;
use crate::protocol::mysql::{
    handshake::tests::{login, mariadb_greeting, CLIENT},
    response::tests::column_def,
};

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
    out.extend_from_slice(payload);
    out
}

fn ok(affected: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0, affected, 0];
    p.extend(status.to_le_bytes());
    p.extend([0, 0]);
    p
}

fn eof(status: u16) -> Vec<u8> {
    let mut p = vec![0xfe, 0, 0];
    p.extend(status.to_le_bytes());
    p
}

fn end_ok(status: u16) -> Vec<u8> {
    let mut p = vec![0xfe, 0, 0];
    p.extend(status.to_le_bytes());
    p.extend([0, 0]);
    p
}

/// One syscall's bytes.
type Call = (Flow, Vec<u8>);

fn server(packets: &[Vec<u8>], first_seq: u8) -> Call {
    let mut bytes = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        bytes.extend(packet(first_seq + i as u8, p));
    }
    (Flow::Response, bytes)
}

fn client(seq: u8, payload: &[u8]) -> Call {
    (Flow::Request, packet(seq, payload))
}

/// Feeds `calls` (cut in two at `cut` when given) and returns the exchanges and the counters.
fn run(calls: &[Call], in_sync: bool, cut: Option<usize>) -> (Vec<Paired>, SessionStats) {
    let mut s = MysqlSession::new(1024, in_sync);
    let mut out = Vec::new();
    for (i, (flow, bytes)) in calls.iter().enumerate() {
        let ts = (i as u64 + 1) * 1000;
        match cut.filter(|&c| c < bytes.len()) {
            Some(c) => {
                s.on_data(Chunk::new(*flow, &bytes[..c], ts, true), &mut out);
                s.on_data(Chunk::new(*flow, &bytes[c..], ts + 1, false), &mut out);
            }
            None => s.on_data(Chunk::new(*flow, bytes, ts, true), &mut out),
        }
    }
    s.on_close(&mut out);
    (out, s.stats())
}

/// Runs whole and at every cut, checking every run agrees; returns the whole run's exchanges.
fn run_all_cuts(calls: &[Call], in_sync: bool) -> Vec<Paired> {
    let (whole, stats) = run(calls, in_sync, None);
    assert_eq!(stats, SessionStats::default(), "{whole:#?}");
    let longest = calls.iter().map(|c| c.1.len()).max().unwrap_or(0);
    for cut in 1..longest {
        let (got, stats) = run(calls, in_sync, Some(cut));
        assert_eq!(stats, SessionStats::default(), "cut {cut}");
        let strip =
            |p: &[Paired]| -> Vec<MysqlExchange> { p.iter().map(|p| p.exchange.clone()).collect() };
        assert_eq!(strip(&got), strip(&whole), "cut {cut}");
    }
    whole
}

fn sql(x: &MysqlExchange) -> String {
    String::from_utf8_lossy(&x.sql.as_ref().unwrap().data).into_owned()
}

fn login_calls(capabilities: u64) -> Vec<Call> {
    vec![
        server(
            &[mariadb_greeting(
                "10.11.6-MariaDB",
                7,
                capabilities | CLIENT_COMPRESS,
            )],
            0,
        ),
        client(1, &login(capabilities, "app", Some("shop"))),
        server(&[ok(0, 2)], 2),
    ]
}

/// `call`'s bytes as one compressed packet with compressed sequence id `seq`.
fn compress(call: Call, seq: u8) -> Call {
    let (flow, plain_bytes) = call;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&plain_bytes).unwrap();
    let body = z.finish().unwrap();
    let plain = plain_bytes.len();
    let mut bytes = vec![
        body.len() as u8,
        (body.len() >> 8) as u8,
        0,
        seq,
        plain as u8,
        (plain >> 8) as u8,
        0,
    ];
    bytes.extend(body);
    (flow, bytes)
}

fn query(text: &str) -> Call {
    client(0, &[&[3u8][..], text.as_bytes()].concat())
}

#[test]
fn a_login_and_queries_with_both_ends_of_result_sets_pair_at_every_cut() {
    for deprecate_eof in [false, true] {
        let caps = if deprecate_eof {
            CLIENT
        } else {
            CLIENT & !handshake::CLIENT_DEPRECATE_EOF
        };
        let mut calls = login_calls(caps);
        calls.push(query("SELECT id, name FROM users"));
        let mut rows = vec![vec![2], column_def("id", 3), column_def("name", 0xfd)];
        if !deprecate_eof {
            rows.push(eof(2));
        }
        rows.push(b"\x011\x03ann".to_vec());
        rows.push(vec![0x01, b'2', 0xfb]);
        rows.push(if deprecate_eof { end_ok(2) } else { eof(2) });
        calls.push(server(&rows, 1));
        calls.push(query("UPDATE users SET name = 'bob' WHERE id = 2"));
        calls.push(server(&[ok(1, 2)], 1));
        calls.push(query("SELECT * FROM nope"));
        calls.push(server(
            &[b"\xff\x7a\x04#42S02Table 'shop.nope' doesn't exist".to_vec()],
            1,
        ));
        let got = run_all_cuts(&calls, true);
        assert_eq!(got.len(), 4, "{got:#?}");
        let login = &got[0].exchange;
        assert_eq!(login.command, Command::CONNECT);
        let info = login.connection.as_ref().unwrap();
        assert_eq!(
            (
                info.server_version.as_str(),
                info.connection_id,
                info.user.as_str(),
                info.database.as_deref()
            ),
            ("10.11.6-MariaDB", 7, "app", Some("shop"))
        );
        assert_eq!(sql(&got[1].exchange), "SELECT id, name FROM users");
        assert_eq!(got[1].exchange.response.as_ref().unwrap().rows(), 2);
        assert_eq!(got[1].start_ns, 4000);
        assert_eq!(got[1].end_ns, Some(5000));
        assert!(got[1].exchange.connection.is_some());
        assert_eq!(
            got[2].exchange.response.as_ref().unwrap().affected_rows(),
            1
        );
        assert_eq!(got[3].exchange.error().unwrap().code, 1146);
    }
}

#[test]
fn prepared_statements_show_their_sql_and_bound_parameters() {
    let mut calls = login_calls(CLIENT);
    calls.push(client(
        0,
        b"\x16SELECT c FROM sbtest1 WHERE id = ? AND k > ?",
    ));
    let mut prepare_ok = vec![0, 9, 0, 0, 0];
    prepare_ok.extend(1u16.to_le_bytes());
    prepare_ok.extend(2u16.to_le_bytes());
    prepare_ok.extend([0, 0, 0]);
    calls.push(server(
        &[
            prepare_ok,
            column_def("?", 8),
            column_def("?", 8),
            column_def("c", 0xfe),
        ],
        1,
    ));
    let mut execute = vec![0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0, 0b10, 1, 8, 0, 8, 0];
    execute.extend(5001i64.to_le_bytes());
    calls.push(client(0, &execute));
    calls.push(server(
        &[
            vec![1],
            column_def("c", 0xfe),
            b"\x00\x00\x03abc".to_vec(),
            end_ok(2),
        ],
        1,
    ));
    calls.push(client(0, &[0x19, 9, 0, 0, 0]));
    calls.push(query("SELECT 1"));
    calls.push(server(
        &[vec![1], column_def("1", 8), b"\x011".to_vec(), end_ok(2)],
        1,
    ));
    let got = run_all_cuts(&calls, true);
    let commands: Vec<_> = got.iter().map(|p| p.exchange.command.name()).collect();
    assert_eq!(
        commands,
        [
            "CONNECT",
            "STMT_PREPARE",
            "STMT_EXECUTE",
            "STMT_CLOSE",
            "QUERY"
        ]
    );
    let execute = &got[2].exchange;
    assert_eq!(sql(execute), "SELECT c FROM sbtest1 WHERE id = ? AND k > ?");
    assert_eq!(execute.statement_id, Some(9));
    assert_eq!(execute.params.len(), 2);
    assert_eq!(
        execute.params[0].value.as_ref().unwrap().data.as_slice(),
        b"5001"
    );
    assert_eq!(execute.params[1].value, None, "NULL by the bitmap");
    let Outcome::Rows(set) = &execute.response.as_ref().unwrap().results[0] else {
        panic!()
    };
    assert!(set.binary);
    assert_eq!(
        set.first_rows[0][0].as_ref().unwrap().data.as_slice(),
        b"abc"
    );
    let close = &got[3];
    assert_eq!(
        close.exchange.response,
        Some(MysqlResponse::default()),
        "no reply expected"
    );
    assert_eq!(
        sql(&close.exchange),
        "SELECT c FROM sbtest1 WHERE id = ? AND k > ?"
    );
}

#[test]
fn compressed_connections_are_inflated_after_the_login() {
    let caps = CLIENT | CLIENT_COMPRESS;
    let mut calls = login_calls(caps);
    calls.push(compress(
        query("SELECT 'compressed', 'compressed', 'compressed'"),
        0,
    ));
    calls.push(compress(
        server(
            &[
                vec![1],
                column_def("c", 0xfd),
                b"\x0acompressed".to_vec(),
                end_ok(2),
            ],
            1,
        ),
        1,
    ));
    let got = run_all_cuts(&calls, true);
    assert_eq!(got.len(), 2);
    assert!(got[0].exchange.connection.as_ref().unwrap().compressed());
    assert_eq!(
        sql(&got[1].exchange),
        "SELECT 'compressed', 'compressed', 'compressed'"
    );
    assert_eq!(got[1].exchange.response.as_ref().unwrap().rows(), 1);
}

#[test]
fn a_compressed_connection_met_in_the_middle_is_recognised_and_inflated() {
    let calls = vec![
        compress(query("SELECT 'first seen'"), 0),
        compress(
            server(
                &[
                    vec![1],
                    column_def("c", 0xfd),
                    b"\x0afirst seen".to_vec(),
                    end_ok(2),
                ],
                1,
            ),
            1,
        ),
    ];
    // Met in the middle, a command is only recognised from a syscall's whole bytes (as capture delivers
    // a small call), so this conversation is not cut.
    let (got, stats) = run(&calls, false, None);
    assert_eq!(stats, SessionStats::default());
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(sql(&got[0].exchange), "SELECT 'first seen'");
    assert_eq!(got[0].exchange.response.as_ref().unwrap().rows(), 1);
    assert!(
        !packet::opens_compressed_command(&query("SELECT 1").1),
        "plain is not compressed"
    );
}

#[test]
fn a_connection_met_in_the_middle_is_picked_up_at_its_next_command() {
    let calls = vec![
        // The tail of an answer to a command never seen.
        server(&[b"\x01x".to_vec(), end_ok(2)], 3),
        query("SELECT 2"),
        server(&[vec![1], column_def("2", 8), b"\x012".to_vec(), eof(2)], 1),
        query("DO 1"),
        server(&[ok(0, 2)], 1),
    ];
    let (got, stats) = run(&calls, false, None);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(sql(&got[0].exchange), "SELECT 2");
    assert_eq!(got[0].exchange.response.as_ref().unwrap().rows(), 1);
    assert!(got[0].exchange.connection.is_none());
    assert_eq!(stats.lost_sync, 0);
}

#[test]
fn tls_after_the_greeting_stops_decoding() {
    let mut ssl = login(CLIENT | (1 << 11), "", None);
    ssl.truncate(32);
    let calls = [
        server(&[mariadb_greeting("8.0.36", 1, CLIENT | (1 << 11))], 0),
        client(1, &ssl),
        (Flow::Response, b"\x16\x03\x03 random TLS bytes".to_vec()),
        (Flow::Request, b"\x17\x03\x03 more".to_vec()),
    ];
    let mut s = MysqlSession::new(1024, true);
    let mut out = Vec::new();
    for (i, (flow, bytes)) in calls.iter().enumerate() {
        s.on_data(Chunk::new(*flow, bytes, i as u64, true), &mut out);
    }
    s.on_close(&mut out);
    assert!(out.is_empty());
    assert!(s.is_encrypted());
    assert_eq!(
        s.stats(),
        SessionStats {
            encrypted: 1,
            ..SessionStats::default()
        },
        "counted as encrypted, not as loss"
    );
}

#[test]
fn a_gap_inside_a_row_keeps_the_answer_and_one_across_packets_drops_it() {
    let mut s = MysqlSession::new(1024, false);
    let mut out = Vec::new();
    let q = query("SELECT blob FROM t");
    s.on_data(Chunk::new(Flow::Request, &q.1, 1, true), &mut out);
    let (_, answer) = server(
        &[
            vec![1],
            column_def("b", 0xfc),
            [&[0xfc, 0xe8, 0x03][..], &[b'z'; 1000]].concat(),
            end_ok(2),
        ],
        1,
    );
    // The row's value loses 900 bytes in the middle.
    let row_start = answer.len() - 11 - 1007;
    s.on_data(
        Chunk::new(Flow::Response, &answer[..row_start + 50], 2, true),
        &mut out,
    );
    s.on_gap(Flow::Response, 900, &mut out);
    s.on_data(
        Chunk::new(Flow::Response, &answer[row_start + 950..], 3, false),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert!(out[0].truncated);
    assert_eq!(out[0].exchange.response.as_ref().unwrap().rows(), 1);
    // A gap across packet boundaries loses sync: the pending query is dropped and counted.
    s.on_data(Chunk::new(Flow::Request, &q.1, 4, true), &mut out);
    s.on_data(Chunk::new(Flow::Response, &answer[..10], 5, true), &mut out);
    s.on_gap(Flow::Response, answer.len() as u64, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(s.stats().lost_sync, 1);
    assert_eq!(s.stats().dropped_requests, 1);
}

#[test]
fn hostile_bytes_never_panic_and_memory_stays_bounded() {
    let mut s = MysqlSession::new(64, false);
    let mut out = Vec::new();
    let mut seed = 7u64;
    for i in 0..2000u64 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let len = (seed >> 33) as usize % 64;
        let bytes: Vec<u8> = (0..len).map(|j| (seed >> (j % 56)) as u8).collect();
        let flow = if seed & 1 == 0 {
            Flow::Request
        } else {
            Flow::Response
        };
        s.on_data(Chunk::new(flow, &bytes, i, seed & 2 == 0), &mut out);
    }
    for _ in 0..MAX_PENDING + 10 {
        s.on_data(
            Chunk::new(Flow::Request, &query("SELECT 1").1, 1, true),
            &mut out,
        );
    }
    assert!(s.pairing.pending.len() <= MAX_PENDING);
}

#[test]
fn long_data_parameters_are_not_read_from_the_execution() {
    let mut calls = login_calls(CLIENT);
    calls.push(client(0, b"\x16INSERT INTO docs (id, body) VALUES (?, ?)"));
    let mut prepare_ok = vec![0, 3, 0, 0, 0];
    prepare_ok.extend(0u16.to_le_bytes());
    prepare_ok.extend(2u16.to_le_bytes());
    prepare_ok.extend([0, 0, 0]);
    calls.push(server(
        &[prepare_ok, column_def("?", 8), column_def("?", 0xfc)],
        1,
    ));
    // The body goes in two pieces of long data, unanswered.
    for piece in [&[b'a'; 300][..], &[b'b'; 200][..]] {
        calls.push(client(0, &[&[0x18, 3, 0, 0, 0, 1, 0][..], piece].concat()));
    }
    let mut execute = vec![0x17, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 8, 0, 0xfc, 0];
    execute.extend(77i64.to_le_bytes());
    calls.push(client(0, &execute));
    calls.push(server(&[ok(1, 2)], 1));
    let got = run_all_cuts(&calls, true);
    let commands: Vec<_> = got.iter().map(|p| p.exchange.command.name()).collect();
    assert_eq!(
        commands,
        [
            "CONNECT",
            "STMT_PREPARE",
            "STMT_SEND_LONG_DATA",
            "STMT_SEND_LONG_DATA",
            "STMT_EXECUTE"
        ]
    );
    let params = &got[4].exchange.params;
    assert_eq!(params[0].value.as_ref().unwrap().data.as_slice(), b"77");
    let body = params[1].value.as_ref().unwrap();
    assert_eq!(
        (body.data.len(), body.len()),
        (0, 500),
        "500 bytes sent before, none kept"
    );
    assert_eq!(
        got[4].exchange.response.as_ref().unwrap().affected_rows(),
        1
    );
}

#[test]
fn a_connection_refused_instead_of_greeted_is_a_failed_login() {
    let calls = [server(&[b"\xff\x10\x04Too many connections".to_vec()], 0)];
    let got = run_all_cuts(&calls, true);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].exchange.command, Command::CONNECT);
    let error = got[0].exchange.error().expect("the error");
    assert_eq!(
        (error.code, error.message.as_str()),
        (1040, "Too many connections")
    );
}
