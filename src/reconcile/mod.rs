//! The reconciler: keeps every access point in the state its classroom's
//! policy wants, level-triggered like a Kubernetes controller.
//!
//! Two kinds of task:
//! - one **planner** ([`Reconciler::run`]) evaluates the policy for every
//!   classroom whenever something can have changed: at the next instant a
//!   schedule changes or a session or override ends (a timer, not polling),
//!   when the core is poked (a request), when a device reports, and at least
//!   every [`MAX_SLEEP`] so a wall-clock step is noticed. It hands each AP its
//!   desired state through a `watch` channel, so only the newest value is
//!   ever seen: no queue of stale commands.
//! - one **worker** per AP compares desired with observed and calls the
//!   driver until they agree, retrying failures forever with exponential
//!   backoff and jitter. At most one operation per AP is in flight (a worker
//!   does one thing at a time), and a global semaphore bounds operations in
//!   flight across all APs (`max_parallel`). After 3 failures in a row an
//!   AP is unreachable: it is only probed, with a short timeout, within a
//!   small budget of its own (`breaker`), so a dead school holds none of
//!   the permits the healthy APs need.
//!
//! At a reload, a worker whose access point changed (classroom, driver, any
//! connection or lease setting) is replaced by one that reads the device
//! afresh and drives it to its new classroom's state at once; an access
//! point that left is switched off before it is let go (`release.rs`).
//!
//! On shutdown workers stop at a safe point: an operation in flight
//! finishes (the daemon bounds the wait), none is started. APs are left in
//! their last applied state: a restart never toggles a classroom.

mod breaker;
mod drivers;
mod fenced;
mod lease;
mod planner;
mod prewarm;
mod release;
mod worker;

use std::time::Duration;

pub use drivers::Drivers;
pub use fenced::Fenced;
pub use planner::Reconciler;

/// The planner sleeps at most this long, so that a wall clock stepped
/// forward (NTP, suspend) is acted on within this delay even though tokio's
/// timers run on the monotonic clock.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);
