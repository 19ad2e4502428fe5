//! The `login_sessions` table on PostgreSQL: what `store/login_sessions.rs`
//! writes through to, so that instances behind one proxy share sign-ins.

use super::{PostgresStore, ms, time};
use crate::store::StoreError;
use crate::store::login_sessions::LoginSession;

impl PostgresStore {
    /// One stored sign-in session.
    pub(crate) fn load_login_session(&self, id: &[u8; 32]) -> Result<Option<LoginSession>, StoreError> {
        Ok(self.login_sessions_where(Some(id.to_vec()))?.pop())
    }

    /// Every stored sign-in session.
    pub(crate) fn load_login_sessions(&self) -> Result<Vec<LoginSession>, StoreError> {
        self.login_sessions_where(None)
    }

    fn login_sessions_where(&self, id: Option<Vec<u8>>) -> Result<Vec<LoginSession>, StoreError> {
        self.run(move |inner| async move {
            let c = inner.client().await?;
            let rows = c
                .query(
                    "SELECT id_sha256, login, groups, \"user\", csrf, id_token, created, last_seen FROM login_sessions
                     WHERE $1::bytea IS NULL OR id_sha256 = $1",
                    &[&id],
                )
                .await
                .map_err(|e| inner.pg(e))?;
            Ok(rows
                .iter()
                .filter_map(|r| {
                    // A row this code did not write (hand-edited): skipped, it opens nothing.
                    let id_sha256 = <[u8; 32]>::try_from(r.get::<_, &[u8]>(0)).ok()?;
                    Some(LoginSession {
                        id_sha256,
                        login: r.get(1),
                        groups: serde_json::from_str(r.get(2)).unwrap_or_default(),
                        user: r.get(3),
                        csrf: r.get(4),
                        id_token: r.get(5),
                        created: time(r.get(6)),
                        last_seen: time(r.get(7)),
                    })
                })
                .collect())
        })
    }

    /// Stores a session (replacing one with the same id).
    pub(crate) fn put_login_session(&self, s: &LoginSession) -> Result<(), StoreError> {
        let groups = serde_json::to_string(&s.groups).map_err(|e| StoreError::Io(e.to_string()))?;
        let s = s.clone();
        self.run(move |inner| async move {
            let c = inner.client().await?;
            c.execute(
                "INSERT INTO login_sessions (id_sha256, login, groups, \"user\", csrf, id_token, created, last_seen)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id_sha256) DO UPDATE SET login = excluded.login, groups = excluded.groups,
                    \"user\" = excluded.\"user\", csrf = excluded.csrf, id_token = excluded.id_token,
                    created = excluded.created, last_seen = excluded.last_seen",
                &[
                    &s.id_sha256.as_slice(),
                    &s.login,
                    &groups,
                    &s.user,
                    &s.csrf,
                    &s.id_token,
                    &ms(s.created),
                    &ms(s.last_seen),
                ],
            )
            .await
            .map_err(|e| inner.pg(e))?;
            Ok(())
        })
    }

    /// Moves a session's last use forward (never back: another instance
    /// may have seen it later).
    pub(crate) fn login_session_seen(
        &self,
        id: &[u8; 32],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let id = *id;
        self.run(move |inner| async move {
            let c = inner.client().await?;
            c.execute(
                "UPDATE login_sessions SET last_seen = greatest(last_seen, $2) WHERE id_sha256 = $1",
                &[&id.as_slice(), &ms(at)],
            )
            .await
            .map_err(|e| inner.pg(e))?;
            Ok(())
        })
    }

    /// Deletes sessions, in one transaction.
    pub(crate) fn delete_login_sessions(&self, ids: &[[u8; 32]]) -> Result<(), StoreError> {
        let ids: Vec<Vec<u8>> = ids.iter().map(|i| i.to_vec()).collect();
        self.run(move |inner| async move {
            let c = inner.client().await?;
            c.execute("DELETE FROM login_sessions WHERE id_sha256 = ANY($1)", &[&ids])
                .await
                .map_err(|e| inner.pg(e))?;
            Ok(())
        })
    }
}
