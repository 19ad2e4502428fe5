//! Letting go of an access point that left the configuration at a reload:
//! before borne forgets it, it switches it off through the settings it had,
//! once, within a bounded time, and audits the outcome (`ap.release`).
//!
//! Off is the safe direction: an AP nobody drives any more must not stay on
//! for good. A device that cannot be reached is not retried (nothing would
//! stop the retries but a restart): the failure is logged and audited, and
//! the device's own lease (`failsafe`), when it holds one, is the backstop
//! that switches it off when it runs out.
//!
//! An AP is *moved*, not removed, when another AP of the new configuration
//! is the same device ([`device`]): that one's worker drives it to its new
//! classroom's state, and there is nothing to release.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Drivers;
use crate::config::{AccessPoint, DriverConfig};
use crate::core::Core;
use crate::policy::Wifi;
use crate::store::{AuditRecord, Batch};

/// Longest a release may take, whatever the driver's own timeouts say: a
/// reload that removes a school of dead APs must not hold shutdown or the
/// operation budget for minutes.
pub(super) const RELEASE_LIMIT: Duration = Duration::from_secs(30);

/// The physical device an AP's settings point to, as far as borne can
/// tell: host and port for SSH (the user, key or preset may change, the box
/// is the same), the command topic for MQTT (one broker: a topic is one
/// plug), and the AP id for simulated APs (the simulator keys its devices
/// by id).
pub(super) fn device(ap: &AccessPoint) -> String {
    match &ap.driver {
        DriverConfig::Ssh(s) => format!("ssh\u{0}{}\u{0}{}", s.host.to_ascii_lowercase(), s.port),
        DriverConfig::Mqtt(m) => format!("mqtt\u{0}{}", m.command_topic),
        DriverConfig::Sim(_) => format!("sim\u{0}{}", ap.id),
    }
}

/// How long the release of `ap` may take: what one switch takes the driver
/// at most (SSH: connect, the switch command and the read-back), capped by
/// [`RELEASE_LIMIT`]. MQTT's own acknowledgement timeout ends it first.
pub(super) fn limit(ap: &AccessPoint) -> Duration {
    let own = match &ap.driver {
        DriverConfig::Ssh(s) => s.connect_timeout + s.command_timeout * 2,
        DriverConfig::Mqtt(_) => RELEASE_LIMIT,
        DriverConfig::Sim(s) => s.timeout + s.latency,
    };
    own.min(RELEASE_LIMIT)
}

/// Switches `ap` (its settings before the reload) off once `after` is
/// cancelled (its worker has stopped, with its operation in flight
/// finished), holding a permit of `max_parallel`, and audits the outcome.
pub(super) async fn release(
    core: Arc<Core>,
    drivers: Drivers,
    permits: Arc<Semaphore>,
    ap: AccessPoint,
    after: CancellationToken,
) {
    after.cancelled().await;
    let Ok(_permit) = permits.acquire_owned().await else {
        return;
    };
    let kind = ap.driver.kind();
    let limit = limit(&ap);
    let started = Instant::now();
    let outcome = match drivers.for_ap(&ap) {
        None => Err(format!("no {kind} driver is running")),
        Some(driver) => match tokio::time::timeout(limit, driver.apply(&ap, Wifi::Off)).await {
            Ok(Ok(o)) if o.wifi.is(Wifi::Off) => Ok(()),
            Ok(Ok(o)) => Err(format!("still {} after switching off", o.wifi.as_str())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
        },
    };
    core.metrics
        .operation(kind, "release", outcome.is_ok(), started.elapsed());
    let result = match &outcome {
        Ok(()) => {
            tracing::info!(school = %ap.school, classroom = %ap.classroom, ap = %ap.id, "access point removed from the configuration: switched off and released");
            "ok".to_owned()
        }
        Err(e) => {
            tracing::warn!(
                school = %ap.school,
                classroom = %ap.classroom,
                ap = %ap.id,
                error = %e,
                lease = ?ap.lease,
                "access point removed from the configuration could not be switched off; released as it is (its lease, if it holds one, switches it off when it runs out)"
            );
            format!("error: {e}")
        }
    };
    core.writer().enqueue(Batch::audit(vec![AuditRecord {
        at: core.now(),
        actor: "borne".into(),
        role: None,
        classroom: Some(ap.classroom.to_string()),
        access_point: Some(ap.id.to_string()),
        action: "ap.release".into(),
        detail: format!("off over {kind}: removed from the configuration"),
        result,
        source: None,
        via: None,
    }]));
}
