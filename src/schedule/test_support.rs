//! Builders shared by the schedule's unit tests: instants in UTC and Paris
//! time, rules, ranges, and a French school week with its holidays.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use chrono_tz::Tz;

use super::{Change, CronExpr, DateRange, Mode, Rule, Schedule};

pub(super) fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

pub(super) fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// An unambiguous Paris wall-clock time as an instant.
pub(super) fn paris(s: &str) -> DateTime<Utc> {
    Paris
        .from_local_datetime(&local(s))
        .single()
        .unwrap_or_else(|| panic!("{s} is not a single Paris time"))
        .with_timezone(&Utc)
}

pub(super) fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub(super) fn cron(s: &str) -> CronExpr {
    CronExpr::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn rule(at: &str, mode: Mode) -> Rule {
    Rule { at: cron(at), mode }
}

pub(super) fn range(s: &str) -> DateRange {
    DateRange::parse(s).unwrap()
}

pub(super) fn change(at: DateTime<Utc>, mode: Mode) -> Change {
    Change { at, mode }
}

pub(super) fn french_rules() -> Vec<Rule> {
    vec![
        rule("0 8 * * Mon,Tue,Thu,Fri", Mode::Available),
        rule("30 11 * * Wed", Mode::Locked),
        rule("0 18 * * *", Mode::Locked),
        rule("0 10 * * Tue", Mode::On),
        rule("0 11 * * Tue", Mode::Available),
    ]
}

/// Zone C school holidays 2025-2027 plus public holidays, as two
/// calendars that overlap (1 May falls in the spring holidays).
pub(super) fn french_holidays() -> Vec<DateRange> {
    [
        "2025-10-18..2025-11-02",
        "2025-12-20..2026-01-04",
        "2026-02-21..2026-03-08",
        "2026-04-18..2026-05-03",
        "2026-05-14..2026-05-17",
        "2026-07-04..2026-08-31",
        "2026-10-17..2026-11-01",
        "2026-12-19..2027-01-03",
        "2027-02-13..2027-02-28",
        "2027-04-10..2027-04-25",
        "2027-07-03..2027-08-31",
        "2027-10-23..2027-11-07",
        "2027-12-18..2028-01-02",
        // public holidays
        "2025-11-11",
        "2026-04-06",
        "2026-05-01",
        "2026-05-08",
        "2026-05-25",
        "2026-07-14",
        "2026-11-11",
        "2027-03-29",
        "2027-05-08",
        "2027-05-17",
    ]
    .into_iter()
    .map(range)
    .collect()
}

pub(super) fn french() -> Schedule {
    Schedule::new(Mode::Locked, french_rules(), french_holidays())
}

/// Every firing of `e` in `(from, to]`, through the public search.
pub(super) fn firings(e: &CronExpr, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    while let Some(f) = e.next_firing_after(tz, t).filter(|&f| f <= to) {
        out.push(f);
        t = f;
    }
    out
}

pub(super) fn weekdays_fired(expr: &str) -> Vec<String> {
    // Week of Sunday 2026-03-01 .. Saturday 2026-03-07, in UTC (no DST).
    let e = cron(expr);
    firings(&e, Tz::UTC, utc("2026-02-28T23:59:59Z"), utc("2026-03-07T23:59:59Z"))
        .into_iter()
        .map(|f| f.format("%a").to_string())
        .collect()
}
