//! Terminal UI: the event loop that turns key presses, new snapshots, ticks and a quit request into
//! actions (`keys`), applies them to the state (`app`) and draws it (`view`, `detail`, `stats`).
//!
//! The UI starts no pipeline and reads no file: the mode that runs it hands in where records come from
//! (a store reader and a wake-up channel) and performs the effects `update` asks for (such as writing
//! the rows shown to a file), reporting back with an action. Workers never touch the terminal: the
//! store writer only sends a wake-up, and the loop loads the snapshot itself. The loop is generic over
//! ratatui's `Backend`; `terminal` sets up the real one and restores it on every exit path, including
//! panics.

pub mod app;
pub mod detail;
pub mod keys;
pub mod stats;
pub mod terminal;
pub mod view;

use std::{io, time::Duration};

use crossbeam_channel::{bounded, select, tick, Receiver, Sender};
use crossterm::event::{Event, KeyEventKind};
use ratatui::{backend::Backend, Terminal};

use self::app::{Action, App, Effect};
use crate::{counters::Counters, store::StoreReader};

/// Live records: where a running capture's records and counters are, and its wake-up after each
/// snapshot publication.
pub struct Live<'a> {
    /// The store's reader.
    pub store: &'a StoreReader,
    /// The capture's counters.
    pub counters: &'a Counters,
    /// Fires after each publication.
    pub wake: &'a Receiver<()>,
}

/// What the loop listens to besides live records.
pub struct Inputs<'a, Q> {
    /// Terminal events (keys, resizes).
    pub terminal: &'a Receiver<Event>,
    /// A request to quit (e.g. a signal).
    pub quit: &'a Receiver<Q>,
}

/// Runs the UI until the user quits or `quit` fires. `perform` does an effect's I/O and sends the
/// resulting action back on the sender it is given; it must not block the loop.
pub fn run<B: Backend, Q>(
    terminal: &mut Terminal<B>,
    mut app: App,
    live: Option<&Live>,
    inputs: &Inputs<Q>,
    perform: &mut dyn FnMut(Effect, Sender<Action>),
) -> io::Result<()> {
    let ticks = tick(Duration::from_millis(500));
    let (done_tx, done) = bounded(4);
    // A file being shown gets no new records: its wake channel simply never fires.
    let never = crossbeam_channel::never();
    let wake = live.map_or(&never, |l| l.wake);
    let totals = || live.map(|l| l.counters.totals());
    while !app.quit {
        let rows = view::table_rows(&app, terminal.size()?.height);
        if rows != app.page_rows {
            app.update(Action::PageRows(rows));
        }
        terminal.draw(|f| view::draw(f, &app))?;
        let action = select! {
            recv(inputs.terminal) -> event => match event {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => keys::action_for(&app, key),
                Ok(_) => None,
                Err(_) => Some(Action::Quit),
            },
            recv(wake) -> _ => live.map(|l| Action::Data(l.store.snapshot(), l.counters.totals())),
            recv(ticks) -> _ => totals().map(Action::Totals),
            recv(done) -> result => result.ok(),
            recv(inputs.quit) -> _ => Some(Action::Quit),
        };
        if let Some(effect) = action.and_then(|a| app.update(a)) {
            perform(effect, done_tx.clone());
        }
    }
    // Quitting must not leave an export half-written.
    if app.exporting {
        let _ = done.recv_timeout(Duration::from_mins(1));
    }
    Ok(())
}
