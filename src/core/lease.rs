//! Device-side leases as borne knows them: the reconciler's workers record
//! each arming and renewal, the views and `/metrics` show the expiry.

use chrono::{DateTime, Utc};

use super::Core;
use super::observed::ApState;
use crate::config::AccessPoint;

impl Core {
    /// Records that the AP's device now switches itself off at `until`
    /// unless renewed (`None`: it holds no lease, e.g. it was switched off).
    pub fn record_lease(&self, ap: &AccessPoint, until: Option<DateTime<Utc>>) {
        let now = self.now();
        let changed = {
            let mut state = self.lock_state();
            let entry = state.aps.entry(ap.id.clone()).or_insert_with(|| ApState::unknown(now));
            let changed = entry.lease_until.is_some() != until.is_some();
            entry.lease_until = until;
            changed
        };
        // Renewals only move the expiry: pages learn it at their next
        // poll; gaining or losing a lease is news at once.
        if changed {
            self.announce(&ap.classroom);
        }
    }
}
