//! Device-side leases over MQTT (issue 14): the real `borne` binary drives
//! a fake Tasmota plug (`PulseTime`, `PowerOnState`) and a fake Shelly Gen2
//! switch (`Switch.Set` with `toggle_after`, `Switch.SetConfig`) on a real
//! Mosquitto (`tests/support/mqtt/firmware.rs`). Renewals keep both on
//! across several leases; after `kill -9` of borne both switch themselves
//! off within the lease.
//!
//! The lease is `failsafe.lease_seconds: 12` (the shortest accepted).
//! Skipped (with a message) when `mosquitto` is missing, unless
//! `BORNE_REQUIRE_PEERS=1`, where that is a failure.

use std::time::Duration;

use borne_test_support::daemon::DaemonProcess;
use borne_test_support::mqtt::TestMosquitto;
use borne_test_support::mqtt::firmware::FakeFirmware;
use borne_test_support::wait::free_port;

const LEASE: Duration = Duration::from_secs(12);

async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

/// Tasmota and Shelly Gen2 stay on while borne renews their leases, come
/// back off after a power cut (configured at first contact), and switch
/// themselves off within the lease after `kill -9` of borne.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_devices_go_off_by_themselves_after_borne_is_killed() {
    let Some(broker) = TestMosquitto::start().await else {
        return;
    };
    let tasmota = FakeFirmware::tasmota(broker.port(), "plug-1").await;
    let shelly = FakeFirmware::shelly_gen2(broker.port(), "shellyplus1-a1").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let yaml = format!(
        "listen: 127.0.0.1:{port}\nstate_dir: {state}\nfailsafe: {{ lease_seconds: {lease} }}\n\
         mqtt: {{ host: 127.0.0.1, port: {broker}, client_id: borne-failsafe, keep_alive_seconds: 5 }}\n\
         schedules:\n  always-on: {{ default_mode: on }}\n\
         schools:\n  - id: school\n    schedule: always-on\n    classrooms:\n      - id: room\n        access_points:\n\
         \x20         - {{ id: plug, mqtt: {{ preset: tasmota, topic: plug-1 }} }}\n\
         \x20         - {{ id: relay, mqtt: {{ preset: shelly-gen2, topic: shellyplus1-a1 }} }}\n",
        state = dir.path().join("state").display(),
        lease = LEASE.as_secs(),
        broker = broker.port(),
    );
    let config = dir.path().join("borne.yaml");
    std::fs::write(&config, yaml).expect("write config");
    let mut borne = tokio::task::block_in_place(|| DaemonProcess::start(&config, port));

    wait_until("both on", Duration::from_secs(20), || {
        tasmota.state().on && shelly.state().on
    })
    .await;
    assert_eq!(
        tasmota.state().power_on.as_deref(),
        Some("0"),
        "PowerOnState 0 at first contact"
    );
    assert_eq!(
        shelly.state().power_on.as_deref(),
        Some("off"),
        "initial_state off at first contact"
    );
    assert_eq!(tasmota.state().pulse_time, Some(112), "PulseTime = lease + 100");

    // Three leases: only renewals can keep them on.
    let hold = tokio::time::Instant::now();
    while hold.elapsed() < 3 * LEASE {
        assert!(tasmota.state().on, "Tasmota on while borne renews");
        assert!(shelly.state().on, "Shelly on while borne renews");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pulses = tasmota
        .state()
        .received
        .iter()
        .filter(|(t, _)| t.ends_with("/PulseTime"))
        .count();
    assert!(pulses >= 6, "PulseTime renewed every third of the lease: {pulses}");
    let toggles = shelly
        .state()
        .received
        .iter()
        .filter(|(_, p)| p.contains("\"toggle_after\":12"))
        .count();
    assert!(toggles >= 6, "toggle_after renewed: {toggles}");

    tokio::task::block_in_place(|| {
        borne.signal("KILL");
        borne.wait_exit(Duration::from_secs(5)).expect("borne killed");
    });
    let took = wait_until("both off by themselves", LEASE + Duration::from_secs(60), || {
        !tasmota.state().on && !shelly.state().on
    })
    .await;
    assert!(
        took <= LEASE + Duration::from_secs(2),
        "off {took:?} after the kill, lease {LEASE:?}"
    );
}
