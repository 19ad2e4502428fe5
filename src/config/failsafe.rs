//! `failsafe:` and `clock:`: what makes an "on" end by itself when borne
//! cannot end it (a device-side lease), and what borne does while its own
//! clock cannot be trusted.
//!
//! Validation resolves, per access point, whether its driver can hold a
//! lease ([`lease_support`]); the drivers receive the result as
//! [`crate::config::AccessPoint::lease`] and never re-check.

use std::time::Duration;

use super::{AccessPoint, DriverConfig, MqttLease, SshPreset};

/// Lease when `failsafe.lease_minutes` is not given.
pub const DEFAULT_LEASE_MINUTES: u32 = 20;

/// Shortest lease: Tasmota's `PulseTime` counts whole seconds from 112
/// (= 12 s); anything shorter would not survive one renewal's round trip.
pub const MIN_LEASE: Duration = Duration::from_secs(12);

/// Longest lease: Tasmota's `PulseTime` stops at 64900 (= 64800 s, 18 h).
pub const MAX_LEASE: Duration = Duration::from_secs(64_800);

/// `failsafe:`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failsafe {
    /// The lease armed on devices; `None` when leases are disabled.
    pub lease: Option<Duration>,
    /// Set the devices' power-on state to off at first contact.
    pub configure_devices: bool,
}

impl Default for Failsafe {
    fn default() -> Self {
        Self {
            lease: Some(Duration::from_secs(u64::from(DEFAULT_LEASE_MINUTES) * 60)),
            configure_devices: true,
        }
    }
}

/// `clock:`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockSettings {
    /// No new "on" while the clock is not synchronised.
    pub require_sync: bool,
}

/// Whether a driver block can hold a device-side lease.
///
/// # Errors
/// Why not, as the sentence `borne check` prints in its warning.
pub fn lease_support(driver: &DriverConfig) -> Result<(), &'static str> {
    match driver {
        DriverConfig::Sim(_) => Ok(()),
        DriverConfig::Ssh(ssh) => match &ssh.preset {
            SshPreset::OpenWrt { .. } => Ok(()),
            SshPreset::Custom(c) if c.lease_command.is_some() => Ok(()),
            SshPreset::Custom(_) => Err(
                "preset custom without lease_command cannot arm an off-timer on the AP: if borne stops, \
                 this AP stays on until someone switches it off",
            ),
        },
        DriverConfig::Mqtt(m) => match (&m.lease, m.preset.as_str()) {
            (Some(_), _) => Ok(()),
            (None, "shelly") => Err(
                "Shelly Gen1 cannot arm an off-timer over MQTT: if borne stops, this AP stays on until someone \
                 switches it off (a Plus/Pro device with preset shelly-gen2 can)",
            ),
            (None, _) => Err(
                "no lease_payload: the device cannot be told to switch itself off, so if borne stops, this AP \
                 stays on until someone switches it off",
            ),
        },
    }
}

impl AccessPoint {
    /// Whether borne can count the AP's associated clients (for idle
    /// auto-off): OpenWrt and simulated APs, custom ones with a
    /// `clients_command`; never MQTT plugs.
    pub fn counts_clients(&self) -> bool {
        match &self.driver {
            DriverConfig::Sim(_) => true,
            DriverConfig::Ssh(ssh) => match &ssh.preset {
                SshPreset::OpenWrt { .. } => true,
                SshPreset::Custom(c) => c.clients_command.is_some(),
            },
            DriverConfig::Mqtt(_) => false,
        }
    }
}

/// A lease in whole seconds, for the `{seconds}` of templates and commands.
pub fn lease_seconds(lease: Duration) -> u64 {
    lease.as_secs().max(1)
}

/// Tasmota's `PulseTime` value for a lease: 112..=64900 means value − 100
/// seconds, so the lease plus 100, within that range.
pub fn pulse_time(lease: Duration) -> u32 {
    let v = lease.as_secs().saturating_add(100).clamp(112, 64_900);
    // In range by the clamp above.
    u32::try_from(v).unwrap_or(64_900)
}

/// The payload that switches on with a lease: `{seconds}` replaced.
pub fn lease_payload(template: &str, lease: Duration) -> String {
    template.replace("{seconds}", &lease_seconds(lease).to_string())
}

impl MqttLease {
    /// How this lease is armed, in a few words for logs and the API.
    pub fn describe(&self) -> &'static str {
        match self {
            MqttLease::PulseTime { .. } => "tasmota PulseTime",
            MqttLease::Payload(_) => "lease payload",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulse_time_is_the_lease_plus_100_within_tasmotas_range() {
        assert_eq!(pulse_time(Duration::from_secs(1200)), 1300);
        assert_eq!(pulse_time(Duration::from_secs(12)), 112);
        assert_eq!(pulse_time(Duration::from_secs(1)), 112);
        assert_eq!(pulse_time(Duration::from_secs(100_000)), 64_900);
    }

    #[test]
    fn lease_payload_replaces_every_seconds_placeholder() {
        assert_eq!(
            lease_payload(
                r#"{"state":"ON","expires_in":{seconds},"again":{seconds}}"#,
                Duration::from_secs(90)
            ),
            r#"{"state":"ON","expires_in":90,"again":90}"#
        );
        assert_eq!(lease_payload("ON", Duration::from_secs(90)), "ON");
    }
}
