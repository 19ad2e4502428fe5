//! The usage report's reads on PostgreSQL: the same questions as
//! `store/usage.rs` asks SQLite, with the same answers (times in the same
//! milliseconds, ties broken by insertion order), so a report gives the
//! same figures on both backends. Where SQLite asks once per access point
//! or classroom, this asks once for all (`DISTINCT ON`): each question is a
//! network round trip here.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use super::{PostgresStore, ms, time};
use crate::config::Classroom;
use crate::policy::Wifi;
use crate::report::{DayFigures, DayInputs, DesiredState, LOOKBACK, Source};
use crate::store::StoreError;
use crate::store::usage::{StoredDay, UsageSource, mode_of, observed_of, reason_of};

/// A reader over the store's pool.
pub(super) struct PgUsage<'s> {
    pub(super) store: &'s PostgresStore,
    pub(super) current_run: Option<DateTime<Utc>>,
}

fn s(e: StoreError) -> String {
    e.to_string()
}

impl UsageSource for PgUsage<'_> {
    fn day_counts(&self, from: NaiveDate) -> Result<HashMap<NaiveDate, usize>, String> {
        let from = from.to_string();
        self.store
            .run(move |inner| async move {
                let c = inner.client().await?;
                let rows = c
                    .query(
                        "SELECT day, count(*) FROM report_days WHERE day >= $1 GROUP BY day",
                        &[&from],
                    )
                    .await
                    .map_err(|e| inner.pg(e))?;
                Ok(rows
                    .iter()
                    .filter_map(|r| {
                        let day: NaiveDate = r.get::<_, &str>(0).parse().ok()?;
                        Some((day, usize::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
                    })
                    .collect())
            })
            .map_err(s)
    }

    fn classrooms_of_day(&self, day: NaiveDate) -> Result<HashSet<String>, String> {
        let day = day.to_string();
        self.store
            .run(move |inner| async move {
                let c = inner.client().await?;
                let rows = c
                    .query("SELECT classroom FROM report_days WHERE day = $1", &[&day])
                    .await
                    .map_err(|e| inner.pg(e))?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
            .map_err(s)
    }
}

impl Source for PgUsage<'_> {
    fn each_stored_day(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        each: &mut dyn FnMut(NaiveDate, &str, &DayFigures),
    ) -> Result<(), String> {
        let (from, to) = (from.to_string(), to.to_string());
        let rows = self
            .store
            .run(move |inner| async move {
                let c = inner.client().await?;
                c.query(
                    "SELECT day, classroom, on_s, unknown_s, teacher_s, schedule_s, override_s, outside_s, sessions,
                            ended_by, overrides, overridden_s, refused
                     FROM report_days WHERE day >= $1 AND day <= $2 ORDER BY day",
                    &[&from, &to],
                )
                .await
                .map_err(|e| inner.pg(e))
            })
            .map_err(s)?;
        let mut stored = StoredDay::default();
        for r in &rows {
            let n = [2, 3, 4, 5, 6, 7, 10, 11].map(|i| r.get::<_, i64>(i));
            let (day, f) = stored.refill(r.get(0), n, [r.get(8), r.get(9), r.get(12)]);
            each(day, r.get(1), f);
        }
        Ok(())
    }

    fn inputs(
        &self,
        classrooms: &[&Classroom],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<HashMap<String, DayInputs>, String> {
        let mut out: HashMap<String, DayInputs> = HashMap::with_capacity(classrooms.len());
        // Where each AP's list sits in its classroom's inputs.
        let mut slot: HashMap<String, (String, usize)> = HashMap::new();
        for cl in classrooms {
            let inputs = out.entry(cl.id.to_string()).or_default();
            for (i, ap) in cl.access_points.iter().enumerate() {
                slot.insert(ap.as_str().to_owned(), (cl.id.to_string(), i));
            }
            inputs.aps = vec![Vec::new(); cl.access_points.len()];
        }
        let aps: Vec<String> = slot.keys().cloned().collect();
        let ids: Vec<String> = classrooms.iter().map(|c| c.id.to_string()).collect();
        let current = self.current_run.map_or(i64::MIN, ms);
        let since = from - LOOKBACK;
        let minute = chrono::Duration::minutes(1);
        let (from_ms, to_ms, since_ms) = (ms(from), ms(to), ms(since));
        let (around_from, around_to) = (ms(from - minute), ms(to + minute));
        type Rows = Vec<tokio_postgres::Row>;
        let (last_ap, ap_rows, last_desired, desired_rows, runs, audit): (Rows, Rows, Rows, Rows, Rows, Rows) = self
            .store
            .run(move |inner| async move {
                let c = inner.client().await?;
                let pg = |e| inner.pg(e);
                let last_ap = c
                    .query(
                        "SELECT DISTINCT ON (ap) ap, at, state FROM ap_history WHERE ap = ANY($1) AND at < $2
                         ORDER BY ap, at DESC, id DESC",
                        &[&aps, &from_ms],
                    )
                    .await
                    .map_err(pg)?;
                let ap_rows = c
                    .query(
                        "SELECT ap, at, state FROM ap_history WHERE at >= $1 AND at < $2 ORDER BY at, id",
                        &[&from_ms, &to_ms],
                    )
                    .await
                    .map_err(pg)?;
                let last_desired = c
                    .query(
                        "SELECT DISTINCT ON (classroom) classroom, at, mode, wifi, reason FROM desired_history
                         WHERE classroom = ANY($1) AND at < $2 ORDER BY classroom, at DESC, id DESC",
                        &[&ids, &since_ms],
                    )
                    .await
                    .map_err(pg)?;
                let desired_rows = c
                    .query(
                        "SELECT classroom, at, mode, wifi, reason FROM desired_history WHERE at >= $1 AND at < $2
                         ORDER BY at, id",
                        &[&since_ms, &to_ms],
                    )
                    .await
                    .map_err(pg)?;
                let runs = c
                    .query(
                        "SELECT started, alive FROM runs WHERE (alive > $1 OR started = $3) AND started < $2
                         ORDER BY started",
                        &[&from_ms, &to_ms, &current],
                    )
                    .await
                    .map_err(pg)?;
                let audit = c
                    .query(
                        "SELECT classroom, at, action, detail, result FROM audit
                         WHERE at >= $1 AND at < $2 AND classroom IS NOT NULL
                           AND (action = 'session.end'
                                OR (starts_with(action, 'teacher.') AND starts_with(result, 'refused:')))
                         ORDER BY at, id",
                        &[&around_from, &around_to],
                    )
                    .await
                    .map_err(pg)?;
                Ok((last_ap, ap_rows, last_desired, desired_rows, runs, audit))
            })
            .map_err(s)?;
        let mut put_ap = |ap: &str, at: i64, state: &str| {
            if let Some((cl, i)) = slot.get(ap)
                && let Some(inputs) = out.get_mut(cl)
            {
                inputs.aps[*i].push((time(at), observed_of(state)));
            }
        };
        for r in last_ap.iter().chain(&ap_rows) {
            put_ap(r.get(0), r.get(1), r.get(2));
        }
        for r in last_desired.iter().chain(&desired_rows) {
            let cl: &str = r.get(0);
            if let Some(inputs) = out.get_mut(cl) {
                inputs.desired.push((
                    time(r.get(1)),
                    DesiredState {
                        mode: mode_of(r.get(2)),
                        wifi: Wifi::parse(r.get(3)).unwrap_or(Wifi::Off),
                        reason: reason_of(r.get(4)),
                    },
                ));
            }
        }
        let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> =
            runs.iter().map(|r| (time(r.get(0)), time(r.get(1)))).collect();
        if let Some(current) = self.current_run {
            for r in &mut runs {
                if ms(r.0) == ms(current) {
                    r.1 = r.1.max(to);
                }
            }
        }
        for r in &audit {
            let cl: &str = r.get(0);
            let Some(inputs) = out.get_mut(cl) else {
                continue;
            };
            let at = time(r.get(1));
            let action: &str = r.get(2);
            if action == "session.end" {
                let detail: &str = r.get(3);
                let reason = detail.split(':').next().unwrap_or("").trim().to_owned();
                inputs.session_ends.push((at, reason));
            } else {
                let result: &str = r.get(4);
                inputs
                    .refused
                    .push((at, result.trim_start_matches("refused:").trim().to_owned()));
            }
        }
        for inputs in out.values_mut() {
            inputs.runs.clone_from(&runs);
        }
        Ok(out)
    }

    fn first_run(&self) -> Result<Option<DateTime<Utc>>, String> {
        self.store
            .run(|inner| async move {
                let c = inner.client().await?;
                let v: Option<i64> = c
                    .query_one("SELECT min(started) FROM runs", &[])
                    .await
                    .map_err(|e| inner.pg(e))?
                    .get(0);
                Ok(v.map(time))
            })
            .map_err(s)
    }
}
