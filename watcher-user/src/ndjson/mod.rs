//! The NDJSON format, in one place: encoding records (`write`), writing them out (`sink`), reading them
//! back (`read`) and the files they live in (`file`). Schema 1 is documented in `docs/json-schema.md`
//! and `docs/record.schema.json`; each protocol writes and reads its own payload (`protocol/<name>/json.rs`).

pub mod file;
pub mod read;
pub mod sink;
pub mod write;
