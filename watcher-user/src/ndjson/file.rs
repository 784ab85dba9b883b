//! NDJSON files: where an export goes (a path, stdout, or a new timestamped file) and opening it.
//!
//! Every file watcher creates is opened here, when a mode starts, never while arguments are validated.
//! Captures hold what services said, so every file is private to its owner (mode 0600, whatever the
//! umask, and also when `--json-output` names a regular file that exists; a device or pipe such as
//! `/dev/null` is written as it is). A default-named file is created new
//! (`create_new`, which also refuses to follow a symlink), so an earlier capture is never overwritten
//! and nothing is written through a file or link someone else left under that name. A file created
//! while watcher runs as root through `sudo` is given to the user who ran `sudo` (`--json-output` files
//! that already existed keep their owner), so they can read their capture without root.

use std::{
    fs::{File, OpenOptions, Permissions},
    io::{BufWriter, Write},
    os::unix::fs::{fchown, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::SystemTime,
};

use crate::invoker::Owner;

/// The mode of every file watcher creates: read and write for its owner only.
pub const FILE_MODE: u32 = 0o600;

/// Opens a file for writing with [`FILE_MODE`], new (`create_new`) or else truncating an existing one,
/// and sets the mode again on the open file: the umask may have taken bits away, and an existing file
/// keeps its old mode. A file it creates is given to `owner`. Something that is not a regular file (a
/// device such as `/dev/null`, a pipe) is written as it is: its mode and owner are not ours to change.
/// Returns whether the file was created.
fn open_private(
    path: &Path,
    create_new: bool,
    owner: Option<Owner>,
) -> std::io::Result<(File, bool)> {
    let create = |new: bool| {
        OpenOptions::new()
            .write(true)
            .create(!new)
            .truncate(!new)
            .create_new(new)
            .mode(FILE_MODE)
            .open(path)
    };
    let (file, created) = match create(true) {
        Ok(file) => (file, true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !create_new => {
            (create(false)?, false)
        }
        Err(e) => return Err(e),
    };
    if created || file.metadata()?.file_type().is_file() {
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    }
    if let (Some(owner), true) = (owner, created) {
        fchown(&file, Some(owner.uid.as_raw()), Some(owner.gid.as_raw()))?;
    }
    Ok((file, created))
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
    /// The file, if watcher created it (to remove it if the run never starts); never a file that
    /// existed before, such as `/dev/null`.
    pub created: Option<PathBuf>,
    /// Where to write.
    pub writer: Box<dyn Write + Send>,
}

/// Opens `target` for writing; a file it creates is given to `owner`.
pub fn open(target: &Target, owner: Option<Owner>) -> Result<Opened, OpenError> {
    let (path, file, created) = match target {
        Target::Stdout => {
            return Ok(Opened {
                name: "stdout".into(),
                created: None,
                writer: Box::new(BufWriter::new(std::io::stdout())),
            })
        }
        Target::File(path) => {
            let (file, created) = open_private(path, false, owner).map_err(|source| OpenError {
                path: path.display().to_string(),
                source,
            })?;
            (path.clone(), file, created)
        }
        Target::Timestamped(prefix) => {
            let (path, file) =
                { create_timestamped(Path::new(""), prefix, SystemTime::now(), owner) }.map_err(
                    |source| OpenError {
                        path: format!("{prefix}-<time>.ndjson"),
                        source,
                    },
                )?;
            (path, file, true)
        }
    };
    Ok(Opened {
        name: path.display().to_string(),
        created: created.then(|| path.clone()),
        writer: Box::new(BufWriter::new(file)),
    })
}

/// Creates `PREFIX-YYYYMMDD-HHMMSS.ndjson` (UTC, `now`) in `dir` (`""`: the current directory, named
/// relatively), adding `-1`, `-2`, ... rather than overwriting an earlier file (or following a link)
/// of the same name. The file is given to `owner`.
pub fn create_timestamped(
    dir: &Path,
    prefix: &str,
    now: SystemTime,
    owner: Option<Owner>,
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
        match open_private(&path, true, owner) {
            Ok((file, _)) => return Ok((path, file)),
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
        let Err(e) = open(&Target::File("/nonexistent-dir/x.ndjson".into()), None) else {
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
        let opened = open(&Target::File(named.clone()), None).unwrap();
        drop(opened);
        assert_eq!(
            mode_of(&named),
            FILE_MODE,
            "an existing file is made private"
        );
        assert_eq!(std::fs::read(&named).unwrap(), b"", "and truncated");

        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_hours(500_000);
        let (first, _) = create_timestamped(&dir, "watcher", now, None).unwrap();
        assert_eq!(mode_of(&first), FILE_MODE);
        std::fs::remove_file(&first).unwrap();
        let elsewhere = dir.join("elsewhere");
        std::fs::write(&elsewhere, "not ours").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &first).unwrap();
        let (second, mut file) = create_timestamped(&dir, "watcher", now, None).unwrap();
        file.write_all(b"records").unwrap();
        assert_ne!(second, first, "the name a link holds is skipped");
        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"not ours");
        assert_eq!(mode_of(&second), FILE_MODE);

        nix::sys::stat::umask(umask);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_device_is_written_as_it_is_and_never_counted_as_created() {
        // Writing to /dev/null must neither make it private (chmod 0600 as root breaks every other
        // user's shell) nor let a failed start remove it.
        let null = Path::new("/dev/null");
        let before = mode_of(null);
        let opened = open(&Target::File(null.into()), None).unwrap();
        let after = mode_of(null);
        if after != before {
            // Put it back before failing, so a regression does not break the machine running it.
            let _ = std::fs::set_permissions(null, Permissions::from_mode(before));
        }
        assert_eq!(after, before, "the mode of /dev/null is left alone");
        assert_eq!(opened.created, None);
    }

    #[test]
    fn an_existing_file_is_not_counted_as_created() {
        let path = std::env::temp_dir().join(format!("watcher-existing-{}", std::process::id()));
        std::fs::write(&path, "older").unwrap();
        assert_eq!(
            open(&Target::File(path.clone()), None).unwrap().created,
            None
        );
        std::fs::remove_file(&path).unwrap();
        let fresh = open(&Target::File(path.clone()), None).unwrap();
        assert_eq!(fresh.created.as_deref(), Some(path.as_path()));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn files_created_for_a_sudo_user_are_theirs_and_existing_ones_keep_their_owner() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            // `cargo xtask test` runs the unit tests as root, so CI runs this.
            eprintln!("skipped: giving a file away needs root");
            return;
        }
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        let owner = Owner {
            uid: nobody.uid,
            gid: nobody.gid,
        };
        let dir = std::env::temp_dir().join(format!("watcher-owner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let owner_of = |path: &Path| {
            let meta = std::fs::metadata(path).unwrap();
            (meta.uid(), meta.gid())
        };
        let wanted = (nobody.uid.as_raw(), nobody.gid.as_raw());

        let fresh = dir.join("fresh.ndjson");
        drop(open(&Target::File(fresh.clone()), Some(owner)).unwrap());
        assert_eq!(owner_of(&fresh), wanted);
        let existing = dir.join("existing.ndjson");
        std::fs::write(&existing, "x").unwrap();
        drop(open(&Target::File(existing.clone()), Some(owner)).unwrap());
        assert_eq!(
            owner_of(&existing),
            (0, 0),
            "an existing file keeps its owner"
        );
        let now = SystemTime::UNIX_EPOCH;
        let (named, _) = create_timestamped(&dir, "watcher", now, Some(owner)).unwrap();
        assert_eq!(owner_of(&named), wanted);

        let _ = std::fs::remove_dir_all(&dir);
    }
}
