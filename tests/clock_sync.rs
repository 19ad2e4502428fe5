//! `clock.require_sync: true` while the clock is not synchronised (issue
//! 14 §2), on a daemon in process whose clock follows real time and whose
//! synchronisation state the test sets (the `Clock::sync` seam; the real
//! daemon reads `adjtimex`):
//!
//! - a teacher's "on" is refused with 503 `clock_unsynchronized` and a
//!   French-then-English message;
//! - the schedule's `on` acts as `available` (the AP goes off);
//! - a running teacher session ends, audited `session.end` `clock: …`;
//! - an IT override to "on" keeps applying;
//! - the change is noticed by the planner within 30 s (its longest sleep),
//!   without any request waking it, both ways;
//! - `/readyz` (still 200) and `borne_clock_synchronized` show the state.

use borne_test_support::daemon as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use borne::clock::SyncState;
use borne::core::Clock;
use borne::policy::Wifi;
use borne_test_support::fixtures::{ADMIN_TOKEN, HEAD, TEACHER_TOKEN, users};
use chrono::{DateTime, Utc};
use common::*;
use serde_json::json;

/// Real time from a fixed instant, with a synchronisation state the test sets.
struct SyncClock {
    base: DateTime<Utc>,
    started: Instant,
    synchronized: AtomicBool,
}

impl Clock for SyncClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + chrono::Duration::from_std(self.started.elapsed()).expect("elapsed fits")
    }

    fn sync(&self, _now: DateTime<Utc>) -> SyncState {
        SyncState {
            kernel: Some(self.synchronized.load(Ordering::SeqCst)),
            plausible: true,
        }
    }
}

fn config() -> String {
    [
        HEAD,
        "listen: 127.0.0.1:0\n",
        "clock: { require_sync: true }\n",
        "reconciler: { backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600 }\n",
        "schedules:\n  open: { default_mode: available, rules: [] }\n  always: { default_mode: on, rules: [] }\n",
        r#"schools:
  - id: s1
    schedule: open
    classrooms:
      - id: c1
        access_points: [ { id: c1-ap, sim: {} } ]
      - id: c3
        access_points: [ { id: c3-ap, sim: {} } ]
  - id: s2
    schedule: always
    classrooms:
      - id: c2
        access_points: [ { id: c2-ap, sim: {} } ]
"#,
        &users("classrooms: [c1]"),
    ]
    .concat()
}

/// Polls `/readyz` until its `clock.synchronized` is `want`; returns how long it took.
async fn wait_readyz_synchronized(d: &TestDaemon, want: bool, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (status, body) = d.get(ADMIN_TOKEN, "/readyz").await;
        assert_eq!(status, 200, "/readyz stays 200 whatever the clock: {body}");
        assert_eq!(body["clock"]["require_sync"], true, "{body}");
        if body["clock"]["synchronized"] == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "/readyz clock.synchronized still not {want} after {limit:?}: {body}"
        );
        // Polling /readyz does not wake the planner: what is measured is its own pass.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metrics(d: &TestDaemon) -> String {
    d.http
        .get(d.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_sync_refuses_new_on_ends_sessions_keeps_overrides_and_notices_within_30_s() {
    let clock = Arc::new(SyncClock {
        // Tuesday 1 December 2026, 09:00 in Paris.
        base: "2026-12-01T08:00:00Z".parse().unwrap(),
        started: Instant::now(),
        synchronized: AtomicBool::new(true),
    });
    let d = TestDaemon::start(&config(), clock.clone()).await;

    // Synchronised: the schedule's `on`, a teacher session and an override to on all apply.
    d.wait_sim("c2-ap", Wifi::On).await;
    let (status, body) = d.wifi(TEACHER_TOKEN, "c1", json!({"wifi": "on", "minutes": 60})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = d
        .send(
            reqwest::Method::PUT,
            ADMIN_TOKEN,
            "/api/v1/classrooms/c3/override",
            json!({"wifi": "on", "until": null, "reason": "exam network"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    d.wait_sim("c1-ap", Wifi::On).await;
    d.wait_sim("c3-ap", Wifi::On).await;
    wait_readyz_synchronized(&d, true, Duration::from_secs(5)).await;
    assert!(metrics(&d).await.contains("borne_clock_synchronized 1"));

    // The clock loses its synchronisation; nothing wakes the planner but its timer.
    clock.synchronized.store(false, Ordering::SeqCst);
    let noticed = wait_readyz_synchronized(&d, false, Duration::from_secs(45)).await;
    assert!(
        noticed <= Duration::from_secs(31),
        "the loss of synchronisation was noticed after {noticed:?}, more than 30 s"
    );
    d.wait_sim("c1-ap", Wifi::Off).await;
    d.wait_sim("c2-ap", Wifi::Off).await;
    assert_eq!(
        d.sim.state("c3-ap"),
        Some(Wifi::On),
        "IT's override to on keeps applying"
    );
    assert!(metrics(&d).await.contains("borne_clock_synchronized 0"));

    let (_, c1) = d.get(TEACHER_TOKEN, "/api/v1/classrooms/c1").await;
    assert_eq!(c1["wifi"], "off", "{c1}");
    let (_, c2) = d.get(ADMIN_TOKEN, "/api/v1/classrooms/c2").await;
    assert_eq!(c2["wifi"], "off", "the schedule's on acts as available: {c2}");
    let (_, c3) = d.get(ADMIN_TOKEN, "/api/v1/classrooms/c3").await;
    assert_eq!(c3["wifi"], "on", "{c3}");

    let (_, audit) = d.get(ADMIN_TOKEN, "/api/v1/audit?classroom=c1").await;
    let ends: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "session.end")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(
        ends.len() == 1 && ends[0].starts_with("clock: "),
        "one session.end with reason clock: {ends:?}"
    );

    // No new "on" from a teacher: 503 with a clear message, French first.
    let (status, body) = d.wifi(TEACHER_TOKEN, "c1", json!({"wifi": "on", "minutes": 30})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "clock_unsynchronized", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Horloge du serveur non synchronisée")
            && message.contains("The server clock is not synchronised"),
        "{message}"
    );
    // "Off" is always accepted.
    let (status, body) = d.wifi(TEACHER_TOKEN, "c1", json!({"wifi": "off"})).await;
    assert!(status == 200, "a teacher may still switch off: {status} {body}");
    d.wait_sim("c1-ap", Wifi::Off).await;

    // Synchronised again: noticed within 30 s, the schedule's on applies again.
    let _ = d.get(ADMIN_TOKEN, "/readyz").await;
    clock.synchronized.store(true, Ordering::SeqCst);
    let noticed = wait_readyz_synchronized(&d, true, Duration::from_secs(45)).await;
    assert!(
        noticed <= Duration::from_secs(31),
        "the return of synchronisation was noticed after {noticed:?}, more than 30 s"
    );
    d.wait_sim("c2-ap", Wifi::On).await;
    let (status, body) = d.wifi(TEACHER_TOKEN, "c1", json!({"wifi": "on", "minutes": 30})).await;
    assert_eq!(status, 200, "{body}");
    d.wait_sim("c1-ap", Wifi::On).await;
    assert_eq!(d.sim.state("c3-ap"), Some(Wifi::On));
}
