//! What people see of an HTTP exchange: the table's host + target and status cells (the status toned by
//! class), the detail screen's request and response with headers and bodies, and report lines.
//!
//! Pure: builds text, draws nothing.

use super::exchange::{version_text, Headers, HttpExchange};
use crate::protocol::{
    common::Blob,
    plugin::{Cells, DetailLine, PayloadView, Tone},
    text::{body_lines, printable, MASKED},
};

impl PayloadView for HttpExchange {
    /// Host + target, and the status with its reason, toned by class.
    fn cells(&self) -> Cells {
        let mut target = String::new();
        // An absolute-form target already names its host.
        if let (Some(host), true) = (self.host(), self.request.target.starts_with('/')) {
            target.push_str(host);
        }
        printable(self.request.target.as_bytes(), 200, &mut target);
        let (outcome, tone) = match &self.response {
            None => ("(no response)".to_owned(), Tone::Plain),
            Some(r) => {
                let tone = match r.status {
                    500.. => Tone::Error,
                    400..=499 => Tone::Warning,
                    300..=399 => Tone::Redirect,
                    200..=299 => Tone::Good,
                    _ => Tone::Info,
                };
                (format!("{} {}", r.status, r.reason), tone)
            }
        };
        Cells {
            subject: target,
            outcome,
            tone,
        }
    }

    /// Request and response: start lines, headers, bodies and trailers.
    fn detail(&self, lines: &mut Vec<DetailLine>) {
        let req = &self.request;
        lines.push(DetailLine::heading("Request"));
        lines.push(DetailLine::text(format!(
            "  {} {} {}",
            req.method,
            req.target,
            version_text(req.version)
        )));
        message_lines(&req.headers, &req.body, &req.trailers, lines);
        lines.push(DetailLine::text(""));
        lines.push(DetailLine::heading("Response"));
        let Some(rsp) = &self.response else {
            lines.push(DetailLine::text(
                "  (no response before the connection closed)",
            ));
            return;
        };
        lines.push(DetailLine::text(format!(
            "  {} {} {}",
            version_text(rsp.version),
            rsp.status,
            rsp.reason
        )));
        message_lines(&rsp.headers, &rsp.body, &rsp.trailers, lines);
    }

    /// Method and target, and the status with its reason.
    fn describe(&self, out: &mut String) {
        out.push_str(&self.request.method);
        out.push(' ');
        out.push_str(&self.request.target);
        out.push_str(" -> ");
        match &self.response {
            Some(r) => {
                out.push_str(itoa::Buffer::new().format(r.status));
                out.push(' ');
                out.push_str(&r.reason);
            }
            None => out.push_str("(no response)"),
        }
    }
}

fn message_lines(headers: &Headers, body: &Blob, trailers: &Headers, lines: &mut Vec<DetailLine>) {
    let header_line = |(name, value, redacted): (&str, &[u8], bool)| {
        let mut text = format!("  {name}: ");
        printable(value, 4096, &mut text);
        if redacted {
            text.push_str("  ");
            text.push_str(MASKED);
        }
        DetailLine::text(text)
    };
    lines.extend(headers.iter_marked().map(header_line));
    if !body.is_empty() {
        lines.push(DetailLine::text(""));
        let says_json = headers
            .get("content-type")
            .is_some_and(|t| memchr::memmem::find(t, b"json").is_some());
        body_lines(body, says_json, lines);
    }
    if !trailers.is_empty() {
        lines.push(DetailLine::text("  trailers:"));
        lines.extend(trailers.iter_marked().map(header_line));
    }
}
