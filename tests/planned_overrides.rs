//! Planned overrides through the API (issue 16 §2): `from` in the override
//! requests, `planned_overrides` in the status, cancellation with
//! `DELETE ...?from=`, a restart in between, and the planner waking by
//! itself at the start.

use borne_test_support::daemon as common;

use std::sync::Arc;
use std::time::Instant;

use borne::core::Clock;
use borne::policy::Wifi;
use borne_test_support::fixtures::{ADMIN_TOKEN, FAST_RETRIES, HEAD, SCHOOL_DAY, TEACHER_TOKEN, users};
use chrono::{DateTime, Utc};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Tuesday 1 December 2026 in Paris (see `SCHOOL_DAY`): available until
/// 10:00, `on` 10:00–11:00.
fn config() -> String {
    [
        HEAD,
        FAST_RETRIES,
        SCHOOL_DAY,
        r#"schools:
  - id: s1
    schedule: day
    classrooms:
      - { id: c1, access_points: [ { id: c1-ap1, sim: {} } ] }
      - { id: c2, access_points: [ { id: c2-ap1, sim: {} } ] }
"#,
        &users("classrooms: [c1]"),
    ]
    .concat()
}

/// A clock that starts at a chosen instant and runs with real time: the
/// planner must wake by itself, nobody moves it.
#[derive(Debug)]
struct RunningClock {
    start: DateTime<Utc>,
    started: Instant,
}

impl Clock for RunningClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

fn secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The API: planned, listed, refused when `from` is not before `until`
/// (400), cancelled by its start (then 404), kept across a restart, and a
/// bulk plan cancelled by scope and start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_overrides_through_the_api_and_a_restart() {
    let clock = ManualClock::at("2026-12-01T09:00:00+01:00");
    let d = TestDaemon::start(&config(), clock.clone()).await;
    let put = |body: Value| {
        let d = &d;
        async move {
            d.send(Method::PUT, ADMIN_TOKEN, "/api/v1/classrooms/c1/override", body)
                .await
        }
    };
    let (s, body) = put(json!({"wifi": "on", "from": "2026-12-01T16:00:00+01:00", "until": "2026-12-01T14:00:00+01:00", "reason": "atelier"})).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("bad_from")), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("must be before until"),
        "{body}"
    );
    let (s, body) = put(json!({"wifi": "on", "from": "2026-12-01T14:00:00+01:00", "until": "2026-12-01T16:30:00+01:00", "reason": "atelier périscolaire"})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (body["wifi"].as_str(), body["override"].clone()),
        (Some("off"), Value::Null)
    );
    assert_eq!(
        body["planned_overrides"],
        json!([{"from": "2026-12-01T14:00:00+01:00", "until": "2026-12-01T16:30:00+01:00", "wifi": "on", "reason": "atelier périscolaire", "by": "admin"}])
    );
    // Overlapping another planned one: refused, naming it.
    let (s, body) = put(json!({"wifi": "off", "from": "2026-12-01T15:00:00+01:00", "reason": "exam"})).await;
    assert_eq!(s, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already has an override planned"),
        "{body}"
    );
    // A `from` in the past means now.
    let (s, body) = put(json!({"wifi": "off", "from": "2026-12-01T08:00:00+01:00", "until": "2026-12-01T09:30:00+01:00", "reason": "incident"})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (body["reason"].as_str(), body["override"]["reason"].as_str()),
        (Some("override"), Some("incident"))
    );
    // The teacher sees it too.
    let (_, c1) = d.get(TEACHER_TOKEN, "/api/v1/classrooms/c1").await;
    assert_eq!(c1["planned_overrides"][0]["reason"], "atelier périscolaire");
    // A city-wide plan for Sunday.
    let (s, body) = d
        .send(
            Method::POST,
            ADMIN_TOKEN,
            "/api/v1/overrides",
            json!({"scope": {"all": true}, "wifi": "on", "from": "2026-12-06T08:00:00+01:00", "until": "2026-12-06T20:00:00+01:00", "reason": "bureau de vote"}),
        )
        .await;
    assert_eq!((s, body["count"].as_u64()), (200, Some(2)), "{body}");

    let dir = d.stop().await;
    let d = TestDaemon::start_in(dir, &config(), clock.clone()).await;
    let (_, c1) = d.get(ADMIN_TOKEN, "/api/v1/classrooms/c1").await;
    let reasons: Vec<&str> = c1["planned_overrides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["atelier périscolaire", "bureau de vote"]);
    assert_eq!(c1["override"]["reason"], "incident");

    // Cancel by start (as listed, `+` encoded), then it is gone: 404.
    let path = "/api/v1/classrooms/c1/override?from=2026-12-01T14:00:00%2B01:00";
    let (s, body) = d.send(Method::DELETE, ADMIN_TOKEN, path, Value::Null).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["planned_overrides"].as_array().unwrap().len(), 1);
    assert_eq!(body["override"]["reason"], "incident", "the override in force stays");
    let (s, _) = d.send(Method::DELETE, ADMIN_TOKEN, path, Value::Null).await;
    assert_eq!(s, 404);
    let (s, body) = d
        .send(
            Method::DELETE,
            ADMIN_TOKEN,
            "/api/v1/classrooms/c1/override?from=tomorrow",
            Value::Null,
        )
        .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("bad_from")), "{body}");
    let (s, body) = d
        .send(
            Method::DELETE,
            ADMIN_TOKEN,
            "/api/v1/overrides?school=s1&from=2026-12-06T07:00:00Z",
            Value::Null,
        )
        .await;
    assert_eq!((s, body["count"].as_u64()), (200, Some(2)), "{body}");
    let (_, c2) = d.get(ADMIN_TOKEN, "/api/v1/classrooms/c2").await;
    assert_eq!(c2["planned_overrides"], json!([]));
    let (_, audit) = d.get(ADMIN_TOKEN, "/api/v1/audit?action=override.").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "override.cancel",
            "override.cancel",
            "override.plan",
            "override.set",
            "override.plan"
        ]
    );
}

/// The planner wakes at a planned override's start by itself (the clock
/// runs; nothing pokes the daemon): the AP goes on at the start and off at
/// the end. Without that wake it would sleep 30 s, longer than the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planner_wakes_at_the_start_of_a_planned_override() {
    let clock = Arc::new(RunningClock {
        start: "2026-12-01T09:00:00+01:00".parse().unwrap(),
        started: Instant::now(),
    });
    let d = TestDaemon::start(&config(), clock.clone()).await;
    d.wait_sim("c2-ap1", Wifi::Off).await;
    // Whole seconds, as sent.
    let from = chrono::SubsecRound::trunc_subsecs(clock.now(), 0) + chrono::Duration::seconds(3);
    let until = from + chrono::Duration::seconds(3);
    let (s, body) = d
        .send(
            Method::PUT,
            ADMIN_TOKEN,
            "/api/v1/classrooms/c2/override",
            json!({"wifi": "on", "from": secs(from), "until": secs(until), "reason": "atelier"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["wifi"], "off");
    d.wait_sim("c2-ap1", Wifi::On).await;
    assert!(clock.now() >= from, "on before its start");
    d.wait_sim("c2-ap1", Wifi::Off).await;
    assert!(clock.now() >= until, "off before its end");
    // Its end is audited (queued by the planner's expiry pass).
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (_, audit) = d.get(ADMIN_TOKEN, "/api/v1/audit?action=override.&classroom=c2").await;
        if audit["entries"][0]["action"] == "override.expire" {
            break;
        }
        assert!(Instant::now() < deadline, "no override.expire row: {audit}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
