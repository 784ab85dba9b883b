//! Terminal UI: the event loop that turns key presses, new snapshots, ticks and signals into actions
//! (`keys`), applies them to the state (`app`) and draws it (`view`).
//!
//! Workers never touch the terminal: the store writer only sends a wake-up, and the loop loads the
//! snapshot itself. The terminal is restored on every exit path, including panics.

pub mod app;
pub mod detail;
pub mod keys;
pub mod stats;
pub mod view;

use std::{
    io::{self, Stdout},
    sync::Arc,
    thread,
    time::{Duration, SystemTime},
};

use anyhow::{Context, Result};
use crossbeam_channel::{bounded, select, tick, Receiver, Sender};
use crossterm::{
    event::{self, Event, KeyEventKind},
    execute,
    terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::{backend::CrosstermBackend, Terminal};

use self::app::{Action, App, Effect};
use crate::{
    cli::{config::ShowConfig, WatchConfig},
    counters::Totals,
    export::{self, NdjsonSink},
    follow,
    pipeline::Pipeline,
    protocol::detect::Protocols,
    record::{Exchange, Record},
    report, signals,
    store::{self, Store},
};

/// Restores the terminal when dropped.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

fn enter_terminal() -> Result<(TerminalGuard, Terminal<CrosstermBackend<Stdout>>)> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    enable_raw_mode().context("switching the terminal to raw mode")?;
    let guard = TerminalGuard;
    execute!(io::stdout(), EnterAlternateScreen).context("entering the alternate screen")?;
    let terminal =
        Terminal::new(CrosstermBackend::new(io::stdout())).context("opening the terminal")?;
    Ok((guard, terminal))
}

fn spawn_input() -> Receiver<Event> {
    let (tx, rx) = bounded(256);
    let _ = thread::Builder::new()
        .name("watcher-input".into())
        .spawn(move || {
            while let Ok(event) = event::read() {
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
    rx
}

/// Runs the live TUI until the user quits or a signal arrives.
pub fn run(mut cfg: WatchConfig) -> Result<()> {
    let terminate = signals::listen().context("installing signal handlers")?;
    let (ui_wake_tx, ui_wake) = bounded(1);
    let (export_wake_tx, export_wake) = bounded(1);
    let writer = cfg.take_writer();
    let mut subscribers = vec![ui_wake_tx];
    if writer.is_some() {
        subscribers.push(export_wake_tx);
    }
    let (pipeline, _notes) = Pipeline::start(&cfg.pipeline, subscribers)?;
    let exporter = writer.map(|out| {
        let store = Arc::clone(&pipeline.store);
        let counters = Arc::clone(&pipeline.counters);
        thread::spawn(move || {
            let (_, _, result) =
                follow::run(&store, &counters, &export_wake, None, NdjsonSink::new(out));
            result
        })
    });

    let mut app = App::default();
    app.protocols = cfg.pipeline.protocols;
    let live = Live {
        pipeline: &pipeline,
        wake: &ui_wake,
    };
    let result = event_loop(app, Some(&live), &terminate);
    let stopped = pipeline.stop();
    if let Some(handle) = exporter {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e).context("writing JSON records"),
            Err(_) => anyhow::bail!("the exporter panicked"),
        }
    }
    result.and(stopped)
}

/// Opens a capture file in the UI: no kernel, no root. Bad lines are listed on stderr (visible again
/// after quitting) and counted in the status bar.
pub fn show(cfg: &ShowConfig) -> Result<()> {
    let terminate = signals::listen().context("installing signal handlers")?;
    let imported = report::open_capture(&cfg.file)?;
    let records: Vec<Record> = imported
        .records
        .into_iter()
        .filter(|r| cfg.filter.matches(r))
        .collect();
    let mut protocols = Protocols {
        redis: false,
        http: false,
    };
    for r in &records {
        protocols.redis |= matches!(r.exchange, Exchange::Redis(_));
        protocols.http |= matches!(r.exchange, Exchange::Http(_));
    }
    // Room for every record: the store evicts by whole chunks once it is full.
    let store = Store::new(records.len() + store::CHUNK);
    for record in records {
        store.insert(record);
    }
    store.publish();
    let mut app = App::default();
    app.protocols = if protocols.redis || protocols.http {
        protocols
    } else {
        Protocols::ALL
    };
    app.source = Some(cfg.file.display().to_string());
    if !imported.bad_lines.is_empty() {
        app.notice = Some(format!(
            "{} bad lines skipped (listed on stderr)",
            imported.bad_lines.len()
        ));
    }
    app.update(Action::Data(store.snapshot(), Totals::default()));
    app.update(Action::Home);
    event_loop(app, None, &terminate)
}

/// Where new records come from while the UI runs.
struct Live<'a> {
    pipeline: &'a Pipeline,
    wake: &'a Receiver<()>,
}

fn event_loop(
    mut app: App,
    live: Option<&Live>,
    terminate: &Receiver<signals::Terminate>,
) -> Result<()> {
    let (_guard, mut terminal) = enter_terminal()?;
    let input = spawn_input();
    let ticks = tick(Duration::from_millis(500));
    let (done_tx, done) = bounded(4);
    // A file being shown gets no new records: its wake channel simply never fires.
    let never = crossbeam_channel::never();
    let wake = live.map_or(&never, |l| l.wake);
    let totals = || live.map(|l| l.pipeline.counters.totals());
    while !app.quit {
        terminal
            .draw(|f| view::draw(f, &mut app))
            .context("drawing")?;
        let action = select! {
            recv(input) -> event => match event {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => keys::action_for(&app, key),
                Ok(_) => None,
                Err(_) => Some(Action::Quit),
            },
            recv(wake) -> _ => live.map(|l| Action::Data(l.pipeline.store.snapshot(), l.pipeline.counters.totals())),
            recv(ticks) -> _ => totals().map(Action::Totals),
            recv(done) -> result => result.ok(),
            recv(terminate) -> _ => Some(Action::Quit),
        };
        if let Some(effect) = action.and_then(|a| app.update(a)) {
            perform(effect, &done_tx);
        }
    }
    // Quitting must not leave an export half-written.
    if app.exporting {
        let _ = done.recv_timeout(Duration::from_mins(1));
    }
    Ok(())
}

/// Does an effect's I/O on a worker thread, which reports back with an action.
fn perform(effect: Effect, done: &Sender<Action>) {
    match effect {
        Effect::WriteRecords(records) => {
            let done = done.clone();
            let _ = thread::Builder::new()
                .name("watcher-export-view".into())
                .spawn(move || {
                    let _ = done.send(Action::Exported(write_view(&records)));
                });
        }
    }
}

fn write_view(records: &[Arc<Record>]) -> Result<(String, u64), String> {
    let (path, file) = export::create_timestamped("watcher-view", SystemTime::now())
        .map_err(|e| format!("cannot create a file in the current directory: {e}"))?;
    let path = std::env::current_dir().map_or(path.clone(), |dir| dir.join(&path));
    let written = export::write_all(
        records.iter().map(AsRef::as_ref),
        Box::new(io::BufWriter::new(file)),
    )
    .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok((path.display().to_string(), written))
}
