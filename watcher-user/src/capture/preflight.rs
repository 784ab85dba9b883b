//! Checks and fixes before loading programs: privileges, kernel version, BTF, tracefs, memlock.
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
    /// A kernel without a helper the programs call.
    #[error(
        "watcher needs Linux {}.{} or later (its programs copy with bpf_loop); this kernel is {release}",
        MIN_KERNEL.0,
        MIN_KERNEL.1
    )]
    KernelTooOld {
        /// `/proc/sys/kernel/osrelease`.
        release: String,
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

/// Oldest kernel the programs load on: `bpf_loop` came in 5.17 (ring buffers in 5.8).
const MIN_KERNEL: (u32, u32) = (5, 17);

/// `(major, minor)` of a kernel release such as `6.18.0-1-amd64`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut numbers = release.trim().split(|c: char| !c.is_ascii_digit());
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}

/// Runs every check; mounts tracefs when missing.
pub fn run() -> Result<PreflightReport, PreflightError> {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return Err(PreflightError::NotRoot { euid });
    }
    // An unreadable release is no reason to refuse: loading says what is missing then.
    if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        if kernel_version(&release).is_some_and(|v| v < MIN_KERNEL) {
            let release = release.trim().to_owned();
            return Err(PreflightError::KernelTooOld { release });
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_are_compared_by_major_and_minor() {
        assert_eq!(kernel_version("6.18.0-1-amd64\n"), Some((6, 18)));
        assert_eq!(kernel_version("5.4.0"), Some((5, 4)));
        assert!(kernel_version("5.4.0").is_some_and(|v| v < MIN_KERNEL));
        assert!(kernel_version("5.17.3-arch1").is_some_and(|v| v >= MIN_KERNEL));
        assert!(kernel_version("6.1").is_some_and(|v| v >= MIN_KERNEL));
        assert_eq!(kernel_version("not a version"), None);
    }
}
