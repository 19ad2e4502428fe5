//! Writes per user: a token bucket per user name, `limits.writes_per_minute`
//! deep, refilled evenly over the minute. A teacher toggling a few times in
//! a lesson never meets it; a script hammering the API with a valid token
//! does, before it floods the audit log or flaps an access point (issue 12).
//!
//! Keys are user names from the configuration, so the table is as small as
//! the user list; names removed by a reload are dropped when it grows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Counts accepted writes per user.
#[derive(Debug, Default)]
pub struct WriteLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl WriteLimiter {
    /// Takes one write for `user` at `per_minute`; `Err(seconds)` to wait
    /// when the user has used them all.
    pub fn take(&self, user: &str, per_minute: u32) -> Result<(), u64> {
        self.take_at(user, per_minute, Instant::now())
    }

    fn take_at(&self, user: &str, per_minute: u32, now: Instant) -> Result<(), u64> {
        let capacity = f64::from(per_minute.max(1));
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 4096 && !buckets.contains_key(user) {
            // Full buckets say nothing: forget them (users gone by a reload).
            buckets.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * per_second < capacity);
        }
        let b = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * per_second).min(capacity);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn thirty_writes_pass_the_thirty_first_waits_two_seconds_and_users_are_apart() {
        let l = WriteLimiter::default();
        let t0 = Instant::now();
        for _ in 0..30 {
            assert_eq!(l.take_at("t1", 30, t0), Ok(()));
        }
        assert_eq!(l.take_at("t1", 30, t0), Err(2));
        assert_eq!(l.take_at("t2", 30, t0), Ok(()), "another user has its own bucket");
        assert_eq!(l.take_at("t1", 30, t0 + Duration::from_secs(2)), Ok(()));
        assert_eq!(l.take_at("t1", 30, t0 + Duration::from_secs(2)), Err(2));
    }
}
