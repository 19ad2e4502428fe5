//! The usage report's side of the core: the run heartbeat that tells the
//! report when borne was running, the daily aggregates written once a day
//! is over (and for any day a stop or a crash left without one), their
//! pruning, and reports for the API.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;

use super::{Core, RequestError};
use crate::config::{Classroom, Config, User};
use crate::report::{self, ClassroomDay, Group, Period, Row};
use crate::store::usage::UsageSource;
use crate::store::{Batch, StoreError};

/// How often the run's `alive` moves: after a crash, at most this much
/// running time is counted as unknown.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// Days aggregated in one transaction when catching up.
const DAYS_PER_BATCH: usize = 1;

impl Core {
    /// Starts this run: writes its first heartbeat (queued before anything
    /// the run observes) and returns its start.
    pub fn start_run(&self) -> DateTime<Utc> {
        let started = self.now();
        let mut batch = Batch::default();
        batch.usage.run = Some((started, started));
        self.writer.enqueue(batch);
        started
    }

    /// Heartbeats and daily aggregation until `shutdown`; the last
    /// heartbeat is written at the stop.
    pub async fn run_usage(self: Arc<Self>, started: DateTime<Utc>, shutdown: CancellationToken) {
        let mut next_prune = tokio::time::Instant::now();
        loop {
            let now = self.now();
            let mut batch = Batch::default();
            batch.usage.run = Some((started, now));
            self.writer.enqueue(batch);
            match self.aggregate_finished_days(now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(days = n, "usage report: daily aggregates written"),
                Err(e) => tracing::warn!(error = %e, "usage report: daily aggregation failed; retrying later"),
            }
            if tokio::time::Instant::now() >= next_prune {
                next_prune = tokio::time::Instant::now() + Duration::from_secs(24 * 3600);
                self.prune_usage(now).await;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
        let mut batch = Batch::default();
        batch.usage.run = Some((started, self.now()));
        if let Err(e) = self.writer.commit(batch).await {
            tracing::warn!(error = %e, "usage report: last heartbeat not written");
        }
    }

    async fn prune_usage(&self, now: DateTime<Utc>) {
        let config = self.config();
        let day = (now - chrono::Duration::days(i64::from(config.report_retention_days))).date_naive();
        let history = now - chrono::Duration::days(i64::from(config.audit_retention_days));
        match self.writer.prune_usage(day, history).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned the usage report's tables"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not prune the usage report's tables"),
        }
    }

    /// Writes the aggregate of every finished day that has none, back to
    /// the first run (within the history's retention); returns how many
    /// classroom-days were written.
    ///
    /// # Errors
    /// The store cannot be read or written.
    pub async fn aggregate_finished_days(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let config = self.config();
        let missing = self
            .writer
            .usage(move |r| missing_days(r, &config, now))
            .await?
            .map_err(StoreError::Io)?;
        let n: usize = missing.iter().map(|d| d.len()).sum();
        for chunk in missing.chunks(DAYS_PER_BATCH) {
            let mut batch = Batch::default();
            for d in chunk.iter().flatten() {
                batch.usage.days.push((d.day, d.classroom.clone(), d.figures.clone()));
            }
            self.writer.commit(batch).await?;
        }
        Ok(n)
    }

    /// The usage report over the classrooms `user` may see.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn report(
        &self,
        user: &User,
        from: NaiveDate,
        to: NaiveDate,
        group: Group,
        period: Period,
    ) -> Result<Vec<Row>, RequestError> {
        let config = self.config();
        let now = self.now();
        let user = user.clone();
        let rows = self
            .writer
            .usage(move |r| {
                let classrooms: Vec<&Classroom> = config.classrooms.iter().filter(|c| user.can_see(&c.id)).collect();
                report::report(r, &classrooms, (from, to), group, period, now)
            })
            .await?
            .map_err(StoreError::Io)?;
        Ok(rows)
    }
}

/// For each day from the first run (or the retention's start) to the last
/// finished one, the classrooms' figures of days without an aggregate.
fn missing_days(r: &dyn UsageSource, config: &Config, now: DateTime<Utc>) -> Result<Vec<Vec<ClassroomDay>>, String> {
    let Some(first) = r.first_run().map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    let keep = i64::from(config.report_retention_days.min(config.audit_retention_days));
    // A day before the first run in any time zone is one day early at most.
    let start = (first.date_naive() - chrono::Duration::days(1)).max((now - chrono::Duration::days(keep)).date_naive());
    let end = (now.date_naive() + chrono::Duration::days(1)).max(start);
    let counts = r.day_counts(start).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut day = start;
    while day <= end {
        let finished: Vec<&Classroom> = config
            .classrooms
            .iter()
            .filter(|c| {
                report::day_start(c.timezone, day.succ_opt().unwrap_or(day)) <= now
                    && report::day_start(c.timezone, day.succ_opt().unwrap_or(day)) > first
            })
            .collect();
        if counts.get(&day).copied().unwrap_or(0) < finished.len() {
            let have = r.classrooms_of_day(day).map_err(|e| e.to_string())?;
            let todo: Vec<&Classroom> = finished.into_iter().filter(|c| !have.contains(c.id.as_str())).collect();
            if !todo.is_empty() {
                out.push(report::compute_day(r, &todo, day, now)?);
            }
        }
        match day.succ_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    Ok(out)
}
