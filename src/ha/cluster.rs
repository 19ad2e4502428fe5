//! What this instance knows of the cluster: its own id, role and
//! configuration hash, and the instances seen in `borne_instances` (for
//! `GET /api/v1/cluster`, the dashboard and the metrics).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// An instance's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Holds the lock: runs the reconciler and talks to access points.
    Leader,
    /// Serves the API and the pages; waits for the lock.
    Follower,
}

impl Role {
    /// `leader` or `follower`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }

    /// From the stored text; anything else is a follower.
    pub fn parse(s: &str) -> Role {
        if s == "leader" { Role::Leader } else { Role::Follower }
    }
}

/// One instance, as `GET /api/v1/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    /// Its id.
    pub id: String,
    /// Its role as it last published it; an instance whose heartbeats
    /// stopped is shown as a follower (it cannot hold the lock any more).
    pub role: Role,
    /// Its configuration's SHA-256.
    pub config_sha256: String,
    /// Its last heartbeat (database time).
    pub last_heartbeat: DateTime<Utc>,
    /// Whether its heartbeats are current.
    pub up: bool,
}

/// The cluster as this instance sees it; shared by the heartbeat task, the
/// leadership task, the API and the metrics.
#[derive(Debug)]
pub struct Cluster {
    self_id: String,
    config_sha256: Mutex<String>,
    /// False for a lone instance (no database): it always leads.
    shared: bool,
    leader: AtomicBool,
    instances: Mutex<Vec<Instance>>,
    /// The instances were read at least once (a follower waits for it
    /// before trying the lock: it must know the leader's configuration).
    seen: AtomicBool,
    /// Another instance last seen leading (alive then), for the failover count.
    last_other_leader: Mutex<Option<String>>,
}

impl Cluster {
    /// The view of an instance sharing a database with others.
    pub fn shared(self_id: String, config_sha256: String) -> Self {
        Self {
            self_id,
            config_sha256: Mutex::new(config_sha256),
            shared: true,
            leader: AtomicBool::new(false),
            instances: Mutex::new(Vec::new()),
            seen: AtomicBool::new(false),
            last_other_leader: Mutex::new(None),
        }
    }

    /// A lone instance: always the leader.
    pub fn alone(self_id: String, config_sha256: String) -> Self {
        Self {
            shared: false,
            leader: AtomicBool::new(true),
            ..Self::shared(self_id, config_sha256)
        }
    }

    /// Whether other instances may share the database.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// This instance's id.
    pub fn self_id(&self) -> &str {
        &self.self_id
    }

    /// This instance's configuration hash (changes at a reload).
    pub fn config_sha256(&self) -> String {
        self.config_sha256.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A reload adopted a configuration with this hash.
    pub fn set_config_sha256(&self, sha: String) {
        *self.config_sha256.lock().unwrap_or_else(|e| e.into_inner()) = sha;
    }

    /// Whether this instance leads now.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// This instance's role.
    pub fn role(&self) -> Role {
        if self.is_leader() { Role::Leader } else { Role::Follower }
    }

    pub(super) fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::SeqCst);
    }

    pub(super) fn set_instances(&self, instances: Vec<Instance>) {
        if let Some(other) = instances
            .iter()
            .find(|i| i.up && i.role == Role::Leader && i.id != self.self_id)
        {
            *self.last_other_leader.lock().unwrap_or_else(|e| e.into_inner()) = Some(other.id.clone());
        }
        *self.instances.lock().unwrap_or_else(|e| e.into_inner()) = instances;
        self.seen.store(true, Ordering::SeqCst);
    }

    /// Whether the instances were read at least once.
    pub fn has_seen_instances(&self) -> bool {
        self.seen.load(Ordering::SeqCst)
    }

    /// This instance took the lock: returns the instance it took over
    /// from (the other one last seen leading), if any.
    pub(super) fn take_over(&self) -> Option<String> {
        self.set_leader(true);
        self.last_other_leader.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The instances seen, this one included (with its role as of now).
    pub fn instances(&self, now: DateTime<Utc>) -> Vec<Instance> {
        let mut list = self.instances.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let me = Instance {
            id: self.self_id.clone(),
            role: self.role(),
            config_sha256: self.config_sha256(),
            last_heartbeat: now,
            up: true,
        };
        match list.iter_mut().find(|i| i.id == self.self_id) {
            Some(i) => {
                i.role = me.role;
                i.config_sha256 = me.config_sha256;
                i.up = true;
            }
            None => list.push(me),
        }
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// The configuration hash of another instance that leads now, if any.
    pub fn other_leader_sha(&self) -> Option<(String, String)> {
        self.instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|i| i.up && i.role == Role::Leader && i.id != self.self_id)
            .map(|i| (i.id.clone(), i.config_sha256.clone()))
    }

    /// Whether another instance leads with a different configuration.
    pub fn config_differs(&self) -> bool {
        self.other_leader_sha()
            .is_some_and(|(_, sha)| sha != self.config_sha256())
    }

    /// Whether this instance may take the lock: no other live leader, or
    /// one with the same configuration (it will not release the lock
    /// anyway; the check matters when it dies and its row says what ran).
    pub fn may_lead(&self) -> bool {
        !self.config_differs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, role: Role, sha: &str, up: bool) -> Instance {
        Instance {
            id: id.into(),
            role,
            config_sha256: sha.into(),
            last_heartbeat: Utc::now(),
            up,
        }
    }

    #[test]
    fn a_different_configuration_may_not_lead() {
        let c = Cluster::shared("b".into(), "sha-b".into());
        assert!(c.may_lead());
        c.set_instances(vec![row("a", Role::Leader, "sha-a", true)]);
        assert!(c.config_differs());
        assert!(!c.may_lead());
        c.set_config_sha256("sha-a".into());
        assert!(c.may_lead());
    }

    #[test]
    fn a_gone_leader_does_not_hold_anyone_back() {
        let c = Cluster::shared("b".into(), "sha-b".into());
        c.set_instances(vec![row("a", Role::Leader, "sha-a", false)]);
        assert!(c.may_lead());
    }

    #[test]
    fn self_is_listed_with_its_current_role() {
        let c = Cluster::shared("b".into(), "s".into());
        c.set_instances(vec![
            row("b", Role::Follower, "s", true),
            row("a", Role::Leader, "s", true),
        ]);
        c.set_leader(true);
        let list = c.instances(Utc::now());
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].id, "b");
        assert_eq!(list[1].role, Role::Leader);
    }
}
