//! Counters of everything seen, kept and lost, shared by the pipeline threads.
//!
//! Every counter has a name, never a position. The kernel's are the fields of `KernelLoss`, the struct
//! the eBPF programs count into (per CPU) and the ring reader sums: adding one is a field there and its
//! increment in the programs. User space's are declared once in the `user_counters!` list below, which
//! makes both the live atomics and the plain copy readers take: adding one is one line there.
//!
//! Counters are independent (each written by one stage, read by anyone), so no thread ever waits on
//! another to count. Readers take a [`Totals`] copy.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use arc_swap::ArcSwap;
use watcher_common::KernelLoss;

macro_rules! user_counters {
    ($( $(#[doc = $doc:literal])+ $name:ident, )+) => {
        /// User space's live counters, one atomic each.
        #[derive(Debug, Default)]
        pub struct UserCounters {
            $( $(#[doc = $doc])+ pub $name: AtomicU64, )+
        }

        /// A copy of [`UserCounters`].
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct UserTotals {
            $( $(#[doc = $doc])+ pub $name: u64, )+
        }

        impl UserCounters {
            fn load(&self) -> UserTotals {
                UserTotals {
                    $( $name: self.$name.load(Relaxed), )+
                }
            }
        }
    };
}

user_counters! {
    /// Events dropped because a shard's queue was full.
    queue_full_events,
    /// Records dropped because the store's queue was full.
    queue_full_records,
    /// Ring records that did not decode.
    malformed_events,
    /// Times a connection direction lost protocol sync.
    lost_sync,
    /// Requests dropped with a lost sync.
    dropped_requests,
    /// Replies that matched no request.
    orphan_replies,
    /// Connections whose traffic no enabled protocol recognised (not shown, not loss).
    unrecognised_connections,
    /// Connections carrying TLS whose plaintext was not captured (not decoded, not loss).
    encrypted_connections,
    /// Records produced by the decoders (before filters).
    records_decoded,
    /// Records removed by user-space filters.
    records_filtered,
    /// Records that did not get exported because the store evicted them first (to stay within
    /// `--max-memory`: it keeps what the follower has not seen beyond `--max-records`).
    export_missed,
    /// Files (libraries, programs) the TLS probes were attached to.
    tls_files,
    /// Files with OpenSSL the TLS probes could not be attached to.
    tls_attach_failures,
    /// Connections whose TLS plaintext was captured.
    tls_connections,
    /// Spans the OTLP collector accepted.
    otlp_spans_exported,
    /// Spans not exported: the queue to the collector was full, or the collector refused them or did
    /// not answer within the retries.
    otlp_spans_dropped,
}

/// Live counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// The kernel's, as last summed over CPUs (replaced whole by the ring reader).
    kernel: ArcSwap<KernelLoss>,
    /// User space's.
    pub user: UserCounters,
}

/// A consistent-enough copy of the counters for display and summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// The kernel side's.
    pub kernel: KernelLoss,
    /// User space's.
    pub user: UserTotals,
}

/// One cause of loss: its label in metrics, its words in the summary, and how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loss {
    /// Which stage lost it.
    pub stage: &'static str,
    /// A `snake_case` name (the `cause` label of `watcher_lost_total`).
    pub cause: &'static str,
    /// The summary's words for it.
    pub words: &'static str,
    /// Events or records lost.
    pub count: u64,
}

impl Totals {
    /// Every cause of loss, stage by stage; the counts add up to `lost()`.
    pub fn losses(&self) -> [Loss; 10] {
        let (k, u) = (&self.kernel, &self.user);
        let loss = |stage, cause, words, count| Loss {
            stage,
            cause,
            words,
            count,
        };
        [
            loss("kernel", "ring_full", "ring-full", k.ring_full_events),
            loss("kernel", "copy_failed", "copy-failed", k.copy_failed),
            loss("kernel", "in_flight_full", "in-flight-full", k.pending_full),
            loss(
                "kernel",
                "pid_table_full",
                "pid-table-full",
                k.pid_table_full,
            ),
            loss(
                "kernel",
                "tls_no_socket",
                "TLS calls without a socket",
                k.tls_no_socket_calls,
            ),
            loss(
                "kernel",
                "tls_unfinished",
                "TLS calls unfinished",
                k.tls_pending_full,
            ),
            loss(
                "user",
                "queue_full",
                "queue-full",
                u.queue_full_events + u.queue_full_records,
            ),
            loss("user", "malformed", "malformed", u.malformed_events),
            loss(
                "user",
                "sync_loss",
                "dropped with a sync loss",
                u.dropped_requests,
            ),
            loss("user", "not_exported", "not exported", u.export_missed),
        ]
    }

    /// Where the `lost()` events went, stage by stage (the terms add up to `lost()`).
    pub fn loss_breakdown(&self) -> String {
        let mut text = String::new();
        let mut stage = "";
        for loss in self.losses() {
            if loss.stage == stage {
                text.push_str(", ");
            } else {
                if !stage.is_empty() {
                    text.push_str("; ");
                }
                stage = loss.stage;
                text.push_str(stage);
                text.push_str(": ");
            }
            let _ = write!(text, "{} {}", loss.count, loss.words);
        }
        text
    }

    /// Events or records lost anywhere (truncation is not loss: it is reported separately).
    pub fn lost(&self) -> u64 {
        self.losses().iter().map(|l| l.count).sum()
    }
}

impl Counters {
    /// Replaces the kernel-side figures with a fresh sum over CPUs.
    pub fn set_kernel(&self, loss: KernelLoss) {
        self.kernel.store(loss.into());
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    /// Current values.
    pub fn totals(&self) -> Totals {
        Totals {
            kernel: **self.kernel.load(),
            user: self.user.load(),
        }
    }
}
