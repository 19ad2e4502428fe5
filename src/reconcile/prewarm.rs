//! Pre-warming: a scheduled change finds its SSH connections open.
//!
//! An 18:00 schedule change switches a whole city at once, and nearly
//! always finds the connections closed (`reuse_seconds` is a minute): every
//! AP pays a handshake. The planner knows when each classroom's next change
//! is and whether it will switch its APs, so `ssh.prewarm_seconds` (20)
//! before it, it asks their workers to open (or refresh) their connections
//! and learn their radios, within `max_parallel`; the driver keeps those
//! connections until the change has been applied, then `reuse_seconds` as
//! usual. No connection is kept idle the rest of the day.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Classroom, ClassroomId, Config, DriverConfig};
use crate::core::Core;
use crate::policy::Desired;

/// What the planner knows for pre-warming.
#[derive(Debug, Default)]
pub(super) struct Prewarm {
    /// Per classroom, the longest `prewarm_seconds` of its APs (classrooms
    /// without any are absent).
    lead: HashMap<ClassroomId, Duration>,
    /// Per classroom, the change instant already handled.
    handled: HashMap<ClassroomId, DateTime<Utc>>,
}

/// APs to pre-warm for a change at an instant.
pub(super) struct Request<'a> {
    /// The change instant.
    pub(super) at: DateTime<Utc>,
    /// The classroom's APs whose lead has come.
    pub(super) aps: Vec<&'a crate::config::ApId>,
}

impl Prewarm {
    /// Takes a (new) configuration.
    pub(super) fn configure(&mut self, config: &Config) {
        self.lead.clear();
        self.handled.clear();
        for ap in &config.access_points {
            if let DriverConfig::Ssh(ssh) = &ap.driver
                && !ssh.prewarm.is_zero()
            {
                let lead = self.lead.entry(ap.classroom.clone()).or_default();
                *lead = (*lead).max(ssh.prewarm);
            }
        }
    }

    /// For a classroom evaluated at `now` with `desired`: the APs to
    /// pre-warm now, if its next change switches them and their lead has
    /// come; otherwise when to look again (the lead's start).
    pub(super) fn check<'a>(
        &mut self,
        core: &Core,
        config: &'a Config,
        classroom: &'a Classroom,
        desired: &Desired,
        now: DateTime<Utc>,
    ) -> Result<Option<Request<'a>>, DateTime<Utc>> {
        let (Some(change), Some(lead)) = (desired.next_change.as_ref(), self.lead.get(&classroom.id)) else {
            return Ok(None);
        };
        let start = change.at - chrono::Duration::from_std(*lead).unwrap_or_default();
        if now < start {
            return Err(start);
        }
        if now >= change.at || self.handled.get(&classroom.id) == Some(&change.at) {
            return Ok(None);
        }
        self.handled.insert(classroom.id.clone(), change.at);
        if core.desired(classroom, change.at).wifi == desired.wifi {
            return Ok(None); // the change does not switch the APs
        }
        let until = change.at - now;
        let aps = classroom
            .access_points
            .iter()
            .filter(|id| {
                config.access_point(id.as_str()).is_some_and(|ap| match &ap.driver {
                    DriverConfig::Ssh(ssh) => {
                        !ssh.prewarm.is_zero() && chrono::Duration::from_std(ssh.prewarm).is_ok_and(|p| until <= p)
                    }
                    _ => false,
                })
            })
            .collect();
        Ok(Some(Request { at: change.at, aps }))
    }
}
