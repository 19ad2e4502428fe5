//! A driver behind the leader's fence: every operation asks the fence
//! first and is abandoned the moment the term ends.
//!
//! Asking before each operation is what keeps a leader that was frozen
//! (SIGSTOP, a stalled VM) from driving anything when it runs again: the
//! fence reads the monotonic time elapsed since the lock was last
//! confirmed, before the lock checker has even been scheduled. Racing the
//! operation against the term's token stops what is in flight when the
//! checker ends the term (an SSH command already sent may still complete
//! on the device; nothing new is sent).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::config::{AccessPoint, Config};
use crate::domain::{Observation, Wifi};
use crate::driver::{Driver, DriverError};
use crate::ha::Fence;

/// See the module docs.
pub struct Fenced {
    inner: Arc<dyn Driver>,
    fence: Arc<Fence>,
    term: CancellationToken,
}

impl Fenced {
    /// `inner` behind `fence`, for the term that `term` ends.
    pub fn wrap(inner: Arc<dyn Driver>, fence: Arc<Fence>, term: CancellationToken) -> Arc<dyn Driver> {
        Arc::new(Self { inner, fence, term })
    }

    async fn guard<T>(&self, op: impl Future<Output = Result<T, DriverError>>) -> Result<T, DriverError> {
        if let Err(e) = self.fence.check() {
            // The checker may not have noticed yet (just resumed): end the
            // term now, so every worker stops.
            self.term.cancel();
            return Err(DriverError::Fenced(e.0));
        }
        tokio::select! {
            biased;
            () = self.term.cancelled() => Err(DriverError::Fenced("not driving: the leader term ended".into())),
            r = op => r,
        }
    }
}

#[async_trait]
impl Driver for Fenced {
    async fn apply(&self, ap: &AccessPoint, wifi: Wifi) -> Result<Observation, DriverError> {
        self.guard(self.inner.apply(ap, wifi)).await
    }

    async fn observe(&self, ap: &AccessPoint) -> Result<Observation, DriverError> {
        self.guard(self.inner.observe(ap)).await
    }

    async fn probe(&self, ap: &AccessPoint, limit: Duration) -> Result<Observation, DriverError> {
        self.guard(self.inner.probe(ap, limit)).await
    }

    async fn prewarm(&self, ap: &AccessPoint, keep: Duration) -> Result<Option<Observation>, DriverError> {
        self.guard(self.inner.prewarm(ap, keep)).await
    }

    async fn renew(&self, ap: &AccessPoint) -> Result<Observation, DriverError> {
        self.guard(self.inner.renew(ap)).await
    }

    async fn reconfigure(&self, config: &Arc<Config>) {
        self.inner.reconfigure(config).await;
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::sim::SimDriver;

    fn ap() -> AccessPoint {
        let yaml = "schedules:\n  open: { default_mode: available, rules: [{ at: \"0 0 1 1 *\", mode: available }] }\nschools:\n  - id: s1\n    schedule: open\n    classrooms:\n      - id: c1\n        access_points: [{ id: ap-1, sim: {} }]\n";
        let loaded = crate::config::from_str(yaml, "t.yaml", None).expect("config");
        loaded.config.access_points[0].clone()
    }

    #[tokio::test]
    async fn an_expired_fence_drives_nothing_and_ends_the_term() {
        let sim = SimDriver::new();
        let fence = Arc::new(Fence::new(Duration::from_millis(30)));
        fence.renew(std::time::Instant::now());
        let term = CancellationToken::new();
        let d = Fenced::wrap(Arc::new(sim.clone()), fence.clone(), term.clone());
        let ap = ap();
        d.apply(&ap, Wifi::On).await.expect("within the lease");
        assert_eq!(sim.applied("ap-1"), 1);
        tokio::time::sleep(Duration::from_millis(40)).await;
        let e = d.apply(&ap, Wifi::Off).await.expect_err("lease ran out");
        assert!(matches!(e, DriverError::Fenced(_)), "{e:?}");
        assert!(term.is_cancelled(), "the term ends at the first refusal");
        assert_eq!(sim.applied("ap-1"), 1, "nothing reached the device");
        assert_eq!(sim.state("ap-1"), Some(Wifi::On));
    }

    #[tokio::test]
    async fn an_ended_term_abandons_the_operation_in_flight() {
        let sim = SimDriver::new();
        let fence = Arc::new(Fence::open());
        let term = CancellationToken::new();
        let d = Fenced::wrap(Arc::new(sim.clone()), fence, term.clone());
        term.cancel();
        let e = d.observe(&ap()).await.expect_err("term ended");
        assert!(matches!(e, DriverError::Fenced(_)), "{e:?}");
    }
}
