//! Finding the files to instrument: TLS libraries mapped by running processes (through
//! `/proc/PID/root`, so a container's own copy is found), the host's own copies of libssl (so a process
//! that loads one later, as Python does on `import ssl`, is covered from its first call), and
//! executables big enough to carry OpenSSL inside them (`node`).
//!
//! Only reads procfs and the filesystem; which of the files really hold OpenSSL is `symbols`' job.

use std::{
    collections::HashSet,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// A file as the kernel knows it: uprobes bind to the inode, so one attachment per file covers every
/// process (and every path, hard link or container view) that maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of the file at `path`, if it exists.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// TLS libraries other than OpenSSL that a process may map: `(file name prefix, name shown)`.
const OTHER_LIBRARIES: [(&str, &str); 5] = [
    ("libgnutls", "GnuTLS"),
    ("libnss3", "NSS"),
    ("libwolfssl", "wolfSSL"),
    ("libmbedtls", "Mbed TLS"),
    ("libbearssl", "BearSSL"),
];

/// Directories where the host's shared libraries live.
const LIBRARY_DIRS: [&str; 10] = [
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/local/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
];

/// Directories searched for programs with OpenSSL built in, besides those on `PATH`.
const PROGRAM_DIRS: [&str; 6] = [
    "/usr/local/bin",
    "/usr/bin",
    "/bin",
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
];

/// Smallest executable inspected for a built-in OpenSSL: libssl and libcrypto's code alone is bigger,
/// and skipping the many small programs keeps the start-up scan short.
const MIN_STATIC_OPENSSL_BYTES: u64 = 2 << 20;

/// Whether a file name is OpenSSL's libssl (`libssl.so.3`, `libssl.so.1.1`, a wheel's
/// `libssl-1b2c3d.so.1.1`).
pub fn is_libssl(file_name: &str) -> bool {
    file_name.starts_with("libssl") && file_name.contains(".so")
}

/// What one process's memory map shows about TLS.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MappedTls<'a> {
    /// Paths (in the process's own mount namespace) of the libssl files it maps.
    pub openssl: Vec<&'a str>,
    /// Other TLS libraries it maps, by name.
    pub other: Vec<&'static str>,
}

/// Reads the text of `/proc/PID/maps`.
pub fn scan_maps(maps: &str) -> MappedTls<'_> {
    let mut found = MappedTls::default();
    for line in maps.lines() {
        // address perms offset dev inode path; the path is the sixth field and may hold spaces.
        let Some(path) = line.splitn(6, ' ').nth(5).map(str::trim_start) else {
            continue;
        };
        if !path.starts_with('/') || path.ends_with(" (deleted)") {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        if is_libssl(name) {
            if !found.openssl.contains(&path) {
                found.openssl.push(path);
            }
        } else if let Some((_, shown)) = OTHER_LIBRARIES.iter().find(|(p, _)| name.starts_with(p)) {
            if !found.other.contains(shown) {
                found.other.push(shown);
            }
        }
    }
    found
}

/// The host's own libssl files, by their real paths (`libssl.so` is usually a link to `libssl.so.3`,
/// and `/lib` to `/usr/lib`: what processes map and what the user should be told is the real file).
pub fn system_libraries() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in LIBRARY_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_str().is_some_and(is_libssl) {
                continue;
            }
            if let Ok(real) = entry.path().canonicalize() {
                if !found.contains(&real) {
                    found.push(real);
                }
            }
        }
    }
    found
}

/// Executables on `PATH` and in the usual program directories that are big enough to hold OpenSSL.
pub fn large_programs() -> Vec<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path_var).collect();
    dirs.extend(PROGRAM_DIRS.iter().map(PathBuf::from));
    let mut seen_dirs = HashSet::new();
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(canonical) = dir.canonicalize() else {
            continue;
        };
        if !seen_dirs.insert(canonical.clone()) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&canonical) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file()
                && meta.permissions().mode() & 0o111 != 0
                && meta.len() >= MIN_STATIC_OPENSSL_BYTES
            {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Process ids in `/proc`.
pub fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The files of one process that may hold TLS code.
#[derive(Debug, Default)]
pub struct ProcessFiles {
    /// Process id.
    pub pid: u32,
    /// Its command name.
    pub comm: String,
    /// Its executable, openable from here (`/proc/PID/exe`), with the path it has in the process.
    pub exe: Option<(PathBuf, String)>,
    /// libssl files it maps, openable from here (through `/proc/PID/root`), with their paths in the
    /// process.
    pub libraries: Vec<(PathBuf, String)>,
    /// Other TLS libraries it maps.
    pub other: Vec<&'static str>,
}

/// What `/proc/PID` says about the process's TLS code; `None` if it is gone or unreadable.
pub fn process_files(pid: u32) -> Option<ProcessFiles> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let maps = std::fs::read_to_string(proc_dir.join("maps")).ok()?;
    let mapped = scan_maps(&maps);
    let root = proc_dir.join("root");
    let libraries = mapped
        .openssl
        .iter()
        .map(|path| (root.join(path.trim_start_matches('/')), (*path).to_owned()))
        .collect();
    let exe_path = proc_dir.join("exe");
    let exe = std::fs::read_link(&exe_path)
        .ok()
        .map(|shown| (exe_path, shown.to_string_lossy().into_owned()));
    let comm = std::fs::read_to_string(proc_dir.join("comm"))
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_default();
    Some(ProcessFiles {
        pid,
        comm,
        exe,
        libraries,
        other: mapped.other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_name_openssl_and_other_tls_libraries_once_each() {
        let maps = "\
55d0c0a00000-55d0c0a20000 r--p 00000000 fe:01 1234 /usr/bin/curl
7f1a00000000-7f1a00020000 r--p 00000000 fe:01 2222 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1a00020000-7f1a00080000 r-xp 00020000 fe:01 2222 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1a10000000-7f1a10020000 r-xp 00000000 fe:01 3333 /opt/my app/lib/libssl-1b2c3d.so.1.1
7f1a20000000-7f1a20020000 r-xp 00000000 fe:01 4444 /usr/lib/x86_64-linux-gnu/libgnutls.so.30
7f1a30000000-7f1a30020000 r-xp 00000000 fe:01 5555 /usr/lib/libssl.so.3 (deleted)
7f1a40000000-7f1a40020000 rw-p 00000000 00:00 0 [heap]
7f1a50000000-7f1a50020000 rw-p 00000000 00:00 0
";
        let found = scan_maps(maps);
        assert_eq!(
            found.openssl,
            [
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                "/opt/my app/lib/libssl-1b2c3d.so.1.1"
            ]
        );
        assert_eq!(found.other, ["GnuTLS"]);
    }

    #[test]
    fn only_libssl_names_count_as_openssl() {
        assert!(is_libssl("libssl.so.3"));
        assert!(is_libssl("libssl.so.1.1"));
        assert!(!is_libssl("libssl3.a"));
        assert!(!is_libssl("libcrypto.so.3"));
        assert!(!is_libssl("libsslcommon"));
    }

    #[test]
    fn this_process_is_read_from_proc() {
        let me = process_files(std::process::id()).expect("own /proc entry");
        assert!(!me.comm.is_empty());
        assert!(me.exe.is_some());
        assert!(FileId::of(&me.exe.unwrap().0).is_some());
    }
}
