//! UI state and its update function (Elm style): plain data, an `Action` enum, and `update`, which does
//! no I/O (it returns an `Effect` for the event loop to perform instead). The visible list is maintained
//! incrementally: in arrival order (the default sort) a new snapshot costs work proportional to the
//! records it adds, not to the records stored; under another sort the visible list is re-sorted.

use std::sync::Arc;

use crate::{
    analysis::stat::{sort_groups, Aggregator, GroupBy, GroupStats, SortBy},
    counters::Totals,
    protocol::ProtocolSet,
    record::{filter::matches_text, Record},
    store::Snapshot,
};

/// The element after `current` in `all`, wrapping around.
fn next_in<T: Copy + PartialEq>(all: &[T], current: T) -> T {
    let at = all.iter().position(|x| *x == current).unwrap_or(0);
    all[(at + 1) % all.len()]
}

/// Column the table is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortColumn {
    /// Arrival order (id).
    Time,
    /// Slowest first.
    Latency,
    /// Command name, then time.
    Command,
    /// Largest request + response first.
    Size,
}

impl SortColumn {
    fn next(self) -> Self {
        match self {
            SortColumn::Time => SortColumn::Latency,
            SortColumn::Latency => SortColumn::Command,
            SortColumn::Command => SortColumn::Size,
            SortColumn::Size => SortColumn::Time,
        }
    }

    /// Name shown in the status bar.
    pub fn label(self) -> &'static str {
        match self {
            SortColumn::Time => "time",
            SortColumn::Latency => "latency",
            SortColumn::Command => "command",
            SortColumn::Size => "size",
        }
    }
}

/// Which screen is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The live table.
    Table,
    /// One record in full.
    Detail,
    /// Key help.
    Help,
    /// Per-group statistics of the rows the table shows.
    Stats,
}

/// Everything the user can do, and everything that can happen.
#[derive(Clone)]
pub enum Action {
    /// Move the selection up.
    Up,
    /// Move the selection down.
    Down,
    /// One page up.
    PageUp,
    /// One page down.
    PageDown,
    /// First row.
    Home,
    /// Last row (and follow new records).
    End,
    /// Show the selected record in full.
    OpenDetail,
    /// Leave the current screen or filter entry.
    Back,
    /// Start typing a filter.
    StartFilter,
    /// A character typed into the filter.
    FilterChar(char),
    /// Backspace in the filter.
    FilterBackspace,
    /// Finish typing the filter (keeps it).
    FilterDone,
    /// Next sort column.
    CycleSort,
    /// Stop or resume following new records.
    ToggleFollow,
    /// Show or hide help.
    ToggleHelp,
    /// Leave.
    Quit,
    /// A new snapshot was published.
    Data(Arc<Snapshot>, Totals),
    /// Counters refreshed.
    Totals(Totals),
    /// Switch between the table and the statistics tab.
    ToggleStats,
    /// Statistics: group by the next key.
    CycleGroupBy,
    /// Write the records shown (after the filter, in display order) to a file.
    ExportView,
    /// The export finished: the path and records written, or what went wrong.
    Exported(Result<(String, u64), String>),
    /// The table now fits this many rows (the terminal was resized).
    PageRows(usize),
}

/// Work the event loop does for `update`, which does no I/O itself.
#[derive(Clone)]
pub enum Effect {
    /// Write these records as NDJSON to a new file.
    WriteRecords(Vec<Arc<Record>>),
}

/// The UI state.
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent on/off facts of the UI (filter typing, following, quitting, exporting), not a state machine"
)]
pub struct App {
    /// Latest snapshot.
    pub snapshot: Arc<Snapshot>,
    /// Latest counters.
    pub totals: Totals,
    /// Ids of records passing the filter, in display order.
    pub visible: Vec<u64>,
    indexed_through: u64,
    /// Filter text.
    pub filter: String,
    /// Whether keys go to the filter.
    pub editing_filter: bool,
    /// Selected row in `visible`.
    pub selected: usize,
    /// Whether the selection jumps to each new record.
    pub follow: bool,
    /// Sort column.
    pub sort: SortColumn,
    /// Current screen.
    pub mode: Mode,
    /// Rows per page, as last drawn.
    pub page_rows: usize,
    /// Whether the user asked to quit.
    pub quit: bool,
    /// Protocols being watched (names the columns).
    pub protocols: ProtocolSet,
    /// What is shown: `None` live, or the name of the capture file.
    pub source: Option<String>,
    /// A message for the status bar (an export's result, problems reading a capture).
    pub notice: Option<String>,
    /// The statistics tab.
    pub stats: StatsView,
    /// Whether an `e` export is being written (one at a time; quitting waits for it).
    pub exporting: bool,
    /// Whether secrets are shown unmasked (`--show-secrets`): said on every screen.
    pub secrets_shown: bool,
}

/// State of the statistics tab: its settings and the groups last computed.
#[derive(Default)]
pub struct StatsView {
    /// What records are grouped by.
    pub group_by: GroupBy,
    /// Order of the groups.
    pub sort: SortBy,
    /// Groups computed from the rows shown.
    pub groups: Vec<GroupStats>,
    /// Rows they were computed from.
    pub records: usize,
    /// Selected group.
    pub selected: usize,
    /// Whether records arrived since the groups were computed.
    stale: bool,
}

impl Default for App {
    fn default() -> Self {
        Self {
            snapshot: Arc::new(Snapshot::default()),
            totals: Totals::default(),
            visible: Vec::new(),
            indexed_through: 0,
            filter: String::new(),
            editing_filter: false,
            selected: 0,
            follow: true,
            sort: SortColumn::Time,
            mode: Mode::Table,
            page_rows: 20,
            quit: false,
            protocols: ProtocolSet::all(),
            source: None,
            notice: None,
            stats: StatsView::default(),
            exporting: false,
            secrets_shown: false,
        }
    }
}

impl App {
    /// The selected record, if any.
    pub fn selected_record(&self) -> Option<&Arc<Record>> {
        self.visible
            .get(self.selected)
            .and_then(|id| self.snapshot.by_id(*id))
    }

    /// Applies one action; returns the I/O it asks the event loop to do, if any.
    pub fn update(&mut self, action: Action) -> Option<Effect> {
        if self.mode == Mode::Stats && self.update_stats(&action) {
            return None;
        }
        match action {
            Action::Up => self.select(self.selected.saturating_sub(1), false),
            Action::Down => self.select(self.selected + 1, false),
            Action::PageUp => {
                self.select(self.selected.saturating_sub(self.page_rows.max(1)), false);
            }
            Action::PageDown => self.select(self.selected + self.page_rows.max(1), false),
            Action::Home => self.select(0, false),
            Action::End => self.select(usize::MAX, true),
            Action::OpenDetail if self.selected_record().is_some() => self.mode = Mode::Detail,
            Action::OpenDetail | Action::CycleGroupBy => {}
            Action::Back if self.editing_filter => self.editing_filter = false,
            Action::Back if self.mode == Mode::Table && !self.filter.is_empty() => {
                self.filter.clear();
                self.reindex();
            }
            Action::Back => self.mode = Mode::Table,
            Action::StartFilter => {
                self.mode = Mode::Table;
                self.editing_filter = true;
            }
            Action::FilterChar(c) => {
                self.filter.push(c);
                self.reindex();
            }
            Action::FilterBackspace => {
                self.filter.pop();
                self.reindex();
            }
            Action::FilterDone => self.editing_filter = false,
            Action::CycleSort => {
                self.sort = self.sort.next();
                self.reindex();
            }
            Action::ToggleFollow => {
                self.follow = !self.follow;
                if self.follow {
                    self.select(usize::MAX, true);
                }
            }
            Action::ToggleHelp => {
                self.mode = if self.mode == Mode::Help {
                    Mode::Table
                } else {
                    Mode::Help
                }
            }
            Action::Quit => self.quit = true,
            Action::Data(snapshot, totals) => {
                self.totals = totals;
                self.absorb(snapshot);
                self.stats.stale = true;
            }
            Action::Totals(totals) => self.totals = totals,
            Action::PageRows(rows) => self.page_rows = rows.max(1),
            Action::ToggleStats => {
                self.mode = Mode::Stats;
                self.recompute_stats();
            }

            Action::ExportView if self.exporting => {
                self.notice = Some("an export is still being written".into());
            }
            Action::ExportView => {
                self.exporting = true;
                let records: Vec<Arc<Record>> = self
                    .visible
                    .iter()
                    .filter_map(|id| self.snapshot.by_id(*id).cloned())
                    .collect();
                self.notice = Some(format!("exporting {} records…", records.len()));
                return Some(Effect::WriteRecords(records));
            }
            Action::Exported(result) => {
                self.exporting = false;
                self.notice = Some(match result {
                    Ok((path, count)) => format!("exported {count} records to {path}"),
                    Err(e) => format!("export failed: {e}"),
                });
            }
        }
        None
    }

    /// Actions with a meaning of their own on the statistics tab; returns whether `action` was one.
    fn update_stats(&mut self, action: &Action) -> bool {
        let stats = &mut self.stats;
        let last = stats.groups.len().saturating_sub(1);
        match action {
            Action::Up => stats.selected = stats.selected.saturating_sub(1),
            Action::Down => stats.selected = (stats.selected + 1).min(last),
            Action::PageUp => stats.selected = stats.selected.saturating_sub(self.page_rows),
            Action::PageDown => stats.selected = (stats.selected + self.page_rows).min(last),
            Action::Home => stats.selected = 0,
            Action::End => stats.selected = last,
            Action::ToggleStats | Action::Back => self.mode = Mode::Table,
            Action::CycleSort => {
                stats.sort = next_in(&SortBy::ALL, stats.sort);
                sort_groups(&mut stats.groups, stats.sort);
            }
            Action::CycleGroupBy => {
                stats.group_by = next_in(&GroupBy::ALL, stats.group_by);
                self.recompute_stats();
            }
            // New rows are folded in at the next tick, not per snapshot: grouping is O(rows shown).
            Action::Totals(totals) => {
                self.totals = *totals;
                if self.stats.stale {
                    self.recompute_stats();
                }
            }
            Action::OpenDetail => {}
            _ => return false,
        }
        true
    }

    /// Groups the rows the table shows.
    fn recompute_stats(&mut self) {
        let mut aggregator = Aggregator::new(self.stats.group_by);
        for record in self
            .visible
            .iter()
            .filter_map(|id| self.snapshot.by_id(*id))
        {
            aggregator.add(record);
        }
        let mut groups = aggregator.finish();
        sort_groups(&mut groups, self.stats.sort);
        self.stats.records = self.visible.len();
        self.stats.selected = self.stats.selected.min(groups.len().saturating_sub(1));
        self.stats.groups = groups;
        self.stats.stale = false;
    }

    fn select(&mut self, row: usize, follow: bool) {
        self.selected = row.min(self.visible.len().saturating_sub(1));
        self.follow = follow;
    }

    /// Takes a new snapshot: drops evicted ids, indexes only the records added since the last one.
    fn absorb(&mut self, snapshot: Arc<Snapshot>) {
        let first = snapshot.first_id();
        let before = self.visible.len();
        self.visible.retain(|id| *id >= first);
        let evicted = before - self.visible.len();
        self.selected = self.selected.saturating_sub(evicted);
        let start = self.indexed_through.max(first - 1);
        let filter = &self.filter;
        self.visible.extend(
            snapshot
                .after(start)
                .filter(|r| matches_text(r, filter))
                .map(|r| r.id),
        );
        self.indexed_through = snapshot.total;
        self.snapshot = snapshot;
        if self.sort != SortColumn::Time {
            self.sort_visible();
        }
        if self.follow {
            self.selected = self.visible.len().saturating_sub(1);
        } else {
            self.selected = self.selected.min(self.visible.len().saturating_sub(1));
        }
    }

    /// Rebuilds the visible list (after the filter or sort changed).
    fn reindex(&mut self) {
        let filter = &self.filter;
        self.visible = self
            .snapshot
            .iter()
            .filter(|r| matches_text(r, filter))
            .map(|r| r.id)
            .collect();
        self.indexed_through = self.snapshot.total;
        self.sort_visible();
        self.selected = if self.follow {
            self.visible.len().saturating_sub(1)
        } else {
            self.selected.min(self.visible.len().saturating_sub(1))
        };
    }

    fn sort_visible(&mut self) {
        let snapshot = Arc::clone(&self.snapshot);
        let get = |id: &u64| snapshot.by_id(*id);
        match self.sort {
            SortColumn::Time => self.visible.sort_unstable(),
            SortColumn::Latency => self
                .visible
                .sort_by_key(|id| std::cmp::Reverse(get(id).and_then(|r| r.latency_ns()))),
            SortColumn::Command => self.visible.sort_by(|a, b| {
                let name = |id: &u64| get(id).map(|r| r.command().to_owned()).unwrap_or_default();
                name(a).cmp(&name(b)).then(a.cmp(b))
            }),
            SortColumn::Size => self.visible.sort_by_key(|id| {
                std::cmp::Reverse(get(id).map(|r| r.request_bytes + r.response_bytes))
            }),
        }
    }
}
