//! Simulated access points: the driver behind `sim: {}` blocks, for the demo
//! and for tests. Each AP keeps its state in memory, takes `latency_ms` per
//! operation and fails with probability `fail_rate`, drawn from a generator
//! seeded per AP so that a test run is repeatable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Driver, DriverError};
use crate::config::{AccessPoint, ApId, Config, DriverConfig, SimAp};
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
        self.lock().get(ap).map(|d| d.wifi)
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
    fn operate(&self, ap: &AccessPoint, sim: &SimAp, wifi: Option<Wifi>) -> Result<Observation, DriverError> {
        let mut devices = self.lock();
        let device = devices.entry(ap.id.clone()).or_insert_with(|| Device {
            wifi: Wifi::Off,
            rng: SmallRng::seed_from_u64(sim.seed),
            applied: 0,
            unreachable: false,
        });
        if device.unreachable {
            return Err(DriverError::Unreachable(format!("{} is cut off", ap.id)));
        }
        if sim.fail_rate > 0.0 && device.rng.random_bool(sim.fail_rate) {
            return Err(DriverError::Unreachable(format!("simulated failure of {}", ap.id)));
        }
        if let Some(w) = wifi {
            device.wifi = w;
            device.applied += 1;
        }
        let clients = match device.wifi {
            Wifi::On => sim.clients,
            Wifi::Off => 0,
        };
        Ok(Observation::read(ObservedWifi::from(device.wifi), Some(clients)))
    }
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

#[async_trait]
impl Driver for SimDriver {
    async fn apply(&self, ap: &AccessPoint, wifi: Wifi) -> Result<Observation, DriverError> {
        let sim = sim_config(ap)?;
        tokio::time::sleep(sim.latency).await;
        self.operate(ap, sim, Some(wifi))
    }

    async fn observe(&self, ap: &AccessPoint) -> Result<Observation, DriverError> {
        let sim = sim_config(ap)?;
        tokio::time::sleep(sim.latency).await;
        self.operate(ap, sim, None)
    }

    async fn reconfigure(&self, config: &Arc<Config>) {
        self.lock().retain(|id, _| config.access_point(id.as_str()).is_some());
    }
}
