//! Local wall-clock time ↔ instants: how a cron firing or a day written in
//! the school's local time becomes an instant, across DST changes (see the
//! module documentation of [`crate::schedule`]). Used by the cron searches
//! and by the engine.

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, Offset, SubsecRound, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;

/// The `cron` crate only knows the years 1970-2100, and its arithmetic can
/// overflow at chrono's extreme dates: outside this window nothing fires.
fn cron_can_query(local: NaiveDateTime) -> bool {
    (1969..=2101).contains(&local.year())
}

/// Maps a local wall-clock time to the instant a firing at that time happens:
/// single → itself; repeated (DST fall-back) → its first occurrence;
/// nonexistent (DST spring-forward gap) → the instant the gap ends.
/// Non-decreasing in `local`, which the searches below rely on.
pub(super) fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
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
///
/// The bisection steps in whole seconds from a whole second, so the answer
/// is the first existing whole second: exactly the end of the gap. Halving
/// a span in nanoseconds instead (issue 11 item 3) answered 03:00:00.0586
/// for a 02:30:15 firing, which then lost its tie with a 03:00:00 rule.
fn gap_end(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    const PROBE: TimeDelta = TimeDelta::minutes(15);
    // 2 days: longer than any gap in the tz database (Samoa skipped 24 h).
    const MAX_PROBES: usize = 2 * 24 * 4;
    // Still inside the gap: the gap starts on a whole second.
    let mut lo = local.trunc_subsecs(0);
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
        let mid = lo + TimeDelta::seconds((hi - lo).num_seconds() / 2);
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
pub(super) fn local_time(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    let utc = t.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
        .unwrap_or(utc)
}

/// An instant with the local wall-clock times the cron searches start from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Moment {
    pub(super) at: DateTime<Utc>,
    /// Local wall-clock time of `at`, truncated to the second (firings fall on
    /// whole seconds, so a firing is ≤ `at` iff it is ≤ the truncated instant).
    pub(super) local: NaiveDateTime,
    /// Latest wall-clock time whose firing can map to an instant ≤ `at`.
    /// Equal to `local` except during the second pass of a repeated hour, when
    /// the rest of the repeated hour already fired on its first pass.
    pub(super) back_from: NaiveDateTime,
}

impl Moment {
    pub(super) fn new(tz: Tz, at: DateTime<Utc>) -> Moment {
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

    pub(super) fn date(&self) -> NaiveDate {
        self.local.date()
    }
}

/// Latest firing of `s` at or before `m.at`.
pub(super) fn latest_in(s: &cron::Schedule, tz: Tz, m: &Moment) -> Option<DateTime<Utc>> {
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
pub(super) fn first_in(s: &cron::Schedule, tz: Tz, m: &Moment) -> Option<DateTime<Utc>> {
    if !cron_can_query(m.local) {
        return None;
    }
    // Firings at wall-clock times ≤ `local` all map to ≤ `at`; the skip below
    // only triggers during the second pass of a repeated hour.
    s.after(&m.local.and_utc())
        .map(|f| resolve_local(tz, f.naive_utc()))
        .find(|&at| at > m.at)
}
