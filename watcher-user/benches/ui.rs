//! Time to draw one TUI frame with 100 000 records stored and a filter active, on ratatui's
//! `TestBackend` (what the terminal then does with the diff is not ours to measure); and time to group
//! 100 000 rows for the statistics tab (done at most once per tick, not per frame).
//! Run with `cargo bench -p watcher-user --bench ui` (or as part of `cargo xtask bench`).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::{backend::TestBackend, Terminal};
use watcher::{
    counters::Totals,
    tui::{
        app::{Action, App},
        view,
    },
};

fn frame(c: &mut Criterion) {
    let mut pipeline = common::Pipeline::new(100_000);
    pipeline.feed(&common::ring_records(100_000));
    let mut app = App::default();
    app.update(Action::Data(pipeline.store.snapshot(), Totals::default()));
    for action in [
        Action::StartFilter,
        Action::FilterChar('G'),
        Action::FilterChar('E'),
        Action::FilterDone,
    ] {
        app.update(action);
    }
    assert!(app.visible.len() >= 40_000, "the filter keeps the GETs");
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("test backend");
    c.bench_function("ui: draw frame, 100k records, filter GE", |b| {
        b.iter(|| {
            terminal
                .draw(|f| view::draw(f, &app))
                .map(|_| ())
                .expect("draws");
        });
    });
}

fn stats_tab(c: &mut Criterion) {
    let mut pipeline = common::Pipeline::new(100_000);
    pipeline.feed(&common::ring_records(100_000));
    let mut app = App::default();
    app.update(Action::Data(pipeline.store.snapshot(), Totals::default()));
    assert!(app.visible.len() >= 99_000, "all rows shown");
    c.bench_function("ui: stats tab, group 100k rows by command", |b| {
        b.iter(|| {
            // Entering the tab groups the rows shown; leaving it is free.
            app.update(Action::ToggleStats);
            app.update(Action::ToggleStats);
        });
    });
}

criterion_group!(benches, frame, stats_tab);
criterion_main!(benches);
