//! NDJSON files: where an export goes (a path, stdout, or a new timestamped file) and opening it.
//!
//! Every file watcher creates is opened here, when a mode starts, never while arguments are validated.
//! Captures hold what services said, so every file is private to its owner (mode 0600, whatever the
//! umask, and also when `--json-output` names a file that exists). A default-named file is created new
//! (`create_new`, which also refuses to follow a symlink), so an earlier capture is never overwritten
//! and nothing is written through a file or link someone else left under that name.

use std::{
    fs::{File, OpenOptions, Permissions},
    io::{BufWriter, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::SystemTime,
};

/// The mode of every file watcher creates: read and write for its owner only.
pub const FILE_MODE: u32 = 0o600;

/// Opens a file for writing with [`FILE_MODE`], `create_new` or truncating, and sets the mode again on
/// the open file: the umask may have taken bits away, and an existing file keeps its old mode.
fn open_private(path: &Path, create_new: bool) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(!create_new)
        .truncate(!create_new)
        .create_new(create_new)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Where records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// This file (created, or truncated when it exists).
    File(PathBuf),
    /// A new `PREFIX-YYYYMMDD-HHMMSS.ndjson` in the current directory.
    Timestamped(&'static str),
}

impl Target {
    /// `-` means stdout, anything else a file.
    pub fn from_arg(path: PathBuf) -> Self {
        if path.as_os_str() == "-" {
            Target::Stdout
        } else {
            Target::File(path)
        }
    }
}

/// The export could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("--json-output: cannot create {path}: {source}")]
pub struct OpenError {
    /// The path, or the pattern of a timestamped name.
    pub path: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// An open export.
pub struct Opened {
    /// What to call it in messages (`stdout` or the path).
    pub name: String,
    /// The file created, if one was (to remove it if the run never starts).
    pub created: Option<PathBuf>,
    /// Where to write.
    pub writer: Box<dyn Write + Send>,
}

/// Opens `target` for writing.
pub fn open(target: &Target) -> Result<Opened, OpenError> {
    let (path, file) = match target {
        Target::Stdout => {
            return Ok(Opened {
                name: "stdout".into(),
                created: None,
                writer: Box::new(BufWriter::new(std::io::stdout())),
            })
        }
        Target::File(path) => {
            let file = open_private(path, false).map_err(|source| OpenError {
                path: path.display().to_string(),
                source,
            })?;
            (path.clone(), file)
        }
        Target::Timestamped(prefix) => create_timestamped(Path::new(""), prefix, SystemTime::now())
            .map_err(|source| OpenError {
                path: format!("{prefix}-<time>.ndjson"),
                source,
            })?,
    };
    Ok(Opened {
        name: path.display().to_string(),
        created: Some(path),
        writer: Box::new(BufWriter::new(file)),
    })
}

/// Creates `PREFIX-YYYYMMDD-HHMMSS.ndjson` (UTC, `now`) in `dir` (`""`: the current directory, named
/// relatively), adding `-1`, `-2`, ... rather than overwriting an earlier file (or following a link)
/// of the same name.
pub fn create_timestamped(
    dir: &Path,
    prefix: &str,
    now: SystemTime,
) -> std::io::Result<(PathBuf, File)> {
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter_map(|c| match c {
            'T' => Some('-'),
            c if c.is_ascii_digit() => Some(c),
            _ => None,
        })
        .collect();
    let mut attempt = 0;
    loop {
        let name = if attempt == 0 {
            format!("{prefix}-{stamp}.ndjson")
        } else {
            format!("{prefix}-{stamp}-{attempt}.ndjson")
        };
        let path = dir.join(name);
        match open_private(&path, true) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_that_cannot_be_created_names_the_flag() {
        let Err(e) = open(&Target::File("/nonexistent-dir/x.ndjson".into())) else {
            panic!("no such directory");
        };
        assert!(e.to_string().starts_with("--json-output"), "{e}");
        assert_eq!(Target::from_arg("-".into()), Target::Stdout);
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn exports_are_private_whatever_the_umask_and_never_written_through_a_link() {
        let dir = std::env::temp_dir().join(format!("watcher-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The umask is the process's: with none, a plain create would make a file anyone can read.
        let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());

        let named = dir.join("capture.ndjson");
        std::fs::write(&named, "an older capture").unwrap();
        std::fs::set_permissions(&named, Permissions::from_mode(0o644)).unwrap();
        let opened = open(&Target::File(named.clone())).unwrap();
        drop(opened);
        assert_eq!(
            mode_of(&named),
            FILE_MODE,
            "an existing file is made private"
        );
        assert_eq!(std::fs::read(&named).unwrap(), b"", "and truncated");

        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_hours(500_000);
        let (first, _) = create_timestamped(&dir, "watcher", now).unwrap();
        assert_eq!(mode_of(&first), FILE_MODE);
        std::fs::remove_file(&first).unwrap();
        let elsewhere = dir.join("elsewhere");
        std::fs::write(&elsewhere, "not ours").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &first).unwrap();
        let (second, mut file) = create_timestamped(&dir, "watcher", now).unwrap();
        file.write_all(b"records").unwrap();
        assert_ne!(second, first, "the name a link holds is skipped");
        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"not ours");
        assert_eq!(mode_of(&second), FILE_MODE);

        nix::sys::stat::umask(umask);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
