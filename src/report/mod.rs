//! The usage report for the steering committee: how long each classroom's
//! Wi-Fi was on, by cause, with sessions, overrides and refusals, per day.
//!
//! The truth about the radios is the observation history (what drivers saw,
//! written on change), not the desired state; the desired-state history
//! only says *why* an observed "on" happened. [`day`] integrates one
//! classroom's day from those histories (pure); [`table`] groups days into
//! rows. [`collect`] assembles a date range from the stored daily
//! aggregates, computing any day that has none (the current one, or one
//! lost to a crash) from the histories through a [`Source`].

pub mod counts;
pub mod day;
pub mod table;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

pub use day::{DayFigures, DayInputs, DesiredState, figures};
pub use table::{ClassroomDay, Group, Period, Row, Table};

use crate::config::Classroom;

/// How far back the desired history is read before a day, to find where a
/// session running at midnight began.
pub const LOOKBACK: chrono::Duration = chrono::Duration::hours(48);

/// Where the report reads: the state database, or a test's lists.
pub trait Source {
    /// Calls `each` with every stored daily aggregate of days in
    /// `[from, to]`: day, classroom, figures. The figures are lent, one
    /// buffer refilled row after row: a school year of a city is a quarter
    /// of a million rows, read without an allocation each.
    ///
    /// # Errors
    /// The store cannot be read.
    fn each_stored_day(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        each: &mut dyn FnMut(NaiveDate, &str, &DayFigures),
    ) -> Result<(), String>;

    /// Stored daily aggregates of days in `[from, to]`, as a list.
    ///
    /// # Errors
    /// The store cannot be read.
    fn stored_days(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<(NaiveDate, String, DayFigures)>, String> {
        let mut out = Vec::new();
        self.each_stored_day(from, to, &mut |day, classroom, figures| {
            out.push((day, classroom.to_owned(), figures.clone()));
        })?;
        Ok(out)
    }

    /// The histories of these classrooms over `[from, to)` (desired
    /// history from `from - LOOKBACK`), keyed by classroom id.
    ///
    /// # Errors
    /// The store cannot be read.
    fn inputs(
        &self,
        classrooms: &[&Classroom],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<HashMap<String, DayInputs>, String>;

    /// When borne first ran: nothing before is known.
    ///
    /// # Errors
    /// The store cannot be read.
    fn first_run(&self) -> Result<Option<DateTime<Utc>>, String>;
}

/// Midnight starting `day` in `tz`, as an instant (the earliest one if the
/// clocks went back at midnight; the first instant after the gap if they
/// went forward).
pub fn day_start(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let mut t = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(s) = tz.from_local_datetime(&t).earliest() {
            return s.with_timezone(&Utc);
        }
        t += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&t)
}

/// The local date of `t` in `tz`.
pub fn local_day(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// Computes the figures of `day` for `classrooms` from the histories, up to
/// `now` if the day is not over.
///
/// # Errors
/// The source cannot be read.
pub fn compute_day(
    source: &dyn Source,
    classrooms: &[&Classroom],
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<ClassroomDay>, String> {
    if classrooms.is_empty() {
        return Ok(Vec::new());
    }
    let window = |c: &Classroom| {
        let from = day_start(c.timezone, day);
        let to = day_start(c.timezone, day.succ_opt().unwrap_or(day)).min(now);
        (from, to)
    };
    let (mut from, mut to) = window(classrooms[0]);
    for c in classrooms {
        let (f, t) = window(c);
        from = from.min(f);
        to = to.max(t);
    }
    if to <= from {
        return Ok(Vec::new());
    }
    let mut inputs = source.inputs(classrooms, from, to)?;
    Ok(classrooms
        .iter()
        .map(|c| {
            let (f, t) = window(c);
            let i = inputs.remove(c.id.as_str()).unwrap_or_default();
            ClassroomDay {
                day,
                school: c.school.to_string(),
                classroom: c.id.to_string(),
                figures: figures(&i, f, t),
            }
        })
        .collect())
}

/// Every (classroom, day) of `[from, to]` for `classrooms`: stored days as
/// stored, the others computed (days after `now` are left out).
///
/// # Errors
/// The source cannot be read.
pub fn collect(
    source: &dyn Source,
    classrooms: &[&Classroom],
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<ClassroomDay>, String> {
    let mut out = Vec::new();
    each_day(source, classrooms, from, to, now, &mut |day, i, figures| {
        out.push(ClassroomDay {
            day,
            school: classrooms[i].school.to_string(),
            classroom: classrooms[i].id.to_string(),
            figures: figures.clone(),
        });
    })?;
    Ok(out)
}

/// The report's rows over `[from, to]` for `classrooms` (in their order),
/// grouped and by period: the days of [`collect`], summed as they are read.
///
/// # Errors
/// The source cannot be read.
pub fn report(
    source: &dyn Source,
    classrooms: &[&Classroom],
    (from, to): (NaiveDate, NaiveDate),
    group: Group,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Vec<Row>, String> {
    let order = order(classrooms);
    let mut table = Table::new(&order, group, period);
    each_day(source, classrooms, from, to, now, &mut |day, i, figures| {
        table.add(day, i, figures)
    })?;
    Ok(table.rows())
}

/// Calls `each` with every (day, classroom position, figures) of
/// `[from, to]`: stored days as stored, the others computed (days after
/// `now` are left out).
fn each_day(
    source: &dyn Source,
    classrooms: &[&Classroom],
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
    each: &mut dyn FnMut(NaiveDate, usize, &DayFigures),
) -> Result<(), String> {
    // Classrooms by position: a year of 700 classrooms is 250,000
    // (day, classroom) pairs, looked up without building a string each.
    let by_id: HashMap<&str, usize> = classrooms.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
    // Which (day, classroom) pairs are stored: one bit each, indexed by
    // day offset and position (a hash set of a year of a city's pairs cost
    // more than reading them).
    let days = usize::try_from((to - from).num_days() + 1).unwrap_or(0);
    let bit = |day: NaiveDate, i: usize| {
        usize::try_from((day - from).num_days())
            .ok()
            .filter(|d| *d < days)
            .map(|d| d * classrooms.len() + i)
    };
    let mut have = vec![0u64; (days * classrooms.len()).div_ceil(64)];
    source.each_stored_day(from, to, &mut |day, classroom, figures| {
        let Some(&i) = by_id.get(classroom) else {
            return;
        };
        if let Some(b) = bit(day, i) {
            have[b / 64] |= 1 << (b % 64);
        }
        each(day, i, figures);
    })?;
    let first_run = source.first_run()?;
    // A day's bounds per time zone, computed once a day rather than once a
    // classroom (a time zone conversion is the costly part of this loop).
    let mut bounds: Vec<(Tz, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let mut day = from;
    while day <= to {
        bounds.clear();
        let mut known: Vec<&Classroom> = Vec::new();
        let mut known_at: Vec<usize> = Vec::new();
        for (i, c) in classrooms.iter().enumerate() {
            let (start, end) = match bounds.iter().find(|(tz, ..)| *tz == c.timezone) {
                Some(&(_, s, e)) => (s, e),
                None => {
                    let s = day_start(c.timezone, day);
                    let e = day_start(c.timezone, day.succ_opt().unwrap_or(day)).min(now);
                    bounds.push((c.timezone, s, e));
                    (s, e)
                }
            };
            if start >= now || bit(day, i).is_some_and(|b| have[b / 64] & (1 << (b % 64)) != 0) {
                continue;
            }
            // Before borne ever ran nothing is known: no history to read.
            if first_run.is_none_or(|f| end <= f) {
                let unknown = DayFigures {
                    unknown: (end - start).num_seconds(),
                    ..DayFigures::default()
                };
                each(day, i, &unknown);
            } else {
                known.push(c);
                known_at.push(i);
            }
        }
        // compute_day answers in the order it was asked.
        for (d, i) in compute_day(source, &known, day, now)?.iter().zip(known_at) {
            each(day, i, &d.figures);
        }
        match day.succ_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    Ok(())
}

/// The (school, classroom) order of report rows: the classrooms' order.
pub fn order(classrooms: &[&Classroom]) -> Vec<(String, String)> {
    classrooms
        .iter()
        .map(|c| (c.school.to_string(), c.id.to_string()))
        .collect()
}
