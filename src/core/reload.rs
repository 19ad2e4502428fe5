//! The write path for a reload: adopting a new configuration.

use std::sync::Arc;

use super::{ApState, Core};
use crate::config::Config;
use crate::store::Batch;

impl Core {
    /// Adopts a reloaded configuration: runtime state of classrooms and APs
    /// that still exist is kept, the rest dropped (from the store too).
    pub fn replace_config(&self, config: Arc<Config>) {
        let now = self.now();
        let mut batch = Batch::default();
        {
            let mut state = self.lock_state();
            state.sessions.retain(|c, _| {
                let keep = config.classroom(c.as_str()).is_some();
                if !keep {
                    batch.sessions.push((c.clone(), None));
                }
                keep
            });
            state.overrides.retain(|c, _| {
                let keep = config.classroom(c.as_str()).is_some();
                if !keep {
                    batch.overrides.push((c.clone(), None));
                }
                keep
            });
            state.aps.retain(|ap, _| config.access_point(ap.as_str()).is_some());
            for ap in &config.access_points {
                state.aps.entry(ap.id.clone()).or_insert_with(|| ApState::unknown(now));
            }
        }
        self.rebuild_locks(&config);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config.clone();
        self.writer.enqueue(batch);
        for c in &config.classrooms {
            self.announce(&c.id);
        }
        self.poke();
    }
}
