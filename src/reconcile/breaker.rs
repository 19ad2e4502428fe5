//! A circuit breaker per access point.
//!
//! An AP that failed `unreachable_after_failures` times in a row (3 by
//! default) is *unreachable*: its worker stops taking one of the
//! `max_parallel` permits for full operations, each of which can hold a
//! permit for the driver's whole timeout (35 s with the SSH defaults) and
//! so delay every other school's switches. Instead it *probes* the AP: a
//! read limited to `probe_timeout_seconds`, on the worker's backoff, within
//! a small budget of its own (`probe_parallel`). The first probe that
//! answers closes the breaker and the worker goes on as usual.

/// Consecutive failures of one AP, and whether they made it unreachable.
#[derive(Debug, Clone, Copy)]
pub(super) struct Breaker {
    threshold: u32,
    failures: u32,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failures in a row.
    pub(super) fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            failures: 0,
        }
    }

    /// Whether the AP is unreachable: probed only.
    pub(super) fn is_open(&self) -> bool {
        self.failures >= self.threshold
    }

    /// Failures in a row so far.
    pub(super) fn failures(&self) -> u32 {
        self.failures
    }

    /// An operation or a probe succeeded; `true` when that closed the breaker.
    pub(super) fn succeeded(&mut self) -> bool {
        let was_open = self.is_open();
        self.failures = 0;
        was_open
    }

    /// An operation or a probe failed; `true` when that opened the breaker.
    pub(super) fn failed(&mut self) -> bool {
        let was_open = self.is_open();
        self.failures = self.failures.saturating_add(1);
        !was_open && self.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_at_the_third_failure_in_a_row_and_closes_at_the_first_success() {
        let mut b = Breaker::new(3);
        assert!(!b.failed());
        assert!(!b.failed());
        assert!(!b.is_open());
        assert!(b.failed(), "the third failure opens it");
        assert!(b.is_open());
        assert!(!b.failed(), "a failed probe keeps it open, it does not open again");
        assert!(b.is_open());
        assert!(b.succeeded(), "the first answer closes it");
        assert!(!b.is_open());
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn a_success_in_between_starts_the_count_again() {
        let mut b = Breaker::new(3);
        b.failed();
        b.failed();
        assert!(!b.succeeded(), "it was not open");
        b.failed();
        b.failed();
        assert!(!b.is_open());
    }

    #[test]
    fn a_threshold_of_zero_means_one() {
        let mut b = Breaker::new(0);
        assert!(!b.is_open());
        assert!(b.failed());
    }
}
