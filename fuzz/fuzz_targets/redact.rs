//! The shared masking rules on arbitrary text (a body, a target, a query, SQL): whatever the bytes, masking
//! keeps the length, turns bytes only into the mask, and says it found a secret exactly when it changed
//! something that was not already masked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watcher::protocol::{
    mysql::redact::mask_sql,
    redact::{is_secret_name, mask_json, mask_params, mask_url, MASK},
};

fuzz_target!(|data: &[u8]| {
    let Some((&rule, text)) = data.split_first() else {
        return;
    };
    let mut masked = text.to_vec();
    let found = match rule % 5 {
        0 => mask_json(&mut masked),
        1 => mask_params(&mut masked),
        2 => mask_url(&mut masked),
        3 => mask_sql(&mut masked).literals,
        _ => {
            // Names are judged without panicking whatever their bytes (percent escapes, length).
            let _ = is_secret_name(text);
            return;
        }
    };
    assert_eq!(masked.len(), text.len(), "masking keeps the length");
    for (before, after) in text.iter().zip(&masked) {
        assert!(
            before == after || *after == MASK,
            "masking only writes the mask"
        );
    }
    if masked.iter().zip(text).any(|(a, b)| a != b) {
        assert!(found, "a change is reported");
    }
});
