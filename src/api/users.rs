//! Token life cycle: expiry (`users[].expires`), last use, and
//! `GET /api/v1/users`.
//!
//! A token's last use is worth knowing (which teachers never signed in,
//! which old tokens are still live) but not worth a database write per
//! request: the last use is kept in memory at every request and written at
//! most once a minute per token, through the store's queue (a crash loses
//! at most a minute of it).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::auth::Auth;
use super::{ApiError, AppState};
use crate::config::{Role, User};
use crate::store::Batch;

/// How often at most one token's last use is written.
pub const WRITE_EVERY: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug, Clone, Copy)]
struct Use {
    /// The latest request.
    seen: DateTime<Utc>,
    /// The last time written to the store.
    written: DateTime<Utc>,
}

/// Last use of each token seen since start (only valid tokens: as many
/// entries as users).
#[derive(Debug, Default)]
pub struct LastUse {
    by_token: Mutex<HashMap<[u8; 32], Use>>,
}

impl LastUse {
    /// Notes a use at `now`; `true` when it must be written (first use
    /// since start, or [`WRITE_EVERY`] since the last write).
    pub fn touch(&self, token_sha256: [u8; 32], now: DateTime<Utc>) -> bool {
        let mut m = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(&token_sha256) {
            Some(u) => {
                u.seen = u.seen.max(now);
                // A clock stepped back also writes: the stored value only moves forward.
                let due = now - u.written >= WRITE_EVERY || now < u.written;
                if due {
                    u.written = now;
                }
                due
            }
            None => {
                m.insert(
                    token_sha256,
                    Use {
                        seen: now,
                        written: now,
                    },
                );
                true
            }
        }
    }

    /// The latest use seen since start.
    pub fn seen(&self, token_sha256: &[u8; 32]) -> Option<DateTime<Utc>> {
        let m = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        m.get(token_sha256).map(|u| u.seen)
    }
}

/// The one call authentication makes once a token matched: refuses an
/// expired token and notes the use.
///
/// # Errors
/// 401 `token_expired`.
pub fn check_in(state: &AppState, user: &User) -> Result<(), ApiError> {
    let now = state.core.now();
    if let Some(last_day) = user.expires
        && user.expired(now, state.core.config().timezone)
    {
        return Err(ApiError::TokenExpired(last_day));
    }
    // Users who sign in only with the identity provider have no token to note.
    if let Some(hash) = user.token_sha256
        && state.last_use.touch(hash, now)
    {
        state.core.writer().enqueue(Batch {
            token_use: vec![(hex::encode(hash), now)],
            ..Batch::default()
        });
    }
    Ok(())
}

/// Whether `caller` may see `user` in the list: an admin for the whole
/// city sees everyone; an admin limited to schools sees the users whose
/// classrooms are all among its own (never a city-wide user).
fn visible(caller: &User, user: &User) -> bool {
    match (&caller.scope, &user.scope) {
        (None, _) => true,
        (Some(mine), Some(theirs)) => !theirs.is_empty() && theirs.is_subset(mine),
        (Some(_), None) => false,
    }
}

/// `GET /api/v1/users` (admin): name, role, scope, expires and last use of
/// each user the caller may see.
///
/// # Errors
/// 403 for a teacher or a viewer; 503 when the store cannot be read.
pub async fn list(State(state): State<AppState>, auth: Auth) -> Result<Json<Value>, ApiError> {
    if auth.user.role != Role::Admin {
        return Err(ApiError::Forbidden("the list of users is for admins".into()));
    }
    let stored: HashMap<String, DateTime<Utc>> = state
        .core
        .writer()
        .token_uses()
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot read the state database: {e}")))?
        .into_iter()
        .collect();
    let config = state.core.config();
    let now = state.core.now();
    let tz = config.timezone;
    let users: Vec<Value> = config
        .users
        .iter()
        .filter(|u| visible(&auth.user, u))
        .map(|u| {
            let last = u
                .token_sha256
                .and_then(|h| stored.get(&hex::encode(h)).copied().max(state.last_use.seen(&h)));
            json!({
                "name": u.name,
                "role": u.role,
                "scope": if u.scope.is_none() {
                    Value::Null
                } else {
                    json!({ "schools": u.schools, "classrooms": u.classrooms })
                },
                "expires": u.expires.map(|d| d.to_string()),
                "expired": u.expired(now, tz),
                "last_used": last.map(|t| t.with_timezone(&tz).fixed_offset().to_rfc3339()),
            })
        })
        .collect();
    Ok(Json(json!({ "users": users })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_token_is_written_at_most_once_a_minute() {
        let l = LastUse::default();
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert!(l.touch(a, t("2026-12-01T08:00:00Z")));
        assert!(l.touch(b, t("2026-12-01T08:00:01Z")), "each token has its own minute");
        for s in 1..60 {
            assert!(!l.touch(a, t(&format!("2026-12-01T08:00:{s:02}Z"))));
        }
        assert_eq!(l.seen(&a), Some(t("2026-12-01T08:00:59Z")));
        assert!(l.touch(a, t("2026-12-01T08:01:00Z")));
        assert!(!l.touch(a, t("2026-12-01T08:01:30Z")));
        // Clock stepped back: written again, the store keeps the later time.
        assert!(l.touch(a, t("2026-12-01T07:00:00Z")));
        assert_eq!(l.seen(&a), Some(t("2026-12-01T08:01:30Z")));
    }
}
