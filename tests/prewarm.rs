//! SSH pre-warming at the daemon level: `prewarm_seconds` before a
//! scheduled change that switches an AP, its connection is opened and kept
//! past `reuse_seconds` until the change has been applied, so the change
//! runs over it; afterwards it is closed as usual. Against real OpenSSH
//! `sshd` in front of the fake OpenWrt shell; skipped without sshd unless
//! `BORNE_REQUIRE_PEERS=1`.

use std::time::Duration;

use borne::policy::Wifi;
use borne_test_support::daemon::{ManualClock, TestDaemon, wait_for};
use borne_test_support::fixtures::HEAD;
use borne_test_support::ssh::{SshFake, TestSshd, ap_yaml};

/// One classroom, its AP behind `sshd`; off (locked) until 10:00, `on` from 10:00.
fn config(sshd: &TestSshd, prewarm_seconds: u64) -> String {
    format!(
        "{HEAD}reconciler: {{ backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600 }}\n\
         ssh: {{ reuse_seconds: 1, prewarm_seconds: {prewarm_seconds} }}\n\
         schedules:\n  day:\n    default_mode: locked\n    rules:\n      - {{ at: \"0 10 * * *\", mode: on }}\n      \
         - {{ at: \"0 17 * * *\", mode: locked }}\n\
         schools:\n  - id: s\n    schedule: day\n    classrooms:\n      - id: c\n        access_points:\n          - {}\n",
        ap_yaml("ap", sshd)
    )
}

/// Runs the day up to the change and returns (connections opened before
/// the change, connections opened in all).
async fn day(prewarm_seconds: u64) -> Option<(usize, usize)> {
    let sshd = TestSshd::start()?;
    let clock = ManualClock::at("2026-12-01T09:50:00+01:00");
    let d = TestDaemon::start(&config(&sshd, prewarm_seconds), clock.clone()).await;
    // The start-up read switches the radios off (they start on), then the
    // connection is closed after `reuse_seconds`.
    wait_for("the AP off", || sshd.fake().all(false)).await;
    wait_for("the start-up connection closed", || sshd.open_connections() == 0).await;

    // 09:59:45: inside the 20 s before the change.
    clock.set("2026-12-01T09:59:45+01:00");
    d.core.poke();
    if prewarm_seconds > 0 {
        wait_for("a prewarmed connection", || sshd.open_connections() == 1).await;
    }
    // Longer than reuse_seconds: a connection kept only for reuse is gone by now.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = sshd.connections();
    assert_eq!(
        sshd.open_connections(),
        usize::from(prewarm_seconds > 0),
        "kept until the change (prewarm) or closed after reuse_seconds (no prewarm)"
    );

    clock.set("2026-12-01T10:00:00+01:00");
    d.core.poke();
    // With a lease the saved configuration stays off while the radios run.
    wait_for("the AP on", || sshd.fake().on_with_saved_off()).await;
    borne_sees_on(&d).await;
    // After the change: closed after reuse_seconds, not kept the rest of the day.
    wait_for("the connection closed after the change", || {
        sshd.open_connections() == 0
    })
    .await;
    let all = sshd.connections();
    d.stop().await;
    Some((before, all))
}

/// The scheduled change runs over the prewarmed connection: no connection
/// is opened at the change, and none is kept after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_change_runs_over_a_prewarmed_connection() {
    let Some((before, all)) = day(20).await else {
        return;
    };
    assert_eq!(all, before, "the change opened a connection of its own");
}

/// Without pre-warming the change opens its own connection (the contrast
/// that shows the test above can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prewarm_the_change_connects_cold() {
    let Some((before, all)) = day(0).await else {
        return;
    };
    assert_eq!(all, before + 1, "the change should have connected once");
}

/// Waits until the daemon itself sees the AP on (its read-back).
async fn borne_sees_on(d: &TestDaemon) {
    let core = d.core.clone();
    wait_for("borne sees the AP on", || {
        core.ap_state(&"ap".into())
            .is_some_and(|s| s.observed.wifi.is(Wifi::On))
    })
    .await;
}
