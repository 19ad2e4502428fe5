//! Token life cycle (issue 15 §3): `users[].expires`, last use recorded at
//! most once a minute, `GET /api/v1/users` and `borne token list`.

mod common;

use std::process::Command;

use common::{ManualClock, TestDaemon};
use serde_json::Value;

const CONFIG: &str = concat!(
    borne_test_support::yaml_head!(),
    borne_test_support::yaml_one_open_classroom!(),
    r#"
  - id: s2
    schedule: open
    classrooms:
      - { id: c2, access_points: [ { id: c2-ap, sim: {} } ] }
users:
  - { name: city, role: admin, token: city-admin-token }
  - { name: director-s1, role: admin, schools: [s1], token: director-s1-token }
  - { name: teacher-s1, role: teacher, classrooms: [c1], token: teacher-s1-token, expires: 2026-12-18 }
  - { name: teacher-s2, role: teacher, classrooms: [c2], token: teacher-s2-token }
"#
);

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

/// A token is accepted through its `expires` day (school time zone) and
/// refused from the next midnight with 401 `token_expired`, however many
/// times it is tried (a known token is not a guess: no 429).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_with_token_expired() {
    let clock = ManualClock::at("2026-12-18T23:59:00+01:00");
    let d = TestDaemon::start(CONFIG, clock.clone()).await;
    let (s, me) = d.get("teacher-s1-token", "/api/v1/me").await;
    assert_eq!(s, 200, "{me}");
    clock.set("2026-12-19T00:00:00+01:00");
    for _ in 0..15 {
        let (s, e) = d.get("teacher-s1-token", "/api/v1/me").await;
        assert_eq!(s, 401, "{e}");
        assert_eq!(e["error"], "token_expired", "{e}");
        assert!(e["message"].as_str().unwrap().contains("2026-12-18"), "{e}");
    }
    let (s, _) = d.get("teacher-s2-token", "/api/v1/me").await;
    assert_eq!(s, 200, "other tokens unaffected");
    let (_, list) = d.get("city-admin-token", "/api/v1/users").await;
    let t = by_name(&list, "teacher-s1");
    assert_eq!(
        (t["expires"].as_str(), t["expired"].as_bool()),
        (Some("2026-12-18"), Some(true))
    );
    d.stop().await;
}

/// Each token's last use reaches the database at most once a minute (no
/// write per request); `GET /api/v1/users` shows the latest use, scoped to
/// the admin, and `borne token list` reads the database offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_use_is_recorded_at_most_once_a_minute() {
    let clock = ManualClock::at("2026-12-01T08:00:00+01:00");
    let d = TestDaemon::start(CONFIG, clock.clone()).await;
    let state = d.dir.path().join("state");
    let hash = borne::cli::token_sha256("teacher-s1-token");
    let stored = |state: &std::path::Path| {
        borne::store::sqlite::token_uses_offline(state)
            .unwrap()
            .into_iter()
            .find(|(h, _)| *h == hash)
            .map(|(_, t)| t.to_rfc3339())
    };
    let (s, _) = d.get("teacher-s1-token", "/api/v1/me").await;
    assert_eq!(s, 200);
    d.core.writer().flush().await.unwrap();
    assert_eq!(stored(&state).as_deref(), Some("2026-12-01T07:00:00+00:00"));

    // 40 requests over the next 59 s: no write.
    for i in 0..40 {
        clock.set(&format!("2026-12-01T08:00:{:02}+01:00", 1 + i * 58 / 39));
        let (s, _) = d.get("teacher-s1-token", "/api/v1/classrooms").await;
        assert_eq!(s, 200);
    }
    d.core.writer().flush().await.unwrap();
    assert_eq!(stored(&state).as_deref(), Some("2026-12-01T07:00:00+00:00"));
    // The API shows the latest use all the same.
    let (s, list) = d.get("city-admin-token", "/api/v1/users").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(by_name(&list, "teacher-s1")["last_used"], "2026-12-01T08:00:59+01:00");
    assert_eq!(by_name(&list, "teacher-s2")["last_used"], Value::Null);
    assert_eq!(
        by_name(&list, "director-s1")["scope"],
        serde_json::json!({"schools": ["s1"], "classrooms": []})
    );
    assert_eq!(by_name(&list, "city")["scope"], Value::Null);

    // A minute after the last write: written again.
    clock.set("2026-12-01T08:01:00+01:00");
    d.get("teacher-s1-token", "/api/v1/me").await;
    d.core.writer().flush().await.unwrap();
    assert_eq!(stored(&state).as_deref(), Some("2026-12-01T07:01:00+00:00"));

    // An admin limited to a school sees only its school's users; a teacher
    // may not list users.
    let (s, list) = d.get("director-s1-token", "/api/v1/users").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["director-s1", "teacher-s1"]);
    let (s, e) = d.get("teacher-s1-token", "/api/v1/users").await;
    assert_eq!((s, e["error"].as_str()), (403, Some("forbidden")));

    // `borne token list`, offline, from the same configuration and database.
    let path = d.dir.path().join("borne.yaml");
    std::fs::write(&path, CONFIG.replace("STATE_DIR", &state.display().to_string())).unwrap();
    let out = Command::new(common::borne_bin())
        .args(["token", "list", "--json", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(by_name(&v, "teacher-s1")["last_used"], "2026-12-01T08:01:00+01:00");
    assert_eq!(by_name(&v, "teacher-s2")["last_used"], Value::Null);
    assert_eq!(by_name(&v, "teacher-s1")["expires"], "2026-12-18");
    let out = Command::new(common::borne_bin())
        .args(["token", "list", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("teacher-s1")).unwrap();
    assert!(
        line.contains("classrooms c1") && line.contains("2026-12-18") && line.contains("2026-12-01T08:01:00+01:00"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("teacher-s2") && l.ends_with("never")),
        "{text}"
    );
    d.stop().await;
}
