//! The SQLite store: `state_dir/borne.db`, WAL, `synchronous=FULL`, schema
//! versioned with `PRAGMA user_version` and migrated at start.
//!
//! Two connections: one that writes (used by the writer thread only) and one
//! that reads the audit log, so an IT person paging through a year of audit
//! never holds up a teacher's request (WAL lets them run side by side).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{AuditEntry, AuditQuery, AuditRecord, Batch, ObservedRecord, Snapshot, Store, StoreError};
use crate::config::{ApId, ClassroomId};
use crate::domain::{ObservedWifi, Wifi};
use crate::policy::{Override, PlannedOverride, Session};

/// Each entry moves the schema one version up; never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "CREATE TABLE sessions (
        classroom TEXT PRIMARY KEY,
        wifi TEXT NOT NULL,
        started INTEGER NOT NULL,
        until INTEGER NOT NULL,
        by TEXT NOT NULL
     );
     CREATE TABLE overrides (
        classroom TEXT PRIMARY KEY,
        wifi TEXT NOT NULL,
        until INTEGER,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        set_at INTEGER NOT NULL
     );
     CREATE TABLE observed (
        ap TEXT PRIMARY KEY,
        wifi TEXT NOT NULL,
        since INTEGER NOT NULL,
        reachable INTEGER NOT NULL,
        last_error TEXT,
        clients INTEGER,
        assumed INTEGER NOT NULL,
        last_contact INTEGER
     );
     CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        role TEXT,
        classroom TEXT,
        ap TEXT,
        action TEXT NOT NULL,
        detail TEXT NOT NULL,
        result TEXT NOT NULL,
        source TEXT
     );
     CREATE INDEX audit_at ON audit(at);
     CREATE INDEX audit_classroom ON audit(classroom, id);
     CREATE INDEX audit_actor ON audit(actor, id);",
    // 2: usage report (observation and desired-state histories, runs, daily aggregates).
    super::usage::MIGRATION,
    // 3: when each token was last used (issue 15), keyed by its SHA-256 so
    // that a new token for the same name starts with no history.
    "CREATE TABLE token_use (
        token_sha256 TEXT PRIMARY KEY,
        last_used INTEGER NOT NULL
     );",
    // 4: sign-in sessions with the identity provider (issue 18; see
    // store/login_sessions.rs) and how each audited request was authenticated.
    "CREATE TABLE login_sessions (
        id_sha256 BLOB PRIMARY KEY,
        login TEXT NOT NULL,
        groups TEXT NOT NULL,
        user TEXT NOT NULL,
        csrf TEXT NOT NULL,
        id_token TEXT,
        created INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
     );
     ALTER TABLE audit ADD COLUMN via TEXT;",
    // 5: one row that `/readyz` rewrites to prove the database takes writes.
    "CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);",
    // 6: overrides planned ahead (issue 16), several per classroom, keyed
    // by their start.
    "CREATE TABLE planned_overrides (
        classroom TEXT NOT NULL,
        starts INTEGER NOT NULL,
        wifi TEXT NOT NULL,
        until INTEGER,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        set_at INTEGER NOT NULL,
        PRIMARY KEY (classroom, starts)
     );",
];

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    write: Mutex<Connection>,
    read: Mutex<Connection>,
    /// The run this process writes heartbeats for (see [`super::usage`]).
    current_run: Mutex<Option<DateTime<Utc>>>,
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn time(ms: i64) -> DateTime<Utc> {
    // Only values this file wrote are read back; out-of-range ones (a
    // hand-edited database) read as the epoch rather than failing the load.
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

fn io(e: rusqlite::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) `state_dir/borne.db` and migrates it.
    ///
    /// # Errors
    /// [`StoreError::Open`] naming the file: unreadable, corrupt, or from a
    /// newer borne. A bad database is never reset silently.
    pub fn open(state_dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = state_dir.join("borne.db");
        let open_err = |message: String| StoreError::Open {
            path: path.display().to_string(),
            message,
        };
        std::fs::create_dir_all(state_dir)
            .map_err(|e| open_err(format!("cannot create {}: {e}", state_dir.display())))?;
        let write = Connection::open(&path).map_err(|e| open_err(e.to_string()))?;
        Self::configure(&write).map_err(|e| open_err(e.to_string()))?;
        // A corrupt file often opens fine and fails on first real read:
        // check it now, while a clear error can still stop the start.
        let check: String = write
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| open_err(format!("{e} (is it a borne database?)")))?;
        if check != "ok" {
            return Err(open_err(format!(
                "integrity check failed: {check}; restore it from a backup"
            )));
        }
        Self::migrate(&write).map_err(open_err)?;
        // A file system found read-only must stop the start here, naming
        // the file, not at the first request. Taking the write lock is not
        // enough (WAL locks live in the -shm file, which a read-only mount
        // still maps): write a page for real, in a transaction that leaves
        // nothing behind.
        write
            .execute_batch("BEGIN IMMEDIATE; CREATE TABLE write_probe (x); DROP TABLE write_probe; COMMIT;")
            .map_err(|e| {
                let _ = write.execute_batch("ROLLBACK");
                open_err(format!("{e} (is the state directory writable?)"))
            })?;
        let read = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_err(e.to_string()))?;
        read.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| open_err(e.to_string()))?;
        Ok(SqliteStore {
            path,
            write: Mutex::new(write),
            read: Mutex::new(read),
            current_run: Mutex::new(None),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(c: &Connection) -> rusqlite::Result<()> {
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if mode != "wal" {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "journal_mode is {mode}, not wal"
            )));
        }
        // FULL: a committed transaction survives a power cut, which is the
        // promise behind every HTTP 2xx.
        c.pragma_update(None, "synchronous", "FULL")?;
        c.pragma_update(None, "foreign_keys", "ON")?;
        Ok(())
    }

    fn migrate(c: &Connection) -> Result<(), String> {
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        let latest = MIGRATIONS.len() as i64;
        if version > latest {
            return Err(format!(
                "schema version {version} is newer than this borne knows ({latest}); run the newer borne or restore a backup"
            ));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let next = i as i64 + 1;
            c.execute_batch(&format!(
                "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {next}; COMMIT;"
            ))
            .map_err(|e| {
                let _ = c.execute_batch("ROLLBACK");
                format!("migration to schema version {next} failed: {e}")
            })?;
        }
        Ok(())
    }

    fn lock(m: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
        // A panic inside a transaction leaves SQLite to roll it back; the
        // connection itself stays usable.
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn read_token_uses(c: &Connection) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    let mut q = c.prepare("SELECT token_sha256, last_used FROM token_use").map_err(io)?;
    let rows = q
        .query_map([], |r| Ok((r.get::<_, String>(0)?, time(r.get(1)?))))
        .map_err(io)?;
    rows.collect::<Result<_, _>>().map_err(io)
}

/// Last use of each token (hex SHA-256) read from `state_dir/borne.db`
/// without writing to it, for `borne token list` while the daemon runs.
/// No database yet, or one from before token use was recorded: no use.
///
/// # Errors
/// The database exists but cannot be read.
pub fn token_uses_offline(state_dir: &Path) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    let path = state_dir.join("borne.db");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let c = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_err)?;
    let has_table: bool = c
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'token_use'",
            [],
            |r| r.get(0),
        )
        .map_err(open_err)?;
    if !has_table {
        return Ok(Vec::new());
    }
    read_token_uses(&c)
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let c = Self::lock(&self.write);
        let mut snapshot = Snapshot::default();
        let mut q = c
            .prepare("SELECT classroom, wifi, started, until, by FROM sessions")
            .map_err(io)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    ClassroomId::from(r.get::<_, String>(0)?.as_str()),
                    Session {
                        wifi: wifi(&r.get::<_, String>(1)?),
                        started: time(r.get(2)?),
                        until: time(r.get(3)?),
                        by: r.get(4)?,
                    },
                ))
            })
            .map_err(io)?;
        snapshot.sessions = rows.collect::<Result<_, _>>().map_err(io)?;
        let mut q = c
            .prepare("SELECT classroom, wifi, until, reason, by, set_at FROM overrides")
            .map_err(io)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    ClassroomId::from(r.get::<_, String>(0)?.as_str()),
                    Override {
                        wifi: wifi(&r.get::<_, String>(1)?),
                        until: r.get::<_, Option<i64>>(2)?.map(time),
                        reason: r.get(3)?,
                        by: r.get(4)?,
                        set_at: time(r.get(5)?),
                    },
                ))
            })
            .map_err(io)?;
        snapshot.overrides = rows.collect::<Result<_, _>>().map_err(io)?;
        let mut q = c
            .prepare("SELECT classroom, starts, wifi, until, reason, by, set_at FROM planned_overrides ORDER BY starts")
            .map_err(io)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    ClassroomId::from(r.get::<_, String>(0)?.as_str()),
                    PlannedOverride {
                        from: time(r.get(1)?),
                        override_: Override {
                            wifi: wifi(&r.get::<_, String>(2)?),
                            until: r.get::<_, Option<i64>>(3)?.map(time),
                            reason: r.get(4)?,
                            by: r.get(5)?,
                            set_at: time(r.get(6)?),
                        },
                    },
                ))
            })
            .map_err(io)?;
        snapshot.planned = rows.collect::<Result<_, _>>().map_err(io)?;
        let mut q = c
            .prepare("SELECT ap, wifi, since, reachable, last_error, clients, assumed, last_contact FROM observed")
            .map_err(io)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    ApId::from(r.get::<_, String>(0)?.as_str()),
                    ObservedRecord {
                        wifi: observed_wifi(&r.get::<_, String>(1)?),
                        since: time(r.get(2)?),
                        reachable: r.get(3)?,
                        last_error: r.get(4)?,
                        clients: r.get(5)?,
                        assumed: r.get(6)?,
                        last_contact: r.get::<_, Option<i64>>(7)?.map(time),
                    },
                ))
            })
            .map_err(io)?;
        snapshot.observed = rows.collect::<Result<_, _>>().map_err(io)?;
        Ok(snapshot)
    }

    fn commit(&self, batches: &[&Batch]) -> Result<(), StoreError> {
        let mut c = Self::lock(&self.write);
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(io)?;
        {
            let mut put_session = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO sessions (classroom, wifi, started, until, by) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(io)?;
            let mut del_session = tx
                .prepare_cached("DELETE FROM sessions WHERE classroom = ?1")
                .map_err(io)?;
            let mut put_override = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO overrides (classroom, wifi, until, reason, by, set_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(io)?;
            let mut del_override = tx
                .prepare_cached("DELETE FROM overrides WHERE classroom = ?1")
                .map_err(io)?;
            let mut put_planned = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO planned_overrides (classroom, starts, wifi, until, reason, by, set_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(io)?;
            let mut del_planned = tx
                .prepare_cached("DELETE FROM planned_overrides WHERE classroom = ?1 AND starts = ?2")
                .map_err(io)?;
            let mut put_observed = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO observed (ap, wifi, since, reachable, last_error, clients, assumed, last_contact)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(io)?;
            let mut put_token_use = tx
                .prepare_cached(
                    "INSERT INTO token_use (token_sha256, last_used) VALUES (?1, ?2)
                     ON CONFLICT(token_sha256) DO UPDATE SET last_used = max(last_used, excluded.last_used)",
                )
                .map_err(io)?;
            let mut put_audit = tx
                .prepare_cached(
                    "INSERT INTO audit (at, actor, role, classroom, ap, action, detail, result, source, via)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(io)?;
            for b in batches {
                for (classroom, session) in &b.sessions {
                    match session {
                        Some(s) => put_session
                            .execute(params![
                                classroom.as_str(),
                                s.wifi.as_str(),
                                ms(s.started),
                                ms(s.until),
                                s.by
                            ])
                            .map_err(io)?,
                        None => del_session.execute(params![classroom.as_str()]).map_err(io)?,
                    };
                }
                for (classroom, o) in &b.overrides {
                    match o {
                        Some(o) => put_override
                            .execute(params![
                                classroom.as_str(),
                                o.wifi.as_str(),
                                o.until.map(ms),
                                o.reason,
                                o.by,
                                ms(o.set_at)
                            ])
                            .map_err(io)?,
                        None => del_override.execute(params![classroom.as_str()]).map_err(io)?,
                    };
                }
                for (classroom, from, o) in &b.planned {
                    match o {
                        Some(o) => put_planned
                            .execute(params![
                                classroom.as_str(),
                                ms(*from),
                                o.wifi.as_str(),
                                o.until.map(ms),
                                o.reason,
                                o.by,
                                ms(o.set_at)
                            ])
                            .map_err(io)?,
                        None => del_planned
                            .execute(params![classroom.as_str(), ms(*from)])
                            .map_err(io)?,
                    };
                }
                for (ap, o) in &b.observed {
                    put_observed
                        .execute(params![
                            ap.as_str(),
                            o.wifi.as_str(),
                            ms(o.since),
                            o.reachable,
                            o.last_error,
                            o.clients,
                            o.assumed,
                            o.last_contact.map(ms)
                        ])
                        .map_err(io)?;
                }
                for (hash, at) in &b.token_use {
                    put_token_use.execute(params![hash, ms(*at)]).map_err(io)?;
                }
                for a in &b.audit {
                    put_audit
                        .execute(params![
                            ms(a.at),
                            a.actor,
                            a.role,
                            a.classroom,
                            a.access_point,
                            a.action,
                            a.detail,
                            a.result,
                            a.source,
                            a.via
                        ])
                        .map_err(io)?;
                }
                super::usage::write(&tx, &b.usage).map_err(io)?;
                if let Some((started, _)) = b.usage.run {
                    *self.current_run.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
                }
                if let Some(at) = b.heartbeat {
                    tx.prepare_cached("INSERT OR REPLACE INTO heartbeat (id, at) VALUES (1, ?1)")
                        .and_then(|mut st| st.execute(params![ms(at)]))
                        .map_err(io)?;
                }
            }
        }
        tx.commit().map_err(io)
    }

    fn token_uses(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let c = Self::lock(&self.read);
        read_token_uses(&c)
    }

    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let c = Self::lock(&self.read);
        let mut sql = String::from(
            "SELECT id, at, actor, role, classroom, ap, action, detail, result, source, via FROM audit WHERE 1=1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(cl) = &query.classroom {
            arg(&mut sql, "classroom =", cl.clone().into());
        }
        if let Some(a) = &query.actor {
            arg(&mut sql, "actor =", a.clone().into());
        }
        if let Some(s) = query.since {
            arg(&mut sql, "at >=", ms(s).into());
        }
        if let Some(u) = query.until {
            arg(&mut sql, "at <", ms(u).into());
        }
        if let Some(b) = query.before_id {
            arg(&mut sql, "id <", b.into());
        }
        if let Some(scope) = &query.scope {
            // A scoped user sees the lines of its classrooms only; a JSON
            // array keeps the statement's shape fixed whatever the scope size.
            let list = serde_json::to_string(scope).map_err(|e| StoreError::Io(e.to_string()))?;
            arg(&mut sql, "classroom IN (SELECT value FROM json_each(", list.into());
            sql.push_str("))");
        }
        if !query.actions.is_empty() {
            // Prefix match without LIKE, so `_` and `%` in a filter are literal.
            sql.push_str(" AND (0");
            for a in &query.actions {
                args.push((a.chars().count() as i64).into());
                args.push(a.clone().into());
                sql.push_str(&format!(" OR substr(action, 1, ?{}) = ?{}", args.len() - 1, args.len()));
            }
            sql.push(')');
        }
        if let Some(r) = &query.result {
            args.push((r.chars().count() as i64).into());
            args.push(r.clone().into());
            sql.push_str(&format!(
                " AND substr(result, 1, ?{}) = ?{}",
                args.len() - 1,
                args.len()
            ));
        }
        if let Some(ap) = &query.access_point {
            args.push(ap.clone().into());
            sql.push_str(&format!(" AND ap = ?{}", args.len()));
        }
        if let Some(school) = &query.school {
            let list = serde_json::to_string(&school.classrooms).map_err(|e| StoreError::Io(e.to_string()))?;
            args.push(list.into());
            args.push(format!("{}{},", crate::store::SCHOOL_SCOPE_PREFIX, school.id).into());
            sql.push_str(&format!(
                " AND (classroom IN (SELECT value FROM json_each(?{})) OR (classroom IS NULL AND substr(detail, 1, length(?{n})) = ?{n}))",
                args.len() - 1,
                n = args.len()
            ));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", query.limit.clamp(1, 100_000)));
        let mut q = c.prepare(&sql).map_err(io)?;
        let rows = q
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    record: AuditRecord {
                        at: time(r.get(1)?),
                        actor: r.get(2)?,
                        role: r.get(3)?,
                        classroom: r.get(4)?,
                        access_point: r.get(5)?,
                        action: r.get(6)?,
                        detail: r.get(7)?,
                        result: r.get(8)?,
                        source: r.get(9)?,
                        via: r.get(10)?,
                    },
                })
            })
            .map_err(io)?;
        rows.collect::<Result<_, _>>().map_err(io)
    }

    fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        let c = Self::lock(&self.write);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        c.prepare_cached("DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 ORDER BY at LIMIT ?2)")
            .and_then(|mut st| st.execute(params![ms(before), limit]))
            .map_err(io)
    }

    fn with_usage(&self, f: &mut dyn FnMut(&dyn super::usage::UsageSource)) -> Result<(), StoreError> {
        let current_run = *self.current_run.lock().unwrap_or_else(|e| e.into_inner());
        let c = Self::lock(&self.read);
        f(&super::usage::UsageReader { conn: &c, current_run });
        Ok(())
    }

    fn prune_usage(&self, day: chrono::NaiveDate, history_before: DateTime<Utc>) -> Result<usize, StoreError> {
        let c = Self::lock(&self.write);
        super::usage::prune(&c, day, history_before).map_err(io)
    }

    fn login_sessions(&self) -> Result<super::login_sessions::LoginSessions, StoreError> {
        super::login_sessions::LoginSessions::open(&self.path)
    }

    fn flush(&self) -> Result<(), StoreError> {
        let c = Self::lock(&self.write);
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .optional()
            .map_err(io)?;
        Ok(())
    }
}
