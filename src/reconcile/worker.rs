//! One access point's worker: compares desired with observed and calls the
//! driver until they agree, retrying failures with backoff and jitter; an
//! AP that keeps failing is only probed, apart from the others (see
//! [`super::breaker`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Notify, Semaphore, watch};
use tokio_util::sync::CancellationToken;

use super::Drivers;
use super::breaker::Breaker;
use crate::config::{AccessPoint, ApId};
use crate::core::Core;
use crate::policy::Wifi;
use crate::store::{AuditRecord, Batch};

/// How long past its change a prewarmed connection is kept when the
/// change does not come (a reload, an override in between).
const PREWARM_MARGIN: Duration = Duration::from_secs(60);

/// What the planner passes on to a worker from its device's own reports.
#[derive(Debug, Default)]
pub(super) struct Signals {
    /// Wakes the worker to look again (a state or availability report).
    pub(super) poke: Notify,
    /// The device said it went offline (an MQTT last will) and has said
    /// nothing since.
    pub(super) offline: AtomicBool,
    /// A scheduled change will switch the AP at this instant: get ready.
    prewarm: std::sync::Mutex<Option<DateTime<Utc>>>,
}

impl Signals {
    /// Asks the worker to get ready for a change at `at` (see
    /// [`super::prewarm`]).
    pub(super) fn prewarm(&self, at: DateTime<Utc>) {
        *self.prewarm.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
        self.poke.notify_one();
    }

    fn take_prewarm(&self) -> Option<DateTime<Utc>> {
        self.prewarm.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// One AP's worker; see the module docs.
pub(super) struct ApWorker {
    pub(super) core: Arc<Core>,
    pub(super) drivers: Drivers,
    pub(super) id: ApId,
    pub(super) desired: watch::Receiver<Option<Wifi>>,
    pub(super) signals: Arc<Signals>,
    pub(super) permits: Arc<Semaphore>,
    /// The probes' own budget, apart from `permits`.
    pub(super) probes: Arc<Semaphore>,
    pub(super) cancel: CancellationToken,
    /// The workers that drove this device before a reload: this one starts
    /// once they have stopped, so two never talk to one device at once.
    pub(super) after: Vec<CancellationToken>,
    /// Read the device once more this long after the start (see
    /// [`super::Reconciler::with_settle`]).
    pub(super) settle: Option<Duration>,
    /// Tells the planner this worker has stopped, when dropped with it.
    pub(super) _done: tokio_util::sync::DropGuard,
}

enum Wake {
    Changed,
    Resync,
    Stop,
}

impl ApWorker {
    pub(super) async fn run(mut self) {
        for before in std::mem::take(&mut self.after) {
            tokio::select! {
                () = before.cancelled() => {}
                () = self.cancel.cancelled() => return,
            }
        }
        let settings = self.core.config().reconciler;
        let mut backoff = settings.backoff_initial;
        // Spread resyncs of thousands of APs over the interval.
        let first = settings.resync.mul_f64(rand::rng().random_range(0.5..1.0));
        let mut next_resync = tokio::time::Instant::now() + first;
        if let Some(settle) = self.settle {
            next_resync = next_resync.min(tokio::time::Instant::now() + settle);
        }
        // Read before acting: a restart of borne must not bounce radios
        // that are already right (switching drops every client).
        let mut verified = false;
        // When the driver was last asked to switch: a flapping desired state
        // (a script toggling on and off) must not flap the radios, which
        // drops every client at each switch (issue 12). Changes that arrive
        // within `min_switch_interval` wait, and only the newest is applied:
        // the watch channel keeps the latest value alone.
        let mut last_switch: Option<tokio::time::Instant> = None;
        let mut resync_due = false;
        let mut breaker = Breaker::new(settings.unreachable_after);
        let mut probe_at = tokio::time::Instant::now();
        // When the device's lease is next renewed, while it is on with one.
        let mut next_renew: Option<tokio::time::Instant> = None;
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            if let Some(at) = self.signals.take_prewarm()
                && !breaker.is_open()
            {
                self.prewarm(at, &mut verified).await;
            }
            let target = *self.desired.borrow_and_update();
            let Some(target) = target else {
                match self.wait(None).await {
                    Wake::Stop => return,
                    _ => continue,
                }
            };
            if breaker.is_open() {
                // Unreachable: probed on the backoff, or at once when
                // something changed; never with a permit of `max_parallel`.
                if let Wake::Stop = self.wait(Some(probe_at)).await {
                    return;
                }
                if self.probe(&mut verified).await {
                    breaker.succeeded();
                    backoff = settings.backoff_initial;
                } else {
                    breaker.failed();
                    probe_at = tokio::time::Instant::now() + jitter(backoff);
                    backoff = (backoff * 2).min(settings.backoff_max);
                }
                continue;
            }
            let observed = self.core.ap_state(&self.id).map(|s| s.observed.wifi);
            let in_sync = observed.is_some_and(|o| o.is(target));
            // A device that said it is offline would not get a command: the
            // broker would only hold it and acknowledge it for nobody. Its
            // next report wakes this worker; the resync tries anyway, in
            // case that report was missed.
            let offline = self.signals.offline.load(Ordering::SeqCst) && !resync_due;
            let ok = if (verified && in_sync) || offline {
                // Renewals run on their own timer, independent of resyncs
                // (none to a device that said it is offline).
                let renew_at = next_renew.filter(|_| target == Wifi::On && !offline);
                let until = renew_at.map_or(next_resync, |r| r.min(next_resync));
                match self.wait(Some(until)).await {
                    Wake::Stop => return,
                    Wake::Resync if renew_at.is_some_and(|r| tokio::time::Instant::now() >= r) => {
                        self.renew_step(&mut next_renew).await
                    }
                    Wake::Resync => {
                        verified = false;
                        resync_due = true;
                        next_resync = tokio::time::Instant::now() + settings.resync;
                        continue;
                    }
                    Wake::Changed => continue,
                }
            } else {
                if let Some(last) = last_switch {
                    let ready = last + self.core.config().reconciler.min_switch_interval;
                    if tokio::time::Instant::now() < ready {
                        if let Wake::Stop = self.wait(Some(ready)).await {
                            return;
                        }
                        continue;
                    }
                }
                resync_due = false;
                self.step(target, &mut verified, &mut last_switch, &mut next_renew)
                    .await
            };
            if ok {
                breaker.succeeded();
                backoff = settings.backoff_initial;
                // Idle auto-off needs fresh client counts during an "on".
                if target == Wifi::On
                    && let Some(every) = idle_read_interval(&self.core.config())
                {
                    next_resync = next_resync.min(tokio::time::Instant::now() + every);
                }
                continue;
            }
            let delay = jitter(backoff);
            backoff = (backoff * 2).min(settings.backoff_max);
            if breaker.failed() {
                self.unreachable(breaker.failures());
                probe_at = tokio::time::Instant::now() + delay;
                continue;
            }
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
            _ = self.signals.poke.notified() => Wake::Changed,
            _ = deadline => Wake::Resync,
        }
    }

    /// Gets the AP ready for the change at `at`, with a permit of
    /// `max_parallel`: the driver keeps what it opens until the change has
    /// been applied (or a minute past `at`, if it does not come).
    async fn prewarm(&mut self, at: DateTime<Utc>, verified: &mut bool) {
        let permit = tokio::select! {
            p = self.permits.clone().acquire_owned() => p,
            _ = self.cancel.cancelled() => return,
        };
        let config = self.core.config();
        let Some(ap) = config.access_point(self.id.as_str()) else {
            return;
        };
        let Some(driver) = self.drivers.for_ap(ap) else {
            return;
        };
        let keep = (at - self.core.now()).to_std().unwrap_or_default() + PREWARM_MARGIN;
        let t = std::time::Instant::now();
        let result = driver.prewarm(ap, keep).await;
        drop(permit);
        self.account(ap, "prewarm", t, &result);
        match result {
            Ok(Some(o)) => {
                *verified = true;
                self.core.record_observation(ap, Ok(o));
            }
            Ok(None) => {}
            // The change will run cold and handle the AP's failure as usual.
            Err(e) => tracing::debug!(ap = %ap.id, error = %e, "prewarm failed"),
        }
    }

    /// Reads an unreachable AP within the probe limit, holding a probe
    /// permit only. Returns whether it answered.
    async fn probe(&mut self, verified: &mut bool) -> bool {
        let permit = tokio::select! {
            p = self.probes.clone().acquire_owned() => p,
            _ = self.cancel.cancelled() => return false,
        };
        let config = self.core.config();
        let Some(ap) = config.access_point(self.id.as_str()) else {
            self.cancel.cancel();
            return false;
        };
        let Some(driver) = self.drivers.for_ap(ap) else {
            return false;
        };
        let t = std::time::Instant::now();
        let result = driver.probe(ap, config.reconciler.probe_timeout).await;
        drop(permit);
        self.account(ap, "probe", t, &result);
        match result {
            Ok(o) => {
                tracing::info!(school = %ap.school, classroom = %ap.classroom, ap = %ap.id, observed = o.wifi.as_str(), "unreachable access point answers again");
                *verified = true;
                self.core.record_observation(ap, Ok(o));
                true
            }
            Err(e) => {
                tracing::debug!(ap = %ap.id, error = %e, "probe failed");
                if !self.cancel.is_cancelled() {
                    self.core.record_observation(ap, Err(e.to_string()));
                }
                false
            }
        }
    }

    fn unreachable(&self, failures: u32) {
        let config = self.core.config();
        if let Some(ap) = config.access_point(self.id.as_str()) {
            tracing::warn!(
                school = %ap.school,
                classroom = %ap.classroom,
                ap = %ap.id,
                failures,
                "access point unreachable; probing it apart from the others until it answers"
            );
        }
    }

    /// Observes if needed, then applies if needed. Returns false on failure.
    async fn step(
        &mut self,
        target: Wifi,
        verified: &mut bool,
        last_switch: &mut Option<tokio::time::Instant>,
        next_renew: &mut Option<tokio::time::Instant>,
    ) -> bool {
        let core = self.core.clone();
        let metrics = &core.metrics;
        metrics.queue_depth.inc();
        let permit = tokio::select! {
            p = self.permits.clone().acquire_owned() => p,
            _ = self.cancel.cancelled() => { metrics.queue_depth.dec(); return true }
        };
        let result = self.operate(target, verified, last_switch, next_renew).await;
        drop(permit);
        metrics.queue_depth.dec();
        result
    }

    async fn operate(
        &mut self,
        target: Wifi,
        verified: &mut bool,
        last_switch: &mut Option<tokio::time::Instant>,
        next_renew: &mut Option<tokio::time::Instant>,
    ) -> bool {
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
                    // Compare with the newest desired state, not the one the
                    // read started for: it may have moved meanwhile (a burst
                    // of requests, a new leader's first reads while the
                    // followers' changes arrive), and a device already
                    // there must not get the same switch again.
                    let target = (*self.desired.borrow()).unwrap_or(target);
                    if o.wifi.is(target) {
                        // Confirmed on (a resync, a restart of borne): the
                        // device may hold no lease, so arm one now.
                        if target == Wifi::On && ap.lease.is_some() {
                            return self.renew(ap, driver.as_ref(), next_renew).await;
                        }
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
        // The desired state may have moved since the loop read it: take the newest.
        let target = (*self.desired.borrow()).unwrap_or(target);
        let t = std::time::Instant::now();
        *last_switch = Some(tokio::time::Instant::now());
        let result = driver.apply(ap, target).await;
        self.account(ap, "apply", t, &result);
        match result {
            Ok(o) if o.wifi.is(target) => {
                tracing::info!(school = %ap.school, classroom = %ap.classroom, ap = %ap.id, desired = %target, observed = o.wifi.as_str(), assumed = o.assumed, "access point switched");
                self.core.record_observation(ap, Ok(o));
                self.leased(ap, target, next_renew);
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

    pub(super) fn record_failure(&self, ap: &AccessPoint, action: &str, target: Wifi, error: String) {
        // A term that ended (or a fence that refused) says nothing about
        // the AP: recording it would mark a healthy AP failing for every
        // instance.
        if self.cancel.is_cancelled() {
            return;
        }
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
            via: None,
        }]));
    }
}

/// How long a command another instance sent this AP may still run on
/// the device after that instance died: an SSH command runs to its end
/// when its client goes away, and borne gives one `command_timeout`; a
/// second more for the read to come after it. `None` for MQTT (a command
/// is one message the device applies on receipt) and simulated APs.
pub(super) fn settle_after(ap: &AccessPoint) -> Option<Duration> {
    match &ap.driver {
        crate::config::DriverConfig::Ssh(ssh) => Some(ssh.command_timeout + Duration::from_secs(1)),
        _ => None,
    }
}

/// Equal jitter: between half and all of `backoff`, so that APs that failed
/// together do not retry together.
fn jitter(backoff: std::time::Duration) -> std::time::Duration {
    backoff.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// How often client counts are read during an "on" for idle auto-off: a
/// third of `idle_off_minutes`, so an idle classroom is cut at most a third
/// late; `None` when idle auto-off is off.
fn idle_read_interval(config: &crate::config::Config) -> Option<std::time::Duration> {
    match config.teacher_session.idle_off_minutes {
        0 => None,
        m => Some(std::time::Duration::from_secs(u64::from(m) * 60 / 3)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use async_trait::async_trait;

    use super::*;
    use crate::core::fixture::Fixture;
    use crate::domain::{Observation, ObservedWifi};
    use crate::driver::{Driver, DriverError};

    /// Reads the AP as on, and while it reads, the desired state moves
    /// to on (what a request committed through another instance does to
    /// a new leader's first read).
    struct MovesWhileObserving {
        desired: watch::Sender<Option<Wifi>>,
        observed: Notify,
        applied: AtomicUsize,
    }

    #[async_trait]
    impl Driver for MovesWhileObserving {
        async fn apply(&self, _ap: &AccessPoint, wifi: Wifi) -> Result<Observation, DriverError> {
            self.applied.fetch_add(1, Ordering::SeqCst);
            let wifi = if wifi == Wifi::On {
                ObservedWifi::On
            } else {
                ObservedWifi::Off
            };
            Ok(Observation::read(wifi, None))
        }

        async fn observe(&self, _ap: &AccessPoint) -> Result<Observation, DriverError> {
            self.desired.send_replace(Some(Wifi::On));
            self.observed.notify_one();
            Ok(Observation::read(ObservedWifi::On, None))
        }

        /// Arming the device's lease is not a switch.
        async fn renew(&self, _ap: &AccessPoint) -> Result<Observation, DriverError> {
            Ok(Observation::read(ObservedWifi::On, None))
        }
    }

    /// The worker of AP `c1-ap1` of the fixture, on `driver` alone.
    fn test_worker(
        f: &Fixture,
        driver: Arc<dyn Driver>,
        desired: watch::Receiver<Option<Wifi>>,
        cancel: &CancellationToken,
        settle: Option<Duration>,
    ) -> ApWorker {
        ApWorker {
            core: f.core.clone(),
            drivers: Drivers {
                sim: driver,
                ssh: None,
                mqtt: None,
            },
            id: ApId::from("c1-ap1"),
            desired,
            signals: Arc::new(Signals::default()),
            permits: Arc::new(Semaphore::new(1)),
            probes: Arc::new(Semaphore::new(1)),
            cancel: cancel.clone(),
            after: Vec::new(),
            settle,
            _done: CancellationToken::new().drop_guard(),
        }
    }

    #[tokio::test]
    async fn a_device_already_in_the_state_desired_after_the_read_is_not_switched_again() {
        let f = Fixture::new("2026-12-01T09:00:00Z");
        let (tx, rx) = watch::channel(Some(Wifi::Off));
        let driver = Arc::new(MovesWhileObserving {
            desired: tx,
            observed: Notify::new(),
            applied: AtomicUsize::new(0),
        });
        let cancel = CancellationToken::new();
        let worker = test_worker(&f, driver.clone(), rx, &cancel, None);
        let task = tokio::spawn(worker.run());
        // The worker runs on this thread: once it has read the device, it
        // has also done whatever follows the read, up to its next wait.
        driver.observed.notified().await;
        tokio::task::yield_now().await;
        cancel.cancel();
        task.await.expect("the worker ends");
        assert_eq!(
            driver.applied.load(Ordering::SeqCst),
            0,
            "an AP read on, with on desired, was switched on again"
        );
        let observed = f.core.ap_state(&ApId::from("c1-ap1")).map(|s| s.observed.wifi);
        assert_eq!(observed, Some(ObservedWifi::On));
    }

    /// A device that another instance's command switches on after this
    /// worker's first read (the command was in flight when that instance
    /// died): the read after `settle` finds it and switches it off.
    struct LateCommand {
        on: AtomicBool,
        reads: AtomicUsize,
        offs: AtomicUsize,
    }

    #[async_trait]
    impl Driver for LateCommand {
        async fn apply(&self, _ap: &AccessPoint, wifi: Wifi) -> Result<Observation, DriverError> {
            if wifi == Wifi::Off {
                self.offs.fetch_add(1, Ordering::SeqCst);
            }
            self.on.store(wifi == Wifi::On, Ordering::SeqCst);
            self.observe(_ap).await
        }

        async fn observe(&self, _ap: &AccessPoint) -> Result<Observation, DriverError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let on = self.on.load(Ordering::SeqCst);
            let wifi = if on { ObservedWifi::On } else { ObservedWifi::Off };
            Ok(Observation::read(wifi, None))
        }
    }

    #[tokio::test]
    async fn a_stale_command_completing_after_the_first_read_is_undone_after_the_settle_delay() {
        let f = Fixture::new("2026-12-01T09:00:00Z");
        let (_tx, rx) = watch::channel(Some(Wifi::Off));
        let driver = Arc::new(LateCommand {
            on: AtomicBool::new(false),
            reads: AtomicUsize::new(0),
            offs: AtomicUsize::new(0),
        });
        let cancel = CancellationToken::new();
        let worker = test_worker(&f, driver.clone(), rx, &cancel, Some(Duration::from_millis(300)));
        let task = tokio::spawn(worker.run());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while driver.reads.load(Ordering::SeqCst) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no first read");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Read off, as desired: nothing sent. Then the dead leader's "on"
        // lands on the device.
        assert_eq!(driver.offs.load(Ordering::SeqCst), 0);
        driver.on.store(true, Ordering::SeqCst);
        while driver.offs.load(Ordering::SeqCst) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the device stayed on against the desired off"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!driver.on.load(Ordering::SeqCst));
        cancel.cancel();
        task.await.expect("the worker ends");
    }
}
