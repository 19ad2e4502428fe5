//! The audit log answers the steering committee's questions (issue 16 §3):
//! filters by action prefix, school, result and access point; a cursor that
//! holds while rows are added; roles; CSV export; audited reloads.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Tuesday 1 December 2026 in Paris, available 08:30-17:00.
const CONFIG: &str = concat!(
    borne_test_support::yaml_head!(),
    r#"
teacher_session: { default_minutes: 60, max_minutes: 120 }
schedules:
  day:
    default_mode: locked
    rules:
      - { at: "30 8 * * Mon-Fri", mode: available }
      - { at: "0 17 * * *", mode: locked }
"#,
    borne_test_support::yaml_s1_c1!("day"),
    r#"      - id: c2
        access_points: [ { id: c2-ap1, sim: {} } ]
  - id: s2
    schedule: day
    classrooms:
      - id: c3
        access_points: [ { id: c3-ap1, sim: {} } ]
users:
  - { name: admin, role: admin, token: admin-token-123 }
  - { name: viewer, role: viewer, token: viewer-token-123 }
  - { name: teacher1, role: teacher, classrooms: [c1], token: teacher-token-123 }
  - { name: teacher3, role: teacher, classrooms: [c3], token: teacher3-token-12 }
"#
);

const ADMIN: &str = "admin-token-123";
const VIEWER: &str = "viewer-token-123";
const TEACHER: &str = "teacher-token-123";
const TEACHER3: &str = "teacher3-token-12";

fn rows(page: &Value) -> Vec<Value> {
    page["entries"].as_array().expect("entries").clone()
}

fn field(rows: &[Value], key: &str) -> Vec<String> {
    rows.iter().map(|r| r[key].as_str().unwrap_or("").to_owned()).collect()
}

/// Accepted teacher requests on c1 and c3, a refusal on c1 (locked hours
/// come later), an override on c2.
async fn busy_daemon() -> (TestDaemon, std::sync::Arc<ManualClock>) {
    let clock = ManualClock::at("2026-12-01T09:00:00+01:00");
    let d = TestDaemon::start(CONFIG, clock.clone()).await;
    assert_eq!(d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await.0, 200);
    assert_eq!(d.wifi(TEACHER3, "c3", json!({"wifi": "on"})).await.0, 200);
    let put = json!({"wifi": "on", "reason": "exam"});
    assert_eq!(
        d.send(Method::PUT, ADMIN, "/api/v1/classrooms/c2/override", put)
            .await
            .0,
        200
    );
    d.wait_sim("c1-ap1", borne::policy::Wifi::On).await;
    clock.set("2026-12-01T18:00:00+01:00");
    assert_eq!(d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await.0, 409);
    (d, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_by_action_prefix_result_school_and_ap() {
    let (d, _) = busy_daemon().await;
    let (s, page) = d.get(ADMIN, "/api/v1/audit?action=teacher.&action=override.").await;
    assert_eq!(s, 200, "{page}");
    let r = rows(&page);
    let actions = field(&r, "action");
    assert!(
        actions
            .iter()
            .all(|a| a.starts_with("teacher.") || a.starts_with("override.")),
        "{actions:?}"
    );
    assert_eq!(actions.iter().filter(|a| *a == "teacher.on").count(), 3, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "override.set").count(), 1);

    let (_, page) = d.get(ADMIN, "/api/v1/audit?result=refused").await;
    let r = rows(&page);
    assert_eq!(field(&r, "result"), ["refused: locked"]);
    assert_eq!(field(&r, "classroom"), ["c1"]);

    // School s2 holds c3 only; action= narrows it further.
    let (_, page) = d.get(ADMIN, "/api/v1/audit?school=s2&action=teacher.").await;
    assert_eq!(field(&rows(&page), "classroom"), ["c3"]);
    assert_eq!(d.get(ADMIN, "/api/v1/audit?school=nope").await.0, 404);

    // The reconciler's driver rows name their access point.
    let (_, page) = d.get(ADMIN, "/api/v1/audit?ap=c1-ap1").await;
    let r = rows(&page);
    assert!(!r.is_empty());
    assert!(field(&r, "access_point").iter().all(|a| a == "c1-ap1"));

    // A prefix is literal: `_` and `%` are not wildcards.
    let (_, page) = d.get(ADMIN, "/api/v1/audit?action=teacher_").await;
    assert!(rows(&page).is_empty());
    // Unknown parameters are refused, not ignored.
    let (s, body) = d.get(ADMIN, "/api/v1/audit?actions=teacher.").await;
    assert_eq!((s, body["error"].as_str()), (400, Some("bad_query")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_everything_teachers_their_classrooms() {
    let (d, _) = busy_daemon().await;
    let (s, all) = d.get(VIEWER, "/api/v1/audit?limit=1000").await;
    assert_eq!(s, 200);
    let classrooms = field(&rows(&all), "classroom");
    for c in ["c1", "c2", "c3"] {
        assert!(classrooms.iter().any(|x| x == c), "viewer misses {c}: {classrooms:?}");
    }
    let (s, mine) = d.get(TEACHER, "/api/v1/audit?limit=1000").await;
    assert_eq!(s, 200);
    let classrooms = field(&rows(&mine), "classroom");
    assert!(!classrooms.is_empty());
    assert!(classrooms.iter().all(|c| c == "c1"), "{classrooms:?}");
    // Asking for another classroom's rows yields nothing, not an error
    // that would confirm it exists.
    let (s, other) = d.get(TEACHER, "/api/v1/audit?classroom=c3").await;
    assert_eq!(s, 200);
    assert!(rows(&other).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cursor_holds_while_rows_are_added() {
    let (d, _) = busy_daemon().await;
    let (_, first) = d.get(ADMIN, "/api/v1/audit?limit=2").await;
    let cursor = first["next_cursor"].as_i64().expect("a next page");
    let (_, expected) = d.get(ADMIN, &format!("/api/v1/audit?limit=3&cursor={cursor}")).await;
    // New rows arrive between two pages.
    for _ in 0..5 {
        d.wifi(TEACHER3, "c3", json!({"wifi": "on"})).await;
    }
    let (_, second) = d.get(ADMIN, &format!("/api/v1/audit?limit=3&cursor={cursor}")).await;
    assert_eq!(rows(&second), rows(&expected));
    let first_ids: Vec<i64> = rows(&first).iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(rows(&second).iter().all(|r| r["id"].as_i64().unwrap() < first_ids[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_has_the_same_rows() {
    let (d, _) = busy_daemon().await;
    let (_, page) = d.get(ADMIN, "/api/v1/audit?action=teacher.&limit=1000").await;
    let json_rows = rows(&page);
    let r = d
        .http
        .get(d.url("/api/v1/audit?action=teacher.&sep=semicolon"))
        .bearer_auth(ADMIN)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"),
        "{:?}",
        r.headers()
    );
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "id;at;actor;role;classroom;access_point;action;detail;result;source;via"
    );
    assert_eq!(lines.len() - 1, json_rows.len());
    for (line, row) in lines[1..].iter().zip(&json_rows) {
        let cells: Vec<&str> = line.split(';').collect();
        assert_eq!(cells[0], row["id"].as_i64().unwrap().to_string());
        assert_eq!(cells[2], row["actor"].as_str().unwrap());
        assert_eq!(cells[6], row["action"].as_str().unwrap());
        assert_eq!(cells[8], row["result"].as_str().unwrap());
    }
    // format=csv does the same without the header; a bad sep is a 400.
    let r = d
        .http
        .get(d.url("/api/v1/audit?format=csv"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("id,at,actor,"));
    assert_eq!(d.get(ADMIN, "/api/v1/audit?format=csv&sep=tab").await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_are_audited_with_counts_and_sha256() {
    let clock = ManualClock::at("2026-12-01T09:00:00+01:00");
    let d = TestDaemon::start(CONFIG, clock).await;
    let path = d.dir.path().join("borne.yaml");
    let state = d.dir.path().join("state").display().to_string();
    // c2 and its AP go, school s3 with c4 and c5 comes, one user more.
    let next = CONFIG.replace("STATE_DIR", &state).replace(
        "      - id: c2\n        access_points: [ { id: c2-ap1, sim: {} } ]\n",
        "",
    ) + "";
    let next = next.replace(
        "users:\n",
        "  - id: s3\n    schedule: day\n    classrooms:\n      - id: c4\n        access_points: [ { id: c4-ap1, sim: {} }, { id: c4-ap2, sim: {} } ]\n      - id: c5\n        access_points: [ { id: c5-ap1, sim: {} } ]\nusers:\n  - { name: viewer2, role: viewer, token: viewer2-token-12 }\n",
    );
    std::fs::write(&path, &next).unwrap();
    borne::daemon::reload(&d.core, &path).await.expect("reload");
    std::fs::write(&path, "schools: [").unwrap();
    assert!(borne::daemon::reload(&d.core, &path).await.is_err());

    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(next.as_bytes()))
    };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let page = loop {
        let page = d.get(ADMIN, "/api/v1/audit?action=config.reload").await.1;
        if rows(&page).len() == 2 {
            break page;
        }
        assert!(tokio::time::Instant::now() < deadline, "reload rows: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let r = rows(&page);
    assert_eq!(field(&r, "result"), ["error: invalid", "ok"]);
    assert_eq!(
        r[1]["detail"].as_str().unwrap(),
        format!("schools +1 -0, classrooms +2 -1, access points +3 -1, users +1 -0; sha256 {sha}")
    );
    assert!(
        r[0]["detail"].as_str().unwrap().starts_with("1 error(s), first: "),
        "{}",
        r[0]
    );
}
