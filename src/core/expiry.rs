//! The write path for time: sessions and overrides that have ended leave
//! memory and the store.

use chrono::{DateTime, Utc};

use super::Core;
use crate::store::{AuditRecord, Batch};

impl Core {
    /// Drops expired sessions and overrides from memory and the store, so
    /// the store does not grow and a restart has nothing stale to consider.
    pub fn expire_inputs(&self, now: DateTime<Utc>) {
        let mut batch = Batch::default();
        let mut touched = Vec::new();
        {
            let mut state = self.lock_state();
            state.sessions.retain(|c, s| {
                let keep = s.until > now;
                if !keep {
                    batch.sessions.push((c.clone(), None));
                    touched.push(c.clone());
                }
                keep
            });
            state.overrides.retain(|c, o| {
                let keep = o.until.is_none_or(|u| u > now);
                if !keep {
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
                }
                keep
            });
        }
        if !touched.is_empty() {
            self.writer.enqueue(batch);
            for c in &touched {
                self.announce(c);
            }
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
    }
}
