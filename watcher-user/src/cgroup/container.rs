//! Container ids in cgroup paths, by the layouts container runtimes use:
//!
//! - Docker: `/docker/<id>` (cgroupfs driver), `/system.slice/docker-<id>.scope` (systemd driver);
//! - containerd (CRI): `/kubepods/.../<id>`, `.../cri-containerd-<id>.scope`;
//! - CRI-O: `.../crio-<id>.scope`;
//! - Podman: `/machine.slice/libpod-<id>.scope`, `/libpod_parent/libpod-<id>`.
//!
//! An id is 64 hexadecimal digits. The deepest path component holding one wins, so a container's own
//! sub-cgroups still name it; Podman's `libpod-conmon-<id>` (its monitor process) names no container.

use std::path::{Path, PathBuf};

use super::FilterError;

/// Digits of a full container id.
const ID_LEN: usize = 64;
/// Digits `docker ps` shows.
const SHORT_LEN: usize = 12;
/// Prefixes runtimes put before the id in a component.
const PREFIXES: [&str; 5] = [
    "docker-",
    "cri-containerd-",
    "crio-",
    "libpod-",
    "containerd-",
];

/// The container id a cgroup path names, if any.
pub fn id_in_path(path: &str) -> Option<&str> {
    path.rsplit('/').find_map(id_in_component)
}

fn id_in_component(component: &str) -> Option<&str> {
    let name = component.strip_suffix(".scope").unwrap_or(component);
    let id = PREFIXES
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .unwrap_or(name);
    (id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some(id)
}

/// `id` shortened as `docker ps` prints it.
pub fn short(id: &str) -> &str {
    id.get(..SHORT_LEN).unwrap_or(id)
}

/// Most directories looked at when searching for a container.
const SEARCH_LIMIT: usize = 100_000;

/// The cgroup directory (below `mount`, from `/`) of the one container whose id starts with `prefix`.
pub fn find(mount: &Path, prefix: &str) -> Result<PathBuf, FilterError> {
    let wanted = prefix.to_ascii_lowercase();
    if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FilterError::NotHex(prefix.to_owned()));
    }
    // A container's directory is the shallowest one naming it; its sub-cgroups are inside.
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    let mut pending = vec![mount.to_path_buf()];
    let mut visited = 0;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            visited += 1;
            if visited > SEARCH_LIMIT {
                break;
            }
            let name = entry.file_name();
            let path = entry.path();
            match name.to_str().and_then(id_in_component) {
                Some(id) if id.starts_with(&wanted) => {
                    if !found.iter().any(|(known, _)| known == id) {
                        let relative = path.strip_prefix(mount).unwrap_or(&path);
                        found.push((id.to_owned(), Path::new("/").join(relative)));
                    }
                }
                _ => pending.push(path),
            }
        }
    }
    match found.len() {
        0 => Err(FilterError::NoContainer(prefix.to_owned())),
        1 => Ok(found.remove(0).1),
        count => Err(FilterError::Ambiguous {
            prefix: prefix.to_owned(),
            count,
            examples: found
                .iter()
                .take(3)
                .map(|(id, _)| short(id))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19";

    #[test]
    fn runtimes_layouts_name_their_container() {
        for path in [
            format!("/docker/{ID}"),
            format!("/system.slice/docker-{ID}.scope"),
            format!("/kubepods/burstable/pod1234-5678/{ID}"),
            format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-{ID}.scope"),
            format!("/kubepods.slice/kubepods-pod12.slice/crio-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope/container"),
            format!("/libpod_parent/libpod-{ID}"),
        ] {
            assert_eq!(id_in_path(&path), Some(ID), "{path}");
        }
    }

    #[test]
    fn other_paths_name_no_container() {
        for path in [
            "/",
            "/user.slice/user-0.slice/session-3.scope",
            "/system.slice/redis-server.service",
            &format!("/machine.slice/libpod-conmon-{ID}.scope"),
            &format!("/docker/{}", &ID[..63]),
            &format!("/docker/{}", ID.to_ascii_uppercase()),
            &format!("/docker/{ID}0"),
        ] {
            assert_eq!(id_in_path(path), None, "{path}");
        }
    }

    #[test]
    fn short_ids_are_twelve_digits() {
        assert_eq!(short(ID), &ID[..12]);
        assert_eq!(short("abc"), "abc");
    }

    #[test]
    fn containers_are_found_by_prefix_in_a_cgroup_tree() {
        let root = std::env::temp_dir().join(format!("watcher-cg-{}", std::process::id()));
        let other = "4f1c00000000000000000000000000000000000000000000000000000000000a";
        std::fs::create_dir_all(root.join(format!("system.slice/docker-{ID}.scope/sub"))).unwrap();
        std::fs::create_dir_all(root.join(format!("docker/{other}"))).unwrap();
        std::fs::create_dir_all(root.join("user.slice")).unwrap();
        assert_eq!(
            find(&root, "4F1C2A").unwrap(),
            PathBuf::from(format!("/system.slice/docker-{ID}.scope"))
        );
        assert_eq!(
            find(&root, other).unwrap(),
            PathBuf::from(format!("/docker/{other}"))
        );
        let ambiguous = find(&root, "4f1c").unwrap_err().to_string();
        assert!(ambiguous.contains("names 2 containers"), "{ambiguous}");
        assert!(matches!(
            find(&root, "beef"),
            Err(FilterError::NoContainer(_))
        ));
        assert!(matches!(find(&root, "web-1"), Err(FilterError::NotHex(_))));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
