//! The RESP decoder, both roles, fed as capture delivers bytes: every frame it returns must account
//! for no more bytes than it was given, and it must never panic or hold more than it keeps. The same
//! bytes fed one at a time must decode to the same outputs: whole frames lying in one slice take the
//! decoder's fast path, bytes one at a time never do, so this holds the fast path to the general one.
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
    let mut requests_bytewise = RespDecoder::new(Role::Request, script.keep_bytes, script.from_start);
    let mut responses_bytewise =
        RespDecoder::new(Role::Response, script.keep_bytes, script.from_start);
    let mut out = Vec::new();
    let mut out_bytewise = Vec::new();
    let mut given = 0u64;
    for step in &script.steps {
        match *step {
            Step::Data(chunk) => {
                let (decoder, bytewise) = if chunk.flow == Flow::Request {
                    (&mut requests, &mut requests_bytewise)
                } else {
                    (&mut responses, &mut responses_bytewise)
                };
                if chunk.call_start {
                    decoder.resync(chunk.data);
                    bytewise.resync(chunk.data);
                }
                decoder.feed(chunk.data, chunk.ts_ns, &mut out);
                for byte in chunk.data.chunks(1) {
                    bytewise.feed(byte, chunk.ts_ns, &mut out_bytewise);
                }
                given += chunk.data.len() as u64;
            }
            Step::Gap { flow, len } => {
                let (decoder, bytewise) = if flow == Flow::Request {
                    (&mut requests, &mut requests_bytewise)
                } else {
                    (&mut responses, &mut responses_bytewise)
                };
                decoder.gap(len, &mut out);
                bytewise.gap(len, &mut out_bytewise);
                given += len;
            }
        }
    }
    assert_eq!(out, out_bytewise, "whole slices and single bytes decode differently");
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
