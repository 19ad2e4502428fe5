//! Where "now" comes from.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::clock::{SyncState, read_sync};

/// Where "now" comes from: the system clock, or a test's.
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> DateTime<Utc>;

    /// Monotonic time since a fixed origin, against which the planner
    /// detects steps of [`Clock::now`]. `None` (the default) for clocks
    /// that tests move by hand as if time passed: no step is ever seen.
    fn monotonic(&self) -> Option<Duration> {
        None
    }

    /// The clock's synchronisation at wall time `now`: the kernel's NTP
    /// state and plausibility against the build date. Tests inject their
    /// own; every clock reads the real kernel state unless it says
    /// otherwise.
    fn sync(&self, now: DateTime<Utc>) -> SyncState {
        read_sync(now)
    }
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn monotonic(&self) -> Option<Duration> {
        // tokio's clock is the monotonic clock (and follows a paused test
        // runtime); the origin is the first call.
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        Some(Instant::now().saturating_duration_since(origin))
    }
}
