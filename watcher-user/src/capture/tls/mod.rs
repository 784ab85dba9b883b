//! TLS capture, user side: finding OpenSSL and Go's `crypto/tls` in the host's files and processes, so
//! `loader` can put the uprobes of `watcher-ebpf/src/tls.rs` and `go_tls.rs` on each file that holds
//! them.
//!
//! A uprobe binds to a file, not to a process: one attachment covers every process that maps the file,
//! now or later. So the host's own libssl is instrumented at start, before any process loads it, and
//! the [`Finder`] then watches for processes bringing files of their own (a container's copy, a bundled
//! library, a program with OpenSSL built in). Each file is inspected once, known by its inode.

pub mod code;
pub mod discover;
pub mod golang;
pub mod new_code;
pub mod openssl;
pub mod symbols;

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    path::{Path, PathBuf},
    time::Duration,
};

use discover::FileId;
use new_code::{Changes, NewCodeNotes};
use symbols::TlsCode;

/// Which TLS code a file holds, and so which programs go on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsLibrary {
    /// OpenSSL (a library or built in): entry and return probes on its functions.
    OpenSsl,
    /// Go's `crypto/tls`: probes on entries and on `RET` instructions.
    Go,
}

/// A file to put the TLS probes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsTarget {
    /// Where to open it from here.
    pub path: PathBuf,
    /// Its path as its processes see it, for messages.
    pub shown: String,
    /// What it holds.
    pub library: TlsLibrary,
    /// `(cookie, file offset)` of each probe point (`watcher_common::tls_function`).
    pub functions: Vec<(u64, u64)>,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Files to instrument, each new.
    pub targets: Vec<TlsTarget>,
    /// Processes whose TLS the probes cannot see, and why (`caddy (pid 12): Go crypto/tls`).
    pub uncovered: Vec<String>,
    /// Files that hold TLS code but could not be inspected, with the reason.
    pub failed: Vec<String>,
}

/// How often the [`follow`] loop looks for new processes without the kernel's notes (with them, when
/// its first round comes).
const NEW_PROCESS_INTERVAL: Duration = Duration::from_millis(200);
/// Without the kernel's notes, every this many rounds it also re-reads the maps of every process
/// (libraries loaded late).
const FULL_SCAN_EVERY: u32 = 10;

/// What was learnt about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Known {
    /// Its TLS is probed.
    Covered,
    /// It has TLS code the probes cannot cover, for this reason.
    Uncovered(String),
    /// No TLS code of its own.
    Neither,
}

/// Remembers which files and processes have been looked at.
#[derive(Debug, Default)]
pub struct Finder {
    files: HashMap<FileId, Known>,
    pids: HashSet<u32>,
}

impl Finder {
    /// Everything at start: the host's libssl files, every running process, and the large programs on
    /// `PATH` with OpenSSL built in (so one started later is covered from its first call).
    ///
    /// Go programs on `PATH` are left until one runs (the new-process scan finds it): each probe costs
    /// the kernel tens of milliseconds to remove, a Go program needs a probe per `RET` (fifteen or so),
    /// and Go programs are mostly long-running services, whose first fraction of a second matters less
    /// than a command-line client's.
    pub fn scan_host(&mut self) -> Scan {
        let mut scan = Scan::default();
        for path in discover::system_libraries() {
            let shown = path.to_string_lossy().into_owned();
            self.inspect(&path, &shown, &mut scan);
        }
        self.scan_processes(true, &mut scan);
        for path in discover::large_programs() {
            let (Some(id), Ok(TlsCode::OpenSsl(functions))) =
                (FileId::of(&path), symbols::inspect(&path))
            else {
                continue;
            };
            if self.files.insert(id, Known::Covered).is_none() {
                scan.targets.push(TlsTarget {
                    shown: path.to_string_lossy().into_owned(),
                    path,
                    library: TlsLibrary::OpenSsl,
                    functions,
                });
            }
        }
        scan
    }

    /// Processes not seen before, or with `all` every process again (to find libraries loaded late).
    pub fn scan_processes(&mut self, all: bool, scan: &mut Scan) {
        let me = std::process::id();
        let live: HashSet<u32> = discover::pids().into_iter().collect();
        for &pid in &live {
            if pid != me && (all || !self.pids.contains(&pid)) {
                self.scan_process(pid, scan);
            }
        }
        self.pids = live;
    }

    /// The processes `pids`, which brought new code since they were last looked at (see `new_code`).
    pub fn scan_listed(&mut self, pids: &BTreeSet<u32>, scan: &mut Scan) {
        let me = std::process::id();
        for &pid in pids.iter().filter(|&&pid| pid != me) {
            self.scan_process(pid, scan);
        }
    }

    /// The files process `pid` maps now; on the first look at it, what of its TLS is not covered.
    fn scan_process(&mut self, pid: u32, scan: &mut Scan) {
        let first_look = !self.pids.contains(&pid);
        let Some(files) = discover::process_files(pid) else {
            return;
        };
        let mut covered = false;
        let mut uncovered = None;
        for (path, shown) in &files.libraries {
            covered |= self.inspect(path, shown, scan) == Some(Known::Covered);
        }
        if let Some((path, shown)) = &files.exe {
            match self.inspect(path, shown, scan) {
                Some(Known::Covered) => covered = true,
                Some(Known::Uncovered(reason)) => uncovered = Some(reason),
                _ => {}
            }
        }
        if first_look && !covered {
            let name = format!("{} (pid {pid})", files.comm);
            if let Some(reason) = uncovered {
                scan.uncovered.push(format!("{name}: {reason}"));
            }
            for library in &files.other {
                scan.uncovered.push(format!("{name}: {library}"));
            }
        }
    }

    /// Inspects a file unless it was inspected before, adding it to the scan's targets when it holds
    /// OpenSSL. Returns what the file is, `None` when it cannot be read (gone, or not ELF).
    fn inspect(&mut self, path: &Path, shown: &str, scan: &mut Scan) -> Option<Known> {
        let id = FileId::of(path)?;
        if let Some(known) = self.files.get(&id) {
            return Some(known.clone());
        }
        let mut target = |library, functions| {
            scan.targets.push(TlsTarget {
                path: path.to_owned(),
                shown: shown.to_owned(),
                library,
                functions,
            });
            Known::Covered
        };
        let known = match symbols::inspect(path) {
            Ok(TlsCode::OpenSsl(functions)) => target(TlsLibrary::OpenSsl, functions),
            Ok(TlsCode::Go(Ok(points))) => target(TlsLibrary::Go, points),
            Ok(TlsCode::Go(Err(golang::GoError::NoTls)) | TlsCode::None) => Known::Neither,
            Ok(TlsCode::Go(Err(e))) => Known::Uncovered(format!("Go crypto/tls: {e}")),
            Err(e) => {
                if discover::is_libssl(shown.rsplit('/').next().unwrap_or_default()) {
                    scan.failed.push(format!("{shown}: {e}"));
                }
                Known::Neither
            }
        };
        self.files.insert(id, known.clone());
        Some(known)
    }
}

/// Watches for new processes and late-loaded libraries until `targets` closes, handing each new file
/// with OpenSSL to whoever attaches the probes (the capture thread, which owns the programs).
///
/// With the kernel's `notes` (the raw `sys_exit` hook), a round comes when the kernel rings their bell
/// and looks only at the processes that brought new code since the last. Without them, or when they cannot
/// say (the first round, or more notes than a CPU keeps between two rounds), a round lists `/proc`
/// for new processes and every [`FULL_SCAN_EVERY`] rounds re-reads every process's maps; the first
/// round re-reads them all, for what was loaded between the start's scan and the programs' arming.
pub fn follow(
    mut finder: Finder,
    targets: &tokio::sync::mpsc::Sender<TlsTarget>,
    mut notes: Option<NewCodeNotes>,
) {
    let mut round = 0u32;
    while !targets.is_closed() {
        match notes.as_ref().filter(|_| round > 0) {
            Some(notes) => {
                if !notes.wait_for_bell() {
                    return;
                }
            }
            None => std::thread::sleep(NEW_PROCESS_INTERVAL),
        }
        round = round.wrapping_add(1);
        let mut scan = Scan::default();
        match notes
            .as_mut()
            .map_or(Changes::Unknown, NewCodeNotes::changes)
        {
            Changes::Nothing => {}
            Changes::In(pids) => finder.scan_listed(&pids, &mut scan),
            Changes::Unknown => {
                let all = (notes.is_some() && round == 1) || round.is_multiple_of(FULL_SCAN_EVERY);
                finder.scan_processes(all, &mut scan);
            }
        }
        for target in scan.targets {
            if targets.blocking_send(target).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_inspected_once_whatever_path_reaches_it() {
        let mut finder = Finder::default();
        let mut scan = Scan::default();
        let exe = std::env::current_exe().expect("test binary");
        // The test binary defines SSL_read and SSL_write (see `symbols`' tests).
        assert_eq!(symbols::tests::defined_here(), 3);
        assert_eq!(
            finder.inspect(&exe, "first", &mut scan),
            Some(Known::Covered)
        );
        let via_proc = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
        assert_eq!(
            finder.inspect(&via_proc, "second", &mut scan),
            Some(Known::Covered)
        );
        assert_eq!(scan.targets.len(), 1);
        assert_eq!(scan.targets[0].shown, "first");
        assert_eq!(
            finder.inspect(Path::new("/nonexistent"), "x", &mut scan),
            None
        );
    }
}
