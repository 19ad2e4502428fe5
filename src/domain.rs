//! The value types every layer shares: the Wi-Fi state a classroom wants
//! ([`Wifi`]) and what a driver sees of an access point ([`ObservedWifi`],
//! [`Observation`]). They sit below every other module so that the store,
//! the drivers and the policy can all name them without importing each other.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of a classroom's Wi-Fi.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wifi {
    /// Radios on.
    On,
    /// Radios off.
    Off,
}

impl Wifi {
    /// `on` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            Wifi::On => "on",
            Wifi::Off => "off",
        }
    }

    /// Parses `on` or `off`.
    pub fn parse(s: &str) -> Option<Wifi> {
        match s {
            "on" => Some(Wifi::On),
            "off" => Some(Wifi::Off),
            _ => None,
        }
    }
}

impl fmt::Display for Wifi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a driver sees of an AP's Wi-Fi.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObservedWifi {
    /// Radios on.
    On,
    /// Radios off.
    Off,
    /// Not known: never read, radios that disagree, or output that made no sense.
    Unknown,
}

impl ObservedWifi {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ObservedWifi::On => "on",
            ObservedWifi::Off => "off",
            ObservedWifi::Unknown => "unknown",
        }
    }

    /// Whether this matches the desired state.
    pub fn is(self, wifi: Wifi) -> bool {
        matches!(
            (self, wifi),
            (ObservedWifi::On, Wifi::On) | (ObservedWifi::Off, Wifi::Off)
        )
    }
}

impl From<Wifi> for ObservedWifi {
    fn from(w: Wifi) -> Self {
        match w {
            Wifi::On => ObservedWifi::On,
            Wifi::Off => ObservedWifi::Off,
        }
    }
}

/// The result of an apply or observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The state read back (or assumed).
    pub wifi: ObservedWifi,
    /// Associated clients, when the driver can count them.
    pub clients: Option<u32>,
    /// The state was not read from the device but assumed from the command
    /// having been accepted (MQTT without a state topic).
    pub assumed: bool,
}

impl Observation {
    /// A state read from the device.
    pub fn read(wifi: ObservedWifi, clients: Option<u32>) -> Self {
        Self {
            wifi,
            clients,
            assumed: false,
        }
    }
}
