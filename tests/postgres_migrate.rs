//! `borne db migrate` (issue 17): the schema is applied once and reported
//! up to date after; `--from-sqlite` copies an SQLite state into an empty
//! PostgreSQL database, a second run with the same file copies nothing, and
//! a database that already holds other borne state is refused untouched.

use std::path::Path;
use std::process::Command;

use borne::config::ClassroomId;
use borne::config::database::{RawDatabase, validate};
use borne::domain::Wifi;
use borne::policy::Session;
use borne::store::postgres::PostgresStore;
use borne::store::sqlite::SqliteStore;
use borne::store::{AuditQuery, AuditRecord, Batch, Store};
use borne_test_support::daemon::borne_bin;
use borne_test_support::postgres::PgCluster;

fn config_file(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("borne.yaml");
    std::fs::write(
        &path,
        format!(
            "timezone: Europe/Paris\nstate_dir: {}\ndatabase: {{ url: \"{url}\" }}\n\
             schedules: {{ day: {{ default_mode: available }} }}\n\
             schools:\n  - id: s1\n    schedule: day\n    classrooms:\n      - {{ id: c1, access_points: [ {{ id: c1-ap1, sim: {{}} }} ] }}\n",
            dir.join("unused-state").display()
        ),
    )
    .expect("write config");
    path
}

fn migrate(config: &Path, from: Option<&Path>) -> (bool, String) {
    let mut c = Command::new(borne_bin());
    c.args(["db", "migrate", "--config"]).arg(config);
    if let Some(from) = from {
        c.arg("--from-sqlite").arg(from);
    }
    let out = c.output().expect("run borne db migrate");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// An SQLite state with a session, `n` audit lines and a token use.
fn sqlite_state(dir: &Path, n: usize, by: &str) {
    let store = SqliteStore::open(dir).expect("sqlite");
    let at = "2026-12-01T09:00:00Z".parse().unwrap();
    let mut batch = Batch {
        sessions: vec![(
            ClassroomId::from("c1"),
            Some(Session {
                wifi: Wifi::On,
                started: at,
                until: at + chrono::Duration::hours(1),
                by: by.into(),
            }),
        )],
        token_use: vec![("ab".repeat(32), at)],
        ..Batch::default()
    };
    for i in 0..n {
        batch.audit.push(AuditRecord {
            at,
            actor: by.into(),
            role: Some("teacher".into()),
            classroom: Some("c1".into()),
            access_point: None,
            action: "teacher.on".into(),
            detail: format!("line {i}"),
            result: "accepted".into(),
            source: None,
            via: Some("token".into()),
        });
    }
    store.commit(&[&batch]).expect("commit");
}

#[test]
fn migrate_applies_the_schema_once() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("schema");
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &url);
    let (ok, out) = migrate(&config, None);
    assert!(ok, "{out}");
    assert!(out.contains("schema migrated from version 0 to 2"), "{out}");
    let (ok, out) = migrate(&config, None);
    assert!(ok, "{out}");
    assert!(out.contains("schema at version 2, up to date"), "{out}");
    assert_eq!(pg.psql("schema", "SELECT count(*) FROM borne_schema").trim(), "2");
    assert_eq!(
        pg.psql("schema", "SELECT to_regclass('borne_instances') IS NOT NULL")
            .trim(),
        "t",
        "the instances table of high availability is in the first schema"
    );
}

/// A database migrated by a newer borne (a rolling upgrade half done, or a
/// downgrade) is refused by this one, at `db migrate` and at start, and
/// left untouched: an older binary never writes a schema it does not know.
#[test]
fn a_schema_newer_than_this_borne_is_refused_at_migrate_and_at_start() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("newer");
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &url);
    let (ok, out) = migrate(&config, None);
    assert!(ok, "{out}");
    pg.psql("newer", "INSERT INTO borne_schema (version) VALUES (99)");
    let (ok, out) = migrate(&config, None);
    assert!(!ok, "a newer schema was accepted: {out}");
    assert!(
        out.contains("schema version 99 is newer than this borne knows"),
        "{out}"
    );
    let mut run = Command::new(borne_bin())
        .args(["run", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn borne run");
    let deadline = std::time::Instant::now() + borne_test_support::wait::TIMEOUT;
    let status = loop {
        if let Some(status) = run.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = run.kill();
            panic!("borne run started on a newer schema");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut run.stderr.take().expect("stderr"), &mut err).expect("read stderr");
    assert!(!status.success(), "{err}");
    assert!(err.contains("newer than this borne knows"), "{err}");
    assert_eq!(
        pg.psql(
            "newer",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM borne_schema"
        )
        .trim(),
        "1,2,99",
        "the refused start changed the schema"
    );
}

#[test]
fn from_sqlite_copies_once_and_refuses_a_database_with_other_state() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("copy");
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &url);
    let state = dir.path().join("state");
    sqlite_state(&state, 12_345, "teacher1");

    let (ok, out) = migrate(&config, Some(&state));
    assert!(ok, "{out}");
    assert!(out.contains("copied"), "{out}");
    assert!(out.contains("audit") && out.contains("12345"), "{out}");
    let count = |sql: &str| pg.psql("copy", sql).trim().to_owned();
    assert_eq!(count("SELECT count(*) FROM audit"), "12345");
    assert_eq!(count("SELECT by FROM sessions"), "teacher1");
    assert_eq!(count("SELECT count(*) FROM token_use"), "1");

    // Twice (the directory, then its file): nothing duplicated.
    let (ok, out) = migrate(&config, Some(&state.join("borne.db")));
    assert!(ok, "{out}");
    assert!(
        out.contains("was already copied") && out.contains("nothing copied"),
        "{out}"
    );
    assert_eq!(count("SELECT count(*) FROM audit"), "12345");

    // Another SQLite state into the same database: refused, nothing changed.
    let other = dir.path().join("other");
    sqlite_state(&other, 3, "teacher9");
    let (ok, out) = migrate(&config, Some(&other));
    assert!(!ok, "a second state merged into the first: {out}");
    assert!(
        out.contains("already holds borne state") && out.contains("nothing was copied"),
        "{out}"
    );
    assert_eq!(count("SELECT count(*) FROM audit"), "12345");
    assert_eq!(count("SELECT by FROM sessions"), "teacher1");

    // The copy is a working state: ids kept, new lines after them.
    let store = PostgresStore::open(
        &validate(
            &RawDatabase {
                url: Some(url),
                ..RawDatabase::default()
            },
            None,
        )
        .unwrap(),
        "test",
    )
    .unwrap();
    let newest_copied = store
        .audit(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .unwrap()[0]
        .id;
    assert_eq!(newest_copied, 12_345, "audit ids (the API's cursors) are kept");
    let mut line = store
        .audit(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .unwrap()[0]
        .record
        .clone();
    line.detail = "after the copy".into();
    store.commit(&[&Batch::audit(vec![line])]).unwrap();
    let newest = store
        .audit(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .unwrap()[0]
        .clone();
    assert_eq!((newest.id, newest.record.detail.as_str()), (12_346, "after the copy"));
}

#[test]
fn migrate_without_a_database_block_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("borne.yaml");
    std::fs::write(
        &path,
        format!(
            "timezone: Europe/Paris\nstate_dir: {}\nschedules: {{ day: {{ default_mode: available }} }}\n\
             schools:\n  - id: s1\n    schedule: day\n    classrooms:\n      - {{ id: c1, access_points: [ {{ id: c1-ap1, sim: {{}} }} ] }}\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let (ok, out) = migrate(&path, None);
    assert!(!ok);
    assert!(out.contains("has no database: block"), "{out}");
}
