//! Tests of the framing primitives: where heads end, chunk sizes, what counts as a message start, and
//! the limits that turn garbage into a loss of sync instead of unbounded buffering.

use super::*;

#[test]
fn heads_end_at_the_first_blank_line_with_crlf_or_bare_lf() {
    assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody", 0), Some(24));
    assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\nbody", 0), Some(21));
    assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
}

#[test]
fn chunk_sizes_are_hex_with_optional_extensions() {
    assert_eq!(chunk_size(b"1a"), Some(26));
    assert_eq!(chunk_size(b"1A;name=\"v\""), Some(26));
    assert_eq!(chunk_size(b"0"), Some(0));
    assert_eq!(chunk_size(b"0000000000000000001a"), Some(26));
    for bad in [&b""[..], b"xyz", b";ext", b"ffffffffffffffffff"] {
        assert_eq!(chunk_size(bad), None);
    }
}

#[test]
fn message_starts_are_strict_about_versions_and_methods() {
    assert!(starts_message(Role::Request, b"GET /x HTTP/1.1\r\n"));
    assert!(starts_message(Role::Request, b"OPTIONS * HTTP/1.0\r\n"));
    // A request line longer than the capture: judged by its target.
    assert!(starts_message(Role::Request, b"GET /very/long/path"));
    assert!(!starts_message(Role::Request, b"SET key value\r\n"));
    assert!(!starts_message(Role::Request, b"get / HTTP/1.1\r\n"));
    assert!(!starts_message(Role::Request, b"GET / HTTP/2.0\r\n"));
    assert!(starts_message(
        Role::Response,
        b"HTTP/1.1 404 Not Found\r\n"
    ));
    assert!(!starts_message(Role::Response, b"HTTP/1.1 is a protocol"));
    assert!(!starts_message(Role::Response, b"HTTP/2 200\r\n"));
}

#[test]
fn an_endless_head_loses_sync_instead_of_growing() {
    let mut decoder = MessageDecoder::new(Role::Request, 16, true);
    let mut line = b"GET / HTTP/1.1\r\n".to_vec();
    let filler = vec![b'a'; MAX_HEAD];
    line.extend_from_slice(b"X: ");
    line.extend_from_slice(&filler);
    let mut data = &line[..];
    let mut events = Vec::new();
    while let Some(event) = decoder.step(&mut data, 1) {
        events.push(event);
    }
    assert_eq!(events, [Event::LostSync]);
    assert!(!decoder.in_sync());
}

#[test]
fn a_gap_past_the_end_of_a_body_ends_it_then_loses_sync() {
    let mut decoder = MessageDecoder::new(Role::Response, 64, true);
    let mut data = &b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"[..];
    assert!(matches!(decoder.step(&mut data, 1), Some(Event::Head(_))));
    assert_eq!(decoder.start_body(Framing::Length(4)), None);
    assert_eq!(decoder.step(&mut data, 1), None);
    let mut events = Vec::new();
    decoder.gap(10, &mut events);
    let [Event::Body(body), Event::LostSync] = &events[..] else {
        panic!("{events:?}");
    };
    assert_eq!(
        (body.body.data.as_slice(), body.body.len()),
        (&b"ab"[..], 4)
    );
}
