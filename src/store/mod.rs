//! The durable state: teacher sessions, IT overrides, the last observed
//! state of each access point, and the audit log.
//!
//! Everything that changes state goes through one [`Batch`] written in one
//! transaction, so a request and its audit entry are stored together or not
//! at all. [`Writer`] funnels batches from every task into one thread that
//! commits whatever has queued up in a single transaction (group commit):
//! each caller still waits for its own batch to be on disk before it
//! acknowledges anything, but a burst of requests costs one fsync, not one
//! each.
//!
//! [`Store`] has two backends: [`sqlite::SqliteStore`], the embedded file
//! (the default), and [`postgres::PostgresStore`], a database several
//! instances share (`database:` in the configuration, issue 17).

pub mod login_sessions;
pub mod postgres;
pub mod sqlite;
pub mod usage;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::config::{ApId, ClassroomId};
use crate::domain::ObservedWifi;
use crate::policy::{Override, PlannedOverride, Session};

/// Why the store failed. Callers refuse the request (HTTP 503): nothing is
/// acknowledged that was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open the state database {path}: {message}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A read or write failed (disk full, read-only, I/O error).
    #[error("state database error: {0}")]
    Io(String),
    /// The writer thread is gone (shutdown).
    #[error("the state database is closed")]
    Closed,
    /// The database server cannot be reached or does not answer (the
    /// PostgreSQL store): nothing was written; try again when it is back.
    #[error("the state database is unreachable: {0}")]
    Unavailable(String),
}

/// The last observed state of an AP, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedRecord {
    /// What was seen.
    pub wifi: ObservedWifi,
    /// Since when it has been seen so.
    pub since: DateTime<Utc>,
    /// Whether the last operation reached it.
    pub reachable: bool,
    /// The last error, until an operation succeeds.
    pub last_error: Option<String>,
    /// Associated clients.
    pub clients: Option<u32>,
    /// Assumed from a command rather than read.
    pub assumed: bool,
    /// Last time the AP answered.
    pub last_contact: Option<DateTime<Utc>>,
}

/// One line of the audit log, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// When.
    pub at: DateTime<Utc>,
    /// The user's name, or `borne` for the daemon's own actions.
    pub actor: String,
    /// The user's role, if a user.
    pub role: Option<String>,
    /// Classroom concerned.
    pub classroom: Option<String>,
    /// Access point concerned.
    pub access_point: Option<String>,
    /// What: `teacher.on`, `teacher.off`, `override.set`, `override.clear`,
    /// `mode.change`, `ap.apply`, `ap.observe`.
    pub action: String,
    /// Details (the request, the new mode...).
    pub detail: String,
    /// `accepted`, `refused: <code>`, `ok`, `error: <message>`.
    pub result: String,
    /// Source address of a request.
    pub source: Option<String>,
    /// How the user signed in: `token` or `oidc`; `None` for the daemon's own lines.
    pub via: Option<String>,
}

/// An audit line read back, with its id (the pagination cursor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Increasing id.
    pub id: i64,
    /// The line.
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// Filter of an audit query; results are newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this classroom.
    pub classroom: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// Only ids below this (the cursor of the previous page).
    pub before_id: Option<i64>,
    /// Only these classrooms (a user's scope); `None`: all.
    pub scope: Option<Vec<String>>,
    /// Only actions starting with one of these (`override.` matches
    /// `override.set` and `override.clear`); empty: any.
    pub actions: Vec<String>,
    /// Only results starting with this (`refused` matches `refused: locked`).
    pub result: Option<String>,
    /// Only this access point.
    pub access_point: Option<String>,
    /// Only a school: its classrooms' rows and the rows of requests scoped
    /// to the school as a whole.
    pub school: Option<SchoolFilter>,
    /// Page size.
    pub limit: usize,
}

/// How the audit row of a request scoped to a whole school starts its
/// `detail`: `scope school <id>, <n> classrooms: ...`.
pub const SCHOOL_SCOPE_PREFIX: &str = "scope school ";

/// `school=` of an audit query, resolved against the configuration.
#[derive(Debug, Clone, Default)]
pub struct SchoolFilter {
    /// The school's id (bulk request rows carry it in `detail`).
    pub id: String,
    /// Its classrooms.
    pub classrooms: Vec<String>,
}

/// Changes written together, atomically.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Session set (`Some`) or removed (`None`).
    pub sessions: Vec<(ClassroomId, Option<Session>)>,
    /// Override set or removed.
    pub overrides: Vec<(ClassroomId, Option<Override>)>,
    /// Planned override (classroom, start) set or removed.
    pub planned: Vec<(ClassroomId, DateTime<Utc>, Option<Override>)>,
    /// Observed state of APs.
    pub observed: Vec<(ApId, ObservedRecord)>,
    /// Audit lines.
    pub audit: Vec<AuditRecord>,
    /// Rows for the usage report (histories, run heartbeat, daily aggregates).
    pub usage: usage::UsageBatch,
    /// Token last uses: hex SHA-256 and when (a later time wins).
    pub token_use: Vec<(String, DateTime<Utc>)>,
    /// A heartbeat: proves the database takes a write (`/readyz`).
    pub heartbeat: Option<DateTime<Utc>>,
}

impl Batch {
    /// A batch of audit lines only.
    pub fn audit(records: Vec<AuditRecord>) -> Self {
        Self {
            audit: records,
            ..Self::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.overrides.is_empty()
            && self.planned.is_empty()
            && self.observed.is_empty()
            && self.audit.is_empty()
            && self.usage.is_empty()
            && self.token_use.is_empty()
            && self.heartbeat.is_none()
    }
}

/// What the store holds, loaded at start.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Teacher sessions by classroom.
    pub sessions: Vec<(ClassroomId, Session)>,
    /// Overrides by classroom.
    pub overrides: Vec<(ClassroomId, Override)>,
    /// Planned overrides by classroom.
    pub planned: Vec<(ClassroomId, PlannedOverride)>,
    /// Observed state by AP.
    pub observed: Vec<(ApId, ObservedRecord)>,
}

/// A durable store. Calls block (disk I/O): call them from a blocking
/// context, as [`Writer`] and the API do.
pub trait Store: Send + Sync + 'static {
    /// Everything needed at start.
    ///
    /// # Errors
    /// The database cannot be read.
    fn load(&self) -> Result<Snapshot, StoreError>;

    /// Writes batches in one transaction, durable when it returns.
    ///
    /// # Errors
    /// Nothing was written.
    fn commit(&self, batches: &[&Batch]) -> Result<(), StoreError>;

    /// When each token (hex SHA-256) was last used.
    ///
    /// # Errors
    /// The database cannot be read.
    fn token_uses(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError>;

    /// Audit lines, newest first.
    ///
    /// # Errors
    /// The database cannot be read.
    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;

    /// Deletes at most `limit` audit lines older than `before`, oldest
    /// first; returns how many.
    ///
    /// # Errors
    /// The database cannot be written.
    fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<usize, StoreError>;

    /// Runs `f` over the usage report's tables.
    ///
    /// # Errors
    /// The database cannot be read.
    fn with_usage(&self, f: &mut dyn FnMut(&dyn usage::UsageSource)) -> Result<(), StoreError>;

    /// Deletes daily aggregates before `day` and history rows before
    /// `history_before` (keeping the state that still holds); returns how many.
    ///
    /// # Errors
    /// The database cannot be written.
    fn prune_usage(&self, day: chrono::NaiveDate, history_before: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Flushes everything to the main database file (at shutdown).
    ///
    /// # Errors
    /// The database cannot be written.
    fn flush(&self) -> Result<(), StoreError>;

    /// The sign-in sessions, in this store's database.
    ///
    /// # Errors
    /// The database cannot be read.
    fn login_sessions(&self) -> Result<login_sessions::LoginSessions, StoreError>;
}

type Ack = oneshot::Sender<Result<(), StoreError>>;

/// Audit lines deleted per transaction when pruning: a few milliseconds of
/// work, so commits queued meanwhile wait no longer than that.
pub const PRUNE_CHUNK: usize = 500;

/// What the writer thread does, in the order asked.
enum Job {
    /// Commit a batch (group-committed with its neighbours).
    Write(Box<Batch>, Option<Ack>),
    /// Delete one chunk of old audit lines.
    Prune {
        before: DateTime<Utc>,
        done: oneshot::Sender<Result<usize, StoreError>>,
    },
}

/// The handle every task writes through; clones share one writer thread,
/// which ends when the last handle is dropped.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Job>,
    store: Arc<dyn Store>,
}

impl Writer {
    /// Starts the writer thread over `store`.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(store: Arc<dyn Store>) -> std::io::Result<Writer> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let thread_store = store.clone();
        std::thread::Builder::new().name("borne-store".into()).spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut pending = Vec::new();
                let mut prune = None;
                match first {
                    Job::Write(b, ack) => pending.push((b, ack)),
                    job @ Job::Prune { .. } => prune = Some(job),
                }
                // Group commit: take whatever queued up while the last
                // transaction was being synced, bounded to keep latency fair.
                while prune.is_none() && pending.len() < 512 {
                    match rx.try_recv() {
                        Ok(Job::Write(b, ack)) => pending.push((b, ack)),
                        Ok(job) => prune = Some(job),
                        Err(_) => break,
                    }
                }
                if !pending.is_empty() {
                    let batches: Vec<&Batch> = pending.iter().map(|(b, _)| &**b).filter(|b| !b.is_empty()).collect();
                    let result = if batches.is_empty() {
                        Ok(())
                    } else {
                        thread_store.commit(&batches)
                    };
                    if let Err(e) = &result {
                        tracing::error!(error = %e, batches = batches.len(), "state database write failed");
                    }
                    for (_, ack) in pending {
                        if let Some(ack) = ack {
                            let _ = ack.send(result.clone());
                        }
                    }
                }
                if let Some(Job::Prune { before, done }) = prune {
                    let _ = done.send(thread_store.prune_audit(before, PRUNE_CHUNK));
                }
            }
        })?;
        Ok(Writer { tx, store })
    }

    /// Writes a batch and waits until it is durable.
    ///
    /// # Errors
    /// The write failed: the caller must not acknowledge what it carried.
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Job::Write(Box::new(batch), Some(ack)))
            .map_err(|_| StoreError::Closed)?;
        done.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a batch without waiting (observed states and their audit
    /// lines: losing the last few at a crash is harmless, the next
    /// observation rewrites them).
    pub fn enqueue(&self, batch: Batch) {
        let _ = self.tx.send(Job::Write(Box::new(batch), None));
    }

    /// Reads audit lines on the blocking pool.
    ///
    /// # Errors
    /// The database cannot be read.
    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.audit(&query))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?
    }

    /// Reads token last uses on the blocking pool.
    ///
    /// # Errors
    /// The database cannot be read.
    pub async fn token_uses(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.token_uses())
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?
    }

    /// Deletes audit lines older than `before`, in chunks of
    /// [`PRUNE_CHUNK`] taken in turn with the other writes, so a large
    /// prune never holds a request's commit back by more than one chunk.
    /// Returns how many were deleted.
    ///
    /// # Errors
    /// The database cannot be written (what was deleted stays deleted).
    pub async fn prune_audit(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let (done, deleted) = oneshot::channel();
            self.tx
                .send(Job::Prune { before, done })
                .map_err(|_| StoreError::Closed)?;
            let n = deleted.await.map_err(|_| StoreError::Closed)??;
            total += n;
            if n < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    /// Runs `f` over the usage report's tables on the blocking pool.
    ///
    /// # Errors
    /// The database cannot be read.
    pub async fn usage<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn usage::UsageSource) -> R + Send + 'static,
    ) -> Result<R, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = Some(f);
            let mut out = None;
            store.with_usage(&mut |r| {
                if let Some(f) = f.take() {
                    out = Some(f(r));
                }
            })?;
            out.ok_or(StoreError::Closed)
        })
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?
    }

    /// Prunes the report's tables on the blocking pool.
    ///
    /// # Errors
    /// The database cannot be written.
    pub async fn prune_usage(
        &self,
        day: chrono::NaiveDate,
        history_before: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.prune_usage(day, history_before))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?
    }

    /// The sign-in sessions (blocking: reads the table).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn login_sessions(&self) -> Result<login_sessions::LoginSessions, StoreError> {
        self.store.login_sessions()
    }

    /// Waits for queued writes, then checkpoints the database.
    ///
    /// # Errors
    /// The final write failed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.commit(Batch::default()).await?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?
    }
}
