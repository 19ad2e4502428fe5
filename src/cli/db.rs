//! `borne db migrate [--from-sqlite PATH]`: brings the configured
//! PostgreSQL database (`database:`) to this borne's schema, and copies an
//! existing SQLite state into it. A daemon migrates at start too; the
//! command is for doing it ahead of an upgrade or a move, with the daemons
//! stopped or not (migrations are serialised in the database).

use std::path::Path;

use crate::config::Config;
use crate::store::postgres::{CopyOutcome, PostgresStore};

/// Migrates, then copies `from_sqlite` if given; returns what to print.
///
/// # Errors
/// No `database:` block, the database cannot be reached or migrated, or
/// the copy was refused (the message says why; nothing was copied).
pub fn db_migrate(config: &Config, from_sqlite: Option<&Path>) -> Result<String, String> {
    let Some(database) = &config.database else {
        return Err(
            "the configuration has no database: block; the embedded SQLite store (state_dir/borne.db) migrates itself at start"
                .into(),
        );
    };
    let store = PostgresStore::connect(database, "borne-db-migrate").map_err(|e| e.to_string())?;
    let migrated = store.migrate().map_err(|e| e.to_string())?;
    let mut out = if migrated.from == migrated.to {
        format!("{}: schema at version {}, up to date\n", store.target(), migrated.to)
    } else {
        format!(
            "{}: schema migrated from version {} to {}\n",
            store.target(),
            migrated.from,
            migrated.to
        )
    };
    if let Some(path) = from_sqlite {
        match crate::store::postgres::copy_from_sqlite(&store, path).map_err(|e| e.to_string())? {
            CopyOutcome::Copied(tables) => {
                let total: u64 = tables.iter().map(|(_, n)| n).sum();
                out.push_str(&format!("copied {total} rows from {}:\n", path.display()));
                for (table, n) in tables {
                    out.push_str(&format!("  {table:<16} {n}\n"));
                }
            }
            CopyOutcome::AlreadyImported { source, at } => {
                out.push_str(&format!(
                    "{source} was already copied into this database at {at}: nothing copied\n"
                ));
            }
        }
    }
    Ok(out)
}
