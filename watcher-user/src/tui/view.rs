//! Drawing: turns an [`App`] into widgets. Does no I/O and keeps no state; cost depends on the rows on
//! screen, not on the records stored.

use std::fmt::Write as _;

use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap},
    Frame as UiFrame,
};

use super::app::{command_of, App, Mode};
use crate::{
    protocol::redis::{frame_summary, printable, Blob, Frame},
    record::{Exchange, Record, Side},
};

/// Smallest terminal the table fits in.
pub const MIN_WIDTH: u16 = 60;
/// Smallest terminal height.
pub const MIN_HEIGHT: u16 = 8;

/// Draws the whole screen.
pub fn draw(f: &mut UiFrame, app: &mut App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "Terminal too small ({}x{}); watcher needs at least {MIN_WIDTH}x{MIN_HEIGHT}. q quits.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    match app.mode {
        Mode::Table | Mode::Help => draw_table(f, app, main),
        Mode::Detail => draw_detail(f, app, main),
    }
    draw_status(f, app, status);
    if app.mode == Mode::Help {
        draw_help(f, main);
    }
}

fn clock(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let ms = (unix_ns / 1_000_000) % 1000;
    format!(
        "{:02}:{:02}:{:02}.{ms:03}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Latency for humans: µs under a millisecond, ms under a second.
pub fn latency(ns: Option<u64>) -> String {
    match ns {
        None => "-".into(),
        Some(ns) if ns < 1_000_000 => format!("{:.0}µs", ns as f64 / 1e3),
        Some(ns) if ns < 1_000_000_000 => format!("{:.2}ms", ns as f64 / 1e6),
        Some(ns) => format!("{:.2}s", ns as f64 / 1e9),
    }
}

fn blob_text(blob: Option<&&Blob>, max: usize) -> String {
    let mut s = String::new();
    if let Some(b) = blob {
        printable(&b.data, max, &mut s);
    }
    s
}

fn row(record: &Record) -> Row<'static> {
    let Exchange::Redis(x) = &record.exchange;
    let (client, server) = record.endpoint.client_server();
    let side = match record.endpoint.side {
        Side::Client => "C",
        Side::Server => "S",
    };
    let reply_style = if record.is_error() {
        Style::default().fg(Color::Red)
    } else {
        Style::default()
    };
    Row::new(vec![
        Cell::from(clock(record.start_unix_ns)),
        Cell::from(side),
        Cell::from(format!("{}/{}", record.endpoint.pid, record.endpoint.comm)),
        Cell::from(format!("{client} → {server}")),
        Cell::from(command_of(record).to_owned()),
        Cell::from(blob_text(x.keys().first(), 40)),
        Cell::from(x.reply_summary(60)).style(reply_style),
        Cell::from(latency(record.latency_ns())),
        Cell::from(format!(
            "{}/{}{}",
            record.request_bytes,
            record.response_bytes,
            if record.truncated { "+" } else { "" }
        )),
    ])
}

fn draw_table(f: &mut UiFrame, app: &mut App, area: Rect) {
    let rows_on_screen = usize::from(area.height.saturating_sub(3));
    app.page_rows = rows_on_screen.max(1);
    // Only the rows that fit are built: the window around the selection.
    let first = app
        .selected
        .saturating_sub(rows_on_screen.saturating_sub(1));
    let rows: Vec<Row> = app.visible[first..]
        .iter()
        .take(rows_on_screen)
        .filter_map(|id| app.snapshot.by_id(*id))
        .map(|r| row(r))
        .collect();
    let header = Row::new([
        "time (UTC)",
        "",
        "pid/comm",
        "client → server",
        "command",
        "key",
        "reply",
        "latency",
        "bytes",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(12),
        Constraint::Length(1),
        Constraint::Length(18),
        Constraint::Length(34),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Min(12),
        Constraint::Length(9),
        Constraint::Length(12),
    ];
    let title = format!(" watcher · redis · {} records ", app.visible.len());
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::default().borders(Borders::ALL).title(title))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default();
    if !app.visible.is_empty() {
        state.select(Some(app.selected - first));
    }
    f.render_stateful_widget(table, area, &mut state);
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
    let printable_text = std::str::from_utf8(&b.data)
        .is_ok_and(|t| !t.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
    if printable_text {
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

fn draw_detail(f: &mut UiFrame, app: &App, area: Rect) {
    let Some(record) = app.selected_record() else {
        return;
    };
    let Exchange::Redis(x) = &record.exchange;
    let (client, server) = record.endpoint.client_server();
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                command_of(record).to_owned(),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("   id {}", record.id)),
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
        Line::from(Span::styled(
            "Arguments",
            Style::default().add_modifier(Modifier::BOLD),
        )),
    ];
    for (i, arg) in x.args.iter().enumerate() {
        lines.push(Line::from(format!("  {}: {}", i + 1, value_text(arg))));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Reply",
        Style::default().add_modifier(Modifier::BOLD),
    )));
    match &x.reply {
        Some(frame) => frame_lines(frame, 1, &mut lines),
        None => lines.push(Line::from("  (no reply before the connection closed)")),
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

fn draw_status(f: &mut UiFrame, app: &App, area: Rect) {
    let t = &app.totals;
    let mut text = format!(
        " seen {} · shown {} · lost {} · truncated calls {} · sort {} · {}",
        app.snapshot.total,
        app.visible.len(),
        t.lost(),
        t.truncated_calls,
        app.sort.label(),
        if app.follow { "following" } else { "paused" },
    );
    if app.editing_filter || !app.filter.is_empty() {
        let _ = write!(
            text,
            " · filter: {}{}",
            app.filter,
            if app.editing_filter { "▏" } else { "" }
        );
    }
    text.push_str(" · ? help");
    let style = if t.lost() > 0 {
        Style::default().fg(Color::Black).bg(Color::Yellow)
    } else {
        Style::default().add_modifier(Modifier::REVERSED)
    };
    f.render_widget(Paragraph::new(text).style(style), area);
}

const HELP: &[(&str, &str)] = &[
    ("↑/k ↓/j", "move"),
    ("PgUp PgDn", "page"),
    ("Home End", "first / last (End follows)"),
    ("Enter", "details of the selected record"),
    ("Esc", "back / clear filter"),
    ("/", "filter as you type (Enter keeps it)"),
    ("s", "cycle sort: time, latency, command, size"),
    ("space", "pause / resume following new records"),
    ("?", "this help"),
    ("q", "quit"),
];

fn draw_help(f: &mut UiFrame, area: Rect) {
    let width = 56.min(area.width);
    let height = (HELP.len() as u16 + 2).min(area.height);
    let popup = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| Line::from(format!(" {k:<12} {v}")))
        .collect();
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
