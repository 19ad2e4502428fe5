//! Bearer tokens: the SHA-256 of the presented token is compared, in
//! constant time, with every user's; failures are counted per client
//! address and a client that keeps failing is turned away with 429 for a
//! while, so tokens cannot be guessed from a classroom.
//!
//! Tokens are never logged, audited or echoed: only the user's name is.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::config::User;

/// Failures allowed per address within [`WINDOW`] before it is blocked.
pub const MAX_FAILURES: u32 = 10;
/// The counting window, and how long an address stays blocked.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

/// Counts failed authentications per client address.
#[derive(Debug, Default)]
pub struct Limiter {
    by_addr: Mutex<HashMap<IpAddr, Failures>>,
}

impl Limiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        self.by_addr.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds left while `addr` is blocked.
    pub fn blocked(&self, addr: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let map = self.lock();
        let until = map.get(&addr)?.blocked_until?;
        (until > now).then(|| (until - now).as_secs().max(1))
    }

    /// Counts a failure; returns seconds to wait when `addr` is now blocked.
    pub fn fail(&self, addr: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.lock();
        // Bound memory under a flood of addresses: forget stale entries.
        if map.len() > 100_000 {
            map.retain(|_, f| now.duration_since(f.window_start) < WINDOW || f.blocked_until.is_some_and(|u| u > now));
        }
        let f = map.entry(addr).or_insert(Failures {
            count: 0,
            window_start: now,
            blocked_until: None,
        });
        if now.duration_since(f.window_start) > WINDOW {
            f.count = 0;
            f.window_start = now;
        }
        f.count += 1;
        if f.count >= MAX_FAILURES {
            f.blocked_until = Some(now + WINDOW);
            f.count = 0;
            f.window_start = now;
            tracing::warn!(client = %addr, "too many failed authentications; client blocked for {} s", WINDOW.as_secs());
            return Some(WINDOW.as_secs());
        }
        None
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
    let addr = client_addr(state, headers, peer);
    if let Some(retry) = state.limiter.blocked(addr) {
        return Err(ApiError::TooManyAttempts(retry));
    }
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let fail = |e: ApiError| match state.limiter.fail(addr) {
        Some(retry) => ApiError::TooManyAttempts(retry),
        None => e,
    };
    let Some(token) = token else {
        return Err(fail(ApiError::Unauthorized(
            "missing bearer token (Authorization: Bearer ...)".into(),
        )));
    };
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let config = state.core.config();
    // Compare with every user, without stopping at a match, so the time
    // taken says nothing about which user (or how much of a hash) matched.
    let mut found = None;
    for u in &config.users {
        if u.token_sha256.is_some_and(|h| bool::from(h.ct_eq(&hash))) {
            found = Some(u.clone());
        }
    }
    found.ok_or_else(|| fail(ApiError::Unauthorized("unknown token".into())))
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
