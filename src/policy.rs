//! Policy: schedule mode + teacher session + IT override → the desired Wi-Fi
//! state of a classroom, and the answer to a teacher's request.
//!
//! Pure functions of their arguments: no I/O, no clock, no locks. The
//! reconciler calls [`desired`] for every classroom when anything changes;
//! the API calls [`decide`] for a teacher's request and stores what it
//! returns before acknowledging.
//!
//! Precedence, highest first (written once, in [`desired`]):
//! 1. an active IT override (on or off, optional expiry); a planned
//!    override counts only from its start, and while it runs it beats the
//!    override set before it, which resumes after it if still in force
//!    ([`override_in_force`]);
//! 2. mode `locked` → off (a lock ends every teacher session);
//! 3. an active teacher session (started in the current mode, not expired);
//! 4. mode `on` → on; mode `available` → off.
//!
//! Off is the safe default: nothing here turns Wi-Fi on without an end,
//! except an IT override that IT chose to leave open.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Classroom, TeacherSession};
use crate::schedule::{Change, Mode};

pub use crate::domain::Wifi;

/// Why the desired state is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// An IT override.
    Override,
    /// The schedule locks the classroom.
    Locked,
    /// A teacher's session.
    Teacher,
    /// The schedule's mode (`on` or `available`).
    Schedule,
}

impl Reason {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Override => "override",
            Reason::Locked => "locked",
            Reason::Teacher => "teacher",
            Reason::Schedule => "schedule",
        }
    }
}

/// A teacher's session: their "on" (or "off") until a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// What the teacher asked.
    pub wifi: Wifi,
    /// When it was first asked.
    pub started: DateTime<Utc>,
    /// When it ends by itself.
    pub until: DateTime<Utc>,
    /// Who asked.
    pub by: String,
}

/// An IT override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// The forced state.
    pub wifi: Wifi,
    /// When it ends; `None` until cleared.
    pub until: Option<DateTime<Utc>>,
    /// Why (shown to teachers).
    pub reason: String,
    /// Who set it.
    pub by: String,
    /// When it was set.
    pub set_at: DateTime<Utc>,
}

impl Override {
    /// Whether it is in force at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.set_at <= now && self.until.is_none_or(|u| now < u)
    }
}

/// An IT override that starts later (issue 16): it counts nowhere before
/// `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOverride {
    /// When it starts.
    pub from: DateTime<Utc>,
    /// What it will be (its `until`, if any, is after `from`).
    pub override_: Override,
}

impl PlannedOverride {
    /// Whether it is in force at `now`: started and not ended.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.from <= now && self.override_.until.is_none_or(|u| now < u)
    }

    /// Whether its window meets `[from, until)` (`None`: open-ended).
    pub fn overlaps(&self, from: DateTime<Utc>, until: Option<DateTime<Utc>>) -> bool {
        let ends_after_start = self.override_.until.is_none_or(|u| u > from);
        let starts_before_end = until.is_none_or(|u| self.from < u);
        ends_after_start && starts_before_end
    }
}

/// The runtime inputs of one classroom, as the store holds them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// The teacher's session, if any (possibly expired).
    pub session: Option<&'a Session>,
    /// The IT override, if any (possibly expired).
    pub override_: Option<&'a Override>,
    /// Planned overrides (possibly started or ended), in start order.
    pub planned: &'a [PlannedOverride],
}

/// The override in force at `now`: a started planned one (the latest
/// started, if several were ever let overlap), else the override set
/// before, if still in force. A planned override is a later decision of IT
/// for its window; the one it covers comes back after it, so an "off until
/// cleared" for an incident still holds after a planned event ends.
pub fn override_in_force<'a>(inputs: Inputs<'a>, now: DateTime<Utc>) -> Option<&'a Override> {
    inputs
        .planned
        .iter()
        .filter(|p| p.is_active(now))
        .max_by_key(|p| p.from)
        .map(|p| &p.override_)
        .or(inputs.override_.filter(|o| o.is_active(now)))
}

/// The next start of a planned override after `now`.
pub fn next_planned_start(planned: &[PlannedOverride], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    planned.iter().map(|p| p.from).filter(|f| *f > now).min()
}

/// The desired state of a classroom at an instant, with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    /// On or off.
    pub wifi: Wifi,
    /// Why.
    pub reason: Reason,
    /// When the reason ends (override expiry, session end, next mode
    /// change); `None` when nothing is planned.
    pub until: Option<DateTime<Utc>>,
    /// The schedule's mode now.
    pub mode: Mode,
    /// The schedule's next mode change.
    pub next_change: Option<Change>,
}

/// What the schedule says at an instant: the part of [`desired`] that only
/// depends on the schedule, computed once per (schedule, time zone) by
/// callers that evaluate many classrooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleNow {
    /// Mode at the instant.
    pub mode: Mode,
    /// Next change after it.
    pub next_change: Option<Change>,
}

impl ScheduleNow {
    /// Evaluates the classroom's schedule at `now`.
    pub fn of(classroom: &Classroom, now: DateTime<Utc>) -> Self {
        let (mode, next_change) = classroom.schedule.mode_and_next_change(classroom.timezone, now);
        Self { mode, next_change }
    }
}

/// The session if it is in force at `now`: not expired, and started in the
/// current mode stretch (a session never outlives the mode it was granted
/// in, even if a configuration reload moved the schedule under it).
pub fn active_session<'a>(
    classroom: &Classroom,
    session: Option<&'a Session>,
    now: DateTime<Utc>,
) -> Option<&'a Session> {
    let s = session?;
    if !(s.started <= now && now < s.until) {
        return None;
    }
    let (mode, next) = classroom.schedule.mode_and_next_change(classroom.timezone, s.started);
    let mode_ended = next.is_some_and(|c| c.at <= now);
    // A session granted in what is now (after a reload) a locked stretch
    // never held: a lock ends every session.
    (!mode_ended && mode != Mode::Locked).then_some(s)
}

/// The desired state of `classroom` at `now`.
pub fn desired(classroom: &Classroom, inputs: Inputs<'_>, now: DateTime<Utc>) -> Desired {
    desired_with(classroom, ScheduleNow::of(classroom, now), inputs, now)
}

/// [`desired`] with the schedule already evaluated.
pub fn desired_with(classroom: &Classroom, sched: ScheduleNow, inputs: Inputs<'_>, now: DateTime<Utc>) -> Desired {
    let ScheduleNow { mode, next_change } = sched;
    // Whatever decides now, a planned override starting earlier ends it.
    let next_planned = next_planned_start(inputs.planned, now);
    let make = |wifi, reason, until: Option<DateTime<Utc>>| Desired {
        wifi,
        reason,
        until: match (until, next_planned) {
            (Some(u), Some(p)) => Some(u.min(p)),
            (u, p) => u.or(p),
        },
        mode,
        next_change,
    };
    if let Some(o) = override_in_force(inputs, now) {
        return make(o.wifi, Reason::Override, o.until);
    }
    if mode == Mode::Locked {
        return make(Wifi::Off, Reason::Locked, next_change.map(|c| c.at));
    }
    if let Some(s) = active_session(classroom, inputs.session, now) {
        return make(s.wifi, Reason::Teacher, Some(s.until));
    }
    let wifi = if mode == Mode::On { Wifi::On } else { Wifi::Off };
    make(wifi, Reason::Schedule, next_change.map(|c| c.at))
}

/// A teacher's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Wi-Fi on for `minutes` (default from the configuration).
    On {
        /// Requested length.
        minutes: Option<u32>,
    },
    /// Wi-Fi off.
    Off,
}

/// What to do with the classroom's session after an accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionChange {
    /// Leave it as it is.
    Keep,
    /// Store this session.
    Set(Session),
    /// Remove it.
    Clear,
}

/// Why a teacher's request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The schedule locks the classroom until `until` (`None`: no unlock planned).
    Locked {
        /// When it unlocks.
        until: Option<DateTime<Utc>>,
    },
    /// An IT override is in force.
    Overridden(Override),
    /// `minutes` is 0 or above `max`.
    MinutesOutOfRange {
        /// What was asked.
        minutes: u32,
        /// The configured maximum.
        max: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Locked { until: Some(u) } => {
                write!(f, "Wi-Fi is locked by the schedule until {}", u.to_rfc3339())
            }
            Refusal::Locked { until: None } => write!(f, "Wi-Fi is locked by the schedule"),
            Refusal::Overridden(o) => {
                write!(f, "Wi-Fi is set {} by IT ({}): {}", o.wifi, o.by, o.reason)?;
                match o.until {
                    Some(u) => write!(f, ", until {}", u.to_rfc3339()),
                    None => write!(f, ", until IT clears it"),
                }
            }
            Refusal::MinutesOutOfRange { minutes, max } => {
                write!(f, "{minutes} minutes is out of range: ask between 1 and {max}")
            }
        }
    }
}

/// Decides a teacher's request at `now`: the session change to store, or
/// why it is refused.
///
/// - on in `available`: a session until `min(now + minutes, next mode
///   change)`; asking again while on extends it (never shortens it);
/// - on in `on`: accepted; it only clears an earlier "off" of the teacher;
/// - off in `on` or `available`: off until the next mode change;
/// - anything while `locked` or overridden: refused, saying until when.
pub fn decide(
    classroom: &Classroom,
    settings: TeacherSession,
    inputs: Inputs<'_>,
    request: Request,
    by: &str,
    now: DateTime<Utc>,
) -> Result<SessionChange, Refusal> {
    decide_with(
        classroom,
        ScheduleNow::of(classroom, now),
        settings,
        inputs,
        request,
        by,
        now,
    )
}

/// [`decide`] with the schedule already evaluated.
pub fn decide_with(
    classroom: &Classroom,
    sched: ScheduleNow,
    settings: TeacherSession,
    inputs: Inputs<'_>,
    request: Request,
    by: &str,
    now: DateTime<Utc>,
) -> Result<SessionChange, Refusal> {
    if let Request::On { minutes: Some(m) } = request
        && (m == 0 || m > settings.max_minutes)
    {
        return Err(Refusal::MinutesOutOfRange {
            minutes: m,
            max: settings.max_minutes,
        });
    }
    if let Some(o) = override_in_force(inputs, now) {
        return Err(Refusal::Overridden(o.clone()));
    }
    let mode_end = sched.next_change.map(|c| c.at);
    if sched.mode == Mode::Locked {
        return Err(Refusal::Locked { until: mode_end });
    }
    let current = active_session(classroom, inputs.session, now);
    match (request, sched.mode) {
        (Request::On { .. }, Mode::On) => Ok(match current {
            Some(_) => SessionChange::Clear,
            None => SessionChange::Keep,
        }),
        (Request::On { minutes }, _) => {
            let minutes = minutes.unwrap_or(settings.default_minutes);
            let mut until = now + Duration::minutes(i64::from(minutes));
            let mut started = now;
            if let Some(s) = current.filter(|s| s.wifi == Wifi::On) {
                until = until.max(s.until);
                started = s.started;
            }
            if let Some(end) = mode_end {
                until = until.min(end);
            }
            Ok(SessionChange::Set(Session {
                wifi: Wifi::On,
                started,
                until,
                by: by.to_owned(),
            }))
        }
        (Request::Off, _) => {
            // Without a planned change, "off" still ends: a day at most, as
            // every session does (validation caps max_minutes to a day).
            let until = mode_end.unwrap_or(now + Duration::days(1));
            Ok(SessionChange::Set(Session {
                wifi: Wifi::Off,
                started: now,
                until,
                by: by.to_owned(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    //! The policy as a table: (mode, override, session, request) →
    //! (result, desired, until).
    use super::*;
    use crate::config::{self, Config};

    /// Tuesday 1 December 2026, Paris: locked until 08:30, available until
    /// 10:00, `on` 10:00-11:00, available until 17:00, locked after.
    const YAML: &str = concat!(
        "timezone: Europe/Paris\n",
        "teacher_session: { default_minutes: 60, max_minutes: 120 }\n",
        // The schedule the daemon-level tests use too.
        include_str!("../tests/support/fixtures/school-day.yaml"),
        "schools:\n",
        "  - id: s\n",
        "    schedule: day\n",
        "    classrooms:\n",
        "      - { id: c, access_points: [ { id: ap, sim: {} } ] }\n",
    );

    fn config() -> Config {
        config::from_str(YAML, "t.yaml", None).expect("valid").config
    }

    fn t(hm: &str) -> DateTime<Utc> {
        format!("2026-12-01T{hm}:00+01:00").parse().expect("time")
    }

    fn session(wifi: Wifi, from: &str, until: &str) -> Session {
        Session {
            wifi,
            started: t(from),
            until: t(until),
            by: "teacher".into(),
        }
    }

    fn override_(wifi: Wifi, until: Option<&str>) -> Override {
        Override {
            wifi,
            until: until.map(t),
            reason: "exam".into(),
            by: "it".into(),
            set_at: t("08:00"),
        }
    }

    #[derive(Debug, PartialEq)]
    enum Verdict {
        Accepted(Option<(Wifi, &'static str)>),
        Cleared,
        Unchanged,
        RefusedLocked(Option<&'static str>),
        RefusedOverridden,
        RefusedMinutes,
    }

    /// (now, override, session, request, verdict, desired after, reason after, until after)
    type Case = (
        &'static str,
        Option<Override>,
        Option<Session>,
        Request,
        Verdict,
        Wifi,
        Reason,
        Option<&'static str>,
    );

    #[test]
    fn teacher_requests_as_a_table() {
        use Verdict::*;
        let cfg = config();
        let c = cfg.classroom("c").expect("classroom");
        let on = Request::On { minutes: None };
        let on45 = Request::On { minutes: Some(45) };
        let cases: Vec<Case> = vec![
            // available: on for the default 60 minutes, or as asked.
            (
                "09:00",
                None,
                None,
                on,
                Accepted(Some((Wifi::On, "10:00"))),
                Wifi::On,
                Reason::Teacher,
                Some("10:00"),
            ),
            (
                "09:00",
                None,
                None,
                on45,
                Accepted(Some((Wifi::On, "09:45"))),
                Wifi::On,
                Reason::Teacher,
                Some("09:45"),
            ),
            // capped at the next mode change.
            (
                "09:30",
                None,
                None,
                on,
                Accepted(Some((Wifi::On, "10:00"))),
                Wifi::On,
                Reason::Teacher,
                Some("10:00"),
            ),
            // asking again extends, never shortens.
            (
                "09:10",
                None,
                Some(session(Wifi::On, "09:00", "09:30")),
                on45,
                Accepted(Some((Wifi::On, "09:55"))),
                Wifi::On,
                Reason::Teacher,
                Some("09:55"),
            ),
            (
                "09:10",
                None,
                Some(session(Wifi::On, "09:00", "09:50")),
                Request::On { minutes: Some(10) },
                Accepted(Some((Wifi::On, "09:50"))),
                Wifi::On,
                Reason::Teacher,
                Some("09:50"),
            ),
            // off in available: off until the next change.
            (
                "09:10",
                None,
                Some(session(Wifi::On, "09:00", "09:50")),
                Request::Off,
                Accepted(Some((Wifi::Off, "10:00"))),
                Wifi::Off,
                Reason::Teacher,
                Some("10:00"),
            ),
            // on in `on` mode: nothing to do; off in `on` mode: off until 11:00.
            (
                "10:15",
                None,
                None,
                on,
                Unchanged,
                Wifi::On,
                Reason::Schedule,
                Some("11:00"),
            ),
            (
                "10:15",
                None,
                None,
                Request::Off,
                Accepted(Some((Wifi::Off, "11:00"))),
                Wifi::Off,
                Reason::Teacher,
                Some("11:00"),
            ),
            // on in `on` mode after the teacher's own off: clears it.
            (
                "10:20",
                None,
                Some(session(Wifi::Off, "10:15", "11:00")),
                on,
                Cleared,
                Wifi::On,
                Reason::Schedule,
                Some("11:00"),
            ),
            // locked: refused, saying until when (skipping re-locks).
            (
                "18:00",
                None,
                None,
                on,
                RefusedLocked(Some("2026-12-02T08:30:00+01:00")),
                Wifi::Off,
                Reason::Locked,
                Some("2026-12-02T08:30:00+01:00"),
            ),
            (
                "07:00",
                None,
                None,
                Request::Off,
                RefusedLocked(Some("08:30")),
                Wifi::Off,
                Reason::Locked,
                Some("08:30"),
            ),
            // an override refuses everything, on or off.
            (
                "09:00",
                Some(override_(Wifi::Off, Some("12:00"))),
                None,
                on,
                RefusedOverridden,
                Wifi::Off,
                Reason::Override,
                Some("12:00"),
            ),
            (
                "09:00",
                Some(override_(Wifi::On, None)),
                None,
                Request::Off,
                RefusedOverridden,
                Wifi::On,
                Reason::Override,
                None,
            ),
            // an expired override no longer counts.
            (
                "12:30",
                Some(override_(Wifi::Off, Some("12:00"))),
                None,
                on,
                Accepted(Some((Wifi::On, "13:30"))),
                Wifi::On,
                Reason::Teacher,
                Some("13:30"),
            ),
            // minutes out of range are refused, not clamped.
            (
                "09:00",
                None,
                None,
                Request::On { minutes: Some(121) },
                RefusedMinutes,
                Wifi::Off,
                Reason::Schedule,
                Some("10:00"),
            ),
            (
                "09:00",
                None,
                None,
                Request::On { minutes: Some(0) },
                RefusedMinutes,
                Wifi::Off,
                Reason::Schedule,
                Some("10:00"),
            ),
        ];
        for (i, (now, ovr, sess, request, verdict, wifi, reason, until)) in cases.into_iter().enumerate() {
            let now = t(now);
            let inputs = Inputs {
                session: sess.as_ref(),
                override_: ovr.as_ref(),
                planned: &[],
            };
            let result = decide(c, cfg.teacher_session, inputs, request, "teacher", now);
            let parse_until = |u: &str| -> DateTime<Utc> { if u.len() == 5 { t(u) } else { u.parse().expect("time") } };
            let got = match &result {
                Ok(SessionChange::Set(s)) => Verdict::Accepted(Some((s.wifi, ""))),
                Ok(SessionChange::Clear) => Verdict::Cleared,
                Ok(SessionChange::Keep) => Verdict::Unchanged,
                Err(Refusal::Locked { .. }) => Verdict::RefusedLocked(None),
                Err(Refusal::Overridden(_)) => Verdict::RefusedOverridden,
                Err(Refusal::MinutesOutOfRange { .. }) => Verdict::RefusedMinutes,
            };
            match (&verdict, &result) {
                (Verdict::Accepted(Some((w, u))), Ok(SessionChange::Set(s))) => {
                    assert_eq!((s.wifi, s.until), (*w, parse_until(u)), "case {i}");
                }
                (Verdict::RefusedLocked(Some(u)), Err(Refusal::Locked { until })) => {
                    assert_eq!(*until, Some(parse_until(u)), "case {i}");
                }
                (expected, _) => assert_eq!(
                    std::mem::discriminant(expected),
                    std::mem::discriminant(&got),
                    "case {i}: {result:?}"
                ),
            }
            // Apply the change, then check what the classroom wants.
            let after = match result {
                Ok(SessionChange::Set(s)) => Some(s),
                Ok(SessionChange::Clear) => None,
                _ => sess,
            };
            let d = desired(
                c,
                Inputs {
                    session: after.as_ref(),
                    override_: ovr.as_ref(),
                    planned: &[],
                },
                now,
            );
            assert_eq!((d.wifi, d.reason), (wifi, reason), "case {i}: {d:?}");
            assert_eq!(d.until, until.map(parse_until), "case {i}: {d:?}");
        }
    }

    /// Classroom `c`'s desired state at `hm` with this session and override.
    fn desired_at(session: Option<&Session>, override_: Option<&Override>, hm: &str) -> Desired {
        let cfg = config();
        let c = cfg.classroom("c").expect("classroom");
        let planned = &[];
        desired(
            c,
            Inputs {
                session,
                override_,
                planned,
            },
            t(hm),
        )
    }

    #[test]
    fn lock_ends_a_teacher_session() {
        let s = session(Wifi::On, "16:30", "17:30");
        let d = desired_at(Some(&s), None, "17:00");
        assert_eq!((d.wifi, d.reason), (Wifi::Off, Reason::Locked));
    }

    #[test]
    fn session_does_not_outlive_the_mode_it_was_granted_in() {
        // A session ending after the next mode change (say, the schedule was
        // edited under it) stops at that change.
        let s = session(Wifi::Off, "09:00", "12:00");
        let d = desired_at(Some(&s), None, "10:30");
        assert_eq!((d.wifi, d.reason), (Wifi::On, Reason::Schedule));
    }

    #[test]
    fn override_on_beats_a_lock() {
        let o = override_(Wifi::On, Some("20:00"));
        let d = desired_at(None, Some(&o), "18:00");
        assert_eq!((d.wifi, d.reason, d.mode), (Wifi::On, Reason::Override, Mode::Locked));
    }

    /// Issue 16: a planned override counts nowhere before its start, ends
    /// what decides before it at its start, beats the override set before
    /// it while it runs, and lets that one resume after.
    #[test]
    fn a_planned_override_counts_only_in_its_window() {
        let cfg = config();
        let c = cfg.classroom("c").expect("classroom");
        let incident = override_(Wifi::Off, None);
        let planned = [PlannedOverride {
            from: t("14:00"),
            override_: Override {
                wifi: Wifi::On,
                until: Some(t("16:30")),
                reason: "atelier périscolaire".into(),
                by: "dsi".into(),
                set_at: t("08:00"),
            },
        }];
        let teacher = session(Wifi::On, "13:30", "14:30");
        let only_planned = Inputs {
            session: Some(&teacher),
            override_: None,
            planned: &planned,
        };
        // Before: the teacher's session decides, and ends at the start.
        let d = desired(c, only_planned, t("13:59"));
        assert_eq!(
            (d.wifi, d.reason, d.until),
            (Wifi::On, Reason::Teacher, Some(t("14:00")))
        );
        assert!(override_in_force(only_planned, t("13:59")).is_none());
        // A teacher's "off" is not refused as overridden before the start.
        assert!(
            decide(
                c,
                cfg.teacher_session,
                only_planned,
                Request::Off,
                "teacher",
                t("13:45")
            )
            .is_ok()
        );
        // From the start to its end it decides, and refuses teachers.
        for hm in ["14:00", "16:29"] {
            let d = desired(c, only_planned, t(hm));
            assert_eq!(
                (d.wifi, d.reason, d.until),
                (Wifi::On, Reason::Override, Some(t("16:30"))),
                "{hm}"
            );
        }
        let refused = decide(
            c,
            cfg.teacher_session,
            only_planned,
            Request::Off,
            "teacher",
            t("15:00"),
        );
        assert!(matches!(refused, Err(Refusal::Overridden(o)) if o.by == "dsi"));
        // After it: back to the schedule (available → off).
        let d = desired(c, only_planned, t("16:30"));
        assert_eq!((d.wifi, d.reason), (Wifi::Off, Reason::Schedule));
        // Over an "off until cleared": on in its window, off again after.
        let both = Inputs {
            session: None,
            override_: Some(&incident),
            planned: &planned,
        };
        let at = |hm| {
            let d = desired(c, both, t(hm));
            (d.wifi, d.reason, d.until)
        };
        assert_eq!(at("13:00"), (Wifi::Off, Reason::Override, Some(t("14:00"))));
        assert_eq!(at("15:00"), (Wifi::On, Reason::Override, Some(t("16:30"))));
        assert_eq!(at("16:30"), (Wifi::Off, Reason::Override, None));
    }

    #[test]
    fn planned_windows_overlap_when_they_share_an_instant() {
        let p = PlannedOverride {
            from: t("14:00"),
            override_: override_(Wifi::On, Some("16:00")),
        };
        assert!(p.overlaps(t("15:00"), Some(t("17:00"))));
        assert!(p.overlaps(t("13:00"), None));
        assert!(p.overlaps(t("13:00"), Some(t("14:01"))));
        assert!(!p.overlaps(t("16:00"), Some(t("17:00"))), "back to back is fine");
        assert!(!p.overlaps(t("12:00"), Some(t("14:00"))));
        let open = PlannedOverride {
            from: t("14:00"),
            override_: override_(Wifi::On, None),
        };
        assert!(open.overlaps(t("20:00"), Some(t("21:00"))));
    }

    #[test]
    fn nothing_is_on_by_default() {
        let cfg = config();
        let c = cfg.classroom("c").expect("classroom");
        for hm in ["00:00", "08:29", "09:00", "11:30", "17:00", "23:59"] {
            assert_eq!(desired(c, Inputs::default(), t(hm)).wifi, Wifi::Off, "{hm}");
        }
    }
}
