//! The write path for teachers: an on/off request becomes a session.

use std::sync::Arc;

use super::actor::{audit, visible};
use super::{
    Actor, Core, OwnedActor, RequestError, SessionEnd, Status, refusal_code, session_end_record, to_completion,
};
use crate::policy::{self, Request, SessionChange};
use crate::store::Batch;

impl Core {
    /// A teacher's on/off request for a classroom. It runs to the end even
    /// if the caller stops waiting: what is stored is what memory holds.
    ///
    /// # Errors
    /// Not visible, not allowed, refused by the policy, or not stored.
    pub async fn teacher_request(
        self: &Arc<Self>,
        actor: &Actor<'_>,
        classroom_id: &str,
        request: Request,
    ) -> Result<Status, RequestError> {
        let (core, actor, id) = (self.clone(), OwnedActor::of(actor), classroom_id.to_owned());
        to_completion(async move { core.decide_and_commit(&actor.actor(), &id, request).await }).await
    }

    async fn decide_and_commit(
        &self,
        actor: &Actor<'_>,
        classroom_id: &str,
        request: Request,
    ) -> Result<Status, RequestError> {
        let _gate = self.gate.read().await;
        let config = self.config();
        let classroom = visible(&config, actor.user, classroom_id)?;
        if !actor.user.can_switch(&classroom.id) {
            return Err(RequestError::Forbidden(format!(
                "{} ({}) may not switch classroom {}",
                actor.user.name, actor.user.role, classroom.id
            )));
        }
        if matches!(request, Request::On { .. }) && self.clock_untrusted() {
            return Err(RequestError::ClockUnsynchronized);
        }
        let _guard = self.lock_classrooms(std::slice::from_ref(&classroom.id)).await;
        self.notice_step();
        let now = self.now();
        let (decision, ended) = {
            let state = self.lock_state();
            let current = state.sessions.get(&classroom.id);
            let decision = policy::decide(
                classroom,
                config.teacher_session,
                state.inputs(&classroom.id),
                request,
                &actor.user.name,
                now,
            );
            // The session in force ends when the teacher switches the other
            // way; asking the same again only extends it.
            let active = policy::active_session(classroom, current, now);
            let ended = match (&decision, active) {
                (Ok(SessionChange::Clear), Some(s)) => Some(s.clone()),
                (Ok(SessionChange::Set(new)), Some(s)) if new.wifi != s.wifi => Some(s.clone()),
                _ => None,
            };
            (decision, ended)
        };
        let (action, detail) = match request {
            Request::On { minutes } => (
                "teacher.on",
                format!(
                    "on for {} minutes",
                    minutes.unwrap_or(config.teacher_session.default_minutes)
                ),
            ),
            Request::Off => ("teacher.off", "off".to_owned()),
        };
        let result = match &decision {
            Ok(_) => "accepted".to_owned(),
            Err(r) => format!("refused: {}", refusal_code(r)),
        };
        let mut batch = Batch::audit(vec![audit(actor, now, Some(&classroom.id), action, detail, result)]);
        if let Some(s) = &ended {
            let why = format!("{} asked for {}", actor.user.name, request_word(request));
            batch.audit.push(session_end_record(
                now,
                &classroom.id,
                classroom.timezone,
                s,
                SessionEnd::Teacher,
                &why,
            ));
        }
        if let Ok(change) = &decision {
            match change {
                SessionChange::Keep => {}
                SessionChange::Set(s) => batch.sessions.push((classroom.id.clone(), Some(s.clone()))),
                SessionChange::Clear => batch.sessions.push((classroom.id.clone(), None)),
            }
        }
        match (decision, self.writer.commit(batch).await) {
            (Err(refusal), stored) => {
                if let Err(e) = stored {
                    tracing::warn!(classroom = %classroom.id, error = %e, "refused request not recorded in the audit log");
                }
                Err(RequestError::Refused(refusal, classroom.timezone))
            }
            (Ok(_), Err(e)) => Err(RequestError::Store(e)),
            (Ok(change), Ok(())) => {
                {
                    let mut state = self.lock_state();
                    match change {
                        SessionChange::Keep => {}
                        SessionChange::Set(s) => {
                            state.sessions.insert(classroom.id.clone(), s);
                        }
                        SessionChange::Clear => {
                            state.sessions.remove(&classroom.id);
                        }
                    }
                }
                self.announce(&classroom.id);
                self.touch(std::slice::from_ref(&classroom.id));
                Ok(self.status_of(&config, classroom, now))
            }
        }
    }
}

fn request_word(request: Request) -> &'static str {
    match request {
        Request::On { .. } => "on",
        Request::Off => "off",
    }
}

#[cfg(test)]
mod tests {
    use super::super::RequestError;
    use super::super::fixture::{Fixture, actor};
    use crate::policy::{Reason, Request, Wifi};

    /// 10:00 in Paris on a Tuesday: classrooms of s1 are available.
    const MORNING: &str = "2026-12-01T09:00:00Z";

    #[tokio::test]
    async fn an_accepted_request_is_stored_before_it_is_answered() {
        let f = Fixture::new(MORNING);
        let teacher = f.user("teacher1");
        let status = f
            .core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(45) })
            .await
            .unwrap();
        assert_eq!(status.wifi, Wifi::On);
        assert_eq!(status.reason, Reason::Teacher);
        assert_eq!(status.until.unwrap().to_rfc3339(), "2026-12-01T10:45:00+01:00");
        // What was answered is what a restart finds.
        let again = f.restarted();
        let session = again.status(&teacher, "c1").unwrap().session.unwrap();
        assert_eq!((session.wifi, session.by.as_str()), (Wifi::On, "teacher1"));
        let audit = f.audit().await;
        let last = &audit.last().unwrap().record;
        assert_eq!(
            (last.action.as_str(), last.detail.as_str(), last.result.as_str()),
            ("teacher.on", "on for 45 minutes", "accepted")
        );
        assert_eq!(last.source.as_deref(), Some("127.0.0.1"));
    }

    #[tokio::test]
    async fn a_refused_request_changes_nothing_but_is_audited() {
        // 18:00 in Paris: locked.
        let f = Fixture::new("2026-12-01T17:00:00Z");
        let teacher = f.user("teacher1");
        let err = f
            .core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: None })
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Refused(..)), "{err:?}");
        assert!(f.core.status(&teacher, "c1").unwrap().session.is_none());
        assert!(f.restarted().status(&teacher, "c1").unwrap().session.is_none());
        let audit = f.audit().await;
        assert_eq!(audit.last().unwrap().record.result, "refused: locked");
    }

    #[tokio::test]
    async fn a_teacher_cannot_reach_another_classroom() {
        let f = Fixture::new(MORNING);
        let teacher = f.user("teacher1");
        let err = f
            .core
            .teacher_request(&actor(&teacher), "c2", Request::On { minutes: None })
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::NotFound(_)), "{err:?}");
        let err = f
            .core
            .teacher_request(&actor(&teacher), "nowhere", Request::Off)
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::NotFound(_)), "{err:?}");
        assert!(f.audit().await.is_empty(), "nothing was decided, nothing audited");
    }

    #[tokio::test]
    async fn off_ends_the_session() {
        let f = Fixture::new(MORNING);
        let teacher = f.user("teacher1");
        let a = actor(&teacher);
        f.core
            .teacher_request(&a, "c1", Request::On { minutes: None })
            .await
            .unwrap();
        let status = f.core.teacher_request(&a, "c1", Request::Off).await.unwrap();
        assert_eq!(status.wifi, Wifi::Off);
        assert!(
            f.restarted()
                .status(&teacher, "c1")
                .unwrap()
                .session
                .as_ref()
                .is_none_or(|s| s.wifi == Wifi::Off)
        );
    }

    /// Issue 11 item 4: a client that disconnects while its request is
    /// being committed must not leave the database and memory apart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_dropped_mid_commit_is_still_applied() {
        use futures_util::FutureExt as _;
        let f = Fixture::new(MORNING);
        let teacher = f.user("teacher1");
        let a = actor(&teacher);
        // Polled once, then dropped: what a reset connection does to a handler.
        let request = f.core.teacher_request(&a, "c1", Request::On { minutes: Some(30) });
        assert!(request.now_or_never().is_none(), "a commit waits for the disk");
        for _ in 0..500 {
            let in_memory = f.core.status(&teacher, "c1").unwrap().session.is_some();
            if f.stored().await.0 == ["c1"] && in_memory {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(f.stored().await.0, ["c1"], "the request was committed");
        assert!(
            f.core.status(&teacher, "c1").unwrap().session.is_some(),
            "stored but not in memory"
        );
        assert_eq!(f.core.status(&teacher, "c1").unwrap().wifi, Wifi::On);
    }

    #[tokio::test]
    async fn switching_the_other_way_ends_the_session_with_an_audit_row() {
        let f = Fixture::new(MORNING);
        let teacher = f.user("teacher1");
        let a = actor(&teacher);
        f.core
            .teacher_request(&a, "c1", Request::On { minutes: None })
            .await
            .unwrap();
        // Asking again extends: no end.
        f.core
            .teacher_request(&a, "c1", Request::On { minutes: None })
            .await
            .unwrap();
        f.core.teacher_request(&a, "c1", Request::Off).await.unwrap();
        let ends = f.session_ends().await;
        assert_eq!(ends.len(), 1, "{ends:?}");
        assert!(ends[0].starts_with("c1 teacher: teacher1 asked for off"), "{ends:?}");
        let row = f
            .audit()
            .await
            .into_iter()
            .find(|e| e.record.action == "session.end")
            .unwrap();
        assert_eq!((row.record.actor.as_str(), row.record.result.as_str()), ("borne", "ok"));
    }
}
