//! The core: the one place that holds the configuration in force, the
//! runtime inputs (teacher sessions, IT overrides) and what the access points
//! were last seen doing, and the only code that changes them.
//!
//! The API calls [`Core`]'s methods (it never touches a driver); each method
//! decides with the [`policy`](crate::policy), writes the change to the store, and only then
//! changes memory, wakes the reconciler and announces the change on the
//! event channel (SSE). The reconciler reads desired states from here and
//! writes back what drivers observe.
//!
//! Locking rule: `state` is a `std` mutex held for short, non-async
//! sections only. A request's read-decide-write-apply sequence is serialized
//! per classroom by an async lock in `classroom_locks`, so concurrent
//! requests on different classrooms still share one group commit.
//!
//! Layout: this file holds [`Core`] itself, its runtime state and the
//! wake-ups it gives the reconciler. The write path is one file per kind of
//! change: `teacher` (requests), `overrides` (IT, one classroom or many),
//! `reload` (a new configuration), `expiry` (time ending inputs), and
//! `observed` (what drivers report). The read path is `desired` (the
//! policy over the inputs) and `views` (statuses, summaries, metrics).
//! `actor` and `error` are what requests share. `remote` adopts what
//! other instances committed to a shared database. [`usage`] keeps the
//! usage report's run heartbeat and daily aggregates.

mod actor;
mod clock;
mod desired;
mod error;
mod expiry;
#[cfg(test)]
pub(crate) mod fixture;
mod idle;
mod lease;
mod observed;
mod overrides;
mod readiness;
mod reload;
mod remote;
mod session_end;
mod teacher;
mod timekeeping;
pub mod usage;
mod views;

pub use actor::Actor;
pub use clock::{Clock, SystemClock};
pub use error::{RequestError, refusal_code};
pub use observed::ApState;
pub use overrides::{OverrideRequest, Scope};
pub use remote::Source as RemoteSource;
pub use session_end::{SessionEnd, session_end_record};
pub use timekeeping::{ClockStatus, ClockStep};
pub use views::{ApView, ChangeView, OverrideView, PlannedView, SessionLimits, SessionView, Status, Summary};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, broadcast};

use crate::config::{ApId, ClassroomId, Config};
use crate::metrics::Metrics;
use crate::policy::{Override, PlannedOverride, Session};
use crate::store::{Batch, Snapshot, Writer};

#[derive(Debug, Default)]
struct Runtime {
    sessions: HashMap<ClassroomId, Session>,
    overrides: HashMap<ClassroomId, Override>,
    /// Overrides planned ahead, by classroom, in start order; a classroom
    /// may hold several (never overlapping) besides the one in force.
    planned: HashMap<ClassroomId, Vec<PlannedOverride>>,
    aps: HashMap<ApId, ApState>,
    /// Classrooms whose session was cut for lack of connected devices, and
    /// when (for the teacher page); see `idle.rs`.
    idle_ended: HashMap<ClassroomId, DateTime<Utc>>,
}

impl Runtime {
    /// The policy's inputs for a classroom.
    fn inputs(&self, classroom: &ClassroomId) -> crate::policy::Inputs<'_> {
        crate::policy::Inputs {
            session: self.sessions.get(classroom),
            override_: self.overrides.get(classroom),
            planned: self.planned.get(classroom).map_or(&[], Vec::as_slice),
        }
    }
}

/// A change the event stream announces: something about this classroom
/// may look different now.
pub type Event = ClassroomId;

/// The shared core; see the module docs.
pub struct Core {
    config: RwLock<Arc<Config>>,
    state: Mutex<Runtime>,
    /// Orders reloads with requests: a request holds it shared from reading
    /// the configuration until its change is in memory, a reload holds it
    /// exclusively, so a request is decided against the configuration in
    /// force when it commits.
    gate: tokio::sync::RwLock<()>,
    /// The last `/readyz` heartbeat.
    heartbeat: tokio::sync::Mutex<readiness::LastHeartbeat>,
    /// Serializes read-decide-write per classroom; rebuilt on reload.
    classroom_locks: RwLock<HashMap<ClassroomId, Arc<tokio::sync::Mutex<()>>>>,
    writer: Writer,
    clock: Arc<dyn Clock>,
    /// Steps of the wall clock and its synchronisation; see `timekeeping.rs`.
    timekeeping: Mutex<timekeeping::Timekeeping>,
    events: broadcast::Sender<Event>,
    /// Wakes the reconciler's planner; held by the reconciler's loop.
    pub(crate) wake: Notify,
    /// Classrooms whose inputs changed since the planner last looked.
    dirty: Mutex<std::collections::HashSet<ClassroomId>>,
    /// The planner must look at every classroom.
    full_pass: std::sync::atomic::AtomicBool,
    /// Metrics registry and instruments.
    pub metrics: Metrics,
    /// This instance in its cluster; see `remote.rs`.
    cluster: std::sync::OnceLock<Arc<crate::ha::Cluster>>,
}

impl Core {
    /// Builds the core from a configuration and what the store held.
    pub fn new(config: Arc<Config>, snapshot: Snapshot, writer: Writer, clock: Arc<dyn Clock>) -> Arc<Core> {
        let now = clock.now();
        let mut runtime = Runtime::default();
        let mut ended = Batch::default();
        for (c, s) in snapshot.sessions {
            match config.classroom(c.as_str()) {
                // Expired ones are ended (and audited) by the first expiry pass.
                Some(_) => {
                    runtime.sessions.insert(c, s);
                }
                None => {
                    let why = format!("classroom {c} is no longer in the configuration");
                    ended.audit.push(session_end_record(
                        now,
                        &c,
                        config.timezone,
                        &s,
                        SessionEnd::Reload,
                        &why,
                    ));
                    ended.sessions.push((c, None));
                }
            }
        }
        // Overrides are IT's decisions: kept, even for a classroom that is
        // gone, until they expire or are cleared (it may come back).
        runtime.overrides.extend(snapshot.overrides);
        for (c, p) in snapshot.planned {
            runtime.planned.entry(c).or_default().push(p);
        }
        for list in runtime.planned.values_mut() {
            list.sort_by_key(|p| p.from);
        }
        for (ap, observed) in snapshot.observed {
            if config.access_point(ap.as_str()).is_some() {
                runtime.aps.insert(
                    ap,
                    ApState {
                        observed,
                        consecutive_failures: 0,
                        // Not stored: after a restart a lease is unknown
                        // until the next "on" or renewal arms one.
                        lease_until: None,
                        zero_clients_since: None,
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
            gate: tokio::sync::RwLock::new(()),
            heartbeat: tokio::sync::Mutex::new(None),
            config: RwLock::new(config.clone()),
            state: Mutex::new(runtime),
            writer,
            clock,
            timekeeping: Mutex::new(timekeeping::Timekeeping::default()),
            events,
            wake: Notify::new(),
            dirty: Mutex::new(Default::default()),
            full_pass: std::sync::atomic::AtomicBool::new(true),
            metrics,
            cluster: std::sync::OnceLock::new(),
        });
        core.rebuild_locks(&config);
        if !ended.sessions.is_empty() {
            core.writer.enqueue(ended);
        }
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

    /// Now, as the wall clock says. A mode is a pure function of the
    /// instant, so a clock stepped back replays nothing: the planner
    /// notices the step and re-evaluates at the corrected time
    /// (`timekeeping.rs`).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
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
}

/// Runs a state-changing request to the end in its own task, even if the
/// caller stops waiting (a client that disconnects, a handler timeout):
/// what is committed to the store is always applied in memory.
async fn to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, RequestError>> + Send + 'static,
) -> Result<T, RequestError> {
    match tokio::spawn(work).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is going down: nothing more is applied.
        Err(_) => Err(RequestError::Store(crate::store::StoreError::Closed)),
    }
}

/// An [`Actor`] that a spawned task can own.
struct OwnedActor {
    user: crate::config::User,
    source: Option<String>,
    via: &'static str,
}

impl OwnedActor {
    fn of(actor: &Actor<'_>) -> Self {
        Self {
            user: actor.user.clone(),
            source: actor.source.clone(),
            via: actor.via,
        }
    }

    fn actor(&self) -> Actor<'_> {
        Actor {
            user: &self.user,
            source: self.source.clone(),
            via: self.via,
        }
    }
}
