//! The schedule engine: which [`Mode`] a classroom is in at any instant, and
//! when that mode next changes. Pure: no I/O, no clock reads; every function
//! takes the instant and the school's time zone as arguments.
//!
//! # Semantics
//!
//! A [`Schedule`] is a default mode, an ordered list of [`Rule`]s and a set of
//! closed days (holidays, from one or more calendars).
//!
//! - **Rules.** A rule is a cron expression ([`CronExpr`]) read in the
//!   school's local time, and the mode it sets when it fires. The expression
//!   has the 5 fields of crontab (`min hour dom mon dow`), or 6 with seconds
//!   first (`sec min hour dom mon dow`). Fields take `*`, numbers, ranges
//!   `a-b`, steps `*/n`, `a-b/n` and `a/n` (= `a-max/n`), comma lists, and
//!   (case-insensitive) names for months (`Jan`..`Dec`) and days (`Sun`..`Sat`).
//!   7 fields (a year) and `@daily`-style shorthands are rejected.
//! - **Day-of-week numbering** is crontab's: `0` or `7` is Sunday, `1` Monday
//!   … `6` Saturday, in both the 5- and 6-field forms (`0 8 * * 1` is Monday
//!   08:00). A range ending on Sunday may be written `5-7` or `Fri-Sun`.
//! - **Day of month OR day of week.** As in crontab(5): if both fields are
//!   restricted (neither starts with `*`), the rule fires on days matching
//!   *either*; otherwise on days matching both. `0 8 1 * Mon` fires on the 1st
//!   of every month and on every Monday.
//! - **Which rule wins.** The mode at instant `t` is the mode of the rule whose
//!   most recent firing at or before `t` is the latest; when several rules fire
//!   at the same instant, the one later in the list wins. Firings are
//!   remembered for 366 days: if no rule fired in the 366 days up to `t`, the
//!   schedule's default mode applies.
//! - **Closed days.** A closed day is `locked` from local 00:00 to 24:00,
//!   whatever the rules say. Rules keep firing underneath: once the closed days
//!   are over, the mode is again the rules' mode, including rules that fired
//!   during the closed days. Overlapping or adjacent ranges (from several
//!   calendars) are merged.
//! - **Daylight saving time** never loses nor doubles a firing. A rule at a
//!   local time that does not exist (02:30 on the last Sunday of March in
//!   Europe/Paris) fires at the first instant after the gap (03:00 CEST). A
//!   local time that occurs twice (02:30 on the last Sunday of October) fires
//!   once, at its first occurrence, as Vixie cron does. A closed day that
//!   starts at a nonexistent midnight starts when the gap ends.
//! - **Changes.** [`Schedule::next_change`] is the first instant after `t` at
//!   which the mode differs from the mode at `t`: a rule re-setting the current
//!   mode is not a change, and neither is a closed day inside a locked stretch,
//!   so at a locked instant it answers "locked until". It looks ahead about two
//!   years ([`HORIZON`]) and answers `None` when nothing changes in that time.
//!
//! # Range and limits
//!
//! Rules fire between the years 1970 and 2100 (the range of the `cron`
//! crate); outside of it only the default mode and the closed days apply.
//! A pathological schedule in which the mode-setting firings keep losing ties
//! (say an every-second rule for each mode) is scanned for at most
//! [`MAX_SCAN_STEPS`] candidate instants; past that `next_change` answers
//! `None` rather than spinning.
//!
//! # How
//!
//! Cron expressions are evaluated in local *wall-clock* time: the `cron`
//! crate iterates in `Utc` over naive local times, where no DST exists, and
//! each naive firing is then mapped to an instant by the rule above
//! (single → itself, repeated → first occurrence, nonexistent → end of the
//! gap). That map never goes backwards, which is what lets a backward search
//! from the local time of `t` stop at the first firing not after `t`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, SubsecRound, TimeDelta, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;

/// How long a rule's firing keeps deciding the mode when no later rule fires.
pub const RULE_MEMORY: TimeDelta = TimeDelta::days(366);

/// How far ahead [`Schedule::next_change`] looks before answering `None`.
pub const HORIZON: TimeDelta = TimeDelta::days(2 * 366);

/// Upper bound on the candidate instants one change search examines, so that
/// no schedule, however dense its rules, can make a search hang.
pub const MAX_SCAN_STEPS: usize = 10_000;

// ---------------------------------------------------------------------------
// Mode
// ---------------------------------------------------------------------------

/// What the schedule allows in a classroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Wi-Fi off, and teachers cannot turn it on.
    Locked,
    /// Wi-Fi off, but a teacher may turn it on.
    Available,
    /// Wi-Fi on.
    On,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 3] = [Mode::Locked, Mode::Available, Mode::On];

    /// The mode's name as written in configuration: `locked`, `available` or `on`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Locked => "locked",
            Mode::Available => "available",
            Mode::On => "on",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;

    /// Parses `locked`, `available` or `on` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown mode {s:?}: expected locked, available or on"))
    }
}

// ---------------------------------------------------------------------------
// Cron expressions
// ---------------------------------------------------------------------------

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

    fn latest(&self, tz: Tz, m: &Moment) -> Option<DateTime<Utc>> {
        let a = latest_in(&self.primary, tz, m);
        match &self.secondary {
            None => a,
            // `None < Some(_)`, so max keeps whichever part fired.
            Some(s) => a.max(latest_in(s, tz, m)),
        }
    }

    fn first_after(&self, tz: Tz, m: &Moment) -> Option<DateTime<Utc>> {
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

// ---------------------------------------------------------------------------
// Local wall-clock time ↔ instants
// ---------------------------------------------------------------------------

/// The `cron` crate only knows the years 1970-2100, and its arithmetic can
/// overflow at chrono's extreme dates: outside this window nothing fires.
fn cron_can_query(local: NaiveDateTime) -> bool {
    (1969..=2101).contains(&local.year())
}

/// Maps a local wall-clock time to the instant a firing at that time happens:
/// single → itself; repeated (DST fall-back) → its first occurrence;
/// nonexistent (DST spring-forward gap) → the instant the gap ends.
/// Non-decreasing in `local`, which the searches below rely on.
fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    earliest(tz, local).unwrap_or_else(|| gap_end(tz, local))
}

fn earliest(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => Some(d.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// The instant at which the gap containing `local` ends. chrono-tz does not
/// expose its transitions, so probe forward for a wall-clock time that exists
/// and bisect down to the second (transitions fall on whole seconds).
fn gap_end(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    const PROBE: TimeDelta = TimeDelta::minutes(15);
    // 2 days: longer than any gap in the tz database (Samoa skipped 24 h).
    const MAX_PROBES: usize = 2 * 24 * 4;
    let mut lo = local;
    let mut hi = None;
    for _ in 0..MAX_PROBES {
        let Some(next) = lo.checked_add_signed(PROBE) else {
            break;
        };
        if earliest(tz, next).is_some() {
            hi = Some(next);
            break;
        }
        lo = next;
    }
    let Some(mut hi) = hi else {
        // Unreachable with real zone data; read the time with the offset in
        // force at that moment rather than fail.
        let offset = tz.offset_from_utc_datetime(&local).fix().local_minus_utc();
        let utc = local.and_utc();
        return utc
            .checked_sub_signed(TimeDelta::seconds(i64::from(offset)))
            .unwrap_or(utc);
    };
    while hi - lo > TimeDelta::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if earliest(tz, mid).is_some() {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    earliest(tz, hi).unwrap_or_else(|| hi.and_utc())
}

/// Local wall-clock time of `t`. Unlike `DateTime::naive_local`, total: at
/// the very ends of chrono's range it falls back to UTC instead of panicking.
fn local_time(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    let utc = t.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
        .unwrap_or(utc)
}

/// An instant with the local wall-clock times the cron searches start from.
#[derive(Debug, Clone, Copy)]
struct Moment {
    at: DateTime<Utc>,
    /// Local wall-clock time of `at`, truncated to the second (firings fall on
    /// whole seconds, so a firing is ≤ `at` iff it is ≤ the truncated instant).
    local: NaiveDateTime,
    /// Latest wall-clock time whose firing can map to an instant ≤ `at`.
    /// Equal to `local` except during the second pass of a repeated hour, when
    /// the rest of the repeated hour already fired on its first pass.
    back_from: NaiveDateTime,
}

impl Moment {
    fn new(tz: Tz, at: DateTime<Utc>) -> Moment {
        let local = local_time(tz, at).trunc_subsecs(0);
        let mut back_from = local;
        if let LocalResult::Ambiguous(first, second) = tz.from_local_datetime(&local)
            && first.with_timezone(&Utc) < at.trunc_subsecs(0)
        {
            let repeated = first.offset().fix().local_minus_utc() - second.offset().fix().local_minus_utc();
            if let Some(b) = local.checked_add_signed(TimeDelta::seconds(repeated.into())) {
                back_from = b.max(local);
            }
        }
        Moment { at, local, back_from }
    }

    fn date(&self) -> NaiveDate {
        self.local.date()
    }
}

/// Latest firing of `s` at or before `m.at`.
fn latest_in(s: &cron::Schedule, tz: Tz, m: &Moment) -> Option<DateTime<Utc>> {
    if !cron_can_query(m.back_from) {
        return None;
    }
    // The cron crate's backward search excludes its start: start 1 s later.
    let start = m.back_from.checked_add_signed(TimeDelta::seconds(1))?.and_utc();
    let mut it = s.after(&start);
    // Walks back over at most the second pass of a repeated hour: the map is
    // non-decreasing, so the first firing not after `at` is the latest.
    while let Some(f) = it.next_back() {
        let at = resolve_local(tz, f.naive_utc());
        if at <= m.at {
            return Some(at);
        }
    }
    None
}

/// First firing of `s` strictly after `m.at`.
fn first_in(s: &cron::Schedule, tz: Tz, m: &Moment) -> Option<DateTime<Utc>> {
    if !cron_can_query(m.local) {
        return None;
    }
    // Firings at wall-clock times ≤ `local` all map to ≤ `at`; the skip below
    // only triggers during the second pass of a repeated hour.
    s.after(&m.local.and_utc())
        .map(|f| resolve_local(tz, f.naive_utc()))
        .find(|&at| at > m.at)
}

// ---------------------------------------------------------------------------
// Closed days
// ---------------------------------------------------------------------------

/// An inclusive range of local calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    /// First day of the range.
    pub first: NaiveDate,
    /// Last day of the range (inclusive).
    pub last: NaiveDate,
}

impl DateRange {
    /// Parses `2025-12-20..2026-01-04` (inclusive) or a single day
    /// `2026-05-15`. A range whose last day is before its first is an error.
    pub fn parse(s: &str) -> Result<DateRange, String> {
        let text = s.trim();
        let day = |d: &str| {
            NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                .map_err(|_| format!("bad date {:?} in {text:?}: expected YYYY-MM-DD", d.trim()))
        };
        let range = match text.split_once("..") {
            Some((a, b)) => DateRange {
                first: day(a)?,
                last: day(b)?,
            },
            None => {
                let d = day(text)?;
                DateRange { first: d, last: d }
            }
        };
        if range.last < range.first {
            return Err(format!(
                "date range {text:?} is reversed: {} is before {}",
                range.last, range.first
            ));
        }
        Ok(range)
    }

    /// Whether `day` is in the range.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.first <= day && day <= self.last
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

impl FromStr for DateRange {
    type Err = String;

    /// Same as [`DateRange::parse`].
    fn from_str(s: &str) -> Result<DateRange, String> {
        DateRange::parse(s)
    }
}

/// Sorts and merges overlapping or adjacent ranges, so that the day after a
/// merged range is never closed.
fn merge_ranges(mut ranges: Vec<DateRange>) -> Vec<DateRange> {
    ranges.sort_by_key(|r| (r.first, r.last));
    let mut out: Vec<DateRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(prev) if prev.last.succ_opt().is_none_or(|next| r.first <= next) => {
                prev.last = prev.last.max(r.last);
            }
            _ => out.push(r),
        }
    }
    out
}

/// The instant local day `day` starts (a nonexistent midnight → the gap's end).
fn day_start(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    resolve_local(tz, day.and_time(NaiveTime::MIN))
}

// ---------------------------------------------------------------------------
// Rules, changes, schedules
// ---------------------------------------------------------------------------

/// A schedule rule: when `at` fires, the mode becomes `mode`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// When the rule fires, in the school's local time.
    pub at: CronExpr,
    /// The mode it sets.
    pub mode: Mode,
}

/// A change of mode: from instant `at` on, the mode is `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// When the new mode starts.
    pub at: DateTime<Utc>,
    /// The new mode.
    pub mode: Mode,
}

/// A classroom schedule: default mode, ordered rules, closed days. Cheap to
/// clone (the parts are shared).
#[derive(Debug, Clone)]
pub struct Schedule {
    default_mode: Mode,
    rules: Arc<[Rule]>,
    /// Sorted, disjoint and non-adjacent.
    closed: Arc<[DateRange]>,
}

/// The rules' verdict at an instant, ignoring closed days.
#[derive(Debug, Clone, Copy)]
struct RulesState {
    mode: Mode,
    /// The firing that set `mode`, if one is remembered.
    since: Option<DateTime<Utc>>,
}

/// An instant at which the mode could change.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    at: DateTime<Utc>,
    /// When `at` is a firing of rules of another mode: the last such rule in
    /// the list, which sets the mode unless overridden (see `after_firing`).
    winner: Option<usize>,
}

/// Outcome of a change search.
enum Scan {
    Found(Change),
    /// No change up to and including this instant.
    Quiet(DateTime<Utc>),
}

impl Schedule {
    /// Builds a schedule. `closed`: closed-day ranges from all the schedule's
    /// calendars; they may overlap and are merged here.
    pub fn new(default_mode: Mode, rules: Vec<Rule>, closed: Vec<DateRange>) -> Schedule {
        Schedule {
            default_mode,
            rules: rules.into(),
            closed: merge_ranges(closed).into(),
        }
    }

    /// The mode when no rule fired within the last 366 days.
    pub fn default_mode(&self) -> Mode {
        self.default_mode
    }

    /// The rules, in order (later wins ties).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The closed days, merged: sorted, disjoint and non-adjacent.
    pub fn closed_days(&self) -> &[DateRange] {
        &self.closed
    }

    /// The mode at instant `t`, for a school in time zone `tz`.
    pub fn mode_at(&self, tz: Tz, t: DateTime<Utc>) -> Mode {
        let m = Moment::new(tz, t);
        if self.closed_range_on(m.date()).is_some() {
            Mode::Locked
        } else {
            self.rules_state(tz, &m).mode
        }
    }

    /// First instant strictly after `t` at which the mode differs from
    /// `mode_at(t)`, with the new mode. `None` if no change within
    /// [`HORIZON`] (about two years).
    pub fn next_change(&self, tz: Tz, t: DateTime<Utc>) -> Option<Change> {
        self.mode_and_next_change(tz, t).1
    }

    /// `(mode_at(t), next_change(t))`, sharing the work of both.
    pub fn mode_and_next_change(&self, tz: Tz, t: DateTime<Utc>) -> (Mode, Option<Change>) {
        let limit = t.checked_add_signed(HORIZON).unwrap_or(DateTime::<Utc>::MAX_UTC);
        match self.scan(tz, t, limit) {
            (mode, Scan::Found(c)) => (mode, Some(c)),
            (mode, Scan::Quiet(_)) => (mode, None),
        }
    }

    /// Every change of mode in `(from, to]`, in order. Only real changes:
    /// each one's mode differs from the mode before it.
    pub fn changes(&self, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Change> {
        let mut out = Vec::new();
        let mut x = from;
        while x < to {
            match self.scan(tz, x, to).1 {
                Scan::Found(c) => {
                    out.push(c);
                    x = c.at;
                }
                // Either nothing changes up to `to`, or the step budget ran
                // out part of the way and the search resumes from there.
                Scan::Quiet(reached) if reached > x => x = reached,
                Scan::Quiet(_) => break,
            }
        }
        out
    }

    /// Whether `t` falls on a closed day (in `tz`): tells "locked (holiday)"
    /// from "locked (outside school hours)".
    pub fn is_closed_day(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        self.closed_range_at(tz, t).is_some()
    }

    /// The merged closed range (holiday) that `t` falls in, if any.
    pub fn closed_range_at(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateRange> {
        self.closed_range_on(local_time(tz, t).date())
    }

    fn closed_range_on(&self, day: NaiveDate) -> Option<DateRange> {
        let i = self.closed.partition_point(|r| r.last < day);
        self.closed.get(i).filter(|r| r.first <= day).copied()
    }

    fn next_closed_after(&self, day: NaiveDate) -> Option<DateRange> {
        let i = self.closed.partition_point(|r| r.first <= day);
        self.closed.get(i).copied()
    }

    fn rules_state(&self, tz: Tz, m: &Moment) -> RulesState {
        let oldest = m.at.checked_sub_signed(RULE_MEMORY);
        let mut best: Option<(DateTime<Utc>, Mode)> = None;
        for rule in self.rules.iter() {
            let Some(f) = rule.at.latest(tz, m) else {
                continue;
            };
            let remembered = oldest.is_none_or(|o| f > o);
            // `>=`: on a tie the rule later in the list wins.
            if remembered && best.is_none_or(|(b, _)| f >= b) {
                best = Some((f, rule.mode));
            }
        }
        match best {
            Some((since, mode)) => RulesState {
                mode,
                since: Some(since),
            },
            None => RulesState {
                mode: self.default_mode,
                since: None,
            },
        }
    }

    /// The mode at `t`, and the first change in `(t, limit]`.
    ///
    /// Rather than replaying every firing, it jumps between the only instants
    /// at which the mode can change: the end of the current closed stretch;
    /// otherwise the next closed day, the next firing of a rule whose mode
    /// differs from the rules' current mode, and the expiry of the current
    /// firing. At each such instant the state is brought up to date, until
    /// the mode differs.
    fn scan(&self, tz: Tz, t: DateTime<Utc>, limit: DateTime<Utc>) -> (Mode, Scan) {
        let mut x = t;
        let mut m = Moment::new(tz, t);
        let mut closed = self.closed_range_on(m.date());
        // Only computed when not closed: nothing under a closed stretch matters.
        let mut state = closed.is_none().then(|| self.rules_state(tz, &m));
        let start_mode = match state {
            Some(s) => s.mode,
            None => Mode::Locked,
        };
        for _ in 0..MAX_SCAN_STEPS {
            let candidate = match (closed, state) {
                (Some(r), _) => r.last.succ_opt().map(|day| Candidate {
                    at: day_start(tz, day),
                    winner: None,
                }),
                (None, Some(s)) => self.next_candidate(tz, &m, s),
                // `state` is always computed when not closed.
                (None, None) => None,
            };
            let Some(Candidate {
                at: mut next,
                mut winner,
            }) = candidate
            else {
                return (start_mode, Scan::Quiet(limit));
            };
            if next <= x {
                // Only with exotic zone data (a local date going backwards):
                // force progress rather than loop.
                match x.checked_add_signed(TimeDelta::seconds(1)) {
                    Some(later) => next = later,
                    None => return (start_mode, Scan::Quiet(limit)),
                }
                winner = None;
            }
            if next > limit {
                return (start_mode, Scan::Quiet(limit));
            }
            x = next;
            m = Moment::new(tz, x);
            closed = self.closed_range_on(m.date());
            state = match (closed, winner, state) {
                (Some(_), _, _) => None,
                (None, Some(w), Some(prev)) => Some(self.after_firing(tz, &m, prev, w)),
                (None, _, _) => Some(self.rules_state(tz, &m)),
            };
            let mode = match state {
                Some(s) => s.mode,
                None => Mode::Locked,
            };
            if mode != start_mode {
                return (start_mode, Scan::Found(Change { at: x, mode }));
            }
        }
        (start_mode, Scan::Quiet(x))
    }

    /// Earliest instant after `m.at` at which the mode could change, when
    /// `m.at` is not on a closed day and the rules say `s`.
    fn next_candidate(&self, tz: Tz, m: &Moment, s: RulesState) -> Option<Candidate> {
        // Rules of the current mode are left out: re-setting it changes
        // nothing, except by winning a tie, which `after_firing` settles.
        let mut firing: Option<Candidate> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.mode == s.mode {
                continue;
            }
            let Some(f) = rule.at.first_after(tz, m) else {
                continue;
            };
            match firing {
                Some(c) if f > c.at => {}
                // On a tie the rule later in the list (this one) wins.
                _ => firing = Some(Candidate { at: f, winner: Some(i) }),
            }
        }
        let mut other: Option<DateTime<Utc>> = self.next_closed_after(m.date()).map(|r| day_start(tz, r.first));
        if s.mode != self.default_mode {
            let expiry = s.since.and_then(|f| f.checked_add_signed(RULE_MEMORY));
            other = match (other, expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        match (firing, other.filter(|&o| o > m.at)) {
            // A firing at the same instant as an expiry or a closed day still
            // decides the rules' mode: it is then the latest firing.
            (Some(c), Some(o)) if c.at <= o => Some(c),
            (_, Some(o)) => Some(Candidate { at: o, winner: None }),
            (c, None) => c,
        }
    }

    /// The rules' state at `m.at`, the first instant after the previous
    /// state `prev` at which a rule of another mode fires, `winner` being the
    /// last such rule firing then. Cheaper than `rules_state`: since no rule
    /// of another mode fired in between, only a rule of `prev.mode` later in
    /// the list than `winner`, firing at `m.at` too, can change the outcome.
    fn after_firing(&self, tz: Tz, m: &Moment, prev: RulesState, winner: usize) -> RulesState {
        let overridden = self.rules[winner + 1..]
            .iter()
            .any(|r| r.mode == prev.mode && r.at.latest(tz, m) == Some(m.at));
        RulesState {
            mode: if overridden { prev.mode } else { self.rules[winner].mode },
            since: Some(m.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Paris;
    use proptest::prelude::*;

    // ---- helpers ----------------------------------------------------------

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .with_timezone(&Utc)
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// An unambiguous Paris wall-clock time as an instant.
    fn paris(s: &str) -> DateTime<Utc> {
        Paris
            .from_local_datetime(&local(s))
            .single()
            .unwrap_or_else(|| panic!("{s} is not a single Paris time"))
            .with_timezone(&Utc)
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cron(s: &str) -> CronExpr {
        CronExpr::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn rule(at: &str, mode: Mode) -> Rule {
        Rule { at: cron(at), mode }
    }

    fn range(s: &str) -> DateRange {
        DateRange::parse(s).unwrap()
    }

    fn change(at: DateTime<Utc>, mode: Mode) -> Change {
        Change { at, mode }
    }

    fn french_rules() -> Vec<Rule> {
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
    fn french_holidays() -> Vec<DateRange> {
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

    fn french() -> Schedule {
        Schedule::new(Mode::Locked, french_rules(), french_holidays())
    }

    /// Every firing of `e` in `(from, to]`, through the public search.
    fn firings(e: &CronExpr, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = from;
        while let Some(f) = e.next_firing_after(tz, t).filter(|&f| f <= to) {
            out.push(f);
            t = f;
        }
        out
    }

    fn weekdays_fired(expr: &str) -> Vec<String> {
        // Week of Sunday 2026-03-01 .. Saturday 2026-03-07, in UTC (no DST).
        let e = cron(expr);
        firings(&e, Tz::UTC, utc("2026-02-28T23:59:59Z"), utc("2026-03-07T23:59:59Z"))
            .into_iter()
            .map(|f| f.format("%a").to_string())
            .collect()
    }

    // ---- Mode -------------------------------------------------------------

    #[test]
    fn modes_display_and_parse_as_lowercase_words() {
        for (mode, word) in [
            (Mode::Locked, "locked"),
            (Mode::Available, "available"),
            (Mode::On, "on"),
        ] {
            assert_eq!(mode.to_string(), word);
            assert_eq!(word.parse::<Mode>(), Ok(mode));
            assert_eq!(word.to_uppercase().parse::<Mode>(), Ok(mode));
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{word}\""));
            assert_eq!(serde_json::from_str::<Mode>(&format!("\"{word}\"")).unwrap(), mode);
        }
    }

    #[test]
    fn an_unknown_mode_is_an_error_naming_the_choices() {
        let err = "off".parse::<Mode>().unwrap_err();
        assert_eq!(err, r#"unknown mode "off": expected locked, available or on"#);
    }

    #[test]
    fn a_change_serializes_with_its_instant_and_mode() {
        let c = change(utc("2026-03-10T07:00:00Z"), Mode::Available);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"at":"2026-03-10T07:00:00Z","mode":"available"}"#
        );
    }

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

    // ---- date ranges ------------------------------------------------------

    #[test]
    fn date_ranges_parse_as_ranges_or_single_days() {
        assert_eq!(
            range("2025-12-20..2026-01-04"),
            DateRange {
                first: day("2025-12-20"),
                last: day("2026-01-04")
            }
        );
        assert_eq!(
            range(" 2026-05-15 "),
            DateRange {
                first: day("2026-05-15"),
                last: day("2026-05-15")
            }
        );
        assert_eq!(range("2026-05-15").to_string(), "2026-05-15");
        assert_eq!(range("2025-12-20..2026-01-04").to_string(), "2025-12-20..2026-01-04");
        assert!(range("2025-12-20..2026-01-04").contains(day("2026-01-01")));
        assert!(!range("2025-12-20..2026-01-04").contains(day("2026-01-05")));
    }

    #[test]
    fn bad_date_ranges_give_clear_errors() {
        assert_eq!(
            DateRange::parse("2026-01-04..2025-12-20").unwrap_err(),
            r#"date range "2026-01-04..2025-12-20" is reversed: 2025-12-20 is before 2026-01-04"#
        );
        assert_eq!(
            DateRange::parse("2026-02-30").unwrap_err(),
            r#"bad date "2026-02-30" in "2026-02-30": expected YYYY-MM-DD"#
        );
        for bad in [
            "",
            "2026-05",
            "2026-05-15..",
            "..2026-05-15",
            "15/05/2026",
            "2026-05-15...2026-05-16",
        ] {
            assert!(DateRange::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overlapping_and_adjacent_calendars_are_merged() {
        let s = Schedule::new(
            Mode::Locked,
            vec![],
            vec![
                range("2026-05-01"),
                range("2026-04-18..2026-05-03"),
                range("2026-05-04..2026-05-05"),
                range("2026-05-08"),
                range("2026-05-07"),
                range("2026-06-01"),
            ],
        );
        assert_eq!(
            s.closed_days(),
            [
                range("2026-04-18..2026-05-05"),
                range("2026-05-07..2026-05-08"),
                range("2026-06-01"),
            ]
        );
    }

    // ---- which rule wins --------------------------------------------------

    #[test]
    fn the_latest_firing_decides_the_mode() {
        let s = french();
        let cases = [
            ("2026-03-16 07:59:59", Mode::Locked), // Monday, before school (Sunday 18:00)
            ("2026-03-16 08:00", Mode::Available),
            ("2026-03-16 17:59:59", Mode::Available),
            ("2026-03-16 18:00", Mode::Locked),
            ("2026-03-17 09:00", Mode::Available), // Tuesday
            ("2026-03-17 10:30", Mode::On),
            ("2026-03-17 11:00", Mode::Available),
            ("2026-03-18 09:00", Mode::Locked), // Wednesday: no 08:00 rule
            ("2026-03-18 12:00", Mode::Locked),
            ("2026-03-20 19:00", Mode::Locked), // Friday evening
            ("2026-03-21 12:00", Mode::Locked), // Saturday
        ];
        for (t, want) in cases {
            assert_eq!(s.mode_at(Paris, paris(t)), want, "{t}");
        }
    }

    #[test]
    fn on_a_tie_the_rule_later_in_the_list_wins() {
        let a = rule("0 8 * * *", Mode::Available);
        let o = rule("0 8 * * *", Mode::On);
        let t = paris("2026-03-10 09:00");
        let s = Schedule::new(Mode::Locked, vec![a.clone(), o.clone()], vec![]);
        assert_eq!(s.mode_at(Paris, t), Mode::On);
        let s = Schedule::new(Mode::Locked, vec![o, a], vec![]);
        assert_eq!(s.mode_at(Paris, t), Mode::Available);
        // Same instant written differently (5 vs 6 fields) is still a tie.
        let s = Schedule::new(
            Mode::Locked,
            vec![rule("0 0 8 * * *", Mode::On), rule("0 8 * * 1-5", Mode::Available)],
            vec![],
        );
        assert_eq!(s.mode_at(Paris, t), Mode::Available);
        assert_eq!(s.mode_at(Paris, paris("2026-03-14 09:00")), Mode::On); // Saturday
    }

    #[test]
    fn a_tie_lost_is_not_a_change() {
        let s = Schedule::new(
            Mode::Locked,
            vec![rule("0 8 * * *", Mode::On), rule("0 8 * * Mon-Fri", Mode::Locked)],
            vec![],
        );
        // Friday 09:00 locked; Saturday 08:00 the On rule fires alone.
        assert_eq!(
            s.next_change(Paris, paris("2026-03-13 09:00")),
            Some(change(paris("2026-03-14 08:00"), Mode::On))
        );
        // Monday 08:00 both fire and Locked (later) wins: that is the change.
        assert_eq!(
            s.next_change(Paris, paris("2026-03-15 09:00")),
            Some(change(paris("2026-03-16 08:00"), Mode::Locked))
        );
        // Monday 09:00: Tuesday 08:00 On fires, loses again, ... next Saturday.
        assert_eq!(
            s.next_change(Paris, paris("2026-03-16 09:00")),
            Some(change(paris("2026-03-21 08:00"), Mode::On))
        );
    }

    #[test]
    fn the_default_mode_applies_when_nothing_fired_within_366_days() {
        let never = Schedule::new(Mode::Available, vec![], vec![]);
        assert_eq!(never.mode_at(Paris, paris("2026-03-10 10:00")), Mode::Available);
        assert_eq!(never.next_change(Paris, paris("2026-03-10 10:00")), None);

        // 29 February: fires once every four years.
        let leap = Schedule::new(Mode::Locked, vec![rule("0 8 29 2 *", Mode::On)], vec![]);
        let fired = paris("2028-02-29 08:00");
        assert_eq!(leap.mode_at(Paris, paris("2027-06-01 12:00")), Mode::Locked);
        assert_eq!(leap.mode_at(Paris, fired), Mode::On);
        let expiry = fired + TimeDelta::days(366); // 2029-03-01 08:00 CET
        assert_eq!(expiry, paris("2029-03-01 08:00"));
        assert_eq!(leap.mode_at(Paris, expiry - TimeDelta::seconds(1)), Mode::On);
        assert_eq!(leap.mode_at(Paris, expiry), Mode::Locked);
        assert_eq!(
            leap.next_change(Paris, paris("2028-06-01 12:00")),
            Some(change(expiry, Mode::Locked))
        );
        assert_eq!(
            leap.next_change(Paris, paris("2027-06-01 12:00")),
            Some(change(fired, Mode::On))
        );
        assert_eq!(
            leap.changes(Paris, paris("2027-01-01 00:00"), paris("2030-01-01 00:00")),
            [change(fired, Mode::On), change(expiry, Mode::Locked)]
        );
    }

    #[test]
    fn a_yearly_rule_is_remembered_until_it_fires_again() {
        let s = Schedule::new(Mode::Locked, vec![rule("0 0 1 9 *", Mode::Available)], vec![]);
        assert_eq!(s.mode_at(Paris, paris("2026-08-31 12:00")), Mode::Available);
        assert_eq!(s.next_change(Paris, paris("2026-08-31 12:00")), None);
    }

    // ---- closed days ------------------------------------------------------

    #[test]
    fn closed_days_are_locked_from_midnight_to_midnight() {
        let s = Schedule::new(
            Mode::Locked,
            vec![rule("0 0 * * *", Mode::On)],
            vec![range("2026-05-08")],
        );
        assert_eq!(s.mode_at(Paris, paris("2026-05-07 23:59:59")), Mode::On);
        assert!(!s.is_closed_day(Paris, paris("2026-05-07 23:59:59")));
        assert_eq!(s.mode_at(Paris, paris("2026-05-08 00:00")), Mode::Locked);
        assert!(s.is_closed_day(Paris, paris("2026-05-08 00:00")));
        assert_eq!(s.mode_at(Paris, paris("2026-05-08 12:00")), Mode::Locked);
        assert_eq!(s.mode_at(Paris, paris("2026-05-08 23:59:59")), Mode::Locked);
        assert_eq!(s.mode_at(Paris, paris("2026-05-09 00:00")), Mode::On);
        assert!(!s.is_closed_day(Paris, paris("2026-05-09 00:00")));
        assert_eq!(
            s.closed_range_at(Paris, paris("2026-05-08 09:00")),
            Some(range("2026-05-08"))
        );
        assert_eq!(
            s.changes(Paris, paris("2026-05-07 12:00"), paris("2026-05-10 12:00")),
            [
                change(paris("2026-05-08 00:00"), Mode::Locked),
                change(paris("2026-05-09 00:00"), Mode::On),
            ]
        );
    }

    #[test]
    fn closed_days_follow_the_school_time_zone() {
        let s = Schedule::new(Mode::Available, vec![], vec![range("2026-05-08")]);
        // 22:30 UTC on the 7th is 00:30 on the 8th in Paris, not in New York.
        let t = utc("2026-05-07T22:30:00Z");
        assert!(s.is_closed_day(Paris, t));
        assert!(!s.is_closed_day(chrono_tz::America::New_York, t));
        assert_eq!(s.mode_at(chrono_tz::America::New_York, t), Mode::Available);
    }

    #[test]
    fn a_rule_that_fired_during_closed_days_counts_afterwards() {
        let s = Schedule::new(
            Mode::Locked,
            vec![rule("0 8 * * *", Mode::Available)],
            vec![range("2026-06-10")],
        );
        assert_eq!(s.mode_at(Paris, paris("2026-06-10 09:00")), Mode::Locked);
        // Wednesday 08:00 fired while closed; Thursday 00:00 it decides.
        assert_eq!(s.mode_at(Paris, paris("2026-06-11 00:00")), Mode::Available);
        assert_eq!(
            s.changes(Paris, paris("2026-06-09 12:00"), paris("2026-06-11 12:00")),
            [
                change(paris("2026-06-10 00:00"), Mode::Locked),
                change(paris("2026-06-11 00:00"), Mode::Available),
            ]
        );
        // A one-off rule on a closed day still counts the next day.
        let once = Schedule::new(
            Mode::Locked,
            vec![rule("0 10 15 6 *", Mode::On)],
            vec![range("2026-06-15")],
        );
        assert_eq!(
            once.next_change(Paris, paris("2026-06-15 12:00")),
            Some(change(paris("2026-06-16 00:00"), Mode::On))
        );
    }

    #[test]
    fn a_closed_day_starting_at_a_nonexistent_midnight_starts_when_the_gap_ends() {
        // Beirut springs forward at midnight: 2026-03-29 00:00 does not exist,
        // the day starts at 01:00 EEST = 22:00 UTC.
        let beirut = chrono_tz::Asia::Beirut;
        let s = Schedule::new(
            Mode::Locked,
            vec![rule("0 12 * * *", Mode::Available)],
            vec![range("2026-03-29")],
        );
        assert_eq!(s.mode_at(beirut, utc("2026-03-28T21:59:59Z")), Mode::Available);
        assert_eq!(s.mode_at(beirut, utc("2026-03-28T22:00:00Z")), Mode::Locked);
        assert_eq!(
            s.next_change(beirut, utc("2026-03-28T12:00:00Z")),
            Some(change(utc("2026-03-28T22:00:00Z"), Mode::Locked))
        );
        // Havana falls back at 01:00 to 00:00: the day starts at the first 00:00.
        let havana = chrono_tz::America::Havana;
        let s = Schedule::new(Mode::Available, vec![], vec![range("2026-11-01")]);
        assert_eq!(
            s.next_change(havana, utc("2026-10-31T12:00:00Z")),
            Some(change(utc("2026-11-01T04:00:00Z"), Mode::Locked))
        );
    }

    // ---- next change ------------------------------------------------------

    #[test]
    fn next_change_skips_same_mode_re_firings() {
        let s = french();
        // Tuesday 18:30: Wednesday 11:30 and 18:00 re-lock; Thursday 08:00 unlocks.
        assert_eq!(
            s.next_change(Paris, paris("2026-03-17 18:30")),
            Some(change(paris("2026-03-19 08:00"), Mode::Available))
        );
        // Tuesday 09:00 available: 10:00 on.
        assert_eq!(
            s.next_change(Paris, paris("2026-03-17 09:00")),
            Some(change(paris("2026-03-17 10:00"), Mode::On))
        );
        // Tuesday 10:30 on: 11:00 available.
        assert_eq!(
            s.next_change(Paris, paris("2026-03-17 10:30")),
            Some(change(paris("2026-03-17 11:00"), Mode::Available))
        );
        // Exactly at a change, the next one.
        assert_eq!(
            s.next_change(Paris, paris("2026-03-17 11:00")),
            Some(change(paris("2026-03-17 18:00"), Mode::Locked))
        );
    }

    #[test]
    fn a_friday_evening_lock_lasts_until_monday_morning() {
        let s = french();
        assert_eq!(
            s.next_change(Paris, paris("2026-03-20 19:00")),
            Some(change(paris("2026-03-23 08:00"), Mode::Available))
        );
        assert!(!s.is_closed_day(Paris, paris("2026-03-20 19:00")));
    }

    #[test]
    fn during_holidays_the_lock_lasts_until_the_first_school_morning_after_them() {
        let s = french();
        let t = paris("2025-12-23 10:00");
        assert_eq!(s.mode_at(Paris, t), Mode::Locked);
        assert!(s.is_closed_day(Paris, t));
        // Holidays end Sunday 4 January; Monday 5 January 08:00.
        assert_eq!(
            s.next_change(Paris, t),
            Some(change(paris("2026-01-05 08:00"), Mode::Available))
        );
        // From the Friday before them: 18:00 locks, then the holidays add nothing.
        assert_eq!(
            s.next_change(Paris, paris("2025-12-19 18:00")),
            Some(change(paris("2026-01-05 08:00"), Mode::Available))
        );
        // Ascension bridge Thursday-Sunday: back on Monday 18 May.
        assert_eq!(
            s.next_change(Paris, paris("2026-05-13 12:00")),
            Some(change(paris("2026-05-18 08:00"), Mode::Available))
        );
        // Whit Monday closed: Tuesday 08:00.
        assert_eq!(
            s.next_change(Paris, paris("2026-05-22 19:00")),
            Some(change(paris("2026-05-26 08:00"), Mode::Available))
        );
    }

    #[test]
    fn a_closed_day_is_a_change_only_from_an_unlocked_mode() {
        let s = Schedule::new(
            Mode::Locked,
            vec![rule("0 8 * * *", Mode::Available)],
            vec![range("2026-06-10..2026-06-11")],
        );
        assert_eq!(
            s.next_change(Paris, paris("2026-06-09 12:00")),
            Some(change(paris("2026-06-10 00:00"), Mode::Locked))
        );
        assert_eq!(
            s.next_change(Paris, paris("2026-06-10 00:00")),
            Some(change(paris("2026-06-12 00:00"), Mode::Available))
        );
    }

    #[test]
    fn next_change_is_none_when_nothing_can_change() {
        let all_locked = Schedule::new(
            Mode::Locked,
            vec![rule("0 8 * * *", Mode::Locked), rule("0 18 * * *", Mode::Locked)],
            french_holidays(),
        );
        assert_eq!(all_locked.next_change(Paris, paris("2026-03-10 10:00")), None);
        assert!(
            all_locked
                .changes(Paris, paris("2026-01-01 00:00"), paris("2030-01-01 00:00"))
                .is_empty()
        );
    }

    #[test]
    fn dense_rules_cannot_hang_the_search() {
        // The Locked rule fires every second and always loses the tie.
        let s = Schedule::new(
            Mode::Locked,
            vec![rule("* * * * * *", Mode::Locked), rule("* * * * * *", Mode::Available)],
            vec![],
        );
        let t = paris("2026-03-10 10:00");
        assert_eq!(s.mode_at(Paris, t), Mode::Available);
        let started = std::time::Instant::now();
        assert_eq!(s.next_change(Paris, t), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));

        // Every-second rule against a daily one: both fire at 18:00:00.
        let s = Schedule::new(
            Mode::Locked,
            vec![rule("* * * * * *", Mode::Available), rule("0 18 * * *", Mode::Locked)],
            vec![],
        );
        assert_eq!(
            s.changes(Paris, paris("2026-03-10 17:59:58"), paris("2026-03-10 18:00:05")),
            [
                change(paris("2026-03-10 18:00:00"), Mode::Locked),
                change(paris("2026-03-10 18:00:01"), Mode::Available),
            ]
        );
    }

    #[test]
    fn changes_over_a_week_list_every_transition_in_order() {
        let s = french();
        let from = paris("2026-03-16 08:00"); // (from, to]: this change is excluded
        let to = paris("2026-03-23 08:00"); // and this one included
        let want = [
            ("2026-03-16 18:00", Mode::Locked),
            ("2026-03-17 08:00", Mode::Available),
            ("2026-03-17 10:00", Mode::On),
            ("2026-03-17 11:00", Mode::Available),
            ("2026-03-17 18:00", Mode::Locked),
            ("2026-03-19 08:00", Mode::Available),
            ("2026-03-19 18:00", Mode::Locked),
            ("2026-03-20 08:00", Mode::Available),
            ("2026-03-20 18:00", Mode::Locked),
            ("2026-03-23 08:00", Mode::Available),
        ]
        .map(|(t, m)| change(paris(t), m));
        assert_eq!(s.changes(Paris, from, to), want);
        assert!(s.changes(Paris, to, to).is_empty());
        assert!(s.changes(Paris, to, from).is_empty());
    }

    #[test]
    fn changes_agree_with_sampling_across_dst_and_holidays() {
        let s = french();
        // A window spanning the spring DST change, holidays, and a summer week.
        for (from, days) in [
            ("2026-03-25 00:00", 9),
            ("2026-04-13 00:00", 8),
            ("2026-10-21 00:00", 8),
        ] {
            let from = paris(from);
            let to = from + TimeDelta::days(days);
            let listed = s.changes(Paris, from, to);
            let mut sampled = Vec::new();
            let mut prev = s.mode_at(Paris, from);
            let mut t = from;
            while t < to {
                t += TimeDelta::minutes(5); // every rule fires on a multiple of 5 min
                let m = s.mode_at(Paris, t);
                if m != prev {
                    sampled.push(change(t, m));
                    prev = m;
                }
            }
            assert_eq!(listed, sampled, "from {from}");
        }
    }

    // ---- daylight saving time (Europe/Paris) -------------------------------

    /// A rule at 01:00 sets `before`, a rule at 02:30 sets `after`.
    fn night(before: Mode, after: Mode) -> Schedule {
        Schedule::new(
            Mode::Locked,
            vec![rule("0 1 * * *", before), rule("30 2 * * *", after)],
            vec![],
        )
    }

    #[test]
    fn a_rule_in_the_spring_gap_fires_when_the_gap_ends() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        for (before, after) in [(Mode::Available, Mode::Locked), (Mode::Locked, Mode::Available)] {
            let s = night(before, after);
            let gap_end = utc("2026-03-29T01:00:00Z");
            assert_eq!(s.mode_at(Paris, utc("2026-03-29T00:59:59Z")), before);
            assert_eq!(s.mode_at(Paris, gap_end), after);
            assert_eq!(
                s.next_change(Paris, utc("2026-03-29T00:30:00Z")),
                Some(change(gap_end, after))
            );
            assert_eq!(
                s.changes(Paris, utc("2026-03-29T00:30:00Z"), utc("2026-03-29T02:00:00Z")),
                [change(gap_end, after)]
            );
            // The day before and the day after fire at the written time.
            assert_eq!(
                s.next_change(Paris, utc("2026-03-28T00:30:00Z")),
                Some(change(utc("2026-03-28T01:30:00Z"), after))
            );
            assert_eq!(
                s.next_change(Paris, utc("2026-03-29T23:30:00Z")),
                Some(change(utc("2026-03-30T00:30:00Z"), after))
            );
        }
        let e = cron("30 2 * * *");
        assert_eq!(
            e.next_firing_after(Paris, utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            e.last_firing_at_or_before(Paris, utc("2026-03-29T05:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn a_repeated_time_in_autumn_fires_once_at_its_first_occurrence() {
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens at
        // 00:30 UTC and again at 01:30 UTC.
        for (before, after) in [(Mode::Available, Mode::Locked), (Mode::Locked, Mode::Available)] {
            let s = night(before, after);
            let first = utc("2026-10-25T00:30:00Z");
            assert_eq!(s.mode_at(Paris, utc("2026-10-25T00:29:59Z")), before);
            assert_eq!(s.mode_at(Paris, first), after);
            assert_eq!(s.mode_at(Paris, utc("2026-10-25T01:45:00Z")), after);
            assert_eq!(
                s.next_change(Paris, utc("2026-10-25T00:00:00Z")),
                Some(change(first, after))
            );
            assert_eq!(
                s.changes(Paris, utc("2026-10-24T23:30:00Z"), utc("2026-10-25T03:00:00Z")),
                [change(first, after)]
            );
            // Second pass of 02:30: nothing new until 01:00 CET the next night.
            assert_eq!(
                s.next_change(Paris, utc("2026-10-25T01:30:00Z")),
                Some(change(utc("2026-10-26T00:00:00Z"), before))
            );
        }
        // With a 02:45 rule in between, a second 02:30 firing would show.
        let s = Schedule::new(
            Mode::Locked,
            vec![
                rule("0 1 * * *", Mode::Available),
                rule("30 2 * * *", Mode::Locked),
                rule("45 2 * * *", Mode::Available),
            ],
            vec![],
        );
        assert_eq!(
            s.changes(Paris, utc("2026-10-24T23:30:00Z"), utc("2026-10-25T03:00:00Z")),
            [
                change(utc("2026-10-25T00:30:00Z"), Mode::Locked),
                change(utc("2026-10-25T00:45:00Z"), Mode::Available),
            ]
        );
        assert_eq!(s.mode_at(Paris, utc("2026-10-25T01:35:00Z")), Mode::Available);
        assert_eq!(
            cron("30 2 * * *").next_firing_after(Paris, utc("2026-10-25T00:30:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn inside_the_second_pass_the_first_pass_firings_still_count() {
        let s = Schedule::new(
            Mode::Locked,
            vec![
                rule("30 2 * * *", Mode::Locked),
                rule("45 2 * * *", Mode::Available),
                rule("0 3 * * *", Mode::Locked),
            ],
            vec![],
        );
        // 01:40 UTC is 02:40 CET, the second pass: 02:45 already fired at
        // 00:45 UTC, and 03:00 CET is 02:00 UTC.
        let t = utc("2026-10-25T01:40:00Z");
        assert_eq!(s.mode_at(Paris, t), Mode::Available);
        assert_eq!(
            s.next_change(Paris, t),
            Some(change(utc("2026-10-25T02:00:00Z"), Mode::Locked))
        );
        assert_eq!(
            cron("45 2 * * *").last_firing_at_or_before(Paris, t),
            Some(utc("2026-10-25T00:45:00Z"))
        );
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let s = french();
        for t in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            utc("1900-01-01T00:00:00Z"),
            utc("2100-12-31T23:59:59Z"),
            utc("2200-01-01T00:00:00Z"),
        ] {
            let _ = s.mode_at(Paris, t);
            let _ = s.next_change(Paris, t);
            let _ = s.is_closed_day(Paris, t);
        }
        assert_eq!(s.mode_at(Paris, utc("2200-06-01T12:00:00Z")), Mode::Locked);
    }

    // ---- properties -------------------------------------------------------

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_mode_is_constant_until_the_next_change(
            secs in utc("2025-01-01T00:00:00Z").timestamp()..utc("2028-01-01T00:00:00Z").timestamp(),
            nanos in 0u32..1_000_000_000,
        ) {
            let s = french();
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let m = s.mode_at(Paris, t);
            let c = s.next_change(Paris, t).expect("the French schedule always changes");
            prop_assert!(c.at > t);
            prop_assert_ne!(c.mode, m);
            prop_assert_eq!(s.mode_at(Paris, c.at), c.mode);
            let span = c.at - t;
            for k in 1..8 {
                let probe = t + span * k / 8;
                prop_assert_eq!(s.mode_at(Paris, probe), m, "at {}", probe);
            }
            prop_assert_eq!(s.mode_at(Paris, c.at - TimeDelta::nanoseconds(1)), m);
            prop_assert_eq!(s.mode_and_next_change(Paris, t), (m, Some(c)));
        }
    }

    /// Brute-force model of a schedule over a window: every firing found by
    /// testing each local minute of the window against each rule, mapped to an
    /// instant by probing the time zone minute by minute. Valid for instants
    /// at least 8 days into the window with rules that fire at least weekly.
    struct Oracle {
        /// Sorted by (instant, rule index): the last one ≤ t wins.
        firings: Vec<(DateTime<Utc>, usize, Mode)>,
        closed: Vec<DateRange>,
        tz: Tz,
    }

    impl Oracle {
        fn new(rules: &[Rule], closed: &[DateRange], tz: Tz, from: NaiveDateTime, to: NaiveDateTime) -> Oracle {
            let mut firings = Vec::new();
            let mut n = from;
            while n <= to {
                for (i, r) in rules.iter().enumerate() {
                    if r.at.matches(n) {
                        let at = (0..=180)
                            .find_map(|k| tz.from_local_datetime(&(n + TimeDelta::minutes(k))).earliest())
                            .unwrap()
                            .with_timezone(&Utc);
                        firings.push((at, i, r.mode));
                    }
                }
                n += TimeDelta::minutes(1);
            }
            firings.sort_by_key(|&(at, i, _)| (at, i));
            Oracle {
                firings,
                closed: closed.to_vec(),
                tz,
            }
        }

        fn mode(&self, t: DateTime<Utc>) -> Mode {
            let day = t.with_timezone(&self.tz).date_naive();
            if self.closed.iter().any(|r| r.contains(day)) {
                return Mode::Locked;
            }
            let k = self.firings.partition_point(|&(at, _, _)| at <= t);
            k.checked_sub(1).map_or(Mode::Locked, |k| self.firings[k].2)
        }
    }

    const POOL: [&str; 10] = [
        "0 8 * * 1-5",
        "30 11 * * 3",
        "0 18 * * *",
        "0 10 * * Tue",
        "*/20 9-10 * * *",
        "30 2 * * 0",
        "0 3 * * 7",
        "45 1 * * Sun",
        "0 8 1,15 * Mon",
        "0 0 * * 6",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn mode_and_next_change_agree_with_brute_force(
            picks in proptest::collection::vec((0..POOL.len(), 0..3usize), 1..6),
            holidays in proptest::collection::vec((0i64..40, 0i64..4), 0..3),
            window in 0..3usize,
            offset_min in 0i64..(14 * 24 * 60),
        ) {
            let modes = Mode::ALL;
            let rules: Vec<Rule> = picks.iter().map(|&(e, m)| rule(POOL[e], modes[m])).collect();
            // Windows around both 2026 Paris DST changes and an ordinary one.
            let start = [paris("2026-03-22 00:00"), paris("2026-10-18 00:00"), paris("2026-06-07 00:00")][window];
            let base = start.with_timezone(&Paris).date_naive();
            let closed: Vec<DateRange> = holidays
                .iter()
                .map(|&(from, len)| DateRange {
                    first: base + TimeDelta::days(from - 10),
                    last: base + TimeDelta::days(from - 10 + len),
                })
                .collect();
            let s = Schedule::new(Mode::Locked, rules.clone(), closed.clone());
            let from = start.with_timezone(&Paris).naive_local();
            let oracle = Oracle::new(&rules, &closed, Paris, from - TimeDelta::days(8), from + TimeDelta::days(36));
            let valid_until = start + TimeDelta::days(35);
            let t = start + TimeDelta::minutes(offset_min) + TimeDelta::seconds(offset_min % 61);
            let m = s.mode_at(Paris, t);
            prop_assert_eq!(m, oracle.mode(t));
            let c = s.next_change(Paris, t);
            let quiet_until = c.map_or(valid_until, |c| c.at.min(valid_until));
            if let Some(c) = c.filter(|c| c.at <= valid_until) {
                prop_assert_eq!(oracle.mode(c.at), c.mode);
            }
            // Nothing changes before: every firing up to then keeps the mode.
            for &(at, _, _) in oracle.firings.iter().filter(|f| f.0 > t && f.0 < quiet_until) {
                prop_assert_eq!(oracle.mode(at), m, "at {}", at);
            }
            let mut probe = t;
            while probe < quiet_until {
                prop_assert_eq!(oracle.mode(probe), m, "at {}", probe);
                probe += TimeDelta::hours(1);
            }
            prop_assert_eq!(oracle.mode(quiet_until - TimeDelta::seconds(1)), m);
        }
    }
}
