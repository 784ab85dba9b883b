//! Terminal UI: the event loop that turns key presses, new snapshots, ticks and signals into actions
//! (`keys`), applies them to the state (`app`) and draws it (`view`).
//!
//! Workers never touch the terminal: the store writer only sends a wake-up, and the loop loads the
//! snapshot itself. The terminal is restored on every exit path, including panics.

pub mod app;
pub mod detail;
pub mod keys;
pub mod view;

use std::{
    io::{self, Stdout},
    sync::Arc,
    thread,
    time::Duration,
};

use anyhow::{Context, Result};
use crossbeam_channel::{bounded, select, tick, Receiver};
use crossterm::{
    event::{self, Event, KeyEventKind},
    execute,
    terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::{backend::CrosstermBackend, Terminal};

use self::app::{Action, App};
use crate::{cli::WatchConfig, export, pipeline::Pipeline, protocol::detect::Protocols, signals};

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
        thread::spawn(move || export::run(&store, &counters, out, &export_wake, None))
    });

    let result = event_loop(&pipeline, cfg.pipeline.protocols, &ui_wake, &terminate);
    let stopped = pipeline.stop();
    if let Some(handle) = exporter {
        match handle.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => anyhow::bail!("the exporter panicked"),
        }
    }
    result.and(stopped)
}

fn event_loop(
    pipeline: &Pipeline,
    protocols: Protocols,
    wake: &Receiver<()>,
    terminate: &Receiver<signals::Terminate>,
) -> Result<()> {
    let (_guard, mut terminal) = enter_terminal()?;
    let input = spawn_input();
    let ticks = tick(Duration::from_millis(500));
    let mut app = App::default();
    app.protocols = protocols;
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
            recv(wake) -> _ => Some(Action::Data(pipeline.store.snapshot(), pipeline.counters.totals())),
            recv(ticks) -> _ => Some(Action::Totals(pipeline.counters.totals())),
            recv(terminate) -> _ => Some(Action::Quit),
        };
        if let Some(action) = action {
            app.update(action);
        }
    }
    Ok(())
}
