//! Bearer tokens: the SHA-256 of the presented token is compared, in
//! constant time, with every user's. Failures are counted per client
//! address and in total; a client that keeps failing gets 429 for a while,
//! so tokens cannot be guessed from a classroom.
//!
//! A request with a valid token is never refused by this limiter: a school
//! reaches the server through one NAT address, and one pupil trying tokens
//! must not lock out its teachers (issue 12). Tokens are 256-bit random
//! values, so the limiter is about load and noise, not about the odds of a
//! guess; it still caps how fast anyone may guess, per address and overall.
//!
//! Tokens are never logged, audited or echoed: only the user's name is.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use lru::LruCache;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::config::{Limits, User};

/// The counting window, and how long an address (or everyone) stays blocked.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Failures in the current window, and a block in force.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

impl Failures {
    fn new(now: Instant) -> Self {
        Self {
            count: 0,
            window_start: now,
            blocked_until: None,
        }
    }

    fn blocked(&self, now: Instant) -> Option<u64> {
        let until = self.blocked_until?;
        (until > now).then(|| (until - now).as_secs().max(1))
    }

    /// Counts one failure; blocks for [`WINDOW`] when `max` is reached.
    fn fail(&mut self, now: Instant, max: u32) -> Option<u64> {
        if now.duration_since(self.window_start) > WINDOW {
            self.count = 0;
            self.window_start = now;
        }
        self.count += 1;
        if self.count >= max {
            self.blocked_until = Some(now + WINDOW);
            self.count = 0;
            self.window_start = now;
            return Some(WINDOW.as_secs());
        }
        None
    }
}

struct Table {
    /// Least recently failing addresses are forgotten first: memory stays
    /// fixed whatever the number of addresses, and every operation is O(1).
    /// An attacker who floods it with addresses to be forgotten meets the
    /// total limit instead.
    by_addr: LruCache<IpAddr, Failures>,
    total: Failures,
}

/// Counts failed authentications per client address and in total.
pub struct Limiter {
    table: Mutex<Table>,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new(Limits::default().failed_auth_addresses)
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("addresses", &self.len()).finish()
    }
}

impl Limiter {
    /// A limiter remembering at most `addresses` client addresses.
    pub fn new(addresses: usize) -> Self {
        let cap = NonZeroUsize::new(addresses).unwrap_or(NonZeroUsize::MIN);
        Self {
            table: Mutex::new(Table {
                by_addr: LruCache::new(cap),
                total: Failures::new(Instant::now()),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // Nothing below panics with the lock held; a poisoned lock would
        // only come from a bug, and the table stays consistent anyway.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Addresses remembered.
    pub fn len(&self) -> usize {
        self.lock().by_addr.len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Seconds left while failing requests from `addr` are refused: it is
    /// blocked itself, or everyone is.
    pub fn blocked(&self, addr: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let mut t = self.lock();
        let own = t.by_addr.peek(&addr).and_then(|f| f.blocked(now));
        own.or_else(|| t.total.blocked(now)).inspect(|_| {
            // Keep a blocked address remembered while it keeps trying.
            t.by_addr.promote(&addr);
        })
    }

    /// Counts a failure from `addr`; returns seconds to wait when `addr`
    /// (or everyone) is now blocked.
    pub fn fail(&self, addr: IpAddr, limits: &Limits) -> Option<u64> {
        let now = Instant::now();
        let mut t = self.lock();
        let own = t
            .by_addr
            .get_or_insert_mut(addr, || Failures::new(now))
            .fail(now, limits.failed_auth_per_address);
        if own.is_some() {
            tracing::warn!(client = %addr, "too many failed authentications; client blocked for {} s", WINDOW.as_secs());
        }
        let total = t.total.fail(now, limits.failed_auth_total);
        if total.is_some() {
            tracing::warn!(
                "too many failed authentications from all clients together; failing requests refused for {} s \
                 (valid tokens are still accepted)",
                WINDOW.as_secs()
            );
        }
        own.or(total)
    }
}

/// The client's address: the TCP peer, or the address a trusted reverse
/// proxy put last in `X-Forwarded-For`.
pub fn client_addr(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    let config = state.core.config();
    if config.trusted_proxies.contains(&peer.ip()) {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back();
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}

/// Finds the user holding the bearer token in `headers`.
///
/// # Errors
/// 429 while the client is blocked, 401 for a missing or unknown token.
pub fn authenticate(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<User, ApiError> {
    // Without a bearer token, a sign-in session cookie (issue 18) may stand in.
    if !headers.contains_key(axum::http::header::AUTHORIZATION)
        && let Some(session) = super::oidc::cookie_user(state, headers)
    {
        return session.map(|(user, _)| user);
    }
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let config = state.core.config();
    if let Some(token) = token {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compare with every user, without stopping at a match, so the time
        // taken says nothing about which user (or how much of a hash) matched.
        let mut found = None;
        for u in &config.users {
            if u.token_sha256.is_some_and(|h| bool::from(h.ct_eq(&hash))) {
                found = Some(u);
            }
        }
        if let Some(user) = found {
            // Valid: the failure limiter has no say (see the module docs).
            super::users::check_in(state, user)?;
            return Ok(user.clone());
        }
    }
    let addr = client_addr(state, headers, peer);
    if let Some(retry) = state.limiter.blocked(addr) {
        return Err(ApiError::TooManyAttempts(retry));
    }
    let error = match token {
        None => ApiError::Unauthorized("missing bearer token (Authorization: Bearer ...)".into()),
        Some(_) => ApiError::Unauthorized("unknown token".into()),
    };
    match state.limiter.fail(addr, &config.limits) {
        Some(retry) => Err(ApiError::TooManyAttempts(retry)),
        None => Err(error),
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 9110, section 11.1), the token is not.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An authenticated request: the user and the client's address.
pub struct Auth {
    /// The user.
    pub user: User,
    /// The client's address (for the audit log).
    pub source: IpAddr,
    /// How the user signed in: `token` or `oidc` (a session cookie).
    pub via: &'static str,
}

impl<S> FromRequestParts<S> for Auth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)), |c| c.0);
        let user = authenticate(&state, &parts.headers, peer)?;
        // Every route that changes something takes a write, accepted or
        // refused by the policy alike: each is audited.
        if !parts.method.is_safe() {
            let per_minute = state.core.config().limits.writes_per_minute;
            if let Err(retry) = state.writes.take(&user.name, per_minute) {
                return Err(ApiError::TooManyWrites { per_minute, retry });
            }
        }
        // Only a session cookie authenticates without an Authorization header.
        let via = if parts.headers.contains_key(axum::http::header::AUTHORIZATION) {
            "token"
        } else {
            "oidc"
        };
        Ok(Auth {
            via,
            user,
            source: client_addr(&state, &parts.headers, peer),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            failed_auth_per_address: 10,
            failed_auth_total: 1_000_000_000,
            ..Limits::default()
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_the_token_is_kept_as_is() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("bEaReR   AbC "), Some("AbC"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer   "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn an_address_is_blocked_at_its_tenth_failure_and_others_are_not() {
        let l = Limiter::new(100);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..9 {
            assert_eq!(l.fail(a, &limits()), None);
        }
        assert_eq!(l.fail(a, &limits()), Some(60));
        assert!(l.blocked(a).is_some());
        assert_eq!(l.blocked(b), None);
    }

    /// Issue 12, item 3: a million distinct addresses keep the table at its
    /// capacity, and the total limit takes over from the forgotten ones.
    #[test]
    fn a_million_distinct_addresses_keep_the_table_bounded_and_meet_the_total_limit() {
        let cap = 4096;
        let l = Limiter::new(cap);
        let limits = Limits {
            failed_auth_total: 500_000,
            ..limits()
        };
        let mut first_refused = None;
        for i in 0..1_000_000u32 {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(u128::from(i) | (0x2001_0db8u128 << 96)));
            if l.fail(addr, &limits).is_some() && first_refused.is_none() {
                first_refused = Some(i);
            }
        }
        assert_eq!(l.len(), cap, "the table grew past its capacity");
        assert_eq!(first_refused, Some(499_999), "the total limit did not take over");
        // Everyone failing is refused now, including an address never seen.
        assert!(l.blocked("198.51.100.7".parse().unwrap()).is_some());
    }
}
