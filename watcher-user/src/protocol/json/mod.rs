//! JSON as watcher writes and reads it: the value-level primitives every protocol encodes its payload
//! with (`write`) and decodes it back with (`read`). The record-level NDJSON format is built on these in
//! `ndjson/`.

pub mod read;
pub mod write;
