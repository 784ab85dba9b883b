//! Text formatting shared by every human-facing output (the TUI and `watcher stat`'s table), so a
//! latency reads the same everywhere.
//!
//! Pure functions of their arguments: no I/O, no state, no terminal styling.

/// Latency for humans: µs under a millisecond, ms under a second, s above; `-` when there is none.
pub fn latency(ns: Option<u64>) -> String {
    match ns {
        None => "-".into(),
        Some(ns) if ns < 1_000_000 => format!("{:.0}µs", ns as f64 / 1e3),
        Some(ns) if ns < 1_000_000_000 => format!("{:.2}ms", ns as f64 / 1e6),
        Some(ns) => format!("{:.2}s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::latency;

    #[test]
    fn latency_switches_unit_at_a_millisecond_and_a_second() {
        assert_eq!(latency(None), "-");
        assert_eq!(latency(Some(250_000)), "250µs");
        assert_eq!(latency(Some(1_000_000)), "1.00ms");
        assert_eq!(latency(Some(999_990_000)), "999.99ms");
        assert_eq!(latency(Some(1_000_000_000)), "1.00s");
        assert_eq!(latency(Some(12_345_000_000)), "12.35s");
    }
}
