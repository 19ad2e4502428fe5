//! HTTP API v1 against the real daemon on a loopback port: roles, teacher
//! requests, locks, overrides, audit, live events, errors and brute force.

use borne_test_support::daemon as common;

use std::time::Duration;

use borne::policy::Wifi;
use common::*;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

/// Tuesday 1 December 2026 in Paris: available 08:30-17:00, locked otherwise;
/// school s2 is on holiday. The core's unit tests run on the same file.
const CONFIG: &str = borne_test_support::fixtures::TWO_SCHOOLS;

const ADMIN: &str = "admin-token-123";
const VIEWER: &str = "viewer-token-123";
const TEACHER: &str = "teacher-token-123";
const TEACHER3: &str = "teacher3-token-12";

async fn daemon() -> (TestDaemon, std::sync::Arc<ManualClock>) {
    let clock = ManualClock::at("2026-12-01T09:00:00+01:00");
    (TestDaemon::start(CONFIG, clock.clone()).await, clock)
}

fn ids(list: &Value) -> Vec<String> {
    list["classrooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Each role sees and may do exactly what it should.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_see_and_do_what_they_may() {
    let (d, _) = daemon().await;
    assert_eq!(ids(&d.get(TEACHER, "/api/v1/classrooms").await.1), ["c1"]);
    assert_eq!(ids(&d.get(ADMIN, "/api/v1/classrooms").await.1), ["c1", "c2", "c3"]);
    assert_eq!(ids(&d.get(VIEWER, "/api/v1/classrooms").await.1), ["c1", "c2", "c3"]);
    assert_eq!(ids(&d.get("admin-s2-token", "/api/v1/classrooms").await.1), ["c3"]);

    // A teacher cannot see, switch or override another classroom (404: ids are not probed).
    assert_eq!(d.get(TEACHER, "/api/v1/classrooms/c2").await.0, 404);
    assert_eq!(d.wifi(TEACHER, "c2", json!({"wifi": "on"})).await.0, 404);
    let put = json!({"wifi": "off", "reason": "test"});
    assert_eq!(
        d.send(Method::PUT, TEACHER, "/api/v1/classrooms/c1/override", put.clone())
            .await
            .0,
        403
    );
    // A viewer reads everything and changes nothing.
    assert_eq!(d.get(VIEWER, "/api/v1/classrooms/c2").await.0, 200);
    assert_eq!(d.wifi(VIEWER, "c1", json!({"wifi": "on"})).await.0, 403);
    assert_eq!(
        d.send(Method::PUT, VIEWER, "/api/v1/classrooms/c1/override", put.clone())
            .await
            .0,
        403
    );
    assert_eq!(d.get(VIEWER, "/api/v1/access-points").await.0, 200);
    // The audit log is the steering committee's: viewers read it (issue 16).
    assert_eq!(d.get(VIEWER, "/api/v1/audit").await.0, 200);
    assert_eq!(d.get(TEACHER, "/api/v1/access-points").await.0, 403);
    // A school-limited admin overrides its school only.
    assert_eq!(
        d.send(
            Method::PUT,
            "admin-s2-token",
            "/api/v1/classrooms/c1/override",
            put.clone()
        )
        .await
        .0,
        404
    );
    let bulk = json!({"scope": {"all": true}, "wifi": "off", "reason": "x"});
    assert_eq!(
        d.send(Method::POST, "admin-s2-token", "/api/v1/overrides", bulk)
            .await
            .0,
        403
    );
    // Admin may switch as a teacher and override.
    assert_eq!(d.wifi(ADMIN, "c2", json!({"wifi": "on"})).await.0, 200);
    assert_eq!(
        d.send(Method::PUT, ADMIN, "/api/v1/classrooms/c1/override", put)
            .await
            .0,
        200
    );
    // Metrics need a token.
    let r = d.http.get(d.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = d.http.get(d.url("/metrics")).bearer_auth(VIEWER).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A teacher switches on (default and explicit minutes), extends, and off;
/// the AP follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teacher_switches_on_extends_and_off() {
    let (d, clock) = daemon().await;
    let (s, body) = d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["wifi"], "on");
    assert_eq!(body["reason"], "teacher");
    assert_eq!(body["until"], "2026-12-01T10:00:00+01:00", "default 60 minutes");
    d.wait_sim("c1-ap1", Wifi::On).await;

    clock.set("2026-12-01T09:50:00+01:00");
    let (s, body) = d.wifi(TEACHER, "c1", json!({"wifi": "on", "minutes": 45})).await;
    assert_eq!(s, 200);
    assert_eq!(body["until"], "2026-12-01T10:35:00+01:00", "extended from now");
    // Asking for less never shortens it.
    let (_, body) = d.wifi(TEACHER, "c1", json!({"wifi": "on", "minutes": 10})).await;
    assert_eq!(body["until"], "2026-12-01T10:35:00+01:00");

    // A session never outlives the school day.
    clock.set("2026-12-01T16:30:00+01:00");
    let (_, body) = d.wifi(TEACHER, "c1", json!({"wifi": "on", "minutes": 120})).await;
    assert_eq!(body["until"], "2026-12-01T17:00:00+01:00");

    let (s, body) = d.wifi(TEACHER, "c1", json!({"wifi": "off"})).await;
    assert_eq!(s, 200);
    assert_eq!(body["wifi"], "off");
    d.wait_sim("c1-ap1", Wifi::Off).await;

    let (s, body) = d.wifi(TEACHER, "c1", json!({"wifi": "on", "minutes": 121})).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"], "minutes_out_of_range");
}

/// Locked classrooms refuse with 409 and the instant they unlock, skipping
/// closed days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_classroom_refuses_with_until() {
    let (d, clock) = daemon().await;
    clock.set("2026-12-01T18:00:00+01:00");
    let (s, body) = d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["error"], "locked");
    assert_eq!(
        body["until"], "2026-12-02T08:30:00+01:00",
        "in the classroom's time zone"
    );
    // On holiday until Friday: unlocks the next Monday morning.
    let (s, body) = d.wifi(TEACHER3, "c3", json!({"wifi": "on"})).await;
    assert_eq!(s, 409);
    assert_eq!(body["until"], "2026-12-07T08:30:00+01:00");
    let (_, st) = d.get(TEACHER3, "/api/v1/classrooms/c3").await;
    assert_eq!(st["closed_day"], true);
    assert_eq!(st["reason"], "locked");
}

/// An IT override beats the teacher: it switches the AP, refuses the
/// teacher with 409 naming it, and clearing it restores the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_beats_teacher() {
    let (d, _) = daemon().await;
    assert_eq!(d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await.0, 200);
    d.wait_sim("c1-ap1", Wifi::On).await;
    let (s, body) = d
        .send(
            Method::PUT,
            ADMIN,
            "/api/v1/classrooms/c1/override",
            json!({"wifi": "off", "until": null, "reason": "exam"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["reason"], "override");
    assert_eq!(body["override"]["by"], "admin");
    d.wait_sim("c1-ap1", Wifi::Off).await;
    let (s, body) = d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await;
    assert_eq!(s, 409);
    assert_eq!(body["error"], "overridden");
    assert!(body["message"].as_str().unwrap().contains("exam"));
    let (s, body) = d
        .send(Method::DELETE, ADMIN, "/api/v1/classrooms/c1/override", Value::Null)
        .await;
    assert_eq!(s, 200);
    assert_eq!(body["reason"], "teacher");
    d.wait_sim("c1-ap1", Wifi::On).await;
}

/// A school override covers all of its classrooms at once and only them;
/// clearing by school removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_school_override() {
    let (d, _) = daemon().await;
    let (s, body) = d
        .send(
            Method::POST,
            ADMIN,
            "/api/v1/overrides",
            json!({"scope": {"school": "s1"}, "wifi": "on", "until": "2026-12-01T12:00:00+01:00", "reason": "ENT day"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["count"], 2);
    d.wait_sim("c1-ap1", Wifi::On).await;
    d.wait_sim("c2-ap1", Wifi::On).await;
    let (_, c3) = d.get(ADMIN, "/api/v1/classrooms/c3").await;
    assert_eq!(c3["override"], Value::Null);
    let (s, body) = d
        .send(Method::DELETE, ADMIN, "/api/v1/overrides?school=s1", Value::Null)
        .await;
    assert_eq!(s, 200);
    assert_eq!(body["count"], 2);
    d.wait_sim("c1-ap1", Wifi::Off).await;
    let (s, _) = d
        .send(
            Method::POST,
            ADMIN,
            "/api/v1/overrides",
            json!({"scope": {"school": "nope"}, "wifi": "on", "reason": "x"}),
        )
        .await;
    assert_eq!(s, 404);
}

/// Accepted and refused requests are both in the audit log, with user,
/// role, source and result; never a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_accepted_and_refused_requests() {
    let (d, clock) = daemon().await;
    assert_eq!(d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await.0, 200);
    clock.set("2026-12-01T20:00:00+01:00");
    assert_eq!(d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await.0, 409);
    let (s, page) = d.get(ADMIN, "/api/v1/audit?user=teacher1&limit=1").await;
    assert_eq!(s, 200);
    let e = &page["entries"][0];
    assert_eq!(e["actor"], "teacher1");
    assert_eq!(e["role"], "teacher");
    assert_eq!(e["classroom"], "c1");
    assert_eq!(e["result"], "refused: locked");
    assert_eq!(e["source"], "127.0.0.1");
    let cursor = page["next_cursor"].as_i64().expect("a next page");
    let (_, page) = d
        .get(ADMIN, &format!("/api/v1/audit?user=teacher1&limit=1&cursor={cursor}"))
        .await;
    assert_eq!(page["entries"][0]["result"], "accepted");
    assert_eq!(page["entries"][0]["action"], "teacher.on");
    let (_, all) = d.get(ADMIN, "/api/v1/audit?limit=1000").await;
    assert!(!all.to_string().contains(TEACHER), "a token leaked into the audit log");
}

/// The event stream delivers a classroom's change within 100 ms of the
/// request that caused it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_deliver_a_change_within_100_ms() {
    let (d, _) = daemon().await;
    let r = d
        .http
        .get(d.url("/api/v1/events"))
        .bearer_auth(TEACHER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut stream = r.bytes_stream();
    let mut buf = String::new();
    // The initial snapshot: one event for the one visible classroom.
    while !buf.contains("\n\n") {
        buf.push_str(&String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()));
    }
    assert!(buf.contains("\"id\":\"c1\""));
    buf.clear();
    let sent = std::time::Instant::now();
    let (s, _) = d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await;
    assert_eq!(s, 200);
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            buf.push_str(&String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()));
            if buf.contains("\"reason\":\"teacher\"") {
                return std::time::Instant::now();
            }
        }
    })
    .await
    .expect("event delivered");
    let latency = seen.duration_since(sent);
    assert!(latency < Duration::from_millis(100), "event after {latency:?}");
    assert!(!buf.contains("\"id\":\"c2\""), "teacher must not see c2");
}

async fn raw(
    d: &TestDaemon,
    method: Method,
    path: &str,
    token: Option<&str>,
    ctype: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut r = d.http.request(method, d.url(path)).body(body.to_owned());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(c) = ctype {
        r = r.header("content-type", c);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} answer is not JSON: {text}"));
    (status, v)
}

/// (expected status, method, path, token, content type, body)
type ErrorCase = (
    u16,
    Method,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    String,
);

/// Every error status answers with the one JSON shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_the_json_shape() {
    let (d, clock) = daemon().await;
    let json_type = Some("application/json");
    let cases: Vec<ErrorCase> = vec![
        (
            400,
            Method::POST,
            "/api/v1/classrooms/c1/wifi",
            Some(TEACHER),
            json_type,
            "{not json".into(),
        ),
        (
            400,
            Method::POST,
            "/api/v1/classrooms/c1/wifi",
            Some(TEACHER),
            json_type,
            r#"{"wifi":"on","extra":1}"#.into(),
        ),
        (
            400,
            Method::POST,
            "/api/v1/classrooms/c1/wifi",
            Some(TEACHER),
            json_type,
            r#"{"wifi":"maybe"}"#.into(),
        ),
        (
            400,
            Method::GET,
            "/api/v1/classrooms/BAD..ID",
            Some(TEACHER),
            None,
            String::new(),
        ),
        (
            400,
            Method::GET,
            "/api/v1/classrooms/%FF",
            Some(TEACHER),
            None,
            String::new(),
        ),
        (401, Method::GET, "/api/v1/classrooms", None, None, String::new()),
        (
            401,
            Method::GET,
            "/api/v1/classrooms",
            Some("wrong-token"),
            None,
            String::new(),
        ),
        (
            403,
            Method::POST,
            "/api/v1/classrooms/c1/wifi",
            Some(VIEWER),
            json_type,
            r#"{"wifi":"on"}"#.into(),
        ),
        (
            404,
            Method::GET,
            "/api/v1/classrooms/nope",
            Some(TEACHER),
            None,
            String::new(),
        ),
        (
            404,
            Method::GET,
            "/api/v1/nothing-here",
            Some(TEACHER),
            None,
            String::new(),
        ),
        (
            405,
            Method::PATCH,
            "/api/v1/classrooms",
            Some(TEACHER),
            None,
            String::new(),
        ),
        (
            413,
            Method::POST,
            "/api/v1/classrooms/c1/wifi",
            Some(TEACHER),
            json_type,
            format!(r#"{{"wifi":"on","pad":"{}"}}"#, "x".repeat(20_000)),
        ),
        (
            415,
            Method::POST,
            "/api/v1/classrooms/c1/wifi",
            Some(TEACHER),
            Some("text/plain"),
            r#"{"wifi":"on"}"#.into(),
        ),
        (
            422,
            Method::PUT,
            "/api/v1/classrooms/c1/override",
            Some(ADMIN),
            json_type,
            r#"{"wifi":"off","reason":"  "}"#.into(),
        ),
        (
            422,
            Method::PUT,
            "/api/v1/classrooms/c1/override",
            Some(ADMIN),
            json_type,
            r#"{"wifi":"off","reason":"x","until":"2020-01-01T00:00:00Z"}"#.into(),
        ),
    ];
    for (want, method, path, token, ctype, body) in cases {
        let (status, v) = raw(&d, method.clone(), path, token, ctype, &body).await;
        assert_eq!(status, want, "{method} {path}: {v}");
        assert!(
            v["error"].is_string() && v["message"].is_string(),
            "{method} {path}: {v}"
        );
    }
    clock.set("2026-12-01T20:00:00+01:00");
    let (status, v) = raw(
        &d,
        Method::POST,
        "/api/v1/classrooms/c1/wifi",
        Some(TEACHER),
        json_type,
        r#"{"wifi":"on"}"#,
    )
    .await;
    assert_eq!((status, v["error"].as_str()), (409, Some("locked")));
}

/// Guessing tokens from one address gets 429 with Retry-After; the right
/// token from the same address is still served (issue 12: a school is one
/// NAT address, one pupil must not lock its teachers out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_gets_429() {
    let (d, _) = daemon().await;
    let mut last = 0;
    for i in 0..12 {
        let r = d
            .http
            .get(d.url("/api/v1/classrooms"))
            .bearer_auth(format!("guess-{i}"))
            .send()
            .await
            .unwrap();
        last = r.status().as_u16();
        if last == 429 {
            assert!(r.headers().contains_key("retry-after"));
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"], "too_many_attempts");
            break;
        }
        assert_eq!(last, 401);
    }
    assert_eq!(last, 429, "never rate limited");
    let r = d
        .http
        .get(d.url("/api/v1/classrooms"))
        .bearer_auth(TEACHER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a valid token is never refused by the failure limiter");
}

/// The OpenAPI document lists exactly the routes the router serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_matches_the_router() {
    let (d, _) = daemon().await;
    let (s, doc) = d.get(ADMIN, "/api/openapi.json").await;
    assert_eq!(s, 200);
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut listed: Vec<(String, String)> = borne::api::openapi::OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    listed.sort();
    assert_eq!(documented, listed);
    // Every documented operation is routed (answers something else than
    // "no such route" / "method not allowed"), and a method the document
    // does not list is not.
    for (method, path) in &listed {
        let url = path.replace("{id}", "c1");
        let m: Method = method.to_uppercase().parse().unwrap();
        let r = d
            .http
            .request(m.clone(), d.url(&url))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body("{}")
            .send();
        let r = tokio::time::timeout(Duration::from_secs(5), r)
            .await
            .expect("answers")
            .unwrap();
        let status = r.status().as_u16();
        assert!(
            status != 404 && status != 405,
            "{method} {path} is documented but answers {status}"
        );
    }
    for path in ["/api/v1/classrooms", "/api/v1/audit", "/api/v1/access-points"] {
        let r = d
            .http
            .request(Method::PATCH, d.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "PATCH {path}");
    }
}
