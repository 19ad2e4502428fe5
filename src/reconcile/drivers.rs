//! The set of drivers the workers call, one per kind of access point.

use std::sync::Arc;

use crate::config::{AccessPoint, Config, DriverConfig};
use crate::driver::Driver;

/// The drivers, by kind. The simulated one is always there (it costs
/// nothing); SSH and MQTT only when the daemon started them.
#[derive(Clone)]
pub struct Drivers {
    /// Simulated APs.
    pub sim: Arc<dyn Driver>,
    /// SSH APs.
    pub ssh: Option<Arc<dyn Driver>>,
    /// MQTT APs.
    pub mqtt: Option<Arc<dyn Driver>>,
}

impl Drivers {
    /// The driver for this AP's kind, if it is running.
    pub(super) fn for_ap(&self, ap: &AccessPoint) -> Option<&Arc<dyn Driver>> {
        match &ap.driver {
            DriverConfig::Sim(_) => Some(&self.sim),
            DriverConfig::Ssh(_) => self.ssh.as_ref(),
            DriverConfig::Mqtt(_) => self.mqtt.as_ref(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &Arc<dyn Driver>> {
        std::iter::once(&self.sim)
            .chain(self.ssh.iter())
            .chain(self.mqtt.iter())
    }

    pub(super) async fn reconfigure(&self, config: &Arc<Config>) {
        for d in self.all() {
            d.reconfigure(config).await;
        }
    }

    /// Closes driver connections.
    pub async fn shutdown(&self) {
        for d in self.all() {
            d.shutdown().await;
        }
    }
}
