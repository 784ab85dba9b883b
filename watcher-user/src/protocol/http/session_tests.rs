//! Tests of HTTP framing and pairing. Every scenario is a list of syscalls; `same_at_every_split` replays
//! it with each syscall cut in two at every byte boundary and checks the outcome does not change.

use super::*;
use crate::protocol::common::Blob;
use crate::protocol::plugin::Chunk;

const KEEP_ALL: usize = 1 << 20;

/// One syscall's bytes in one direction.
type Call<'a> = (Flow, &'a [u8]);

fn req(bytes: &[u8]) -> Call<'_> {
    (Flow::Request, bytes)
}

fn rsp(bytes: &[u8]) -> Call<'_> {
    (Flow::Response, bytes)
}

/// Replays `calls` (timestamps 1, 2, 3, ...), cutting call `cut.0` at byte `cut.1`, then closes.
fn replay(
    keep: usize,
    calls: &[Call<'_>],
    cut: Option<(usize, usize)>,
) -> (Vec<Paired>, HttpSession) {
    let mut session = HttpSession::new(keep, true);
    let mut out = Vec::new();
    for (i, (flow, data)) in calls.iter().enumerate() {
        let ts = i as u64 + 1;
        match cut {
            Some((at, k)) if at == i => {
                session.on_data(Chunk::new(*flow, &data[..k], ts, true), &mut out);
                session.on_data(Chunk::new(*flow, &data[k..], ts, false), &mut out);
            }
            _ => session.on_data(Chunk::new(*flow, data, ts, true), &mut out),
        }
    }
    session.on_close(&mut out);
    (out, session)
}

/// The exchanges of `calls`, checked to be the same however any one syscall is split.
fn same_at_every_split(calls: &[Call<'_>]) -> Vec<Paired> {
    let (whole, session) = replay(KEEP_ALL, calls, None);
    assert_eq!(session.stats(), SessionStats::default(), "{whole:#?}");
    for (i, (_, data)) in calls.iter().enumerate() {
        for k in 1..data.len() {
            let (split, session) = replay(KEEP_ALL, calls, Some((i, k)));
            assert_eq!(split, whole, "call {i} split at byte {k}");
            assert_eq!(session.stats(), SessionStats::default(), "call {i} at {k}");
        }
    }
    whole
}

fn status(p: &Paired) -> Option<u16> {
    p.exchange.status()
}

fn body(blob: &Blob) -> &[u8] {
    &blob.data
}

#[test]
fn content_length_bodies_in_both_directions() {
    let request =
        b"POST /items?x=1 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 11\r\n\r\n{\"a\":[1,2]}";
    let response = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Case: Kept\r\n\r\nok";
    let out = same_at_every_split(&[req(request), rsp(response)]);
    assert_eq!(out.len(), 1);
    let p = &out[0];
    let x = &p.exchange;
    assert_eq!(
        (x.request.method.as_str(), x.path(), x.query(), x.host()),
        ("POST", "/items", Some("x=1"), Some("api.test"))
    );
    assert_eq!(body(&x.request.body), b"{\"a\":[1,2]}");
    let r = x.response.as_ref().expect("answered");
    assert_eq!((r.status, r.reason.as_str()), (201, "Created"));
    let names: Vec<&str> = r.headers.iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["Content-Length", "X-Case"]);
    assert_eq!(body(&r.body), b"ok");
    assert_eq!((p.start_ns, p.end_ns), (1, Some(2)));
    assert_eq!(p.request_bytes, request.len() as u64);
    assert_eq!(p.response_bytes, response.len() as u64);
    assert!(!p.truncated);
}

/// A body of declared length is stored in an allocation of its kept size, however it arrives (left to
/// grow, 630 bytes took 1 KiB of the store's memory budget), and no bigger than the kept size when the
/// declared length is larger.
#[test]
fn a_declared_body_is_stored_in_an_allocation_of_its_size() {
    let page = "<p>watcher bench</p>\n".repeat(30);
    let response = format!("HTTP/1.1 200 OK\r\nContent-Length: 630\r\n\r\n{page}");
    let calls = [req(b"GET / HTTP/1.1\r\n\r\n"), rsp(response.as_bytes())];
    for cut in [None, Some((1, 50)), Some((1, 400))] {
        let (out, _) = replay(KEEP_ALL, &calls, cut);
        let r = out[0].exchange.response.as_ref().expect("answered");
        assert_eq!(body(&r.body), page.as_bytes());
        assert_eq!(r.body.heap_bytes(), 630, "cut at {cut:?}");
    }
    let (out, _) = replay(100, &calls, None);
    let r = out[0].exchange.response.as_ref().expect("answered");
    assert_eq!((r.body.len(), r.body.heap_bytes()), (630, 100));
}

#[test]
fn chunked_bodies_with_extensions_and_trailers() {
    let request = b"PUT /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0;end\r\nX-Sum: 42\r\n\r\n";
    let out = same_at_every_split(&[req(request), rsp(response)]);
    assert_eq!(out.len(), 1);
    let x = &out[0].exchange;
    assert_eq!(body(&x.request.body), b"hello world");
    assert_eq!(x.request.body.len(), 11);
    let r = x.response.as_ref().expect("answered");
    assert_eq!(body(&r.body), b"abc");
    let trailers: Vec<_> = r.trailers.iter().collect();
    assert_eq!(trailers, [("X-Sum", &b"42"[..])]);
    assert_eq!(out[0].response_bytes, response.len() as u64);
}

#[test]
fn close_delimited_response_ends_when_the_connection_closes() {
    let out = same_at_every_split(&[
        req(b"GET /old HTTP/1.0\r\n\r\n"),
        rsp(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, "),
        rsp(b"second part"),
    ]);
    assert_eq!(out.len(), 1);
    let r = out[0]
        .exchange
        .response
        .as_ref()
        .expect("answered at close");
    assert_eq!(body(&r.body), b"first part, second part");
    assert_eq!(out[0].end_ns, Some(3));
    assert!(!out[0].truncated);
}

#[test]
fn head_204_304_and_interim_responses_have_no_body() {
    let out = same_at_every_split(&[
        req(b"HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n"),
        rsp(b"HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\n\r\n"),
        req(b"DELETE /x HTTP/1.1\r\n\r\n"),
        rsp(b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"),
        req(b"GET /cached HTTP/1.1\r\nIf-None-Match: \"e\"\r\n\r\n"),
        rsp(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n"),
        req(b"GET /after HTTP/1.1\r\n\r\n"),
        rsp(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"),
    ]);
    let statuses: Vec<_> = out.iter().map(status).collect();
    assert_eq!(statuses, [Some(200), Some(204), Some(304), Some(200)]);
    assert!(out[..3].iter().all(|p| p
        .exchange
        .response
        .as_ref()
        .is_some_and(|r| r.body.is_empty())));
    let last = out[3].exchange.response.as_ref().expect("answered");
    assert_eq!(body(&last.body), b"z");
}

#[test]
fn expect_100_continue_waits_for_the_final_response() {
    let head = b"POST /upload HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let fin = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let out = same_at_every_split(&[req(head), rsp(interim), req(b"data"), rsp(fin)]);
    assert_eq!(out.len(), 1);
    let p = &out[0];
    assert_eq!(status(p), Some(200));
    assert_eq!(body(&p.exchange.request.body), b"data");
    assert_eq!(p.response_bytes, (interim.len() + fin.len()) as u64);
    assert_eq!(p.end_ns, Some(4));
}

#[test]
fn keep_alive_and_pipelined_requests_pair_in_order() {
    let pipelined =
        b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 1\r\n\r\nx";
    let answers = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nBHTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\nC";
    let out = same_at_every_split(&[
        req(b"GET /first HTTP/1.1\r\n\r\n"),
        rsp(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        req(pipelined),
        rsp(answers),
    ]);
    let got: Vec<_> = out
        .iter()
        .map(|p| {
            let r = p.exchange.response.as_ref().expect("answered");
            (p.exchange.path().to_owned(), r.status, r.body.data.to_vec())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/first".to_owned(), 200, b"".to_vec()),
            ("/a".to_owned(), 200, b"A".to_vec()),
            ("/b".to_owned(), 404, b"B".to_vec()),
            ("/c".to_owned(), 500, b"C".to_vec()),
        ]
    );
}

#[test]
fn switching_protocols_is_recorded_and_the_rest_is_not_parsed() {
    let out = same_at_every_split(&[
        req(b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
        rsp(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
        req(b"\x81\x85\x00\x00\x00\x00hello"),
        rsp(b"GET / HTTP/1.1\r\n\r\n"),
    ]);
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0]), Some(101));
}

#[test]
fn bodies_beyond_the_kept_size_are_truncated_with_their_true_length() {
    let request = b"GET /file HTTP/1.1\r\n\r\n";
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    let (out, session) = replay(4, &[req(request), rsp(response)], None);
    assert_eq!(session.stats(), SessionStats::default());
    let r = out[0].exchange.response.as_ref().expect("answered");
    assert_eq!((body(&r.body), r.body.len()), (&b"0123"[..], 10));
    assert!(r.body.is_truncated() && out[0].truncated);
}

#[test]
fn a_gap_inside_a_body_shortens_it_and_the_next_message_still_pairs() {
    let mut session = HttpSession::new(KEEP_ALL, true);
    let mut out = Vec::new();
    session.on_data(
        Chunk::new(Flow::Request, b"GET /big HTTP/1.1\r\n\r\n", 1, true),
        &mut out,
    );
    session.on_data(
        Chunk::new(
            Flow::Response,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc",
            2,
            true,
        ),
        &mut out,
    );
    session.on_gap(Flow::Response, 997, &mut out);
    session.on_data(
        Chunk::new(Flow::Request, b"GET /next HTTP/1.1\r\n\r\n", 3, true),
        &mut out,
    );
    session.on_data(
        Chunk::new(
            Flow::Response,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            4,
            true,
        ),
        &mut out,
    );
    assert_eq!(session.stats(), SessionStats::default());
    assert_eq!(out.len(), 2);
    let big = out[0].exchange.response.as_ref().expect("answered");
    assert_eq!((body(&big.body), big.body.len()), (&b"abc"[..], 1000));
    assert!(out[0].truncated);
    assert_eq!(out[1].exchange.path(), "/next");
    assert!(!out[1].truncated);
}

#[test]
fn a_capture_started_mid_stream_resynchronises_at_the_next_message() {
    let mut session = HttpSession::new(KEEP_ALL, false);
    let mut out = Vec::new();
    // The tail of an upload and of a download whose heads were never seen.
    session.on_data(
        Chunk::new(Flow::Request, b"rest of an upload", 1, true),
        &mut out,
    );
    session.on_data(
        Chunk::new(Flow::Response, b"HTTP/1.1 is in this body text", 2, true),
        &mut out,
    );
    session.on_data(
        Chunk::new(Flow::Response, b"HTTP/1.1 200 OK\r\n\r\n", 3, true),
        &mut out,
    );
    assert!(out.is_empty());
    session.on_data(
        Chunk::new(Flow::Request, b"GET /now HTTP/1.1\r\n\r\n", 4, true),
        &mut out,
    );
    session.on_data(
        Chunk::new(
            Flow::Response,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!",
            5,
            true,
        ),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].exchange.path(), "/now");
    assert_eq!(session.stats().orphan_replies, 0);
}

#[test]
fn garbage_loses_sync_and_yields_nothing() {
    let (out, session) = replay(
        KEEP_ALL,
        &[
            req(b"GET / HTTP/1.1\r\n\r\n"),
            rsp(b"\x00\x01 not http at all\r\n\r\n"),
        ],
        None,
    );
    assert!(out.is_empty(), "{out:#?}");
    assert_eq!(session.stats().lost_sync, 1);
    assert_eq!(session.stats().dropped_requests, 1);
}

#[test]
fn an_unanswered_request_is_reported_at_close_and_a_cut_body_is_truncated() {
    let (out, _) = replay(
        KEEP_ALL,
        &[
            req(b"GET /slow HTTP/1.1\r\n\r\n"),
            rsp(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
            req(b"GET /never HTTP/1.1\r\n\r\n"),
        ],
        None,
    );
    // The first response was cut by the close; the second request never got one.
    assert_eq!(out.len(), 2);
    assert!(out[0].truncated);
    assert_eq!(out[1].exchange.response, None);
    assert_eq!(out[1].end_ns, None);
}

#[test]
fn conflicting_content_lengths_are_refused_not_guessed() {
    let (out, session) = replay(
        KEEP_ALL,
        &[req(
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        )],
        None,
    );
    assert!(out.is_empty());
    assert_eq!(session.stats().lost_sync, 1);
}

#[test]
fn a_capture_cut_inside_chunks_keeps_the_chunked_body_in_sync() {
    // curl uploads one chunk per syscall ("fff4\r\n" + data + "\r\n"); the capture keeps the first bytes
    // of each, so the gap ends on the CRLF after the data, or one byte before it.
    for hidden_crlf in [1u64, 2] {
        let mut session = HttpSession::new(KEEP_ALL, true);
        let mut out = Vec::new();
        let head = b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        session.on_data(Chunk::new(Flow::Request, head, 1, true), &mut out);
        session.on_data(Chunk::new(Flow::Request, b"a\r\n0123", 2, true), &mut out);
        session.on_gap(Flow::Request, 6 + hidden_crlf, &mut out);
        if hidden_crlf == 1 {
            session.on_data(Chunk::new(Flow::Request, b"\n", 2, false), &mut out);
        }
        session.on_data(
            Chunk::new(Flow::Request, b"3\r\nabc\r\n0\r\n\r\n", 3, true),
            &mut out,
        );
        session.on_data(
            Chunk::new(
                Flow::Response,
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
                4,
                true,
            ),
            &mut out,
        );
        assert_eq!(session.stats(), SessionStats::default(), "{hidden_crlf}");
        assert_eq!(out.len(), 1);
        let body = &out[0].exchange.request.body;
        assert_eq!((body.data.as_slice(), body.len()), (&b"0123"[..], 13));
        assert!(out[0].truncated);
        assert_eq!(
            out[0].request_bytes,
            (head.len() + 7 + 6 + 2 + 8 + 5) as u64
        );
    }
}

#[test]
fn requests_never_answered_are_bounded_and_counted() {
    let mut session = HttpSession::new(KEEP_ALL, true);
    let mut out = Vec::new();
    for i in 0..=MAX_PENDING as u64 {
        session.on_data(
            Chunk::new(Flow::Request, b"GET / HTTP/1.1\r\n\r\n", i, true),
            &mut out,
        );
    }
    assert!(session.pairing.pending.len() <= MAX_PENDING);
    assert_eq!(session.stats().dropped_requests, MAX_PENDING as u64);
    assert_eq!(session.stats().lost_sync, 1);
}

#[test]
fn transfer_coding_lists_may_span_several_fields() {
    let out = same_at_every_split(&[
        req(b"GET /z HTTP/1.1\r\n\r\n"),
        rsp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n"),
        req(b"GET /next HTTP/1.1\r\n\r\n"),
        rsp(b"HTTP/1.1 204 No Content\r\n\r\n"),
    ]);
    let statuses: Vec<_> = out.iter().map(status).collect();
    assert_eq!(statuses, [Some(200), Some(204)]);
}

#[test]
fn a_response_before_the_request_body_ends_marks_the_request_truncated() {
    let (out, session) = replay(
        KEEP_ALL,
        &[
            req(b"POST /u HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
            rsp(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"),
            req(b"defghij"),
        ],
        None,
    );
    assert_eq!(session.stats(), SessionStats::default());
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0]), Some(413));
    assert!(out[0].truncated);
}
