//! The tables behind the usage report, and how they are read.
//!
//! - `ap_history (ap, at, state)`: what each access point was observed
//!   doing (`on`, `off`, `unknown` — unreachable or unread), one row per
//!   change, never per poll: an AP that stays off all week writes nothing.
//! - `desired_history (classroom, at, mode, wifi, reason)`: what the
//!   planner wanted and why, one row per change (and one per classroom at
//!   each start).
//! - `runs (started, alive)`: when borne was running; `alive` moves every
//!   minute and at a clean stop. Outside every run, the radios are unknown.
//! - `report_days`: the daily aggregates per classroom (no personal data:
//!   counts and durations), written once a day is over.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OpenFlags, params};

use super::sqlite::{ms, time};
use crate::config::Classroom;
use crate::domain::ObservedWifi;
use crate::policy::{Reason, Wifi};
use crate::report::{DayFigures, DayInputs, DesiredState, LOOKBACK, Source};
use crate::schedule::Mode;

/// The schema of the report's tables (one migration).
pub const MIGRATION: &str = "CREATE TABLE ap_history (
        ap TEXT NOT NULL,
        at INTEGER NOT NULL,
        state TEXT NOT NULL
     );
     CREATE INDEX ap_history_ap_at ON ap_history(ap, at);
     CREATE INDEX ap_history_at ON ap_history(at);
     CREATE TABLE desired_history (
        classroom TEXT NOT NULL,
        at INTEGER NOT NULL,
        mode TEXT NOT NULL,
        wifi TEXT NOT NULL,
        reason TEXT NOT NULL
     );
     CREATE INDEX desired_history_classroom_at ON desired_history(classroom, at);
     CREATE INDEX desired_history_at ON desired_history(at);
     CREATE TABLE runs (
        started INTEGER PRIMARY KEY,
        alive INTEGER NOT NULL
     );
     CREATE TABLE report_days (
        day TEXT NOT NULL,
        classroom TEXT NOT NULL,
        on_s INTEGER NOT NULL,
        unknown_s INTEGER NOT NULL,
        teacher_s INTEGER NOT NULL,
        schedule_s INTEGER NOT NULL,
        override_s INTEGER NOT NULL,
        outside_s INTEGER NOT NULL,
        sessions TEXT NOT NULL,
        ended_by TEXT NOT NULL,
        overrides INTEGER NOT NULL,
        overridden_s INTEGER NOT NULL,
        refused TEXT NOT NULL,
        PRIMARY KEY (day, classroom)
     ) WITHOUT ROWID";

/// What the usage tables receive in a batch.
#[derive(Debug, Clone, Default)]
pub struct UsageBatch {
    /// Observed-state changes: AP, when, new state.
    pub ap_history: Vec<(String, DateTime<Utc>, ObservedWifi)>,
    /// Desired-state changes: classroom, when, new state.
    pub desired_history: Vec<(String, DateTime<Utc>, DesiredState)>,
    /// This run: (started, alive until).
    pub run: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Daily aggregates (replace any for the same day and classroom).
    pub days: Vec<(NaiveDate, String, DayFigures)>,
}

impl UsageBatch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ap_history.is_empty() && self.desired_history.is_empty() && self.run.is_none() && self.days.is_empty()
    }
}

/// One stored day at a time, as both stores read `report_days`: the
/// figures' buffer is refilled row after row (no allocation per row), and
/// the day, the same for a whole run of rows, is parsed once per run.
#[derive(Default)]
pub(crate) struct StoredDay {
    day: (String, NaiveDate),
    figures: DayFigures,
}

impl StoredDay {
    /// Refills from a row: `day` as stored, `n` the whole-number columns
    /// (`on_s`, `unknown_s`, `teacher_s`, `schedule_s`, `override_s`,
    /// `outside_s`, `overrides`, `overridden_s`), `t` the text ones
    /// (`sessions`, `ended_by`, `refused`).
    pub(crate) fn refill(&mut self, day: &str, n: [i64; 8], t: [&str; 3]) -> (NaiveDate, &DayFigures) {
        if day != self.day.0 {
            self.day = (day.to_owned(), day.parse().unwrap_or_default());
        }
        let f = &mut self.figures;
        [
            f.on,
            f.unknown,
            f.on_teacher,
            f.on_schedule,
            f.on_override,
            f.on_outside,
        ] = [n[0], n[1], n[2], n[3], n[4], n[5]];
        f.overrides = u32::try_from(n[6]).unwrap_or(u32::MAX);
        f.override_seconds = n[7];
        f.sessions.clear();
        f.sessions.extend(t[0].split(',').filter_map(|s| s.parse::<i64>().ok()));
        f.ended_by.clear();
        f.ended_by.add_text(t[1]);
        f.refused.clear();
        f.refused.add_text(t[2]);
        (self.day.1, &self.figures)
    }
}

/// A text column, borrowed from the row.
fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?
        .as_str()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

pub(crate) fn mode_of(s: &str) -> Mode {
    match s {
        "on" => Mode::On,
        "available" => Mode::Available,
        _ => Mode::Locked,
    }
}

pub(crate) fn reason_of(s: &str) -> Reason {
    match s {
        "override" => Reason::Override,
        "teacher" => Reason::Teacher,
        "schedule" => Reason::Schedule,
        _ => Reason::Locked,
    }
}

pub(crate) fn observed_of(s: &str) -> ObservedWifi {
    match s {
        "on" => ObservedWifi::On,
        "off" => ObservedWifi::Off,
        _ => ObservedWifi::Unknown,
    }
}

/// Writes a batch's usage rows inside the caller's transaction.
///
/// # Errors
/// A write failed; the transaction must be abandoned.
pub fn write(tx: &rusqlite::Transaction<'_>, b: &UsageBatch) -> rusqlite::Result<()> {
    if b.is_empty() {
        return Ok(());
    }
    let mut ap = tx.prepare_cached("INSERT INTO ap_history (ap, at, state) VALUES (?1, ?2, ?3)")?;
    for (id, at, state) in &b.ap_history {
        ap.execute(params![id, ms(*at), state.as_str()])?;
    }
    let mut desired = tx.prepare_cached(
        "INSERT INTO desired_history (classroom, at, mode, wifi, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (id, at, d) in &b.desired_history {
        desired.execute(params![
            id,
            ms(*at),
            d.mode.as_str(),
            d.wifi.as_str(),
            d.reason.as_str()
        ])?;
    }
    if let Some((started, alive)) = b.run {
        tx.prepare_cached(
            "INSERT INTO runs (started, alive) VALUES (?1, ?2)
             ON CONFLICT(started) DO UPDATE SET alive = max(alive, excluded.alive)",
        )?
        .execute(params![ms(started), ms(alive)])?;
    }
    let mut day = tx.prepare_cached(
        "INSERT OR REPLACE INTO report_days (day, classroom, on_s, unknown_s, teacher_s, schedule_s, override_s,
            outside_s, sessions, ended_by, overrides, overridden_s, refused)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for (d, classroom, f) in &b.days {
        let sessions = f.sessions.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        day.execute(params![
            d.to_string(),
            classroom,
            f.on,
            f.unknown,
            f.on_teacher,
            f.on_schedule,
            f.on_override,
            f.on_outside,
            sessions,
            f.ended_by.to_text(),
            f.overrides,
            f.override_seconds,
            f.refused.to_text()
        ])?;
    }
    Ok(())
}

/// Deletes aggregates of days before `day`, and history rows older than
/// `history_before` except the last one of each access point and
/// classroom (the state that still holds).
///
/// # Errors
/// The database cannot be written.
pub fn prune(c: &Connection, day: NaiveDate, history_before: DateTime<Utc>) -> rusqlite::Result<usize> {
    let mut n = c.execute("DELETE FROM report_days WHERE day < ?1", params![day.to_string()])?;
    n += c.execute(
        "DELETE FROM ap_history WHERE at < ?1 AND rowid NOT IN
            (SELECT max(rowid) FROM ap_history WHERE at < ?1 GROUP BY ap)",
        params![ms(history_before)],
    )?;
    n += c.execute(
        "DELETE FROM desired_history WHERE at < ?1 AND rowid NOT IN
            (SELECT max(rowid) FROM desired_history WHERE at < ?1 GROUP BY classroom)",
        params![ms(history_before)],
    )?;
    n += c.execute(
        "DELETE FROM runs WHERE alive < ?1 AND started <> (SELECT max(started) FROM runs)",
        params![ms(history_before)],
    )?;
    Ok(n)
}

/// What the usage report reads, whatever the backend: the report's
/// [`Source`] and the two questions of the daily aggregation (which days
/// still lack aggregates). [`UsageReader`] answers them from SQLite,
/// `store::postgres` from PostgreSQL, with the same figures.
pub trait UsageSource: Source {
    /// How many classrooms have an aggregate, per day from `from` on.
    ///
    /// # Errors
    /// The store cannot be read.
    fn day_counts(&self, from: NaiveDate) -> Result<HashMap<NaiveDate, usize>, String>;

    /// The classrooms with an aggregate for `day`.
    ///
    /// # Errors
    /// The store cannot be read.
    fn classrooms_of_day(&self, day: NaiveDate) -> Result<HashSet<String>, String>;
}

/// Reads the report's tables over one connection.
pub struct UsageReader<'c> {
    /// The connection (read-only is enough).
    pub conn: &'c Connection,
    /// The run in progress (the daemon's own): its end is "now", whatever
    /// its last heartbeat says.
    pub current_run: Option<DateTime<Utc>>,
}

impl UsageReader<'_> {
    /// The first day borne ran, if it ever did.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn first_run(&self) -> rusqlite::Result<Option<DateTime<Utc>>> {
        let v: Option<i64> = self.conn.query_row("SELECT min(started) FROM runs", [], |r| r.get(0))?;
        Ok(v.map(time))
    }

    /// How many classrooms have an aggregate, per day from `from` on.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn day_counts(&self, from: NaiveDate) -> rusqlite::Result<HashMap<NaiveDate, usize>> {
        let mut q = self
            .conn
            .prepare_cached("SELECT day, count(*) FROM report_days WHERE day >= ?1 GROUP BY day")?;
        let rows = q.query_map(params![from.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (d, n) = row?;
            if let Ok(d) = d.parse() {
                out.insert(d, n as usize);
            }
        }
        Ok(out)
    }

    /// The classrooms with an aggregate for `day`.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn classrooms_of_day(&self, day: NaiveDate) -> rusqlite::Result<HashSet<String>> {
        let mut q = self
            .conn
            .prepare_cached("SELECT classroom FROM report_days WHERE day = ?1")?;
        let rows = q.query_map(params![day.to_string()], |r| r.get::<_, String>(0))?;
        rows.collect()
    }

    fn each_stored(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        each: &mut dyn FnMut(NaiveDate, &str, &DayFigures),
    ) -> rusqlite::Result<()> {
        let mut q = self.conn.prepare_cached(
            "SELECT day, classroom, on_s, unknown_s, teacher_s, schedule_s, override_s, outside_s, sessions,
                    ended_by, overrides, overridden_s, refused
             FROM report_days WHERE day >= ?1 AND day <= ?2",
        )?;
        // Rows come in key order, a day's classrooms together; text is read
        // in place.
        let mut stored = StoredDay::default();
        let mut rows = q.query(params![from.to_string(), to.to_string()])?;
        while let Some(r) = rows.next()? {
            let mut n = [0i64; 8];
            for (v, i) in n.iter_mut().zip([2, 3, 4, 5, 6, 7, 10, 11]) {
                *v = r.get(i)?;
            }
            let (day, f) = stored.refill(text(r, 0)?, n, [text(r, 8)?, text(r, 9)?, text(r, 12)?]);
            each(day, text(r, 1)?, f);
        }
        Ok(())
    }

    fn histories(
        &self,
        classrooms: &[&Classroom],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> rusqlite::Result<HashMap<String, DayInputs>> {
        let c = self.conn;
        let mut out: HashMap<String, DayInputs> = HashMap::with_capacity(classrooms.len());
        // Where each AP's list sits in its classroom's inputs.
        let mut slot: HashMap<&str, (&str, usize)> = HashMap::new();
        for cl in classrooms {
            let inputs = out.entry(cl.id.to_string()).or_default();
            for (i, ap) in cl.access_points.iter().enumerate() {
                slot.insert(ap.as_str(), (cl.id.as_str(), i));
            }
            inputs.aps = vec![Vec::new(); cl.access_points.len()];
        }
        let mut last_ap =
            c.prepare_cached("SELECT at, state FROM ap_history WHERE ap = ?1 AND at < ?2 ORDER BY at DESC LIMIT 1")?;
        for cl in classrooms {
            let inputs = out.get_mut(cl.id.as_str()).expect("inserted above");
            for (i, ap) in cl.access_points.iter().enumerate() {
                let mut rows = last_ap.query(params![ap.as_str(), ms(from)])?;
                if let Some(r) = rows.next()? {
                    inputs.aps[i].push((time(r.get(0)?), observed_of(&r.get::<_, String>(1)?)));
                }
            }
        }
        let mut q = c.prepare_cached("SELECT ap, at, state FROM ap_history WHERE at >= ?1 AND at < ?2 ORDER BY at")?;
        let mut rows = q.query(params![ms(from), ms(to)])?;
        while let Some(r) = rows.next()? {
            let ap: String = r.get(0)?;
            if let Some((cl, i)) = slot.get(ap.as_str())
                && let Some(inputs) = out.get_mut(*cl)
            {
                inputs.aps[*i].push((time(r.get(1)?), observed_of(&r.get::<_, String>(2)?)));
            }
        }
        let since = from - LOOKBACK;
        let mut last_desired = c.prepare_cached(
            "SELECT at, mode, wifi, reason FROM desired_history WHERE classroom = ?1 AND at < ?2 ORDER BY at DESC LIMIT 1",
        )?;
        let desired_row = |r: &rusqlite::Row<'_>, o: usize| -> rusqlite::Result<(DateTime<Utc>, DesiredState)> {
            Ok((
                time(r.get(o)?),
                DesiredState {
                    mode: mode_of(&r.get::<_, String>(o + 1)?),
                    wifi: Wifi::parse(&r.get::<_, String>(o + 2)?).unwrap_or(Wifi::Off),
                    reason: reason_of(&r.get::<_, String>(o + 3)?),
                },
            ))
        };
        for cl in classrooms {
            let mut rows = last_desired.query(params![cl.id.as_str(), ms(since)])?;
            if let Some(r) = rows.next()?
                && let Some(inputs) = out.get_mut(cl.id.as_str())
            {
                inputs.desired.push(desired_row(r, 0)?);
            }
        }
        let mut q = c.prepare_cached(
            "SELECT classroom, at, mode, wifi, reason FROM desired_history WHERE at >= ?1 AND at < ?2 ORDER BY at",
        )?;
        let mut rows = q.query(params![ms(since), ms(to)])?;
        while let Some(r) = rows.next()? {
            let cl: String = r.get(0)?;
            if let Some(inputs) = out.get_mut(cl.as_str()) {
                inputs.desired.push(desired_row(r, 1)?);
            }
        }
        // The run in progress counts up to now whatever its last heartbeat.
        let current = self.current_run.map_or(i64::MIN, ms);
        let mut q = c.prepare_cached(
            "SELECT started, alive FROM runs WHERE (alive > ?1 OR started = ?3) AND started < ?2 ORDER BY started",
        )?;
        let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> = q
            .query_map(params![ms(from), ms(to), current], |r| {
                Ok((time(r.get(0)?), time(r.get(1)?)))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if let Some(current) = self.current_run {
            for r in &mut runs {
                // Compared as stored: to the millisecond.
                if ms(r.0) == ms(current) {
                    r.1 = r.1.max(to);
                }
            }
        }
        // Session ends a minute around the window (matched to the end of a
        // session stretch), refusals inside it.
        let mut q = c.prepare_cached(
            "SELECT classroom, at, action, detail, result FROM audit
             WHERE at >= ?1 AND at < ?2 AND classroom IS NOT NULL
               AND (action = 'session.end' OR (substr(action, 1, 8) = 'teacher.' AND substr(result, 1, 8) = 'refused:'))",
        )?;
        let minute = chrono::Duration::minutes(1);
        let mut rows = q.query(params![ms(from - minute), ms(to + minute)])?;
        while let Some(r) = rows.next()? {
            let cl: String = r.get(0)?;
            let Some(inputs) = out.get_mut(cl.as_str()) else {
                continue;
            };
            let at = time(r.get(1)?);
            let action: String = r.get(2)?;
            if action == "session.end" {
                let detail: String = r.get(3)?;
                let reason = detail.split(':').next().unwrap_or("").trim().to_owned();
                inputs.session_ends.push((at, reason));
            } else {
                let result: String = r.get(4)?;
                let code = result.trim_start_matches("refused:").trim().to_owned();
                inputs.refused.push((at, code));
            }
        }
        for inputs in out.values_mut() {
            inputs.runs.clone_from(&runs);
        }
        Ok(out)
    }
}

impl UsageSource for UsageReader<'_> {
    fn day_counts(&self, from: NaiveDate) -> Result<HashMap<NaiveDate, usize>, String> {
        UsageReader::day_counts(self, from).map_err(|e| e.to_string())
    }

    fn classrooms_of_day(&self, day: NaiveDate) -> Result<HashSet<String>, String> {
        UsageReader::classrooms_of_day(self, day).map_err(|e| e.to_string())
    }
}

impl Source for UsageReader<'_> {
    fn each_stored_day(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        each: &mut dyn FnMut(NaiveDate, &str, &DayFigures),
    ) -> Result<(), String> {
        self.each_stored(from, to, each).map_err(|e| e.to_string())
    }

    fn inputs(
        &self,
        classrooms: &[&Classroom],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<HashMap<String, DayInputs>, String> {
        self.histories(classrooms, from, to).map_err(|e| e.to_string())
    }

    fn first_run(&self) -> Result<Option<DateTime<Utc>>, String> {
        UsageReader::first_run(self).map_err(|e| e.to_string())
    }
}

/// The state database opened read-only, for `borne report` while the
/// daemon runs (WAL lets both read and write at once).
pub struct ReadOnly(Mutex<Connection>);

impl ReadOnly {
    /// Opens `state_dir/borne.db` read-only.
    ///
    /// # Errors
    /// The file is missing, unreadable, or not a borne database with the report's tables.
    pub fn open(state_dir: &Path) -> Result<ReadOnly, String> {
        let path = state_dir.join("borne.db");
        let c = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        c.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        c.query_row("SELECT count(*) FROM report_days", [], |_| Ok(()))
            .map_err(|e| {
                format!(
                    "{} has no report tables (has this borne version run on it?): {e}",
                    path.display()
                )
            })?;
        Ok(ReadOnly(Mutex::new(c)))
    }

    /// Runs `f` with a reader.
    pub fn with<R>(&self, f: impl FnOnce(&UsageReader<'_>) -> R) -> R {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&UsageReader {
            conn: &c,
            current_run: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store as _;
    use super::super::sqlite::SqliteStore;
    use super::*;

    /// The run in progress counts up to "now" even though its start, read
    /// back from the database, has lost its sub-millisecond part.
    #[test]
    fn the_current_run_reaches_now_whatever_its_precision() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let config = crate::config::from_str(
            "timezone: Europe/Paris\nschedules: { day: { default_mode: available } }\nschools:\n  - id: s1\n    schedule: day\n    classrooms:\n      - { id: c1, access_points: [ { id: c1-ap1, sim: {} } ] }\n",
            "t.yaml",
            None,
        )
        .unwrap()
        .config;
        let started: DateTime<Utc> = "2026-12-02T10:11:41.630123456Z".parse().unwrap();
        let mut batch = super::super::Batch::default();
        batch.usage.run = Some((started, started));
        store.commit(&[&batch]).unwrap();
        let to: DateTime<Utc> = "2026-12-02T11:00:00Z".parse().unwrap();
        let classrooms: Vec<&Classroom> = config.classrooms.iter().collect();
        let mut runs = Vec::new();
        store
            .with_usage(&mut |r| {
                runs = r
                    .inputs(&classrooms, "2026-12-01T23:00:00Z".parse().unwrap(), to)
                    .unwrap()["c1"]
                    .runs
                    .clone();
            })
            .unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].1, to);
    }
}
