//! Idle auto-off (`teacher_session.idle_off_minutes`): a teacher "on"
//! session ends when every access point of the classroom that can count
//! clients has reported none for that long, counted from the later of the
//! session's start and the first zero reading. APs that cannot count
//! clients (MQTT plugs, custom without `clients_command`) never trigger
//! it; a classroom with none that can is never cut (`borne check` says
//! which). The planner calls [`Core::end_idle_sessions`] at every pass;
//! the workers read client counts at least every `idle_off_minutes / 3`
//! during an "on" (`reconcile/worker.rs`).

use chrono::{DateTime, Utc};

use super::{Core, SessionEnd, session_end_record};
use crate::config::Config;
use crate::policy::Wifi;
use crate::store::Batch;

impl Core {
    /// Ends the teacher "on" sessions nobody uses (see the module docs).
    /// Returns whether one ended.
    pub fn end_idle_sessions(&self, config: &Config, now: DateTime<Utc>) -> bool {
        let minutes = config.teacher_session.idle_off_minutes;
        if minutes == 0 {
            return false;
        }
        let limit = chrono::Duration::minutes(i64::from(minutes));
        let mut batch = Batch::default();
        let mut ended = Vec::new();
        {
            let mut guard = self.lock_state();
            let state = &mut *guard;
            // A session started after an idle cut makes its notice stale.
            state
                .idle_ended
                .retain(|c, at| state.sessions.get(c).is_none_or(|s| s.started <= *at));
            let aps = &state.aps;
            state.sessions.retain(|c, s| {
                if s.wifi != Wifi::On || s.until <= now {
                    return true;
                }
                let Some(classroom) = config.classroom(c.as_str()) else {
                    return true;
                };
                let mut counting = 0;
                let mut idle_since = s.started;
                for id in &classroom.access_points {
                    let Some(ap) = config.access_point(id.as_str()) else {
                        continue;
                    };
                    if !ap.counts_clients() {
                        continue;
                    }
                    counting += 1;
                    match aps.get(id).and_then(|a| a.zero_clients_since) {
                        Some(t) => idle_since = idle_since.max(t),
                        // Someone is connected, or no reading yet.
                        None => return true,
                    }
                }
                if counting == 0 || now - idle_since < limit {
                    return true;
                }
                batch.sessions.push((c.clone(), None));
                batch.audit.push(session_end_record(
                    now,
                    c,
                    classroom.timezone,
                    s,
                    SessionEnd::Idle,
                    &format!("no device connected for {minutes} minutes"),
                ));
                ended.push(c.clone());
                false
            });
            for c in &ended {
                state.idle_ended.insert(c.clone(), now);
            }
        }
        for c in &ended {
            tracing::info!(classroom = %c, minutes, "teacher session ended: no device connected");
        }
        if ended.is_empty() {
            return false;
        }
        self.writer().enqueue(batch);
        for c in &ended {
            self.announce(c);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Fixture, actor};
    use crate::domain::{Observation, ObservedWifi};
    use crate::policy::{Request, Wifi};

    const IDLE: &str = r#"
demo: true
timezone: Europe/Paris
state_dir: STATE_DIR
teacher_session: { default_minutes: 60, max_minutes: 120, idle_off_minutes: 15 }
schedules:
  day: { default_mode: available }
schools:
  - id: s1
    schedule: day
    classrooms:
      - id: c1
        access_points: [ { id: a1, sim: {} }, { id: a2, sim: {} }, { id: plug, mqtt: { preset: tasmota, topic: p } } ]
mqtt: { host: 127.0.0.1 }
users:
  - { name: teacher1, role: teacher, classrooms: [c1], token: teacher-token-123 }
"#;

    fn clients(f: &Fixture, ap: &str, n: u32) {
        let config = f.core.config();
        f.core.record_observation(
            config.access_point(ap).unwrap(),
            Ok(Observation::read(ObservedWifi::On, Some(n))),
        );
    }

    /// Every counting AP at zero for 15 minutes ends the session, audited `idle`.
    #[tokio::test]
    async fn a_session_with_no_client_on_any_counting_ap_ends_after_idle_off_minutes() {
        let f = Fixture::with_config(IDLE, "2026-12-01T09:00:00Z");
        let teacher = f.user("teacher1");
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(60) })
            .await
            .unwrap();
        clients(&f, "a1", 0);
        clients(&f, "a2", 3);
        f.set_now("2026-12-01T09:10:00Z");
        clients(&f, "a2", 0);
        let config = f.core.config();
        f.set_now("2026-12-01T09:20:00Z");
        assert!(
            !f.core.end_idle_sessions(&config, f.core.now()),
            "a2 idle for 10 min only"
        );
        f.set_now("2026-12-01T09:25:00Z");
        assert!(f.core.end_idle_sessions(&config, f.core.now()));
        let d = f.core.desired(config.classroom("c1").unwrap(), f.core.now());
        assert_eq!(d.wifi, Wifi::Off);
        let ends = f.session_ends().await;
        assert_eq!(ends.len(), 1, "{ends:?}");
        assert!(
            ends[0].starts_with("c1 idle: no device connected for 15 minutes"),
            "{ends:?}"
        );
        let status = &f.core.statuses(&teacher)[0];
        assert!(status.idle_off.is_some(), "the teacher page learns why");
    }

    /// A client coming back resets the count; idle is counted from the session's start.
    #[tokio::test]
    async fn a_client_resets_the_idle_count_which_starts_with_the_session() {
        let f = Fixture::with_config(IDLE, "2026-12-01T09:00:00Z");
        clients(&f, "a1", 0);
        clients(&f, "a2", 0);
        f.set_now("2026-12-01T10:00:00Z");
        let teacher = f.user("teacher1");
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(60) })
            .await
            .unwrap();
        let config = f.core.config();
        f.set_now("2026-12-01T10:14:00Z");
        assert!(
            !f.core.end_idle_sessions(&config, f.core.now()),
            "zero since 09:00 but the session began at 10:00"
        );
        clients(&f, "a1", 1);
        f.set_now("2026-12-01T10:16:00Z");
        clients(&f, "a1", 0);
        f.set_now("2026-12-01T10:30:00Z");
        assert!(
            !f.core.end_idle_sessions(&config, f.core.now()),
            "a1 idle since 10:16 only"
        );
        f.set_now("2026-12-01T10:31:00Z");
        assert!(f.core.end_idle_sessions(&config, f.core.now()));
    }
}
