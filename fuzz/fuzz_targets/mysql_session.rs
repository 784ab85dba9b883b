//! A MySQL session (packet framing, the compressed protocol, the handshake, result sets in both end
//! forms, prepared statements and their binary values) fed both directions of one connection as capture
//! delivers them; every exchange is then redacted, encoded as JSON and read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watcher::protocol::{mysql::MysqlSession, plugin::Session};
use watcher_fuzz::{drive, script};

fuzz_target!(|data: &[u8]| {
    let script = script(data);
    let mut session = MysqlSession::new(script.keep_bytes, script.from_start);
    drive(&mut session, &script);
});
