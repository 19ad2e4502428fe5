//! The server's clock as far as borne can trust it: steps of the wall clock
//! (seen against the monotonic clock) and synchronisation (the kernel's
//! NTP state, and plausibility against the build date).
//!
//! Pure or read-only: the planner feeds [`StepDetector`] at every pass and
//! asks [`read_sync`] for the synchronisation state; the core decides what
//! a step or a lost synchronisation does to sessions and overrides.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// A wall clock that moved more than this against the monotonic clock
/// between two planner passes was stepped (NTP correction, VM resume, an
/// admin's `date -s`). Slewing moves it by at most 0.5 ms per second.
pub const STEP_THRESHOLD: TimeDelta = TimeDelta::seconds(2);

/// When the binary was built (Unix seconds), stamped by `build.rs`.
const BUILD_EPOCH: &str = env!("BORNE_BUILD_EPOCH");

/// Detects steps of the wall clock: between two readings, the wall clock
/// should move as much as the monotonic clock.
#[derive(Debug, Default, Clone)]
pub struct StepDetector {
    last: Option<(Duration, DateTime<Utc>)>,
}

impl StepDetector {
    /// Takes a reading (monotonic time since any fixed origin, wall time)
    /// and returns the step since the previous reading, if larger than
    /// [`STEP_THRESHOLD`] either way: positive when the wall clock jumped
    /// forward.
    pub fn check(&mut self, monotonic: Duration, wall: DateTime<Utc>) -> Option<TimeDelta> {
        let step = self.last.and_then(|(m0, w0)| {
            let elapsed = TimeDelta::from_std(monotonic.saturating_sub(m0)).unwrap_or(TimeDelta::MAX);
            let step = wall - w0.checked_add_signed(elapsed)?;
            (step.abs() > STEP_THRESHOLD).then_some(step)
        });
        self.last = Some((monotonic, wall));
        step
    }
}

/// When the binary was built.
pub fn build_time() -> DateTime<Utc> {
    BUILD_EPOCH
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// What borne knows of the clock's synchronisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncState {
    /// What the kernel says (`adjtimex`): `None` when it cannot be asked
    /// (a seccomp filter, another OS).
    pub kernel: Option<bool>,
    /// The wall clock is not before the build date.
    pub plausible: bool,
}

impl SyncState {
    /// Whether the clock counts as synchronised: plausible, and the kernel
    /// says so. Not knowing counts as not synchronised.
    pub fn synchronized(self) -> bool {
        self.plausible && self.kernel == Some(true)
    }
}

/// Reads the synchronisation state at wall time `now`.
pub fn read_sync(now: DateTime<Utc>) -> SyncState {
    SyncState {
        kernel: kernel_synchronized(),
        plausible: now >= build_time(),
    }
}

/// The kernel's NTP state through glibc's `adjtimex` with no mode bit set
/// (a read: needs no privilege): unsynchronised when it returns
/// `TIME_ERROR` or sets `STA_UNSYNC`.
#[cfg(target_os = "linux")]
pub fn kernel_synchronized() -> Option<bool> {
    // SAFETY: `timex` is plain data; zeroed means `modes == 0`, a pure read
    // that the kernel fills in.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, exclusively borrowed `timex` for the call's duration.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return None;
    }
    Some(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
}

/// Not Linux: unknown.
#[cfg(not(target_os = "linux"))]
pub fn kernel_synchronized() -> Option<bool> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn time_passing_is_not_a_step() {
        let mut d = StepDetector::default();
        assert_eq!(d.check(Duration::from_secs(100), at("2026-12-01T09:00:00Z")), None);
        assert_eq!(d.check(Duration::from_secs(130), at("2026-12-01T09:00:31Z")), None);
        assert_eq!(d.check(Duration::from_secs(160), at("2026-12-01T09:00:59Z")), None);
    }

    #[test]
    fn a_clock_set_back_26_hours_is_a_negative_step() {
        let mut d = StepDetector::default();
        d.check(Duration::from_secs(100), at("2026-12-02T11:00:00Z"));
        let step = d.check(Duration::from_secs(110), at("2026-12-01T09:00:10Z")).unwrap();
        assert_eq!(step, TimeDelta::hours(-26));
    }

    #[test]
    fn a_clock_jumping_forward_is_a_positive_step_once() {
        let mut d = StepDetector::default();
        d.check(Duration::from_secs(0), at("2026-12-01T09:00:00Z"));
        assert_eq!(
            d.check(Duration::from_secs(1), at("2026-12-01T09:00:04Z")),
            Some(TimeDelta::seconds(3))
        );
        assert_eq!(d.check(Duration::from_secs(2), at("2026-12-01T09:00:05Z")), None);
    }

    #[test]
    fn a_clock_before_the_build_is_not_synchronised() {
        let before = build_time() - TimeDelta::days(1);
        let state = read_sync(before);
        assert!(!state.plausible);
        assert!(!state.synchronized());
        assert!(read_sync(build_time() + TimeDelta::days(1)).plausible);
        assert!(
            !SyncState {
                kernel: None,
                plausible: true
            }
            .synchronized()
        );
    }
}
