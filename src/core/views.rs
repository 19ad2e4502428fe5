//! The read path: classroom statuses, summaries and the metrics text, as
//! the API and the pages show them.

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::actor::visible;
use super::{Core, RequestError};
use crate::config::{ApId, Classroom, ClassroomId, Config, SchoolId, User};
use crate::driver::ObservedWifi;
use crate::policy::{self, Desired, Reason, Wifi};
use crate::schedule::Mode;

impl Core {
    /// The status of a classroom the user may see.
    ///
    /// # Errors
    /// [`RequestError::NotFound`] when it does not exist or is not visible.
    pub fn status(&self, user: &User, classroom_id: &str) -> Result<Status, RequestError> {
        let config = self.config();
        let classroom = visible(&config, user, classroom_id)?;
        Ok(self.status_of(&config, classroom, self.now()))
    }

    /// The statuses of every classroom the user may see, in file order.
    pub fn statuses(&self, user: &User) -> Vec<Status> {
        let config = self.config();
        let now = self.now();
        if user.scope.is_some() {
            // A teacher sees a few classrooms: evaluate only those.
            return config
                .classrooms
                .iter()
                .filter(|c| user.can_see(&c.id))
                .map(|c| self.status_of(&config, c, now))
                .collect();
        }
        let desired = self.desired_all(&config, now);
        config
            .classrooms
            .iter()
            .zip(desired)
            .map(|(c, d)| self.render(&config, c, d, now))
            .collect()
    }

    /// `/metrics`: the registry's instruments and the per-AP gauges.
    pub fn metrics_text(&self) -> String {
        let config = self.config();
        let desired = self.desired_all(&config, self.now());
        let samples = {
            let state = self.lock_state();
            config
                .classrooms
                .iter()
                .zip(desired)
                .flat_map(|(c, d)| {
                    let state = &state;
                    c.access_points.iter().map(move |ap| {
                        let st = state.aps.get(ap);
                        crate::metrics::ApSample {
                            school: c.school.to_string(),
                            classroom: c.id.to_string(),
                            ap: ap.to_string(),
                            desired: d.wifi,
                            observed: st.map_or(ObservedWifi::Unknown, |s| s.observed.wifi),
                            reachable: st.is_none_or(|s| s.observed.reachable),
                            consecutive_failures: st.map_or(0, |s| s.consecutive_failures),
                            lease_expiry: st.and_then(|s| s.lease_until).map(|t| t.timestamp()),
                        }
                    })
                })
                .collect()
        };
        self.metrics.render(samples)
    }

    /// Counts over the classrooms the user may see: what the dashboard
    /// shows at the top, cheap enough to poll at city scale.
    pub fn summary(&self, user: &User) -> Summary {
        let config = self.config();
        let now = self.now();
        let desired = self.desired_all(&config, now);
        let state = self.lock_state();
        let mut s = Summary::default();
        for (c, d) in config.classrooms.iter().zip(desired) {
            if !user.can_see(&c.id) {
                continue;
            }
            s.classrooms += 1;
            if d.wifi == Wifi::On {
                s.classrooms_on += 1;
            }
            for ap in &c.access_points {
                s.access_points += 1;
                let Some(st) = state.aps.get(ap) else { continue };
                match st.observed.wifi {
                    ObservedWifi::On => s.observed_on += 1,
                    ObservedWifi::Off => s.observed_off += 1,
                    ObservedWifi::Unknown => s.observed_unknown += 1,
                }
                if !st.observed.reachable {
                    s.unreachable += 1;
                }
                if st.observed.wifi.is(d.wifi) {
                    s.in_sync += 1;
                }
            }
        }
        s
    }

    /// The status of a classroom at `now`.
    pub fn status_of(&self, config: &Config, classroom: &Classroom, now: DateTime<Utc>) -> Status {
        let d = self.desired(classroom, now);
        self.render(config, classroom, d, now)
    }

    fn render(&self, config: &Config, c: &Classroom, d: Desired, now: DateTime<Utc>) -> Status {
        let tz = c.timezone;
        let state = self.lock_state();
        let active_override = policy::override_in_force(state.inputs(&c.id), now).map(|o| OverrideView {
            wifi: o.wifi,
            until: o.until.map(|u| local(u, tz)),
            reason: o.reason.clone(),
            by: o.by.clone(),
        });
        let planned_overrides = state
            .planned
            .get(&c.id)
            .into_iter()
            .flatten()
            .filter(|p| p.from > now)
            .map(|p| PlannedView {
                from: local(p.from, tz),
                until: p.override_.until.map(|u| local(u, tz)),
                wifi: p.override_.wifi,
                reason: p.override_.reason.clone(),
                by: p.override_.by.clone(),
            })
            .collect();
        let idle_off = state.idle_ended.get(&c.id).map(|t| local(*t, tz));
        let session = policy::active_session(c, state.sessions.get(&c.id), now).map(|s| SessionView {
            wifi: s.wifi,
            until: local(s.until, tz),
            by: s.by.clone(),
        });
        let access_points = c
            .access_points
            .iter()
            .filter_map(|id| {
                let ap = config.access_point(id.as_str())?;
                let st = state.aps.get(id);
                Some(match st {
                    Some(s) => ApView {
                        id: id.clone(),
                        driver: ap.driver.kind(),
                        observed: s.observed.wifi,
                        reachable: s.observed.reachable,
                        last_error: s.observed.last_error.clone(),
                        clients: s.observed.clients,
                        since: Some(local(s.observed.since, tz)),
                        assumed: s.observed.assumed,
                        last_contact: s.observed.last_contact.map(|t| local(t, tz)),
                        consecutive_failures: s.consecutive_failures,
                        lease_held: s.lease_until.is_some_and(|t| t > now),
                        lease_until: s.lease_until.filter(|t| *t > now).map(|t| local(t, tz)),
                    },
                    None => ApView {
                        id: id.clone(),
                        driver: ap.driver.kind(),
                        observed: ObservedWifi::Unknown,
                        reachable: true,
                        last_error: None,
                        clients: None,
                        since: None,
                        assumed: false,
                        last_contact: None,
                        consecutive_failures: 0,
                        lease_held: false,
                        lease_until: None,
                    },
                })
            })
            .collect();
        let school_name = config
            .school(c.school.as_str())
            .map(|s| s.name.clone())
            .unwrap_or_default();
        Status {
            id: c.id.clone(),
            name: c.name.clone(),
            school: c.school.clone(),
            school_name,
            wifi: d.wifi,
            reason: d.reason,
            until: d.until.map(|u| local(u, tz)),
            mode: d.mode,
            closed_day: d.mode == Mode::Locked && c.schedule.is_closed_day(tz, now),
            next_change: d.next_change.map(|n| ChangeView {
                at: local(n.at, tz),
                mode: n.mode,
            }),
            override_: active_override,
            planned_overrides,
            idle_off: if session.is_none() { idle_off } else { None },
            session,
            access_points,
            timezone: tz.name().to_owned(),
            session_minutes: SessionLimits {
                default: config.teacher_session.default_minutes,
                max: config.teacher_session.max_minutes,
            },
        }
    }
}

/// A time as the API shows it: in the classroom's time zone, to the second.
fn local(t: DateTime<Utc>, tz: Tz) -> DateTime<FixedOffset> {
    use chrono::SubsecRound as _;
    t.with_timezone(&tz).fixed_offset().trunc_subsecs(0)
}

/// Counts over a user's classrooms and their access points.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Classrooms.
    pub classrooms: usize,
    /// Classrooms whose desired state is on.
    pub classrooms_on: usize,
    /// Access points.
    pub access_points: usize,
    /// Seen on.
    pub observed_on: usize,
    /// Seen off.
    pub observed_off: usize,
    /// Not known.
    pub observed_unknown: usize,
    /// Not reached by the last operation.
    pub unreachable: usize,
    /// Observed as desired.
    pub in_sync: usize,
}

/// A classroom as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Classroom id.
    pub id: ClassroomId,
    /// Classroom name.
    pub name: String,
    /// School id.
    pub school: SchoolId,
    /// School name.
    pub school_name: String,
    /// Desired state.
    pub wifi: Wifi,
    /// Why.
    pub reason: Reason,
    /// When the reason ends.
    pub until: Option<DateTime<FixedOffset>>,
    /// Schedule mode now.
    pub mode: Mode,
    /// Locked because the day is a closed day (holiday), not by the hours.
    pub closed_day: bool,
    /// Next schedule change.
    pub next_change: Option<ChangeView>,
    /// The IT override in force.
    #[serde(rename = "override")]
    pub override_: Option<OverrideView>,
    /// Overrides planned to start later, in start order.
    pub planned_overrides: Vec<PlannedView>,
    /// The teacher session in force.
    pub session: Option<SessionView>,
    /// Its access points.
    pub access_points: Vec<ApView>,
    /// Time zone of the times above.
    pub timezone: String,
    /// Lengths a teacher may ask.
    pub session_minutes: SessionLimits,
    /// When the last teacher session was cut for lack of connected
    /// devices (`idle_off_minutes`), while no session started since.
    pub idle_off: Option<DateTime<FixedOffset>>,
}

/// `next_change` of a [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct ChangeView {
    /// When.
    pub at: DateTime<FixedOffset>,
    /// To which mode.
    pub mode: Mode,
}

/// `override` of a [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct OverrideView {
    /// Forced state.
    pub wifi: Wifi,
    /// End, or null until cleared.
    pub until: Option<DateTime<FixedOffset>>,
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
}

/// An item of `planned_overrides` in a [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct PlannedView {
    /// Start (also what cancels it: `DELETE ...?from=`).
    pub from: DateTime<FixedOffset>,
    /// End, or null until cleared.
    pub until: Option<DateTime<FixedOffset>>,
    /// Forced state.
    pub wifi: Wifi,
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
}

/// `session` of a [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    /// What the teacher asked.
    pub wifi: Wifi,
    /// When it ends.
    pub until: DateTime<FixedOffset>,
    /// Who asked.
    pub by: String,
}

/// `session_minutes` of a [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct SessionLimits {
    /// Length when none is asked.
    pub default: u32,
    /// Longest.
    pub max: u32,
}

/// An access point in a [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct ApView {
    /// AP id.
    pub id: ApId,
    /// `ssh`, `mqtt` or `sim`.
    pub driver: &'static str,
    /// What was last seen.
    pub observed: ObservedWifi,
    /// Whether the last operation reached it.
    pub reachable: bool,
    /// The last error, until an operation succeeds.
    pub last_error: Option<String>,
    /// Associated clients.
    pub clients: Option<u32>,
    /// Since when `observed` holds.
    pub since: Option<DateTime<FixedOffset>>,
    /// `observed` is assumed from an acknowledged command, not read.
    pub assumed: bool,
    /// Last time it answered.
    pub last_contact: Option<DateTime<FixedOffset>>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The device holds a lease: it switches itself off at `lease_until`
    /// unless borne renews it.
    pub lease_held: bool,
    /// When the device's lease runs out, while it holds one.
    pub lease_until: Option<DateTime<FixedOffset>>,
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Fixture, actor};
    use super::Summary;
    use crate::driver::{Observation, ObservedWifi};
    use crate::policy::{Reason, Request, Wifi};
    use crate::schedule::Mode;

    const MORNING: &str = "2026-12-01T09:00:00Z";

    #[tokio::test]
    async fn a_status_speaks_the_classrooms_time_zone_to_the_second() {
        let f = Fixture::new("2026-12-01T09:00:00.750Z");
        let teacher = f.user("teacher1");
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(30) })
            .await
            .unwrap();
        let s = f.core.status(&teacher, "c1").unwrap();
        assert_eq!(s.timezone, "Europe/Paris");
        assert_eq!(s.session.unwrap().until.to_rfc3339(), "2026-12-01T10:30:00+01:00");
        assert_eq!(s.next_change.unwrap().at.to_rfc3339(), "2026-12-01T17:00:00+01:00");
        assert_eq!((s.session_minutes.default, s.session_minutes.max), (60, 120));
    }

    #[test]
    fn a_holiday_is_told_apart_from_closing_time() {
        let f = Fixture::new(MORNING);
        let admin = f.user("admin");
        let c3 = f.core.status(&admin, "c3").unwrap();
        assert_eq!(
            (c3.wifi, c3.reason, c3.mode, c3.closed_day),
            (Wifi::Off, Reason::Locked, Mode::Locked, true)
        );
        f.set_now("2026-12-01T19:00:00Z");
        let c1 = f.core.status(&admin, "c1").unwrap();
        assert_eq!((c1.mode, c1.closed_day), (Mode::Locked, false));
    }

    #[test]
    fn a_teacher_sees_only_their_classrooms() {
        let f = Fixture::new(MORNING);
        let ids = |name: &str| -> Vec<String> {
            let user = f.user(name);
            f.core.statuses(&user).into_iter().map(|s| s.id.to_string()).collect()
        };
        assert_eq!(ids("teacher1"), ["c1"]);
        assert_eq!(ids("admin"), ["c1", "c2", "c3"]);
        assert!(f.core.status(&f.user("teacher1"), "c2").is_err());
    }

    #[tokio::test]
    async fn the_summary_counts_what_is_desired_and_seen() {
        let f = Fixture::new(MORNING);
        let (admin, teacher) = (f.user("admin"), f.user("teacher1"));
        assert_eq!(
            f.core.summary(&admin),
            Summary {
                classrooms: 3,
                access_points: 4,
                observed_unknown: 4,
                ..Summary::default()
            }
        );
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: None })
            .await
            .unwrap();
        let config = f.core.config();
        let seen = |id: &str, wifi| {
            let ap = config.access_point(id).unwrap();
            f.core.record_observation(ap, Ok(Observation::read(wifi, None)));
        };
        seen("c1-ap1", ObservedWifi::On);
        seen("c2-ap1", ObservedWifi::Off);
        let ap = config.access_point("c2-ap2").unwrap();
        f.core.record_observation(ap, Err("timed out".into()));
        let s = f.core.summary(&admin);
        assert_eq!(
            (
                s.classrooms_on,
                s.observed_on,
                s.observed_off,
                s.observed_unknown,
                s.unreachable,
                s.in_sync
            ),
            (1, 1, 1, 2, 1, 2)
        );
        // A teacher's summary covers their classroom only.
        assert_eq!(
            (
                f.core.summary(&teacher).classrooms,
                f.core.summary(&teacher).access_points
            ),
            (1, 1)
        );
        let c2 = f.core.status(&admin, "c2").unwrap();
        let ap2 = c2.access_points.iter().find(|a| a.id.as_str() == "c2-ap2").unwrap();
        assert_eq!(
            (ap2.reachable, ap2.last_error.as_deref(), ap2.consecutive_failures),
            (false, Some("timed out"), 1)
        );
    }

    #[test]
    fn the_metrics_text_has_one_line_per_access_point() {
        let f = Fixture::new(MORNING);
        let text = f.core.metrics_text();
        for ap in ["c1-ap1", "c2-ap1", "c2-ap2", "c3-ap1"] {
            assert!(text.contains(&format!("ap=\"{ap}\"")), "{ap} missing from:\n{text}");
        }
    }
}
