//! Desired states: the policy applied to the runtime inputs.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::Core;
use crate::config::{Classroom, Config};
use crate::policy::{self, Desired};

impl Core {
    /// The desired state of a classroom at `now`.
    pub fn desired(&self, classroom: &Classroom, now: DateTime<Utc>) -> Desired {
        let untrusted = self.clock_untrusted();
        let state = self.lock_state();
        let d = policy::desired(classroom, state.inputs(&classroom.id), now);
        self.clock_guard(d, untrusted)
    }

    /// Evaluates every classroom at `now`, computing each (schedule, time
    /// zone) pair once: 10,000 classrooms usually share a handful.
    pub fn desired_all(&self, config: &Config, now: DateTime<Utc>) -> Vec<Desired> {
        let mut memo: HashMap<(*const crate::schedule::Schedule, Tz), policy::ScheduleNow> = HashMap::new();
        let untrusted = self.clock_untrusted();
        let state = self.lock_state();
        config
            .classrooms
            .iter()
            .map(|c| {
                let key = (Arc::as_ptr(&c.schedule), c.timezone);
                let sched = *memo.entry(key).or_insert_with(|| policy::ScheduleNow::of(c, now));
                let d = policy::desired_with(c, sched, state.inputs(&c.id), now);
                self.clock_guard(d, untrusted)
            })
            .collect()
    }

    /// The earliest instant after `now` at which a session or override
    /// ends or a planned override starts: the planner wakes then.
    pub fn next_input_expiry(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let state = self.lock_state();
        let sessions = state.sessions.values().map(|s| s.until);
        let overrides = state.overrides.values().filter_map(|o| o.until);
        let planned = state
            .planned
            .values()
            .flatten()
            .flat_map(|p| [Some(p.from), p.override_.until])
            .flatten();
        sessions.chain(overrides).chain(planned).filter(|t| *t > now).min()
    }
}
