//! The daemon's task that fetches every URL calendar at start, after each
//! reload and daily, and installs a configuration whose schedules hold the
//! new closed days.
//!
//! It receives the configuration in force through `current` and hands the
//! updated one to `install` (the daemon passes the core's), so that this
//! module needs nothing above the configuration. A failed fetch keeps the
//! last good copy: the calendar's days do not change, only its `error`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::fetch::{self, Limits};
use crate::config::Config;
use crate::config::calendars::{CalendarSource, NamedCalendar};

/// How often a fresh copy is fetched when nothing else asks for one.
pub const DAILY: Duration = Duration::from_secs(24 * 60 * 60);

/// How often the task looks for a reloaded configuration. A reload is rare
/// and a fetch takes seconds: a second of delay is invisible.
const POLL: Duration = Duration::from_secs(1);

/// Runs until `token` is cancelled. `current` returns the configuration in
/// force; `install` adopts an updated one; `failed` is told each failure
/// (for the metric).
pub async fn run<C, I, F>(current: C, install: I, failed: impl Fn(&str) + Send, token: CancellationToken)
where
    C: Fn() -> Arc<Config> + Send,
    I: Fn(Arc<Config>) -> F + Send,
    F: Future<Output = ()> + Send,
{
    let mut handled: Option<Arc<Config>> = None;
    let mut next_daily = tokio::time::Instant::now() + DAILY;
    loop {
        let config = current();
        let daily = tokio::time::Instant::now() >= next_daily;
        let changed = handled.as_ref().is_none_or(|h| !Arc::ptr_eq(h, &config));
        if changed || daily {
            if daily {
                next_daily = tokio::time::Instant::now() + DAILY;
            }
            let updated = tokio::select! {
                u = refresh_all(&config, Limits::default(), &failed) => u,
                () = token.cancelled() => return,
            };
            match updated {
                // A reload may have been adopted while fetching: it read the
                // fresh copies from state_dir already, so it is kept.
                Some(updated) if Arc::ptr_eq(&current(), &config) => {
                    let updated = Arc::new(updated);
                    install(updated.clone()).await;
                    handled = Some(updated);
                }
                Some(_) => handled = None,
                None => handled = Some(config),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = token.cancelled() => return,
        }
    }
}

/// Fetches every URL calendar of `config`; `None` when it has none.
pub async fn refresh_all(config: &Config, limits: Limits, failed: &(impl Fn(&str) + ?Sized)) -> Option<Config> {
    let urls: Vec<Arc<NamedCalendar>> = config
        .calendars
        .values()
        .filter(|c| matches!(c.source, CalendarSource::Url { .. }))
        .cloned()
        .collect();
    if urls.is_empty() {
        return None;
    }
    let mut next = config.clone();
    for c in urls {
        let CalendarSource::Url { url, .. } = &c.source else {
            continue;
        };
        let now = Utc::now();
        let updated = match fetch::refresh(&config.state_dir, &c.name, url, config.timezone, limits, now).await {
            Ok(days) => {
                tracing::info!(calendar = %c.name, %url, closures = days.closed.len(), "calendar fetched");
                c.with_ics(days.closed, Some(now), None)
            }
            Err(e) => {
                tracing::warn!(calendar = %c.name, %url, error = %e, "calendar fetch failed; keeping the last good copy");
                failed(&c.name);
                let mut kept = (*c).clone();
                kept.error = Some(e);
                kept
            }
        };
        next = next.with_calendar(updated);
    }
    Some(next)
}
