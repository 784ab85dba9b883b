//! One connection as a shard sees it: protocol detection over every protocol, then the protocol's
//! session through the registry, with every finished exchange redacted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watcher::protocol::{
    detect::{Decoding, Session},
    redact::Redaction,
    ProtocolSet,
};
use watcher_fuzz::{script, Step};

fuzz_target!(|data: &[u8]| {
    let script = script(data);
    let decoding = Decoding {
        protocols: ProtocolSet::all(),
        keep_bytes: script.keep_bytes,
    };
    let mut session = Session::new(script.from_start);
    let policy = Redaction::default();
    let mut finished = |mut paired: watcher::protocol::Paired<watcher::protocol::Exchange>| {
        paired.exchange.redact(&policy);
    };
    for step in &script.steps {
        match *step {
            Step::Data(chunk) => {
                if session.on_data(&decoding, chunk, &mut finished) {
                    break;
                }
            }
            Step::Gap { flow, len } => session.on_gap(flow, len, &mut finished),
        }
    }
    session.on_close(&mut finished);
});
