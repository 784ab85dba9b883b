//! Turning SIGINT and SIGTERM into a message, so every mode can end through its normal, ordered
//! shutdown (flush exports, restore the terminal) instead of dying mid-write.

use crossbeam_channel::{bounded, Receiver};
use tokio::signal::unix::{signal, SignalKind};

/// A termination request, by the signal that asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminate {
    /// SIGINT: Ctrl-C, which the terminal also delivers to every process of the foreground group.
    Interrupt,
    /// SIGTERM: sent to watcher alone.
    Terminate,
}

/// Starts a listener thread; the receiver yields one message per signal.
pub fn listen() -> std::io::Result<Receiver<Terminate>> {
    let (tx, rx) = bounded(4);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Register on this thread so a signal arriving right after start-up is not missed.
    let (mut int, mut term) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("watcher-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    let signal = tokio::select! {
                        _ = int.recv() => Terminate::Interrupt,
                        _ = term.recv() => Terminate::Terminate,
                    };
                    if tx.send(signal).is_err() {
                        break;
                    }
                }
            });
        })?;
    Ok(rx)
}
