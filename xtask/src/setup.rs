//! Installing prerequisites on first use: Debian packages, the nightly `rust-src` component and
//! `bpf-linker`. Each step checks first and does nothing when already satisfied.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

use crate::check;

/// Whether we run as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME").map_or_else(
        || PathBuf::from(env::var_os("HOME").unwrap_or_default()).join(".cargo"),
        PathBuf::from,
    )
}

/// PATH with cargo's bin directory first (where bpf-linker is installed).
pub fn path_with_cargo_bin() -> std::ffi::OsString {
    let mut paths = vec![cargo_home().join("bin")];
    paths.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    env::join_paths(paths).unwrap_or_default()
}

fn has_command(name: &str, path: &std::ffi::OsStr) -> bool {
    env::split_paths(path).any(|dir| dir.join(name).is_file())
}

/// Installs Debian packages that are missing.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing packages {missing:?}; install them with: sudo apt-get install -y {}",
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    check(Command::new("apt-get").arg("update").arg("-qq"))?;
    check(
        Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Installs Debian's `package` when no `command` is on PATH. For programs a machine may already have from
/// elsewhere (the development machines carry Node.js 20 outside Debian's packages), where installing
/// the package over it would be wrong.
pub fn command_or_package(command: &str, package: &str) -> Result<()> {
    if has_command(command, &env::var_os("PATH").unwrap_or_default()) {
        return Ok(());
    }
    apt_install(&[package])
}

/// A Python virtual environment at `dir` with `packages` (pinned `name==version`) installed; returns its
/// interpreter. Reused when it already has them.
pub fn python_venv(dir: &Path, packages: &[&str]) -> Result<PathBuf> {
    let python = dir.join("bin/python");
    let wanted = packages.join("\n");
    let stamp = dir.join("watcher-packages.txt");
    if python.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(python);
    }
    if !Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .status()
        .is_ok_and(|s| s.success())
    {
        apt_install(&["python3-venv"])?;
    }
    eprintln!(
        "xtask: making a Python environment in {} with {}",
        dir.display(),
        packages.join(" ")
    );
    check(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(dir),
    )?;
    check(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages),
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// Makes sure nightly has `rust-src` and that `bpf-linker` is installed.
pub fn ebpf_toolchain() -> Result<()> {
    let sysroot = nightly_output(&["--print", "sysroot"])?;
    let sysroot = Path::new(sysroot.trim());
    if !sysroot.join("lib/rustlib/src/rust/library").exists() {
        eprintln!("xtask: adding rust-src to the nightly toolchain");
        check(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    if has_command("bpf-linker", &path_with_cargo_bin()) {
        return Ok(());
    }
    install_bpf_linker(sysroot)
}

fn nightly_output(args: &[&str]) -> Result<String> {
    let out = Command::new("rustc")
        .arg("+nightly")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .context("running rustc +nightly")?;
    if !out.status.success() {
        bail!("rustc +nightly {args:?} failed: is the nightly toolchain installed?");
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Builds bpf-linker against the nightly toolchain's own libLLVM (Debian's LLVM is older than the
/// nightly's, which bpf-linker cannot accept).
fn install_bpf_linker(sysroot: &Path) -> Result<()> {
    let lib = sysroot.join("lib");
    let llvm_so = std::fs::read_dir(&lib)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libLLVM.so."))
        })
        .with_context(|| format!("no libLLVM.so.* in {}", lib.display()))?;
    let version = nightly_output(&["-vV"])?;
    let major = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("rustc +nightly -vV printed no LLVM version")?
        .to_owned();
    let prefix = cargo_home().join("watcher-llvm");
    std::fs::create_dir_all(prefix.join("lib"))?;
    let link = prefix.join("lib/libLLVM.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&llvm_so, &link)?;
    eprintln!(
        "xtask: building bpf-linker against {} (LLVM {major})",
        llvm_so.display()
    );
    check(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--no-default-features",
                "--features",
            ])
            .arg(format!("llvm-{major}"))
            .env("LLVM_PREFIX", &prefix)
            .env(
                "RUSTFLAGS",
                format!("-C link-args=-Wl,-rpath,{}", lib.display()),
            ),
    )
}
