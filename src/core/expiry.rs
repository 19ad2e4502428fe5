//! The write path for time: sessions and overrides that have ended leave
//! memory and the store.

use chrono::{DateTime, Utc};

use super::{Core, SessionEnd, session_end_record};
use crate::policy;
use crate::schedule::Mode;
use crate::store::{AuditRecord, Batch};

impl Core {
    /// Drops ended sessions and overrides from memory and the store, so
    /// the store does not grow and a restart has nothing stale to consider.
    /// A session ends when its time runs out or when the schedule locks its
    /// classroom; each end leaves a `session.end` audit row.
    ///
    /// A classroom whose request is being decided is left for the next pass
    /// (the request wakes the planner when it is done), so that the removal
    /// written here can never land after, and erase, the request's session.
    pub fn expire_inputs(&self, now: DateTime<Utc>) {
        let config = self.config();
        let mut batch = Batch::default();
        let mut touched = Vec::new();
        let locks = self.classroom_locks.read().unwrap_or_else(|e| e.into_inner()).clone();
        // A classroom no request holds; gone classrooms take no requests.
        let free = |c: &crate::config::ClassroomId| locks.get(c).is_none_or(|l| l.clone().try_lock_owned().is_ok());
        let mut state = self.lock_state();
        let super::Runtime {
            sessions,
            overrides,
            planned,
            ..
        } = &mut *state;
        sessions.retain(|c, s| {
            let Some(classroom) = config.classroom(c.as_str()) else {
                // Ended by the reload that removed the classroom.
                return true;
            };
            let (reason, why) = if s.until <= now {
                // Cut short by a lock (sessions end at the next lock), or
                // simply over.
                let inputs = policy::Inputs {
                    session: None,
                    override_: overrides.get(c),
                    planned: planned.get(c).map_or(&[], Vec::as_slice),
                };
                let overridden = policy::override_in_force(inputs, s.until).is_some();
                if overridden {
                    (
                        SessionEnd::Override,
                        "its time ran out while an IT override held the classroom",
                    )
                } else if classroom.schedule.mode_at(classroom.timezone, s.until) == Mode::Locked {
                    (SessionEnd::Locked, "the schedule locked the classroom")
                } else {
                    (SessionEnd::Expired, "its time ran out")
                }
            } else if s.started <= now
                && policy::active_session(classroom, Some(s), now).is_none()
                && classroom.schedule.mode_at(classroom.timezone, now) == Mode::Locked
            {
                (SessionEnd::Locked, "the schedule locked the classroom")
            } else {
                return true;
            };
            if !free(c) {
                return true;
            }
            batch
                .audit
                .push(session_end_record(now, c, classroom.timezone, s, reason, why));
            batch.sessions.push((c.clone(), None));
            touched.push(c.clone());
            false
        });
        overrides.retain(|c, o| {
            if o.until.is_none_or(|u| u > now) || !free(c) {
                return true;
            }
            batch.overrides.push((c.clone(), None));
            batch.audit.push(AuditRecord {
                at: now,
                actor: "borne".into(),
                role: None,
                classroom: Some(c.to_string()),
                access_point: None,
                action: "override.expire".into(),
                detail: format!("override {} by {} ended ({})", o.wifi, o.by, o.reason),
                result: "ok".into(),
                source: None,
                via: None,
            });
            touched.push(c.clone());
            false
        });
        planned.retain(|c, list| {
            if !free(c) {
                return true;
            }
            list.retain(|p| {
                let Some(u) = p.override_.until.filter(|u| *u <= now) else {
                    return true;
                };
                batch.planned.push((c.clone(), p.from, None));
                batch.audit.push(AuditRecord {
                    at: now,
                    actor: "borne".into(),
                    role: None,
                    classroom: Some(c.to_string()),
                    access_point: None,
                    action: "override.expire".into(),
                    detail: format!(
                        "planned override {} by {} ended at {} ({})",
                        p.override_.wifi,
                        p.override_.by,
                        u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        p.override_.reason
                    ),
                    result: "ok".into(),
                    source: None,
                    via: None,
                });
                touched.push(c.clone());
                false
            });
            !list.is_empty()
        });
        if touched.is_empty() {
            return;
        }
        // Queued before the state lock is released: a request that reads
        // the state after this commits after this removal.
        self.writer.enqueue(batch);
        drop(state);
        for c in &touched {
            self.announce(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::OverrideRequest;
    use super::super::fixture::{Fixture, actor};
    use crate::policy::{Request, Wifi};

    #[tokio::test]
    async fn ended_inputs_leave_memory_and_the_database() {
        let f = Fixture::new("2026-12-01T09:00:00Z");
        let (admin, teacher) = (f.user("admin"), f.user("teacher1"));
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(30) })
            .await
            .unwrap();
        let request = OverrideRequest {
            wifi: Wifi::On,
            from: None,
            until: Some("2026-12-01T09:20:00Z".parse().unwrap()),
            reason: "exam".into(),
        };
        f.core.set_override(&actor(&admin), "c2", request).await.unwrap();
        let now = f.core.now();
        assert_eq!(
            f.core.next_input_expiry(now).unwrap().to_rfc3339(),
            "2026-12-01T09:20:00+00:00"
        );
        f.set_now("2026-12-01T09:20:00Z");
        f.core.expire_inputs(f.core.now());
        assert!(f.core.status(&admin, "c2").unwrap().override_.is_none());
        assert!(f.core.status(&admin, "c1").unwrap().session.is_some());
        f.set_now("2026-12-01T09:30:00Z");
        f.core.expire_inputs(f.core.now());
        assert!(f.core.next_input_expiry(f.core.now()).is_none());
        let audit = f.audit().await;
        let again = f.restarted();
        assert!(again.status(&admin, "c1").unwrap().session.is_none());
        assert!(again.status(&admin, "c2").unwrap().override_.is_none());
        let expired = audit.iter().find(|e| e.record.action == "override.expire").unwrap();
        assert_eq!(expired.record.actor, "borne");
        let ends = f.session_ends().await;
        assert_eq!(ends.len(), 1, "{ends:?}");
        assert!(
            ends[0].starts_with("c1 expired: its time ran out (session on by teacher1"),
            "{ends:?}"
        );
    }

    #[tokio::test]
    async fn a_session_cut_by_the_lock_ends_as_locked() {
        // 16:30 in Paris; the lock comes at 17:00.
        let f = Fixture::new("2026-12-01T15:30:00Z");
        let teacher = f.user("teacher1");
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(120) })
            .await
            .unwrap();
        f.set_now("2026-12-01T16:00:00Z");
        f.core.expire_inputs(f.core.now());
        let ends = f.session_ends().await;
        assert_eq!(ends.len(), 1, "{ends:?}");
        assert!(
            ends[0].starts_with("c1 locked: the schedule locked the classroom"),
            "{ends:?}"
        );
    }
}
