//! The detail screen: one record in full. A common summary (what, who, when, how big), then the lines
//! the record's protocol writes (`Payload::detail`): for Redis the arguments and the reply tree, for
//! HTTP request and response with headers and bodies. Pure drawing, like `view`.

use ratatui::{
    layout::Rect,
    style::{Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Wrap},
    Frame as UiFrame,
};

use super::app::App;
use crate::{format::latency, protocol::DetailLine, record::Record};

/// Draws the selected record.
pub fn draw_detail(f: &mut UiFrame, app: &App, area: Rect) {
    let Some(record) = app.selected_record() else {
        return;
    };
    let mut lines = summary_lines(record);
    let mut detail = Vec::new();
    record.exchange.payload().detail(&mut detail);
    lines.extend(detail.into_iter().map(|line| match line {
        DetailLine {
            text,
            heading: true,
        } => bold(text),
        DetailLine { text, .. } => Line::from(text),
    }));
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

fn bold(text: String) -> Line<'static> {
    Line::from(Span::styled(
        text,
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

/// Where the process ran: its cgroup, and the container that names.
fn cgroup_line(record: &Record) -> String {
    match record.endpoint.cgroup.as_deref() {
        None => "cgroup unknown".to_owned(),
        Some(cgroup) => {
            let path = if cgroup.path.is_empty() {
                "(removed)"
            } else {
                &cgroup.path
            };
            match &cgroup.container {
                Some(container) => format!("container {container} · cgroup {path}"),
                None => format!("cgroup {path} · no container"),
            }
        }
    }
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
            "{} side{} · pid {} ({}) · {client} → {server}",
            record.endpoint.side.as_str(),
            if record.endpoint.tls {
                " · TLS, decrypted"
            } else {
                ""
            },
            record.endpoint.pid,
            record.endpoint.comm
        )),
        Line::from(cgroup_line(record)),
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
