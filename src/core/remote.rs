//! Changes another instance committed to the shared database: reloaded
//! from the store and adopted in memory, announced on the event stream
//! (SSE on a follower shows them as on the leader) and handed to the
//! planner like a local request's.
//!
//! The classrooms concerned are locked for the reload, so a request of
//! this instance on one of them is either wholly before it (its commit is
//! in what is read) or wholly after (it decides on what was read).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use super::Core;
use super::observed::ApState;
use crate::config::{ApId, ClassroomId};
use crate::ha::{Change, Cluster};
use crate::store::{ObservedRecord, Snapshot, StoreError};

/// Where changes are reloaded from (the shared store). Calls block.
pub trait Source: Send + Sync + 'static {
    /// Everything.
    ///
    /// # Errors
    /// The database cannot be read.
    fn all(&self) -> Result<Snapshot, StoreError>;

    /// Sessions and overrides of these classrooms.
    ///
    /// # Errors
    /// The database cannot be read.
    fn classrooms(&self, ids: &[ClassroomId]) -> Result<Snapshot, StoreError>;

    /// Observed states of these access points.
    ///
    /// # Errors
    /// The database cannot be read.
    fn observed(&self, ids: &[ApId]) -> Result<Vec<(ApId, ObservedRecord)>, StoreError>;
}

impl Core {
    /// This instance's view of the cluster (a lone instance when no
    /// database is shared).
    pub fn cluster(&self) -> Arc<Cluster> {
        self.cluster
            .get_or_init(|| {
                let config = self.config();
                Arc::new(Cluster::alone(config.instance_id(), config.ha.config_sha256.clone()))
            })
            .clone()
    }

    /// Joins a cluster (at start, before anything reads [`Core::cluster`]).
    pub fn set_cluster(&self, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// Reloads what `change` names from `source` and adopts it. Observed
    /// states are adopted only while following: the leader is the one
    /// that observes.
    ///
    /// # Errors
    /// The store could not be read: nothing was adopted.
    pub async fn adopt(self: &Arc<Self>, change: Change, source: Arc<dyn Source>) -> Result<(), StoreError> {
        let leader = self.cluster().is_leader();
        match change {
            Change::All => {
                let config = self.config();
                let ids: Vec<ClassroomId> = config.classrooms.iter().map(|c| c.id.clone()).collect();
                let _guards = self.lock_classrooms(&ids).await;
                let src = source.clone();
                let snapshot = blocking(move || src.all()).await?;
                let mut touched: BTreeSet<ClassroomId> = self.lock_state().sessions.keys().cloned().collect();
                touched.extend(self.lock_state().overrides.keys().cloned());
                touched.extend(snapshot.sessions.iter().map(|(c, _)| c.clone()));
                touched.extend(snapshot.overrides.iter().map(|(c, _)| c.clone()));
                touched.extend(self.lock_state().planned.keys().cloned());
                touched.extend(snapshot.planned.iter().map(|(c, _)| c.clone()));
                self.adopt_inputs(&touched, &snapshot);
                if !leader {
                    self.adopt_observed(snapshot.observed);
                }
            }
            Change::Some { classrooms, aps } => {
                if !classrooms.is_empty() {
                    let ids: Vec<ClassroomId> = classrooms.iter().cloned().collect();
                    let _guards = self.lock_classrooms(&ids).await;
                    let src = source.clone();
                    let snapshot = blocking(move || src.classrooms(&ids)).await?;
                    self.adopt_inputs(&classrooms, &snapshot);
                }
                if !aps.is_empty() && !leader {
                    let ids: Vec<ApId> = aps.into_iter().collect();
                    let observed = blocking(move || source.observed(&ids)).await?;
                    self.adopt_observed(observed);
                }
            }
        }
        Ok(())
    }

    /// Replaces the sessions, overrides and planned overrides of `ids` by the snapshot's.
    fn adopt_inputs(&self, ids: &BTreeSet<ClassroomId>, snapshot: &Snapshot) {
        let config = self.config();
        let mut changed = Vec::new();
        {
            let mut state = self.lock_state();
            for id in ids {
                let session = snapshot
                    .sessions
                    .iter()
                    .find(|(c, _)| c == id)
                    .map(|(_, s)| s.clone())
                    // A session of a classroom gone from this instance's
                    // configuration is not adopted (as at start).
                    .filter(|_| config.classroom(id.as_str()).is_some());
                let over = snapshot.overrides.iter().find(|(c, _)| c == id).map(|(_, o)| o.clone());
                let mut planned: Vec<_> = snapshot
                    .planned
                    .iter()
                    .filter(|(c, _)| c == id)
                    .map(|(_, p)| p.clone())
                    .collect();
                planned.sort_by_key(|p| p.from);
                let before = (
                    state.sessions.get(id).cloned(),
                    state.overrides.get(id).cloned(),
                    state.planned.get(id).cloned().unwrap_or_default(),
                );
                if before == (session.clone(), over.clone(), planned.clone()) {
                    continue;
                }
                if planned.is_empty() {
                    state.planned.remove(id);
                } else {
                    state.planned.insert(id.clone(), planned);
                }
                match session {
                    Some(s) => state.sessions.insert(id.clone(), s),
                    None => state.sessions.remove(id),
                };
                match over {
                    Some(o) => state.overrides.insert(id.clone(), o),
                    None => state.overrides.remove(id),
                };
                changed.push(id.clone());
            }
        }
        if !changed.is_empty() {
            self.touch(&changed);
            for c in &changed {
                self.announce(c);
            }
        }
    }

    /// Adopts observed states the leader wrote.
    fn adopt_observed(&self, observed: Vec<(ApId, ObservedRecord)>) {
        let config = self.config();
        let now = self.now();
        let mut announce = HashSet::new();
        {
            let mut state = self.lock_state();
            for (id, record) in observed {
                let Some(ap) = config.access_point(id.as_str()) else {
                    continue;
                };
                let entry = state.aps.entry(id).or_insert_with(|| ApState::unknown(now));
                if entry.observed == record {
                    continue;
                }
                entry.consecutive_failures = if record.reachable {
                    0
                } else {
                    entry.consecutive_failures.max(1)
                };
                entry.observed = record;
                announce.insert(ap.classroom.clone());
            }
        }
        for c in &announce {
            self.announce(c);
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?
}
