//! The planner: evaluates every classroom's policy when something can have
//! changed and hands each access point's worker its desired state.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::prewarm::Prewarm;
use super::release::{device, release};
use super::worker::{ApWorker, Signals, settle_after};
use super::{Drivers, MAX_SLEEP};
use crate::config::{AccessPoint, ApId, ClassroomId, Config};
use crate::core::Core;
use crate::domain::Observation;
use crate::driver::Report;
use crate::policy::{Desired, Wifi};
use crate::store::{AuditRecord, Batch};

/// The planner's handle on one worker.
struct Worker {
    desired: watch::Sender<Option<Wifi>>,
    /// What device reports tell the worker.
    signals: Arc<Signals>,
    /// Stops this worker only (AP removed or changed by a reload).
    cancel: CancellationToken,
    /// The settings it serves ([`identity`]): a reload that changes them
    /// replaces the worker.
    identity: String,
    /// Cancelled once the worker's task has returned (its operation in
    /// flight finished): what comes after it on the same device waits.
    done: CancellationToken,
}

/// What a worker is bound to: the AP's id, classroom, driver and every
/// connection and lease setting. The `Debug` form holds all of them (file
/// paths, never secrets) and is only compared, never logged.
fn identity(ap: &AccessPoint) -> String {
    format!("{ap:?}")
}

/// The planner and the workers it owns.
pub struct Reconciler {
    core: Arc<Core>,
    drivers: Drivers,
    reports: mpsc::Receiver<(ApId, Report)>,
    permits: Arc<Semaphore>,
    probes: Arc<Semaphore>,
    workers: HashMap<ApId, Worker>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    last: HashMap<ClassroomId, Desired>,
    prewarm: Prewarm,
    watchdog: Option<Duration>,
    settle: bool,
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
        let settings = core.config().reconciler;
        Self {
            core,
            drivers,
            reports,
            permits: Arc::new(Semaphore::new(settings.max_parallel)),
            probes: Arc::new(Semaphore::new(settings.probe_parallel)),
            workers: HashMap::new(),
            tracker,
            shutdown,
            last: HashMap::new(),
            prewarm: Prewarm::default(),
            watchdog: None,
            settle: false,
        }
    }

    /// For a leader term on a shared database: another instance may have
    /// led just before and been killed with commands in flight, which the
    /// devices still run to their end. Each worker reads its device once
    /// more when the longest such command has ended
    /// (`command_timeout` and a second), so a stale command completing
    /// after the first read is undone then, not at the next resync.
    pub fn with_settle(mut self) -> Self {
        self.settle = true;
        self
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
        self.sync_workers(None, &config);
        let mut next_prune = tokio::time::Instant::now();
        let mut wake_at = self.core.now();
        loop {
            let current = self.core.config();
            let mut full = false;
            if !Arc::ptr_eq(&current, &config) {
                let old = std::mem::replace(&mut config, current);
                self.drivers.reconfigure(&config).await;
                self.sync_workers(Some(&old), &config);
                full = true;
            }
            // A step of the wall clock or a change of its synchronisation:
            // every classroom is re-evaluated at the (new) current time.
            if self.core.check_clock() {
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
        self.core.end_idle_sessions(config, now);
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
        let mut history = Batch::default();
        for (classroom, d) in selected.into_iter().zip(desired) {
            if let Some(n) = d.next_change {
                wake_at = wake_at.min(n.at);
            }
            match self.prewarm.check(&self.core, config, classroom, &d, now) {
                Ok(Some(request)) => {
                    for ap in request.aps {
                        if let Some(w) = self.workers.get(ap) {
                            w.signals.prewarm(request.at);
                        }
                    }
                }
                Ok(None) => {}
                Err(start) => wake_at = wake_at.min(start),
            }
            let previous = self.last.get(&classroom.id);
            if previous.is_none_or(|p| (p.mode, p.wifi, p.reason) != (d.mode, d.wifi, d.reason)) {
                history.usage.desired_history.push((
                    classroom.id.to_string(),
                    now,
                    crate::report::DesiredState {
                        mode: d.mode,
                        wifi: d.wifi,
                        reason: d.reason,
                    },
                ));
            }
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
        if !history.usage.desired_history.is_empty() {
            self.core.writer().enqueue(history);
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
                        via: None,
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
                if let Some(w) = self.workers.get(ap_id) {
                    w.signals.offline.store(true, Ordering::SeqCst);
                }
                self.core.forget_observation(ap, Some(false));
                return;
            }
            Report::Lost => self.core.forget_observation(ap, None),
        }
        if let Some(w) = self.workers.get(ap_id) {
            // Any other report means the device (or its broker) talks again.
            w.signals.offline.store(false, Ordering::SeqCst);
            w.signals.poke.notify_one();
        }
    }

    /// Spawns workers for new APs, stops those of removed ones and replaces
    /// those whose settings changed (`old`: the configuration before a
    /// reload). A removed AP that is no other AP's device now is switched
    /// off and released ([`super::release`]); a new or replaced worker
    /// starts once the workers that drove its device before have stopped,
    /// reads its device and drives it to its classroom's state at once.
    fn sync_workers(&mut self, old: Option<&Config>, config: &Config) {
        self.prewarm.configure(config);
        let devices: std::collections::HashSet<String> = config.access_points.iter().map(device).collect();
        // What stopped, by device and by id: their successors wait for them.
        let mut stopped: HashMap<String, Vec<CancellationToken>> = HashMap::new();
        let mut releases = Vec::new();
        let ids: Vec<ApId> = self.workers.keys().cloned().collect();
        for id in ids {
            let now = config.access_point(id.as_str());
            if now.is_some_and(|ap| identity(ap) == self.workers[&id].identity) {
                continue;
            }
            let Some(w) = self.workers.remove(&id) else { continue };
            w.cancel.cancel();
            let before = old.and_then(|o| o.access_point(id.as_str()));
            if let Some(before) = before {
                stopped.entry(device(before)).or_default().push(w.done.clone());
            }
            stopped.entry(format!("id\u{0}{id}")).or_default().push(w.done.clone());
            match (before, now) {
                (Some(before), None) if !devices.contains(&device(before)) => {
                    releases.push((before.clone(), w.done));
                }
                (Some(before), None) => {
                    tracing::info!(school = %before.school, classroom = %before.classroom, ap = %id, "access point removed, but its device is another access point's now: driven from there");
                }
                (_, Some(ap)) => {
                    tracing::info!(school = %ap.school, classroom = %ap.classroom, ap = %id, "access point settings changed: reading it again and driving it with the new ones");
                    // What was seen belongs to the old settings.
                    self.core.forget_observation(ap, None);
                }
                (None, None) => {}
            }
        }
        for ap in &config.access_points {
            if self.workers.contains_key(&ap.id) {
                continue;
            }
            let after: Vec<CancellationToken> = [stopped.get(&device(ap)), stopped.get(&format!("id\u{0}{}", ap.id))]
                .into_iter()
                .flatten()
                .flatten()
                .cloned()
                .collect();
            // An AP added to a known classroom starts from its desired state.
            let (tx, rx) = watch::channel(self.last.get(&ap.classroom).map(|d| d.wifi));
            let signals = Arc::new(Signals::default());
            let cancel = self.shutdown.child_token();
            let done = CancellationToken::new();
            let worker = ApWorker {
                core: self.core.clone(),
                drivers: self.drivers.clone(),
                id: ap.id.clone(),
                desired: rx,
                signals: signals.clone(),
                permits: self.permits.clone(),
                probes: self.probes.clone(),
                cancel: cancel.clone(),
                after,
                settle: if self.settle { settle_after(ap) } else { None },
                _done: done.clone().drop_guard(),
            };
            self.tracker.spawn(worker.run());
            self.workers.insert(
                ap.id.clone(),
                Worker {
                    desired: tx,
                    signals,
                    cancel,
                    identity: identity(ap),
                    done,
                },
            );
        }
        for (ap, after) in releases {
            self.tracker.spawn(release(
                self.core.clone(),
                self.drivers.clone(),
                self.permits.clone(),
                ap,
                after,
            ));
        }
    }
}
