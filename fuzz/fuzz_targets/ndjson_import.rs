//! NDJSON import (`show`, `stat`): any bytes, line by line, read and redacted; a line that is not a
//! record is reported, never a panic, and every record read is written again and read back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watcher::{
    ndjson::{
        read::{parse_line, read},
        write::write_record,
    },
    protocol::redact::Redaction,
};

fuzz_target!(|data: &[u8]| {
    let Ok(imported) = read(data, &Redaction::default()) else {
        return;
    };
    let mut line = Vec::new();
    for record in &imported.records {
        line.clear();
        write_record(record, &mut line);
        let text = std::str::from_utf8(&line).expect("the writer writes UTF-8");
        if let Err(e) = parse_line(text) {
            panic!("{e}: cannot read back {text}");
        }
    }
});
