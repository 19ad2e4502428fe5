//! What the access points were last seen doing: the reconciler writes it,
//! the views read it.

use chrono::{DateTime, Utc};

use super::Core;
use crate::config::{AccessPoint, ApId};
use crate::driver::{Observation, ObservedWifi};
use crate::store::{Batch, ObservedRecord};

/// What the reconciler knows of one access point.
#[derive(Debug, Clone)]
pub struct ApState {
    /// Last observation and its circumstances.
    pub observed: ObservedRecord,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When the device switches itself off unless the lease is renewed
    /// (borne's clock at arming + the lease), while it holds one.
    pub lease_until: Option<DateTime<Utc>>,
    /// Since when every reading counted zero associated clients (for idle
    /// auto-off); `None` while someone is connected or it cannot count.
    pub zero_clients_since: Option<DateTime<Utc>>,
}

impl ApState {
    pub(super) fn unknown(now: DateTime<Utc>) -> Self {
        Self {
            observed: ObservedRecord {
                wifi: ObservedWifi::Unknown,
                since: now,
                reachable: true,
                last_error: None,
                clients: None,
                assumed: false,
                last_contact: None,
            },
            consecutive_failures: 0,
            lease_until: None,
            zero_clients_since: None,
        }
    }
}

impl Core {
    /// What the reconciler knows of an AP.
    pub fn ap_state(&self, ap: &ApId) -> Option<ApState> {
        self.lock_state().aps.get(ap).cloned()
    }

    /// Records the outcome of a driver operation (or a device's report);
    /// returns whether what is seen changed.
    pub fn record_observation(&self, ap: &AccessPoint, result: Result<Observation, String>) -> bool {
        let now = self.now();
        let (changed, record, before_record) = {
            let mut state = self.lock_state();
            let entry = state.aps.entry(ap.id.clone()).or_insert_with(|| ApState::unknown(now));
            let before = entry.observed.clone();
            match &result {
                Ok(o) => {
                    if entry.observed.wifi != o.wifi {
                        entry.observed.since = now;
                    }
                    entry.observed.wifi = o.wifi;
                    entry.observed.clients = o.clients;
                    entry.zero_clients_since = match o.clients {
                        Some(0) => entry.zero_clients_since.or(Some(now)),
                        _ => None,
                    };
                    entry.observed.assumed = o.assumed;
                    entry.observed.reachable = true;
                    entry.observed.last_error = None;
                    entry.observed.last_contact = Some(now);
                    entry.consecutive_failures = 0;
                }
                Err(e) => {
                    entry.observed.reachable = false;
                    entry.observed.last_error = Some(e.clone());
                    entry.consecutive_failures = entry.consecutive_failures.saturating_add(1);
                }
            }
            let o = &entry.observed;
            let changed = o.wifi != before.wifi
                || o.reachable != before.reachable
                || o.last_error != before.last_error
                || o.clients != before.clients
                || o.assumed != before.assumed;
            (changed, entry.observed.clone(), before)
        };
        if changed {
            let mut batch = Batch::default();
            if effective(&before_record) != effective(&record) {
                batch
                    .usage
                    .ap_history
                    .push((ap.id.to_string(), now, effective(&record)));
            }
            batch.observed.push((ap.id.clone(), record));
            self.writer.enqueue(batch);
            self.announce(&ap.classroom);
        }
        changed
    }

    /// A device's state is presumed lost (came back online, broker
    /// reconnected): forget what was seen so the reconciler re-sends.
    pub fn forget_observation(&self, ap: &AccessPoint, reachable: Option<bool>) {
        let now = self.now();
        let changed = {
            let mut state = self.lock_state();
            match state.aps.get_mut(&ap.id) {
                Some(entry) => {
                    if effective(&entry.observed) != ObservedWifi::Unknown {
                        // The usage report counts this stretch as unknown.
                        let mut batch = Batch::default();
                        batch
                            .usage
                            .ap_history
                            .push((ap.id.to_string(), now, ObservedWifi::Unknown));
                        self.writer.enqueue(batch);
                    }
                    entry.observed.wifi = ObservedWifi::Unknown;
                    if let Some(r) = reachable {
                        entry.observed.reachable = r;
                        if !r {
                            entry.observed.last_error = Some("the device reported itself offline".into());
                        }
                    }
                    true
                }
                None => false,
            }
        };
        if changed {
            self.announce(&ap.classroom);
        }
    }
}

/// What the usage report records of an observation: unreachable is unknown,
/// whatever was seen before.
fn effective(o: &ObservedRecord) -> ObservedWifi {
    if o.reachable { o.wifi } else { ObservedWifi::Unknown }
}
