//! Drawing: turns an [`App`] into widgets. Takes the state by shared reference and does no I/O; cost
//! depends on the rows on screen, not on the records stored. A record's protocol cells come from its
//! protocol (`Payload::cells`); only their colours are chosen here.

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
    cgroup::Cgroup,
    format::latency,
    protocol::{plugin::Columns, ProtocolId, ProtocolSet, Tone},
    record::{Record, Side},
};

/// Smallest terminal the table fits in.
pub const MIN_WIDTH: u16 = 60;
/// Smallest terminal height.
pub const MIN_HEIGHT: u16 = 8;

/// Rows of records the table (or the statistics tab) fits on a screen `height` rows high.
pub fn table_rows(app: &App, height: u16) -> usize {
    let notice_height = u16::from(app.notice.is_some());
    // The status line, then the table's borders and header.
    usize::from(height.saturating_sub(notice_height + 1).saturating_sub(3)).max(1)
}

/// Draws the whole screen.
pub fn draw(f: &mut UiFrame, app: &App) {
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

fn row(record: &Record, container_column: bool) -> Row<'static> {
    let (client, server) = record.endpoint.client_server();
    let side = match (record.endpoint.side, record.endpoint.tls) {
        (Side::Client, false) => "C",
        (Side::Server, false) => "S",
        (Side::Client, true) => "C TLS",
        (Side::Server, true) => "S TLS",
    };
    let cells = record.exchange.payload().cells();
    let outcome = Cell::from(cells.outcome).style(tone_style(cells.tone));
    let mut cells_out = vec![
        Cell::from(clock(record.start_unix_ns)),
        Cell::from(side),
        Cell::from(format!("{}/{}", record.endpoint.pid, record.endpoint.comm)),
    ];
    if container_column {
        let container = record
            .endpoint
            .cgroup
            .as_deref()
            .and_then(Cgroup::short_container);
        cells_out.push(Cell::from(container.unwrap_or("-").to_owned()));
    }
    cells_out.extend([
        Cell::from(format!("{client} → {server}")),
        Cell::from(record.command().to_owned()),
        Cell::from(cells.subject),
        outcome,
        Cell::from(latency(record.latency_ns())),
        Cell::from(format!(
            "{}/{}{}",
            record.request_bytes,
            record.response_bytes,
            if record.truncated { "+" } else { "" }
        )),
    ]);
    Row::new(cells_out)
}

/// How a tone looks.
fn tone_style(tone: Tone) -> Style {
    let color = match tone {
        Tone::Plain => return Style::default(),
        Tone::Good => Color::Green,
        Tone::Info => Color::Blue,
        Tone::Redirect => Color::Cyan,
        Tone::Warning => Color::Yellow,
        Tone::Error => Color::Red,
    };
    Style::default().fg(color)
}

/// Column names for the protocols shown: one protocol's own, or several sharing each column.
fn headers(protocols: ProtocolSet) -> [String; 3] {
    let columns: Vec<_> = protocols.iter().map(ProtocolId::columns).collect();
    if let [only] = columns[..] {
        return [only.operation, only.subject, only.outcome].map(str::to_owned);
    }
    let joined = |part: fn(&Columns) -> &'static str, separator| {
        columns.iter().map(part).collect::<Vec<_>>().join(separator)
    };
    [
        joined(|c| c.operation_short, "/"),
        joined(|c| c.subject, " / "),
        joined(|c| c.outcome, " / "),
    ]
}

/// Name of what is watched, for the title.
fn watched(protocols: ProtocolSet) -> String {
    let names: Vec<&str> = protocols.iter().map(ProtocolId::name).collect();
    names.join(" + ")
}

fn draw_table(f: &mut UiFrame, app: &App, area: Rect) {
    let rows_on_screen = usize::from(area.height.saturating_sub(3));
    // Only the rows that fit are built: the window around the selection.
    let first = app
        .selected
        .saturating_sub(rows_on_screen.saturating_sub(1));
    let on_screen: Vec<&Record> = app.visible[first..]
        .iter()
        .take(rows_on_screen)
        .filter_map(|id| app.snapshot.by_id(*id).map(AsRef::as_ref))
        .collect();
    // A container column only while a row on screen came from one: most hosts run none.
    let container_column = on_screen.iter().any(|r| r.endpoint.container().is_some());
    let rows: Vec<Row> = on_screen.iter().map(|r| row(r, container_column)).collect();
    let [what, key, outcome] = headers(app.protocols);
    let mut names = vec![
        "time (UTC)".to_owned(),
        String::new(),
        "pid/comm".to_owned(),
    ];
    let mut widths = vec![
        Constraint::Length(12),
        // The side, and whether the row was decrypted from TLS.
        Constraint::Length(5),
        Constraint::Length(18),
    ];
    if container_column {
        names.push("container".to_owned());
        widths.push(Constraint::Length(12));
    }
    names.extend([
        "client → server".to_owned(),
        what,
        key,
        outcome,
        "latency".to_owned(),
        "bytes".to_owned(),
    ]);
    let header = Row::new(names).style(Style::default().add_modifier(Modifier::BOLD));
    widths.extend([
        Constraint::Length(34),
        Constraint::Length(10),
        Constraint::Length(24),
        Constraint::Min(12),
        Constraint::Length(9),
        Constraint::Length(12),
    ]);
    let title = format!(
        " watcher · {} · {} records ",
        app.source.clone().unwrap_or_else(|| watched(app.protocols)),
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

/// `bytes` as MiB with one decimal.
fn mebibytes(bytes: usize) -> String {
    #[allow(clippy::cast_precision_loss)]
    let mib = bytes as f64 / (1024.0 * 1024.0);
    format!("{mib:.1} MiB")
}

fn draw_status(f: &mut UiFrame, app: &App, area: Rect) {
    let t = &app.totals;
    let mut text = String::new();
    if app.secrets_shown {
        text.push_str(" SECRETS SHOWN ·");
    }
    let _ = write!(
        text,
        " seen {} · shown {} · mem {} · lost {} · truncated calls {} · sort {} · {}",
        app.snapshot.total,
        app.visible.len(),
        mebibytes(app.snapshot.bytes),
        t.lost(),
        t.kernel.truncated_calls,
        app.sort.label(),
        if app.follow { "following" } else { "paused" },
    );
    if app.snapshot.evicted_for_memory > 0 {
        let _ = write!(
            text,
            " · {} evicted for --max-memory",
            app.snapshot.evicted_for_memory
        );
    }
    if t.user.unrecognised_connections > 0 {
        let _ = write!(
            text,
            " · unrecognised conns {}",
            t.user.unrecognised_connections
        );
    }
    if t.user.encrypted_connections > 0 {
        let _ = write!(text, " · encrypted conns {}", t.user.encrypted_connections);
    }
    if t.user.tls_connections > 0 {
        let _ = write!(text, " · TLS conns {}", t.user.tls_connections);
    }
    if t.user.otlp_spans_exported + t.user.otlp_spans_dropped > 0 {
        let _ = write!(
            text,
            " · OTLP {} sent, {} dropped",
            t.user.otlp_spans_exported, t.user.otlp_spans_dropped
        );
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
    let style = if app.secrets_shown {
        Style::default().fg(Color::White).bg(Color::Red)
    } else if t.lost() > 0 {
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
