//! The real terminal: raw mode and the alternate screen while the UI runs, restored on every exit path
//! (a panic included), and a thread that turns terminal input into events for the loop.

use std::{
    io::{self, Stdout},
    thread,
};

use crossbeam_channel::{bounded, Receiver};
use crossterm::{
    event::{self, Event},
    execute,
    terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::{backend::CrosstermBackend, Terminal};

/// Restores the terminal when dropped.
pub struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

/// A step of setting up the terminal failed.
#[derive(Debug, thiserror::Error)]
#[error("{step}")]
pub struct SetupError {
    /// What was being done.
    pub step: &'static str,
    /// Why it failed.
    #[source]
    pub source: io::Error,
}

/// Switches the terminal to raw mode and the alternate screen, and makes a panic restore it first.
pub fn enter() -> Result<(TerminalGuard, Terminal<CrosstermBackend<Stdout>>), SetupError> {
    let step = |step| move |source| SetupError { step, source };
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    enable_raw_mode().map_err(step("switching the terminal to raw mode"))?;
    let guard = TerminalGuard;
    execute!(io::stdout(), EnterAlternateScreen).map_err(step("entering the alternate screen"))?;
    let terminal =
        Terminal::new(CrosstermBackend::new(io::stdout())).map_err(step("opening the terminal"))?;
    Ok((guard, terminal))
}

/// Reads terminal events on a thread of their own until the receiver is dropped.
pub fn input() -> Receiver<Event> {
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
