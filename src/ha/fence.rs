//! The fence: whether this instance may still drive access points.
//!
//! A leader term holds one [`Fence`]. The lock checker renews it with the
//! monotonic instant at which it *sent* a check that came back good; the
//! fence is valid for [`Fence::lease`] after that instant. Every driver
//! operation asks first ([`Fence::check`]), so a leader that was frozen
//! (SIGSTOP, a stalled VM) and runs again drives nothing before its checker
//! has confirmed the lock: the elapsed monotonic time alone tells it the
//! lease ran out. Counting from the send, not the answer, keeps the fence
//! on the safe side of the server's own idle timer, which starts after the
//! server has answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Never renewed.
const NONE: u64 = u64::MAX;
/// Revoked: larger than any renewal, so `renew` never moves past it.
const REVOKED: u64 = u64::MAX - 1;

/// Why a driver operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Fenced(pub String);

/// See the module docs.
#[derive(Debug)]
pub struct Fence {
    base: Instant,
    /// Nanoseconds from `base` to the last good check's send; [`NONE`] or [`REVOKED`].
    last_good: AtomicU64,
    lease: Duration,
    /// A single instance without a database: always valid.
    open: bool,
}

impl Fence {
    /// A leader's fence, not yet renewed (closed until the first good check).
    pub fn new(lease: Duration) -> Self {
        Self {
            base: Instant::now(),
            last_good: AtomicU64::new(NONE),
            lease,
            open: false,
        }
    }

    /// The fence of a lone instance (no database, no other instance): always valid.
    pub fn open() -> Self {
        Self {
            open: true,
            ..Self::new(Duration::MAX)
        }
    }

    /// The lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// A check sent at `sent` came back good.
    pub fn renew(&self, sent: Instant) {
        let nanos = u64::try_from(sent.saturating_duration_since(self.base).as_nanos()).unwrap_or(REVOKED - 1);
        // Never move backwards: an older check finishing late proves less.
        self.last_good
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |old| {
                (old == NONE || nanos > old).then_some(nanos)
            })
            .ok();
    }

    /// Closes the fence for good (the term ended).
    pub fn revoke(&self) {
        self.last_good.store(REVOKED, Ordering::SeqCst);
    }

    /// When the fence closes unless renewed; `None` when it is not open
    /// yet, revoked, or an open fence (which never closes).
    pub fn expires_at(&self) -> Option<Instant> {
        if self.open {
            return None;
        }
        match self.last_good.load(Ordering::SeqCst) {
            NONE | REVOKED => None,
            n => Some(self.base + Duration::from_nanos(n) + self.lease),
        }
    }

    /// Whether a driver operation may start now.
    ///
    /// # Errors
    /// The lease ran out or the term ended: drive nothing.
    pub fn check(&self) -> Result<(), Fenced> {
        if self.open {
            return Ok(());
        }
        match self.expires_at() {
            Some(t) if Instant::now() < t => Ok(()),
            Some(t) => Err(Fenced(format!(
                "not driving: the leadership lock was last confirmed {:.1} s ago (lease {} s)",
                (Instant::now() - t + self.lease).as_secs_f64(),
                self.lease.as_secs()
            ))),
            None => Err(Fenced("not driving: this instance is not the leader".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_until_renewed_then_expires() {
        let f = Fence::new(Duration::from_millis(50));
        assert!(f.check().is_err());
        f.renew(Instant::now());
        assert!(f.check().is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(f.check().is_err(), "the lease ran out without a renewal");
        f.renew(Instant::now());
        assert!(f.check().is_ok());
    }

    #[test]
    fn revoked_stays_closed() {
        let f = Fence::new(Duration::from_secs(10));
        f.renew(Instant::now());
        f.revoke();
        assert!(f.check().is_err());
        f.renew(Instant::now());
        assert!(f.check().is_err(), "a late renewal does not reopen a revoked fence");
    }

    #[test]
    fn an_older_check_does_not_move_it_back() {
        let f = Fence::new(Duration::from_millis(100));
        let old = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let new = Instant::now();
        f.renew(new);
        f.renew(old);
        assert_eq!(f.expires_at(), Some(new + Duration::from_millis(100)));
    }

    #[test]
    fn open_fence_is_always_valid() {
        assert!(Fence::open().check().is_ok());
    }
}
