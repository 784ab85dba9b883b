//! Drawing: turns an [`App`] into widgets. Does no I/O and keeps no state; cost depends on the rows on
//! screen, not on the records stored.

use std::fmt::Write as _;

use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap},
    Frame as UiFrame,
};

use super::{
    app::{App, Mode},
    detail::draw_detail,
    stats::draw_stats,
};
use crate::{
    format::latency,
    protocol::{
        detect::Protocols,
        http::HttpExchange,
        redis::{printable, RedisExchange},
        Blob,
    },
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
    // A notice (an export's path, bad lines of a capture) gets its own line so nothing cuts it short.
    let notice_height = u16::from(app.notice.is_some());
    let [main, notice, status] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(notice_height),
        Constraint::Length(1),
    ])
    .areas(area);
    match app.mode {
        Mode::Table | Mode::Help => draw_table(f, app, main),
        Mode::Detail => draw_detail(f, app, main),
        Mode::Stats => draw_stats(f, app, main),
    }
    if let Some(text) = &app.notice {
        f.render_widget(
            Paragraph::new(format!(" {text}")).style(Style::default().add_modifier(Modifier::BOLD)),
            notice,
        );
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

fn blob_text(blob: Option<&&Blob>, max: usize) -> String {
    let mut s = String::new();
    if let Some(b) = blob {
        printable(&b.data, max, &mut s);
    }
    s
}

fn row(record: &Record) -> Row<'static> {
    let (client, server) = record.endpoint.client_server();
    let side = match record.endpoint.side {
        Side::Client => "C",
        Side::Server => "S",
    };
    let (what, outcome) = match &record.exchange {
        Exchange::Redis(x) => redis_cells(x, record.is_error()),
        Exchange::Http(x) => http_cells(x),
    };
    Row::new(vec![
        Cell::from(clock(record.start_unix_ns)),
        Cell::from(side),
        Cell::from(format!("{}/{}", record.endpoint.pid, record.endpoint.comm)),
        Cell::from(format!("{client} → {server}")),
        Cell::from(record.command().to_owned()),
        what,
        outcome,
        Cell::from(latency(record.latency_ns())),
        Cell::from(format!(
            "{}/{}{}",
            record.request_bytes,
            record.response_bytes,
            if record.truncated { "+" } else { "" }
        )),
    ])
}

/// Key and reply cells of a Redis record.
fn redis_cells(x: &RedisExchange, error: bool) -> (Cell<'static>, Cell<'static>) {
    let reply_style = if error {
        Style::default().fg(Color::Red)
    } else {
        Style::default()
    };
    (
        Cell::from(blob_text(x.keys().first(), 40)),
        Cell::from(x.reply_summary(60)).style(reply_style),
    )
}

/// Host + target and status cells of an HTTP record, the status colored by class.
fn http_cells(x: &HttpExchange) -> (Cell<'static>, Cell<'static>) {
    let mut target = String::new();
    // An absolute-form target already names its host.
    if let (Some(host), true) = (x.host(), x.request.target.starts_with('/')) {
        target.push_str(host);
    }
    printable(x.request.target.as_bytes(), 200, &mut target);
    let status = match &x.response {
        None => Cell::from("(no response)"),
        Some(r) => {
            let color = match r.status {
                500.. => Color::Red,
                400..=499 => Color::Yellow,
                300..=399 => Color::Cyan,
                200..=299 => Color::Green,
                _ => Color::Blue,
            };
            Cell::from(format!("{} {}", r.status, r.reason)).style(Style::default().fg(color))
        }
    };
    (Cell::from(target), status)
}

/// Column names for the protocols shown.
fn headers(protocols: Protocols) -> [&'static str; 3] {
    match (protocols.redis, protocols.http) {
        (true, false) => ["command", "key", "reply"],
        (false, true) => ["method", "host + target", "status"],
        _ => ["cmd/method", "key / host + target", "reply / status"],
    }
}

/// Name of what is watched, for the title.
fn watched(protocols: Protocols) -> &'static str {
    match (protocols.redis, protocols.http) {
        (true, false) => "redis",
        (false, true) => "http",
        _ => "redis + http",
    }
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
    let [what, key, outcome] = headers(app.protocols);
    let header = Row::new([
        "time (UTC)",
        "",
        "pid/comm",
        "client → server",
        what,
        key,
        outcome,
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
        Constraint::Length(24),
        Constraint::Min(12),
        Constraint::Length(9),
        Constraint::Length(12),
    ];
    let title = format!(
        " watcher · {} · {} records ",
        app.source.as_deref().unwrap_or(watched(app.protocols)),
        app.visible.len()
    );
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
    if t.unrecognised_connections > 0 {
        let _ = write!(text, " · unrecognised conns {}", t.unrecognised_connections);
    }
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
    ("e", "export the rows shown (filtered) to a file"),
    ("Tab", "statistics of the rows shown / back"),
    ("b, s", "statistics: group by, sort by (cycle)"),
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
