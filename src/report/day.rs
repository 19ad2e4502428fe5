//! One classroom's day from its history: a sweep over the instants where
//! anything changed (an access point seen on, off or unknown; the desired
//! state and its reason; borne starting or stopping), integrating each
//! stretch into the day's figures. Pure: the inputs are plain lists.

use chrono::{DateTime, Utc};

use super::counts::{EndedBy, Refused};
use crate::domain::ObservedWifi;
use crate::policy::{Reason, Wifi};
use crate::schedule::Mode;

/// What the planner wanted for a classroom from an instant on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesiredState {
    /// The schedule's mode.
    pub mode: Mode,
    /// The desired Wi-Fi.
    pub wifi: Wifi,
    /// Why.
    pub reason: Reason,
}

/// Everything known about one classroom around one day.
#[derive(Debug, Clone, Default)]
pub struct DayInputs {
    /// Per access point, its observed transitions in time order, starting
    /// with the last one at or before the window's start if there is one.
    pub aps: Vec<Vec<(DateTime<Utc>, ObservedWifi)>>,
    /// Desired-state transitions in time order, from far enough back to
    /// see where a session running at the window's start began.
    pub desired: Vec<(DateTime<Utc>, DesiredState)>,
    /// When borne was running: `[start, end)` stretches in time order.
    pub runs: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// `session.end` audit rows: when, and the reason (`expired`, `teacher`…).
    pub session_ends: Vec<(DateTime<Utc>, String)>,
    /// Refused teacher requests: when, and the refusal code.
    pub refused: Vec<(DateTime<Utc>, String)>,
}

/// A classroom's figures for one day (or any window). Durations in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayFigures {
    /// Some access point observed on.
    pub on: i64,
    /// Not known (no access point on, and one unreachable or unread, or
    /// borne not running).
    pub unknown: i64,
    /// On while a teacher session wanted it.
    pub on_teacher: i64,
    /// On while the schedule's mode `on` wanted it.
    pub on_schedule: i64,
    /// On while an override wanted it.
    pub on_override: i64,
    /// On while the schedule said `locked`.
    pub on_outside: i64,
    /// Teacher sessions ended in the window: their lengths in seconds.
    pub sessions: Vec<i64>,
    /// How they ended (`session.end` reasons).
    pub ended_by: EndedBy,
    /// Overrides that began in the window (a change of the forced state
    /// counts as a new one).
    pub overrides: u32,
    /// Time under an override, on or off.
    pub override_seconds: i64,
    /// Refused teacher requests by code.
    pub refused: Refused,
}

impl DayFigures {
    /// Adds another window's figures (days into a week, classrooms into a school).
    pub fn add(&mut self, o: &DayFigures) {
        self.on += o.on;
        self.unknown += o.unknown;
        self.on_teacher += o.on_teacher;
        self.on_schedule += o.on_schedule;
        self.on_override += o.on_override;
        self.on_outside += o.on_outside;
        self.sessions.extend_from_slice(&o.sessions);
        self.ended_by.merge(&o.ended_by);
        self.overrides += o.overrides;
        self.override_seconds += o.override_seconds;
        self.refused.merge(&o.refused);
    }
}

fn state_at<T: Copy>(list: &[(DateTime<Utc>, T)], t: DateTime<Utc>) -> Option<T> {
    // Last entry at or before t.
    let i = list.partition_point(|(at, _)| *at <= t);
    i.checked_sub(1).map(|i| list[i].1)
}

fn running_at(runs: &[(DateTime<Utc>, DateTime<Utc>)], t: DateTime<Utc>) -> bool {
    runs.iter().any(|(s, e)| *s <= t && t < *e)
}

fn is_session(d: Option<DesiredState>) -> bool {
    d.is_some_and(|d| d.reason == Reason::Teacher && d.wifi == Wifi::On)
}

fn override_of(d: Option<DesiredState>) -> Option<Wifi> {
    d.filter(|d| d.reason == Reason::Override).map(|d| d.wifi)
}

/// The figures of `[from, to)`.
pub fn figures(inputs: &DayInputs, from: DateTime<Utc>, to: DateTime<Utc>) -> DayFigures {
    let mut f = DayFigures::default();
    if to <= from {
        return f;
    }
    // Every instant where something may change, inside the window.
    let mut cuts: Vec<DateTime<Utc>> = vec![from, to];
    let inside = |t: DateTime<Utc>| from < t && t < to;
    for ap in &inputs.aps {
        cuts.extend(ap.iter().map(|(t, _)| *t).filter(|t| inside(*t)));
    }
    cuts.extend(inputs.desired.iter().map(|(t, _)| *t).filter(|t| inside(*t)));
    for (s, e) in &inputs.runs {
        cuts.extend([*s, *e].into_iter().filter(|t| inside(*t)));
    }
    cuts.sort_unstable();
    cuts.dedup();
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let secs = (b - a).num_milliseconds();
        let desired = state_at(&inputs.desired, a);
        if override_of(desired).is_some() {
            f.override_seconds += secs;
        }
        if !running_at(&inputs.runs, a) {
            f.unknown += secs;
            continue;
        }
        let mut any_on = false;
        let mut any_unknown = inputs.aps.is_empty();
        for ap in &inputs.aps {
            match state_at(ap, a) {
                Some(ObservedWifi::On) => any_on = true,
                Some(ObservedWifi::Off) => {}
                Some(ObservedWifi::Unknown) | None => any_unknown = true,
            }
        }
        if any_on {
            f.on += secs;
            if let Some(d) = desired {
                if d.wifi == Wifi::On {
                    match d.reason {
                        Reason::Teacher => f.on_teacher += secs,
                        Reason::Schedule => f.on_schedule += secs,
                        Reason::Override => f.on_override += secs,
                        Reason::Locked => {}
                    }
                }
                if d.mode == Mode::Locked {
                    f.on_outside += secs;
                }
            }
        } else if any_unknown {
            f.unknown += secs;
        }
    }
    // Milliseconds were summed so that no rounding piles up; the figures
    // are whole seconds.
    for v in [
        &mut f.on,
        &mut f.unknown,
        &mut f.on_teacher,
        &mut f.on_schedule,
        &mut f.on_override,
        &mut f.on_outside,
        &mut f.override_seconds,
    ] {
        *v = (*v + 500).div_euclid(1000);
    }
    stretches(inputs, from, to, &mut f);
    for (at, code) in &inputs.refused {
        if from <= *at && *at < to {
            f.refused.add(code, 1);
        }
    }
    f
}

/// Sessions that ended and overrides that began in the window.
fn stretches(inputs: &DayInputs, from: DateTime<Utc>, to: DateTime<Utc>, f: &mut DayFigures) {
    let mut session_start: Option<DateTime<Utc>> = None;
    let mut previous: Option<DesiredState> = None;
    let mut used = vec![false; inputs.session_ends.len()];
    for (t, d) in &inputs.desired {
        let d = Some(*d);
        if *t >= to {
            break;
        }
        if is_session(d) && !is_session(previous) {
            session_start = Some(*t);
        }
        if !is_session(d)
            && is_session(previous)
            && let Some(start) = session_start.take()
            && *t >= from
        {
            f.sessions.push((*t - start).num_milliseconds().div_euclid(1000).max(0));
            // The session.end row nearest to the end, within a minute.
            let best = inputs
                .session_ends
                .iter()
                .enumerate()
                .filter(|(i, (at, _))| !used[*i] && (*at - *t).num_seconds().abs() <= 60)
                .min_by_key(|(_, (at, _))| (*at - *t).num_milliseconds().abs());
            if let Some((i, (_, reason))) = best {
                used[i] = true;
                f.ended_by.add(reason, 1);
            }
        }
        if let Some(w) = override_of(d)
            && override_of(previous) != Some(w)
            && *t >= from
        {
            f.overrides += 1;
        }
        previous = d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        format!("2026-12-01T{s}Z").parse().unwrap()
    }

    fn d(mode: Mode, wifi: Wifi, reason: Reason) -> DesiredState {
        DesiredState { mode, wifi, reason }
    }

    #[test]
    fn a_day_with_a_session_a_schedule_stretch_an_override_and_an_outage() {
        use ObservedWifi::{Off, On, Unknown};
        let inputs = DayInputs {
            aps: vec![
                vec![
                    (t("00:00:00"), Off),
                    (t("09:00:02"), On),
                    (t("10:00:00"), Off),
                    (t("12:00:00"), On),
                    (t("13:00:00"), Off),
                    (t("18:00:00"), On),
                    (t("18:30:00"), Off),
                ],
                // The second AP is unreachable 14:00-15:00 while the other is off.
                vec![(t("00:00:00"), Off), (t("14:00:00"), Unknown), (t("15:00:00"), Off)],
            ],
            desired: vec![
                (t("00:00:00"), d(Mode::Locked, Wifi::Off, Reason::Locked)),
                (t("08:30:00"), d(Mode::Available, Wifi::Off, Reason::Schedule)),
                (t("09:00:00"), d(Mode::Available, Wifi::On, Reason::Teacher)),
                (t("10:00:00"), d(Mode::Available, Wifi::Off, Reason::Schedule)),
                (t("12:00:00"), d(Mode::On, Wifi::On, Reason::Schedule)),
                (t("13:00:00"), d(Mode::Available, Wifi::Off, Reason::Schedule)),
                (t("17:00:00"), d(Mode::Locked, Wifi::Off, Reason::Locked)),
                (t("18:00:00"), d(Mode::Locked, Wifi::On, Reason::Override)),
                (t("18:30:00"), d(Mode::Locked, Wifi::Off, Reason::Locked)),
            ],
            // borne down 20:00-21:00.
            runs: vec![(t("00:00:00"), t("20:00:00")), (t("21:00:00"), t("23:59:59"))],
            session_ends: vec![(t("10:00:00"), "expired".into())],
            refused: vec![
                (t("07:00:00"), "locked".into()),
                (t("18:10:00"), "locked".into()),
                (t("18:20:00"), "overridden".into()),
            ],
        };
        let f = figures(&inputs, t("00:00:00"), t("23:59:59"));
        assert_eq!(f.on, 3598 + 3600 + 1800);
        assert_eq!(f.on_teacher, 3598);
        assert_eq!(f.on_schedule, 3600);
        assert_eq!(f.on_override, 1800);
        assert_eq!(f.on_outside, 1800);
        assert_eq!(f.unknown, 3600 + 3600);
        assert_eq!(f.sessions, [3600]);
        assert_eq!(f.ended_by["expired"], 1);
        assert_eq!(f.overrides, 1);
        assert_eq!(f.override_seconds, 1800);
        assert_eq!(f.refused["locked"], 2);
        assert_eq!(f.refused["overridden"], 1);
    }

    #[test]
    fn no_history_is_unknown_and_a_session_counts_on_the_day_it_ends() {
        let f = figures(&DayInputs::default(), t("00:00:00"), t("01:00:00"));
        assert_eq!(f.unknown, 3600);
        let inputs = DayInputs {
            aps: vec![vec![(t("00:00:00"), ObservedWifi::Off)]],
            desired: vec![
                (t("07:00:00"), d(Mode::Available, Wifi::On, Reason::Teacher)),
                (t("09:00:00"), d(Mode::Available, Wifi::Off, Reason::Schedule)),
            ],
            runs: vec![(t("00:00:00"), t("12:00:00"))],
            ..Default::default()
        };
        assert!(figures(&inputs, t("06:00:00"), t("08:00:00")).sessions.is_empty());
        assert_eq!(figures(&inputs, t("08:00:00"), t("10:00:00")).sessions, [7200]);
    }
}
