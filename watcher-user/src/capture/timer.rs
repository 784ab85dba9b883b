//! The ring reader's one-shot timer, on a `timerfd` that the capture thread's tokio runtime polls like
//! any other fd.
//!
//! tokio's own timers sit in a wheel whose second level has 64 ms slots: a deadline in another 64 ms
//! slot than the present one is first filed there, and the runtime wakes at the slot's start to move
//! it down, then again at the deadline. The reader's back-off waits (80 ms when this was written)
//! always crossed a slot, and one busy drain in six did (10 ms): a second wake-up of the thread each
//! time, tens of microseconds of CPU on a virtual machine. The kernel's timer wakes the thread once, at the deadline.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, RawFd},
    time::Duration,
};

use nix::{
    errno::Errno,
    sys::{
        time::TimeSpec,
        timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags},
    },
};
use tokio::io::unix::AsyncFd;

/// A timer fd, as tokio's `AsyncFd` wants it.
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A one-shot timer that a tokio task can wait for; must be used inside a runtime with I/O enabled.
pub struct Timer {
    fd: AsyncFd<Fd>,
}

impl Timer {
    /// A timer on the monotonic clock, not armed.
    pub fn new() -> io::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: the `TimerFd` owns its fd and keeps it open for as long as the AsyncFd holds it; it is
        // never closed or replaced behind tokio's back (the I/O-safety condition of `register`).
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register(Fd(fd)) }?;
        Ok(Self { fd })
    }

    /// Fires once, `after` from now, replacing any deadline set before (and not yet waited for).
    pub fn set(&self, after: Duration) -> io::Result<()> {
        // A zero expiration would disarm the timer instead.
        let after = after.max(Duration::from_nanos(1));
        self.fd.get_ref().0.set(
            Expiration::OneShot(TimeSpec::from_duration(after)),
            TimerSetTimeFlags::empty(),
        )?;
        Ok(())
    }

    /// Waits until the deadline has passed. Cancel-safe: dropped before it, nothing is consumed.
    pub async fn expired(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut count = [0u8; 8];
            match nix::unistd::read(self.fd.get_ref().0.as_fd(), &mut count) {
                Ok(_) => return Ok(()),
                // Woken, but re-armed since (or woken spuriously): wait again.
                Err(Errno::EAGAIN) => guard.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime")
    }

    #[test]
    fn fires_once_after_the_wait_and_not_again_until_set() {
        runtime().block_on(async {
            let timer = Timer::new().expect("timerfd");
            let start = Instant::now();
            timer.set(Duration::from_millis(30)).expect("set");
            timer.expired().await.expect("expires");
            assert!(start.elapsed() >= Duration::from_millis(30));
            let again = tokio::select! {
                _ = timer.expired() => true,
                () = std::future::ready(()) => false,
            };
            assert!(!again, "a one-shot timer fires once");
        });
    }

    #[test]
    fn setting_it_again_replaces_the_deadline() {
        runtime().block_on(async {
            let timer = Timer::new().expect("timerfd");
            let start = Instant::now();
            timer.set(Duration::from_secs(30)).expect("set");
            timer.set(Duration::from_millis(20)).expect("set sooner");
            timer.expired().await.expect("expires");
            let waited = start.elapsed();
            assert!(waited >= Duration::from_millis(20) && waited < Duration::from_secs(30));
            timer.set(Duration::ZERO).expect("a zero wait still fires");
            timer.expired().await.expect("expires");
        });
    }
}
