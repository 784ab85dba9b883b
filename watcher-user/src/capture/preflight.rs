//! Checks and fixes before loading programs: privileges, BTF, tracefs, memlock.
//!
//! Each failure says what is missing and how to fix it; nothing here loads BPF code.

use std::path::Path;

use super::offsets::VMLINUX_BTF;

/// Where tracefs is expected.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Something the host lacks.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Not root.
    #[error(
        "watcher needs root to load eBPF programs (effective uid is {euid}); run it with sudo, or as \
         `cargo xtask run -- ...` which does"
    )]
    NotRoot {
        /// The effective uid.
        euid: u32,
    },
    /// No kernel BTF.
    #[error("kernel BTF is missing ({VMLINUX_BTF}); watcher needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    /// tracefs is neither mounted nor mountable.
    #[error(
        "tracefs is not mounted at {TRACEFS} and mounting it failed: {source}; mount it with \
         `mount -t tracefs none {TRACEFS}`"
    )]
    Tracefs {
        /// Why mounting failed.
        #[source]
        source: nix::Error,
    },
}

/// What preflight did that the user should know about.
#[derive(Debug, Default)]
pub struct PreflightReport {
    /// Whether tracefs had to be mounted.
    pub mounted_tracefs: bool,
}

/// Runs every check; mounts tracefs when missing.
pub fn run() -> Result<PreflightReport, PreflightError> {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return Err(PreflightError::NotRoot { euid });
    }
    if !Path::new(VMLINUX_BTF).exists() {
        return Err(PreflightError::NoBtf);
    }
    let mut report = PreflightReport::default();
    if !Path::new(TRACEFS).join("events").exists() {
        nix::mount::mount(
            Some("none"),
            TRACEFS,
            Some("tracefs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|source| PreflightError::Tracefs { source })?;
        report.mounted_tracefs = true;
    }
    // Since 5.11 BPF memory is charged to the cgroup, so a refused raise (no CAP_SYS_RESOURCE) is fine.
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_MEMLOCK,
        nix::sys::resource::RLIM_INFINITY,
        nix::sys::resource::RLIM_INFINITY,
    );
    Ok(report)
}
