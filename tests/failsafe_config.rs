//! The `failsafe`, `clock` and `idle_off_minutes` keys as `borne check`
//! sees them (issue 14): which access points hold a lease, the warnings for
//! those that cannot, and the range of a lease.

use borne::config::{DriverConfig, MqttLease, from_str};

fn yaml(extra: &str, aps: &str) -> String {
    format!(
        "{extra}\nmqtt: {{ host: 127.0.0.1 }}\nschedules:\n  day: {{ default_mode: available }}\n\
         schools:\n  - id: s1\n    schedule: day\n    classrooms:\n      - id: c1\n        access_points:\n{aps}"
    )
}

fn warnings(text: &str) -> Vec<String> {
    match from_str(text, "t.yaml", None) {
        Ok(l) => l.warnings.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("{e}\n{text}"),
    }
}

const TASMOTA: &str = "          - { id: plug, mqtt: { preset: tasmota, topic: plug-1 } }\n";
const GEN1: &str = "          - { id: gen1, mqtt: { preset: shelly, topic: shelly1-abc } }\n";
const GEN2: &str = "          - { id: gen2, mqtt: { preset: shelly-gen2, topic: shellyplus1-abc } }\n";
const GENERIC: &str = "          - { id: gen, mqtt: { command_topic: relay/set } }\n";
const GENERIC_LEASED: &str = "          - { id: genl, mqtt: { command_topic: relay2/set, lease_payload: '{\"state\":\"ON\",\"expires_in\":{seconds}}' } }\n";
const SIM: &str = "          - { id: sim, sim: {} }\n";

/// Tasmota, Shelly Gen2, a generic device with `lease_payload` and sim hold
/// the default 20-minute lease; Gen1 and a plain generic device get none and
/// a warning each.
#[test]
fn presets_that_cannot_hold_a_lease_are_warned_about() {
    let text = yaml("", &[TASMOTA, GEN1, GEN2, GENERIC, GENERIC_LEASED, SIM].concat());
    let loaded = from_str(&text, "t.yaml", None).expect("valid");
    let lease = |id: &str| loaded.config.access_point(id).unwrap().lease;
    for id in ["plug", "gen2", "genl", "sim"] {
        assert_eq!(lease(id), Some(std::time::Duration::from_secs(1200)), "{id}");
    }
    assert_eq!(lease("gen1"), None);
    assert_eq!(lease("gen"), None);
    let w: Vec<String> = loaded
        .warnings
        .iter()
        .map(ToString::to_string)
        .filter(|m| m.starts_with("access point"))
        .collect();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w.iter()
            .any(|m| m.contains("\"gen1\"") && m.contains("Shelly Gen1 cannot arm an off-timer")),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|m| m.contains("\"gen\"") && m.contains("no lease_payload")),
        "{w:#?}"
    );
    let DriverConfig::Mqtt(gen2) = &loaded.config.access_point("gen2").unwrap().driver else {
        panic!("gen2 is mqtt")
    };
    assert_eq!(gen2.command_topic, "shellyplus1-abc/rpc");
    assert!(matches!(&gen2.lease, Some(MqttLease::Payload(p)) if p.contains("\"toggle_after\":{seconds}")));
}

/// `lease_minutes: 0` disables leases, with a warning for every AP.
#[test]
fn leases_disabled_warn_for_every_access_point() {
    let w: Vec<String> = warnings(&yaml("failsafe: { lease_minutes: 0 }", &[TASMOTA, SIM].concat()))
        .into_iter()
        .filter(|m| m.starts_with("access point"))
        .collect();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w.iter().all(|m| m.contains("lease_minutes is 0")), "{w:#?}");
}

/// A lease outside Tasmota's PulseTime range (12 s .. 18 h) is an error,
/// and so is giving it twice.
#[test]
fn a_lease_out_of_range_or_given_twice_is_an_error() {
    for extra in [
        "failsafe: { lease_seconds: 5 }",
        "failsafe: { lease_minutes: 2000 }",
        "failsafe: { lease_seconds: 60, lease_minutes: 1 }",
    ] {
        let err = from_str(&yaml(extra, SIM), "t.yaml", None)
            .expect_err(extra)
            .to_string();
        assert!(err.contains("failsafe.lease_"), "{extra}: {err}");
    }
}

/// `configure_devices: false` leaves devices' power-on state alone.
#[test]
fn configure_devices_false_sends_nothing_at_first_contact() {
    let on = from_str(&yaml("", TASMOTA), "t.yaml", None).unwrap();
    let off = from_str(&yaml("failsafe: { configure_devices: false }", TASMOTA), "t.yaml", None).unwrap();
    let configure = |c: &borne::config::Config| match &c.access_point("plug").unwrap().driver {
        DriverConfig::Mqtt(m) => m.configure.clone(),
        _ => None,
    };
    assert_eq!(
        configure(&on.config),
        Some(("cmnd/plug-1/PowerOnState".to_owned(), "0".to_owned()))
    );
    assert_eq!(configure(&off.config), None);
}

/// With `idle_off_minutes`, a classroom whose APs cannot count clients is named.
#[test]
fn classrooms_that_cannot_use_idle_off_are_listed() {
    let w = warnings(&yaml("teacher_session: { idle_off_minutes: 15 }", TASMOTA));
    assert!(
        w.iter()
            .any(|m| m.contains("classroom \"c1\"") && m.contains("idle_off_minutes")),
        "{w:#?}"
    );
    let w = warnings(&yaml(
        "teacher_session: { idle_off_minutes: 15 }",
        &[TASMOTA, SIM].concat(),
    ));
    assert!(!w.iter().any(|m| m.contains("idle_off_minutes")), "{w:#?}");
}
