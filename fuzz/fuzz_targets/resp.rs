//! The RESP decoder, both roles, fed as capture delivers bytes: every frame it returns must account
//! for no more bytes than it was given, and it must never panic or hold more than it keeps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watcher::protocol::{
    redis::resp::{Output, RespDecoder, Role},
    Flow,
};
use watcher_fuzz::{script, Step};

fuzz_target!(|data: &[u8]| {
    let script = script(data);
    let mut requests = RespDecoder::new(Role::Request, script.keep_bytes, script.from_start);
    let mut responses = RespDecoder::new(Role::Response, script.keep_bytes, script.from_start);
    let mut out = Vec::new();
    let mut given = 0u64;
    for step in &script.steps {
        match *step {
            Step::Data(chunk) => {
                let decoder = if chunk.flow == Flow::Request {
                    &mut requests
                } else {
                    &mut responses
                };
                if chunk.call_start {
                    decoder.resync(chunk.data);
                }
                decoder.feed(chunk.data, chunk.ts_ns, &mut out);
                given += chunk.data.len() as u64;
            }
            Step::Gap { flow, len } => {
                let decoder = if flow == Flow::Request {
                    &mut requests
                } else {
                    &mut responses
                };
                decoder.gap(len, &mut out);
                given += len;
            }
        }
    }
    let decoded: u64 = out
        .iter()
        .map(|o| match o {
            Output::Frame(d) => d.wire_bytes,
            Output::LostSync(_) => 0,
        })
        .sum();
    assert!(
        decoded <= given,
        "frames account for {decoded} of {given} bytes"
    );
});
