//! A Redis session (pairing, pub/sub, CLIENT REPLY, replication links) fed both directions of one
//! connection as capture delivers them; every exchange is then redacted, encoded as JSON and read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watcher::protocol::{plugin::Session, redis::RedisSession};
use watcher_fuzz::{drive, script};

fuzz_target!(|data: &[u8]| {
    let script = script(data);
    let mut session = RedisSession::new(script.keep_bytes, script.from_start);
    drive(&mut session, &script);
});
