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
//!
//! # Parts
//!
//! - `mode`: the [`Mode`] values;
//! - `cron_expr`: parsing cron expressions and finding their firings;
//! - `closed_days`: closed-day ranges ([`DateRange`]) and their merging;
//! - [`calendar`]: a named calendar's closed days with their origins, read
//!   from an iCalendar file ([`ics`]), computed public holidays
//!   ([`public_holidays`]) and local dates;
//! - `wall_clock`: local wall-clock times ↔ instants across DST changes;
//! - `engine`: the [`Schedule`], which combines them.

pub mod calendar;
mod closed_days;
mod cron_expr;
mod engine;
pub mod ics;
mod mode;
pub mod public_holidays;
mod wall_clock;

#[cfg(test)]
mod test_support;

pub use calendar::{Calendar, ClosedDays, Origin};
pub use closed_days::DateRange;
pub use cron_expr::CronExpr;
pub use engine::{Change, HORIZON, MAX_SCAN_STEPS, RULE_MEMORY, Rule, Schedule};
pub use mode::Mode;
