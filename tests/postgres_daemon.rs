//! A daemon whose state is in PostgreSQL (issue 17): what it acknowledged
//! is in the database and survives a restart; while the database is down,
//! changes get 503 `database_unavailable` and reads still answer; once it
//! is back, requests work again and nothing acknowledged was lost.

use std::sync::Arc;

use borne::policy::Wifi;
use borne_test_support::daemon::{ManualClock, TestDaemon};
use borne_test_support::fixtures::{ADMIN_TOKEN, ALWAYS_AVAILABLE, FAST_RETRIES, HEAD, TEACHER_TOKEN, users};
use borne_test_support::postgres::PgCluster;
use reqwest::Method;
use serde_json::json;

fn yaml(url: &str) -> String {
    [
        HEAD,
        FAST_RETRIES,
        ALWAYS_AVAILABLE,
        &users("classrooms: [c1, c2]"),
        &format!("database: {{ url: \"{url}\" }}\n"),
        "schools:\n  - id: s1\n    schedule: open\n    classrooms:\n      - { id: c1, access_points: [ { id: c1-ap1, sim: {} } ] }\n      - { id: c2, access_points: [ { id: c2-ap1, sim: {} } ] }\n",
    ]
    .concat()
}

fn clock() -> Arc<ManualClock> {
    ManualClock::at("2026-12-01T10:00:00Z")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_requests_are_in_postgres_and_survive_a_restart() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("daemon");
    let yaml = yaml(&url);
    let clock = clock();
    let d = TestDaemon::start(&yaml, clock.clone()).await;
    let (status, body) = d.wifi(TEACHER_TOKEN, "c1", json!({"wifi": "on", "minutes": 30})).await;
    assert!((200..300).contains(&status), "{status} {body}");
    let (status, body) = d
        .send(
            Method::PUT,
            ADMIN_TOKEN,
            "/api/v1/classrooms/c2/override",
            json!({"wifi": "off", "reason": "exam"}),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    d.wait_sim("c1-ap1", Wifi::On).await;
    // Acknowledged means committed: visible to another connection now.
    assert_eq!(
        pg.psql("daemon", "SELECT classroom || ' ' || wifi || ' ' || by FROM sessions")
            .trim(),
        "c1 on teacher1"
    );
    assert_eq!(
        pg.psql("daemon", "SELECT classroom || ' ' || reason FROM overrides")
            .trim(),
        "c2 exam"
    );
    let audited = pg.psql(
        "daemon",
        "SELECT count(*) FROM audit WHERE action IN ('teacher.on', 'override.set')",
    );
    assert_eq!(audited.trim(), "2");
    let dir = d.stop().await;
    assert!(
        !dir.path().join("state/borne.db").exists(),
        "with database:, no SQLite file is written"
    );

    let d = TestDaemon::start_in(dir, &yaml, clock).await;
    let (_, c1) = d.get(ADMIN_TOKEN, "/api/v1/classrooms/c1").await;
    assert_eq!(c1["session"]["by"], "teacher1", "{c1}");
    let (_, c2) = d.get(ADMIN_TOKEN, "/api/v1/classrooms/c2").await;
    assert_eq!(c2["override"]["reason"], "exam", "{c2}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_refuses_changes_with_503_and_loses_nothing() {
    let Some(mut pg) = PgCluster::start() else { return };
    let url = pg.create_database("outage");
    let d = TestDaemon::start(&yaml(&url), clock()).await;
    let (status, _) = d.wifi(TEACHER_TOKEN, "c1", json!({"wifi": "on", "minutes": 30})).await;
    assert_eq!(status, 200);

    pg.stop();
    let (status, body) = d.wifi(TEACHER_TOKEN, "c2", json!({"wifi": "on", "minutes": 30})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "database_unavailable", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Base de données injoignable") && message.contains("The database cannot be reached"),
        "French then English: {message}"
    );
    let (status, body) = d
        .send(
            Method::PUT,
            ADMIN_TOKEN,
            "/api/v1/classrooms/c1/override",
            json!({"wifi": "off", "reason": "storm"}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("database_unavailable")),
        "{body}"
    );
    // Reads serve memory: the acknowledged session is still shown, the
    // refused changes are not.
    let (status, c1) = d.get(ADMIN_TOKEN, "/api/v1/classrooms/c1").await;
    assert_eq!(status, 200);
    assert_eq!(c1["session"]["by"], "teacher1", "{c1}");
    assert!(c1["override"].is_null(), "a refused override is not in memory: {c1}");
    let (_, c2) = d.get(ADMIN_TOKEN, "/api/v1/classrooms/c2").await;
    assert!(c2["session"].is_null(), "a refused session is not in memory: {c2}");

    pg.restart();
    // The pool opens a new connection at the next request: no wait for a
    // reconnect loop, but allow for the server's own start-up.
    let deadline = std::time::Instant::now() + borne_test_support::wait::TIMEOUT;
    loop {
        let (status, body) = d.wifi(TEACHER_TOKEN, "c2", json!({"wifi": "on", "minutes": 30})).await;
        if status == 200 {
            break;
        }
        assert_eq!(body["error"], "database_unavailable", "{status} {body}");
        assert!(
            std::time::Instant::now() < deadline,
            "still refused after the restart: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let sessions = pg.psql(
        "outage",
        "SELECT string_agg(classroom, ',' ORDER BY classroom) FROM sessions",
    );
    assert_eq!(
        sessions.trim(),
        "c1,c2",
        "the session acknowledged before the outage is still there"
    );
    assert_eq!(pg.psql("outage", "SELECT count(*) FROM overrides").trim(), "0");
    d.stop().await;
}
