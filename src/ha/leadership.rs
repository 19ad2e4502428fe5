//! Leadership: a PostgreSQL session-level advisory lock held on a session
//! of its own.
//!
//! A follower tries `pg_try_advisory_lock` every second (when its
//! configuration matches the leader's). The leader checks its session every
//! second: `pg_locks` must still show the lock granted to its backend. The
//! check's deadline is the fence's expiry ([`Fence::expires_at`]): a check
//! that fails, or that has not come back when the lease runs out, ends the
//! term at once — the term's token is cancelled (the reconciler, its
//! workers and the drivers' operations stop) and the session is dropped.
//!
//! The lock session is set so that PostgreSQL itself ends a silent
//! leader's session (frozen process, partition) `ha.lease_seconds` plus
//! [`RELEASE_MARGIN`](crate::config::ha::RELEASE_MARGIN) after its last
//! query, later than the leader's own fence closes: see docs/design.md,
//! "Fencing".

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::cluster::Cluster;
use super::fence::Fence;
use super::session::{Connect, Session};

/// The advisory lock's key ("borne" and 1): the same in every instance.
pub const LOCK_KEY: i64 = 0x626F_726E_6500_0001;

/// How often a follower tries the lock and a leader checks it.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Whether this session holds the lock, as the server sees it.
const CHECK_SQL: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
     AND pid = pg_backend_pid() AND granted AND objsubid = 1 \
     AND ((classid::bigint << 32) | objid::bigint) = $1)";

/// A leader term: while it lasts, this instance drives access points.
#[derive(Debug)]
pub struct Term {
    /// Counts terms of this process, from 1.
    pub number: u64,
    /// Checked before every driver operation.
    pub fence: Arc<Fence>,
    /// Cancelled when the term ends: stops the reconciler and the drivers.
    pub cancel: CancellationToken,
}

/// Instruments the leadership task updates.
#[derive(Debug, Clone, Default)]
pub struct LeaderMetrics {
    /// 1 while leading.
    pub leader: Gauge,
    /// Leaderships taken over from another instance.
    pub failovers: Counter,
}

/// The leadership task; see the module docs.
pub struct Leadership {
    connect: Connect,
    cluster: Arc<Cluster>,
    lease: Duration,
    idle_timeout: Duration,
    metrics: LeaderMetrics,
    terms: watch::Sender<Option<Arc<Term>>>,
}

impl Leadership {
    /// The task, and the channel on which it announces terms (`None`
    /// between terms).
    pub fn new(
        connect: Connect,
        cluster: Arc<Cluster>,
        ha: &crate::config::ha::Ha,
        metrics: LeaderMetrics,
    ) -> (Self, watch::Receiver<Option<Arc<Term>>>) {
        let (terms, rx) = watch::channel(None);
        (
            Self {
                connect,
                cluster,
                lease: ha.lease,
                idle_timeout: ha.idle_session_timeout(),
                metrics,
                terms,
            },
            rx,
        )
    }

    /// Runs until `shutdown`: follows, leads when it can, steps down when
    /// the lock cannot be confirmed.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut number = 0;
        let mut said_differs = false;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let mut session = match self.open().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "leadership: cannot open the lock session; retrying");
                    if pause(&shutdown, CHECK_INTERVAL).await {
                        return;
                    }
                    continue;
                }
            };
            // Follower: try every second.
            let acquired = loop {
                if self.cluster.has_seen_instances() && self.cluster.may_lead() {
                    said_differs = false;
                    let sent = Instant::now();
                    let tried = tokio::time::timeout(
                        self.lease,
                        session
                            .client
                            .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY]),
                    )
                    .await;
                    match tried {
                        Ok(Ok(row)) if row.get::<_, bool>(0) => break Some(sent),
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "leadership: trying the lock failed; reconnecting");
                            break None;
                        }
                        Err(_) => {
                            tracing::warn!("leadership: trying the lock got no answer; reconnecting");
                            break None;
                        }
                    }
                } else if let Some((id, sha)) = self.cluster.other_leader_sha()
                    && !said_differs
                    && sha != self.cluster.config_sha256()
                {
                    said_differs = true;
                    tracing::warn!(
                        leader = %id,
                        leader_config_sha256 = %sha,
                        config_sha256 = %self.cluster.config_sha256(),
                        "this instance's configuration differs from the leader's: it will not take leadership"
                    );
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    why = &mut session.closed => {
                        tracing::warn!(error = %why.unwrap_or_default(), "leadership: lock session lost; reconnecting");
                        break None;
                    }
                    () = tokio::time::sleep(CHECK_INTERVAL) => {}
                }
            };
            let Some(sent) = acquired else {
                drop(session);
                if pause(&shutdown, CHECK_INTERVAL).await {
                    return;
                }
                continue;
            };
            number += 1;
            let fence = Arc::new(Fence::new(self.lease));
            fence.renew(sent.into_std());
            let term = Arc::new(Term {
                number,
                fence: fence.clone(),
                cancel: shutdown.child_token(),
            });
            let took_over = self.cluster.take_over();
            if let Some(previous) = &took_over {
                self.metrics.failovers.inc();
                tracing::warn!(previous = %previous, "leadership taken over: this instance now drives the access points");
            } else {
                tracing::info!("leadership taken: this instance drives the access points");
            }
            self.metrics.leader.set(1);
            self.terms.send_replace(Some(term.clone()));
            let why = self.hold(&mut session, &fence, &shutdown).await;
            // Step down: nothing more is driven from here on.
            fence.revoke();
            term.cancel.cancel();
            self.cluster.set_leader(false);
            self.metrics.leader.set(0);
            self.terms.send_replace(None);
            // Closing the session releases the lock at once when the
            // server can still hear us; otherwise its idle timeout does.
            drop(session);
            if shutdown.is_cancelled() {
                tracing::info!("leadership released (shutdown)");
                return;
            }
            tracing::warn!(reason = %why, "stepped down: this instance no longer drives access points");
            if pause(&shutdown, CHECK_INTERVAL).await {
                return;
            }
        }
    }

    /// Opens the lock session with what makes PostgreSQL end it, and so
    /// release the lock, when this instance goes silent.
    async fn open(&self) -> Result<Session, String> {
        let session = tokio::time::timeout(Duration::from_secs(5), (self.connect)())
            .await
            .map_err(|_| "no answer within 5 s".to_owned())??;
        let idle_ms = self.idle_timeout.as_millis();
        let setup = format!(
            "SET application_name = 'borne lock {id}'; \
             SET idle_session_timeout = {idle_ms}; \
             SET statement_timeout = {stmt}; \
             SET tcp_keepalives_idle = 1; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3; \
             SET tcp_user_timeout = {idle_ms}",
            id = self.cluster.self_id().replace('\'', ""),
            stmt = self.lease.as_millis(),
        );
        tokio::time::timeout(Duration::from_secs(5), session.client.batch_execute(&setup))
            .await
            .map_err(|_| "no answer to the session settings within 5 s".to_owned())?
            .map_err(|e| format!("setting up the lock session (PostgreSQL 14 or later is needed): {e}"))?;
        Ok(session)
    }

    /// Holds the lock until a check fails, the lease runs out or `shutdown`;
    /// returns why it ended.
    async fn hold(&self, session: &mut Session, fence: &Fence, shutdown: &CancellationToken) -> String {
        let mut next = Instant::now() + CHECK_INTERVAL;
        loop {
            let Some(expiry) = fence.expires_at().map(Instant::from_std) else {
                return "the fence was closed".into();
            };
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return "shutdown".into(),
                () = tokio::time::sleep_until(expiry) => {
                    return format!("the lock was not confirmed within the lease ({} s)", self.lease.as_secs());
                }
                why = &mut session.closed => {
                    return format!("the lock session was lost: {}", why.unwrap_or_default());
                }
                () = tokio::time::sleep_until(next) => {}
            }
            let sent = Instant::now();
            next = sent + CHECK_INTERVAL;
            match tokio::time::timeout_at(expiry, session.client.query_one(CHECK_SQL, &[&LOCK_KEY])).await {
                Ok(Ok(row)) if row.get::<_, bool>(0) => fence.renew(sent.into_std()),
                Ok(Ok(_)) => return "the server no longer shows the lock held by this session".into(),
                Ok(Err(e)) => return format!("checking the lock failed: {e}"),
                Err(_) => {
                    return format!(
                        "checking the lock took longer than the lease ({} s)",
                        self.lease.as_secs()
                    );
                }
            }
        }
    }
}

/// Sleeps `d` unless `shutdown` comes first; returns whether it did.
async fn pause(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}
