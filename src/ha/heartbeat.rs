//! Heartbeats: every second each instance writes its row of
//! `borne_instances` (role, configuration hash) and reads everyone's, for
//! the cluster view, the configuration check and the metrics.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use super::cluster::{Cluster, Instance, Role};
use super::session::{Connect, Session};

/// How often.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// A heartbeat older than this marks an instance as gone (it cannot hold
/// the lock any more: its session's idle timeout is shorter).
pub const GONE_AFTER_SECONDS: i64 = 10;

/// The heartbeat task.
pub struct Heartbeat {
    connect: Connect,
    cluster: Arc<Cluster>,
    started_at: DateTime<Utc>,
    /// 1 while another instance leads with a different configuration.
    mismatch: Gauge,
}

impl Heartbeat {
    /// The task for this instance.
    pub fn new(connect: Connect, cluster: Arc<Cluster>, started_at: DateTime<Utc>, mismatch: Gauge) -> Self {
        Self {
            connect,
            cluster,
            started_at,
            mismatch,
        }
    }

    /// Beats until `shutdown`; at the stop, writes a last row as follower.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut warned_sha: Option<String> = None;
        let mut session: Option<Session> = None;
        loop {
            if session.as_ref().is_none() {
                match tokio::time::timeout(Duration::from_secs(5), (self.connect)()).await {
                    Ok(Ok(s)) => session = Some(s),
                    Ok(Err(e)) => tracing::debug!(error = %e, "heartbeat: cannot connect"),
                    Err(_) => tracing::debug!("heartbeat: no answer when connecting"),
                }
            }
            if let Some(s) = &session {
                match tokio::time::timeout(INTERVAL * 2, self.beat(s, self.cluster.role())).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "heartbeat failed; reconnecting");
                        session = None;
                    }
                    Err(_) => {
                        tracing::debug!("heartbeat got no answer; reconnecting");
                        session = None;
                    }
                }
            }
            self.check_config(&mut warned_sha);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(INTERVAL) => {}
            }
        }
        if let Some(s) = &session {
            let _ = tokio::time::timeout(INTERVAL, self.beat(s, Role::Follower)).await;
        }
    }

    async fn beat(&self, s: &Session, role: Role) -> Result<(), tokio_postgres::Error> {
        s.client
            .execute(
                "INSERT INTO borne_instances (id, config_sha256, role, last_heartbeat, started_at) \
                 VALUES ($1, $2, $3, now(), $4) \
                 ON CONFLICT (id) DO UPDATE SET config_sha256 = EXCLUDED.config_sha256, \
                 role = EXCLUDED.role, last_heartbeat = now(), started_at = EXCLUDED.started_at",
                &[
                    &self.cluster.self_id(),
                    &self.cluster.config_sha256(),
                    &role.as_str(),
                    &self.started_at,
                ],
            )
            .await?;
        // Instances gone for a day are not shown.
        let rows = s
            .client
            .query(
                &format!(
                    "SELECT id, role, config_sha256, last_heartbeat, \
                     now() - last_heartbeat < interval '{GONE_AFTER_SECONDS} seconds' \
                     FROM borne_instances WHERE last_heartbeat > now() - interval '1 day' ORDER BY id"
                ),
                &[],
            )
            .await?;
        let instances = rows
            .iter()
            .map(|r| {
                let up: bool = r.get(4);
                let stored = Role::parse(r.get::<_, &str>(1));
                Instance {
                    id: r.get(0),
                    role: if up { stored } else { Role::Follower },
                    config_sha256: r.get(2),
                    last_heartbeat: r.get(3),
                    up,
                }
            })
            .collect();
        self.cluster.set_instances(instances);
        Ok(())
    }

    /// Warns once per leader configuration that differs from this one's.
    fn check_config(&self, warned: &mut Option<String>) {
        match self.cluster.other_leader_sha() {
            Some((leader, sha)) if sha != self.cluster.config_sha256() => {
                self.mismatch.set(1);
                if warned.as_deref() != Some(sha.as_str()) {
                    tracing::warn!(
                        leader = %leader,
                        leader_config_sha256 = %sha,
                        config_sha256 = %self.cluster.config_sha256(),
                        "this instance's configuration differs from the leader's (same file on every instance?)"
                    );
                    *warned = Some(sha);
                }
            }
            _ => {
                self.mismatch.set(0);
                *warned = None;
            }
        }
    }
}
