//! The write path for teachers: an on/off request becomes a session.

use super::actor::{audit, visible};
use super::{Actor, Core, RequestError, Status, refusal_code};
use crate::policy::{self, Inputs, Request, SessionChange};
use crate::store::Batch;

impl Core {
    /// A teacher's on/off request for a classroom.
    ///
    /// # Errors
    /// Not visible, not allowed, refused by the policy, or not stored.
    pub async fn teacher_request(
        &self,
        actor: &Actor<'_>,
        classroom_id: &str,
        request: Request,
    ) -> Result<Status, RequestError> {
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
        let now = self.now();
        let decision = {
            let state = self.lock_state();
            policy::decide(
                classroom,
                config.teacher_session,
                Inputs {
                    session: state.sessions.get(&classroom.id),
                    override_: state.overrides.get(&classroom.id),
                },
                request,
                &actor.user.name,
                now,
            )
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
}
