//! HTTP/1.x: message framing for one direction (`message`), request/response pairing (`session`), the
//! decoded exchange with the helpers filters and views need (`exchange`: path, query, host, status), and
//! what the rest of watcher sees of it: JSON (`json`), its secrets (`redact`), record filters and their options (`filter`), table cells,
//! detail lines and report lines (`view`), path templates for statistics (`template`), span attributes and metric labels (`telemetry`).
//!
//! Heads are parsed by `httparse`; body framing (Content-Length, chunked, close-delimited, bodiless
//! responses) is ours, because it has to survive capture gaps and a start in the middle of a stream.
//!
//! Pure: no I/O.

pub mod exchange;
pub mod filter;
pub mod json;
pub mod message;
pub mod redact;
pub mod session;
pub mod telemetry;
pub mod template;
pub mod view;

pub use exchange::{version_text, Headers, HttpExchange, HttpRequest, HttpResponse};
pub use session::{HttpSession, Paired};

use super::{
    common::Flow,
    plugin::{Columns, Payload, Protocol, Recognition},
};

/// `--fail-on` condition: a 5xx response.
const SERVER_ERROR_CONDITION: &str = "http-5xx";
/// `--fail-on` condition: a 4xx response.
const CLIENT_ERROR_CONDITION: &str = "http-4xx";

/// The HTTP/1.x protocol, as the registry lists it.
#[derive(Debug)]
pub struct Http;

impl Protocol for Http {
    const NAME: &'static str = "http";
    const TITLE: &'static str = "HTTP";
    const ABOUT: &'static str = "HTTP/1.0 and HTTP/1.1";
    const COLUMNS: Columns = Columns {
        operation: "method",
        operation_short: "method",
        subject: "host + target",
        outcome: "status",
    };
    const FILTER_FLAGS: &'static str = "--method/--host/--path-prefix/--path-regex/--status";
    const FAIL_ON: &'static [&'static str] = &[SERVER_ERROR_CONDITION, CLIENT_ERROR_CONDITION];

    type Exchange = HttpExchange;
    type Session = HttpSession;
    type Filter = filter::HttpFilter;

    fn recognise(flow: Flow, data: &[u8]) -> Recognition {
        if message::starts_message(flow.into(), data) {
            Recognition::Yes
        } else {
            Recognition::No
        }
    }
}

impl Payload for HttpExchange {
    fn operation(&self) -> &str {
        &self.request.method
    }

    /// A client or server error (4xx or 5xx).
    fn is_error(&self) -> bool {
        self.status().is_some_and(|s| s >= 400)
    }

    /// Method and path template: `GET /users/{id}`.
    fn write_route(&self, out: &mut String) {
        out.push_str(&self.request.method);
        out.push(' ');
        template::push_template(self.path(), out);
    }

    fn write_status(&self, out: &mut String) {
        match self.status() {
            Some(code) => out.push_str(itoa::Buffer::new().format(code)),
            None => out.push_str("(no response)"),
        }
    }

    fn contains_text(&self, found_in: &mut dyn FnMut(&str) -> bool) -> bool {
        found_in(&self.request.method)
            || found_in(&self.request.target)
            || self.host().is_some_and(&mut *found_in)
            || self.response.as_ref().is_some_and(|r| {
                found_in(itoa::Buffer::new().format(r.status)) || found_in(&r.reason)
            })
    }

    fn meets(&self, condition: &str) -> bool {
        match condition {
            SERVER_ERROR_CONDITION => self.status().is_some_and(|s| s >= 500),
            CLIENT_ERROR_CONDITION => self.status().is_some_and(|s| (400..500).contains(&s)),
            _ => false,
        }
    }

    fn heap_bytes(&self) -> usize {
        HttpExchange::heap_bytes(self)
    }
}
