//! An HTTP/1.x session (message framing, chunked bodies, pairing, upgrades) fed both directions of one
//! connection as capture delivers them; every exchange is then redacted, encoded as JSON and read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watcher::protocol::{http::HttpSession, plugin::Session};
use watcher_fuzz::{drive, script};

fuzz_target!(|data: &[u8]| {
    let script = script(data);
    let mut session = HttpSession::new(script.keep_bytes, script.from_start);
    drive(&mut session, &script);
});
