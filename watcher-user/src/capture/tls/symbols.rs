//! Reading an ELF file's symbols: where OpenSSL's functions are (`openssl` picks the instruction of each
//! that is probed; uprobes take file offsets), and whether the file is a Go program (whose
//! `crypto/tls` is found by `golang`).
//!
//! The file is mapped, not read: only the pages holding its headers, its symbol tables and the few
//! functions `openssl` decodes are touched, so inspecting a 100 MB executable costs little more than a
//! small one.

use std::{fs::File, path::Path};

use object::{Object, ObjectSymbol};
use watcher_common::tls_function;

use super::{
    code::code_at,
    golang::{self, GoError},
    openssl,
};

/// The functions looked for, by name, with the code the programs know them by.
pub const FUNCTIONS: [(&str, u64); 5] = [
    ("SSL_read", tls_function::READ),
    ("SSL_write", tls_function::WRITE),
    ("SSL_read_ex", tls_function::READ_EX),
    ("SSL_write_ex", tls_function::WRITE_EX),
    ("SSL_do_handshake", tls_function::HANDSHAKE),
];

/// What an ELF file holds, as far as TLS is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsCode {
    /// OpenSSL's (or a compatible library's) functions, defined in this file (`SSL_read` and
    /// `SSL_write` at least): `(function, file offset)` of each probe point, which `openssl` chose
    /// (reads and writes may be probed on the internal function they share, as `_ex` calls).
    OpenSsl(Vec<(u64, u64)>),
    /// A Go program: its TLS is Go's own `crypto/tls`, with these probe points (`(cookie, file
    /// offset)`), or the reason they cannot be placed.
    Go(Result<Vec<(u64, u64)>, GoError>),
    /// Neither.
    None,
}

/// Why a file could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Opening or mapping it failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// It is not an ELF file we can read.
    #[error("not a readable ELF file: {0}")]
    Elf(#[from] object::Error),
}

/// Inspects the ELF file at `path`.
pub fn inspect(path: &Path) -> Result<TlsCode, InspectError> {
    let file = File::open(path)?;
    // SAFETY: the mapping is read-only and private. If another process truncates the file meanwhile,
    // reading the mapping can fault (SIGBUS); libraries and executables being run are not rewritten in
    // place (package managers replace them by rename), which is the case every ELF reader relies on.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }?;
    inspect_bytes(&map)
}

/// Inspects an ELF image held in memory.
pub fn inspect_bytes(bytes: &[u8]) -> Result<TlsCode, InspectError> {
    let elf = object::File::parse(bytes)?;
    let mut found = Vec::new();
    // Libraries export the functions in `.dynsym`; a static executable may only have `.symtab`.
    for symbol in elf.dynamic_symbols().chain(elf.symbols()) {
        if symbol.is_undefined() || !symbol.is_definition() {
            continue;
        }
        let Ok(name) = symbol.name() else { continue };
        let Some(&(_, function)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        if found.iter().any(|(f, _)| *f == function) {
            continue;
        }
        if code_at(&elf, symbol.address(), 1).is_some() {
            found.push((function, symbol.address()));
        }
    }
    let has = |f| found.iter().any(|(g, _)| *g == f);
    if has(tls_function::READ) && has(tls_function::WRITE) {
        let points = openssl::probe_points(&elf, &found)
            .into_iter()
            .filter_map(|(f, address)| Some((f, code_at(&elf, address, 1)?.1)))
            .collect();
        return Ok(TlsCode::OpenSsl(points));
    }
    if elf.section_by_name(".go.buildinfo").is_some() {
        return Ok(TlsCode::Go(golang::probe_points(&elf)));
    }
    Ok(TlsCode::None)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    // Functions with OpenSSL's names in this test binary, so inspecting it finds them. Exported names
    // are `unsafe` to the compiler because they could clash; nothing else here defines these. Called
    // through pointers the optimiser cannot see through, or an optimised build inlines them and
    // leaves no symbol.
    #[allow(unsafe_code)]
    #[unsafe(no_mangle)]
    #[inline(never)]
    extern "C" fn SSL_read() -> i32 {
        std::hint::black_box(1)
    }

    #[allow(unsafe_code)]
    #[unsafe(no_mangle)]
    #[inline(never)]
    extern "C" fn SSL_write() -> i32 {
        std::hint::black_box(2)
    }

    /// Calls both through opaque pointers; the other tests that inspect this binary call it too.
    pub(in crate::capture::tls) fn defined_here() -> i32 {
        let read: extern "C" fn() -> i32 = std::hint::black_box(SSL_read);
        let write: extern "C" fn() -> i32 = std::hint::black_box(SSL_write);
        read() + write()
    }

    #[test]
    fn defined_functions_are_found_with_offsets_inside_the_file() {
        assert_eq!(defined_here(), 3);
        let exe = std::env::current_exe().expect("test binary");
        let size = std::fs::metadata(&exe).expect("size").len();
        let TlsCode::OpenSsl(found) = inspect(&exe).expect("inspect") else {
            panic!("the test binary defines SSL_read and SSL_write");
        };
        let functions: Vec<u64> = found.iter().map(|(f, _)| *f).collect();
        assert_eq!(functions, [tls_function::READ, tls_function::WRITE]);
        assert!(found
            .iter()
            .all(|(_, offset)| *offset > 0 && *offset < size));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(inspect_bytes(b"\x7fELF not really").is_err());
        assert!(inspect_bytes(&[]).is_err());
        assert!(inspect(Path::new("/nonexistent/libssl.so.3")).is_err());
    }
}
