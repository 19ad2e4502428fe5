//! `borne db migrate --from-sqlite PATH`: copies an SQLite state into an
//! empty PostgreSQL database, in one transaction (all or nothing).
//!
//! Running it twice duplicates nothing: the copy is recorded in
//! `borne_imports` (by the SQLite file's real path) in the same
//! transaction, and a second run finds it and copies nothing; a database
//! that holds any other borne state is refused, so two different files
//! are never merged by accident. Audit ids are kept (the API's cursors stay
//! valid) and the identity sequence moved past them.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::store::StoreError;
use crate::store::sqlite::SqliteStore;

/// Rows copied per statement.
const CHUNK: usize = 5_000;

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// Copied: rows per table, in copy order.
    Copied(Vec<(&'static str, u64)>),
    /// This file was already copied (when): nothing was done.
    AlreadyImported {
        /// The SQLite file.
        source: String,
        /// When it was copied (RFC 3339).
        at: String,
    },
}

/// The tables copied, and their columns (the same names on both sides).
const TABLES: &[(&str, &str, &str)] = &[
    (
        "sessions",
        "classroom, wifi, started, until, by",
        "text,text,int8,int8,text",
    ),
    (
        "overrides",
        "classroom, wifi, until, reason, by, set_at",
        "text,text,int8,text,text,int8",
    ),
    (
        "planned_overrides",
        "classroom, starts, wifi, until, reason, by, set_at",
        "text,int8,text,int8,text,text,int8",
    ),
    (
        "observed",
        "ap, wifi, since, reachable, last_error, clients, assumed, last_contact",
        "text,text,int8,bool,text,int8,bool,int8",
    ),
    (
        "audit",
        "id, at, actor, role, classroom, ap, action, detail, result, source, via",
        "int8,int8,text,text,text,text,text,text,text,text,text",
    ),
    ("ap_history", "ap, at, state", "text,int8,text"),
    (
        "desired_history",
        "classroom, at, mode, wifi, reason",
        "text,int8,text,text,text",
    ),
    ("runs", "started, alive", "int8,int8"),
    (
        "report_days",
        "day, classroom, on_s, unknown_s, teacher_s, schedule_s, override_s, outside_s, sessions, ended_by, overrides, overridden_s, refused",
        "text,text,int8,int8,int8,int8,int8,int8,text,text,int8,int8,text",
    ),
    ("token_use", "token_sha256, last_used", "text,int8"),
    (
        "login_sessions",
        "id_sha256, login, groups, \"user\", csrf, id_token, created, last_seen",
        "bytea,text,text,text,text,text,int8,int8",
    ),
    ("heartbeat", "id, at", "int4,int8"),
];

/// The SQLite file of `path`: the state directory or its `borne.db`.
pub fn sqlite_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("borne.db")
    } else {
        path.to_owned()
    }
}

/// A column of values read from SQLite, typed for PostgreSQL.
enum Column {
    Text(Vec<Option<String>>),
    Int8(Vec<Option<i64>>),
    Int4(Vec<Option<i32>>),
    Bool(Vec<Option<bool>>),
    Bytea(Vec<Option<Vec<u8>>>),
}

impl Column {
    fn new(ty: &str) -> Column {
        match ty {
            "int8" => Column::Int8(Vec::new()),
            "int4" => Column::Int4(Vec::new()),
            "bool" => Column::Bool(Vec::new()),
            "bytea" => Column::Bytea(Vec::new()),
            _ => Column::Text(Vec::new()),
        }
    }

    fn push(&mut self, r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<()> {
        match self {
            Column::Text(v) => v.push(r.get(i)?),
            Column::Int8(v) => v.push(r.get(i)?),
            Column::Int4(v) => v.push(r.get(i)?),
            Column::Bool(v) => v.push(r.get(i)?),
            Column::Bytea(v) => v.push(r.get(i)?),
        }
        Ok(())
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Text(v) => v,
            Column::Int8(v) => v,
            Column::Int4(v) => v,
            Column::Bool(v) => v,
            Column::Bytea(v) => v,
        }
    }
}

/// Copies the SQLite state at `path` (migrated to the current schema
/// first, as a start of borne would) into `store`'s database, which must be
/// migrated and hold no borne state.
///
/// # Errors
/// The SQLite file cannot be opened, the database already holds other
/// borne state, or a write failed (nothing was kept).
pub fn copy_from_sqlite(store: &PostgresStore, path: &Path) -> Result<CopyOutcome, StoreError> {
    let file = sqlite_file(path);
    if !file.is_file() {
        return Err(StoreError::Open {
            path: file.display().to_string(),
            message: "no such file (give the state directory or its borne.db)".into(),
        });
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    if file.file_name().is_some_and(|n| n == "borne.db") {
        // Brings an older file to the current schema, as a start would.
        drop(SqliteStore::open(dir)?);
    }
    let source = std::fs::canonicalize(&file)
        .unwrap_or_else(|_| file.clone())
        .display()
        .to_string();
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: file.display().to_string(),
        message: e.to_string(),
    };
    let sqlite = Connection::open_with_flags(
        &file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    sqlite
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_err)?;
    let version: i64 = sqlite
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(open_err)?;
    if version < 5 {
        return Err(StoreError::Open {
            path: file.display().to_string(),
            message: format!("schema version {version}: not a borne state database this borne can copy"),
        });
    }
    // Read everything first, outside the PostgreSQL transaction: a copy is
    // a one-off of an offline state, and its size is the state's.
    let mut data: Vec<(&'static str, &'static str, Vec<Column>, usize)> = Vec::new();
    for (table, columns, types) in TABLES {
        // Histories in insertion order (their new ids follow it); report_days
        // is WITHOUT ROWID.
        let order = match *table {
            "audit" => " ORDER BY id",
            "report_days" => " ORDER BY day, classroom",
            _ => " ORDER BY rowid",
        };
        let mut q = sqlite
            .prepare(&format!("SELECT {columns} FROM {table}{order}"))
            .map_err(open_err)?;
        let mut cols: Vec<Column> = types.split(',').map(Column::new).collect();
        let mut rows = q.query([]).map_err(open_err)?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(open_err)? {
            for (i, c) in cols.iter_mut().enumerate() {
                c.push(r, i).map_err(open_err)?;
            }
            n += 1;
        }
        data.push((table, types, cols, n));
    }
    store.run(move |inner| async move {
        let mut c = inner.client().await?;
        let tx = c.transaction().await.map_err(|e| inner.pg(e))?;
        let pg = |e| inner.pg(e);
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS borne_imports (
                source text PRIMARY KEY,
                imported_at timestamptz NOT NULL DEFAULT now()
             );
             LOCK TABLE borne_imports IN EXCLUSIVE MODE",
        )
        .await
        .map_err(pg)?;
        if let Some(r) = tx
            .query_opt(
                "SELECT to_char(imported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM borne_imports WHERE source = $1",
                &[&source],
            )
            .await
            .map_err(pg)?
        {
            return Ok(CopyOutcome::AlreadyImported { source, at: r.get(0) });
        }
        let mut held = Vec::new();
        for (table, _, _) in TABLES {
            let n: i64 = tx
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .map_err(pg)?
                .get(0);
            if n > 0 {
                held.push(format!("{table}: {n} rows"));
            }
        }
        if !held.is_empty() {
            return Err(StoreError::Io(format!(
                "the database {} already holds borne state ({}); --from-sqlite copies only into an empty database \
                 (nothing was copied)",
                inner.target,
                held.join(", ")
            )));
        }
        let mut copied = Vec::new();
        for (table, types, cols, n) in &data {
            let (_, columns, _) = TABLES.iter().find(|t| t.0 == *table).expect("same list");
            let casts: Vec<String> = types
                .split(',')
                .enumerate()
                .map(|(i, ty)| format!("${}::{ty}[]", i + 1))
                .collect();
            let sql = format!(
                "INSERT INTO {table} ({columns}) SELECT * FROM unnest({})",
                casts.join(", ")
            );
            let stmt = tx.prepare(&sql).await.map_err(pg)?;
            let mut start = 0;
            while start < *n {
                let end = (start + CHUNK).min(*n);
                let chunk: Vec<Column> = cols.iter().map(|c| slice(c, start, end)).collect();
                let params: Vec<&(dyn ToSql + Sync)> = chunk.iter().map(Column::as_sql).collect();
                tx.execute(&stmt, &params).await.map_err(pg)?;
                start = end;
            }
            copied.push((*table, *n as u64));
        }
        tx.execute(
            "SELECT setval(pg_get_serial_sequence('audit', 'id'), greatest((SELECT max(id) FROM audit), 1))",
            &[],
        )
        .await
        .map_err(pg)?;
        tx.execute("INSERT INTO borne_imports (source) VALUES ($1)", &[&source])
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(CopyOutcome::Copied(copied))
    })
}

fn slice(c: &Column, start: usize, end: usize) -> Column {
    match c {
        Column::Text(v) => Column::Text(v[start..end].to_vec()),
        Column::Int8(v) => Column::Int8(v[start..end].to_vec()),
        Column::Int4(v) => Column::Int4(v[start..end].to_vec()),
        Column::Bool(v) => Column::Bool(v[start..end].to_vec()),
        Column::Bytea(v) => Column::Bytea(v[start..end].to_vec()),
    }
}
