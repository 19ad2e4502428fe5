//! Policy: schedule mode + teacher session + IT override → the desired Wi-Fi
//! state of a classroom, and the answer to a teacher's request.
//!
//! Pure functions of their arguments: no I/O, no clock, no locks. The
//! reconciler calls [`desired`] for every classroom when anything changes;
//! the API calls [`decide`] for a teacher's request and stores what it
//! returns before acknowledging.
//!
//! Precedence, highest first (written once, in [`desired`]):
//! 1. an active IT override (on or off, optional expiry);
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

/// The state of a classroom's Wi-Fi.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wifi {
    /// Radios on.
    On,
    /// Radios off.
    Off,
}

impl Wifi {
    /// `on` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            Wifi::On => "on",
            Wifi::Off => "off",
        }
    }

    /// Parses `on` or `off`.
    pub fn parse(s: &str) -> Option<Wifi> {
        match s {
            "on" => Some(Wifi::On),
            "off" => Some(Wifi::Off),
            _ => None,
        }
    }
}

impl fmt::Display for Wifi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// The runtime inputs of one classroom, as the store holds them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// The teacher's session, if any (possibly expired).
    pub session: Option<&'a Session>,
    /// The IT override, if any (possibly expired).
    pub override_: Option<&'a Override>,
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
        Self {
            mode: classroom.schedule.mode_at(classroom.timezone, now),
            next_change: classroom.schedule.next_change(classroom.timezone, now),
        }
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
    let mode_ended = classroom
        .schedule
        .next_change(classroom.timezone, s.started)
        .is_some_and(|c| c.at <= now);
    (!mode_ended).then_some(s)
}

/// The desired state of `classroom` at `now`.
pub fn desired(classroom: &Classroom, inputs: Inputs<'_>, now: DateTime<Utc>) -> Desired {
    desired_with(classroom, ScheduleNow::of(classroom, now), inputs, now)
}

/// [`desired`] with the schedule already evaluated.
pub fn desired_with(
    classroom: &Classroom,
    sched: ScheduleNow,
    inputs: Inputs<'_>,
    now: DateTime<Utc>,
) -> Desired {
    let ScheduleNow { mode, next_change } = sched;
    let make = |wifi, reason, until| Desired {
        wifi,
        reason,
        until,
        mode,
        next_change,
    };
    if let Some(o) = inputs.override_.filter(|o| o.is_active(now)) {
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
    decide_with(classroom, ScheduleNow::of(classroom, now), settings, inputs, request, by, now)
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
    if let Request::On { minutes: Some(m) } = request {
        if m == 0 || m > settings.max_minutes {
            return Err(Refusal::MinutesOutOfRange {
                minutes: m,
                max: settings.max_minutes,
            });
        }
    }
    if let Some(o) = inputs.override_.filter(|o| o.is_active(now)) {
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
