//! The `limits:` block, validated: connection handling, rate limits and
//! input bounds of the HTTP side (issue 12). Read by `api` (limiters,
//! input checks) and by the connection handling in `api::server`.

use std::time::Duration;

use super::raw::RawLimits;

/// `limits:`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open HTTP connections at once (read at start only).
    pub max_connections: usize,
    /// Time to send a request's headers.
    pub header_read_timeout: Duration,
    /// Keep-alive connection without a request in progress.
    pub idle_timeout: Duration,
    /// Writes per user per minute.
    pub writes_per_minute: u32,
    /// Failed authentications per address per minute.
    pub failed_auth_per_address: u32,
    /// Failed authentications per minute in total.
    pub failed_auth_total: u32,
    /// Addresses remembered by the failure limiter (read at start only).
    pub failed_auth_addresses: usize,
    /// Longest `until` of an override, from now.
    pub override_max: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 8192,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            writes_per_minute: 30,
            failed_auth_per_address: 10,
            failed_auth_total: 600,
            failed_auth_addresses: 65_536,
            override_max: Duration::from_secs(400 * 86_400),
        }
    }
}

/// Validates `limits:`; returns the limits and the `(key, message)` errors.
pub(super) fn validate(raw: &RawLimits) -> (Limits, Vec<(String, String)>) {
    let d = Limits::default();
    let mut errors = Vec::new();
    let mut range = |key: &str, value: Option<u64>, min: u64, max: u64| -> Option<u64> {
        let v = value?;
        if (min..=max).contains(&v) {
            Some(v)
        } else {
            errors.push((format!("limits.{key}"), format!("{v} is out of range: {min} to {max}")));
            None
        }
    };
    let secs = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_secs);
    let limits = Limits {
        max_connections: range("max_connections", raw.max_connections.map(|v| v as u64), 16, 1_000_000)
            .map_or(d.max_connections, |v| v as usize),
        header_read_timeout: secs(
            range("header_read_timeout_seconds", raw.header_read_timeout_seconds, 1, 300),
            d.header_read_timeout,
        ),
        idle_timeout: secs(
            range("idle_timeout_seconds", raw.idle_timeout_seconds, 1, 3600),
            d.idle_timeout,
        ),
        writes_per_minute: range("writes_per_minute", raw.writes_per_minute.map(u64::from), 1, 100_000)
            .map_or(d.writes_per_minute, |v| v as u32),
        failed_auth_per_address: range(
            "failed_auth_per_address",
            raw.failed_auth_per_address.map(u64::from),
            1,
            100_000,
        )
        .map_or(d.failed_auth_per_address, |v| v as u32),
        failed_auth_total: range("failed_auth_total", raw.failed_auth_total.map(u64::from), 1, 10_000_000)
            .map_or(d.failed_auth_total, |v| v as u32),
        failed_auth_addresses: range(
            "failed_auth_addresses",
            raw.failed_auth_addresses.map(|v| v as u64),
            1,
            10_000_000,
        )
        .map_or(d.failed_auth_addresses, |v| v as usize),
        override_max: range("override_max_days", raw.override_max_days.map(u64::from), 1, 3650)
            .map_or(d.override_max, |days| Duration::from_secs(days * 86_400)),
    };
    (limits, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_block_gives_the_defaults() {
        let (l, errors) = validate(&RawLimits::default());
        assert!(errors.is_empty());
        assert_eq!(l, Limits::default());
    }

    #[test]
    fn out_of_range_values_are_reported_with_their_key() {
        let raw = RawLimits {
            header_read_timeout_seconds: Some(0),
            writes_per_minute: Some(0),
            override_max_days: Some(99_999),
            ..RawLimits::default()
        };
        let (_, errors) = validate(&raw);
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "limits.header_read_timeout_seconds",
                "limits.writes_per_minute",
                "limits.override_max_days"
            ]
        );
        assert!(errors[0].1.contains("0 is out of range: 1 to 300"), "{errors:?}");
    }
}
