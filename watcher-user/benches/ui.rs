//! Time to draw one TUI frame with 100 000 records stored and a filter active, on ratatui's
//! `TestBackend` (what the terminal then does with the diff is not ours to measure).
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
                .draw(|f| view::draw(f, &mut app))
                .map(|_| ())
                .expect("draws");
        });
    });
}

criterion_group!(benches, frame);
criterion_main!(benches);
