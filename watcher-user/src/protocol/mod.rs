//! Protocols: turn the byte streams of a connection into exchanges, and say what those exchanges mean to
//! every later stage. One folder per protocol (`redis/`, `http/`, `mysql/`), each implementing the traits of
//! `plugin`; `registry` is the one list of them and the only way the rest of watcher reaches them.
//! Beside them: `detect` (which protocol a connection speaks), `pairing` (the sync rules every
//! request/response session shares), `redact` (which secrets are masked, and the masking rules protocols
//! share), `json` (the JSON primitives payloads are written and read with),
//! `text` (bytes as text for people), and `common`, the vocabulary they all share (flows, blobs, paired
//! exchanges, session counters). Inside this folder files import from the file that defines a name;
//! the re-exports below are for the rest of watcher.
//!
//! Everything here is pure (no I/O, no threads) and builds and tests on stable without root. It imports
//! no other stage of watcher.

pub mod common;
pub mod detect;
pub mod http;
pub mod json;
pub mod mysql;
pub mod pairing;
pub mod plugin;
pub mod redact;
pub mod redis;
pub mod registry;
pub mod text;

pub use common::{Blob, BlobData, Flow, Paired, SessionStats};
pub use plugin::{Cells, DetailLine, Payload, Tone};
pub use registry::{Exchange, ProtocolId, ProtocolSet};
