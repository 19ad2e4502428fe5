//! The schedule engine: [`Schedule`] answers which [`Mode`] a classroom is in
//! at an instant and when that mode next changes, from its [`Rule`]s and
//! closed days (semantics in the module documentation of [`crate::schedule`]).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use super::closed_days::{DateRange, day_start, merge_ranges};
use super::cron_expr::CronExpr;
use super::mode::Mode;
use super::wall_clock::{Moment, local_time};

/// How long a rule's firing keeps deciding the mode when no later rule fires.
pub const RULE_MEMORY: TimeDelta = TimeDelta::days(366);

/// How far ahead [`Schedule::next_change`] looks before answering `None`.
pub const HORIZON: TimeDelta = TimeDelta::days(2 * 366);

/// Upper bound on the candidate instants one change search examines, so that
/// no schedule, however dense its rules, can make a search hang.
pub const MAX_SCAN_STEPS: usize = 10_000;

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
    use super::super::test_support::*;
    use super::*;
    use chrono::{NaiveDateTime, TimeZone};
    use chrono_tz::Europe::Paris;
    use proptest::prelude::*;

    #[test]
    fn a_change_serializes_with_its_instant_and_mode() {
        let c = change(utc("2026-03-10T07:00:00Z"), Mode::Available);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"at":"2026-03-10T07:00:00Z","mode":"available"}"#
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

    /// Issue 11 item 3: a six-field rule inside the spring gap fires at
    /// 03:00:00 exactly, not a fraction of a second later, so that a 03:00
    /// rule listed after it wins the tie and the classroom ends locked.
    #[test]
    fn issue_11_a_six_field_rule_in_the_spring_gap_ties_with_three_oclock() {
        let gap_end = utc("2026-03-29T01:00:00Z");
        for expr in [
            "15 30 2 * * *",
            "0 0 2 * * *",
            "59 59 2 * * *",
            "* 30 2 * * *",
            "0 */7 2 * * *",
        ] {
            assert_eq!(
                cron(expr).next_firing_after(Paris, utc("2026-03-28T12:00:00Z")),
                Some(gap_end),
                "{expr}"
            );
            assert_eq!(
                cron(expr).last_firing_at_or_before(Paris, utc("2026-03-29T09:00:00Z")),
                Some(gap_end),
                "{expr}"
            );
        }
        let lock_last = Schedule::new(
            Mode::Locked,
            vec![rule("15 30 2 * * *", Mode::On), rule("0 0 3 * * *", Mode::Locked)],
            vec![],
        );
        assert_eq!(lock_last.mode_at(Paris, gap_end), Mode::Locked);
        assert_eq!(lock_last.mode_at(Paris, utc("2026-03-29T10:00:00Z")), Mode::Locked);
        assert_eq!(
            lock_last.next_change(Paris, utc("2026-03-28T23:00:00Z")),
            Some(change(utc("2026-03-30T00:30:15Z"), Mode::On)),
            "no change in the night of the gap: the 03:00 lock wins the tie"
        );
        // In the other order the gap rule wins the tie, as documented.
        let on_last = Schedule::new(
            Mode::Locked,
            vec![rule("0 0 3 * * *", Mode::Locked), rule("15 30 2 * * *", Mode::On)],
            vec![],
        );
        assert_eq!(on_last.mode_at(Paris, gap_end), Mode::On);
        assert_eq!(
            on_last.next_change(Paris, utc("2026-03-28T23:00:00Z")),
            Some(change(gap_end, Mode::On))
        );
        // Minute granularity in the six-field form behaves as the five-field one.
        for (gap_rule, lock_rule) in [("0 30 2 * * *", "0 0 3 * * *"), ("30 2 * * *", "0 3 * * *")] {
            let s = Schedule::new(
                Mode::Locked,
                vec![rule(gap_rule, Mode::On), rule(lock_rule, Mode::Locked)],
                vec![],
            );
            assert_eq!(s.mode_at(Paris, gap_end), Mode::Locked, "{gap_rule}");
            assert_eq!(
                s.changes(Paris, utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z")),
                [],
                "{gap_rule}"
            );
        }
    }

    /// Issue 11 item 3, autumn: a six-field rule in the repeated hour fires
    /// once, at the second it names in the first pass, at second and minute
    /// granularity.
    #[test]
    fn issue_11_a_six_field_rule_in_the_repeated_hour_fires_once_at_its_second() {
        // 2026-10-25: 02:30:15 CEST is 00:30:15 UTC; 02:30:15 CET (01:30:15 UTC) does not fire.
        let e = cron("15 30 2 * * *");
        assert_eq!(
            firings(&e, Paris, utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z")),
            [utc("2026-10-25T00:30:15Z"), utc("2026-10-26T01:30:15Z")]
        );
        assert_eq!(
            e.last_firing_at_or_before(Paris, utc("2026-10-25T01:30:20Z")),
            Some(utc("2026-10-25T00:30:15Z"))
        );
        let s = Schedule::new(
            Mode::Locked,
            vec![
                rule("0 0 1 * * *", Mode::Available),
                rule("15 30 2 * * *", Mode::On),
                rule("45 30 2 * * *", Mode::Locked),
            ],
            vec![],
        );
        assert_eq!(
            s.changes(Paris, utc("2026-10-24T22:00:00Z"), utc("2026-10-25T03:00:00Z")),
            [
                change(utc("2026-10-24T23:00:00Z"), Mode::Available),
                change(utc("2026-10-25T00:30:15Z"), Mode::On),
                change(utc("2026-10-25T00:30:45Z"), Mode::Locked),
            ]
        );
        // Minute granularity, six fields: 02:00:00 is repeated, fires once.
        let m = cron("0 0 2 * * *");
        assert_eq!(
            firings(&m, Paris, utc("2026-10-24T12:00:00Z"), utc("2026-10-25T12:00:00Z")),
            [utc("2026-10-25T00:00:00Z")]
        );
        // The spring change at minute granularity, six fields: 01:59:59 and
        // 03:00:00 are one second apart in real time.
        let edge = Schedule::new(
            Mode::Locked,
            vec![rule("59 59 1 * * *", Mode::On), rule("0 0 3 * * *", Mode::Locked)],
            vec![],
        );
        assert_eq!(
            edge.changes(Paris, utc("2026-03-28T23:00:00Z"), utc("2026-03-29T02:00:00Z")),
            [
                change(utc("2026-03-29T00:59:59Z"), Mode::On),
                change(utc("2026-03-29T01:00:00Z"), Mode::Locked),
            ]
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
