//! Device-side leases on OpenWrt over real SSH (issue 14): the real `borne`
//! binary drives a fake OpenWrt AP behind a real OpenSSH `sshd`
//! (`tests/support/ssh`, with the process model of `process.rs`), and is
//! killed with SIGKILL while the AP is on. The AP must go off by itself
//! within the lease (+ 1 min, the bound), and an AP rebooted while
//! borne is down must come up off.
//!
//! The lease is `failsafe.lease_seconds: 12` (the shortest accepted), so
//! that the tests take seconds, not the production 20 minutes.
//!
//! Skipped (with a message) when `/usr/sbin/sshd` is missing, unless
//! `BORNE_REQUIRE_PEERS=1`, where that is a failure.

use std::time::{Duration, Instant};

use borne_test_support::daemon::DaemonProcess;
use borne_test_support::ssh::{RadioState, SshFake as _, TestSshd, ap_yaml};
use borne_test_support::wait::free_port;
use serde_json::Value;

/// The lease of these tests.
const LEASE: Duration = Duration::from_secs(12);

/// A configuration whose schedule keeps the classroom on, with a short lease.
fn write_config(dir: &std::path::Path, port: u16, sshd: &TestSshd, lease_seconds: u64) -> std::path::PathBuf {
    let yaml = format!(
        "listen: 127.0.0.1:{port}\nstate_dir: {state}\ndemo: true\nfailsafe: {{ lease_seconds: {lease_seconds} }}\n\
         schedules:\n  always-on:\n    default_mode: on\n\
         schools:\n  - id: school\n    schedule: always-on\n    classrooms:\n      - id: room\n        access_points:\n          - {ap}\n\
         users:\n  - {{ name: admin, role: admin, token: admin-token-123 }}\n",
        state = dir.join("state").display(),
        ap = ap_yaml("ap-1", sshd),
    );
    let path = dir.join("borne.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// Polls `cond` every 100 ms for at most `limit`; returns how long it took.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

fn access_point(port: u16) -> Value {
    let body: Value = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/access-points"))
        .bearer_auth("admin-token-123")
        .send()
        .and_then(|r| r.json())
        .unwrap_or(Value::Null);
    body["access_points"][0].clone()
}

const ON_SAVED_OFF: RadioState = RadioState {
    committed_on: false,
    running_on: true,
};

/// Renewals keep the AP on across several leases while borne runs, the
/// saved configuration stays off meanwhile, and after `kill -9` of borne
/// the AP switches itself off within the lease.
#[test]
fn openwrt_ap_goes_off_by_itself_after_borne_is_killed() {
    let Some(sshd) = TestSshd::start_with(&[("radio0", "wlan0")]) else {
        return;
    };
    let fake = sshd.fake();
    fake.set_radio("radio0", false);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = write_config(dir.path(), port, &sshd, LEASE.as_secs());
    let mut borne = DaemonProcess::start(&config, port);

    wait_until("the AP on", Duration::from_secs(30), || {
        fake.state("radio0") == ON_SAVED_OFF
    });
    assert!(fake.lease_sleeper().is_some(), "the lease sleeper runs on the AP");
    // borne records the lease once its switch returns (after reading back).
    wait_until("the lease in the API", Duration::from_secs(20), || {
        access_point(port)["lease_held"] == true
    });
    let ap = access_point(port);
    assert_eq!(ap["observed"], "on", "{ap}");
    assert!(ap["lease_until"].is_string(), "{ap}");

    // Three leases long: only renewals can keep it on.
    let hold = Instant::now();
    while hold.elapsed() < 3 * LEASE {
        assert_eq!(
            fake.state("radio0"),
            ON_SAVED_OFF,
            "on while borne renews, saved config off"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let renewals = fake
        .commands()
        .iter()
        .filter(|c| c.contains("borne-lease") && !c.contains("disabled=0"))
        .count();
    assert!(
        renewals >= 5,
        "renewed every third of the lease: {renewals} arming commands"
    );

    borne.signal("KILL");
    borne.wait_exit(Duration::from_secs(5)).expect("borne killed");
    let took = wait_until("the AP off by itself", LEASE + Duration::from_secs(60), || {
        !fake.state("radio0").running_on
    });
    assert!(
        took <= LEASE + Duration::from_secs(7),
        "off {took:?} after the kill, lease {LEASE:?}"
    );
    assert_eq!(
        fake.state("radio0"),
        RadioState {
            committed_on: false,
            running_on: false
        }
    );
    wait_until("the sleeper gone", Duration::from_secs(5), || {
        fake.lease_sleeper().is_none()
    });
}

/// An AP rebooted while borne cannot reach it comes up off: the saved
/// configuration never says "on".
#[test]
fn openwrt_ap_rebooted_while_borne_is_stopped_comes_up_off() {
    let Some(sshd) = TestSshd::start_with(&[("radio0", "wlan0"), ("radio1", "wlan1")]) else {
        return;
    };
    let fake = sshd.fake();
    fake.set_radio("radio0", false);
    fake.set_radio("radio1", false);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // A long lease: only the reboot may switch it off here.
    let config = write_config(dir.path(), port, &sshd, 3600);
    let mut borne = DaemonProcess::start(&config, port);
    wait_until("the AP on", Duration::from_secs(30), || {
        fake.state("radio0") == ON_SAVED_OFF && fake.state("radio1") == ON_SAVED_OFF
    });
    borne.signal("KILL");
    borne.wait_exit(Duration::from_secs(5)).expect("borne killed");
    assert!(fake.state("radio0").running_on, "still on: the lease runs for an hour");
    fake.reboot();
    assert!(!fake.state("radio0").running_on && !fake.state("radio1").running_on);
    assert!(fake.lease_sleeper().is_none());
}
