//! Issue 11, state safety at the daemon's edges: a start that cannot serve
//! touches no access point; `/readyz` proves the database takes a write.

mod common;

use std::io::Read as _;
use std::time::Duration;

use common::*;

/// An always-`on` classroom whose one access point is an SSH "device" the
/// test listens for on loopback: any connection to it means borne touched it.
fn config(dir: &std::path::Path, http: u16, device: u16) -> borne::config::Config {
    std::fs::write(dir.join("password"), "secret\n").unwrap();
    let yaml = format!(
        r#"
demo: true
timezone: Europe/Paris
listen: 127.0.0.1:{http}
state_dir: STATE_DIR
ssh: {{ user: root, password_file: "{pw}", insecure_ignore_host_key: true }}
schedules:
  always: {{ default_mode: on, rules: [] }}
schools:
  - id: s1
    schedule: always
    classrooms:
      - id: c1
        access_points: [ {{ id: c1-ap1, ssh: {{ host: 127.0.0.1, port: {device} }} }} ]
users:
  - {{ name: admin, role: admin, token: admin-token-123 }}
"#,
        pw = dir.join("password").display()
    );
    load_config(&yaml, dir)
}

/// Issue 11 item 10: with its HTTP port taken, `borne run` fails before
/// the reconciler starts, so no access point is contacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_stops_the_start_before_any_access_point_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let device = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (http, device_port) = (busy.local_addr().unwrap().port(), device.local_addr().unwrap().port());
    let config = config(dir.path(), http, device_port);
    let token = tokio_util::sync::CancellationToken::new();
    let started = borne::daemon::start(config, borne::daemon::Options::default(), token.clone()).await;
    let err = match started {
        Ok(_) => panic!("started on a busy port"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(&format!("listening on 127.0.0.1:{http}")), "{err}");
    // Anything the failed start left running would connect within
    // milliseconds (the classroom is `on`); give it ample time.
    device.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        if let Ok((mut s, peer)) = device.accept() {
            let mut first = [0u8; 16];
            let _ = s.read(&mut first);
            panic!("the access point was contacted from {peer} although the start failed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel();
    drop(busy);
}

const SIM: &str = concat!(
    borne_test_support::yaml_head!(),
    "listen: 127.0.0.1:0\n",
    r#"
schedules:
  day: { default_mode: available, rules: [] }
"#,
    borne_test_support::yaml_s1_c1!("day"),
    r#"users:
  - { name: admin, role: admin, token: admin-token-123 }
"#
);

/// Issue 11 item 7: `/readyz` writes a heartbeat; a database that refuses
/// writes (here: another process holds its write lock) is not ready, and
/// ready again once it takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_when_the_database_refuses_a_write() {
    let d = TestDaemon::start(SIM, ManualClock::at("2026-12-01T10:00:00+01:00")).await;
    let status = |d: &TestDaemon| {
        let (http, url) = (d.http.clone(), d.url("/readyz"));
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&d).await, 200);
    let db = d.dir.path().join("state").join("borne.db");
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while status(&d).await != 503 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz stayed ready with the database locked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while status(&d).await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "/readyz did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let heartbeat: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT at FROM heartbeat WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert!(heartbeat > 0);
}

/// Issue 11 item 8: pruning a large audit log goes through the writer in
/// small chunks, so a commit asked while it runs is not held until the
/// whole prune is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_lets_commits_through() {
    use borne::store::{Batch, Store as _, Writer, sqlite::SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
    let old_rows = 100_000;
    {
        let mut c = rusqlite::Connection::open(store.path()).unwrap();
        let tx = c.transaction().unwrap();
        {
            let mut insert = tx
                .prepare("INSERT INTO audit (at, actor, action, detail, result) VALUES (?1, 'borne', 'ap.apply', 'on over sim', 'ok')")
                .unwrap();
            for i in 0..old_rows {
                insert.execute([1_000_000_i64 + i]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let count = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM audit WHERE actor = 'borne'", [], |r| r.get(0))
            .unwrap()
    };
    let _ = store.load().unwrap();
    let writer = Writer::start(store.clone()).unwrap();
    let before: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let pruning = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.prune_audit(before).await })
    };
    // Once the prune has visibly begun, a request commits.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while count(store.path()) == old_rows {
        assert!(tokio::time::Instant::now() < deadline, "the prune never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let record = borne::store::AuditRecord {
        at: before,
        actor: "teacher1".into(),
        role: Some("teacher".into()),
        classroom: Some("c1".into()),
        access_point: None,
        action: "teacher.on".into(),
        detail: "on for 60 minutes".into(),
        result: "accepted".into(),
        source: None,
        via: None,
    };
    writer.commit(Batch::audit(vec![record])).await.unwrap();
    let left = count(store.path());
    assert!(left > 0, "the commit waited for the whole prune");
    assert_eq!(pruning.await.unwrap().unwrap(), old_rows as usize);
    assert_eq!(count(store.path()), 0);
}
