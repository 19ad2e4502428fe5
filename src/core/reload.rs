//! The write path for a reload: adopting a new configuration.

use std::sync::Arc;

use super::{ApState, Core, SessionEnd, session_end_record};
use crate::config::Config;
use crate::policy;
use crate::store::{Batch, StoreError};

impl Core {
    /// Adopts a reloaded configuration, ordered with requests: those under
    /// way finish against the old configuration first, later ones see the
    /// new one.
    ///
    /// Teacher sessions of classrooms that are gone, or that the new
    /// schedule no longer allows, end (with a `session.end` audit row).
    /// Overrides are kept, even for a classroom that is gone: they are IT's
    /// decisions and apply again if it comes back. What the reconciler knew
    /// of removed access points is dropped.
    ///
    /// # Errors
    /// The ended sessions could not be stored; the configuration is
    /// adopted all the same (they no longer hold under it), and the next
    /// start ends them again.
    pub async fn replace_config(&self, config: Arc<Config>) -> Result<(), StoreError> {
        let _gate = self.gate.write().await;
        let old = self.config();
        let now = self.now();
        let mut batch = Batch::default();
        let mut touched = Vec::new();
        {
            let mut state = self.lock_state();
            state.sessions.retain(|c, s| {
                let Some(before) = old.classroom(c.as_str()) else {
                    return true;
                };
                let held = policy::active_session(before, Some(s), now).is_some();
                let why = match config.classroom(c.as_str()) {
                    None => format!("classroom {c} was removed from the configuration"),
                    Some(after) if held && policy::active_session(after, Some(s), now).is_none() => {
                        format!("the schedule of classroom {c} changed and no longer allows it")
                    }
                    Some(_) => return true,
                };
                batch
                    .audit
                    .push(session_end_record(now, c, before.timezone, s, SessionEnd::Reload, &why));
                batch.sessions.push((c.clone(), None));
                touched.push(c.clone());
                false
            });
            state.aps.retain(|ap, _| config.access_point(ap.as_str()).is_some());
            for ap in &config.access_points {
                state.aps.entry(ap.id.clone()).or_insert_with(|| ApState::unknown(now));
            }
        }
        self.rebuild_locks(&config);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config.clone();
        let stored = if batch.sessions.is_empty() {
            Ok(())
        } else {
            self.writer.commit(batch).await
        };
        for c in touched.iter().chain(config.classrooms.iter().map(|c| &c.id)) {
            self.announce(c);
        }
        self.poke();
        stored
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{CONFIG, Fixture, actor};
    use super::super::{OverrideRequest, RequestError};
    use crate::config::ClassroomId;
    use crate::policy::{Reason, Request, Wifi};

    const MORNING: &str = "2026-12-01T09:00:00Z";

    /// Issue 11 item 5: a reload that drops a classroom keeps its override
    /// (IT's decision), which applies again when the classroom comes back;
    /// its session ends with an audit row.
    #[tokio::test]
    async fn a_classroom_that_leaves_keeps_its_override_and_ends_its_session() {
        let f = Fixture::new(MORNING);
        let (admin, teacher) = (f.user("admin"), f.user("teacher1"));
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: None })
            .await
            .unwrap();
        let incident = OverrideRequest {
            wifi: Wifi::Off,
            from: None,
            until: None,
            reason: "security incident".into(),
        };
        f.core.set_override(&actor(&admin), "c2", incident).await.unwrap();
        let without = f.variant(&Fixture::without("c1").replace("c2", "c9"));
        f.core.replace_config(without).await.unwrap();
        assert_eq!(f.stored().await, (vec![], vec!["c2".to_owned()]));
        let ends = f.session_ends().await;
        assert_eq!(ends.len(), 1, "{ends:?}");
        assert!(ends[0].starts_with("c1 reload: classroom c1 was removed"), "{ends:?}");
        // A restart on the reduced file does not drop it either.
        assert_eq!(f.restarted().config().classrooms.len(), 2);
        f.core.replace_config(f.variant(CONFIG)).await.unwrap();
        let c2 = f.core.status(&admin, "c2").unwrap();
        assert_eq!((c2.wifi, c2.reason), (Wifi::Off, Reason::Override));
        assert_eq!(c2.override_.unwrap().reason, "security incident");
        // The session does not come back with its classroom.
        assert!(f.core.status(&admin, "c1").unwrap().session.is_none());
    }

    /// Issue 11 item 6: a request decided against a configuration that a
    /// reload replaces while the request is under way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_and_a_reload_are_ordered() {
        let f = Fixture::new(MORNING);
        let teacher = f.user("teacher1");
        // Hold the classroom so the request stops between reading the
        // configuration and committing.
        let held = f.core.lock_classrooms(&[ClassroomId::from("c1")]).await;
        let core = f.core.clone();
        let user = teacher.clone();
        let request = tokio::spawn(async move {
            core.teacher_request(&actor(&user), "c1", Request::On { minutes: None })
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let core = f.core.clone();
        let without = f.variant(&Fixture::without("c1"));
        let reload = tokio::spawn(async move { core.replace_config(without).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        drop(held);
        let answered = request.await.unwrap();
        reload.await.unwrap().unwrap();
        assert_eq!(
            f.stored().await.0,
            Vec::<String>::new(),
            "no session of a removed classroom"
        );
        let ends = f.session_ends().await;
        match answered {
            // Decided before the reload: its session ended with the classroom.
            Ok(_) => assert!(ends.iter().any(|e| e.starts_with("c1 reload:")), "{ends:?}"),
            Err(e) => assert!(matches!(e, RequestError::NotFound(_)), "{e:?}"),
        }
    }

    #[tokio::test]
    async fn a_schedule_that_no_longer_allows_a_session_ends_it() {
        let f = Fixture::new(MORNING);
        let teacher = f.user("teacher1");
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: None })
            .await
            .unwrap();
        // The day now opens at 11:00.
        let later = f.variant(&CONFIG.replace("30 8 * * Mon-Fri", "0 11 * * Mon-Fri"));
        f.core.replace_config(later).await.unwrap();
        assert_eq!(f.stored().await.0, Vec::<String>::new());
        let ends = f.session_ends().await;
        assert!(
            ends[0].starts_with("c1 reload: the schedule of classroom c1 changed"),
            "{ends:?}"
        );
        // An unchanged reload ends nothing.
        f.core.replace_config(f.variant(CONFIG)).await.unwrap();
        assert_eq!(f.session_ends().await.len(), 1);
    }
}
