//! Issue 11 items 1 and 2: what a reload does to access points that move
//! or leave. An AP whose classroom or settings change is read again and
//! driven to its new classroom's state at once, through a fresh connection
//! (real sshd for the SSH case); an AP that leaves is switched off through
//! its old settings and the audit says so (`ap.release`), unless its device
//! is another AP's now (real Mosquitto and a fake Tasmota plug for MQTT).
//!
//! SSH and MQTT tests skip with a note when `sshd` or `mosquitto` is
//! missing, unless `BORNE_REQUIRE_PEERS=1`.

use std::sync::Arc;

use borne::policy::Wifi;
use borne_test_support::daemon::{ManualClock, TIMEOUT, TestDaemon, load_config, wait_for};
use borne_test_support::mqtt::{FakeDevice, TestMosquitto};
use borne_test_support::ssh::{SshFake as _, TestSshd, current_user};

/// Two schedules: `open` (always on) and `closed` (always locked).
const HEAD: &str = "demo: true\ntimezone: Europe/Paris\nlisten: 127.0.0.1:0\nstate_dir: STATE_DIR\n\
reconciler: { backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600 }\n\
schedules:\n  open: { default_mode: on, rules: [] }\n  closed: { default_mode: locked, rules: [] }\n\
users:\n  - { name: admin, role: admin, token: admin-token-123 }\n";

const NOON: &str = "2026-12-01T12:00:00+01:00";

/// A configuration with `head` (e.g. an `mqtt:` block) and classrooms
/// `(id, schedule, [access point YAML])`.
fn yaml(head: &str, classrooms: &[(&str, &str, &[String])]) -> String {
    let mut y = format!("{HEAD}{head}schools:\n  - id: s1\n    schedule: closed\n    classrooms:\n");
    for (id, schedule, aps) in classrooms {
        y.push_str(&format!(
            "      - {{ id: {id}, schedule: {schedule}, access_points: [ {} ] }}\n",
            aps.join(", ")
        ));
    }
    y
}

fn sim(id: &str) -> String {
    format!("{{ id: {id}, sim: {{}} }}")
}

async fn reload(d: &TestDaemon, yaml: &str) {
    d.core
        .replace_config(Arc::new(load_config(yaml, d.dir.path())))
        .await
        .expect("reload");
}

/// The `ap.release` audit rows as `(access point, classroom, result)`.
fn releases(d: &TestDaemon) -> Vec<(String, String, String)> {
    let db = d.dir.path().join("state").join("borne.db");
    let c = rusqlite::Connection::open(db).unwrap();
    let mut q = c
        .prepare("SELECT ap, classroom, result FROM audit WHERE action = 'ap.release' ORDER BY id")
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn wait_releases(d: &TestDaemon, n: usize) -> Vec<(String, String, String)> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let rows = releases(d);
        if rows.len() >= n {
            return rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} ap.release rows expected, got {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Item 1: an AP moved from an `on` classroom into a locked one is switched
/// off at once, not at the locked classroom's next change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_point_moved_into_a_locked_classroom_goes_off_at_once() {
    let before = yaml(
        "",
        &[("c1", "open", &[sim("a"), sim("b")]), ("c2", "closed", &[sim("c")])],
    );
    let d = TestDaemon::start(&before, ManualClock::at(NOON)).await;
    d.wait_sim("a", Wifi::On).await;
    d.wait_sim("c", Wifi::Off).await;
    let after = yaml(
        "",
        &[("c1", "open", &[sim("b")]), ("c2", "closed", &[sim("c"), sim("a")])],
    );
    reload(&d, &after).await;
    d.wait_sim("a", Wifi::Off).await;
    assert_eq!(d.sim.state("b"), Some(Wifi::On), "b stayed where it was");
    assert!(
        releases(&d).is_empty(),
        "a moved AP is not released: {:?}",
        releases(&d)
    );
    // And back into an `on` classroom: on again at once.
    reload(&d, &before).await;
    d.wait_sim("a", Wifi::On).await;
}

/// Item 2: an AP whose classroom is removed, and an AP removed from a
/// classroom that stays, are switched off before borne lets go of them,
/// with an `ap.release` audit row each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_access_points_are_switched_off_and_audited() {
    let before = yaml(
        "",
        &[("c1", "open", &[sim("a")]), ("c2", "open", &[sim("b"), sim("c")])],
    );
    let d = TestDaemon::start(&before, ManualClock::at(NOON)).await;
    for ap in ["a", "b", "c"] {
        d.wait_sim(ap, Wifi::On).await;
    }
    let after = yaml("", &[("c2", "open", &[sim("c")])]);
    reload(&d, &after).await;
    d.wait_sim("a", Wifi::Off).await;
    d.wait_sim("b", Wifi::Off).await;
    let mut rows = wait_releases(&d, 2).await;
    rows.sort();
    assert_eq!(
        rows,
        [
            ("a".to_owned(), "c1".to_owned(), "ok".to_owned()),
            ("b".to_owned(), "c2".to_owned(), "ok".to_owned())
        ]
    );
    assert_eq!(d.sim.state("c"), Some(Wifi::On));
}

/// Item 2: an AP that cannot be reached when it is removed is released
/// with an error in the audit, within its bound, and nothing retries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_access_point_that_does_not_answer_is_audited_as_an_error() {
    let before = yaml("", &[("c1", "open", &[sim("a"), sim("b")])]);
    let d = TestDaemon::start(&before, ManualClock::at(NOON)).await;
    d.wait_sim("a", Wifi::On).await;
    d.sim.set_unreachable("a", true);
    reload(&d, &yaml("", &[("c1", "open", &[sim("b")])])).await;
    let rows = wait_releases(&d, 1).await;
    assert_eq!(rows[0].0, "a");
    assert!(rows[0].2.starts_with("error: "), "{rows:?}");
    assert!(rows[0].2.contains("cut off"), "{rows:?}");
    assert_eq!(d.sim.state("a"), Some(Wifi::On), "unreachable: left as it is");
}

// ------------------------------------------------------------------ SSH

fn ssh_ap(id: &str, peer: &TestSshd) -> String {
    format!(
        "{{ id: {id}, ssh: {{ host: 127.0.0.1, port: {}, user: \"{}\", key_file: \"{}\", known_hosts: \"{}\", \
         connect_timeout_seconds: 5, command_timeout_seconds: 10 }} }}",
        peer.port,
        current_user(),
        peer.client_key.display(),
        peer.known_hosts.display()
    )
}

/// Item 1 over SSH: an AP of a locked classroom re-addressed (another port,
/// another device behind it, radios on) is read and switched off at once
/// through a new connection; the connection to the old address is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readdressed_ssh_access_point_is_read_and_driven_at_once() {
    let (Some(old), Some(new)) = (TestSshd::start(), TestSshd::start()) else {
        return;
    };
    let before = yaml("", &[("c1", "closed", &[ssh_ap("a", &old)])]);
    let d = TestDaemon::start(&before, ManualClock::at(NOON)).await;
    wait_for("the old device is off and read back", || {
        old.fake.all(false)
            && d.core
                .ap_state(&"a".into())
                .is_some_and(|s| s.observed.wifi.as_str() == "off")
    })
    .await;
    wait_for("the old connection kept for reuse", || old.open_connections() == 1).await;
    for radio in new.fake.radios() {
        new.fake.set_radio(&radio, true);
    }
    reload(&d, &yaml("", &[("c1", "closed", &[ssh_ap("a", &new)])])).await;
    wait_for("the new device switched off", || new.fake.all(false)).await;
    wait_for("the old connection closed", || old.open_connections() == 0).await;
    assert!(releases(&d).is_empty(), "{:?}", releases(&d));
}

// ----------------------------------------------------------------- MQTT

fn tasmota(id: &str, topic: &str) -> String {
    format!("{{ id: {id}, mqtt: {{ preset: tasmota, topic: {topic} }} }}")
}

fn broker(port: u16) -> String {
    format!("mqtt: {{ host: 127.0.0.1, port: {port}, client_id: borne-reload-test, keep_alive_seconds: 5 }}\n")
}

/// Item 2 as seen: a Tasmota plug on for its classroom gets `OFF` when a
/// reload removes the classroom, and the audit says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasmota_plug_of_a_removed_classroom_gets_off() {
    let Some(mosquitto) = TestMosquitto::start().await else {
        return;
    };
    let port = mosquitto.port();
    let plug = FakeDevice::tasmota(port, "plug-a").await;
    let other = FakeDevice::tasmota(port, "plug-b").await;
    let before = yaml(
        &broker(port),
        &[
            ("c1", "open", &[tasmota("a", "plug-a")]),
            ("c2", "open", &[tasmota("b", "plug-b")]),
        ],
    );
    let d = TestDaemon::start(&before, ManualClock::at(NOON)).await;
    wait_for("plug a on", || plug.relay() == Some(true)).await;
    wait_for("plug b on", || other.relay() == Some(true)).await;
    reload(&d, &yaml(&broker(port), &[("c2", "open", &[tasmota("b", "plug-b")])])).await;
    wait_for("plug a off", || plug.relay() == Some(false)).await;
    let rows = wait_releases(&d, 1).await;
    assert_eq!(rows, [("a".to_owned(), "c1".to_owned(), "ok".to_owned())]);
    assert_eq!(plug.commands().last().map(String::as_str), Some("OFF"));
    assert_eq!(other.relay(), Some(true));
}

/// Item 2, the exception: an AP removed under one id whose plug is another
/// AP's now (same command topic, a new id in a classroom that is on) is not
/// switched off: the new AP drives it, and nothing is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plug_moved_to_another_id_is_not_switched_off() {
    let Some(mosquitto) = TestMosquitto::start().await else {
        return;
    };
    let port = mosquitto.port();
    let plug = FakeDevice::tasmota(port, "plug-a").await;
    let before = yaml(&broker(port), &[("c1", "open", &[tasmota("a", "plug-a")])]);
    let d = TestDaemon::start(&before, ManualClock::at(NOON)).await;
    wait_for("plug on", || plug.relay() == Some(true)).await;
    let sent = plug.commands().len();
    let after = yaml(&broker(port), &[("c9", "open", &[tasmota("a9", "plug-a")])]);
    reload(&d, &after).await;
    wait_for("the plug read under its new id", || {
        d.core
            .ap_state(&"a9".into())
            .is_some_and(|s| s.observed.wifi.as_str() == "on")
    })
    .await;
    assert!(
        !plug.commands()[sent..].iter().any(|c| c == "OFF"),
        "{:?}",
        plug.commands()
    );
    // Moved into a locked classroom instead: off at once.
    let locked = yaml(&broker(port), &[("c9", "closed", &[tasmota("a9", "plug-a")])]);
    reload(&d, &locked).await;
    wait_for("plug off", || plug.relay() == Some(false)).await;
    // Long after any release would have been audited.
    assert!(releases(&d).is_empty(), "{:?}", releases(&d));
}
