//! The detail screen: one record in full. Redis shows arguments and the reply tree; HTTP shows request
//! and response with their headers and bodies (JSON pretty-printed, text as text, binary as hex).
//! Pure drawing, like `view`.

use std::fmt::Write as _;

use ratatui::{
    layout::Rect,
    style::{Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Wrap},
    Frame as UiFrame,
};

use super::app::App;
use crate::{
    format::latency,
    protocol::{
        http::{version_text, Headers, HttpExchange},
        redis::{frame_summary, printable, Frame, RedisExchange},
        Blob,
    },
    record::{Exchange, Record},
};

/// Most body bytes shown; the rest is summarised.
const MAX_SHOWN: usize = 16 * 1024;

/// Draws the selected record.
pub fn draw_detail(f: &mut UiFrame, app: &App, area: Rect) {
    let Some(record) = app.selected_record() else {
        return;
    };
    let mut lines = summary_lines(record);
    match &record.exchange {
        Exchange::Redis(x) => redis_lines(x, &mut lines),
        Exchange::Http(x) => http_lines(x, &mut lines),
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" detail · Esc back ");
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn bold(text: &str) -> Line<'static> {
    Line::from(Span::styled(
        text.to_owned(),
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

fn summary_lines(record: &Record) -> Vec<Line<'static>> {
    let (client, server) = record.endpoint.client_server();
    vec![
        Line::from(vec![
            Span::styled(
                record.command().to_owned(),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("   {} · id {}", record.protocol(), record.id)),
        ]),
        Line::from(format!(
            "{} side · pid {} ({}) · {client} → {server}",
            record.endpoint.side.as_str(),
            record.endpoint.pid,
            record.endpoint.comm
        )),
        Line::from(format!(
            "latency {} · request {} bytes · response {} bytes{}",
            latency(record.latency_ns()),
            record.request_bytes,
            record.response_bytes,
            if record.truncated {
                " · truncated"
            } else {
                ""
            }
        )),
        Line::from(""),
    ]
}

fn redis_lines(x: &RedisExchange, lines: &mut Vec<Line<'static>>) {
    lines.push(bold("Arguments"));
    for (i, arg) in x.args.iter().enumerate() {
        lines.push(Line::from(format!("  {}: {}", i + 1, value_text(arg))));
    }
    lines.push(Line::from(""));
    lines.push(bold("Reply"));
    match &x.reply {
        Some(frame) => frame_lines(frame, 1, lines),
        None => lines.push(Line::from("  (no reply before the connection closed)")),
    }
}

fn frame_lines(frame: &Frame, indent: usize, out: &mut Vec<Line<'static>>) {
    let pad = "  ".repeat(indent);
    let mut push = |text: String| out.push(Line::from(format!("{pad}{text}")));
    match frame {
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            let kind = match frame {
                Frame::Set(_) => "set",
                Frame::Push(_) => "push",
                _ => "array",
            };
            push(format!("({kind} of {})", items.len()));
            for item in items {
                frame_lines(item, indent + 1, out);
            }
        }
        Frame::Map(pairs) => {
            push(format!("(map of {})", pairs.len()));
            for (k, v) in pairs {
                frame_lines(k, indent + 1, out);
                frame_lines(v, indent + 2, out);
            }
        }
        Frame::Bulk(b) => push(value_text(b)),
        other => push(frame_summary(other, 4096)),
    }
}

/// A value as text when printable, otherwise as a hex dump; with its true length when truncated.
fn value_text(b: &Blob) -> String {
    let mut s = String::new();
    if is_text(&b.data) {
        let _ = write!(s, "{:?}", String::from_utf8_lossy(&b.data));
    } else {
        s.push_str("hex ");
        for byte in b.data.iter().take(4096) {
            let _ = write!(s, "{byte:02x}");
        }
    }
    if b.is_truncated() {
        let _ = write!(s, " … ({} of {} bytes captured)", b.data.len(), b.len);
    }
    s
}

fn is_text(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|t| {
        !t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    })
}

fn http_lines(x: &HttpExchange, lines: &mut Vec<Line<'static>>) {
    let req = &x.request;
    lines.push(bold("Request"));
    lines.push(Line::from(format!(
        "  {} {} {}",
        req.method,
        req.target,
        version_text(req.version)
    )));
    message_lines(&req.headers, &req.body, &req.trailers, lines);
    lines.push(Line::from(""));
    lines.push(bold("Response"));
    let Some(rsp) = &x.response else {
        lines.push(Line::from("  (no response before the connection closed)"));
        return;
    };
    lines.push(Line::from(format!(
        "  {} {} {}",
        version_text(rsp.version),
        rsp.status,
        rsp.reason
    )));
    message_lines(&rsp.headers, &rsp.body, &rsp.trailers, lines);
}

fn message_lines(
    headers: &Headers,
    body: &Blob,
    trailers: &Headers,
    lines: &mut Vec<Line<'static>>,
) {
    let header_line = |(name, value): (&str, &[u8])| {
        let mut text = format!("  {name}: ");
        printable(value, 4096, &mut text);
        Line::from(text)
    };
    lines.extend(headers.iter().map(header_line));
    if body.len > 0 {
        lines.push(Line::from(""));
        body_lines(body, headers.get("content-type"), lines);
    }
    if !trailers.is_empty() {
        lines.push(Line::from("  trailers:"));
        lines.extend(trailers.iter().map(header_line));
    }
}

/// A body as pretty JSON when it is complete JSON, as text when printable, otherwise as a hex dump.
fn body_lines(body: &Blob, content_type: Option<&[u8]>, lines: &mut Vec<Line<'static>>) {
    let shown = &body.data[..body.data.len().min(MAX_SHOWN)];
    let says_json = content_type.is_some_and(|t| memchr::memmem::find(t, b"json").is_some());
    let json = (says_json && !body.is_truncated())
        .then(|| serde_json::from_slice::<serde_json::Value>(&body.data).ok())
        .flatten()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    if let Some(pretty) = json {
        lines.extend(pretty.lines().map(|l| Line::from(format!("  {l}"))));
    } else if is_text(shown) {
        let text = String::from_utf8_lossy(shown);
        lines.extend(
            text.lines()
                .map(|l| Line::from(format!("  {}", l.trim_end_matches('\r')))),
        );
    } else {
        for (i, row) in shown.chunks(16).enumerate() {
            let mut line = format!("  {:06x}  ", i * 16);
            for byte in row {
                let _ = write!(line, "{byte:02x} ");
            }
            lines.push(Line::from(line));
        }
    }
    if (body.data.len() as u64) < body.len || shown.len() < body.data.len() {
        lines.push(Line::from(format!(
            "  … ({} of {} bytes captured, {} shown)",
            body.data.len(),
            body.len,
            shown.len()
        )));
    }
}
