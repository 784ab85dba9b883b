//! `watcher record -- CMD`: capture while a command runs, tracing the command and every process it
//! starts, and end when it exits, with an exit status scripts can act on.
//!
//! The command is started from the main thread only after the kernel programs are attached; the kernel
//! adds each child of that thread (and their descendants) to the pid filter inside fork, before the child
//! runs, so not even the command's first connection escapes. Started through `sudo`, watcher runs the
//! command as the user who ran `sudo` (`invoker`), unless `--as-root`. This module never judges
//! records itself: `headless::Capture` exports them and checks `--fail-on`.

use std::{
    ffi::OsString,
    io::ErrorKind,
    os::{
        fd::AsFd,
        unix::process::{CommandExt, ExitStatusExt},
    },
    process::{Child, Command, ExitStatus, Stdio},
};

use nix::{
    errno::Errno,
    sys::{
        signal,
        wait::{waitid, Id, WaitPidFlag},
    },
    unistd::{setgid, setgroups, setuid, Pid},
};

use super::{
    headless::{Capture, Summary},
    signals::{self, Terminate},
};
use crate::{
    cli::config::RecordConfig,
    invoker::Invoker,
    ndjson::file::{self, Target},
};

/// Exit statuses of `record` that are watcher's own (everything else is the command's).
pub mod exit_status {
    /// The command succeeded but a `--fail-on` condition was met.
    pub const FINDINGS: u8 = 123;
    /// The capture failed while the command ran.
    pub const CAPTURE_FAILED: u8 = 124;
    /// watcher could not start; the command did not run.
    pub const NOT_STARTED: u8 = 125;
    /// The command exists but could not be executed.
    pub const CANNOT_EXECUTE: u8 = 126;
    /// The command was not found.
    pub const NOT_FOUND: u8 = 127;
}

/// Why a recording did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The export cannot be created (a mistake in the arguments); the command was not run.
    #[error(transparent)]
    Output(#[from] file::OpenError),
    /// The capture could not start (privileges, kernel support); the command was not run.
    #[error("{0:#}")]
    Start(anyhow::Error),
    /// The command could not be started.
    #[error("cannot run {command:?}: {source}")]
    Spawn {
        /// The program.
        command: OsString,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The capture failed after the command started (the command ran to its end regardless).
    #[error("the capture failed while the command ran: {error:#}")]
    Capture {
        /// The command's status.
        status: ExitStatus,
        /// What failed.
        error: anyhow::Error,
    },
}

impl RecordError {
    /// The exit status watcher ends with.
    pub fn exit_status(&self) -> u8 {
        match self {
            Self::Output(_) | Self::Start(_) => exit_status::NOT_STARTED,
            Self::Spawn { source, .. } if source.kind() == ErrorKind::NotFound => {
                exit_status::NOT_FOUND
            }
            Self::Spawn { .. } => exit_status::CANNOT_EXECUTE,
            // The command's own failure comes first, as with findings.
            Self::Capture { status, .. } => {
                command_failure(*status).unwrap_or(exit_status::CAPTURE_FAILED)
            }
        }
    }
}

/// A finished recording.
#[derive(Debug)]
pub struct Recorded {
    /// How the command ended.
    pub status: ExitStatus,
    /// What the capture saw.
    pub summary: Summary,
}

impl Recorded {
    /// The command's own failure first (it is the more basic one), then the findings, then success.
    pub fn exit_status(&self) -> u8 {
        command_failure(self.status).unwrap_or(if self.summary.findings.passed() {
            0
        } else {
            exit_status::FINDINGS
        })
    }
}

impl Recorded {
    /// Who the exit status comes from, for the last line of a recording.
    pub fn status_origin(&self) -> String {
        let code = self.exit_status();
        match (command_failure(self.status), self.status.signal()) {
            (Some(_), Some(signal)) => {
                format!("the command was killed by signal {signal}; exit {code}")
            }
            (Some(_), None) => format!("the command failed; exit {code} is its own"),
            (None, _) if code == exit_status::FINDINGS => {
                format!("the command succeeded; exit {code}: a --fail-on condition was met")
            }
            (None, _) => "the command succeeded; exit 0".to_owned(),
        }
    }
}

/// The status to pass on for a command that failed: its exit code, or 128 + the signal that killed it.
fn command_failure(status: ExitStatus) -> Option<u8> {
    match (status.code(), status.signal()) {
        (Some(0), _) => None,
        (Some(code), _) => Some(code as u8),
        (None, Some(signal)) => Some(128u8.saturating_add(signal as u8)),
        (None, None) => Some(1),
    }
}

/// Runs the recording. Messages for the user go to stderr.
pub fn run(cfg: &RecordConfig) -> Result<Recorded, RecordError> {
    let target = cfg.watch.output.as_ref();
    let to_stdout = target == Some(&Target::Stdout);
    let invoker = Invoker::from_environment();
    let owner = invoker.as_ref().map(Invoker::owner);
    let export = target.map(|t| file::open(t, owner)).transpose()?;
    let output = export.as_ref().map(|e| e.name.clone()).unwrap_or_default();
    // A run that never started leaves no export behind.
    let created = export.as_ref().and_then(|e| e.created.clone());
    let remove_created = || {
        if let Some(path) = &created {
            let _ = std::fs::remove_file(path);
        }
    };
    let terminate = match signals::listen() {
        Ok(terminate) => terminate,
        Err(e) => {
            remove_created();
            return Err(RecordError::Start(e.into()));
        }
    };
    let (capture, notes) = match Capture::start(&cfg.watch, export.map(|e| e.writer), None) {
        Ok(started) => started,
        Err(e) => {
            remove_created();
            return Err(RecordError::Start(e));
        }
    };
    for note in notes {
        crate::stderr_line!("watcher: {note}");
    }
    crate::stderr_line!(
        "watcher: recording {} to {output}",
        shell_words(&cfg.command)
    );
    let run_as = if cfg.as_root { None } else { invoker };
    if let Some(user) = &run_as {
        crate::stderr_line!(
            "watcher: running the command as {} (uid {}), who ran sudo; --as-root keeps root",
            user.name.as_deref().unwrap_or("the invoking user"),
            user.uid
        );
    }
    let mut child = match spawn(&cfg.command, to_stdout, run_as.as_ref()) {
        Ok(child) => child,
        Err(source) => {
            let _ = capture.finish();
            remove_created();
            return Err(RecordError::Spawn {
                command: cfg.command[0].clone(),
                source,
            });
        }
    };
    let status = wait(&mut child, &terminate);
    match capture.finish() {
        Ok(summary) => Ok(Recorded { status, summary }),
        Err(error) => Err(RecordError::Capture { status, error }),
    }
}

/// Starts the command, as `user` when given. When records go to stdout, the command's stdout goes to
/// stderr so the two never interleave.
fn spawn(
    command: &[OsString],
    records_on_stdout: bool,
    user: Option<&Invoker>,
) -> std::io::Result<Child> {
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    if records_on_stdout {
        cmd.stdout(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?));
    }
    if let Some(user) = user {
        run_as(&mut cmd, user);
    }
    cmd.spawn()
}

/// Makes `cmd` run as `user`, with the user's groups, home and name. Not `Command::uid`/`gid`: they
/// drop every supplementary group, and the command under test should have exactly the user's.
fn run_as(cmd: &mut Command, user: &Invoker) {
    if let Some(home) = &user.home {
        cmd.env("HOME", home);
    }
    if let Some(name) = &user.name {
        cmd.env("USER", name).env("LOGNAME", name);
    }
    let (uid, gid, groups) = (user.uid, user.gid, user.groups.clone());
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe work is
    // allowed: it makes three system calls on data prepared before the fork, and allocates nothing
    // (errors are raw OS errors).
    unsafe {
        cmd.pre_exec(move || {
            setgroups(&groups)?;
            setgid(gid)?;
            setuid(uid)?;
            Ok(())
        });
    }
}

/// Waits for the command, passing SIGTERM on to it. SIGINT is not passed on: Ctrl-C already reaches
/// the command through the terminal, and a second one makes many tools abort their clean-up. Sleeps
/// until one of the two happens.
fn wait(child: &mut Child, terminate: &crossbeam_channel::Receiver<Terminate>) -> ExitStatus {
    let exited = exit_notice(child.id());
    loop {
        crossbeam_channel::select! {
            recv(exited) -> _ => break,
            recv(terminate) -> signal => {
                if let Ok(Terminate::Terminate) = signal {
                    let _ = signal::kill(Pid::from_raw(child.id() as i32), signal::Signal::SIGTERM);
                }
            }
        }
    }
    child
        .wait()
        .unwrap_or_else(|_| ExitStatus::from_raw(1 << 8))
}

/// Ready once the child `pid` has exited (or at once if no thread could wait for it). The waiting
/// thread leaves the child unreaped (`WNOWAIT`) for `Child::wait`: until then its pid cannot be given
/// to another process, so a signal sent to it by pid meanwhile reaches the command or nobody.
fn exit_notice(pid: u32) -> crossbeam_channel::Receiver<()> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let _ = std::thread::Builder::new()
        .name("watcher-command".into())
        .spawn(move || {
            let exited = || {
                let id = Id::Pid(Pid::from_raw(pid as i32));
                waitid(id, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
            };
            while let Err(Errno::EINTR) = exited() {}
            let _ = tx.send(());
        });
    rx
}

/// The command line as a shell would need it typed, for messages.
fn shell_words(command: &[OsString]) -> String {
    let quote = |word: &OsString| {
        let word = word.to_string_lossy();
        let plain = !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
        if plain {
            word.into_owned()
        } else {
            format!("'{}'", word.replace('\'', "'\\''"))
        }
    };
    command.iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        analysis::findings::{Condition, Finding, Findings},
        counters::Totals,
    };

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn command_lines_are_quoted_like_a_shell_needs() {
        let words: Vec<OsString> = ["sh", "-c", "echo 'hi'; exit 7", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(shell_words(&words), r"sh -c 'echo '\''hi'\''; exit 7' ''");
    }

    fn recorded(status: ExitStatus, findings: bool) -> Recorded {
        let findings = if findings {
            Findings(vec![Finding {
                condition: Condition::Lost,
                count: 1,
                examples: Vec::new(),
            }])
        } else {
            Findings::default()
        };
        Recorded {
            status,
            summary: Summary {
                records: 0,
                exported: 0,
                truncated: 0,
                totals: Totals::default(),
                findings,
                otlp: false,
                evicted_for_memory: 0,
            },
        }
    }

    #[test]
    fn the_command_failure_comes_first_then_findings() {
        assert_eq!(command_failure(exited(0)), None);
        assert_eq!(command_failure(exited(7)), Some(7));
        assert_eq!(command_failure(ExitStatus::from_raw(9)), Some(137));
        assert_eq!(recorded(exited(0), false).exit_status(), 0);
        assert_eq!(
            recorded(exited(0), true).exit_status(),
            exit_status::FINDINGS
        );
        assert_eq!(recorded(exited(5), true).exit_status(), 5);
        assert_eq!(recorded(ExitStatus::from_raw(15), false).exit_status(), 143);
        assert!(recorded(exited(123), false)
            .status_origin()
            .contains("its own"));
        assert!(recorded(exited(0), true)
            .status_origin()
            .contains("--fail-on"));
        let capture_failed = |status| RecordError::Capture {
            status,
            error: anyhow::anyhow!("boom"),
        };
        assert_eq!(
            capture_failed(exited(0)).exit_status(),
            exit_status::CAPTURE_FAILED
        );
        assert_eq!(capture_failed(exited(3)).exit_status(), 3);
    }
}
