//! The core: the one place that holds the configuration in force, the
//! runtime inputs (teacher sessions, IT overrides) and what the access points
//! were last seen doing, and the only code that changes them.
//!
//! The API calls [`Core`]'s methods (it never touches a driver); each method
//! decides with the [`policy`], writes the change to the store, and only then
//! changes memory, wakes the reconciler and announces the change on the
//! event channel (SSE). The reconciler reads desired states from here and
//! writes back what drivers observe.
//!
//! Locking rule: `state` is a `std` mutex held for short, non-async
//! sections only. A request's read-decide-write-apply sequence is serialized
//! per classroom by an async lock in `classroom_locks`, so concurrent
//! requests on different classrooms still share one group commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use tokio::sync::{Notify, broadcast};

use crate::config::{AccessPoint, ApId, Classroom, ClassroomId, Config, SchoolId, User};
use crate::driver::{Observation, ObservedWifi};
use crate::metrics::Metrics;
use crate::policy::{self, Desired, Inputs, Override, Reason, Refusal, Request, Session, SessionChange, Wifi};
use crate::schedule::Mode;
use crate::store::{AuditRecord, Batch, ObservedRecord, Snapshot, StoreError, Writer};

/// Where "now" comes from: the system clock, or a test's.
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What the reconciler knows of one access point.
#[derive(Debug, Clone)]
pub struct ApState {
    /// Last observation and its circumstances.
    pub observed: ObservedRecord,
    /// Failures since the last success.
    pub consecutive_failures: u32,
}

impl ApState {
    fn unknown(now: DateTime<Utc>) -> Self {
        Self {
            observed: ObservedRecord {
                wifi: ObservedWifi::Unknown,
                since: now,
                reachable: true,
                last_error: None,
                clients: None,
                assumed: false,
                last_contact: None,
            },
            consecutive_failures: 0,
        }
    }
}

#[derive(Debug, Default)]
struct Runtime {
    sessions: HashMap<ClassroomId, Session>,
    overrides: HashMap<ClassroomId, Override>,
    aps: HashMap<ApId, ApState>,
}

/// A refused or failed state-changing request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No such classroom or school (or not visible to the user: same
    /// answer, so ids cannot be probed). The sentence says which.
    #[error("{0}")]
    NotFound(String),
    /// The user may see it but not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The policy refused the request; times are shown in the time zone.
    #[error("{0}")]
    Refused(Refusal, Tz),
    /// The request is malformed in a way only the core can tell.
    #[error("{0}")]
    Invalid(String),
    /// The change could not be stored, so it was not made.
    #[error("the request was not applied: {0}")]
    Store(#[from] StoreError),
}

/// Who asks, from where: what the audit log records.
#[derive(Debug, Clone)]
pub struct Actor<'a> {
    /// The authenticated user.
    pub user: &'a User,
    /// The client's address.
    pub source: Option<String>,
}

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
    /// When it ends (`None`: until cleared).
    pub until: Option<DateTime<Utc>>,
    /// Why, shown to teachers.
    pub reason: String,
}

/// A change the event stream announces: something about this classroom
/// may look different now.
pub type Event = ClassroomId;

/// The shared core; see the module docs.
pub struct Core {
    config: RwLock<Arc<Config>>,
    state: Mutex<Runtime>,
    /// Serializes read-decide-write per classroom; rebuilt on reload.
    classroom_locks: RwLock<HashMap<ClassroomId, Arc<tokio::sync::Mutex<()>>>>,
    writer: Writer,
    clock: Arc<dyn Clock>,
    /// The latest "now" handed out: time used for decisions never goes
    /// backwards, so a wall clock stepped back does not replay transitions.
    high_water: Mutex<DateTime<Utc>>,
    events: broadcast::Sender<Event>,
    /// Wakes the reconciler's planner; held by the reconciler's loop.
    pub(crate) wake: Notify,
    /// Classrooms whose inputs changed since the planner last looked.
    dirty: Mutex<std::collections::HashSet<ClassroomId>>,
    /// The planner must look at every classroom.
    full_pass: std::sync::atomic::AtomicBool,
    /// Metrics registry and instruments.
    pub metrics: Metrics,
}

impl Core {
    /// Builds the core from a configuration and what the store held.
    pub fn new(config: Arc<Config>, snapshot: Snapshot, writer: Writer, clock: Arc<dyn Clock>) -> Arc<Core> {
        let now = clock.now();
        let mut runtime = Runtime::default();
        // Expired or orphaned entries are not resurrected.
        for (c, s) in snapshot.sessions {
            if config.classroom(c.as_str()).is_some() && s.until > now {
                runtime.sessions.insert(c, s);
            }
        }
        for (c, o) in snapshot.overrides {
            if config.classroom(c.as_str()).is_some() && o.until.is_none_or(|u| u > now) {
                runtime.overrides.insert(c, o);
            }
        }
        for (ap, observed) in snapshot.observed {
            if config.access_point(ap.as_str()).is_some() {
                runtime.aps.insert(
                    ap,
                    ApState {
                        observed,
                        consecutive_failures: 0,
                    },
                );
            }
        }
        for ap in &config.access_points {
            runtime
                .aps
                .entry(ap.id.clone())
                .or_insert_with(|| ApState::unknown(now));
        }
        let (events, _) = broadcast::channel(4096);
        let metrics = Metrics::new();
        let core = Arc::new(Core {
            classroom_locks: RwLock::new(HashMap::new()),
            config: RwLock::new(config.clone()),
            state: Mutex::new(runtime),
            writer,
            clock,
            high_water: Mutex::new(now),
            events,
            wake: Notify::new(),
            dirty: Mutex::new(Default::default()),
            full_pass: std::sync::atomic::AtomicBool::new(true),
            metrics,
        });
        core.rebuild_locks(&config);
        core
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, Runtime> {
        // Critical sections below never panic midway through an update; a
        // poisoned lock would only come from a bug elsewhere in the thread.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rebuild_locks(&self, config: &Config) {
        let mut locks = self.classroom_locks.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::take(&mut *locks);
        for c in &config.classrooms {
            let lock = old.get(&c.id).cloned().unwrap_or_default();
            locks.insert(c.id.clone(), lock);
        }
    }

    async fn lock_classrooms(&self, ids: &[ClassroomId]) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut sorted: Vec<&ClassroomId> = ids.iter().collect();
        sorted.sort();
        let locks: Vec<_> = {
            let map = self.classroom_locks.read().unwrap_or_else(|e| e.into_inner());
            sorted.into_iter().filter_map(|id| map.get(id).cloned()).collect()
        };
        // Always in id order, so two bulk requests cannot deadlock.
        let mut guards = Vec::with_capacity(locks.len());
        for l in locks {
            guards.push(l.lock_owned().await);
        }
        guards
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Now, never earlier than a "now" already handed out.
    pub fn now(&self) -> DateTime<Utc> {
        let t = self.clock.now();
        let mut hw = self.high_water.lock().unwrap_or_else(|e| e.into_inner());
        if t > *hw {
            *hw = t;
        }
        *hw
    }

    /// The store writer.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Subscribes to change announcements.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Announces that a classroom may look different.
    pub fn announce(&self, classroom: &ClassroomId) {
        let _ = self.events.send(classroom.clone());
    }

    /// Wakes the reconciler for a full pass over every classroom (a clock
    /// moved, a reload).
    pub fn poke(&self) {
        self.full_pass.store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }

    /// Wakes the reconciler for these classrooms only: a request changed
    /// their inputs. At hundreds of requests a second, re-evaluating the
    /// whole city for each would be wasted work.
    pub fn touch(&self, classrooms: &[ClassroomId]) {
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(classrooms.iter().cloned());
        self.wake.notify_one();
    }

    /// Takes what the reconciler must look at: `None` for everything, or
    /// the classrooms touched since the last call.
    pub(crate) fn take_dirty(&self) -> Option<Vec<ClassroomId>> {
        let dirty: Vec<ClassroomId> = self.dirty.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
        if self.full_pass.swap(false, std::sync::atomic::Ordering::AcqRel) {
            None
        } else {
            Some(dirty)
        }
    }

    /// The desired state of a classroom at `now`.
    pub fn desired(&self, classroom: &Classroom, now: DateTime<Utc>) -> Desired {
        let state = self.lock_state();
        policy::desired(
            classroom,
            Inputs {
                session: state.sessions.get(&classroom.id),
                override_: state.overrides.get(&classroom.id),
            },
            now,
        )
    }

    /// Evaluates every classroom at `now`, computing each (schedule, time
    /// zone) pair once: 10,000 classrooms usually share a handful.
    pub fn desired_all(&self, config: &Config, now: DateTime<Utc>) -> Vec<Desired> {
        let mut memo: HashMap<(*const crate::schedule::Schedule, Tz), policy::ScheduleNow> = HashMap::new();
        let state = self.lock_state();
        config
            .classrooms
            .iter()
            .map(|c| {
                let key = (Arc::as_ptr(&c.schedule), c.timezone);
                let sched = *memo.entry(key).or_insert_with(|| policy::ScheduleNow::of(c, now));
                policy::desired_with(
                    c,
                    sched,
                    Inputs {
                        session: state.sessions.get(&c.id),
                        override_: state.overrides.get(&c.id),
                    },
                    now,
                )
            })
            .collect()
    }

    /// The earliest instant after `now` at which a session or override ends.
    pub fn next_input_expiry(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let state = self.lock_state();
        let sessions = state.sessions.values().map(|s| s.until);
        let overrides = state.overrides.values().filter_map(|o| o.until);
        sessions.chain(overrides).filter(|t| *t > now).min()
    }

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

    /// What the reconciler knows of an AP.
    pub fn ap_state(&self, ap: &ApId) -> Option<ApState> {
        self.lock_state().aps.get(ap).cloned()
    }

    /// Records the outcome of a driver operation (or a device's report);
    /// returns whether what is seen changed.
    pub fn record_observation(&self, ap: &AccessPoint, result: Result<Observation, String>) -> bool {
        let now = self.now();
        let (changed, record) = {
            let mut state = self.lock_state();
            let entry = state.aps.entry(ap.id.clone()).or_insert_with(|| ApState::unknown(now));
            let before = entry.observed.clone();
            match &result {
                Ok(o) => {
                    if entry.observed.wifi != o.wifi {
                        entry.observed.since = now;
                    }
                    entry.observed.wifi = o.wifi;
                    entry.observed.clients = o.clients;
                    entry.observed.assumed = o.assumed;
                    entry.observed.reachable = true;
                    entry.observed.last_error = None;
                    entry.observed.last_contact = Some(now);
                    entry.consecutive_failures = 0;
                }
                Err(e) => {
                    entry.observed.reachable = false;
                    entry.observed.last_error = Some(e.clone());
                    entry.consecutive_failures = entry.consecutive_failures.saturating_add(1);
                }
            }
            let o = &entry.observed;
            let changed = o.wifi != before.wifi
                || o.reachable != before.reachable
                || o.last_error != before.last_error
                || o.clients != before.clients
                || o.assumed != before.assumed;
            (changed, entry.observed.clone())
        };
        if changed {
            let mut batch = Batch::default();
            batch.observed.push((ap.id.clone(), record));
            self.writer.enqueue(batch);
            self.announce(&ap.classroom);
        }
        changed
    }

    /// A device's state is presumed lost (came back online, broker
    /// reconnected): forget what was seen so the reconciler re-sends.
    pub fn forget_observation(&self, ap: &AccessPoint, reachable: Option<bool>) {
        let changed = {
            let mut state = self.lock_state();
            match state.aps.get_mut(&ap.id) {
                Some(entry) => {
                    entry.observed.wifi = ObservedWifi::Unknown;
                    if let Some(r) = reachable {
                        entry.observed.reachable = r;
                        if !r {
                            entry.observed.last_error = Some("the device reported itself offline".into());
                        }
                    }
                    true
                }
                None => false,
            }
        };
        if changed {
            self.announce(&ap.classroom);
        }
    }

    /// Adopts a reloaded configuration: runtime state of classrooms and APs
    /// that still exist is kept, the rest dropped (from the store too).
    pub fn replace_config(&self, config: Arc<Config>) {
        let now = self.now();
        let mut batch = Batch::default();
        {
            let mut state = self.lock_state();
            state.sessions.retain(|c, _| {
                let keep = config.classroom(c.as_str()).is_some();
                if !keep {
                    batch.sessions.push((c.clone(), None));
                }
                keep
            });
            state.overrides.retain(|c, _| {
                let keep = config.classroom(c.as_str()).is_some();
                if !keep {
                    batch.overrides.push((c.clone(), None));
                }
                keep
            });
            state.aps.retain(|ap, _| config.access_point(ap.as_str()).is_some());
            for ap in &config.access_points {
                state.aps.entry(ap.id.clone()).or_insert_with(|| ApState::unknown(now));
            }
        }
        self.rebuild_locks(&config);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config.clone();
        self.writer.enqueue(batch);
        for c in &config.classrooms {
            self.announce(&c.id);
        }
        self.poke();
    }

    // --- Requests (called by the API) -------------------------------------

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

    /// Sets an override on one classroom.
    ///
    /// # Errors
    /// Not visible, not allowed, invalid, or not stored.
    pub async fn set_override(
        &self,
        actor: &Actor<'_>,
        classroom_id: &str,
        request: OverrideRequest,
    ) -> Result<Status, RequestError> {
        let config = self.config();
        let classroom = visible(&config, actor.user, classroom_id)?;
        if !actor.user.can_override(&classroom.id) {
            return Err(RequestError::Forbidden(format!(
                "{} ({}) may not override classroom {}",
                actor.user.name, actor.user.role, classroom.id
            )));
        }
        let now = self.now();
        check_override(&request, now)?;
        let ids = vec![classroom.id.clone()];
        self.apply_overrides(actor, &config, &ids, Some(request), now, "override.set")
            .await?;
        Ok(self.status_of(&config, classroom, now))
    }

    /// Clears one classroom's override.
    ///
    /// # Errors
    /// Not visible, not allowed, or not stored.
    pub async fn clear_override(&self, actor: &Actor<'_>, classroom_id: &str) -> Result<Status, RequestError> {
        let config = self.config();
        let classroom = visible(&config, actor.user, classroom_id)?;
        if !actor.user.can_override(&classroom.id) {
            return Err(RequestError::Forbidden(format!(
                "{} ({}) may not clear overrides of classroom {}",
                actor.user.name, actor.user.role, classroom.id
            )));
        }
        let now = self.now();
        let ids = vec![classroom.id.clone()];
        self.apply_overrides(actor, &config, &ids, None, now, "override.clear")
            .await?;
        Ok(self.status_of(&config, classroom, now))
    }

    /// Sets (or with `None` clears) overrides on a whole school or the whole
    /// city, atomically: all recorded or none. Returns the classrooms covered.
    ///
    /// # Errors
    /// Unknown school, not allowed on every classroom covered, or not stored.
    pub async fn bulk_override(
        &self,
        actor: &Actor<'_>,
        scope: &Scope,
        request: Option<OverrideRequest>,
    ) -> Result<Vec<ClassroomId>, RequestError> {
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
            return Err(RequestError::Forbidden(format!(
                "{} may not override classroom {denied}, which this scope covers",
                actor.user.name
            )));
        }
        let now = self.now();
        if let Some(r) = &request {
            check_override(r, now)?;
        }
        let action = if request.is_some() {
            "override.set"
        } else {
            "override.clear"
        };
        let ids = match request {
            Some(_) => ids,
            // Clearing touches only classrooms that have an override.
            None => {
                let state = self.lock_state();
                ids.into_iter().filter(|c| state.overrides.contains_key(c)).collect()
            }
        };
        self.apply_overrides(actor, &config, &ids, request, now, action).await?;
        Ok(ids)
    }

    async fn apply_overrides(
        &self,
        actor: &Actor<'_>,
        config: &Config,
        ids: &[ClassroomId],
        request: Option<OverrideRequest>,
        now: DateTime<Utc>,
        action: &str,
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
        for id in ids {
            batch.overrides.push((id.clone(), value.clone()));
            batch.audit.push(audit(
                actor,
                now,
                Some(id),
                action,
                detail.clone(),
                "accepted".to_owned(),
            ));
        }
        self.writer.commit(batch).await?;
        {
            let mut state = self.lock_state();
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
        let _ = config;
        for id in ids {
            self.announce(id);
        }
        self.touch(ids);
        Ok(())
    }

    // --- Views --------------------------------------------------------------

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
        let active_override = state
            .overrides
            .get(&c.id)
            .filter(|o| o.is_active(now))
            .map(|o| OverrideView {
                wifi: o.wifi,
                until: o.until.map(|u| local(u, tz)),
                reason: o.reason.clone(),
                by: o.by.clone(),
            });
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

fn visible<'c>(config: &'c Config, user: &User, id: &str) -> Result<&'c Classroom, RequestError> {
    config
        .classroom(id)
        .filter(|c| user.can_see(&c.id))
        .ok_or_else(|| RequestError::NotFound(format!("no classroom \"{id}\" visible to you")))
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
    Ok(())
}

/// The machine code of a refusal, as the API and the audit log spell it.
pub fn refusal_code(r: &Refusal) -> &'static str {
    match r {
        Refusal::Locked { .. } => "locked",
        Refusal::Overridden(_) => "overridden",
        Refusal::MinutesOutOfRange { .. } => "minutes_out_of_range",
    }
}

fn audit(
    actor: &Actor<'_>,
    at: DateTime<Utc>,
    classroom: Option<&ClassroomId>,
    action: &str,
    detail: String,
    result: String,
) -> AuditRecord {
    AuditRecord {
        at,
        actor: actor.user.name.clone(),
        role: Some(actor.user.role.as_str().to_owned()),
        classroom: classroom.map(|c| c.to_string()),
        access_point: None,
        action: action.to_owned(),
        detail,
        result,
        source: actor.source.clone(),
    }
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
    /// The teacher session in force.
    pub session: Option<SessionView>,
    /// Its access points.
    pub access_points: Vec<ApView>,
    /// Time zone of the times above.
    pub timezone: String,
    /// Lengths a teacher may ask.
    pub session_minutes: SessionLimits,
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
}
