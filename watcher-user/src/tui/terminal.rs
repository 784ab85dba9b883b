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

/// Switches the terminal to raw mode and the alternate screen, and makes a panic restore it first.
pub fn enter() -> io::Result<(TerminalGuard, Terminal<CrosstermBackend<Stdout>>)> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    enable_raw_mode()?;
    let guard = TerminalGuard;
    execute!(io::stdout(), EnterAlternateScreen)?;
    let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
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
