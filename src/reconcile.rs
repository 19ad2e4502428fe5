//! The reconciler: keeps every access point in the state its classroom's
//! policy wants, level-triggered like a Kubernetes controller.
//!
//! Two kinds of task:
//! - one **planner** ([`Reconciler::run`]) evaluates the policy for every
//!   classroom whenever something can have changed: at the next instant a
//!   schedule changes or a session or override ends (a timer, not polling),
//!   when the core is poked (a request), when a device reports, and at least
//!   every [`MAX_SLEEP`] so a wall-clock step is noticed. It hands each AP its
//!   desired state through a `watch` channel, so only the newest value is
//!   ever seen: no queue of stale commands.
//! - one **worker** per AP compares desired with observed and calls the
//!   driver until they agree, retrying failures forever with exponential
//!   backoff and jitter. At most one operation per AP is in flight (a worker
//!   does one thing at a time), and a global semaphore bounds operations in
//!   flight across all APs (`max_parallel`). A slow or dead AP only ever
//!   delays itself.
//!
//! On shutdown workers stop at a safe point: an operation in flight
//! finishes (the daemon bounds the wait), none is started. APs are left in
//! their last applied state: a restart never toggles a classroom.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{AccessPoint, ApId, ClassroomId, Config};
use crate::core::Core;
use crate::driver::{Driver, Observation, Report, sim::SimDriver};
use crate::policy::{Desired, Wifi};
use crate::store::{AuditRecord, Batch};

/// The planner sleeps at most this long, so that a wall clock stepped
/// forward (NTP, suspend) is acted on within this delay even though tokio's
/// timers run on the monotonic clock.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The drivers, by kind.
#[derive(Clone)]
pub struct Drivers {
    /// Simulated APs (always present: it costs nothing).
    pub sim: SimDriver,
    /// SSH APs.
    pub ssh: Option<Arc<dyn Driver>>,
    /// MQTT APs.
    pub mqtt: Option<Arc<dyn Driver>>,
}

impl Drivers {
    fn for_ap(&self, ap: &AccessPoint) -> Option<Arc<dyn Driver>> {
        match ap.driver.kind() {
            "sim" => Some(Arc::new(self.sim.clone())),
            "ssh" => self.ssh.clone(),
            "mqtt" => self.mqtt.clone(),
            _ => None,
        }
    }

    async fn reconfigure(&self, config: &Arc<Config>) {
        self.sim.reconfigure(config).await;
        for d in [&self.ssh, &self.mqtt].into_iter().flatten() {
            d.reconfigure(config).await;
        }
    }

    /// Closes driver connections.
    pub async fn shutdown(&self) {
        for d in [&self.ssh, &self.mqtt].into_iter().flatten() {
            d.shutdown().await;
        }
    }
}

/// The planner's handle on one worker.
struct Worker {
    desired: watch::Sender<Option<Wifi>>,
    /// Wakes the worker to look again (a device report).
    poke: Arc<Notify>,
    /// Stops this worker only (AP removed by a reload).
    cancel: CancellationToken,
}

/// The planner and the workers it owns.
pub struct Reconciler {
    core: Arc<Core>,
    drivers: Drivers,
    reports: mpsc::Receiver<(ApId, Report)>,
    permits: Arc<Semaphore>,
    workers: HashMap<ApId, Worker>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    last: HashMap<ClassroomId, Desired>,
    watchdog: Option<Duration>,
}

impl Reconciler {
    /// A reconciler over `core`. Workers are spawned on `tracker` so the
    /// daemon can wait for operations in flight at shutdown.
    pub fn new(
        core: Arc<Core>,
        drivers: Drivers,
        reports: mpsc::Receiver<(ApId, Report)>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let max_parallel = core.config().reconciler.max_parallel;
        Self {
            core,
            drivers,
            reports,
            permits: Arc::new(Semaphore::new(max_parallel)),
            workers: HashMap::new(),
            tracker,
            shutdown,
            last: HashMap::new(),
            watchdog: None,
        }
    }

    /// Pings systemd's watchdog from the planner loop at this interval, so
    /// a planner that stops turning gets the daemon restarted.
    pub fn with_watchdog(mut self, interval: Duration) -> Self {
        self.watchdog = Some(interval);
        self
    }

    /// The planner loop; returns at shutdown.
    pub async fn run(mut self) {
        let mut config = self.core.config();
        self.sync_workers(&config);
        let mut next_prune = tokio::time::Instant::now();
        let mut wake_at = self.core.now();
        loop {
            let current = self.core.config();
            let mut full = false;
            if !Arc::ptr_eq(&current, &config) {
                config = current;
                self.drivers.reconfigure(&config).await;
                self.sync_workers(&config);
                full = true;
            }
            let now = self.core.now();
            let dirty = self.core.take_dirty();
            wake_at = if full || dirty.is_none() || now >= wake_at {
                self.plan(&config, now, None)
            } else {
                // Only requests happened: look at their classrooms, keep the
                // timer, and wake for the sessions they may have started.
                let planned = self.plan(&config, now, dirty.as_deref());
                wake_at.min(planned)
            };
            if tokio::time::Instant::now() >= next_prune {
                next_prune = tokio::time::Instant::now() + Duration::from_secs(24 * 3600);
                self.prune(&config, now);
            }
            let mut sleep = (wake_at - now).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP);
            if let Some(interval) = self.watchdog {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                sleep = sleep.min(interval);
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tokio::time::sleep(sleep) => {
                    // Timer: re-evaluate everything from the current time;
                    // never assume the timer fired on time.
                    wake_at = self.core.now();
                }
                _ = self.core.wake.notified() => {}
                Some((ap, report)) = self.reports.recv() => self.on_report(&config, &ap, report),
            }
        }
        for w in self.workers.values() {
            w.cancel.cancel();
        }
    }

    /// Evaluates the classrooms (all, or `only` these), hands each AP its
    /// desired state, and returns when to look again.
    fn plan(&mut self, config: &Config, now: DateTime<Utc>, only: Option<&[ClassroomId]>) -> DateTime<Utc> {
        self.core.expire_inputs(now);
        let mut wake_at = now + chrono::Duration::from_std(MAX_SLEEP).unwrap_or_default();
        let selected: Vec<&crate::config::Classroom> = match only {
            None => config.classrooms.iter().collect(),
            Some(ids) => ids.iter().filter_map(|id| config.classroom(id.as_str())).collect(),
        };
        let desired = match only {
            None => self.core.desired_all(config, now),
            Some(_) => selected.iter().map(|c| self.core.desired(c, now)).collect(),
        };
        let mut mode_changes = Vec::new();
        for (classroom, d) in selected.into_iter().zip(desired) {
            if let Some(n) = d.next_change {
                wake_at = wake_at.min(n.at);
            }
            let previous = self.last.get(&classroom.id);
            if previous.is_some_and(|p| p.wifi == d.wifi) {
                // Same state for the APs; only the explanation may differ.
                if previous != Some(&d) {
                    if previous.is_some_and(|p| p.mode != d.mode) {
                        mode_changes.push((classroom.id.clone(), previous.map(|p| p.mode), d.mode, d.wifi));
                    }
                    self.core.announce(&classroom.id);
                    self.last.insert(classroom.id.clone(), d);
                }
                continue;
            }
            for ap_id in &classroom.access_points {
                if let Some(w) = self.workers.get(ap_id) {
                    w.desired.send_if_modified(|v| {
                        let changed = *v != Some(d.wifi);
                        *v = Some(d.wifi);
                        changed
                    });
                }
            }
            if let Some(prev) = previous {
                if prev.mode != d.mode {
                    mode_changes.push((classroom.id.clone(), Some(prev.mode), d.mode, d.wifi));
                }
                self.core.announce(&classroom.id);
            }
            self.last.insert(classroom.id.clone(), d);
        }
        if let Some(t) = self.core.next_input_expiry(now) {
            wake_at = wake_at.min(t);
        }
        if !mode_changes.is_empty() {
            let audit = mode_changes
                .into_iter()
                .filter_map(|(c, from, to, wifi)| {
                    let from = from?;
                    tracing::info!(classroom = %c, from = %from, to = %to, desired = %wifi, "schedule mode change");
                    self.core.metrics.schedule_changes.inc();
                    Some(AuditRecord {
                        at: now,
                        actor: "borne".into(),
                        role: None,
                        classroom: Some(c.to_string()),
                        access_point: None,
                        action: "mode.change".into(),
                        detail: format!("{from} -> {to}"),
                        result: "ok".into(),
                        source: None,
                    })
                })
                .collect();
            self.core.writer().enqueue(Batch::audit(audit));
        }
        if only.is_none() {
            self.last.retain(|c, _| config.classroom(c.as_str()).is_some());
        }
        wake_at
    }

    fn prune(&self, config: &Config, now: DateTime<Utc>) {
        let before = now - chrono::Duration::days(i64::from(config.audit_retention_days));
        let writer = self.core.writer().clone();
        self.tracker.spawn(async move {
            match writer.prune_audit(before).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned the audit log"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not prune the audit log"),
            }
        });
    }

    fn on_report(&self, config: &Config, ap_id: &ApId, report: Report) {
        let Some(ap) = config.access_point(ap_id.as_str()) else {
            return;
        };
        match report {
            Report::State(wifi) => {
                let previous = self.core.ap_state(ap_id).map(|s| s.observed.clients);
                self.core.record_observation(
                    ap,
                    Ok(Observation {
                        wifi,
                        clients: previous.flatten(),
                        assumed: false,
                    }),
                );
            }
            Report::Available(true) => {
                tracing::info!(school = %ap.school, classroom = %ap.classroom, ap = %ap_id, "device back online; re-sending its desired state");
                self.core.forget_observation(ap, Some(true));
            }
            Report::Available(false) => {
                tracing::warn!(school = %ap.school, classroom = %ap.classroom, ap = %ap_id, "device reported itself offline");
                self.core.forget_observation(ap, Some(false));
                return;
            }
            Report::Lost => self.core.forget_observation(ap, None),
        }
        if let Some(w) = self.workers.get(ap_id) {
            w.poke.notify_one();
        }
    }

    /// Spawns workers for new APs and stops those of removed ones.
    fn sync_workers(&mut self, config: &Config) {
        self.workers.retain(|id, w| {
            let keep = config.access_point(id.as_str()).is_some();
            if !keep {
                w.cancel.cancel();
            }
            keep
        });
        for ap in &config.access_points {
            if self.workers.contains_key(&ap.id) {
                continue;
            }
            // An AP added to a known classroom starts from its desired state.
            let (tx, rx) = watch::channel(self.last.get(&ap.classroom).map(|d| d.wifi));
            let poke = Arc::new(Notify::new());
            let cancel = self.shutdown.child_token();
            let worker = ApWorker {
                core: self.core.clone(),
                drivers: self.drivers.clone(),
                id: ap.id.clone(),
                desired: rx,
                poke: poke.clone(),
                permits: self.permits.clone(),
                cancel: cancel.clone(),
            };
            self.tracker.spawn(worker.run());
            self.workers.insert(
                ap.id.clone(),
                Worker {
                    desired: tx,
                    poke,
                    cancel,
                },
            );
        }
    }
}

/// One AP's worker; see the module docs.
struct ApWorker {
    core: Arc<Core>,
    drivers: Drivers,
    id: ApId,
    desired: watch::Receiver<Option<Wifi>>,
    poke: Arc<Notify>,
    permits: Arc<Semaphore>,
    cancel: CancellationToken,
}

enum Wake {
    Changed,
    Resync,
    Stop,
}

impl ApWorker {
    async fn run(mut self) {
        let settings = self.core.config().reconciler;
        let mut backoff = settings.backoff_initial;
        // Spread resyncs of thousands of APs over the interval.
        let first = settings.resync.mul_f64(rand::rng().random_range(0.5..1.0));
        let mut next_resync = tokio::time::Instant::now() + first;
        // Read before acting: a restart of borne must not bounce radios
        // that are already right (switching drops every client).
        let mut verified = false;
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            let target = *self.desired.borrow_and_update();
            let Some(target) = target else {
                match self.wait(None).await {
                    Wake::Stop => return,
                    _ => continue,
                }
            };
            let observed = self.core.ap_state(&self.id).map(|s| s.observed.wifi);
            let in_sync = observed.is_some_and(|o| o.is(target));
            if verified && in_sync {
                match self.wait(Some(next_resync)).await {
                    Wake::Stop => return,
                    Wake::Resync => {
                        verified = false;
                        next_resync = tokio::time::Instant::now() + settings.resync;
                    }
                    Wake::Changed => {}
                }
                continue;
            }
            let ok = self.step(target, &mut verified).await;
            if ok {
                backoff = settings.backoff_initial;
                continue;
            }
            // Equal jitter: between half and all of the backoff, so APs that
            // failed together do not retry together.
            let delay = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
            backoff = (backoff * 2).min(settings.backoff_max);
            if let Wake::Stop = self.wait(Some(tokio::time::Instant::now() + delay)).await {
                return;
            }
        }
    }

    /// Waits for a new desired state, a poke, the deadline or cancellation.
    async fn wait(&mut self, until: Option<tokio::time::Instant>) -> Wake {
        let deadline = async {
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.cancel.cancelled() => Wake::Stop,
            r = self.desired.changed() => if r.is_ok() { Wake::Changed } else { Wake::Stop },
            _ = self.poke.notified() => Wake::Changed,
            _ = deadline => Wake::Resync,
        }
    }

    /// Observes if needed, then applies if needed. Returns false on failure.
    async fn step(&mut self, target: Wifi, verified: &mut bool) -> bool {
        let core = self.core.clone();
        let metrics = &core.metrics;
        metrics.queue_depth.inc();
        let permit = tokio::select! {
            p = self.permits.clone().acquire_owned() => p,
            _ = self.cancel.cancelled() => { metrics.queue_depth.dec(); return true }
        };
        let result = self.operate(target, verified).await;
        drop(permit);
        metrics.queue_depth.dec();
        result
    }

    async fn operate(&mut self, target: Wifi, verified: &mut bool) -> bool {
        let config = self.core.config();
        let Some(ap) = config.access_point(self.id.as_str()) else {
            self.cancel.cancel();
            return true;
        };
        let Some(driver) = self.drivers.for_ap(ap) else {
            let msg = format!(
                "no {} driver is running (is the top-level {} block set?)",
                ap.driver.kind(),
                ap.driver.kind()
            );
            self.core.record_observation(ap, Err(msg));
            return false;
        };
        if !*verified {
            let t = std::time::Instant::now();
            let result = driver.observe(ap).await;
            self.account(ap, "observe", t, &result);
            match result {
                Ok(o) => {
                    *verified = true;
                    self.core.record_observation(ap, Ok(o));
                    if o.wifi.is(target) {
                        return true;
                    }
                }
                Err(e) => {
                    tracing::warn!(school = %ap.school, classroom = %ap.classroom, ap = %ap.id, desired = %target, error = %e, "cannot read access point");
                    self.record_failure(ap, "ap.observe", target, e.to_string());
                    return false;
                }
            }
        }
        // The desired state may have moved while observing: take the newest.
        let target = (*self.desired.borrow()).unwrap_or(target);
        let t = std::time::Instant::now();
        let result = driver.apply(ap, target).await;
        self.account(ap, "apply", t, &result);
        match result {
            Ok(o) if o.wifi.is(target) => {
                tracing::info!(school = %ap.school, classroom = %ap.classroom, ap = %ap.id, desired = %target, observed = o.wifi.as_str(), assumed = o.assumed, "access point switched");
                self.core.record_observation(ap, Ok(o));
                self.audit(ap, target, "ok".into());
                true
            }
            Ok(o) => {
                let msg = format!("still {} after switching {}", o.wifi.as_str(), target);
                tracing::warn!(school = %ap.school, classroom = %ap.classroom, ap = %ap.id, desired = %target, observed = o.wifi.as_str(), error = %msg, "access point did not switch");
                self.core.record_observation(ap, Ok(o));
                self.audit(ap, target, format!("error: {msg}"));
                false
            }
            Err(e) => {
                tracing::warn!(school = %ap.school, classroom = %ap.classroom, ap = %ap.id, desired = %target, error = %e, "switching access point failed");
                *verified = false;
                self.record_failure(ap, "ap.apply", target, e.to_string());
                false
            }
        }
    }

    fn account<T, E>(&self, ap: &AccessPoint, op: &str, started: std::time::Instant, result: &Result<T, E>) {
        self.core
            .metrics
            .operation(ap.driver.kind(), op, result.is_ok(), started.elapsed());
    }

    fn record_failure(&self, ap: &AccessPoint, action: &str, target: Wifi, error: String) {
        let first = self.core.ap_state(&ap.id).is_none_or(|s| s.consecutive_failures == 0);
        self.core.record_observation(ap, Err(error.clone()));
        // Every failed switch is audited; a failing read only when the AP
        // stops answering, not at every retry.
        if action == "ap.apply" || first {
            self.audit_action(ap, action, target, format!("error: {error}"));
        }
    }

    fn audit(&self, ap: &AccessPoint, target: Wifi, result: String) {
        self.audit_action(ap, "ap.apply", target, result);
    }

    fn audit_action(&self, ap: &AccessPoint, action: &str, target: Wifi, result: String) {
        self.core.writer().enqueue(Batch::audit(vec![AuditRecord {
            at: self.core.now(),
            actor: "borne".into(),
            role: None,
            classroom: Some(ap.classroom.to_string()),
            access_point: Some(ap.id.to_string()),
            action: action.to_owned(),
            detail: format!("{} over {}", target, ap.driver.kind()),
            result,
            source: None,
        }]));
    }
}
