//! The rules every request/response session shares, written once: a decoder per direction, the queue
//! of requests waiting for their responses, and what happens when a direction loses sync.
//!
//! - Requests are trusted again at any syscall start whose bytes open a message.
//! - Responses are trusted again only once a request decoded after the loss is pending and the
//!   response's bytes moved after it: otherwise the first response seen after a loss could be the
//!   answer to a request that was never decoded, and would be paired with the wrong one.
//! - A loss in either direction drops the pending requests (their responses can no longer be told
//!   apart) and counts them, and puts the response decoder out of sync until the rule above lets it in.
//!
//! Pure: no I/O; owned by the one shard thread that owns the connection.

use std::collections::VecDeque;

use super::{
    common::{Flow, SessionStats},
    plugin::Chunk,
};

/// A decoder of one direction's byte stream, as far as the sync rules need it.
pub trait StreamDecoder {
    /// At the start of a syscall's bytes: if out of sync and `data` opens a message, decode again
    /// from here.
    fn resync(&mut self, data: &[u8]);

    /// Stops decoding until the next [`StreamDecoder::resync`] that finds a message start.
    fn force_out_of_sync(&mut self);
}

/// A request waiting for its response.
pub trait PendingRequest {
    /// Monotonic ns of the request's first byte.
    fn start_ns(&self) -> u64;
}

/// Both directions' decoders, the pending requests and the session's counters.
#[derive(Debug)]
pub struct Pairing<D, P> {
    /// Client-to-server decoder.
    pub requests: D,
    /// Server-to-client decoder.
    pub responses: D,
    /// Requests in the order sent; responses come back in that order.
    pub pending: VecDeque<P>,
    /// Counters so far.
    pub stats: SessionStats,
}

impl<D: StreamDecoder, P: PendingRequest> Pairing<D, P> {
    /// A pairing over a decoder for each direction, made by `decoder`; nothing pending.
    pub fn new(decoder: impl Fn(Flow) -> D) -> Self {
        Self {
            requests: decoder(Flow::Request),
            responses: decoder(Flow::Response),
            pending: VecDeque::new(),
            stats: SessionStats::default(),
        }
    }

    /// Before `chunk` is fed: lets its direction's decoder regain sync where the rules allow (see the
    /// module doc), and returns that decoder.
    pub fn decoder_for(&mut self, chunk: Chunk<'_>) -> &mut D {
        if chunk.call_start {
            match chunk.flow {
                Flow::Request => self.requests.resync(chunk.data),
                Flow::Response => {
                    if self
                        .pending
                        .front()
                        .is_some_and(|p| p.start_ns() <= chunk.ts_ns)
                    {
                        self.responses.resync(chunk.data);
                    }
                }
            }
        }
        self.decoder(chunk.flow)
    }

    /// The decoder of `flow`.
    pub fn decoder(&mut self, flow: Flow) -> &mut D {
        match flow {
            Flow::Request => &mut self.requests,
            Flow::Response => &mut self.responses,
        }
    }

    /// A direction lost sync: count it, drop the pending requests, distrust responses.
    pub fn lose_sync(&mut self) {
        self.stats.lost_sync += 1;
        self.stats.dropped_requests += self.pending.len() as u64;
        self.pending.clear();
        self.responses.force_out_of_sync();
    }

    /// A response no request can be tied to.
    pub fn orphan(&mut self) {
        self.stats.orphan_replies += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Decoder {
        in_sync: bool,
        resyncs: u32,
    }

    impl StreamDecoder for Decoder {
        fn resync(&mut self, _data: &[u8]) {
            self.resyncs += 1;
            self.in_sync = true;
        }

        fn force_out_of_sync(&mut self) {
            self.in_sync = false;
        }
    }

    struct Request(u64);

    impl PendingRequest for Request {
        fn start_ns(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn responses_resync_only_after_a_request_decoded_before_them() {
        let mut p: Pairing<Decoder, Request> = Pairing::new(|_| Decoder::default());
        p.decoder_for(Chunk::new(Flow::Response, b"+OK\r\n", 10, true));
        assert_eq!(p.responses.resyncs, 0, "nothing pending");
        p.pending.push_back(Request(20));
        p.decoder_for(Chunk::new(Flow::Response, b"+OK\r\n", 15, true));
        assert_eq!(
            p.responses.resyncs, 0,
            "the response began before the request"
        );
        p.decoder_for(Chunk::new(Flow::Response, b"+OK\r\n", 25, false));
        assert_eq!(p.responses.resyncs, 0, "not at a call start");
        p.decoder_for(Chunk::new(Flow::Response, b"+OK\r\n", 25, true));
        assert!(p.responses.in_sync);
        p.decoder_for(Chunk::new(Flow::Request, b"PING\r\n", 1, true));
        assert_eq!(p.requests.resyncs, 1, "requests resync at any call start");
    }

    #[test]
    fn a_loss_drops_and_counts_the_pending_requests() {
        let mut p: Pairing<Decoder, Request> = Pairing::new(|_| Decoder::default());
        p.responses.in_sync = true;
        p.pending.extend([Request(1), Request(2)]);
        p.lose_sync();
        p.orphan();
        assert!(p.pending.is_empty() && !p.responses.in_sync);
        assert_eq!(
            p.stats,
            SessionStats {
                lost_sync: 1,
                dropped_requests: 2,
                orphan_replies: 1,
                encrypted: 0,
            }
        );
    }
}
