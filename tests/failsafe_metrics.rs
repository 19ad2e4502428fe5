//! The lease metrics (issue 14 §1) as `/metrics` shows them, on a daemon
//! in process on the system clock with a simulated AP holding a 12 s lease
//! (renewed every 4 s):
//!
//! - `borne_ap_lease_expiry_timestamp_seconds{…,ap}` is the lease's end
//!   (now + lease at the last renewal), moves forward with each renewal,
//!   and has no series once the AP is off (no lease held);
//! - `borne_lease_renewals_total{result="ok"}` counts renewals, and
//!   `{result="error"}` counts those the AP did not take.

use borne_test_support::daemon as common;

use std::sync::Arc;
use std::time::Duration;

use borne::core::SystemClock;
use borne::policy::Wifi;
use borne_test_support::fixtures::{ADMIN_TOKEN, HEAD, users};
use common::*;
use serde_json::json;

fn config() -> String {
    [
        HEAD,
        "listen: 127.0.0.1:0\n",
        "failsafe: { lease_seconds: 12 }\n",
        "reconciler: { backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600 }\n",
        "schedules:\n  always: { default_mode: on, rules: [] }\n",
        r#"schools:
  - id: s1
    schedule: always
    classrooms:
      - id: c1
        access_points: [ { id: c1-ap, sim: {} } ]
"#,
        &users("classrooms: [c1]"),
    ]
    .concat()
}

/// The value of the one series of `name` whose labels contain `labels`.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn metrics(d: &TestDaemon) -> String {
    let r = d
        .http
        .get(d.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(r.status(), 200);
    r.text().await.expect("metrics text")
}

const EXPIRY: &str = "borne_ap_lease_expiry_timestamp_seconds";
const RENEWALS: &str = "borne_lease_renewals_total";
const AP: &str = r#"ap="c1-ap""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_expiry_and_renewals_by_result_are_in_metrics() {
    let d = TestDaemon::start(&config(), Arc::new(SystemClock)).await;
    d.wait_sim("c1-ap", Wifi::On).await;

    // Armed with the "on": the expiry is about now + 12 s.
    let text = metrics(&d).await;
    let now = chrono::Utc::now().timestamp() as f64;
    let first = sample(&text, EXPIRY, AP).unwrap_or_else(|| panic!("no {EXPIRY} series for c1-ap:\n{text}"));
    assert!(
        (now + 9.0..=now + 13.0).contains(&first),
        "expiry {first} should be about now ({now}) + 12 s"
    );
    assert!(text.contains(r#"school="s1""#) && text.contains(r#"classroom="c1""#));

    // Two renewals (every 4 s): counted ok, and the expiry moves forward.
    let mut text = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sample(&text, RENEWALS, r#"result="ok""#).unwrap_or(0.0) < 2.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no 2 ok renewals in 30 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        text = metrics(&d).await;
    }
    let later = sample(&text, EXPIRY, AP).expect("expiry series");
    assert!(later >= first + 4.0, "renewed: expiry {first} -> {later}");
    assert_eq!(sample(&text, RENEWALS, r#"result="error""#).unwrap_or(0.0), 0.0);

    // The AP stops answering: the next renewal is counted as an error.
    d.sim.set_unreachable("c1-ap", true);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(&d).await;
        if sample(&text, RENEWALS, r#"result="error""#).unwrap_or(0.0) >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed renewal counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.sim.set_unreachable("c1-ap", false);

    // Switched off by IT: no lease held, no series.
    let (status, body) = d
        .send(
            reqwest::Method::PUT,
            ADMIN_TOKEN,
            "/api/v1/classrooms/c1/override",
            json!({"wifi": "off", "until": null, "reason": "maintenance"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    d.wait_sim("c1-ap", Wifi::Off).await;
    let mut text = metrics(&d).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sample(&text, EXPIRY, AP).is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "expiry series still there once off:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        text = metrics(&d).await;
    }
}
