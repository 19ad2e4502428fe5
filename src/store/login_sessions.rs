//! Sign-in sessions with the identity provider, in the state database
//! (table `login_sessions`), so that a restart does not sign every teacher
//! out.
//!
//! The cookie holds a random id; the table holds only its SHA-256, so a
//! copy of the database opens no session. Sessions are few (one per signed-in
//! person) and read on every cookie request, so they are all kept in memory
//! and written through; the last-use time is written at most once per
//! [`TOUCH_INTERVAL`] per session (no write per request).
//!
//! The API's sign-in routes (`api::oidc`) create, look up and end sessions
//! here; the table is created by the store's migrations (`sqlite.rs`, or
//! `postgres/schema.rs` when the state is in PostgreSQL: then instances
//! behind one proxy share the sessions, and one that does not know a
//! cookie's session reloads the table before refusing it).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, params};

use super::StoreError;

/// The last-use time reaches the database at most this often per session.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// One session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// SHA-256 of the cookie's id.
    pub id_sha256: [u8; 32],
    /// The person's `user_claim` value.
    pub login: String,
    /// Their groups (`roles_claim`) at sign-in, so a reload can re-scope them.
    pub groups: Vec<String>,
    /// The borne user they matched at sign-in (for the audit of sign-out).
    pub user: String,
    /// The per-session CSRF token.
    pub csrf: String,
    /// The provider's ID token (for its end-session endpoint).
    pub id_token: Option<String>,
    /// Sign-in time.
    pub created: DateTime<Utc>,
    /// Last use.
    pub last_seen: DateTime<Utc>,
}

struct Entry {
    session: LoginSession,
    /// Last use written to the database.
    stored_seen: DateTime<Utc>,
}

/// Where the sessions are written through to.
enum Backend {
    Sqlite(Mutex<Connection>),
    Postgres(super::postgres::PostgresStore),
}

/// The sessions: memory, written through to the state database.
pub struct LoginSessions {
    db: Backend,
    cache: Mutex<HashMap<[u8; 32], Entry>>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn io(e: rusqlite::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl LoginSessions {
    /// Opens the table in `database` (already migrated by the store) and
    /// loads every session.
    ///
    /// # Errors
    /// When the database cannot be opened or read.
    pub fn open(database: &Path) -> Result<LoginSessions, StoreError> {
        let c = Connection::open(database).map_err(|e| StoreError::Open {
            path: database.display().to_string(),
            message: e.to_string(),
        })?;
        c.busy_timeout(Duration::from_secs(5)).map_err(io)?;
        let mut cache = HashMap::new();
        {
            let mut q = c
                .prepare(
                    "SELECT id_sha256, login, groups, user, csrf, id_token, created, last_seen FROM login_sessions",
                )
                .map_err(io)?;
            let rows = q
                .query_map([], |r| {
                    let id: Vec<u8> = r.get(0)?;
                    let groups: String = r.get(2)?;
                    Ok((
                        id,
                        LoginSession {
                            id_sha256: [0; 32],
                            login: r.get(1)?,
                            groups: serde_json::from_str(&groups).unwrap_or_default(),
                            user: r.get(3)?,
                            csrf: r.get(4)?,
                            id_token: r.get(5)?,
                            created: time(r.get(6)?),
                            last_seen: time(r.get(7)?),
                        },
                    ))
                })
                .map_err(io)?;
            for row in rows {
                let (id, mut session) = row.map_err(io)?;
                // A row this file did not write (hand-edited): skip it, it
                // opens nothing.
                let Ok(id_sha256) = <[u8; 32]>::try_from(id.as_slice()) else {
                    continue;
                };
                session.id_sha256 = id_sha256;
                cache.insert(
                    id_sha256,
                    Entry {
                        stored_seen: session.last_seen,
                        session,
                    },
                );
            }
        }
        Ok(LoginSessions {
            db: Backend::Sqlite(Mutex::new(c)),
            cache: Mutex::new(cache),
        })
    }

    /// The sessions of a PostgreSQL store (already migrated), all loaded.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn postgres(store: super::postgres::PostgresStore) -> Result<LoginSessions, StoreError> {
        let cache = Self::entries(store.load_login_sessions()?);
        Ok(LoginSessions {
            db: Backend::Postgres(store),
            cache: Mutex::new(cache),
        })
    }

    fn entries(sessions: Vec<LoginSession>) -> HashMap<[u8; 32], Entry> {
        sessions
            .into_iter()
            .map(|session| {
                (
                    session.id_sha256,
                    Entry {
                        stored_seen: session.last_seen,
                        session,
                    },
                )
            })
            .collect()
    }

    /// With PostgreSQL, the database is the authority (another instance
    /// may have created or ended the session): read it, and keep the
    /// cache in step; while it cannot be read, the cache answers.
    fn lookup(&self, store: &super::postgres::PostgresStore, id_sha256: &[u8; 32]) -> Option<LoginSession> {
        match store.load_login_session(id_sha256) {
            Ok(Some(stored)) => {
                let mut cache = self.cache();
                let mut session = stored.clone();
                if let Some(e) = cache.get(id_sha256) {
                    session.last_seen = session.last_seen.max(e.session.last_seen);
                }
                cache.insert(
                    *id_sha256,
                    Entry {
                        stored_seen: stored.last_seen,
                        session: session.clone(),
                    },
                );
                Some(session)
            }
            Ok(None) => {
                self.cache().remove(id_sha256);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the sign-in sessions; using the ones in memory");
                self.cache().get(id_sha256).map(|e| e.session.clone())
            }
        }
    }

    fn sqlite(&self) -> Option<std::sync::MutexGuard<'_, Connection>> {
        match &self.db {
            Backend::Sqlite(c) => Some(c.lock().unwrap_or_else(|e| e.into_inner())),
            Backend::Postgres(_) => None,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a new session (blocking: disk I/O).
    ///
    /// # Errors
    /// When the database cannot be written; the session then does not exist.
    pub fn insert(&self, session: LoginSession) -> Result<(), StoreError> {
        let groups = serde_json::to_string(&session.groups).map_err(|e| StoreError::Io(e.to_string()))?;
        if let Backend::Postgres(store) = &self.db {
            store.put_login_session(&session)?;
        } else if let Some(db) = self.sqlite() {
            db.execute(
                "INSERT OR REPLACE INTO login_sessions (id_sha256, login, groups, user, csrf, id_token, created, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    session.id_sha256.as_slice(),
                    session.login,
                    groups,
                    session.user,
                    session.csrf,
                    session.id_token,
                    ms(session.created),
                    ms(session.last_seen)
                ],
            )
            .map_err(io)?;
        }
        self.cache().insert(
            session.id_sha256,
            Entry {
                stored_seen: session.last_seen,
                session,
            },
        );
        Ok(())
    }

    /// The session with this id hash, if any.
    pub fn get(&self, id_sha256: &[u8; 32]) -> Option<LoginSession> {
        if let Backend::Postgres(store) = &self.db {
            return self.lookup(store, id_sha256);
        }
        self.cache().get(id_sha256).map(|e| e.session.clone())
    }

    /// Records a use at `now`; returns true when the database should be
    /// told (see [`flush_seen`](Self::flush_seen)), at most once per
    /// [`TOUCH_INTERVAL`].
    pub fn touch(&self, id_sha256: &[u8; 32], now: DateTime<Utc>) -> bool {
        let mut cache = self.cache();
        let Some(e) = cache.get_mut(id_sha256) else {
            return false;
        };
        e.session.last_seen = e.session.last_seen.max(now);
        (e.session.last_seen - e.stored_seen).to_std().unwrap_or_default() >= TOUCH_INTERVAL
    }

    /// Writes the last-use time of a session (blocking).
    ///
    /// # Errors
    /// When the database cannot be written (the next use tries again).
    pub fn flush_seen(&self, id_sha256: &[u8; 32]) -> Result<(), StoreError> {
        let Some(seen) = self.get(id_sha256).map(|s| s.last_seen) else {
            return Ok(());
        };
        match self.sqlite() {
            Some(db) => {
                db.execute(
                    "UPDATE login_sessions SET last_seen = ?2 WHERE id_sha256 = ?1",
                    params![id_sha256.as_slice(), ms(seen)],
                )
                .map_err(io)?;
            }
            None => {
                if let Backend::Postgres(store) = &self.db {
                    store.login_session_seen(id_sha256, seen)?;
                }
            }
        }
        if let Some(e) = self.cache().get_mut(id_sha256) {
            e.stored_seen = seen;
        }
        Ok(())
    }

    /// Ends a session (blocking). Removed from memory first: even if the
    /// disk refuses, it no longer opens anything in this process.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn remove(&self, id_sha256: &[u8; 32]) -> Result<Option<LoginSession>, StoreError> {
        let removed = self.cache().remove(id_sha256).map(|e| e.session);
        match self.sqlite() {
            Some(db) => {
                db.execute(
                    "DELETE FROM login_sessions WHERE id_sha256 = ?1",
                    params![id_sha256.as_slice()],
                )
                .map_err(io)?;
            }
            None => {
                if let Backend::Postgres(store) = &self.db {
                    store.delete_login_sessions(&[*id_sha256])?;
                }
            }
        }
        Ok(removed)
    }

    /// Ends every session `keep` refuses (expired ones, people a reload
    /// removed); returns them (blocking).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn retain(&self, mut keep: impl FnMut(&LoginSession) -> bool) -> Result<Vec<LoginSession>, StoreError> {
        let gone: Vec<LoginSession> = {
            let mut cache = self.cache();
            let ids: Vec<[u8; 32]> = cache
                .iter()
                .filter(|(_, e)| !keep(&e.session))
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| cache.remove(id))
                .map(|e| e.session)
                .collect()
        };
        if !gone.is_empty()
            && let Backend::Postgres(store) = &self.db
        {
            let ids: Vec<[u8; 32]> = gone.iter().map(|s| s.id_sha256).collect();
            store.delete_login_sessions(&ids)?;
        } else if !gone.is_empty()
            && let Some(mut db) = self.sqlite()
        {
            let tx = db.transaction().map_err(io)?;
            for s in &gone {
                tx.execute(
                    "DELETE FROM login_sessions WHERE id_sha256 = ?1",
                    params![s.id_sha256.as_slice()],
                )
                .map_err(io)?;
            }
            tx.commit().map_err(io)?;
        }
        Ok(gone)
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.cache().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn session(n: u8, at: &str) -> LoginSession {
        let t: DateTime<Utc> = at.parse().expect("time");
        LoginSession {
            id_sha256: [n; 32],
            login: format!("person-{n}"),
            groups: vec!["g1".into(), "g2".into()],
            user: format!("user-{n}"),
            csrf: format!("csrf-{n}"),
            id_token: Some("header.payload.signature".into()),
            created: t,
            last_seen: t,
        }
    }

    #[test]
    fn sessions_survive_reopening_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("store");
        let sessions = LoginSessions::open(store.path()).expect("open");
        sessions.insert(session(1, "2026-01-05T08:00:00Z")).expect("insert");
        sessions.insert(session(2, "2026-01-05T08:01:00Z")).expect("insert");
        sessions.remove(&[2; 32]).expect("remove");
        drop(sessions);
        let reopened = LoginSessions::open(store.path()).expect("reopen");
        assert_eq!(reopened.len(), 1);
        assert_eq!(reopened.get(&[1; 32]), Some(session(1, "2026-01-05T08:00:00Z")));
        assert_eq!(reopened.get(&[2; 32]), None);
    }

    #[test]
    fn last_use_reaches_the_disk_at_most_once_a_minute() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("store");
        let sessions = LoginSessions::open(store.path()).expect("open");
        sessions.insert(session(1, "2026-01-05T08:00:00Z")).expect("insert");
        let at = |s: &str| s.parse::<DateTime<Utc>>().expect("time");
        assert!(!sessions.touch(&[1; 32], at("2026-01-05T08:00:30Z")));
        assert!(sessions.touch(&[1; 32], at("2026-01-05T08:01:00Z")));
        sessions.flush_seen(&[1; 32]).expect("flush");
        assert!(!sessions.touch(&[1; 32], at("2026-01-05T08:01:10Z")));
        drop(sessions);
        let reopened = LoginSessions::open(store.path()).expect("reopen");
        assert_eq!(
            reopened.get(&[1; 32]).map(|s| s.last_seen),
            Some(at("2026-01-05T08:01:00Z"))
        );
    }

    #[test]
    fn retain_ends_the_refused_sessions_on_disk_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("store");
        let sessions = LoginSessions::open(store.path()).expect("open");
        for n in 1..=3 {
            sessions.insert(session(n, "2026-01-05T08:00:00Z")).expect("insert");
        }
        let gone = sessions.retain(|s| s.login != "person-2").expect("retain");
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].login, "person-2");
        drop(sessions);
        assert_eq!(LoginSessions::open(store.path()).expect("reopen").len(), 2);
    }
}
