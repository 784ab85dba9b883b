//! Embeds the eBPF object built by `cargo xtask build-ebpf`, or an empty placeholder so that the crate
//! still builds (and its pure parts test) on stable without nightly or bpf-linker.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let object = env::var_os("WATCHER_EBPF_OBJECT").map_or_else(
        || manifest.join("../watcher-ebpf/target/bpfel-unknown-none/release/watcher"),
        PathBuf::from,
    );
    println!("cargo:rerun-if-env-changed=WATCHER_EBPF_OBJECT");
    println!("cargo:rerun-if-changed={}", object.display());
    let bytes = fs::read(&object).unwrap_or_default();
    fs::write(out.join("watcher-ebpf.o"), bytes).expect("OUT_DIR is writable");
}
