//! The write path for IT: overrides on one classroom, a school or the city,
//! in force now or planned ahead (issue 16).
//!
//! A classroom holds at most one override set for now and any number of
//! planned ones, which never overlap each other. A planned override counts
//! from its start; while it runs it beats the override set before it, which
//! resumes after it if it has not ended (see
//! [`override_in_force`](crate::policy::override_in_force)). Setting or
//! clearing an override "now" also ends a planned one that has started:
//! IT's latest word about the present wins.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::actor::{audit, visible};
use super::{Actor, Core, OwnedActor, RequestError, Status, to_completion};
use crate::config::{ClassroomId, SchoolId};
use crate::policy::{Override, PlannedOverride, Wifi, override_in_force};
use crate::store::Batch;
use crate::store::SCHOOL_SCOPE_PREFIX;

/// Which classrooms a bulk override covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every classroom of a school.
    School(SchoolId),
    /// Every classroom.
    All,
}

/// An IT override as asked.
#[derive(Debug, Clone)]
pub struct OverrideRequest {
    /// The forced state.
    pub wifi: Wifi,
    /// When it starts (`None` or not after now: now).
    pub from: Option<DateTime<Utc>>,
    /// When it ends (`None`: until cleared).
    pub until: Option<DateTime<Utc>>,
    /// Why, shown to teachers.
    pub reason: String,
}

impl Core {
    /// Sets an override on one classroom.
    ///
    /// # Errors
    /// Not visible, not allowed, invalid, or not stored.
    pub async fn set_override(
        self: &Arc<Self>,
        actor: &Actor<'_>,
        classroom_id: &str,
        request: OverrideRequest,
    ) -> Result<Status, RequestError> {
        let (core, actor, classroom_id, request) =
            (self.clone(), OwnedActor::of(actor), classroom_id.to_owned(), request);
        to_completion(async move { core.set_override_now(&actor.actor(), &classroom_id, request).await }).await
    }

    async fn set_override_now(
        &self,
        actor: &Actor<'_>,
        classroom_id: &str,
        request: OverrideRequest,
    ) -> Result<Status, RequestError> {
        let _gate = self.gate.read().await;
        let config = self.config();
        let classroom = visible(&config, actor.user, classroom_id)?;
        if !actor.user.can_override(&classroom.id) {
            return Err(RequestError::Forbidden(format!(
                "{} ({}) may not override classroom {}",
                actor.user.name, actor.user.role, classroom.id
            )));
        }
        self.notice_step();
        let now = self.now();
        check_override(&request, now)?;
        let ids = vec![classroom.id.clone()];
        match planned_start(&request, now) {
            Some(from) => self.apply_planned(actor, &ids, request, from, now, None).await?,
            None => {
                self.apply_overrides(actor, &ids, Some(request), now, "override.set", None)
                    .await?;
            }
        }
        Ok(self.status_of(&config, classroom, now))
    }

    /// Clears one classroom's override.
    ///
    /// # Errors
    /// Not visible, not allowed, or not stored.
    pub async fn clear_override(
        self: &Arc<Self>,
        actor: &Actor<'_>,
        classroom_id: &str,
    ) -> Result<Status, RequestError> {
        let (core, actor, classroom_id) = (self.clone(), OwnedActor::of(actor), classroom_id.to_owned());
        to_completion(async move { core.clear_override_now(&actor.actor(), &classroom_id).await }).await
    }

    async fn clear_override_now(&self, actor: &Actor<'_>, classroom_id: &str) -> Result<Status, RequestError> {
        let _gate = self.gate.read().await;
        let config = self.config();
        let classroom = visible(&config, actor.user, classroom_id)?;
        if !actor.user.can_override(&classroom.id) {
            return Err(RequestError::Forbidden(format!(
                "{} ({}) may not clear overrides of classroom {}",
                actor.user.name, actor.user.role, classroom.id
            )));
        }
        self.notice_step();
        let now = self.now();
        let ids = vec![classroom.id.clone()];
        self.apply_overrides(actor, &ids, None, now, "override.clear", None)
            .await?;
        Ok(self.status_of(&config, classroom, now))
    }

    /// Sets (or with `None` clears) overrides on a whole school or the whole
    /// city, atomically: all recorded or none. Returns the classrooms covered.
    ///
    /// # Errors
    /// Unknown school, not allowed on every classroom covered, or not stored.
    pub async fn bulk_override(
        self: &Arc<Self>,
        actor: &Actor<'_>,
        scope: &Scope,
        request: Option<OverrideRequest>,
    ) -> Result<Vec<ClassroomId>, RequestError> {
        let (core, actor, scope, request) = (self.clone(), OwnedActor::of(actor), scope.clone(), request);
        to_completion(async move { core.bulk_override_now(&actor.actor(), &scope, request).await }).await
    }

    async fn bulk_override_now(
        &self,
        actor: &Actor<'_>,
        scope: &Scope,
        request: Option<OverrideRequest>,
    ) -> Result<Vec<ClassroomId>, RequestError> {
        let _gate = self.gate.read().await;
        let config = self.config();
        let ids: Vec<ClassroomId> = match scope {
            Scope::School(s) => {
                let school = config
                    .school(s.as_str())
                    .filter(|school| school.classrooms.iter().any(|c| actor.user.can_see(c)))
                    .ok_or_else(|| RequestError::NotFound(format!("no school \"{s}\" visible to you")))?;
                school.classrooms.clone()
            }
            Scope::All => config.classrooms.iter().map(|c| c.id.clone()).collect(),
        };
        if actor.user.role != crate::config::Role::Admin {
            return Err(RequestError::Forbidden(format!(
                "{} ({}) may not set overrides",
                actor.user.name, actor.user.role
            )));
        }
        if let Some(denied) = ids.iter().find(|c| !actor.user.can_override(c)) {
            // Name the classroom only if the user may see it: a refusal
            // never tells what lies outside the caller's scope (issue 12).
            let message = if actor.user.can_see(denied) {
                format!(
                    "{} may not override classroom {denied}, which this scope covers",
                    actor.user.name
                )
            } else {
                format!(
                    "{} may not override every classroom this scope covers; name one of your schools instead",
                    actor.user.name
                )
            };
            return Err(RequestError::Forbidden(message));
        }
        self.notice_step();
        let now = self.now();
        if let Some(r) = &request {
            check_override(r, now)?;
            if let Some(from) = planned_start(r, now) {
                let r = r.clone();
                self.apply_planned(actor, &ids, r, from, now, Some(scope)).await?;
                return Ok(ids);
            }
        }
        let action = if request.is_some() {
            "override.set"
        } else {
            "override.clear"
        };
        let ids = match request {
            Some(_) => ids,
            // Clearing touches only classrooms that have an override in
            // force (planned ones stay: they are cancelled by their start).
            None => {
                let state = self.lock_state();
                ids.into_iter()
                    .filter(|c| {
                        state.overrides.contains_key(c)
                            || state.planned.get(c).is_some_and(|l| l.iter().any(|p| p.is_active(now)))
                    })
                    .collect()
            }
        };
        self.apply_overrides(actor, &ids, request, now, action, Some(scope))
            .await?;
        Ok(ids)
    }

    async fn apply_overrides(
        &self,
        actor: &Actor<'_>,
        ids: &[ClassroomId],
        request: Option<OverrideRequest>,
        now: DateTime<Utc>,
        action: &str,
        scope: Option<&Scope>,
    ) -> Result<(), RequestError> {
        let _guards = self.lock_classrooms(ids).await;
        let value = request.map(|r| Override {
            wifi: r.wifi,
            until: r.until,
            reason: r.reason,
            by: actor.user.name.clone(),
            set_at: now,
        });
        let detail = match &value {
            Some(o) => format!(
                "{} until {}: {}",
                o.wifi,
                o.until.map_or_else(|| "cleared".to_owned(), |u| u.to_rfc3339()),
                o.reason
            ),
            None => "cleared".to_owned(),
        };
        let mut batch = Batch::default();
        // Planned overrides that have started are replaced too.
        let started: Vec<(ClassroomId, DateTime<Utc>)> = {
            let state = self.lock_state();
            ids.iter()
                .flat_map(|id| {
                    state
                        .planned
                        .get(id)
                        .into_iter()
                        .flatten()
                        .filter(|p| p.is_active(now))
                        .map(|p| (id.clone(), p.from))
                })
                .collect()
        };
        for id in ids {
            batch.overrides.push((id.clone(), value.clone()));
        }
        for (id, from) in &started {
            batch.planned.push((id.clone(), *from, None));
        }
        match scope {
            None => {
                for id in ids {
                    batch.audit.push(audit(
                        actor,
                        now,
                        Some(id),
                        action,
                        detail.clone(),
                        "accepted".to_owned(),
                    ));
                }
            }
            Some(scope) => {
                // One row for the request; one per classroom only where the
                // outcome differs from it: an override by someone else, or
                // with another state, end or reason, that this one replaces.
                let what = match scope {
                    Scope::School(s) => format!("{SCHOOL_SCOPE_PREFIX}{s}"),
                    Scope::All => "scope all".to_owned(),
                };
                batch.audit.push(audit(
                    actor,
                    now,
                    None,
                    action,
                    format!("{what}, {} classrooms: {detail}", ids.len()),
                    "accepted".to_owned(),
                ));
                if let Some(new) = &value {
                    let state = self.lock_state();
                    for id in ids {
                        let Some(old) = override_in_force(state.inputs(id), now) else {
                            continue;
                        };
                        if (old.wifi, old.until, &old.reason, &old.by) == (new.wifi, new.until, &new.reason, &new.by) {
                            continue;
                        }
                        let old_until = old.until.map_or_else(|| "cleared".to_owned(), |u| u.to_rfc3339());
                        batch.audit.push(audit(
                            actor,
                            now,
                            Some(id),
                            action,
                            format!(
                                "{detail} (replaces {} until {old_until} by {}: {})",
                                old.wifi, old.by, old.reason
                            ),
                            "accepted".to_owned(),
                        ));
                    }
                }
            }
        }
        self.writer.commit(batch).await?;
        {
            let mut state = self.lock_state();
            for (id, from) in &started {
                if let Some(list) = state.planned.get_mut(id) {
                    list.retain(|p| p.from != *from);
                }
            }
            for id in ids {
                match &value {
                    Some(o) => {
                        state.overrides.insert(id.clone(), o.clone());
                    }
                    None => {
                        state.overrides.remove(id);
                    }
                }
            }
        }
        for id in ids {
            self.announce(id);
        }
        self.touch(ids);
        Ok(())
    }

    /// Records an override planned to start at `from` on `ids`; refused
    /// if it would overlap one already planned there.
    async fn apply_planned(
        &self,
        actor: &Actor<'_>,
        ids: &[ClassroomId],
        request: OverrideRequest,
        from: DateTime<Utc>,
        now: DateTime<Utc>,
        scope: Option<&Scope>,
    ) -> Result<(), RequestError> {
        let _guards = self.lock_classrooms(ids).await;
        let planned = PlannedOverride {
            from,
            override_: Override {
                wifi: request.wifi,
                until: request.until,
                reason: request.reason,
                by: actor.user.name.clone(),
                set_at: now,
            },
        };
        {
            let state = self.lock_state();
            for id in ids {
                let clash = state
                    .planned
                    .get(id)
                    .into_iter()
                    .flatten()
                    .find(|p| p.overlaps(planned.from, planned.override_.until));
                if let Some(p) = clash {
                    return Err(RequestError::Invalid(format!(
                        "classroom {id} already has an override planned {}; cancel it first \
                         (DELETE with ?from={}) or choose another window",
                        window(p.from, p.override_.until),
                        p.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )));
                }
            }
        }
        let o = &planned.override_;
        let detail = format!("planned {}, {}: {}", window(from, o.until), o.wifi, o.reason);
        let mut batch = Batch::default();
        for id in ids {
            batch.planned.push((id.clone(), from, Some(o.clone())));
        }
        batch
            .audit
            .extend(audit_rows(actor, now, ids, scope, "override.plan", &detail));
        self.writer.commit(batch).await?;
        {
            let mut state = self.lock_state();
            for id in ids {
                let list = state.planned.entry(id.clone()).or_default();
                list.push(planned.clone());
                list.sort_by_key(|p| p.from);
            }
        }
        for id in ids {
            self.announce(id);
        }
        // The planner wakes at the start: `next_input_expiry` counts it.
        self.touch(ids);
        Ok(())
    }

    /// Cancels the override planned to start at `from` in one classroom,
    /// before it starts.
    ///
    /// # Errors
    /// Not visible, not allowed, nothing planned at `from` (or it has
    /// started: clear it instead), or not stored.
    pub async fn cancel_planned(
        self: &Arc<Self>,
        actor: &Actor<'_>,
        classroom_id: &str,
        from: DateTime<Utc>,
    ) -> Result<Status, RequestError> {
        let (core, actor, classroom_id) = (self.clone(), OwnedActor::of(actor), classroom_id.to_owned());
        to_completion(async move {
            let actor = actor.actor();
            let _gate = core.gate.read().await;
            let config = core.config();
            let classroom = visible(&config, actor.user, &classroom_id)?;
            if !actor.user.can_override(&classroom.id) {
                return Err(RequestError::Forbidden(format!(
                    "{} ({}) may not cancel overrides of classroom {}",
                    actor.user.name, actor.user.role, classroom.id
                )));
            }
            let now = core.now();
            let ids = vec![classroom.id.clone()];
            let from = chrono::SubsecRound::trunc_subsecs(from, 0);
            let cancelled = core.apply_cancel(&actor, &ids, from, now, None).await?;
            if cancelled.is_empty() {
                return Err(RequestError::NotFound(format!(
                    "classroom {} has no override planned to start at {}",
                    classroom.id,
                    from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )));
            }
            Ok(core.status_of(&config, classroom, now))
        })
        .await
    }

    /// Cancels the overrides planned to start at `from` on a school or the
    /// city (a planned bulk override); returns the classrooms where one was.
    ///
    /// # Errors
    /// Unknown school, not an admin, or not stored.
    pub async fn bulk_cancel_planned(
        self: &Arc<Self>,
        actor: &Actor<'_>,
        scope: &Scope,
        from: DateTime<Utc>,
    ) -> Result<Vec<ClassroomId>, RequestError> {
        let (core, actor, scope) = (self.clone(), OwnedActor::of(actor), scope.clone());
        to_completion(async move {
            let actor = actor.actor();
            let _gate = core.gate.read().await;
            let config = core.config();
            let ids: Vec<ClassroomId> = match &scope {
                Scope::School(s) => config
                    .school(s.as_str())
                    .filter(|school| school.classrooms.iter().any(|c| actor.user.can_see(c)))
                    .ok_or_else(|| RequestError::NotFound(format!("no school \"{s}\" visible to you")))?
                    .classrooms
                    .clone(),
                Scope::All => config.classrooms.iter().map(|c| c.id.clone()).collect(),
            };
            if actor.user.role != crate::config::Role::Admin {
                return Err(RequestError::Forbidden(format!(
                    "{} ({}) may not cancel overrides",
                    actor.user.name, actor.user.role
                )));
            }
            let now = core.now();
            let from = chrono::SubsecRound::trunc_subsecs(from, 0);
            core.apply_cancel(&actor, &ids, from, now, Some(&scope)).await
        })
        .await
    }

    async fn apply_cancel(
        &self,
        actor: &Actor<'_>,
        ids: &[ClassroomId],
        from: DateTime<Utc>,
        now: DateTime<Utc>,
        scope: Option<&Scope>,
    ) -> Result<Vec<ClassroomId>, RequestError> {
        let _guards = self.lock_classrooms(ids).await;
        // Only before its start: a started one is the override in force,
        // which DELETE without `from` clears.
        let found: Vec<(ClassroomId, PlannedOverride)> = {
            let state = self.lock_state();
            ids.iter()
                .filter_map(|id| {
                    let p = state.planned.get(id)?.iter().find(|p| p.from == from && p.from > now)?;
                    Some((id.clone(), p.clone()))
                })
                .collect()
        };
        let Some((_, first)) = found.first() else {
            return Ok(Vec::new());
        };
        let o = &first.override_;
        let detail = format!(
            "cancelled the override planned {}, {} by {}: {}",
            window(first.from, o.until),
            o.wifi,
            o.by,
            o.reason
        );
        let cancelled: Vec<ClassroomId> = found.iter().map(|(id, _)| id.clone()).collect();
        let mut batch = Batch::default();
        for id in &cancelled {
            batch.planned.push((id.clone(), from, None));
        }
        batch
            .audit
            .extend(audit_rows(actor, now, &cancelled, scope, "override.cancel", &detail));
        self.writer.commit(batch).await?;
        {
            let mut state = self.lock_state();
            for id in &cancelled {
                if let Some(list) = state.planned.get_mut(id) {
                    list.retain(|p| p.from != from);
                    if list.is_empty() {
                        state.planned.remove(id);
                    }
                }
            }
        }
        for id in &cancelled {
            self.announce(id);
        }
        self.touch(&cancelled);
        Ok(cancelled)
    }
}

/// The audit rows of a request on `ids`: one per classroom, or for a
/// scope one for the request (the classrooms are all treated alike).
fn audit_rows(
    actor: &Actor<'_>,
    now: DateTime<Utc>,
    ids: &[ClassroomId],
    scope: Option<&Scope>,
    action: &str,
    detail: &str,
) -> Vec<crate::store::AuditRecord> {
    match scope {
        None => ids
            .iter()
            .map(|id| audit(actor, now, Some(id), action, detail.to_owned(), "accepted".to_owned()))
            .collect(),
        Some(scope) => {
            let what = match scope {
                Scope::School(s) => format!("{SCHOOL_SCOPE_PREFIX}{s}"),
                Scope::All => "scope all".to_owned(),
            };
            vec![audit(
                actor,
                now,
                None,
                action,
                format!("{what}, {} classrooms: {detail}", ids.len()),
                "accepted".to_owned(),
            )]
        }
    }
}

/// `from 2026-12-06T08:00:00Z until 2026-12-06T20:00:00Z` (or `until cleared`).
fn window(from: DateTime<Utc>, until: Option<DateTime<Utc>>) -> String {
    let secs = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        "from {} until {}",
        secs(from),
        until.map_or_else(|| "cleared".to_owned(), secs)
    )
}

/// The start of a planned override: `from` when after now (a `from` in the
/// past means now).
/// Whole seconds: a start is also the key that cancels it.
fn planned_start(r: &OverrideRequest, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    use chrono::SubsecRound as _;
    r.from.map(|f| f.trunc_subsecs(0)).filter(|f| *f > now)
}

fn check_override(r: &OverrideRequest, now: DateTime<Utc>) -> Result<(), RequestError> {
    if r.reason.trim().is_empty() {
        return Err(RequestError::Invalid(
            "an override needs a reason (teachers see it)".into(),
        ));
    }
    if r.reason.chars().count() > 500 {
        return Err(RequestError::Invalid("the reason is longer than 500 characters".into()));
    }
    if let Some(u) = r.until
        && u <= now
    {
        return Err(RequestError::Invalid(format!(
            "until {} is in the past",
            u.to_rfc3339()
        )));
    }
    if let (Some(f), Some(u)) = (r.from, r.until)
        && f >= u
    {
        return Err(RequestError::Invalid(format!(
            "from {} is not before until {}",
            f.to_rfc3339(),
            u.to_rfc3339()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::RequestError;
    use super::super::fixture::{Fixture, actor};
    use super::{OverrideRequest, Scope};
    use crate::config::SchoolId;
    use crate::policy::{Reason, Request, Wifi};

    const MORNING: &str = "2026-12-01T09:00:00Z";

    fn off(reason: &str) -> OverrideRequest {
        OverrideRequest {
            wifi: Wifi::Off,
            from: None,
            until: None,
            reason: reason.into(),
        }
    }

    #[tokio::test]
    async fn an_override_beats_a_session_and_outlives_a_restart() {
        let f = Fixture::new(MORNING);
        let (admin, teacher) = (f.user("admin"), f.user("teacher1"));
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: None })
            .await
            .unwrap();
        let status = f
            .core
            .set_override(&actor(&admin), "c1", off("incident"))
            .await
            .unwrap();
        assert_eq!((status.wifi, status.reason), (Wifi::Off, Reason::Override));
        let again = f.restarted();
        let o = again.status(&admin, "c1").unwrap().override_.unwrap();
        assert_eq!(
            (o.wifi, o.reason.as_str(), o.by.as_str()),
            (Wifi::Off, "incident", "admin")
        );
        let status = f.core.clear_override(&actor(&admin), "c1").await.unwrap();
        assert!(status.override_.is_none());
        assert!(f.restarted().status(&admin, "c1").unwrap().override_.is_none());
        let actions: Vec<String> = f.audit().await.into_iter().map(|e| e.record.action).collect();
        assert_eq!(actions, ["teacher.on", "override.set", "override.clear"]);
    }

    #[tokio::test]
    async fn a_bulk_override_writes_one_row_plus_the_classrooms_it_treats_differently() {
        let f = Fixture::new(MORNING);
        let admin = f.user("admin");
        f.core
            .set_override(&actor(&admin), "c2", off("incident"))
            .await
            .unwrap();
        f.core
            .bulk_override(&actor(&admin), &Scope::School(SchoolId::from("s1")), Some(off("exam")))
            .await
            .unwrap();
        f.core.bulk_override(&actor(&admin), &Scope::All, None).await.unwrap();
        let rows: Vec<(Option<String>, String)> = f
            .audit()
            .await
            .into_iter()
            .map(|e| (e.record.classroom, e.record.detail))
            .collect();
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert_eq!(rows[0], (Some("c2".into()), "off until cleared: incident".into()));
        assert_eq!(
            rows[1],
            (None, "scope school s1, 2 classrooms: off until cleared: exam".into())
        );
        // c2 had another override: its row says what was replaced; c1 had none.
        assert_eq!(
            rows[2],
            (
                Some("c2".into()),
                "off until cleared: exam (replaces off until cleared by admin: incident)".into()
            )
        );
        assert_eq!(rows[3], (None, "scope all, 2 classrooms: cleared".into()));
    }

    #[tokio::test]
    async fn a_teacher_may_not_override() {
        let f = Fixture::new(MORNING);
        let teacher = f.user("teacher1");
        let err = f
            .core
            .set_override(&actor(&teacher), "c1", off("no"))
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Forbidden(_)), "{err:?}");
        let err = f
            .core
            .bulk_override(&actor(&teacher), &Scope::All, Some(off("no")))
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Forbidden(_)), "{err:?}");
        assert!(f.audit().await.is_empty());
    }

    #[tokio::test]
    async fn a_bad_override_is_refused_with_a_reason() {
        let f = Fixture::new(MORNING);
        let admin = f.user("admin");
        for (request, says) in [
            (off("  "), "needs a reason"),
            (off(&"x".repeat(501)), "longer than 500"),
            (
                OverrideRequest {
                    until: Some("2026-12-01T08:59:59Z".parse().unwrap()),
                    ..off("late")
                },
                "in the past",
            ),
        ] {
            let err = f.core.set_override(&actor(&admin), "c1", request).await.unwrap_err();
            assert!(matches!(&err, RequestError::Invalid(m) if m.contains(says)), "{err:?}");
        }
        assert!(f.core.status(&admin, "c1").unwrap().override_.is_none());
    }

    #[tokio::test]
    async fn a_school_override_covers_its_classrooms_only() {
        let f = Fixture::new(MORNING);
        let admin = f.user("admin");
        let ids = f
            .core
            .bulk_override(&actor(&admin), &Scope::School(SchoolId::from("s1")), Some(off("exam")))
            .await
            .unwrap();
        let ids: Vec<&str> = ids.iter().map(|c| c.as_str()).collect();
        assert_eq!(ids, ["c1", "c2"]);
        let again = f.restarted();
        assert!(again.status(&admin, "c2").unwrap().override_.is_some());
        assert!(again.status(&admin, "c3").unwrap().override_.is_none());
        // Clearing the city touches only classrooms that had one.
        let cleared = f.core.bulk_override(&actor(&admin), &Scope::All, None).await.unwrap();
        assert_eq!(cleared.len(), 2);
        assert!(f.restarted().status(&admin, "c1").unwrap().override_.is_none());
    }

    #[tokio::test]
    async fn a_session_that_runs_out_under_an_override_ends_as_override() {
        let f = Fixture::new(MORNING);
        let (admin, teacher) = (f.user("admin"), f.user("teacher1"));
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(30) })
            .await
            .unwrap();
        f.core
            .set_override(&actor(&admin), "c1", off("incident"))
            .await
            .unwrap();
        f.set_now("2026-12-01T09:30:00Z");
        f.core.expire_inputs(f.core.now());
        assert_eq!(f.stored().await.0, Vec::<String>::new());
        let ends = f.session_ends().await;
        assert_eq!(ends.len(), 1, "{ends:?}");
        assert!(
            ends[0].starts_with("c1 override: its time ran out while an IT override held the classroom"),
            "{ends:?}"
        );
    }

    fn planned(wifi: Wifi, from: &str, until: &str, reason: &str) -> OverrideRequest {
        OverrideRequest {
            wifi,
            from: Some(from.parse().unwrap()),
            until: Some(until.parse().unwrap()),
            reason: reason.into(),
        }
    }

    /// Issue 16 §2: listed, counts nowhere before its start, survives a
    /// restart, wakes the planner at its start, decides in its window, and
    /// leaves (audited) at its end.
    #[tokio::test]
    async fn a_planned_override_counts_from_its_start_and_survives_a_restart() {
        let f = Fixture::new(MORNING);
        let admin = f.user("admin");
        let status = f
            .core
            .set_override(
                &actor(&admin),
                "c1",
                planned(Wifi::On, "2026-12-01T13:00:00Z", "2026-12-01T15:30:00Z", "atelier"),
            )
            .await
            .unwrap();
        assert_eq!((status.wifi, status.reason), (Wifi::Off, Reason::Schedule));
        assert!(status.override_.is_none());
        assert_eq!(status.until.unwrap().to_rfc3339(), "2026-12-01T14:00:00+01:00");
        let listed: Vec<String> = status
            .planned_overrides
            .iter()
            .map(|p| {
                format!(
                    "{} {} {:?} {} {}",
                    p.from.to_rfc3339(),
                    p.wifi,
                    p.until.map(|u| u.to_rfc3339()),
                    p.reason,
                    p.by
                )
            })
            .collect();
        assert_eq!(
            listed,
            ["2026-12-01T14:00:00+01:00 on Some(\"2026-12-01T16:30:00+01:00\") atelier admin"]
        );
        // The planner wakes at its start.
        assert_eq!(
            f.core.next_input_expiry(f.core.now()).unwrap().to_rfc3339(),
            "2026-12-01T13:00:00+00:00"
        );
        // Teachers are not refused before it starts.
        let teacher = f.user("teacher1");
        f.core
            .teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(30) })
            .await
            .unwrap();
        f.core.writer().flush().await.unwrap();
        let again = f.restarted();
        assert_eq!(again.status(&admin, "c1").unwrap().planned_overrides.len(), 1);
        f.set_now("2026-12-01T13:00:00Z");
        let status = again.status(&admin, "c1").unwrap();
        assert_eq!((status.wifi, status.reason), (Wifi::On, Reason::Override));
        assert_eq!(status.override_.unwrap().reason, "atelier");
        assert!(status.planned_overrides.is_empty());
        assert_eq!(
            again.next_input_expiry(again.now()).unwrap().to_rfc3339(),
            "2026-12-01T15:30:00+00:00"
        );
        f.set_now("2026-12-01T15:30:00Z");
        f.core.expire_inputs(f.core.now());
        let status = f.core.status(&admin, "c1").unwrap();
        assert_eq!((status.wifi, status.reason), (Wifi::Off, Reason::Schedule));
        assert!(f.core.next_input_expiry(f.core.now()).is_none());
        let actions: Vec<String> = f.audit().await.into_iter().map(|e| e.record.action).collect();
        assert_eq!(
            actions,
            ["override.plan", "teacher.on", "session.end", "override.expire"]
        );
        assert!(crate::store::Store::load(&*f.store).unwrap().planned.is_empty());
    }

    /// Several planned overrides, never overlapping, besides the one in
    /// force; cancelled before their start by it; a bulk plan is one row.
    #[tokio::test]
    async fn planned_overrides_are_cancelled_by_their_start_and_never_overlap() {
        let f = Fixture::new(MORNING);
        let admin = f.user("admin");
        let a = actor(&admin);
        f.core.set_override(&a, "c1", off("incident")).await.unwrap();
        f.core
            .set_override(
                &a,
                "c1",
                planned(Wifi::On, "2026-12-01T13:00:00Z", "2026-12-01T15:00:00Z", "one"),
            )
            .await
            .unwrap();
        for (request, says) in [
            (
                planned(Wifi::On, "2026-12-01T14:00:00Z", "2026-12-01T16:00:00Z", "two"),
                "already has an override planned from 2026-12-01T13:00:00Z until 2026-12-01T15:00:00Z",
            ),
            (
                planned(Wifi::On, "2026-12-01T16:00:00Z", "2026-12-01T16:00:00Z", "two"),
                "is not before until",
            ),
        ] {
            let err = f.core.set_override(&a, "c1", request).await.unwrap_err();
            assert!(matches!(&err, RequestError::Invalid(m) if m.contains(says)), "{err:?}");
        }
        // Back to back is fine; a bulk plan covers c1 and c2 in one row.
        f.core
            .set_override(
                &a,
                "c1",
                planned(Wifi::Off, "2026-12-01T15:00:00Z", "2026-12-01T16:00:00Z", "two"),
            )
            .await
            .unwrap();
        let sunday = planned(
            Wifi::On,
            "2026-12-06T07:00:00Z",
            "2026-12-06T19:00:00Z",
            "bureau de vote",
        );
        let ids = f
            .core
            .bulk_override(&a, &Scope::School(SchoolId::from("s1")), Some(sunday))
            .await
            .unwrap();
        assert_eq!(ids.len(), 2);
        let status = f.core.status(&admin, "c1").unwrap();
        assert_eq!(status.override_.unwrap().reason, "incident");
        let reasons: Vec<&str> = status.planned_overrides.iter().map(|p| p.reason.as_str()).collect();
        assert_eq!(reasons, ["one", "two", "bureau de vote"]);
        // Cancel one by its start; again is a 404.
        let one: chrono::DateTime<chrono::Utc> = "2026-12-01T13:00:00Z".parse().unwrap();
        let status = f.core.cancel_planned(&a, "c1", one).await.unwrap();
        assert_eq!(status.planned_overrides.len(), 2);
        let err = f.core.cancel_planned(&a, "c1", one).await.unwrap_err();
        assert!(
            matches!(&err, RequestError::NotFound(m) if m.contains("no override planned")),
            "{err:?}"
        );
        let sunday_start = "2026-12-06T07:00:00Z".parse().unwrap();
        let cancelled = f.core.bulk_cancel_planned(&a, &Scope::All, sunday_start).await.unwrap();
        assert_eq!(cancelled.len(), 2);
        f.core.writer().flush().await.unwrap();
        let again = f.restarted();
        let left: Vec<String> = again
            .status(&admin, "c1")
            .unwrap()
            .planned_overrides
            .iter()
            .map(|p| p.reason.clone())
            .collect();
        assert_eq!(left, ["two"]);
        assert!(again.status(&admin, "c2").unwrap().planned_overrides.is_empty());
        let rows: Vec<(String, Option<String>)> = f
            .audit()
            .await
            .into_iter()
            .map(|e| (e.record.action, e.record.classroom))
            .collect();
        let plan_rows = rows.iter().filter(|(a, _)| a == "override.plan").count();
        assert_eq!(plan_rows, 3, "{rows:?}");
        assert_eq!(
            rows.iter().filter(|(a, _)| a == "override.cancel").collect::<Vec<_>>(),
            [
                &("override.cancel".to_owned(), Some("c1".to_owned())),
                &("override.cancel".to_owned(), None)
            ]
        );
        // A teacher may not plan.
        let teacher = f.user("teacher1");
        let err = f
            .core
            .set_override(
                &actor(&teacher),
                "c1",
                planned(Wifi::On, "2026-12-02T13:00:00Z", "2026-12-02T15:00:00Z", "x"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Forbidden(_)), "{err:?}");
    }

    /// An override set now while a planned one runs replaces it: IT's
    /// latest word about the present wins.
    #[tokio::test]
    async fn an_override_set_now_replaces_a_planned_one_that_started() {
        let f = Fixture::new(MORNING);
        let admin = f.user("admin");
        let a = actor(&admin);
        f.core
            .set_override(
                &a,
                "c1",
                planned(Wifi::On, "2026-12-01T10:00:00Z", "2026-12-01T12:00:00Z", "atelier"),
            )
            .await
            .unwrap();
        f.set_now("2026-12-01T10:30:00Z");
        assert_eq!(f.core.status(&admin, "c1").unwrap().wifi, Wifi::On);
        let status = f.core.set_override(&a, "c1", off("incident")).await.unwrap();
        assert_eq!(
            (status.wifi, status.override_.unwrap().reason.as_str()),
            (Wifi::Off, "incident")
        );
        let status = f.core.clear_override(&a, "c1").await.unwrap();
        assert_eq!((status.wifi, status.reason), (Wifi::Off, Reason::Schedule));
        f.core.writer().flush().await.unwrap();
        assert!(crate::store::Store::load(&*f.store).unwrap().planned.is_empty());
    }

    /// Issue 11 item 4, for IT: an override whose caller stops waiting
    /// is applied as stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_override_dropped_mid_commit_is_still_applied() {
        use futures_util::FutureExt as _;
        let f = Fixture::new(MORNING);
        let admin = f.user("admin");
        let a = actor(&admin);
        assert!(f.core.set_override(&a, "c2", off("incident")).now_or_never().is_none());
        for _ in 0..500 {
            let in_memory = f.core.status(&admin, "c2").unwrap().override_.is_some();
            if f.stored().await.1 == ["c2"] && in_memory {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the override is not both stored and in memory");
    }
}
