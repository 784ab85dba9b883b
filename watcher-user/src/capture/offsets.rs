//! Kernel struct field offsets from the running kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! The eBPF programs are built without CO-RE relocations, so they cannot name kernel struct fields; user
//! space resolves the few offsets they need here, once at start-up, and passes them in `KernelConfig`.

use std::path::Path;

use btfparse::{Offset, Readable, TypeInformation};
use watcher_common::KernelOffsets;

/// Where the kernel publishes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Why offsets could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    /// The BTF file could not be read.
    #[error(
        "cannot read kernel BTF at {path}: {source} (the kernel needs CONFIG_DEBUG_INFO_BTF=y)"
    )]
    Read {
        /// The file tried.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The BTF data did not parse.
    #[error("cannot parse kernel BTF: {0}")]
    Parse(String),
    /// A struct or field was not found.
    #[error("kernel BTF has no {0}; this kernel's layout is not supported")]
    Missing(String),
}

struct Bytes(Vec<u8>);

impl Readable for Bytes {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match self.0.get(start..start.saturating_add(buffer.len())) {
            Some(src) => {
                buffer.copy_from_slice(src);
                Ok(())
            }
            None => Err(btfparse::Error::new(
                btfparse::ErrorKind::IOError,
                "read past the end of the BTF data",
            )),
        }
    }
}

/// Resolves the offsets from the BTF file at `path`.
pub fn resolve(path: &Path) -> Result<KernelOffsets, OffsetsError> {
    let data = std::fs::read(path).map_err(|source| OffsetsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let types =
        TypeInformation::new(&Bytes(data)).map_err(|e| OffsetsError::Parse(format!("{e:?}")))?;
    let field = |ty: &str, path: &str| -> Result<u32, OffsetsError> {
        let missing = || OffsetsError::Missing(format!("{ty}.{path}"));
        let id = types.id_of(ty).ok_or_else(missing)?;
        match types.offset_of(id, path).map_err(|_| missing())? {
            (_, Offset::ByteOffset(n)) => Ok(n),
            (_, Offset::BitOffsetAndSize(..)) => Err(missing()),
        }
    };
    Ok(KernelOffsets {
        task_files: field("task_struct", "files")?,
        files_fdt: field("files_struct", "fdt")?,
        fdt_max_fds: field("fdtable", "max_fds")?,
        fdt_fd: field("fdtable", "fd")?,
        file_inode: field("file", "f_inode")?,
        file_private_data: field("file", "private_data")?,
        inode_mode: field("inode", "i_mode")?,
        socket_type: field("socket", "type")?,
        socket_sk: field("socket", "sk")?,
        sock_protocol: field("sock", "sk_protocol")?,
        skc_family: field("sock", "__sk_common.skc_family")?,
        skc_daddr: field("sock", "__sk_common.skc_daddr")?,
        skc_rcv_saddr: field("sock", "__sk_common.skc_rcv_saddr")?,
        skc_dport: field("sock", "__sk_common.skc_dport")?,
        skc_num: field("sock", "__sk_common.skc_num")?,
        skc_v6_daddr: field("sock", "__sk_common.skc_v6_daddr")?,
        skc_v6_rcv_saddr: field("sock", "__sk_common.skc_v6_rcv_saddr")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_offsets_of_the_running_kernel_when_btf_is_present() {
        let path = Path::new(VMLINUX_BTF);
        if !path.exists() {
            eprintln!("SKIPPED: {VMLINUX_BTF} is absent on this machine");
            return;
        }
        let offsets = resolve(path).expect("offsets resolve");
        // skc_daddr opens sock_common, which opens struct sock; the v6 addresses come later.
        assert_eq!(offsets.skc_daddr, 0);
        assert_eq!(offsets.skc_rcv_saddr, 4);
        assert!(offsets.skc_v6_daddr > offsets.skc_num);
        assert!(offsets.task_files > 0 && offsets.socket_sk > 0);
    }
}
