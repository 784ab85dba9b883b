//! Pairing HTTP/1.x requests with their responses on one connection.
//!
//! Responses come back in request order (pipelined requests included), so pending requests form a queue.
//! The session decides each body's framing from the head and, for responses, from the request it answers
//! (`HEAD`, 1xx, 204 and 304 have no body). Interim responses (`100 Continue`) do not end an exchange;
//! `101 Switching Protocols` and a successful `CONNECT` end it and the rest of the connection is not
//! decoded. After a loss of sync, responses are only trusted again once they follow a request decoded
//! after the loss (the rules of `protocol::pairing`, shared with every request/response protocol).
//!
//! Pure: no I/O; owned by the one shard thread that owns the connection.

use super::{
    exchange::{Headers, HttpExchange, HttpRequest, HttpResponse},
    message::{Body, Event, Framing, Head, MessageDecoder, StartLine},
};
use crate::protocol::{
    common::{Flow, SessionStats},
    pairing::{Pairing, PendingRequest},
    plugin::{Chunk, Finish, Session},
};

/// Requests waiting for responses on one connection beyond which the responses are taken to be missing
/// (e.g. that direction is not being captured): deeper HTTP pipelining does not happen in practice, and
/// the queue must not grow without bound.
const MAX_PENDING: usize = 1024;

/// A finished HTTP exchange with its timing.
pub type Paired = crate::protocol::common::Paired<HttpExchange>;

#[derive(Debug)]
struct Pending {
    request: HttpRequest,
    start_ns: u64,
    request_bytes: u64,
    response_bytes: u64,
    truncated: bool,
}

impl PendingRequest for Pending {
    fn start_ns(&self) -> u64 {
        self.start_ns
    }
}

/// The head of the response being received, until its body ends.
#[derive(Debug)]
struct Answer {
    response: HttpResponse,
    /// 1xx other than 101: more responses follow for the same request.
    interim: bool,
    /// Whether the connection stops speaking HTTP after it.
    switches: bool,
    /// No request was waiting for it.
    orphan: bool,
}

/// Request/response state of one connection.
#[derive(Debug)]
pub struct HttpSession {
    pairing: Pairing<MessageDecoder, Pending>,
    /// The newest pending request is still receiving its body.
    receiving_body: bool,
    answer: Option<Answer>,
    events: Vec<Event>,
}

impl HttpSession {
    fn on_event(&mut self, flow: Flow, event: Event, out: &mut impl Finish<HttpExchange>) {
        match flow {
            Flow::Request => self.on_request_event(event),
            Flow::Response => self.on_response_event(event, out),
        }
    }

    fn on_request_event(&mut self, event: Event) {
        match event {
            Event::Head(head) => self.on_request_head(head),
            Event::Body(body) => self.on_request_body(body),
            Event::LostSync => self.lose_sync(),
        }
    }

    fn on_request_head(&mut self, head: Head) {
        let StartLine::Request { method, target } = head.start else {
            return;
        };
        let Some(framing) = request_framing(&head.headers) else {
            self.pairing.requests.force_out_of_sync();
            return self.lose_sync();
        };
        if self.pairing.pending.len() >= MAX_PENDING {
            self.lose_sync();
        }
        self.pairing.pending.push_back(Pending {
            request: HttpRequest {
                method,
                target,
                version: head.version,
                headers: head.headers,
                ..HttpRequest::default()
            },
            start_ns: head.start_ns,
            request_bytes: head.wire_bytes,
            response_bytes: 0,
            truncated: false,
        });
        self.receiving_body = true;
        if let Some(event) = self.pairing.requests.start_body(framing) {
            self.on_request_event(event);
        }
    }

    fn on_request_body(&mut self, body: Body) {
        if !std::mem::take(&mut self.receiving_body) {
            return;
        }
        let Some(p) = self.pairing.pending.back_mut() else {
            return;
        };
        p.truncated |= !body.complete || body.body.is_truncated();
        p.request_bytes += body.wire_bytes;
        p.request.body = body.body;
        p.request.trailers = body.trailers;
    }

    fn on_response_event(&mut self, event: Event, out: &mut impl Finish<HttpExchange>) {
        match event {
            Event::Head(head) => self.on_response_head(head, out),
            Event::Body(body) => self.on_response_body(body, out),
            Event::LostSync => self.lose_sync(),
        }
    }

    fn on_response_head(&mut self, head: Head, out: &mut impl Finish<HttpExchange>) {
        let StartLine::Response { status, reason } = head.start else {
            return;
        };
        let orphan = self.pairing.pending.is_empty();
        if orphan {
            self.pairing.orphan();
        }
        let answered = self.pairing.pending.front_mut();
        let method = answered.as_ref().map_or("", |p| p.request.method.as_str());
        let switches = status == 101 || (method == "CONNECT" && (200..300).contains(&status));
        let interim = (100..200).contains(&status) && status != 101;
        let framing = if switches {
            Framing::Empty
        } else {
            response_framing(method, status, &head.headers)
        };
        if let Some(p) = answered {
            p.response_bytes += head.wire_bytes;
        }
        self.answer = Some(Answer {
            response: HttpResponse {
                version: head.version,
                status,
                reason,
                headers: head.headers,
                ..HttpResponse::default()
            },
            interim,
            switches,
            orphan,
        });
        if let Some(event) = self.pairing.responses.start_body(framing) {
            self.on_response_event(event, out);
        }
    }

    fn on_response_body(&mut self, body: Body, out: &mut impl Finish<HttpExchange>) {
        let Some(mut answer) = self.answer.take() else {
            return;
        };
        if answer.orphan {
            return;
        }
        if answer.interim {
            if let Some(p) = self.pairing.pending.front_mut() {
                p.response_bytes += body.wire_bytes;
            }
            return;
        }
        let Some(mut p) = self.pairing.pending.pop_front() else {
            return;
        };
        if self.pairing.pending.is_empty() && std::mem::take(&mut self.receiving_body) {
            // Answered before its body was all sent (e.g. 413): the rest of the body is not recorded.
            p.truncated = true;
        }
        p.response_bytes += body.wire_bytes;
        p.truncated |= !body.complete || body.body.is_truncated();
        answer.response.body = body.body;
        answer.response.trailers = body.trailers;
        let end_ns = body.end_ns;
        out.push(paired(p, Some((answer.response, end_ns))));
        if answer.switches {
            self.pairing.requests.switch();
            self.pairing.responses.switch();
        }
    }

    /// The shared loss rules, and this session's own half-received state.
    fn lose_sync(&mut self) {
        self.pairing.lose_sync();
        self.receiving_body = false;
        self.answer = None;
    }
}

impl Session for HttpSession {
    type Exchange = HttpExchange;

    fn new(keep_bytes: usize, in_sync: bool) -> Self {
        Self {
            pairing: Pairing::new(|flow| MessageDecoder::new(flow.into(), keep_bytes, in_sync)),
            receiving_body: false,
            answer: None,
            events: Vec::new(),
        }
    }

    fn on_data(&mut self, chunk: Chunk<'_>, out: &mut impl Finish<HttpExchange>) {
        self.pairing.decoder_for(chunk);
        let mut rest = chunk.data;
        while let Some(event) = self
            .pairing
            .decoder(chunk.flow)
            .step(&mut rest, chunk.ts_ns)
        {
            self.on_event(chunk.flow, event, out);
        }
    }

    fn on_gap(&mut self, flow: Flow, len: u64, out: &mut impl Finish<HttpExchange>) {
        let mut events = std::mem::take(&mut self.events);
        self.pairing.decoder(flow).gap(len, &mut events);
        for event in events.drain(..) {
            self.on_event(flow, event, out);
        }
        self.events = events;
    }

    /// A close-delimited response ends; requests still waiting are reported without a response.
    fn on_close(&mut self, out: &mut impl Finish<HttpExchange>) {
        if let Some(event) = self.pairing.requests.close() {
            self.on_request_event(event);
        }
        if let Some(event) = self.pairing.responses.close() {
            self.on_response_event(event, out);
        }
        for p in self.pairing.pending.drain(..) {
            out.push(paired(p, None));
        }
    }

    fn stats(&self) -> SessionStats {
        self.pairing.stats
    }
}

/// How a request's body is framed; `None` when the head makes it impossible to tell.
fn request_framing(headers: &Headers) -> Option<Framing> {
    match declared_framing(headers)? {
        // A request without a length has no body (RFC 9112 §6.3); one with an unknown coding cannot be
        // followed.
        Framing::UntilClose if headers.get("transfer-encoding").is_some() => None,
        Framing::UntilClose => Some(Framing::Empty),
        framing => Some(framing),
    }
}

fn response_framing(method: &str, status: u16, headers: &Headers) -> Framing {
    if method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304 {
        return Framing::Empty;
    }
    // Contradictory lengths on a response: read until close, the only reading that cannot overrun.
    declared_framing(headers).unwrap_or(Framing::UntilClose)
}

/// Framing from Transfer-Encoding and Content-Length; `UntilClose` when neither says; `None` when
/// Content-Length values are malformed or disagree.
fn declared_framing(headers: &Headers) -> Option<Framing> {
    // The coding applied last is the last element of the last field (a list may span several lines).
    let last_coding = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("transfer-encoding"))
        .last();
    if let Some((_, coding)) = last_coding {
        let last = coding.rsplit(|b| *b == b',').next().unwrap_or(&[]);
        return Some(if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for (_, value) in headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        for part in value.split(|b| *b == b',') {
            let n: u64 = std::str::from_utf8(part.trim_ascii()).ok()?.parse().ok()?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        }
    }
    Some(length.map_or(Framing::UntilClose, Framing::Length))
}

fn paired(p: Pending, response: Option<(HttpResponse, u64)>) -> Paired {
    let end_ns = response.as_ref().map(|(_, end)| *end);
    Paired {
        exchange: HttpExchange {
            request: p.request,
            response: response.map(|(r, _)| r),
        },
        start_ns: p.start_ns,
        end_ns,
        request_bytes: p.request_bytes,
        response_bytes: p.response_bytes,
        truncated: p.truncated,
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
