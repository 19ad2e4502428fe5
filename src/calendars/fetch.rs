//! Fetching one URL calendar: HTTP GET with a time limit and a size limit,
//! the body checked as iCalendar before it replaces the last good copy.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::calendar_cache::{self as cache, FetchStatus};
use crate::config::calendars::read_ics;
use crate::schedule::ics::IcsDays;

/// The daemon's limits: a file of the Ministry is about 30 KiB.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest body accepted.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;

/// Limits of one fetch (tests shorten the timeout).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole request, connection to last byte.
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: TIMEOUT,
            max_bytes: MAX_BYTES,
        }
    }
}

/// GETs `url` within `limits`.
///
/// # Errors
/// A sentence: unreachable, timed out, an HTTP status other than 200, or a
/// body over the size limit.
pub async fn get(url: &str, limits: Limits) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .timeout(limits.timeout)
        .user_agent(concat!("borne/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let what = |e: reqwest::Error| {
        if e.is_timeout() {
            format!("timed out after {} s", limits.timeout.as_secs_f32())
        } else {
            format!("cannot fetch: {e}")
        }
    };
    let mut response = client.get(url).send().await.map_err(what)?;
    if !response.status().is_success() {
        return Err(format!("the server answered {}", response.status()));
    }
    let too_large = || format!("larger than the {} MiB limit", limits.max_bytes / (1024 * 1024));
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(limits.max_bytes).unwrap_or(u64::MAX))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(what)? {
        if body.len() + chunk.len() > limits.max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Fetches calendar `name` from `url`; when the body is a valid iCalendar
/// file, it becomes the last good copy in `state_dir`. Either way the
/// outcome is recorded in the calendar's fetch status.
///
/// Returns the days of the new copy.
///
/// # Errors
/// Why the fetch failed or the body was refused; the last good copy stays.
pub async fn refresh(
    state_dir: &Path,
    name: &str,
    url: &str,
    tz: Tz,
    limits: Limits,
    now: DateTime<Utc>,
) -> Result<IcsDays, String> {
    let previous = cache::read_status(state_dir, name);
    let outcome = match get(url, limits).await {
        Ok(body) => match read_ics(&body, tz) {
            Ok(days) => cache::write_atomically(&cache::copy_path(state_dir, name), &body)
                .map(|()| days)
                .map_err(|e| format!("cannot keep the copy in {}: {e}", state_dir.display())),
            Err(e) => Err(format!("not a usable iCalendar file: {e}")),
        },
        Err(e) => Err(e),
    };
    let status = match &outcome {
        Ok(_) => FetchStatus {
            fetched_at: Some(now),
            attempted_at: Some(now),
            error: None,
        },
        Err(e) => FetchStatus {
            fetched_at: previous.fetched_at,
            attempted_at: Some(now),
            error: Some(e.clone()),
        },
    };
    if let Err(e) = cache::write_status(state_dir, name, &status) {
        tracing::warn!(calendar = name, error = %e, "cannot record the calendar's fetch status");
    }
    outcome
}
