//! Cgroups and containers: which cgroup (v2) a connection's process was in, and which container that
//! cgroup names.
//!
//! The kernel sends a cgroup's id (the inode number of its directory on the cgroup v2 mount) with each
//! connection; [`Names`] turns ids into paths, one lookup per cgroup, cached by the shard that owns it.
//! `--cgroup` and `--container` are resolved here to the ids and depths the kernel filter compares
//! ([`resolve_filter`]). Container ids are read from the path's layout (`container`).

pub mod container;

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

/// A cgroup, as records name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cgroup {
    /// The cgroup v2 id (its directory's inode number).
    pub id: u64,
    /// Its path below the cgroup v2 mount, from `/`; empty when it could not be found (the cgroup
    /// was removed before it was looked up).
    pub path: Box<str>,
    /// The container id the path names, in full, if any.
    pub container: Option<Box<str>>,
}

impl Cgroup {
    /// A cgroup with the container id its path names.
    pub fn new(id: u64, path: &str) -> Self {
        Self {
            id,
            path: path.into(),
            container: container::id_in_path(path).map(Into::into),
        }
    }

    /// The container id shortened the way `docker ps` prints it (12 characters).
    pub fn short_container(&self) -> Option<&str> {
        self.container.as_deref().map(container::short)
    }
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup` on most hosts, `/sys/fs/cgroup/unified`
/// on hybrid ones), read once from `/proc/self/mountinfo`.
pub fn mount() -> Option<&'static Path> {
    static MOUNT: OnceLock<Option<PathBuf>> = OnceLock::new();
    MOUNT
        .get_or_init(|| {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
            cgroup2_mount(&mountinfo)
        })
        .as_deref()
}

/// The mount point of the first cgroup2 file system in a `mountinfo` text.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // Fields: id parent major:minor root mount-point options [optional...] - fstype source ...
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// Why a `--cgroup` or `--container` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// No cgroup v2 file system is mounted.
    #[error("no cgroup v2 file system is mounted (see /proc/self/mountinfo); --cgroup and --container need one")]
    NoMount,
    /// The path is not a cgroup.
    #[error("{path} is not a cgroup: no such directory under the cgroup v2 mount {mount}")]
    NotACgroup {
        /// As given.
        path: String,
        /// The mount searched.
        mount: PathBuf,
    },
    /// No cgroup names a container with this id.
    #[error("no running container's id starts with {0:?} (looked for Docker, containerd/CRI, CRI-O, Podman and kubepods cgroups under the cgroup v2 mount)")]
    NoContainer(String),
    /// The prefix is too short to pick one container.
    #[error("{prefix:?} names {count} containers ({examples}); give more of the id")]
    Ambiguous {
        /// As given.
        prefix: String,
        /// How many matched.
        count: usize,
        /// Some of their ids, shortened.
        examples: String,
    },
    /// Not a container id at all.
    #[error(
        "{0:?} is not a container id: expected hexadecimal digits, as `docker ps` prints them"
    )]
    NotHex(String),
}

/// One cgroup the kernel filter admits: its id and depth, and its path for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterEntry {
    /// The cgroup id.
    pub id: u64,
    /// Depth below the root (the root is 0).
    pub level: u32,
    /// Path below the mount, from `/`.
    pub path: String,
}

/// Resolves `--cgroup` paths (below the mount, or absolute on the mount) and `--container` id
/// prefixes to the cgroups the kernel filter admits.
pub fn resolve_filter(
    paths: &[PathBuf],
    containers: &[String],
) -> Result<Vec<FilterEntry>, FilterError> {
    if paths.is_empty() && containers.is_empty() {
        return Ok(Vec::new());
    }
    let mount = mount().ok_or(FilterError::NoMount)?;
    let mut entries = Vec::new();
    for path in paths {
        entries.push(entry_for_path(mount, path)?);
    }
    for prefix in containers {
        let dir = container::find(mount, prefix)?;
        entries.push(entry_for_path(mount, &dir)?);
    }
    Ok(entries)
}

fn entry_for_path(mount: &Path, given: &Path) -> Result<FilterEntry, FilterError> {
    let relative = given
        .strip_prefix(mount)
        .unwrap_or(given)
        .to_string_lossy()
        .trim_matches('/')
        .to_owned();
    let dir = mount.join(&relative);
    let not_a_cgroup = || FilterError::NotACgroup {
        path: given.display().to_string(),
        mount: mount.to_path_buf(),
    };
    // A cgroup directory always holds `cgroup.procs`; any other directory under the mount does not exist.
    if relative.contains("..") || !dir.join("cgroup.procs").exists() {
        return Err(not_a_cgroup());
    }
    let id = std::fs::metadata(&dir).map_err(|_| not_a_cgroup())?.ino();
    let level = relative.split('/').filter(|c| !c.is_empty()).count() as u32;
    Ok(FilterEntry {
        id,
        level,
        path: format!("/{relative}"),
    })
}

/// Most cgroups remembered by one [`Names`]; past it the cache starts over (a host has far fewer).
const NAMES_CAPACITY: usize = 4096;
/// Most directories visited when searching the mount for an id.
const SEARCH_LIMIT: usize = 100_000;

/// Cgroup ids to cgroups, looked up once each. Owned by one shard, so it takes no lock.
#[derive(Default)]
pub struct Names {
    known: HashMap<u64, Arc<Cgroup>>,
}

impl Names {
    /// The cgroup with `id`, which process `tgid` was in: read from `/proc/TGID/cgroup` when the process
    /// is still in it, otherwise searched for on the mount. A cgroup already removed keeps its id with an
    /// empty path.
    pub fn get(&mut self, id: u64, tgid: u32) -> Arc<Cgroup> {
        if let Some(known) = self.known.get(&id) {
            return Arc::clone(known);
        }
        if self.known.len() >= NAMES_CAPACITY {
            self.known.clear();
        }
        let path = mount()
            .and_then(|mount| path_of(mount, id, tgid))
            .unwrap_or_default();
        let cgroup = Arc::new(Cgroup::new(id, &path));
        self.known.insert(id, Arc::clone(&cgroup));
        cgroup
    }
}

/// The current cgroup of process `tgid`, from its `/proc` entry.
pub fn of_process(tgid: u32) -> Option<(u64, String)> {
    let mount = mount()?;
    let path = process_path(tgid)?;
    let id = std::fs::metadata(mount.join(path.trim_start_matches('/')))
        .ok()?
        .ino();
    Some((id, path))
}

fn process_path(tgid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{tgid}/cgroup")).ok()?;
    // The v2 hierarchy's line is `0::/path`.
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

fn path_of(mount: &Path, id: u64, tgid: u32) -> Option<String> {
    if let Some((found, path)) = of_process(tgid) {
        if found == id {
            return Some(path);
        }
    }
    search(mount, id)
}

/// Walks the mount for the directory whose inode is `id`.
fn search(mount: &Path, id: u64) -> Option<String> {
    if std::fs::metadata(mount).ok()?.ino() == id {
        return Some("/".to_owned());
    }
    let mut pending = vec![mount.to_path_buf()];
    let mut visited = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            visited += 1;
            if visited > SEARCH_LIMIT {
                return None;
            }
            let path = entry.path();
            if entry.metadata().is_ok_and(|m| m.ino() == id) {
                let relative = path.strip_prefix(mount).ok()?;
                return Some(format!("/{}", relative.display()));
            }
            pending.push(path);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_among_v1_mounts() {
        let mountinfo = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 30 0:35 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
";
        assert_eq!(
            cgroup2_mount(mountinfo),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_mount("30 24 0:26 / /x rw - tmpfs tmpfs rw\n"), None);
    }

    #[test]
    fn this_process_has_a_cgroup_whose_id_is_its_inode() {
        let Some(mount) = mount() else {
            eprintln!("SKIPPED: no cgroup v2 mount on this host");
            return;
        };
        let (id, path) = of_process(std::process::id()).expect("own cgroup");
        assert!(path.starts_with('/'));
        assert_eq!(search(mount, id).as_deref(), Some(path.as_str()));
        let mut names = Names::default();
        let named = names.get(id, std::process::id());
        assert_eq!(&*named.path, path.as_str());
        // Cached: the same allocation comes back.
        assert!(Arc::ptr_eq(&named, &names.get(id, 0)));
    }

    #[test]
    fn an_unknown_id_keeps_its_id_with_no_path() {
        let mut names = Names::default();
        let cgroup = names.get(u64::MAX, u32::MAX);
        assert_eq!(cgroup.id, u64::MAX);
        assert!(cgroup.path.is_empty());
    }

    #[test]
    fn filter_paths_must_be_cgroups() {
        let Some(mount) = mount() else {
            eprintln!("SKIPPED: no cgroup v2 mount on this host");
            return;
        };
        let root = entry_for_path(mount, Path::new("/")).expect("root");
        assert_eq!((root.level, root.path.as_str()), (0, "/"));
        let err = entry_for_path(mount, Path::new("/no/such/cgroup")).unwrap_err();
        assert!(err.to_string().contains("not a cgroup"), "{err}");
        assert!(entry_for_path(mount, Path::new("/../etc")).is_err());
        // The mount's own prefix may be given.
        let (_, own) = of_process(std::process::id()).unwrap();
        let absolute = mount.join(own.trim_start_matches('/'));
        let entry = entry_for_path(mount, &absolute).unwrap();
        assert_eq!(entry.path, own);
        assert_eq!(
            entry.level as usize,
            own.split('/').filter(|c| !c.is_empty()).count()
        );
    }
}
