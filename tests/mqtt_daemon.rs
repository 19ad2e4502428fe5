//! The whole daemon (in process, with a clock the test moves) against a
//! real Mosquitto and fake MQTT devices: schedule changes switch plugs, a
//! device that comes back is re-sent its desired state, a broker killed for
//! 30 s during a schedule change loses nothing, and an unreachable broker is
//! reported and recovered from.
//!
//! Needs `mosquitto`: without it every test prints `skipped: mosquitto not
//! installed` and passes, unless `BORNE_REQUIRE_PEERS=1` (CI), where it
//! fails. All traffic stays on 127.0.0.1. Every wait is bounded by the
//! harness's `TIMEOUT`, except the 30 s outage the fault-injection test is
//! about.

use borne_test_support::daemon as common;
use borne_test_support::mqtt as mqtt_support;

use std::time::{Duration, Instant};

use borne::config::ApId;
use borne::core::Core;
use borne_test_support::fixtures::{FAST_RETRIES, HEAD, SCHOOL_DAY, users};
use common::{ManualClock, TestDaemon};
use mqtt_support::{FakeDevice, TIMEOUT, TestBroker, TestMosquitto, wait_for_at_most};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-123";
const TEACHER: &str = "teacher-token-123";

/// The configuration for a broker port and classrooms given as
/// `(classroom, [(ap id, mqtt settings)])`, on the [`SCHOOL_DAY`] schedule.
fn config(port: u16, classrooms: &[(&str, Vec<(String, String)>)]) -> String {
    let mut list = String::new();
    for (c, aps) in classrooms {
        list.push_str(&format!("      - id: {c}\n        access_points:\n"));
        for (id, mqtt) in aps {
            list.push_str(&format!("          - {{ id: {id}, mqtt: {mqtt} }}\n"));
        }
    }
    [
        HEAD,
        FAST_RETRIES,
        &format!("mqtt: {{ host: 127.0.0.1, port: {port}, client_id: borne-daemon-test, keep_alive_seconds: 5 }}\n"),
        SCHOOL_DAY,
        "schools:\n  - id: s1\n    schedule: day\n    classrooms:\n",
        &list,
        &users("schools: [s1]"),
    ]
    .concat()
}

fn tasmota(id: &str, topic: &str) -> (String, String) {
    (id.to_owned(), format!("{{ preset: tasmota, topic: {topic} }}"))
}

fn shelly(id: &str, topic: &str) -> (String, String) {
    (id.to_owned(), format!("{{ preset: shelly, topic: {topic} }}"))
}

/// The driver's and reconciler's logs, shown with a failing test's output.
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "borne=info".into()))
        .try_init();
}

/// `GET /api/v1/classrooms/{c}` as the admin.
async fn status(d: &TestDaemon, classroom: &str) -> Value {
    let (code, body) = d.get(ADMIN, &format!("/api/v1/classrooms/{classroom}")).await;
    assert_eq!(code, 200, "{body}");
    body
}

/// The AP `ap` of a classroom status.
fn ap_view<'a>(status: &'a Value, ap: &str) -> &'a Value {
    status["access_points"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["id"] == ap))
        .unwrap_or_else(|| panic!("no AP {ap} in {status}"))
}

/// Whether the core shows `ap` reachable, observed `wifi` ("on"/"off"), as
/// the device reported it (not assumed from a command).
fn reported(core: &Core, ap: &str, wifi: &str) -> bool {
    core.ap_state(&ApId::from(ap))
        .is_some_and(|s| s.observed.reachable && s.observed.wifi.as_str() == wifi && !s.observed.assumed)
}

fn unreachable(core: &Core, ap: &str) -> bool {
    core.ap_state(&ApId::from(ap)).is_some_and(|s| !s.observed.reachable)
}

/// Publishes a retained message from a client of its own, and waits for
/// the broker's acknowledgement ("someone else" on the broker).
async fn publish_retained(port: u16, topic: &str, payload: &str) {
    let mut options = MqttOptions::new(format!("someone-else-{}", std::process::id()), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 8);
    client
        .publish(topic, QoS::AtLeastOnce, true, payload)
        .await
        .expect("queue publish");
    tokio::time::timeout(TIMEOUT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::PubAck(_))) => break,
                Ok(_) => {}
                Err(e) => panic!("someone else's client failed: {e}"),
            }
        }
    })
    .await
    .expect("the broker acknowledged the retained publish");
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
}

/// Tasmota and Shelly plugs switch on at an `on` mode and off at the next
/// change, and the status shows what the devices reported on their state
/// topics (`assumed: false`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_change_switches_mqtt_plugs() {
    logs();
    let Some(broker) = TestMosquitto::start().await else {
        return;
    };
    let port = broker.port();
    let plug = FakeDevice::tasmota(port, "plug-c1").await;
    let relay = FakeDevice::shelly(port, "shelly-c1").await;
    let yaml = config(
        port,
        &[(
            "c1",
            vec![tasmota("c1-plug", "plug-c1"), shelly("c1-relay", "shelly-c1")],
        )],
    );
    let clock = ManualClock::at("2026-12-01T09:59:00+01:00");
    let d = TestDaemon::start(&yaml, clock.clone()).await;
    let core = d.core.clone();

    // Available, no session: off from the start.
    wait_for_at_most("both plugs off at start", TIMEOUT, || {
        plug.relay() == Some(false)
            && relay.relay() == Some(false)
            && reported(&core, "c1-plug", "off")
            && reported(&core, "c1-relay", "off")
    })
    .await;

    for (at, wifi, tasmota_word, shelly_word) in [
        ("2026-12-01T10:00:01+01:00", "on", "ON", "on"),
        ("2026-12-01T11:00:00+01:00", "off", "OFF", "off"),
    ] {
        let (plug_before, relay_before) = (plug.commands().len(), relay.commands().len());
        clock.set(at);
        d.core.poke();
        let on = wifi == "on";
        wait_for_at_most(&format!("both plugs {wifi} at {at}"), TIMEOUT, || {
            plug.relay() == Some(on)
                && relay.relay() == Some(on)
                && reported(&core, "c1-plug", wifi)
                && reported(&core, "c1-relay", wifi)
        })
        .await;
        assert_eq!(
            plug.commands()[plug_before..].last().map(String::as_str),
            Some(tasmota_word)
        );
        assert_eq!(
            relay.commands()[relay_before..].last().map(String::as_str),
            Some(shelly_word)
        );
        let s = status(&d, "c1").await;
        assert_eq!(s["wifi"], wifi, "{s}");
        for ap in ["c1-plug", "c1-relay"] {
            let v = ap_view(&s, ap);
            assert_eq!(v["driver"], "mqtt", "{v}");
            assert_eq!(v["observed"], wifi, "{v}");
            assert_eq!(v["assumed"], false, "read from the device's state topic: {v}");
            assert_eq!(v["reachable"], true, "{v}");
        }
    }
    d.stop().await;
}

/// A plug vanishes (its last will says `Offline`): the status shows it
/// unreachable. While it is away someone else leaves a retained `OFF` on
/// its command topic, so it comes back with its relay flipped; when it
/// announces itself `Online`, borne re-sends the desired state and the plug
/// ends on, as the schedule wants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_back_online_is_resent_its_desired_state() {
    logs();
    let Some(broker) = TestMosquitto::start().await else {
        return;
    };
    let port = broker.port();
    let plug = FakeDevice::tasmota(port, "plug-c1").await;
    let yaml = config(port, &[("c1", vec![tasmota("c1-plug", "plug-c1")])]);
    // 10:30: mode `on`.
    let d = TestDaemon::start(&yaml, ManualClock::at("2026-12-01T10:30:00+01:00")).await;
    let core = d.core.clone();
    wait_for_at_most("the plug on", TIMEOUT, || {
        plug.relay() == Some(true) && reported(&core, "c1-plug", "on")
    })
    .await;

    plug.vanish();
    wait_for_at_most("the plug shown unreachable", TIMEOUT, || unreachable(&core, "c1-plug")).await;
    let s = status(&d, "c1").await;
    let v = ap_view(&s, "c1-plug");
    assert_eq!(v["reachable"], false, "{v}");
    assert!(v["last_error"].as_str().is_some_and(|e| e.contains("offline")), "{v}");
    assert_eq!(s["wifi"], "on", "still wanted on: {s}");

    // Switched by someone else while away.
    publish_retained(port, "cmnd/plug-c1/POWER", "OFF").await;

    let back = FakeDevice::tasmota(port, "plug-c1").await;
    wait_for_at_most("the plug back on after coming online", TIMEOUT, || {
        back.relay() == Some(true) && reported(&core, "c1-plug", "on")
    })
    .await;
    let commands = back.commands();
    assert_eq!(
        commands.first().map(String::as_str),
        Some("OFF"),
        "the relay was flipped by someone else first: {commands:?}"
    );
    assert_eq!(
        commands.last().map(String::as_str),
        Some("ON"),
        "borne re-sent the desired state: {commands:?}"
    );
    let s = status(&d, "c1").await;
    let v = ap_view(&s, "c1-plug");
    assert_eq!(v["reachable"], true, "{v}");
    assert_eq!(v["observed"], "on", "{v}");
    assert_eq!(v["last_error"], Value::Null, "{v}");
    // Tidy: the retained command would flip the next subscriber too.
    publish_retained(port, "cmnd/plug-c1/POWER", "").await;
    d.stop().await;
}

/// FAULT INJECTION: 20 MQTT plugs; Mosquitto is killed (SIGKILL), the clock
/// moves past a schedule change while it is down, a teacher request is
/// acknowledged during the outage, and the broker stays down 30 s (real
/// time). The status shows every AP unreachable meanwhile. After the
/// restart, without restarting borne, every plug converges to the desired
/// state of now, the acknowledged request included.
///
/// Before: 10:30, mode `on`; c1's teacher has switched it off (session until
/// 11:00), c2..c20 are on. During: the clock moves to 11:00:01 (available:
/// desired off everywhere, c1's session has ended), then the teacher asks
/// c1 on. After: c1 on (the teacher's request), c2..c20 off (the schedule).
/// Every plug changes state, so each one needs a command after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_for_30_s_during_a_schedule_change_converges() {
    const N: usize = 20;
    const OUTAGE: Duration = Duration::from_secs(30);
    logs();
    let Some(mut broker) = TestMosquitto::start().await else {
        return;
    };
    let port = broker.port();
    let mut plugs = Vec::new();
    for i in 1..=N {
        plugs.push(FakeDevice::tasmota(port, &format!("plug-c{i}")).await);
    }
    let classrooms: Vec<(String, Vec<(String, String)>)> = (1..=N)
        .map(|i| {
            (
                format!("c{i}"),
                vec![tasmota(&format!("c{i}-plug"), &format!("plug-c{i}"))],
            )
        })
        .collect();
    let borrowed: Vec<(&str, Vec<(String, String)>)> =
        classrooms.iter().map(|(c, aps)| (c.as_str(), aps.clone())).collect();
    let yaml = config(port, &borrowed);
    let clock = ManualClock::at("2026-12-01T10:30:00+01:00");
    let d = TestDaemon::start(&yaml, clock.clone()).await;
    let core = d.core.clone();

    let (code, body) = d.wifi(TEACHER, "c1", json!({"wifi": "off"})).await;
    assert_eq!(code, 200, "{body}");
    let ap = |i: usize| format!("c{i}-plug");
    let want_before = |i: usize| i != 1;
    wait_for_at_most("c1 off, c2..c20 on before the outage", TIMEOUT, || {
        (1..=N).all(|i| {
            let wifi = if want_before(i) { "on" } else { "off" };
            plugs[i - 1].relay() == Some(want_before(i)) && reported(&core, &ap(i), wifi)
        })
    })
    .await;

    // The outage.
    broker.stop();
    let killed = Instant::now();
    clock.set("2026-12-01T11:00:01+01:00");
    d.core.poke();
    let (code, body) = d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await;
    assert_eq!(code, 200, "acknowledged while the broker is down: {body}");
    assert_eq!(body["wifi"], "on", "{body}");
    assert_eq!(body["reason"], "teacher", "{body}");
    wait_for_at_most("every AP shown unreachable during the outage", TIMEOUT, || {
        (1..=N).all(|i| unreachable(&core, &ap(i)))
    })
    .await;
    for i in 1..=N {
        let s = status(&d, &format!("c{i}")).await;
        let v = ap_view(&s, &ap(i));
        assert_eq!(v["reachable"], false, "{v}");
        // "not connected", or "connection lost before the command was
        // acknowledged" for a command sent as the broker died.
        let error = v["last_error"].as_str().unwrap_or_default();
        assert!(error.contains(&format!("mqtt broker 127.0.0.1:{port}")), "{v}");
        let wifi = if i == 1 { "on" } else { "off" };
        assert_eq!(s["wifi"], wifi, "desired state of now: {s}");
    }
    assert!(killed.elapsed() < OUTAGE, "the checks took the whole outage");
    // Nothing reaches a plug while the broker is down.
    for (i, p) in plugs.iter().enumerate() {
        assert_eq!(
            p.relay(),
            Some(want_before(i + 1)),
            "plug-c{} moved during the outage",
            i + 1
        );
    }
    tokio::time::sleep(OUTAGE.saturating_sub(killed.elapsed())).await;
    broker.restart().await;

    wait_for_at_most("every plug converged after the restart", TIMEOUT, || {
        (1..=N).all(|i| {
            let on = i == 1;
            plugs[i - 1].relay() == Some(on) && reported(&core, &ap(i), if on { "on" } else { "off" })
        })
    })
    .await;
    let s = status(&d, "c1").await;
    assert_eq!(s["wifi"], "on", "{s}");
    assert_eq!(
        s["reason"], "teacher",
        "the request acknowledged during the outage holds: {s}"
    );
    for i in 1..=N {
        let s = status(&d, &format!("c{i}")).await;
        let v = ap_view(&s, &ap(i));
        assert_eq!(v["reachable"], true, "{v}");
        assert_eq!(v["observed"], s["wifi"], "{s}");
        assert_eq!(v["consecutive_failures"], 0, "{v}");
    }
    d.stop().await;
}

/// The broker is down when borne starts: the AP is shown unreachable with
/// the reason, and retried; once the broker and the plug are up, it is
/// switched and shown reachable again, without a restart of borne.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_ap_is_reported_and_recovers() {
    logs();
    let Some(mut broker) = TestMosquitto::start().await else {
        return;
    };
    let port = broker.port();
    broker.stop();
    let yaml = config(port, &[("c1", vec![tasmota("c1-plug", "plug-c1")])]);
    let d = TestDaemon::start(&yaml, ManualClock::at("2026-12-01T10:30:00+01:00")).await;
    let core = d.core.clone();
    wait_for_at_most("the AP shown unreachable", TIMEOUT, || {
        core.ap_state(&ApId::from("c1-plug"))
            .is_some_and(|s| !s.observed.reachable && s.consecutive_failures >= 1)
    })
    .await;
    let s = status(&d, "c1").await;
    let v = ap_view(&s, "c1-plug");
    assert_eq!(v["reachable"], false, "{v}");
    assert!(v["consecutive_failures"].as_u64().is_some_and(|n| n >= 1), "{v}");
    let error = v["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("mqtt broker 127.0.0.1:{port}")) && error.contains("not connected"),
        "the reason names the broker: {v}"
    );
    assert_eq!(s["wifi"], "on", "{s}");

    broker.restart().await;
    let plug = FakeDevice::tasmota(port, "plug-c1").await;
    wait_for_at_most("the AP switched and reachable", TIMEOUT, || {
        plug.relay() == Some(true) && reported(&core, "c1-plug", "on")
    })
    .await;
    let s = status(&d, "c1").await;
    let v = ap_view(&s, "c1-plug");
    assert_eq!(v["reachable"], true, "{v}");
    assert_eq!(v["observed"], "on", "{v}");
    assert_eq!(v["last_error"], Value::Null, "{v}");
    assert_eq!(v["consecutive_failures"], 0, "{v}");
    d.stop().await;
}
