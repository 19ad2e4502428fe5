//! Idle auto-off through the whole daemon (issue 14 §3): a daemon in
//! process on the system clock drives two fake OpenWrt APs behind real
//! OpenSSH `sshd`s (`tests/support/ssh`), `teacher_session.idle_off_minutes: 1`.
//!
//! - The AP of `room-a` reports no associated station: its teacher session
//!   ends one minute (plus at most a read interval and a planner pass)
//!   after it started, audited `session.end` `idle: …`, the classroom's
//!   status carries `idle_off` (when; the teacher page's "Coupé faute d'appareil
//!   connecté"), and the AP is switched off.
//! - The AP of `room-b` reports two stations: its session stays on.
//! - During the "on", client counts are read at least every
//!   `idle_off_minutes / 3` (20 s), although `resync_seconds` is an hour.
//!
//! Skipped (with a message) when `/usr/sbin/sshd` is missing, unless
//! `BORNE_REQUIRE_PEERS=1`, where that is a failure.

use borne_test_support::daemon as common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use borne::core::SystemClock;
use borne_test_support::fixtures::{ADMIN_TOKEN, HEAD, TEACHER_TOKEN, users};
use borne_test_support::ssh::{TestSshd, ap_yaml};
use borne_test_support::wait::wait_for_at_most;
use common::*;
use serde_json::{Value, json};

fn config(a: &TestSshd, b: &TestSshd) -> String {
    [
        HEAD,
        "listen: 127.0.0.1:0\n",
        "teacher_session: { default_minutes: 30, max_minutes: 60, idle_off_minutes: 1 }\n",
        "reconciler: { backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600 }\n",
        "schedules:\n  open: { default_mode: available, rules: [] }\n",
        &format!(
            "schools:\n  - id: s1\n    schedule: open\n    classrooms:\n      - id: room-a\n        access_points: [ {} ]\n      - id: room-b\n        access_points: [ {} ]\n",
            ap_yaml("ap-a", a),
            ap_yaml("ap-b", b)
        ),
        &users("classrooms: [room-a, room-b]"),
    ]
    .concat()
}

/// Whether every radio of the fake runs `on` (with a lease the saved
/// configuration stays off while the radios run).
fn running(sshd: &TestSshd, on: bool) -> bool {
    sshd.fake.radios().iter().all(|r| sshd.fake.state(r).running_on == on)
}

/// `iw … station dump` commands the fake received so far.
fn station_reads(sshd: &TestSshd) -> Vec<String> {
    sshd.fake
        .commands()
        .into_iter()
        .filter(|c| c.contains("station dump"))
        .collect()
}

async fn status(d: &TestDaemon, classroom: &str) -> Value {
    d.get(TEACHER_TOKEN, &format!("/api/v1/classrooms/{classroom}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_after_idle_off_minutes_and_a_used_one_stays_on() {
    let Some(a) = TestSshd::start() else { return };
    let Some(b) = TestSshd::start() else { return };
    b.fake.set_stations("wlan0", 2);
    let d = TestDaemon::start(&config(&a, &b), Arc::new(SystemClock)).await;
    // The schedule's `available` switches the fakes (which start on) off.
    wait_for_at_most("both fakes off", Duration::from_secs(30), || {
        running(&a, false) && running(&b, false)
    })
    .await;

    let started = Instant::now();
    for room in ["room-a", "room-b"] {
        let (code, body) = d.wifi(TEACHER_TOKEN, room, json!({"wifi": "on", "minutes": 30})).await;
        assert_eq!(code, 200, "{room}: {body}");
    }
    wait_for_at_most("both fakes on", Duration::from_secs(30), || {
        running(&a, true) && running(&b, true)
    })
    .await;
    let reads_at_on = station_reads(&b).len();

    // room-a: nobody connected → off one minute after the session started.
    let deadline = started + Duration::from_secs(120);
    loop {
        let s = status(&d, "room-a").await;
        if s["wifi"] == "off" {
            assert!(s["idle_off"].is_string(), "the page is told why and when: {s}");
            break;
        }
        assert!(Instant::now() < deadline, "room-a still on after 120 s: {s}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let lasted = started.elapsed();
    // One minute idle, read at most 20 s late, and a planner pass (30 s at most).
    assert!(
        (Duration::from_secs(59)..=Duration::from_secs(115)).contains(&lasted),
        "the idle session ended after {lasted:?}"
    );
    wait_for_at_most("ap-a off", Duration::from_secs(30), || running(&a, false)).await;

    let (_, audit) = d.get(ADMIN_TOKEN, "/api/v1/audit?classroom=room-a").await;
    let ends: Vec<String> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "session.end")
        .filter_map(|e| e["detail"].as_str().map(str::to_owned))
        .collect();
    assert!(
        ends.len() == 1 && ends[0].starts_with("idle: "),
        "one session.end with reason idle: {ends:?}"
    );

    // room-b: two stations → still on well after a minute.
    let until = started + Duration::from_secs(90);
    while Instant::now() < until {
        let s = status(&d, "room-b").await;
        assert_eq!(s["wifi"], "on", "a used classroom stays on: {s}");
        assert!(running(&b, true));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let s = status(&d, "room-b").await;
    assert!(s["idle_off"].is_null(), "{s}");
    let (_, audit) = d.get(ADMIN_TOKEN, "/api/v1/audit?classroom=room-b").await;
    assert!(
        !audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "session.end"),
        "{audit}"
    );

    // Client counts were read at least every 20 s during the "on", with
    // resync_seconds at an hour: ≥ 3 reads in the ≥ 60 s since.
    let on_for = started.elapsed();
    let reads = station_reads(&b).len() - reads_at_on;
    let expected = (on_for.as_secs() / 20).saturating_sub(1) as usize;
    assert!(
        reads >= expected.max(3),
        "{reads} client count reads in {on_for:?} (expected at least {})",
        expected.max(3)
    );

    // The page's text for that state, French first.
    let i18n = d.http.get(d.url("/assets/i18n.js")).send().await.expect("GET i18n.js");
    let i18n = i18n.text().await.expect("i18n text");
    assert!(i18n.contains("Coupé faute d'appareil connecté"), "teacher page text");
}
