//! Shelly Gen2 at first contact (issue 14 §1): borne observes before it
//! acts (`Switch.GetStatus`, reply on `borne/rpc`) and sets the switch's
//! `initial_state` to `off` (`Switch.SetConfig`) so that a power cut ends
//! an "on", unless `failsafe.configure_devices: false`. A daemon in process
//! drives fake Gen2 firmware (`tests/support/mqtt/firmware.rs`) on a real
//! Mosquitto.
//!
//! Skipped (with a message) when `mosquitto` is missing, unless
//! `BORNE_REQUIRE_PEERS=1`, where that is a failure.

use borne_test_support::daemon as common;

use std::sync::Arc;
use std::time::Duration;

use borne::core::SystemClock;
use borne_test_support::fixtures::{ADMIN_TOKEN, HEAD, users};
use borne_test_support::mqtt::TestMosquitto;
use borne_test_support::mqtt::firmware::FakeFirmware;
use borne_test_support::wait::wait_for_at_most;
use common::*;
use serde_json::Value;

fn config(broker: u16, configure_devices: bool) -> String {
    [
        HEAD,
        "listen: 127.0.0.1:0\n",
        &format!("failsafe: {{ lease_seconds: 12, configure_devices: {configure_devices} }}\n"),
        &format!("mqtt: {{ host: 127.0.0.1, port: {broker}, keep_alive_seconds: 5 }}\n"),
        "reconciler: { backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600 }\n",
        "schedules:\n  closed: { default_mode: locked, rules: [] }\n",
        r#"schools:
  - id: s1
    schedule: closed
    classrooms:
      - id: c1
        access_points:
          - { id: quiet, mqtt: { preset: shelly-gen2, topic: shellyplus1-quiet } }
          - { id: left-on, mqtt: { preset: shelly-gen2, topic: shellyplus1-lefton } }
"#,
        &users("classrooms: [c1]"),
    ]
    .concat()
}

/// The methods of the JSON-RPC requests a fake received, in order.
fn methods(fake: &FakeFirmware) -> Vec<String> {
    fake.state()
        .received
        .iter()
        .filter_map(|(_, p)| serde_json::from_str::<Value>(p).ok())
        .map(|v| {
            let m = v["method"].as_str().unwrap_or_default().to_owned();
            match v["params"]["on"].as_bool() {
                Some(on) => format!("{m} on={on}"),
                None => m,
            }
        })
        .collect()
}

async fn ap(d: &TestDaemon, id: &str) -> Value {
    let (_, body) = d.get(ADMIN_TOKEN, "/api/v1/access-points").await;
    body["access_points"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == id).cloned())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shelly_gen2_is_read_then_configured_off_at_first_contact() {
    let Some(broker) = TestMosquitto::start().await else {
        return;
    };
    let quiet = FakeFirmware::shelly_gen2(broker.port(), "shellyplus1-quiet").await;
    let left_on = FakeFirmware::shelly_gen2(broker.port(), "shellyplus1-lefton").await;
    left_on.set_on_unannounced(true);
    let d = TestDaemon::start(&config(broker.port(), true), Arc::new(SystemClock)).await;

    // The one left on is seen on (a reply, not a notification) and switched off.
    wait_for_at_most("left-on switched off", Duration::from_secs(20), || !left_on.state().on).await;
    assert_eq!(
        methods(&left_on),
        ["Switch.SetConfig", "Switch.GetStatus", "Switch.Set on=false"],
        "configured, observed, then acted on"
    );
    assert_eq!(left_on.state().power_on.as_deref(), Some("off"), "initial_state off");

    // The one already off is read and left alone: no command needed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = ap(&d, "quiet").await;
        if a["observed"] == "off" && a["assumed"] == false {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "quiet not read off: {a}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(methods(&quiet), ["Switch.SetConfig", "Switch.GetStatus"]);
    assert_eq!(quiet.state().power_on.as_deref(), Some("off"));
    assert!(!quiet.state().on);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shelly_gen2_is_read_but_not_configured_with_configure_devices_false() {
    let Some(broker) = TestMosquitto::start().await else {
        return;
    };
    let quiet = FakeFirmware::shelly_gen2(broker.port(), "shellyplus1-quiet").await;
    let left_on = FakeFirmware::shelly_gen2(broker.port(), "shellyplus1-lefton").await;
    left_on.set_on_unannounced(true);
    let d = TestDaemon::start(&config(broker.port(), false), Arc::new(SystemClock)).await;
    wait_for_at_most("left-on switched off", Duration::from_secs(20), || !left_on.state().on).await;
    assert_eq!(methods(&left_on), ["Switch.GetStatus", "Switch.Set on=false"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while ap(&d, "quiet").await["assumed"] != false || ap(&d, "quiet").await["observed"] != "off" {
        assert!(tokio::time::Instant::now() < deadline, "quiet not read off");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(methods(&quiet), ["Switch.GetStatus"]);
    assert_eq!(quiet.state().power_on, None, "the device's own setting is left alone");
    assert_eq!(left_on.state().power_on, None);
    d.stop().await;
}
