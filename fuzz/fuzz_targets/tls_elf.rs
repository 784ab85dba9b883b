//! ELF files as the TLS finder reads them: watcher, as root, inspects any large executable on `PATH` and
//! any file a process maps, so a hostile file must get an error, never a panic or a wrong probe point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watcher::capture::tls::symbols::{inspect_bytes, TlsCode};

fuzz_target!(|data: &[u8]| {
    if let Ok(TlsCode::OpenSsl(points) | TlsCode::Go(Ok(points))) = inspect_bytes(data) {
        // Offsets are in the file: a probe outside it could not be placed anyway.
        assert!(points.iter().all(|(_, offset)| *offset < data.len() as u64));
    }
});
