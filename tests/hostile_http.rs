//! Issue 12 against the daemon in process, on loopback: hostile or runaway
//! clients with and without valid tokens. The failure limiter never
//! refuses a valid token and counts per address and in total; writes are
//! limited per user; `/metrics` is IT's; the Bearer scheme is
//! case-insensitive; a wrong type in a body is `bad_body`.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const CONFIG: &str = r#"
demo: true
timezone: Europe/Paris
state_dir: STATE_DIR
trusted_proxies: [127.0.0.1]
schedules:
  open: { default_mode: available, rules: [] }
schools:
  - id: s1
    schedule: open
    classrooms:
      - { id: c1, access_points: [ { id: c1-ap1, sim: {} } ] }
      - { id: c2, access_points: [ { id: c2-ap1, sim: {} } ] }
users:
  - { name: admin, role: admin, token: admin-token-123 }
  - { name: viewer, role: viewer, token: viewer-token-123 }
  - { name: teacher1, role: teacher, classrooms: [c1], token: teacher-token-123 }
  - { name: teacher2, role: teacher, classrooms: [c2], token: teacher2-token-12 }
limits:
  writes_per_minute: 5
  failed_auth_total: 40
"#;

const ADMIN: &str = "admin-token-123";
const VIEWER: &str = "viewer-token-123";
const TEACHER: &str = "teacher-token-123";
const TEACHER2: &str = "teacher2-token-12";

async fn daemon() -> TestDaemon {
    TestDaemon::start(CONFIG, ManualClock::at("2026-12-01T10:00:00+01:00")).await
}

/// GET `path` with an `Authorization` value and the client address a
/// trusted proxy would forward.
async fn get_as(d: &TestDaemon, authorization: &str, client: &str, path: &str) -> reqwest::Response {
    d.http
        .get(d.url(path))
        .header("authorization", authorization)
        .header("x-forwarded-for", client)
        .send()
        .await
        .expect("request")
}

/// A pupil's guesses block the school's address for failing requests, but
/// its teacher's valid token, API and event stream alike, is still served
/// from that same address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_address_still_serves_valid_tokens() {
    let d = daemon().await;
    let school = "203.0.113.10";
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(
            get_as(&d, &format!("Bearer guess-{i}"), school, "/api/v1/me")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses[..9], [401; 9], "{statuses:?}");
    assert_eq!(statuses[9..], [429; 3], "{statuses:?}");

    let r = get_as(&d, &format!("Bearer {TEACHER}"), school, "/api/v1/me").await;
    assert_eq!(r.status(), 200, "valid token refused from a blocked address");
    let r = get_as(&d, &format!("Bearer {TEACHER}"), school, "/api/v1/events").await;
    assert_eq!(r.status(), 200, "event stream refused from a blocked address");
    drop(r);
    // Writes too.
    let r = d
        .http
        .post(d.url("/api/v1/classrooms/c1/wifi"))
        .bearer_auth(TEACHER)
        .header("x-forwarded-for", school)
        .json(&json!({"wifi": "on"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Another address is not blocked by this one.
    let r = get_as(&d, "Bearer nope", "203.0.113.11", "/api/v1/me").await;
    assert_eq!(r.status(), 401);
}

/// Failures from ever-new addresses meet the total limit (40 a minute
/// here): then every failing request gets 429, and valid tokens pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_many_addresses_meet_the_total_limit() {
    let d = daemon().await;
    let mut first_429 = None;
    for i in 0..60 {
        let r = get_as(&d, "Bearer guess", &format!("198.51.100.{i}"), "/api/v1/me").await;
        if r.status() == 429 && first_429.is_none() {
            first_429 = Some(i);
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(first_429, Some(39), "the 40th failure overall is the first refused");
    let r = get_as(&d, "Bearer guess", "192.0.2.99", "/api/v1/me").await;
    assert_eq!(r.status(), 429, "a new address failing is refused too");
    let r = get_as(&d, &format!("Bearer {VIEWER}"), "192.0.2.99", "/api/v1/me").await;
    assert_eq!(r.status(), 200);
}

/// Issue 12, item 11: `BEARER` and `bearer` are the same scheme.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    let d = daemon().await;
    for scheme in ["Bearer", "bearer", "BEARER", "BeArEr"] {
        let r = get_as(&d, &format!("{scheme} {TEACHER}"), "192.0.2.1", "/api/v1/me").await;
        assert_eq!(r.status(), 200, "{scheme}");
    }
    let r = get_as(
        &d,
        &format!("Bearer {}", TEACHER.to_uppercase()),
        "192.0.2.1",
        "/api/v1/me",
    )
    .await;
    assert_eq!(r.status(), 401, "the token itself is case-sensitive");
}

/// Issue 12, item 4: a user's writes past `writes_per_minute` (5 here) get
/// 429 with Retry-After and the JSON error shape; reads, and other users'
/// writes, go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_the_per_user_limit_get_429() {
    let d = daemon().await;
    for i in 0..5 {
        let wifi = if i % 2 == 0 { "on" } else { "off" };
        let (status, body) = d.wifi(TEACHER, "c1", json!({"wifi": wifi})).await;
        assert_eq!(status, 200, "write {i}: {body}");
    }
    let r = d
        .http
        .post(d.url("/api/v1/classrooms/c1/wifi"))
        .bearer_auth(TEACHER)
        .json(&json!({"wifi": "on"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry), "Retry-After {retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "too_many_writes", "{v}");
    assert!(v["message"].as_str().unwrap().contains("5 a minute"), "{v}");

    assert_eq!(
        d.get(TEACHER, "/api/v1/classrooms/c1").await.0,
        200,
        "reads are not limited"
    );
    assert_eq!(
        d.wifi(TEACHER2, "c2", json!({"wifi": "on"})).await.0,
        200,
        "another user"
    );
    // The refused write was not applied nor audited.
    let (_, audit) = d.get(ADMIN, "/api/v1/audit?user=teacher1").await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 5, "{audit}");
}

/// Issue 12, item 7: `/metrics` is for viewers and admins, not teachers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_refuse_a_teacher_token() {
    let d = daemon().await;
    let r = d.http.get(d.url("/metrics")).bearer_auth(TEACHER).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "forbidden");
    for token in [VIEWER, ADMIN] {
        let r = d.http.get(d.url("/metrics")).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

/// Issue 12, item 11: well-formed JSON of the wrong shape is `bad_body`,
/// malformed JSON is `bad_json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_type_in_the_body_is_bad_body() {
    let d = daemon().await;
    for body in [
        json!({"wifi": true}),
        json!({"wifi": "maybe"}),
        json!({"wifi": "on", "minutes": "ten"}),
        json!([1]),
    ] {
        let (status, v) = d
            .send(Method::POST, TEACHER, "/api/v1/classrooms/c1/wifi", body.clone())
            .await;
        assert_eq!((status, v["error"].as_str()), (400, Some("bad_body")), "{body}: {v}");
    }
    let r = d
        .http
        .post(d.url("/api/v1/classrooms/c1/wifi"))
        .bearer_auth(TEACHER)
        .header("content-type", "application/json")
        .body("{\"wifi\": ")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "bad_json", "{v}");
}
