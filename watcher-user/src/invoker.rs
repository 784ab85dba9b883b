//! Who asked for this run when watcher runs as root through `sudo`: the user `sudo` names in
//! `SUDO_UID`/`SUDO_GID`, with that user's name, home and groups from the user database.
//!
//! watcher needs root for the kernel side only. What it starts for the user (`record`'s command) runs as
//! that user, and the files it creates for them belong to them, so a capture never hands root to a
//! command under test or leaves the user a file they cannot read.

use std::{ffi::CString, path::PathBuf};

use nix::unistd::{geteuid, getgrouplist, Gid, Uid, User};

/// The user behind `sudo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoker {
    /// `SUDO_UID`.
    pub uid: Uid,
    /// `SUDO_GID`, else the user's primary group.
    pub gid: Gid,
    /// The user's supplementary groups (with `gid`), from the group database.
    pub groups: Vec<Gid>,
    /// Login name (`SUDO_USER`, or from the user database).
    pub name: Option<String>,
    /// Home directory, when the user database knows the user.
    pub home: Option<PathBuf>,
}

/// A file's owner to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// User.
    pub uid: Uid,
    /// Group.
    pub gid: Gid,
}

impl Invoker {
    /// The user who ran watcher through `sudo`, when watcher runs as root on behalf of someone else;
    /// `None` when not root, not started through `sudo`, or `sudo` was run by root.
    pub fn from_environment() -> Option<Self> {
        if !geteuid().is_root() {
            return None;
        }
        let var = |name| std::env::var(name).ok();
        Self::from_sudo_vars(
            var("SUDO_UID").as_deref(),
            var("SUDO_GID").as_deref(),
            var("SUDO_USER"),
        )
    }

    /// The user named by `sudo`'s variables, looked up in the user and group databases.
    pub fn from_sudo_vars(
        uid: Option<&str>,
        gid: Option<&str>,
        user: Option<String>,
    ) -> Option<Self> {
        let uid = Uid::from_raw(uid?.trim().parse().ok()?);
        if uid.is_root() {
            return None;
        }
        let entry = User::from_uid(uid).ok().flatten();
        let gid = gid
            .and_then(|g| g.trim().parse().ok())
            .map(Gid::from_raw)
            .or_else(|| entry.as_ref().map(|e| e.gid))
            .unwrap_or_else(|| Gid::from_raw(uid.as_raw()));
        let name = user.or_else(|| entry.as_ref().map(|e| e.name.clone()));
        let groups = name
            .as_deref()
            .and_then(|n| CString::new(n).ok())
            .and_then(|n| getgrouplist(&n, gid).ok())
            .unwrap_or_else(|| vec![gid]);
        Some(Self {
            uid,
            gid,
            groups,
            name,
            home: entry.map(|e| e.dir),
        })
    }

    /// Who should own the files watcher creates now: the user behind `sudo`, if any (else the files are
    /// simply the creating user's).
    pub fn file_owner() -> Option<Owner> {
        Self::from_environment().map(|user| user.owner())
    }

    /// Who should own the files created for this user.
    pub fn owner(&self) -> Owner {
        Owner {
            uid: self.uid,
            gid: self.gid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_variables_name_a_user_unless_they_name_root_or_nothing() {
        assert_eq!(Invoker::from_sudo_vars(None, None, None), None);
        assert_eq!(Invoker::from_sudo_vars(Some("0"), Some("0"), None), None);
        assert_eq!(Invoker::from_sudo_vars(Some("x"), None, None), None);
        let user = Invoker::from_sudo_vars(Some("4242"), Some("4343"), Some("ghost".into()))
            .expect("a user");
        assert_eq!((user.uid.as_raw(), user.gid.as_raw()), (4242, 4343));
        assert_eq!(user.name.as_deref(), Some("ghost"));
        assert!(user.groups.contains(&Gid::from_raw(4343)));
    }

    #[test]
    fn a_known_user_gets_the_groups_and_home_of_the_user_database() {
        // `nobody` exists on every Linux system this runs on.
        let Ok(Some(nobody)) = User::from_name("nobody") else {
            panic!("no user nobody")
        };
        let uid = nobody.uid.as_raw().to_string();
        let user = Invoker::from_sudo_vars(Some(&uid), None, None).expect("a user");
        assert_eq!(user.gid, nobody.gid);
        assert_eq!(user.name.as_deref(), Some("nobody"));
        assert_eq!(user.home, Some(nobody.dir));
        assert!(user.groups.contains(&nobody.gid));
    }
}
