//! The statistics tab: one row per group of the rows the table shows, with a latency histogram per group
//! drawn as a strip of bars, so slow or bimodal groups stand out at a glance. Draws only; the groups are
//! computed in `app`.

use ratatui::{
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style},
    widgets::{Block, Borders, Cell, Row, Table, TableState},
    Frame as UiFrame,
};

use super::app::App;
use crate::{
    analysis::stat::{GroupStats, HISTOGRAM_BUCKETS},
    format::latency,
};

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The histogram of a group as one character per bucket: blank when empty, otherwise a bar scaled to
/// the group's fullest bucket (so the shape, not the volume, is what the eye compares across rows).
pub fn histogram_bars(histogram: &[u64; HISTOGRAM_BUCKETS]) -> String {
    let peak = histogram.iter().copied().max().unwrap_or(0);
    histogram
        .iter()
        .map(|&n| {
            if n == 0 || peak == 0 {
                ' '
            } else {
                let level = (n * (BARS.len() as u64 - 1)).div_ceil(peak) as usize;
                BARS[level.min(BARS.len() - 1)]
            }
        })
        .collect()
}

fn row(group: &GroupStats, with_rows: bool) -> Row<'static> {
    let error_style = if group.errors > 0 {
        Style::default().fg(Color::Red)
    } else {
        Style::default()
    };
    let mut cells = vec![
        Cell::from(group.protocol),
        Cell::from(group.key.clone()),
        Cell::from(group.count.to_string()),
        Cell::from(format!("{:.1}%", group.error_rate * 100.0)).style(error_style),
        Cell::from(latency(group.p50_ns)),
        Cell::from(latency(group.p90_ns)),
        Cell::from(latency(group.p99_ns)),
        Cell::from(latency(group.max_ns)),
        Cell::from(format!("{}/{}", group.request_bytes, group.response_bytes)),
    ];
    if with_rows {
        cells.push(Cell::from(
            group.rows.map_or_else(|| "-".to_owned(), |r| r.to_string()),
        ));
    }
    cells
        .push(Cell::from(histogram_bars(&group.histogram)).style(Style::default().fg(Color::Cyan)));
    Row::new(cells)
}

/// Draws the tab.
pub fn draw_stats(f: &mut UiFrame, app: &App, area: Rect) {
    let stats = &app.stats;
    let rows_on_screen = usize::from(area.height.saturating_sub(3));
    let first = stats
        .selected
        .saturating_sub(rows_on_screen.saturating_sub(1));
    // A rows column only when a group's protocol has rows (SQL).
    let with_rows = stats.groups.iter().any(|g| g.rows.is_some());
    let rows: Vec<Row> = stats.groups[first.min(stats.groups.len())..]
        .iter()
        .take(rows_on_screen)
        .map(|g| row(g, with_rows))
        .collect();
    let mut header = vec![
        "proto",
        stats.group_by.name(),
        "count",
        "errors",
        "p50",
        "p90",
        "p99",
        "max",
        "bytes req/rsp",
    ];
    let mut widths = vec![
        Constraint::Length(5),
        Constraint::Min(20),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(15),
    ];
    if with_rows {
        header.push("rows");
        widths.push(Constraint::Length(10));
    }
    header.push("latency <1µs … ≥10s");
    widths.push(Constraint::Length(HISTOGRAM_BUCKETS as u16 + 4));
    let header = Row::new(header).style(Style::default().add_modifier(Modifier::BOLD));
    let title = format!(
        " stats · by {} (b) · sort {} (s) · {} groups of {} rows · Tab: table ",
        stats.group_by.name(),
        stats.sort.name(),
        stats.groups.len(),
        stats.records,
    );
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::default().borders(Borders::ALL).title(title))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default();
    if !stats.groups.is_empty() {
        state.select(Some(stats.selected - first));
    }
    f.render_stateful_widget(table, area, &mut state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_fullest_bucket_and_leave_empty_ones_blank() {
        let mut histogram = [0; HISTOGRAM_BUCKETS];
        histogram[2] = 100;
        histogram[3] = 1;
        histogram[5] = 50;
        let bars = histogram_bars(&histogram);
        assert_eq!(bars.chars().count(), HISTOGRAM_BUCKETS);
        assert_eq!(bars.chars().nth(2), Some('█'));
        assert_eq!(
            bars.chars().nth(3),
            Some('▂'),
            "a non-empty bucket is never blank"
        );
        assert_eq!(bars.chars().nth(5), Some('▅'));
        assert_eq!(bars.chars().next(), Some(' '));
        assert_eq!(histogram_bars(&[0; HISTOGRAM_BUCKETS]).trim(), "");
    }
}
