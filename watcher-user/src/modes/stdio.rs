//! Writing to standard output and standard error without panicking. `print!` and `eprintln!` panic
//! when their stream cannot be written, which happens whenever its reader has gone (`watcher stat FILE
//! | head`, `2>&1 | head`, a supervisor that closed its pipe): watcher would end with status 101 and a
//! panic message in place of its own. Here a reader that has gone is not an error on standard output
//! (what `| head` asks for), and a message standard error cannot take is dropped.

use std::io::{ErrorKind, Write as _};

/// Writes `text` to standard output; a reader that has gone is not an error.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        result => result,
    }
}

/// Writes to standard error, dropping what it cannot take; `eprint!` without the panic.
pub fn message(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `eprintln!`, except that a standard error that cannot be written loses the line instead of
/// panicking (see `modes::stdio`).
#[macro_export]
macro_rules! stderr_line {
    ($($arg:tt)*) => {
        $crate::modes::stdio::message(format_args!("{}\n", format_args!($($arg)*)))
    };
}
