//! Simulated access points: the driver behind `sim: {}` blocks, for the demo
//! and for tests. Each AP keeps its state in memory, takes `latency_ms` per
//! operation and fails with probability `fail_rate`, drawn from a generator
//! seeded per AP so that a test run is repeatable. Two faults of a school's
//! network: `hang` (every operation waits `timeout_seconds`, then times
//! out, like an AP that accepts TCP and never answers) and `refuse` (every
//! operation fails at once, like a refused connection).
//!
//! A device outlives its place in the configuration, like a real one: an
//! AP removed by a reload keeps its radio state (the reconciler switches it
//! off as it lets go of it), and comes back with it if the AP is added
//! again.
//!
//! Leases behave as on a real device: an "on" with a lease
//! ([`AccessPoint::lease`]) switches itself off when the lease runs out
//! unless renewed, whether or not anything talks to the device. Time is
//! tokio's, so tests may pause and advance it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::{Driver, DriverError};
use crate::config::{AccessPoint, ApId, DriverConfig, SimAp};
use crate::domain::{Observation, ObservedWifi, Wifi};

/// One simulated AP.
#[derive(Debug)]
struct Device {
    /// Radios as last switched; a new AP starts off, as a real one
    /// configured by borne comes back from a power cut.
    wifi: Wifi,
    /// A small generator: 32 bytes per device instead of ChaCha's 300,
    /// which adds up at 20,000 simulated APs.
    rng: SmallRng,
    /// Operations applied, for tests and the demo's log.
    applied: u64,
    /// Cut off (a test's outage): every operation fails.
    unreachable: bool,
    /// When the device switches itself off, while on with a lease.
    lease_until: Option<Instant>,
    /// Leases armed or renewed, for tests.
    leases: u64,
}

impl Device {
    /// Applies a lease that ran out: the device switched itself off.
    fn expire(&mut self, now: Instant) {
        if self.lease_until.is_some_and(|t| t <= now) {
            self.wifi = Wifi::Off;
            self.lease_until = None;
        }
    }
}

/// The simulated driver; cheap to clone, shares its devices.
#[derive(Debug, Clone, Default)]
pub struct SimDriver {
    devices: Arc<Mutex<HashMap<ApId, Device>>>,
}

impl SimDriver {
    /// A driver with no device yet; devices appear on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// The simulated radio state of an AP (for tests), `None` before first use.
    pub fn state(&self, ap: &str) -> Option<Wifi> {
        let now = Instant::now();
        self.lock().get_mut(ap).map(|d| {
            d.expire(now);
            d.wifi
        })
    }

    /// How long the AP's lease still runs (for tests and the demo), `None`
    /// when it holds none (off, or on without a lease).
    pub fn lease_remaining(&self, ap: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut devices = self.lock();
        let d = devices.get_mut(ap)?;
        d.expire(now);
        d.lease_until.map(|t| t - now)
    }

    /// How many times a lease was armed or renewed on the AP (for tests).
    pub fn leases(&self, ap: &str) -> u64 {
        self.lock().get(ap).map_or(0, |d| d.leases)
    }

    /// How many switch operations an AP received (for tests).
    pub fn applied(&self, ap: &str) -> u64 {
        self.lock().get(ap).map_or(0, |d| d.applied)
    }

    /// Cuts an AP off (every operation fails as unreachable) or brings it
    /// back, keeping its radio state: an outage on demand, at a known time.
    pub fn set_unreachable(&self, ap: &str, unreachable: bool) {
        if let Some(d) = self.lock().get_mut(ap) {
            d.unreachable = unreachable;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ApId, Device>> {
        // A panic while holding this lock can only come from a bug in this
        // file; the map stays consistent, so keep using it.
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Draws whether this operation fails, and counts it.
    fn operate(&self, ap: &AccessPoint, sim: &SimAp, op: SimOp) -> Result<Observation, DriverError> {
        let now = Instant::now();
        let mut devices = self.lock();
        let device = devices.entry(ap.id.clone()).or_insert_with(|| Device {
            wifi: Wifi::Off,
            rng: SmallRng::seed_from_u64(sim.seed),
            applied: 0,
            unreachable: false,
            lease_until: None,
            leases: 0,
        });
        device.expire(now);
        if device.unreachable {
            return Err(DriverError::Unreachable(format!("{} is cut off", ap.id)));
        }
        if sim.fail_rate > 0.0 && device.rng.random_bool(sim.fail_rate) {
            return Err(DriverError::Unreachable(format!("simulated failure of {}", ap.id)));
        }
        match op {
            SimOp::Observe => {}
            SimOp::Apply(w) => {
                device.wifi = w;
                device.applied += 1;
                // "Off" cancels nothing on a real device; here the lease
                // has nothing left to switch off, so it is simply gone.
                device.lease_until = match (w, ap.lease) {
                    (Wifi::On, Some(lease)) => {
                        device.leases += 1;
                        Some(now + lease)
                    }
                    _ => None,
                };
            }
            // Re-arms a running lease; an AP that is off stays off.
            SimOp::Renew => {
                if let (Wifi::On, Some(lease)) = (device.wifi, ap.lease) {
                    device.leases += 1;
                    device.lease_until = Some(now + lease);
                }
            }
        }
        let clients = match device.wifi {
            Wifi::On => sim.clients,
            Wifi::Off => 0,
        };
        Ok(Observation::read(ObservedWifi::from(device.wifi), Some(clients)))
    }
}

/// What an operation does to a simulated device.
#[derive(Debug, Clone, Copy)]
enum SimOp {
    Apply(Wifi),
    Observe,
    Renew,
}

fn sim_config(ap: &AccessPoint) -> Result<&SimAp, DriverError> {
    match &ap.driver {
        DriverConfig::Sim(sim) => Ok(sim),
        other => Err(DriverError::Setup(format!(
            "access point {} uses {}, not sim",
            ap.id,
            other.kind()
        ))),
    }
}

/// The configured fault, if any: a refusal at once, or a wait until the
/// AP's timeout.
async fn fault(ap: &AccessPoint, sim: &SimAp, doing: &str) -> Result<(), DriverError> {
    if sim.refuse {
        return Err(DriverError::Unreachable(format!(
            "connection refused (simulated) while {doing} {}",
            ap.id
        )));
    }
    if sim.hang {
        tokio::time::sleep(sim.timeout).await;
        return Err(DriverError::Timeout {
            seconds: sim.timeout.as_secs(),
            doing: format!("{doing} {} (simulated hang)", ap.id),
        });
    }
    Ok(())
}

#[async_trait]
impl Driver for SimDriver {
    async fn apply(&self, ap: &AccessPoint, wifi: Wifi) -> Result<Observation, DriverError> {
        let sim = sim_config(ap)?;
        fault(ap, sim, &format!("switching {wifi}")).await?;
        tokio::time::sleep(sim.latency).await;
        self.operate(ap, sim, SimOp::Apply(wifi))
    }

    async fn renew(&self, ap: &AccessPoint) -> Result<Observation, DriverError> {
        let sim = sim_config(ap)?;
        tokio::time::sleep(sim.latency).await;
        self.operate(ap, sim, SimOp::Renew)
    }

    async fn observe(&self, ap: &AccessPoint) -> Result<Observation, DriverError> {
        let sim = sim_config(ap)?;
        fault(ap, sim, "reading").await?;
        tokio::time::sleep(sim.latency).await;
        self.operate(ap, sim, SimOp::Observe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap(lease: Option<Duration>) -> AccessPoint {
        AccessPoint {
            id: ApId::from("a"),
            classroom: "room".into(),
            school: "school".into(),
            driver: DriverConfig::Sim(SimAp {
                latency: Duration::ZERO,
                fail_rate: 0.0,
                clients: 3,
                seed: 1,
                hang: false,
                refuse: false,
                timeout: Duration::from_secs(35),
            }),
            lease,
        }
    }

    /// A device switched on with a lease goes off by itself when nobody renews it.
    #[tokio::test(start_paused = true)]
    async fn an_on_with_a_lease_ends_by_itself_unless_renewed() {
        let sim = SimDriver::new();
        let ap = ap(Some(Duration::from_secs(60)));
        sim.apply(&ap, Wifi::On).await.unwrap();
        assert_eq!(sim.lease_remaining("a"), Some(Duration::from_secs(60)));
        tokio::time::advance(Duration::from_secs(40)).await;
        sim.renew(&ap).await.unwrap();
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(sim.state("a"), Some(Wifi::On), "renewed at 40 s: still on at 80 s");
        assert_eq!(sim.leases("a"), 2);
        tokio::time::advance(Duration::from_secs(21)).await;
        assert_eq!(sim.state("a"), Some(Wifi::Off));
        assert_eq!(sim.lease_remaining("a"), None);
        let seen = sim.observe(&ap).await.unwrap();
        assert_eq!(seen.wifi, ObservedWifi::Off);
    }

    /// Renewing an AP that is off does not switch it on; without a lease nothing expires.
    #[tokio::test(start_paused = true)]
    async fn renewing_never_switches_on_and_no_lease_never_expires() {
        let sim = SimDriver::new();
        let leased = ap(Some(Duration::from_secs(60)));
        sim.apply(&leased, Wifi::Off).await.unwrap();
        sim.renew(&leased).await.unwrap();
        assert_eq!(sim.state("a"), Some(Wifi::Off));
        assert_eq!(sim.lease_remaining("a"), None);
        let plain = ap(None);
        sim.apply(&plain, Wifi::On).await.unwrap();
        tokio::time::advance(Duration::from_secs(24 * 3600)).await;
        assert_eq!(sim.state("a"), Some(Wifi::On));
    }
}
