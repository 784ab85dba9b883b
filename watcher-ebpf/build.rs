//! Nothing to generate; present so that cargo re-runs builds when the shared types change.
fn main() {
    println!("cargo:rerun-if-changed=../watcher-common/src/lib.rs");
}
