//! Device-side leases, the worker's side: every "on" applied or confirmed
//! arms the AP's off-timer ([`crate::config::AccessPoint::lease`]), and the
//! worker renews it every third of the lease (so at least twice before it
//! runs out) for as long as the AP must stay on, on a timer of its own,
//! independent of `resync_seconds`. Switching off cancels nothing: off is
//! off. A failed renewal is retried with the worker's backoff; if borne
//! cannot renew at all (stopped, killed, cut off), the device switches
//! itself off when the lease runs out.

use std::time::Duration;

use tokio::time::Instant;

use super::worker::ApWorker;
use crate::config::AccessPoint;
use crate::domain::Wifi;
use crate::driver::Driver;

/// How often a lease is renewed: a third of it, so two renewals may fail
/// before the device gives up.
pub(super) fn renew_every(lease: Duration) -> Duration {
    lease / 3
}

impl ApWorker {
    /// Notes that the AP is now `wifi` with a fresh lease (or none).
    pub(super) fn leased(&self, ap: &AccessPoint, wifi: Wifi, next_renew: &mut Option<Instant>) {
        match (wifi, ap.lease) {
            (Wifi::On, Some(lease)) => {
                let until = self.core.now() + chrono::Duration::from_std(lease).unwrap_or_default();
                self.core.record_lease(ap, Some(until));
                *next_renew = Some(Instant::now() + renew_every(lease));
            }
            _ => {
                self.core.record_lease(ap, None);
                *next_renew = None;
            }
        }
    }

    /// Renews the lease now, holding a permit like any operation.
    pub(super) async fn renew_step(&mut self, next_renew: &mut Option<Instant>) -> bool {
        let core = self.core.clone();
        core.metrics.queue_depth.inc();
        let permit = tokio::select! {
            p = self.permits.clone().acquire_owned() => p,
            _ = self.cancel.cancelled() => { core.metrics.queue_depth.dec(); return true }
        };
        let config = core.config();
        let ap = config.access_point(self.id.as_str());
        let ok = match ap.and_then(|ap| Some((ap, self.drivers.for_ap(ap)?.clone()))) {
            Some((ap, driver)) => self.renew(ap, driver.as_ref(), next_renew).await,
            // Gone from the configuration or no driver: the next step says so.
            None => true,
        };
        drop(permit);
        core.metrics.queue_depth.dec();
        ok
    }

    /// Re-arms the AP's lease and records what the device then says.
    /// Returns false on failure (retried with backoff).
    pub(super) async fn renew(&self, ap: &AccessPoint, driver: &dyn Driver, next_renew: &mut Option<Instant>) -> bool {
        let started = std::time::Instant::now();
        let result = driver.renew(ap).await;
        self.core
            .metrics
            .operation(ap.driver.kind(), "renew", result.is_ok(), started.elapsed());
        self.core.metrics.lease_renewal(result.is_ok());
        match result {
            Ok(o) => {
                self.core.record_observation(ap, Ok(o));
                if o.wifi.is(Wifi::Off) {
                    // Off already (its lease ran out, someone switched it):
                    // the worker switches it on again if it must be.
                    self.leased(ap, Wifi::Off, next_renew);
                } else {
                    self.leased(ap, Wifi::On, next_renew);
                }
                tracing::debug!(ap = %ap.id, "lease renewed");
                true
            }
            Err(e) => {
                tracing::warn!(school = %ap.school, classroom = %ap.classroom, ap = %ap.id, error = %e, "renewing the lease failed");
                // Retried after the backoff: the renewal is due already.
                *next_renew = Some(Instant::now());
                self.record_failure(ap, "ap.renew", Wifi::On, e.to_string());
                false
            }
        }
    }
}
