//! The PostgreSQL store (issue 17): the same [`Store`] as SQLite, in a
//! database that several borne instances share.
//!
//! - **One transaction per commit**, acknowledged after PostgreSQL's
//!   `COMMIT` returns (with the server's default `synchronous_commit`, after
//!   its WAL flush). A group of batches is merged first (last write of a
//!   classroom or AP wins, as when written one after the other) and
//!   written with one statement per table (`unnest` of arrays), so a
//!   burst of 500 requests costs a dozen round trips, not thousands.
//! - **NOTIFY**: a commit that changes sessions, overrides or observed
//!   states runs `pg_notify('borne_changes', payload)` in the same
//!   transaction: `{"instance", "classrooms": [...], "aps": [...]}`, or
//!   `{"instance", "all": true}` when that would exceed
//!   [`NOTIFY_LIMIT`] bytes. Other instances reload what changed with
//!   [`PostgresStore::load_classrooms`] and [`PostgresStore::load_observed`].
//! - **Connections**: a small pool (deadpool) on the store's own Tokio
//!   runtime, so the blocking [`Store`] calls work from any thread. A
//!   connection the server closed is dropped and a new one opened on the
//!   next call; while none can be opened, every call fails at once with
//!   [`StoreError::Unavailable`] (the API answers 503
//!   `database_unavailable`), after [`CONNECT_TIMEOUT`] at most.
//! - **Schema**: `postgres/schema.rs`, migrated by [`PostgresStore::migrate`].

mod copy;
mod login_sessions;
mod schema;
mod tls;
mod usage;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;

pub use copy::{CopyOutcome, copy_from_sqlite};
pub use schema::{MIGRATIONS, Migrated};

use super::{AuditEntry, AuditQuery, AuditRecord, Batch, ObservedRecord, Snapshot, Store, StoreError};
use crate::config::database::Database;
use crate::config::{ApId, ClassroomId};
use crate::domain::{ObservedWifi, Wifi};
use crate::policy::{Override, PlannedOverride, Session};

/// The channel of change notifications.
pub const NOTIFY_CHANNEL: &str = "borne_changes";

/// Largest payload sent as a list; above it, `{"all": true}` (PostgreSQL
/// refuses payloads of 8,000 bytes and more).
pub const NOTIFY_LIMIT: usize = 7_000;

/// How long opening a connection may take before the database counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one store operation may take (a partitioned server never
/// answers; the request must get its 503, not hang).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// Connections kept open (the writer, readers of audit and report pages,
/// sign-in sessions).
const POOL_SIZE: usize = 8;

/// The PostgreSQL store. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    /// `user@host:port/db`, for messages.
    target: String,
    /// Who this instance is, in notifications.
    instance: String,
    /// The client configuration (with the password), for connections that
    /// must not come from the pool (LISTEN, the leadership lock).
    client_config: tokio_postgres::Config,
    tls: tls::Connector,
    /// The run this process writes heartbeats for.
    current_run: Mutex<Option<DateTime<Utc>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which Tokio forbids inside another
        // runtime (the last clone may be dropped by an async task).
        if let Some(rt) = self.runtime.lock().unwrap_or_else(|e| e.into_inner()).take() {
            rt.shutdown_background();
        }
    }
}

/// A PostgreSQL error as a sentence: the server's message when it sent one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{}: {} ({d})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => e.to_string(),
    }
}

/// Whether an error means the server cannot be used now (as opposed to a
/// statement it refused).
fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                    SqlState::READ_ONLY_SQL_TRANSACTION,
                ]
                .contains(code)
        }
        None => e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

impl Inner {
    fn pg(&self, e: tokio_postgres::Error) -> StoreError {
        if is_unavailable(&e) {
            StoreError::Unavailable(format!("{}: {}", self.target, describe(&e)))
        } else {
            StoreError::Io(describe(&e))
        }
    }

    fn pool_error(&self, e: deadpool_postgres::PoolError) -> StoreError {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => self.pg(e),
            PoolError::Timeout(_) => StoreError::Unavailable(format!(
                "{}: no connection within {} s",
                self.target,
                CONNECT_TIMEOUT.as_secs()
            )),
            PoolError::Closed => StoreError::Closed,
            other => StoreError::Unavailable(format!("{}: {other}", self.target)),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| self.pool_error(e))
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn wifi(s: &str) -> Wifi {
    // Anything but "on" reads as off: the safe default.
    if s == "on" { Wifi::On } else { Wifi::Off }
}

fn observed_wifi(s: &str) -> ObservedWifi {
    match s {
        "on" => ObservedWifi::On,
        "off" => ObservedWifi::Off,
        _ => ObservedWifi::Unknown,
    }
}

/// Reads the password file: its first line, without the line ending.
fn read_password(path: &std::path::Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read password_file {}: {e}", path.display()))?;
    let password = text.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        return Err(format!("password_file {} is empty", path.display()));
    }
    Ok(password)
}

impl PostgresStore {
    /// Connects to the database of `database:` (reading its password file)
    /// and checks that it answers; does not migrate. `instance` names this
    /// process in change notifications.
    ///
    /// # Errors
    /// [`StoreError::Open`]: the password file, the TLS settings, or the
    /// server (unreachable, authentication refused).
    pub fn connect(database: &Database, instance: &str) -> Result<PostgresStore, StoreError> {
        let target = database.display_target();
        let open_err = |message: String| StoreError::Open {
            path: target.clone(),
            message,
        };
        let mut config: tokio_postgres::Config = database.url.parse().map_err(|e| open_err(format!("{e}")))?;
        if let Some(file) = &database.password_file {
            config.password(read_password(file).map_err(open_err)?);
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.keepalives_interval(Duration::from_secs(2));
        config.keepalives_retries(3);
        if config.get_application_name().is_none() {
            config.application_name(format!("borne {instance}"));
        }
        let tls = tls::Connector::new(database).map_err(open_err)?;
        config.ssl_mode(tls.ssl_mode());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("borne-postgres")
            .enable_all()
            .build()
            .map_err(|e| open_err(format!("cannot start the database runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let manager = Manager::from_config(
            config.clone(),
            tls.make(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _guard = handle.enter();
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .create_timeout(Some(CONNECT_TIMEOUT))
                .wait_timeout(Some(OPERATION_TIMEOUT))
                .recycle_timeout(Some(CONNECT_TIMEOUT))
                .build()
                .map_err(|e| open_err(e.to_string()))?
        };
        let store = PostgresStore {
            inner: Arc::new(Inner {
                runtime: Mutex::new(Some(runtime)),
                handle,
                pool,
                target: target.clone(),
                instance: instance.to_owned(),
                client_config: config,
                tls,
                current_run: Mutex::new(None),
            }),
        };
        store
            .run(|inner| async move {
                let c = inner.client().await?;
                c.query_one("SELECT 1", &[]).await.map_err(|e| inner.pg(e))?;
                Ok(())
            })
            .map_err(|e| open_err(e.to_string()))?;
        Ok(store)
    }

    /// [`connect`](Self::connect), then [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// As both.
    pub fn open(database: &Database, instance: &str) -> Result<PostgresStore, StoreError> {
        let store = Self::connect(database, instance)?;
        store.migrate()?;
        Ok(store)
    }

    /// Applies the missing schema migrations, each in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Open`]: a migration failed (nothing of it was kept),
    /// or the database's schema is newer than this borne.
    pub fn migrate(&self) -> Result<Migrated, StoreError> {
        let target = self.inner.target.clone();
        self.run(move |inner| async move {
            let mut c = inner.client().await?;
            let client: &mut tokio_postgres::Client = &mut c;
            schema::migrate(client)
                .await
                .map_err(|message| StoreError::Open { path: target, message })
        })
    }

    /// The schema version of the database (0: none yet).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.run(|inner| async move {
            let c = inner.client().await?;
            schema::version(&**c).await.map_err(|e| inner.pg(e))
        })
    }

    /// `user@host:port/database`.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// This instance's id, as sent in notifications.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The pool (for code that runs on [`handle`](Self::handle)).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The store's runtime, where the pool's connections live.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.inner.handle
    }

    /// Opens a connection outside the pool (for `LISTEN` and the
    /// leadership lock, which need a session of their own), with the same
    /// settings, password and TLS. A task on the caller's runtime drives
    /// it and forwards what the server sends unasked (notifications,
    /// notices) to the receiver, which closes when the connection ends.
    ///
    /// # Errors
    /// The server cannot be reached or refuses.
    pub async fn dedicated_connection(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::AsyncMessage>,
        ),
        StoreError,
    > {
        let (client, mut connection) = self
            .inner
            .client_config
            .connect(self.inner.tls.make())
            .await
            .map_err(|e| self.inner.pg(e))?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = std::pin::pin!(futures_util::stream::poll_fn(move |cx| connection.poll_message(cx)));
            while let Some(m) = futures_util::StreamExt::next(&mut messages).await {
                match m {
                    Ok(m) => {
                        let _ = tx.send(m);
                    }
                    Err(e) => {
                        tracing::debug!(error = %describe(&e), "dedicated database connection ended");
                        break;
                    }
                }
            }
        });
        Ok((client, rx))
    }

    /// Runs `f` on the store's runtime and waits for it, from any thread
    /// (async tasks included: the wait is short and bounded by
    /// [`OPERATION_TIMEOUT`]).
    fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let fut = f(self.inner.clone());
        let target = self.inner.target.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.handle.spawn(async move {
            let out = tokio::time::timeout(OPERATION_TIMEOUT, fut).await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "{target}: no answer within {} s",
                    OPERATION_TIMEOUT.as_secs()
                )))
            });
            let _ = tx.send(out);
        });
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Sessions and overrides of these classrooms (the others are left
    /// empty), for an instance that was notified of their change.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn load_classrooms(&self, ids: &[ClassroomId]) -> Result<Snapshot, StoreError> {
        let ids: Vec<String> = ids.iter().map(|c| c.as_str().to_owned()).collect();
        self.run(move |inner| async move {
            let c = inner.client().await?;
            let sessions = read_sessions(&inner, &c, Some(&ids)).await?;
            let overrides = read_overrides(&inner, &c, Some(&ids)).await?;
            let planned = read_planned(&inner, &c, Some(&ids)).await?;
            Ok(Snapshot {
                sessions,
                overrides,
                planned,
                observed: Vec::new(),
            })
        })
    }

    /// The observed states of these access points.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn load_observed(&self, ids: &[ApId]) -> Result<Vec<(ApId, ObservedRecord)>, StoreError> {
        let ids: Vec<String> = ids.iter().map(|c| c.as_str().to_owned()).collect();
        self.run(move |inner| async move {
            let c = inner.client().await?;
            read_observed(&inner, &c, Some(&ids)).await
        })
    }
}

async fn read_sessions(
    inner: &Inner,
    c: &deadpool_postgres::Object,
    ids: Option<&Vec<String>>,
) -> Result<Vec<(ClassroomId, Session)>, StoreError> {
    let rows = c
        .query(
            "SELECT classroom, wifi, started, until, by FROM sessions WHERE $1::text[] IS NULL OR classroom = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(|e| inner.pg(e))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                ClassroomId::from(r.get::<_, &str>(0)),
                Session {
                    wifi: wifi(r.get(1)),
                    started: time(r.get(2)),
                    until: time(r.get(3)),
                    by: r.get(4),
                },
            )
        })
        .collect())
}

/// The override in columns `wifi, until, reason, by, set_at` from `first`.
fn override_at(r: &tokio_postgres::Row, first: usize) -> Override {
    Override {
        wifi: wifi(r.get(first)),
        until: r.get::<_, Option<i64>>(first + 1).map(time),
        reason: r.get(first + 2),
        by: r.get(first + 3),
        set_at: time(r.get(first + 4)),
    }
}

async fn read_planned(
    inner: &Inner,
    c: &deadpool_postgres::Object,
    ids: Option<&Vec<String>>,
) -> Result<Vec<(ClassroomId, PlannedOverride)>, StoreError> {
    let rows = c
        .query(
            "SELECT classroom, starts, wifi, until, reason, by, set_at FROM planned_overrides
             WHERE $1::text[] IS NULL OR classroom = ANY($1) ORDER BY starts",
            &[&ids],
        )
        .await
        .map_err(|e| inner.pg(e))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                ClassroomId::from(r.get::<_, &str>(0)),
                PlannedOverride {
                    from: time(r.get(1)),
                    override_: override_at(r, 2),
                },
            )
        })
        .collect())
}

async fn read_overrides(
    inner: &Inner,
    c: &deadpool_postgres::Object,
    ids: Option<&Vec<String>>,
) -> Result<Vec<(ClassroomId, Override)>, StoreError> {
    let rows = c
        .query(
            "SELECT classroom, wifi, until, reason, by, set_at FROM overrides WHERE $1::text[] IS NULL OR classroom = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(|e| inner.pg(e))?;
    Ok(rows
        .iter()
        .map(|r| (ClassroomId::from(r.get::<_, &str>(0)), override_at(r, 1)))
        .collect())
}

async fn read_observed(
    inner: &Inner,
    c: &deadpool_postgres::Object,
    ids: Option<&Vec<String>>,
) -> Result<Vec<(ApId, ObservedRecord)>, StoreError> {
    let rows = c
        .query(
            "SELECT ap, wifi, since, reachable, last_error, clients, assumed, last_contact FROM observed
             WHERE $1::text[] IS NULL OR ap = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(|e| inner.pg(e))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                ApId::from(r.get::<_, &str>(0)),
                ObservedRecord {
                    wifi: observed_wifi(r.get(1)),
                    since: time(r.get(2)),
                    reachable: r.get(3),
                    last_error: r.get(4),
                    clients: r.get::<_, Option<i64>>(5).and_then(|n| u32::try_from(n).ok()),
                    assumed: r.get(6),
                    last_contact: r.get::<_, Option<i64>>(7).map(time),
                },
            )
        })
        .collect())
}

/// Batches merged into the final effect of writing them in order.
#[derive(Default)]
struct Merged {
    sessions: BTreeMap<String, Option<Session>>,
    overrides: BTreeMap<String, Option<Override>>,
    /// Planned overrides set or removed, in the order written.
    planned: Vec<(String, i64, Option<Override>)>,
    observed: BTreeMap<String, ObservedRecord>,
    audit: Vec<AuditRecord>,
    token_use: BTreeMap<String, i64>,
    heartbeat: Option<i64>,
    ap_history: Vec<(String, i64, &'static str)>,
    desired_history: Vec<(String, i64, &'static str, &'static str, &'static str)>,
    runs: BTreeMap<i64, i64>,
    days: BTreeMap<(String, String), crate::report::DayFigures>,
}

impl Merged {
    fn of(batches: &[&Batch]) -> Merged {
        let mut m = Merged::default();
        for b in batches {
            for (c, s) in &b.sessions {
                m.sessions.insert(c.as_str().to_owned(), s.clone());
            }
            for (c, o) in &b.overrides {
                m.overrides.insert(c.as_str().to_owned(), o.clone());
            }
            for (c, from, o) in &b.planned {
                m.planned.push((c.as_str().to_owned(), ms(*from), o.clone()));
            }
            for (a, o) in &b.observed {
                m.observed.insert(a.as_str().to_owned(), o.clone());
            }
            m.audit.extend(b.audit.iter().cloned());
            for (hash, at) in &b.token_use {
                let e = m.token_use.entry(hash.clone()).or_insert(i64::MIN);
                *e = (*e).max(ms(*at));
            }
            if let Some(at) = b.heartbeat {
                m.heartbeat = Some(ms(at));
            }
            for (ap, at, state) in &b.usage.ap_history {
                m.ap_history.push((ap.clone(), ms(*at), state.as_str()));
            }
            for (cl, at, d) in &b.usage.desired_history {
                m.desired_history
                    .push((cl.clone(), ms(*at), d.mode.as_str(), d.wifi.as_str(), d.reason.as_str()));
            }
            if let Some((started, alive)) = b.usage.run {
                let e = m.runs.entry(ms(started)).or_insert(i64::MIN);
                *e = (*e).max(ms(alive));
            }
            for (day, cl, f) in &b.usage.days {
                m.days.insert((day.to_string(), cl.clone()), f.clone());
            }
        }
        m
    }

    /// The change notification, if sessions, overrides or observed states changed.
    fn notification(&self, instance: &str) -> Option<String> {
        let mut classrooms: Vec<&str> = self
            .sessions
            .keys()
            .chain(self.overrides.keys())
            .chain(self.planned.iter().map(|p| &p.0))
            .map(String::as_str)
            .collect();
        classrooms.sort_unstable();
        classrooms.dedup();
        if classrooms.is_empty() && self.observed.is_empty() {
            return None;
        }
        let aps: Vec<&str> = self.observed.keys().map(String::as_str).collect();
        let full = serde_json::json!({"instance": instance, "classrooms": classrooms, "aps": aps}).to_string();
        if full.len() <= NOTIFY_LIMIT {
            Some(full)
        } else {
            Some(serde_json::json!({"instance": instance, "all": true}).to_string())
        }
    }
}

async fn write_merged(inner: &Inner, tx: &deadpool_postgres::Transaction<'_>, m: &Merged) -> Result<(), StoreError> {
    let pg = |e| inner.pg(e);
    macro_rules! exec {
        ($sql:expr, $($p:expr),+ $(,)?) => {
            tx.execute($sql, &[$(&$p as &(dyn ToSql + Sync)),+]).await.map_err(pg)?
        };
    }
    let (set, del): (Vec<_>, Vec<_>) = m.sessions.iter().partition(|(_, s)| s.is_some());
    if !del.is_empty() {
        let ids: Vec<&str> = del.iter().map(|(c, _)| c.as_str()).collect();
        exec!("DELETE FROM sessions WHERE classroom = ANY($1)", ids);
    }
    if !set.is_empty() {
        let s: Vec<(&str, &Session)> = set
            .iter()
            .filter_map(|(c, s)| Some((c.as_str(), s.as_ref()?)))
            .collect();
        let ids: Vec<&str> = s.iter().map(|x| x.0).collect();
        let wifi: Vec<&str> = s.iter().map(|x| x.1.wifi.as_str()).collect();
        let started: Vec<i64> = s.iter().map(|x| ms(x.1.started)).collect();
        let until: Vec<i64> = s.iter().map(|x| ms(x.1.until)).collect();
        let by: Vec<&str> = s.iter().map(|x| x.1.by.as_str()).collect();
        exec!(
            "INSERT INTO sessions (classroom, wifi, started, until, by)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[])
             ON CONFLICT (classroom) DO UPDATE SET wifi = excluded.wifi, started = excluded.started,
                until = excluded.until, by = excluded.by",
            ids,
            wifi,
            started,
            until,
            by
        );
    }
    let (set, del): (Vec<_>, Vec<_>) = m.overrides.iter().partition(|(_, o)| o.is_some());
    if !del.is_empty() {
        let ids: Vec<&str> = del.iter().map(|(c, _)| c.as_str()).collect();
        exec!("DELETE FROM overrides WHERE classroom = ANY($1)", ids);
    }
    if !set.is_empty() {
        let o: Vec<(&str, &Override)> = set
            .iter()
            .filter_map(|(c, o)| Some((c.as_str(), o.as_ref()?)))
            .collect();
        let ids: Vec<&str> = o.iter().map(|x| x.0).collect();
        let wifi: Vec<&str> = o.iter().map(|x| x.1.wifi.as_str()).collect();
        let until: Vec<Option<i64>> = o.iter().map(|x| x.1.until.map(ms)).collect();
        let reason: Vec<&str> = o.iter().map(|x| x.1.reason.as_str()).collect();
        let by: Vec<&str> = o.iter().map(|x| x.1.by.as_str()).collect();
        let set_at: Vec<i64> = o.iter().map(|x| ms(x.1.set_at)).collect();
        exec!(
            "INSERT INTO overrides (classroom, wifi, until, reason, by, set_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::int8[])
             ON CONFLICT (classroom) DO UPDATE SET wifi = excluded.wifi, until = excluded.until,
                reason = excluded.reason, by = excluded.by, set_at = excluded.set_at",
            ids,
            wifi,
            until,
            reason,
            by,
            set_at
        );
    }
    // Rare (an IT decision each): one statement per row, in order.
    for (classroom, starts, o) in &m.planned {
        match o {
            Some(o) => {
                let until = o.until.map(ms);
                let set_at = ms(o.set_at);
                exec!(
                    "INSERT INTO planned_overrides (classroom, starts, wifi, until, reason, by, set_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (classroom, starts) DO UPDATE SET wifi = excluded.wifi, until = excluded.until,
                        reason = excluded.reason, by = excluded.by, set_at = excluded.set_at",
                    classroom.as_str(),
                    *starts,
                    o.wifi.as_str(),
                    until,
                    o.reason.as_str(),
                    o.by.as_str(),
                    set_at
                );
            }
            None => {
                exec!(
                    "DELETE FROM planned_overrides WHERE classroom = $1 AND starts = $2",
                    classroom.as_str(),
                    *starts
                );
            }
        }
    }
    if !m.observed.is_empty() {
        let o: Vec<(&String, &ObservedRecord)> = m.observed.iter().collect();
        let ids: Vec<&str> = o.iter().map(|x| x.0.as_str()).collect();
        let wifi: Vec<&str> = o.iter().map(|x| x.1.wifi.as_str()).collect();
        let since: Vec<i64> = o.iter().map(|x| ms(x.1.since)).collect();
        let reachable: Vec<bool> = o.iter().map(|x| x.1.reachable).collect();
        let last_error: Vec<Option<&str>> = o.iter().map(|x| x.1.last_error.as_deref()).collect();
        let clients: Vec<Option<i64>> = o.iter().map(|x| x.1.clients.map(i64::from)).collect();
        let assumed: Vec<bool> = o.iter().map(|x| x.1.assumed).collect();
        let last_contact: Vec<Option<i64>> = o.iter().map(|x| x.1.last_contact.map(ms)).collect();
        exec!(
            "INSERT INTO observed (ap, wifi, since, reachable, last_error, clients, assumed, last_contact)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::bool[], $5::text[], $6::int8[],
                $7::bool[], $8::int8[])
             ON CONFLICT (ap) DO UPDATE SET wifi = excluded.wifi, since = excluded.since,
                reachable = excluded.reachable, last_error = excluded.last_error, clients = excluded.clients,
                assumed = excluded.assumed, last_contact = excluded.last_contact",
            ids,
            wifi,
            since,
            reachable,
            last_error,
            clients,
            assumed,
            last_contact
        );
    }
    if !m.token_use.is_empty() {
        let hashes: Vec<&str> = m.token_use.keys().map(String::as_str).collect();
        let at: Vec<i64> = m.token_use.values().copied().collect();
        exec!(
            "INSERT INTO token_use (token_sha256, last_used) SELECT * FROM unnest($1::text[], $2::int8[])
             ON CONFLICT (token_sha256) DO UPDATE SET last_used = greatest(token_use.last_used, excluded.last_used)",
            hashes,
            at
        );
    }
    if !m.audit.is_empty() {
        let a = &m.audit;
        let at: Vec<i64> = a.iter().map(|r| ms(r.at)).collect();
        let actor: Vec<&str> = a.iter().map(|r| r.actor.as_str()).collect();
        let role: Vec<Option<&str>> = a.iter().map(|r| r.role.as_deref()).collect();
        let classroom: Vec<Option<&str>> = a.iter().map(|r| r.classroom.as_deref()).collect();
        let ap: Vec<Option<&str>> = a.iter().map(|r| r.access_point.as_deref()).collect();
        let action: Vec<&str> = a.iter().map(|r| r.action.as_str()).collect();
        let detail: Vec<&str> = a.iter().map(|r| r.detail.as_str()).collect();
        let result: Vec<&str> = a.iter().map(|r| r.result.as_str()).collect();
        let source: Vec<Option<&str>> = a.iter().map(|r| r.source.as_deref()).collect();
        let via: Vec<Option<&str>> = a.iter().map(|r| r.via.as_deref()).collect();
        // ORDER BY the position: ids follow the order the lines were written.
        exec!(
            "INSERT INTO audit (at, actor, role, classroom, ap, action, detail, result, source, via)
             SELECT at, actor, role, classroom, ap, action, detail, result, source, via
             FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::text[], $9::text[], $10::text[])
                WITH ORDINALITY AS t(at, actor, role, classroom, ap, action, detail, result, source, via, n)
             ORDER BY n",
            at,
            actor,
            role,
            classroom,
            ap,
            action,
            detail,
            result,
            source,
            via
        );
    }
    if !m.ap_history.is_empty() {
        let ap: Vec<&str> = m.ap_history.iter().map(|x| x.0.as_str()).collect();
        let at: Vec<i64> = m.ap_history.iter().map(|x| x.1).collect();
        let state: Vec<&str> = m.ap_history.iter().map(|x| x.2).collect();
        exec!(
            "INSERT INTO ap_history (ap, at, state)
             SELECT ap, at, state FROM unnest($1::text[], $2::int8[], $3::text[]) WITH ORDINALITY AS t(ap, at, state, n)
             ORDER BY n",
            ap,
            at,
            state
        );
    }
    if !m.desired_history.is_empty() {
        let d = &m.desired_history;
        let cl: Vec<&str> = d.iter().map(|x| x.0.as_str()).collect();
        let at: Vec<i64> = d.iter().map(|x| x.1).collect();
        let mode: Vec<&str> = d.iter().map(|x| x.2).collect();
        let wifi: Vec<&str> = d.iter().map(|x| x.3).collect();
        let reason: Vec<&str> = d.iter().map(|x| x.4).collect();
        exec!(
            "INSERT INTO desired_history (classroom, at, mode, wifi, reason)
             SELECT classroom, at, mode, wifi, reason
             FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[])
                WITH ORDINALITY AS t(classroom, at, mode, wifi, reason, n)
             ORDER BY n",
            cl,
            at,
            mode,
            wifi,
            reason
        );
    }
    if !m.runs.is_empty() {
        let started: Vec<i64> = m.runs.keys().copied().collect();
        let alive: Vec<i64> = m.runs.values().copied().collect();
        exec!(
            "INSERT INTO runs (started, alive) SELECT * FROM unnest($1::int8[], $2::int8[])
             ON CONFLICT (started) DO UPDATE SET alive = greatest(runs.alive, excluded.alive)",
            started,
            alive
        );
    }
    if !m.days.is_empty() {
        let d: Vec<(&(String, String), &crate::report::DayFigures)> = m.days.iter().collect();
        let day: Vec<&str> = d.iter().map(|x| x.0.0.as_str()).collect();
        let cl: Vec<&str> = d.iter().map(|x| x.0.1.as_str()).collect();
        let on: Vec<i64> = d.iter().map(|x| x.1.on).collect();
        let unknown: Vec<i64> = d.iter().map(|x| x.1.unknown).collect();
        let teacher: Vec<i64> = d.iter().map(|x| x.1.on_teacher).collect();
        let schedule: Vec<i64> = d.iter().map(|x| x.1.on_schedule).collect();
        let over: Vec<i64> = d.iter().map(|x| x.1.on_override).collect();
        let outside: Vec<i64> = d.iter().map(|x| x.1.on_outside).collect();
        let sessions: Vec<String> = d
            .iter()
            .map(|x| x.1.sessions.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
            .collect();
        let ended_by: Vec<String> = d.iter().map(|x| x.1.ended_by.to_text()).collect();
        let overrides: Vec<i64> = d.iter().map(|x| i64::from(x.1.overrides)).collect();
        let overridden: Vec<i64> = d.iter().map(|x| x.1.override_seconds).collect();
        let refused: Vec<String> = d.iter().map(|x| x.1.refused.to_text()).collect();
        exec!(
            "INSERT INTO report_days (day, classroom, on_s, unknown_s, teacher_s, schedule_s, override_s,
                outside_s, sessions, ended_by, overrides, overridden_s, refused)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
                $7::int8[], $8::int8[], $9::text[], $10::text[], $11::int8[], $12::int8[], $13::text[])
             ON CONFLICT (day, classroom) DO UPDATE SET on_s = excluded.on_s, unknown_s = excluded.unknown_s,
                teacher_s = excluded.teacher_s, schedule_s = excluded.schedule_s, override_s = excluded.override_s,
                outside_s = excluded.outside_s, sessions = excluded.sessions, ended_by = excluded.ended_by,
                overrides = excluded.overrides, overridden_s = excluded.overridden_s, refused = excluded.refused",
            day,
            cl,
            on,
            unknown,
            teacher,
            schedule,
            over,
            outside,
            sessions,
            ended_by,
            overrides,
            overridden,
            refused
        );
    }
    if let Some(at) = m.heartbeat {
        exec!(
            "INSERT INTO heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
            at
        );
    }
    if let Some(payload) = m.notification(&inner.instance) {
        exec!("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload);
    }
    Ok(())
}

impl Store for PostgresStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.run(|inner| async move {
            let c = inner.client().await?;
            Ok(Snapshot {
                sessions: read_sessions(&inner, &c, None).await?,
                overrides: read_overrides(&inner, &c, None).await?,
                planned: read_planned(&inner, &c, None).await?,
                observed: read_observed(&inner, &c, None).await?,
            })
        })
    }

    fn commit(&self, batches: &[&Batch]) -> Result<(), StoreError> {
        let merged = Merged::of(batches);
        let run = batches.iter().rev().find_map(|b| b.usage.run.map(|r| r.0));
        self.run(move |inner| async move {
            let mut c = inner.client().await?;
            let tx = c.transaction().await.map_err(|e| inner.pg(e))?;
            write_merged(&inner, &tx, &merged).await?;
            tx.commit().await.map_err(|e| inner.pg(e))?;
            if let Some(started) = run {
                *inner.current_run.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
            }
            Ok(())
        })
    }

    fn token_uses(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.run(|inner| async move {
            let c = inner.client().await?;
            let rows = c
                .query("SELECT token_sha256, last_used FROM token_use", &[])
                .await
                .map_err(|e| inner.pg(e))?;
            Ok(rows.iter().map(|r| (r.get(0), time(r.get(1)))).collect())
        })
    }

    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let query = query.clone();
        self.run(move |inner| async move {
            let mut sql = String::from(
                "SELECT id, at, actor, role, classroom, ap, action, detail, result, source, via FROM audit WHERE true",
            );
            let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
            let mut arg = |sql: &mut String, clause: &str, v: Box<dyn ToSql + Sync + Send>| {
                args.push(v);
                sql.push_str(&clause.replace('?', &format!("${}", args.len())));
            };
            if let Some(cl) = query.classroom {
                arg(&mut sql, " AND classroom = ?", Box::new(cl));
            }
            if let Some(a) = query.actor {
                arg(&mut sql, " AND actor = ?", Box::new(a));
            }
            if let Some(s) = query.since {
                arg(&mut sql, " AND at >= ?", Box::new(ms(s)));
            }
            if let Some(u) = query.until {
                arg(&mut sql, " AND at < ?", Box::new(ms(u)));
            }
            if let Some(b) = query.before_id {
                arg(&mut sql, " AND id < ?", Box::new(b));
            }
            if let Some(scope) = query.scope {
                arg(&mut sql, " AND classroom = ANY(?::text[])", Box::new(scope));
            }
            if !query.actions.is_empty() {
                // Prefix match without LIKE, so `_` and `%` in a filter are literal.
                arg(
                    &mut sql,
                    " AND EXISTS (SELECT 1 FROM unnest(?::text[]) p WHERE starts_with(action, p))",
                    Box::new(query.actions),
                );
            }
            if let Some(r) = query.result {
                arg(&mut sql, " AND starts_with(result, ?::text)", Box::new(r));
            }
            if let Some(ap) = query.access_point {
                arg(&mut sql, " AND ap = ?", Box::new(ap));
            }
            if let Some(school) = query.school {
                arg(
                    &mut sql,
                    " AND (classroom = ANY(?::text[])",
                    Box::new(school.classrooms),
                );
                arg(
                    &mut sql,
                    " OR (classroom IS NULL AND starts_with(detail, ?::text)))",
                    Box::new(format!("{}{},", super::SCHOOL_SCOPE_PREFIX, school.id)),
                );
            }
            sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", query.limit.clamp(1, 100_000)));
            let c = inner.client().await?;
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
            let rows = c.query(&sql, &params).await.map_err(|e| inner.pg(e))?;
            Ok(rows
                .iter()
                .map(|r| AuditEntry {
                    id: r.get(0),
                    record: AuditRecord {
                        at: time(r.get(1)),
                        actor: r.get(2),
                        role: r.get(3),
                        classroom: r.get(4),
                        access_point: r.get(5),
                        action: r.get(6),
                        detail: r.get(7),
                        result: r.get(8),
                        source: r.get(9),
                        via: r.get(10),
                    },
                })
                .collect())
        })
    }

    fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |inner| async move {
            let c = inner.client().await?;
            let n = c
                .execute(
                    "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 ORDER BY at LIMIT $2)",
                    &[&ms(before), &limit],
                )
                .await
                .map_err(|e| inner.pg(e))?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn with_usage(&self, f: &mut dyn FnMut(&dyn super::usage::UsageSource)) -> Result<(), StoreError> {
        let current_run = *self.inner.current_run.lock().unwrap_or_else(|e| e.into_inner());
        f(&usage::PgUsage {
            store: self,
            current_run,
        });
        Ok(())
    }

    fn prune_usage(&self, day: chrono::NaiveDate, history_before: DateTime<Utc>) -> Result<usize, StoreError> {
        self.run(move |inner| async move {
            let mut c = inner.client().await?;
            let tx = c.transaction().await.map_err(|e| inner.pg(e))?;
            let before = ms(history_before);
            let mut n = tx
                .execute("DELETE FROM report_days WHERE day < $1", &[&day.to_string()])
                .await
                .map_err(|e| inner.pg(e))?;
            n += tx
                .execute(
                    "DELETE FROM ap_history WHERE at < $1 AND id NOT IN
                        (SELECT max(id) FROM ap_history WHERE at < $1 GROUP BY ap)",
                    &[&before],
                )
                .await
                .map_err(|e| inner.pg(e))?;
            n += tx
                .execute(
                    "DELETE FROM desired_history WHERE at < $1 AND id NOT IN
                        (SELECT max(id) FROM desired_history WHERE at < $1 GROUP BY classroom)",
                    &[&before],
                )
                .await
                .map_err(|e| inner.pg(e))?;
            n += tx
                .execute(
                    "DELETE FROM runs WHERE alive < $1 AND started <> (SELECT max(started) FROM runs)",
                    &[&before],
                )
                .await
                .map_err(|e| inner.pg(e))?;
            tx.commit().await.map_err(|e| inner.pg(e))?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn login_sessions(&self) -> Result<super::login_sessions::LoginSessions, StoreError> {
        super::login_sessions::LoginSessions::postgres(self.clone())
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every commit is durable when it returns; nothing is buffered here.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(by: &str) -> Session {
        Session {
            wifi: Wifi::On,
            started: Utc.timestamp_millis_opt(1_000).unwrap(),
            until: Utc.timestamp_millis_opt(2_000).unwrap(),
            by: by.into(),
        }
    }

    #[test]
    fn merged_batches_keep_the_last_write_of_each_classroom() {
        let c1 = ClassroomId::from("c1");
        let a = Batch {
            sessions: vec![(c1.clone(), Some(session("a")))],
            ..Batch::default()
        };
        let b = Batch {
            sessions: vec![(c1.clone(), None)],
            ..Batch::default()
        };
        let m = Merged::of(&[&a, &b]);
        assert_eq!(m.sessions.get("c1"), Some(&None));
        let m = Merged::of(&[&b, &a]);
        assert_eq!(m.sessions.get("c1").cloned().flatten().map(|s| s.by), Some("a".into()));
    }

    #[test]
    fn the_notification_lists_what_changed_or_says_all() {
        let mut m = Merged::default();
        assert_eq!(m.notification("i1"), None, "audit-only commits notify nothing");
        m.sessions.insert("c1".into(), None);
        m.overrides.insert("c1".into(), None);
        m.overrides.insert("c2".into(), None);
        let v: serde_json::Value = serde_json::from_str(&m.notification("i1").unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"instance": "i1", "classrooms": ["c1", "c2"], "aps": []})
        );
        for i in 0..2_000 {
            m.sessions.insert(format!("classroom-{i}"), None);
        }
        let v: serde_json::Value = serde_json::from_str(&m.notification("i1").unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"instance": "i1", "all": true}));
    }

    #[test]
    fn the_password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(read_password(&f).unwrap(), "s3cret");
        std::fs::write(&f, "\n").unwrap();
        assert!(read_password(&f).unwrap_err().contains("is empty"));
        let missing = read_password(&dir.path().join("nope")).unwrap_err();
        assert!(missing.contains("cannot read password_file"), "{missing}");
    }
}
