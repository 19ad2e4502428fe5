//! Issue 12 against the daemon in process, on loopback: hostile or runaway
//! clients with and without valid tokens. The failure limiter never
//! refuses a valid token and counts per address and in total; writes are
//! limited per user; `/metrics` is IT's; the Bearer scheme is
//! case-insensitive; a wrong type in a body is `bad_body`.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const CONFIG: &str = concat!(
    borne_test_support::yaml_head!(),
    borne_test_support::yaml_always_available!(),
    r#"
trusted_proxies: [127.0.0.1]
schools:
  - id: s1
    schedule: open
    classrooms:
      - { id: c1, access_points: [ { id: c1-ap1, sim: {} } ] }
      - { id: c2, access_points: [ { id: c2-ap1, sim: {} } ] }
  - id: s2
    schedule: open
    classrooms:
      - { id: c3, access_points: [ { id: c3-ap1, sim: {} } ] }
users:
  - { name: admin-s2, role: admin, schools: [s2], token: admin-s2-token-1 }
  - { name: admin, role: admin, token: admin-token-123 }
  - { name: viewer, role: viewer, token: viewer-token-123 }
  - { name: teacher1, role: teacher, classrooms: [c1], token: teacher-token-123 }
  - { name: teacher2, role: teacher, classrooms: [c2], token: teacher2-token-12 }
limits:
  writes_per_minute: 5
  failed_auth_total: 40
"#
);

const ADMIN: &str = "admin-token-123";
const VIEWER: &str = "viewer-token-123";
const TEACHER: &str = "teacher-token-123";
const TEACHER2: &str = "teacher2-token-12";
const ADMIN_S2: &str = "admin-s2-token-1";

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
    let requests = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("teacher.")))
        .count();
    assert_eq!(requests, 5, "{audit}");
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

/// Reads an event stream until `done` holds for what was read, the stream
/// ends (`true`), or `limit` passes (`false`).
async fn read_events(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
    limit: std::time::Duration,
    done: impl Fn(&str) -> bool,
) -> bool {
    use futures_util::StreamExt;
    tokio::time::timeout(limit, async {
        loop {
            match stream.next().await {
                Some(Ok(b)) => buf.push_str(&String::from_utf8_lossy(&b)),
                _ => return true,
            }
            if done(buf) {
                return false;
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// Issue 12, item 6: after a reload that removes teacher1 and moves
/// teacher2 from c2 to c1, teacher1's open event stream ends without
/// delivering anything more, and teacher2's shows c1 and no longer c2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_ends_the_streams_of_removed_users_and_rescopes_the_others() {
    let d = daemon().await;
    let open = |token: &'static str| {
        let r = d.http.get(d.url("/api/v1/events")).bearer_auth(token).send();
        async move {
            let r = r.await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes_stream()
        }
    };
    let mut s1 = open(TEACHER).await;
    let mut s2 = open(TEACHER2).await;
    let (mut b1, mut b2) = (String::new(), String::new());
    let snapshot = std::time::Duration::from_secs(5);
    read_events(&mut s1, &mut b1, snapshot, |b| b.contains("\"id\":\"c1\"")).await;
    read_events(&mut s2, &mut b2, snapshot, |b| b.contains("\"id\":\"c2\"")).await;
    b2.clear();

    let reloaded = CONFIG
        .replace(
            "  - { name: teacher1, role: teacher, classrooms: [c1], token: teacher-token-123 }\n",
            "",
        )
        .replace("classrooms: [c2], token: teacher2", "classrooms: [c1], token: teacher2");
    assert_ne!(reloaded, CONFIG);
    d.core
        .replace_config(std::sync::Arc::new(load_config(&reloaded, d.dir.path())))
        .await
        .expect("reload stored");
    for (classroom, reason) in [("c2", "secret-c2-reason"), ("c1", "visible-c1-reason")] {
        let (status, body) = d
            .send(
                Method::PUT,
                ADMIN,
                &format!("/api/v1/classrooms/{classroom}/override"),
                json!({"wifi": "off", "reason": reason}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let ended = read_events(&mut s1, &mut b1, std::time::Duration::from_secs(10), |_| false).await;
    assert!(ended, "the removed user's stream is still open");
    assert!(
        !b1.contains("visible-c1-reason"),
        "the removed user still got events: {b1}"
    );

    read_events(&mut s2, &mut b2, std::time::Duration::from_secs(10), |b| {
        b.contains("visible-c1-reason")
    })
    .await;
    assert!(
        b2.contains("visible-c1-reason"),
        "the re-scoped user does not see c1: {b2}"
    );
    assert!(
        !b2.contains("secret-c2-reason"),
        "the re-scoped user still sees c2: {b2}"
    );
}

/// Issue 12, item 8: an admin limited to school s2 asking for the whole
/// city is refused without the refusal naming any classroom of s1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_never_names_a_classroom_outside_the_scope() {
    let d = daemon().await;
    let (status, v) = d
        .send(
            Method::POST,
            ADMIN_S2,
            "/api/v1/overrides",
            json!({"scope": {"all": true}, "wifi": "off", "reason": "exam"}),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    let text = v.to_string();
    for hidden in ["c1", "c2", "s1"] {
        assert!(!text.contains(hidden), "the refusal names {hidden}: {text}");
    }
    // Its own school is fine.
    let (status, v) = d
        .send(
            Method::POST,
            ADMIN_S2,
            "/api/v1/overrides",
            json!({"scope": {"school": "s2"}, "wifi": "off", "reason": "exam"}),
        )
        .await;
    assert_eq!((status, v["count"].as_u64()), (200, Some(1)), "{v}");
}

/// Issue 12, item 9: `until` is at most `limits.override_max_days` (400)
/// ahead, and a leap second is echoed as plain RFC 3339 (the next second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_until_is_bounded_and_echoed_as_rfc_3339() {
    let d = daemon().await;
    let put = |until: &str| {
        d.send(
            Method::PUT,
            ADMIN,
            "/api/v1/classrooms/c1/override",
            json!({"wifi": "off", "until": until, "reason": "exam"}),
        )
    };
    for far in ["9999-12-31T23:59:59Z", "2028-02-01T00:00:00Z"] {
        let (status, v) = put(far).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (422, Some("unprocessable")),
            "{far}: {v}"
        );
        assert!(v["message"].as_str().unwrap().contains("400 days"), "{v}");
    }
    let (status, v) = put("2026-12-01T10:00:60Z").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["override"]["until"], "2026-12-01T11:01:00+01:00", "{v}");
    let (status, v) = put("2027-06-01T12:00:00+02:00").await;
    assert_eq!(status, 200, "{v}");
}

/// Issue 12, item 10: a reason must have a visible character and no
/// control character.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_or_control_character_reasons_are_refused() {
    let d = daemon().await;
    for reason in [
        "\u{200B}".repeat(500),
        "\u{FEFF} \u{2060}".into(),
        "two\nlines".into(),
        "rtl\u{202E}txt".into(),
    ] {
        let (status, v) = d
            .send(
                Method::PUT,
                ADMIN,
                "/api/v1/classrooms/c1/override",
                json!({"wifi": "off", "reason": reason}),
            )
            .await;
        assert_eq!(
            (status, v["error"].as_str()),
            (422, Some("unprocessable")),
            "{reason:?}: {v}"
        );
    }
    let (status, v) = d
        .send(
            Method::POST,
            ADMIN,
            "/api/v1/overrides",
            json!({"scope": {"all": true}, "wifi": "off", "reason": "\u{200B}\u{200C}"}),
        )
        .await;
    assert_eq!(status, 422, "bulk too: {v}");
}

/// Issue 12, item 4: a token alternating on and off 20 times as fast as it
/// can does not flap the access point: with the default
/// `reconciler.min_switch_interval_seconds` (2), the driver switches it at
/// most once per 2 s, and ends in the state asked last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_requests_do_not_flap_the_access_point() {
    let config = CONFIG.replace("writes_per_minute: 5", "writes_per_minute: 1000");
    let d = TestDaemon::start(&config, ManualClock::at("2026-12-01T10:00:00+01:00")).await;
    d.wait_sim("c1-ap1", borne::policy::Wifi::Off).await;
    let before = d.sim.applied("c1-ap1");
    let start = std::time::Instant::now();
    for i in 0..20 {
        let wifi = if i % 2 == 0 { "on" } else { "off" };
        let (status, v) = d.wifi(TEACHER, "c1", json!({"wifi": wifi})).await;
        assert_eq!(status, 200, "{v}");
    }
    // The last request asked for off: wait until the AP has settled there
    // and the interval that followed the last switch has passed.
    d.wait_sim("c1-ap1", borne::policy::Wifi::Off).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let switches = d.sim.applied("c1-ap1") - before;
    let allowed = 1 + start.elapsed().as_secs() / 2;
    assert!(
        switches <= allowed,
        "{switches} switches in {:?} (at most {allowed} allowed)",
        start.elapsed()
    );
    assert_eq!(d.sim.state("c1-ap1"), Some(borne::policy::Wifi::Off));
}
