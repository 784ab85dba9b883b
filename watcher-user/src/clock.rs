//! Converting kernel timestamps (`bpf_ktime_get_ns`, i.e. `CLOCK_MONOTONIC`) to wall-clock time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Offset between `CLOCK_MONOTONIC` and the Unix epoch, measured once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    offset_ns: i128,
}

impl WallClock {
    /// Measures the offset now.
    pub fn measure() -> Self {
        let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
            i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
        });
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Self {
            offset_ns: wall - mono,
        }
    }

    /// A clock whose monotonic time equals Unix time (for replayed data and tests).
    pub fn identity() -> Self {
        Self { offset_ns: 0 }
    }

    /// Unix ns for a monotonic ns.
    pub fn to_unix_ns(self, monotonic_ns: u64) -> u64 {
        (i128::from(monotonic_ns) + self.offset_ns).max(0) as u64
    }
}
