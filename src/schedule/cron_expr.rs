//! [`CronExpr`]: parsing crontab expressions (5 fields, or 6 with seconds
//! first) and finding their firings in a school's time zone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;

use super::wall_clock::{Moment, first_in, latest_in};

/// A parsed cron rule expression, with crontab semantics (see the module
/// documentation): 5 fields `min hour dom mon dow` or 6 with seconds first,
/// day of week 0/7 = Sunday, and day of month OR day of week when both are
/// restricted.
#[derive(Debug, Clone)]
pub struct CronExpr {
    source: String,
    masks: Masks,
    /// Firings are the union of `primary` and `secondary`: the `cron` crate
    /// ANDs day of month with day of week, so crontab's OR is split in two.
    primary: cron::Schedule,
    secondary: Option<cron::Schedule>,
}

/// The parsed fields as bit sets (bit n = value n), kept to answer
/// [`CronExpr::matches`] without going through the `cron` crate.
#[derive(Debug, Clone, Copy)]
struct Masks {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    /// Bit 0 = Sunday … bit 6 = Saturday (7 is folded into 0).
    days_of_week: u64,
    /// Crontab(5): both day fields restricted → a day matches if either does.
    day_or: bool,
}

impl CronExpr {
    /// Parses a 5- or 6-field crontab expression. The error is a sentence
    /// for a person, e.g. `bad cron expression "0 25 * * *": hour 25 out of
    /// range 0-23`.
    pub fn parse(expr: &str) -> Result<CronExpr, String> {
        parse_cron(expr).map_err(|why| format!("bad cron expression {expr:?}: {why}"))
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression fires at this local wall-clock time (time zones
    /// play no part here: `local` is what a clock on the classroom wall shows).
    pub fn matches(&self, local: NaiveDateTime) -> bool {
        let m = &self.masks;
        let bit = |mask: u64, v: u32| mask & (1 << v) != 0;
        let dom = bit(m.days_of_month, local.day());
        let dow = bit(m.days_of_week, local.weekday().num_days_from_sunday());
        let day = if m.day_or { dom || dow } else { dom && dow };
        day && local.nanosecond() == 0
            && bit(m.seconds, local.second())
            && bit(m.minutes, local.minute())
            && bit(m.hours, local.hour())
            && bit(m.months, local.month())
    }

    /// The latest instant at or before `t` at which the expression fires in
    /// time zone `tz` (DST mapped as in the module documentation).
    pub fn last_firing_at_or_before(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.latest(tz, &Moment::new(tz, t))
    }

    /// The first instant strictly after `t` at which the expression fires in
    /// time zone `tz` (DST mapped as in the module documentation).
    pub fn next_firing_after(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.first_after(tz, &Moment::new(tz, t))
    }

    pub(super) fn latest(&self, tz: Tz, m: &Moment) -> Option<DateTime<Utc>> {
        let a = latest_in(&self.primary, tz, m);
        match &self.secondary {
            None => a,
            // `None < Some(_)`, so max keeps whichever part fired.
            Some(s) => a.max(latest_in(s, tz, m)),
        }
    }

    pub(super) fn first_after(&self, tz: Tz, m: &Moment) -> Option<DateTime<Utc>> {
        let a = first_in(&self.primary, tz, m);
        match &self.secondary {
            None => a,
            Some(s) => match (a, first_in(s, tz, m)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for CronExpr {
    type Err = String;

    /// Same as [`CronExpr::parse`].
    fn from_str(s: &str) -> Result<CronExpr, String> {
        CronExpr::parse(s)
    }
}

/// One field of a cron expression: its name for messages, its range, and the
/// names it accepts (value of `names[i]` is `min_named + i`).
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    long_names: &'static [&'static str],
    min_named: u32,
    name_hint: &'static str,
    /// Day of week: a range ending on 0 (`Fri-Sun`) ends on 7, the other Sunday.
    zero_ends_as_max: bool,
}

const SECOND: FieldSpec = FieldSpec::numeric("second", 0, 59);
const MINUTE: FieldSpec = FieldSpec::numeric("minute", 0, 59);
const HOUR: FieldSpec = FieldSpec::numeric("hour", 0, 23);
const DAY_OF_MONTH: FieldSpec = FieldSpec::numeric("day of month", 1, 31);
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    long_names: &[
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ],
    min_named: 1,
    name_hint: "Jan..Dec",
    zero_ends_as_max: false,
};
// 0-7 with 7 = Sunday, as in crontab; 7 is folded into 0 after parsing.
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    long_names: &[
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ],
    min_named: 0,
    name_hint: "Sun..Sat",
    zero_ends_as_max: true,
};

/// Day names as the `cron` crate reads them; spelling days out by name
/// sidesteps its 1 = Sunday numbering entirely.
const CRON_DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Longest day of each month, counting leap years.
const MONTH_MAX_DAY: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

impl FieldSpec {
    const fn numeric(name: &'static str, min: u32, max: u32) -> FieldSpec {
        FieldSpec {
            name,
            min,
            max,
            names: &[],
            long_names: &[],
            min_named: 0,
            name_hint: "",
            zero_ends_as_max: false,
        }
    }

    const fn full_mask(&self) -> u64 {
        // max ≤ 59, so the shift never overflows.
        (u64::MAX >> (63 - self.max)) & !((1u64 << self.min) - 1)
    }

    fn value(&self, s: &str) -> Result<u32, String> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let out_of_range = || format!("{} {s} out of range {}-{}", self.name, self.min, self.max);
            let v: u32 = s.parse().map_err(|_| out_of_range())?;
            return if (self.min..=self.max).contains(&v) {
                Ok(v)
            } else {
                Err(out_of_range())
            };
        }
        let lower = s.to_ascii_lowercase();
        let named = self
            .names
            .iter()
            .position(|n| *n == lower)
            .or_else(|| self.long_names.iter().position(|n| *n == lower));
        match named {
            // The tables hold at most 12 names, so the index fits in u32.
            Some(i) => Ok(self.min_named + i as u32),
            None if self.names.is_empty() => Err(format!("{} {s:?} is not a number", self.name)),
            None => Err(format!(
                "{} {s:?} is neither a number nor a name ({})",
                self.name, self.name_hint
            )),
        }
    }

    /// Parses one comma-separated field into a bit set.
    fn parse(&self, text: &str) -> Result<u64, String> {
        let mut mask = 0u64;
        for item in text.split(',') {
            if item.is_empty() {
                return Err(format!("empty list item in {} field {text:?}", self.name));
            }
            let (base, step) = match item.split_once('/') {
                Some((base, step)) => (base, Some(self.step(step)?)),
                None => (item, None),
            };
            let (lo, mut hi) = if base == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = base.split_once('-') {
                (self.value(a)?, self.value(b)?)
            } else {
                let a = self.value(base)?;
                // `a/n` is `a-max/n`, as in cronie and the `cron` crate.
                (a, if step.is_some() { self.max } else { a })
            };
            if self.zero_ends_as_max && hi == 0 && lo > 0 {
                hi = self.max;
            }
            if lo > hi {
                return Err(format!("{} range {base:?} goes backwards ({lo} > {hi})", self.name));
            }
            for v in (lo..=hi).step_by(step.unwrap_or(1) as usize) {
                mask |= 1 << v;
            }
        }
        Ok(mask)
    }

    fn step(&self, s: &str) -> Result<u32, String> {
        let span = self.max - self.min + 1;
        match s.parse::<u32>() {
            Ok(n) if (1..=span).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(format!("{} step {s:?} must be a number from 1 to {span}", self.name)),
        }
    }
}

fn parse_cron(expr: &str) -> Result<CronExpr, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let (sec, rest) = match fields.len() {
        5 => ("0", &fields[..]),
        6 => (fields[0], &fields[1..]),
        0 => return Err("empty expression".to_string()),
        7 => {
            return Err("7 fields, but a year field is not supported: use 5 fields \
                 (minute hour day-of-month month day-of-week) or 6 (second first)"
                .to_string());
        }
        n => {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) \
                 or 6 (second first), found {n}"
            ));
        }
    };
    let [min, hour, dom, mon, dow] = [rest[0], rest[1], rest[2], rest[3], rest[4]];
    let mut masks = Masks {
        seconds: SECOND.parse(sec)?,
        minutes: MINUTE.parse(min)?,
        hours: HOUR.parse(hour)?,
        days_of_month: DAY_OF_MONTH.parse(dom)?,
        months: MONTH.parse(mon)?,
        days_of_week: DAY_OF_WEEK.parse(dow)?,
        // crontab(5): "If both fields are restricted (i.e., don't start with
        // *), the command will be run when either field matches".
        day_or: !dom.starts_with('*') && !dow.starts_with('*'),
    };
    if masks.days_of_week & (1 << 7) != 0 {
        masks.days_of_week = (masks.days_of_week | 1) & !(1 << 7);
    }
    let dom_can_fire = (1..=12u32).any(|m| {
        masks.months & (1 << m) != 0 && masks.days_of_month & ((2u64 << MONTH_MAX_DAY[m as usize - 1]) - 1) != 0
    });

    let s = numeric_list(masks.seconds, &SECOND);
    let mi = numeric_list(masks.minutes, &MINUTE);
    let h = numeric_list(masks.hours, &HOUR);
    let d = numeric_list(masks.days_of_month, &DAY_OF_MONTH);
    let mo = numeric_list(masks.months, &MONTH);
    let w = day_name_list(masks.days_of_week);
    let build = |d: &str, w: &str| -> Result<cron::Schedule, String> {
        let src = format!("{s} {mi} {h} {d} {mo} {w}");
        // Every field was validated above, so a refusal here would be a bug
        // in the translation; report it rather than panic.
        cron::Schedule::from_str(&src)
            .map_err(|e| format!("internal translation {src:?} was refused by the cron library: {e}"))
    };
    let (primary, secondary) = if masks.day_or {
        let by_weekday = build("*", &w)?;
        if dom_can_fire {
            (build(&d, "*")?, Some(by_weekday))
        } else {
            // e.g. `0 8 30 Feb Mon`: only the weekday half can ever fire, and
            // a never-firing schedule would make the `cron` crate scan every
            // year up to 2100 on each query.
            (by_weekday, None)
        }
    } else {
        if !dom_can_fire {
            return Err(format!("never fires: no month in {mon:?} has a day in {dom:?}"));
        }
        (build(&d, &w)?, None)
    };
    Ok(CronExpr {
        source: expr.to_string(),
        masks,
        primary,
        secondary,
    })
}

fn numeric_list(mask: u64, spec: &FieldSpec) -> String {
    if mask == spec.full_mask() {
        return "*".to_string();
    }
    let values: Vec<String> = (spec.min..=spec.max)
        .filter(|v| mask & (1 << v) != 0)
        .map(|v| v.to_string())
        .collect();
    values.join(",")
}

fn day_name_list(mask: u64) -> String {
    if mask == 0x7f {
        return "*".to_string();
    }
    let names: Vec<&str> = (0..7)
        .filter(|d| mask & (1 << d) != 0)
        .map(|d| CRON_DAY_NAMES[d])
        .collect();
    names.join(",")
}
#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use chrono::TimeDelta;
    use chrono_tz::Europe::Paris;

    // ---- cron expressions -------------------------------------------------

    #[test]
    fn five_fields_fire_at_second_zero() {
        let e = cron("30 9 * * *");
        assert_eq!(e.source(), "30 9 * * *");
        assert_eq!(
            e.next_firing_after(Tz::UTC, utc("2026-03-10T09:29:59Z")),
            Some(utc("2026-03-10T09:30:00Z"))
        );
        assert!(e.matches(local("2026-03-10 09:30:00")));
        assert!(!e.matches(local("2026-03-10 09:30:01")));
    }

    #[test]
    fn six_fields_put_seconds_first() {
        let e = cron("15 30 9 * * *");
        assert_eq!(
            e.next_firing_after(Tz::UTC, utc("2026-03-10T09:29:59Z")),
            Some(utc("2026-03-10T09:30:15Z"))
        );
        let every_ten_seconds = cron("*/10 * * * * *");
        assert_eq!(
            every_ten_seconds.next_firing_after(Tz::UTC, utc("2026-03-10T09:29:51Z")),
            Some(utc("2026-03-10T09:30:00Z"))
        );
    }

    #[test]
    fn numeric_monday_is_one_as_in_crontab() {
        // 2026-03-08 is a Sunday.
        let e = cron("0 8 * * 1");
        assert_eq!(
            e.next_firing_after(Paris, paris("2026-03-08 12:00")),
            Some(paris("2026-03-09 08:00"))
        );
        assert_eq!(weekdays_fired("0 8 * * 1"), ["Mon"]);
    }

    #[test]
    fn six_field_form_numbers_days_as_crontab_too() {
        assert_eq!(weekdays_fired("0 0 8 * * 1"), ["Mon"]);
        assert_eq!(weekdays_fired("0 0 8 * * 0"), ["Sun"]);
        assert_eq!(weekdays_fired("0 0 8 * * 6"), ["Sat"]);
    }

    #[test]
    fn sunday_is_both_zero_and_seven() {
        assert_eq!(weekdays_fired("0 8 * * 0"), ["Sun"]);
        assert_eq!(weekdays_fired("0 8 * * 7"), ["Sun"]);
        assert_eq!(weekdays_fired("0 8 * * 0,7"), ["Sun"]);
    }

    #[test]
    fn range_five_to_seven_is_friday_to_sunday() {
        assert_eq!(weekdays_fired("0 8 * * 5-7"), ["Sun", "Fri", "Sat"]);
        assert_eq!(weekdays_fired("0 8 * * Fri-Sun"), ["Sun", "Fri", "Sat"]);
        assert_eq!(weekdays_fired("0 8 * * 1-5"), ["Mon", "Tue", "Wed", "Thu", "Fri"]);
    }

    #[test]
    fn day_of_week_steps_count_in_crontab_numbers() {
        assert_eq!(weekdays_fired("0 8 * * */2"), ["Sun", "Tue", "Thu", "Sat"]);
        assert_eq!(weekdays_fired("0 8 * * 1-5/2"), ["Mon", "Wed", "Fri"]);
        assert_eq!(weekdays_fired("0 8 * * 1/3"), ["Sun", "Mon", "Thu"]); // 1,4,7
        assert_eq!(weekdays_fired("0 8 * * */7"), ["Sun"]); // 0,7
    }

    #[test]
    fn day_and_month_names_are_case_insensitive() {
        assert_eq!(weekdays_fired("0 8 * * MON,wed,Fri"), ["Mon", "Wed", "Fri"]);
        assert_eq!(weekdays_fired("0 8 * * mon-WED"), ["Mon", "Tue", "Wed"]);
        assert_eq!(weekdays_fired("0 8 * * Sunday,saturday"), ["Sun", "Sat"]);
        assert_eq!(weekdays_fired("0 8 * MAR * "), weekdays_fired("0 8 * 3 *"));
        let e = cron("0 8 1 jun-Aug *");
        assert_eq!(
            e.next_firing_after(Tz::UTC, utc("2026-01-01T00:00:00Z")),
            Some(utc("2026-06-01T08:00:00Z"))
        );
        assert_eq!(
            e.next_firing_after(Tz::UTC, utc("2026-08-01T08:00:00Z")),
            Some(utc("2027-06-01T08:00:00Z"))
        );
        assert_eq!(
            cron("0 0 1 December *").next_firing_after(Tz::UTC, utc("2026-01-01T00:00:00Z")),
            Some(utc("2026-12-01T00:00:00Z"))
        );
    }

    #[test]
    fn both_day_fields_restricted_fire_when_either_matches() {
        // Friday 13th of March 2026; days 1-14.
        let e = cron("0 8 13 * Fri");
        let got: Vec<_> = firings(&e, Tz::UTC, utc("2026-03-01T00:00:00Z"), utc("2026-03-31T00:00:00Z"))
            .into_iter()
            .map(|f| f.day())
            .collect();
        assert_eq!(got, [6, 13, 20, 27]); // Fridays, the 13th being one of them
        let e = cron("0 8 1,15 * Mon");
        let got: Vec<_> = firings(&e, Tz::UTC, utc("2026-03-01T00:00:00Z"), utc("2026-03-31T00:00:00Z"))
            .into_iter()
            .map(|f| f.day())
            .collect();
        assert_eq!(got, [1, 2, 9, 15, 16, 23, 30]);
        assert!(e.matches(local("2026-03-01 08:00"))); // a Sunday, but the 1st
    }

    #[test]
    fn a_day_field_starting_with_a_star_keeps_both_fields_anded() {
        // crontab(5): restricted means "doesn't start with *".
        let and = cron("0 8 */2 * Mon"); // odd days that are Mondays
        let got: Vec<_> = firings(&and, Tz::UTC, utc("2026-03-01T00:00:00Z"), utc("2026-03-31T00:00:00Z"))
            .into_iter()
            .map(|f| f.day())
            .collect();
        assert_eq!(got, [9, 23]);
        let or = cron("0 8 1-31/2 * Mon"); // odd days, or Mondays
        let n = firings(&or, Tz::UTC, utc("2026-03-01T00:00:00Z"), utc("2026-03-31T00:00:00Z")).len();
        // Odd days 1..=29 (the 31st is past the window) and the even Mondays 2, 16, 30.
        assert_eq!(n, 15 + 3);
    }

    #[test]
    fn an_impossible_date_is_rejected_but_a_weekday_alternative_is_kept() {
        let err = CronExpr::parse("0 0 30 2 *").unwrap_err();
        assert!(err.contains("never fires"), "{err}");
        let e = cron("0 0 30 Feb Mon"); // Mondays in February
        let got = firings(&e, Tz::UTC, utc("2026-01-01T00:00:00Z"), utc("2026-12-31T00:00:00Z"));
        assert_eq!(got.len(), 4);
        assert!(
            got.iter()
                .all(|f| f.month() == 2 && f.weekday() == chrono::Weekday::Mon)
        );
        // 29 February exists, every four years.
        assert_eq!(
            cron("0 0 29 2 *").next_firing_after(Tz::UTC, utc("2026-01-01T00:00:00Z")),
            Some(utc("2028-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_give_clear_errors() {
        assert_eq!(
            CronExpr::parse("0 25 * * *").unwrap_err(),
            r#"bad cron expression "0 25 * * *": hour 25 out of range 0-23"#
        );
        let cases = [
            ("", "empty expression"),
            ("   ", "empty expression"),
            ("* * * *", "expected 5 fields"),
            ("0 0 8 * * * 2026", "7 fields, but a year field is not supported"),
            ("1 2 3 4 5 6 7 8", "found 8"),
            ("@daily", "found 1"),
            ("60 * * * *", "minute 60 out of range 0-59"),
            ("61 0 * * * *", "second 61 out of range 0-59"),
            ("* * 0 * *", "day of month 0 out of range 1-31"),
            ("* * 32 * *", "day of month 32 out of range 1-31"),
            ("* * * 13 *", "month 13 out of range 1-12"),
            ("* * * 0 *", "month 0 out of range 1-12"),
            ("* * * * 8", "day of week 8 out of range 0-7"),
            (
                "* * * * Mox",
                r#"day of week "Mox" is neither a number nor a name (Sun..Sat)"#,
            ),
            (
                "* * * Foo *",
                r#"month "Foo" is neither a number nor a name (Jan..Dec)"#,
            ),
            ("Mon * * * *", r#"minute "Mon" is not a number"#),
            ("*/0 * * * *", r#"minute step "0" must be a number from 1 to 60"#),
            ("*/61 * * * *", "minute step"),
            ("*/x * * * *", "minute step"),
            ("5-1 * * * *", r#"minute range "5-1" goes backwards (5 > 1)"#),
            ("* * * * Fri-Mon", "goes backwards"),
            ("1,,2 * * * *", r#"empty list item in minute field "1,,2""#),
            ("1, * * * *", "empty list item"),
            ("0 8 * * Mon-", r#"day of week "" is neither"#),
            ("? * * * *", r#"minute "?" is not a number"#),
            ("0 8 ? * Mon", r#"day of month "?" is not a number"#),
            ("99999999999 * * * *", "minute 99999999999 out of range 0-59"),
            ("-1 * * * *", r#"minute "" is not a number"#),
            ("é * * * *", r#"minute "é" is not a number"#),
            ("0 8 L * *", r#"day of month "L" is not a number"#),
            ("0 8 * * 1#2", r#"day of week "1#2" is neither"#),
            ("0 0 31 4,6,9,11 *", "never fires"),
        ];
        for (expr, want) in cases {
            let err = CronExpr::parse(expr).expect_err(expr);
            assert!(
                err.starts_with(&format!("bad cron expression {expr:?}: ")),
                "{expr:?}: {err}"
            );
            assert!(err.contains(want), "{expr:?}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn matches_agrees_with_the_firings() {
        // `matches` reads the parsed fields directly; the firings go through
        // the translation for the cron crate, so this pins that translation.
        let exprs = [
            "0 8 13 * Fri",
            "*/20 6-7 * * 1-5/2",
            "0 12 1,15 * 0",
            "15 9 * * 7",
            "0 0 */3 * *",
            "0 18 * * 5-7",
            "30 7 1-7 * Mon",
            "0 0 8 * * Tue-Thu",
            "0 30 9 * Feb,Mar Sun",
        ];
        let from = utc("2026-02-20T00:00:00Z");
        let to = utc("2026-03-20T00:00:00Z");
        for expr in exprs {
            let e = cron(expr);
            let fired = firings(&e, Tz::UTC, from, to);
            let mut matched = Vec::new();
            let mut t = from + TimeDelta::minutes(1);
            while t <= to {
                if e.matches(t.naive_utc()) {
                    matched.push(t);
                }
                t += TimeDelta::minutes(1);
            }
            assert!(!fired.is_empty(), "{expr}");
            assert_eq!(fired, matched, "{expr}");
        }
    }

    #[test]
    fn last_firing_searches_backwards_inclusively() {
        let e = cron("0 18 * * *");
        let t = paris("2026-03-10 18:00");
        assert_eq!(e.last_firing_at_or_before(Paris, t), Some(t));
        assert_eq!(
            e.last_firing_at_or_before(Paris, t - TimeDelta::nanoseconds(1)),
            Some(paris("2026-03-09 18:00"))
        );
        assert_eq!(e.next_firing_after(Paris, t), Some(paris("2026-03-11 18:00")));
        assert_eq!(e.next_firing_after(Paris, t - TimeDelta::nanoseconds(1)), Some(t));
    }
}
