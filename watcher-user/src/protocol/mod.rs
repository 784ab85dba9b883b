//! Protocol decoders: turn the byte streams of a connection into exchanges. One sub-module per protocol.
//!
//! Everything below is pure (no I/O, no threads) and builds and tests on stable without root.

pub mod redis;
