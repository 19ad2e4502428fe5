//! The MQTT driver against real MQTT brokers and fake devices.
//!
//! Every scenario runs twice: against the in-process [`ScriptedBroker`]
//! (always, so that `cargo test` on a machine with only Rust exercises the
//! driver over real MQTT on a real socket) and against a real Mosquitto
//! child process ([`TestMosquitto`]; prints `skipped: mosquitto not
//! installed` and passes when the binary is missing, unless
//! `BORNE_REQUIRE_PEERS=1`). All traffic stays on 127.0.0.1.

use borne_test_support::mqtt as mqtt_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use borne::config::{AccessPoint, ApId, Config};
use borne::driver::mqtt::{MqttDriver, MqttDriverOptions};
use borne::driver::{Driver, DriverError, Observation, ObservedWifi, Report};
use borne::policy::Wifi;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use mqtt_support::{
    FakeDevice, ScriptedBroker, Spy, TIMEOUT, TestBroker, TestMosquitto, ap_line, config, config_from, config_yaml,
    free_port, next_report, reports_until, wait_for_at_most,
};

/// A running driver with the receiving end of its reports.
struct Harness {
    driver: Arc<MqttDriver>,
    rx: mpsc::Receiver<(ApId, Report)>,
    config: Arc<Config>,
    token: CancellationToken,
}

impl Harness {
    /// Starts the driver and waits until it is connected and subscribed.
    async fn start(config: Arc<Config>) -> Self {
        Self::start_with(config, MqttDriverOptions::default()).await
    }

    async fn start_with(config: Arc<Config>, options: MqttDriverOptions) -> Self {
        let h = Self::start_unconnected(config, options);
        let driver = Arc::clone(&h.driver);
        wait_for_at_most("the driver to connect and subscribe", TIMEOUT, || {
            driver.is_subscribed()
        })
        .await;
        h
    }

    fn start_unconnected(config: Arc<Config>, options: MqttDriverOptions) -> Self {
        // The driver's logs, shown with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "borne=info".into()))
            .try_init();
        let (tx, rx) = mpsc::channel(1024);
        let token = CancellationToken::new();
        let broker = config.mqtt.clone().expect("config has an mqtt block");
        let driver = MqttDriver::start_with(&broker, &config, tx, token.clone(), options).expect("driver starts");
        Harness {
            driver,
            rx,
            config,
            token,
        }
    }

    fn ap(&self, id: &str) -> &AccessPoint {
        self.config.access_point(id).unwrap_or_else(|| panic!("no AP {id}"))
    }

    async fn apply(&self, id: &str, wifi: Wifi) -> Result<Observation, DriverError> {
        self.driver.apply(self.ap(id), wifi).await
    }

    async fn observe(&self, id: &str) -> Result<Observation, DriverError> {
        self.driver.observe(self.ap(id)).await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

fn id(s: &str) -> ApId {
    ApId::from(s)
}

fn tasmota(ap: &str, topic: &str) -> String {
    ap_line(ap, &format!("{{ preset: tasmota, topic: {topic} }}"))
}

fn shelly(ap: &str, topic: &str) -> String {
    ap_line(ap, &format!("{{ preset: shelly, topic: {topic} }}"))
}

/// Runs a scenario against both brokers: `NAME::scripted` always,
/// `NAME::mosquitto` when Mosquitto is installed.
macro_rules! on_both_brokers {
    ($(#[doc = $doc:literal])* $name:ident) => {
        mod $name {
            $(#[doc = $doc])*
            /// (In-process scripted broker.)
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn scripted() {
                let mut broker = super::ScriptedBroker::start().await;
                super::$name(&mut broker).await;
            }

            $(#[doc = $doc])*
            /// (Real Mosquitto; skipped when not installed.)
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mosquitto() {
                let Some(mut broker) = super::TestMosquitto::start().await else { return };
                super::$name(&mut broker).await;
            }
        }
    };
}

on_both_brokers!(
    /// A Tasmota plug is switched on and off with `cmnd/<t>/POWER`, and its
    /// `stat/<t>/POWER` answer and `tele/<t>/LWT` arrive as reports.
    tasmota_switches_on_and_off_and_reports_its_state
);
async fn tasmota_switches_on_and_off_and_reports_its_state(b: &mut impl TestBroker) {
    let device = FakeDevice::tasmota(b.port(), "plug-cm1").await;
    let mut h = Harness::start(config(b.port(), &tasmota("cm1", "plug-cm1"))).await;
    // The device's retained "Online" arrives with the subscription.
    assert_eq!(next_report(&mut h.rx).await, (id("cm1"), Report::Available(true)));
    assert_eq!(h.observe("cm1").await.unwrap().wifi, ObservedWifi::Unknown);

    let on = h.apply("cm1", Wifi::On).await.unwrap();
    assert_eq!(on.wifi, ObservedWifi::On);
    assert_eq!(device.wait_commands(1).await, ["ON"]);
    assert_eq!(
        next_report(&mut h.rx).await,
        (id("cm1"), Report::State(ObservedWifi::On))
    );
    assert_eq!(
        h.observe("cm1").await.unwrap(),
        Observation::read(ObservedWifi::On, None)
    );

    let off = h.apply("cm1", Wifi::Off).await.unwrap();
    assert_eq!(off.wifi, ObservedWifi::Off);
    assert_eq!(device.wait_commands(2).await, ["ON", "OFF"]);
    assert_eq!(
        next_report(&mut h.rx).await,
        (id("cm1"), Report::State(ObservedWifi::Off))
    );
    assert_eq!(
        h.observe("cm1").await.unwrap(),
        Observation::read(ObservedWifi::Off, None)
    );
    assert_eq!(device.relay(), Some(false));
}

on_both_brokers!(
    /// A Shelly Gen1 relay is switched with `shellies/<t>/relay/0/command`
    /// on/off; `shellies/<t>/relay/0` and `shellies/<t>/online` are reported.
    shelly_gen1_switches_on_and_off_and_reports_its_state
);
async fn shelly_gen1_switches_on_and_off_and_reports_its_state(b: &mut impl TestBroker) {
    let device = FakeDevice::shelly(b.port(), "shelly1-ce1").await;
    let mut h = Harness::start(config(b.port(), &shelly("ce1", "shelly1-ce1"))).await;
    assert_eq!(next_report(&mut h.rx).await, (id("ce1"), Report::Available(true)));

    assert_eq!(h.apply("ce1", Wifi::On).await.unwrap().wifi, ObservedWifi::On);
    assert_eq!(device.wait_commands(1).await, ["on"]);
    assert_eq!(
        next_report(&mut h.rx).await,
        (id("ce1"), Report::State(ObservedWifi::On))
    );
    assert_eq!(
        h.observe("ce1").await.unwrap(),
        Observation::read(ObservedWifi::On, None)
    );

    assert_eq!(h.apply("ce1", Wifi::Off).await.unwrap().wifi, ObservedWifi::Off);
    assert_eq!(device.wait_commands(2).await, ["on", "off"]);
    assert_eq!(
        next_report(&mut h.rx).await,
        (id("ce1"), Report::State(ObservedWifi::Off))
    );
}

on_both_brokers!(
    /// A generic device with a state topic is read back (`assumed: false`
    /// once it answered); without one, the commanded state is `assumed`.
    generic_devices_with_and_without_state_topic
);
async fn generic_devices_with_and_without_state_topic(b: &mut impl TestBroker) {
    let with = FakeDevice::generic(b.port(), "lab/with/set", Some("lab/with/state")).await;
    let without = FakeDevice::generic(b.port(), "lab/without/set", None).await;
    let aps = ap_line("with", "{ command_topic: lab/with/set, state_topic: lab/with/state }")
        + &ap_line("without", "{ command_topic: lab/without/set }");
    let mut h = Harness::start(config(b.port(), &aps)).await;

    assert_eq!(h.apply("with", Wifi::On).await.unwrap().wifi, ObservedWifi::On);
    assert_eq!(with.wait_commands(1).await, ["ON"]);
    assert_eq!(
        next_report(&mut h.rx).await,
        (id("with"), Report::State(ObservedWifi::On))
    );
    assert_eq!(
        h.observe("with").await.unwrap(),
        Observation::read(ObservedWifi::On, None)
    );

    assert_eq!(h.observe("without").await.unwrap().wifi, ObservedWifi::Unknown);
    let assumed = Observation {
        wifi: ObservedWifi::On,
        clients: None,
        assumed: true,
    };
    assert_eq!(h.apply("without", Wifi::On).await.unwrap(), assumed);
    assert_eq!(without.wait_commands(1).await, ["ON"]);
    assert_eq!(h.observe("without").await.unwrap(), assumed);
    // A device that does not answer keeps the command assumed.
    with.set_answers(false);
    let off = h.apply("with", Wifi::Off).await.unwrap();
    assert_eq!((off.wifi, off.assumed), (ObservedWifi::Off, true));
    assert_eq!(with.wait_commands(2).await, ["ON", "OFF"]);
    assert_eq!(
        h.observe("with").await.unwrap(),
        Observation {
            wifi: ObservedWifi::Off,
            clients: None,
            assumed: true
        }
    );
}

on_both_brokers!(
    /// Commands are not retained by default: a subscriber arriving after
    /// the command gets nothing; with `retain: true` it gets the command.
    commands_are_not_retained_by_default
);
async fn commands_are_not_retained_by_default(b: &mut impl TestBroker) {
    let aps = tasmota("plain", "plug-plain") + &ap_line("kept", "{ command_topic: lab/kept/set, retain: true }");
    let h = Harness::start(config(b.port(), &aps)).await;
    h.apply("plain", Wifi::On).await.unwrap();
    h.apply("kept", Wifi::On).await.unwrap();

    let late = Spy::start(b.port(), "cmnd/plug-plain/POWER").await;
    late.sync().await;
    assert_eq!(
        late.received(),
        [],
        "a non-retained command must not reach a late subscriber"
    );

    let late_kept = Spy::start(b.port(), "lab/kept/set").await;
    late_kept.sync().await;
    assert_eq!(
        late_kept.received(),
        [("lab/kept/set".to_owned(), b"ON".to_vec(), true)]
    );
}

on_both_brokers!(
    /// A device's availability (last will "Offline" when it vanishes,
    /// "Online" when it comes back) arrives as `Report::Available`.
    availability_changes_are_reported
);
async fn availability_changes_are_reported(b: &mut impl TestBroker) {
    let device = FakeDevice::tasmota(b.port(), "plug-av").await;
    let mut h = Harness::start(config(b.port(), &tasmota("av", "plug-av"))).await;
    assert_eq!(next_report(&mut h.rx).await, (id("av"), Report::Available(true)));
    device.vanish();
    assert_eq!(next_report(&mut h.rx).await, (id("av"), Report::Available(false)));
    let _back = FakeDevice::tasmota(b.port(), "plug-av").await;
    assert_eq!(next_report(&mut h.rx).await, (id("av"), Report::Available(true)));

    let shelly_dev = FakeDevice::shelly(b.port(), "shelly-av").await;
    let config2 = config(b.port(), &(tasmota("av", "plug-av") + &shelly("sav", "shelly-av")));
    h.driver.reconfigure(&config2).await;
    let seen = reports_until(&mut h.rx, |ap, _| ap.as_str() == "sav").await;
    assert_eq!(seen.last(), Some(&(id("sav"), Report::Available(true))));
    shelly_dev.vanish();
    let seen = reports_until(&mut h.rx, |ap, _| ap.as_str() == "sav").await;
    assert_eq!(seen.last(), Some(&(id("sav"), Report::Available(false))));
}

on_both_brokers!(
    /// The broker dies: `apply` fails at once with Unreachable, the driver
    /// reconnects by itself when the broker is back, reports `Lost` for
    /// every MQTT AP, and the next `apply` works, with the same driver.
    broker_restart_is_survived
);
async fn broker_restart_is_survived(b: &mut impl TestBroker) {
    let port = b.port();
    let device = FakeDevice::tasmota(port, "plug-rs").await;
    let aps = tasmota("rs", "plug-rs") + &ap_line("gen", "{ command_topic: lab/gen/set }");
    let mut h = Harness::start(config(port, &aps)).await;
    h.apply("rs", Wifi::On).await.unwrap();
    device.wait_commands(1).await;
    assert_eq!(h.driver.connections(), 1);

    b.stop();
    let driver = Arc::clone(&h.driver);
    wait_for_at_most("the driver to notice the broker is gone", TIMEOUT, || {
        !driver.is_connected()
    })
    .await;
    let started = Instant::now();
    let err = h.apply("rs", Wifi::Off).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "apply while down took {:?}",
        started.elapsed()
    );
    let DriverError::Unreachable(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(
        msg.starts_with(&format!("mqtt broker 127.0.0.1:{port}: not connected")),
        "{msg}"
    );
    assert!(matches!(h.observe("rs").await, Err(DriverError::Unreachable(_))));

    b.restart().await;
    wait_for_at_most("the driver to reconnect by itself", TIMEOUT, || {
        driver.connections() == 2
    })
    .await;
    let mut lost = Vec::new();
    reports_until(&mut h.rx, |ap, r| {
        if *r == Report::Lost {
            lost.push(ap.clone());
        }
        lost.len() == 2
    })
    .await;
    lost.sort();
    assert_eq!(lost, [id("gen"), id("rs")]);

    wait_for_at_most("the device to come back", TIMEOUT, || {
        device.connections() >= 2 && device.is_ready()
    })
    .await;
    wait_for_at_most("the driver to re-subscribe", TIMEOUT, || driver.is_subscribed()).await;
    assert_eq!(h.apply("rs", Wifi::Off).await.unwrap().wifi, ObservedWifi::Off);
    // The command refused while down was not delivered late.
    assert_eq!(device.wait_commands(2).await, ["ON", "OFF"]);
    let seen = reports_until(&mut h.rx, |_, r| matches!(r, Report::State(_))).await;
    assert_eq!(seen.last(), Some(&(id("rs"), Report::State(ObservedWifi::Off))));
}

/// Deterministic junk bytes (no RNG dependency), invalid UTF-8 included.
fn junk(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8 | 0x80
        })
        .collect()
}

on_both_brokers!(
    /// Garbage on state and availability topics (random bytes, 1 MiB,
    /// unknown words, wrong case) makes no report, no panic and no
    /// reconnection; the next valid message is still reported.
    garbage_payloads_are_ignored_and_the_loop_keeps_working
);
async fn garbage_payloads_are_ignored_and_the_loop_keeps_working(b: &mut impl TestBroker) {
    let device = FakeDevice::tasmota(b.port(), "plug-gb").await;
    let mut h = Harness::start(config(b.port(), &tasmota("gb", "plug-gb"))).await;
    assert_eq!(next_report(&mut h.rx).await, (id("gb"), Report::Available(true)));
    // Proves the garbage really went through the broker.
    let spy = Spy::start(b.port(), "stat/plug-gb/POWER").await;

    device.publish_state(junk(200)).await;
    device.publish_state(vec![0xff, 0xfe, b'O', b'N']).await;
    device.publish_state(vec![b'X'; 1 << 20]).await;
    device.publish_state(junk(1 << 20)).await;
    for word in ["TOGGLE", "on", "On", "", "ON ON", "{\"POWER\":\"ON\"}"] {
        device.publish_state(word).await;
    }
    device.publish("tele/plug-gb/LWT", "Maybe").await;
    device.publish("tele/plug-gb/LWT", junk(64)).await;
    device.publish_state("ON\n").await;

    let seen = reports_until(&mut h.rx, |_, r| matches!(r, Report::State(_))).await;
    assert_eq!(seen, [(id("gb"), Report::State(ObservedWifi::On))]);
    spy.sync().await;
    let sizes: Vec<usize> = spy.received().iter().map(|(_, p, _)| p.len()).collect();
    assert_eq!(sizes, [200, 4, 1 << 20, 1 << 20, 6, 2, 2, 0, 5, 14, 3]);
    assert_eq!(
        h.driver.connections(),
        1,
        "a garbage payload must not cost the connection"
    );
    assert!(h.driver.is_connected());
    assert_eq!(h.apply("gb", Wifi::Off).await.unwrap().wifi, ObservedWifi::Off);
    assert_eq!(device.wait_commands(1).await, ["OFF"]);
}

on_both_brokers!(
    /// QoS 0, 1 and 2 commands are each acknowledged and delivered, and 24
    /// concurrent applies are each released by their own acknowledgement.
    every_qos_and_concurrent_applies_are_acknowledged
);
async fn every_qos_and_concurrent_applies_are_acknowledged(b: &mut impl TestBroker) {
    let mut aps = String::new();
    for q in 0..3 {
        aps += &ap_line(
            &format!("q{q}"),
            &format!("{{ command_topic: lab/q{q}/set, qos: {q} }}"),
        );
    }
    for i in 0..24 {
        aps += &ap_line(
            &format!("many{i}"),
            &format!("{{ command_topic: lab/many{i}/set, qos: {} }}", i % 3),
        );
    }
    let spy = Spy::start(b.port(), "lab/#").await;
    let h = Harness::start(config(b.port(), &aps)).await;
    for q in 0..3 {
        let ap = format!("q{q}");
        assert_eq!(h.apply(&ap, Wifi::On).await.unwrap().wifi, ObservedWifi::On, "qos {q}");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let driver = Arc::clone(&h.driver);
        let ap = h.ap(&format!("many{i}")).clone();
        let wifi = if i % 2 == 0 { Wifi::On } else { Wifi::Off };
        tasks.spawn(async move { driver.apply(&ap, wifi).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("apply");
    }
    let deadline = Instant::now() + TIMEOUT;
    loop {
        spy.sync().await;
        if spy.received().len() >= 27 || Instant::now() > deadline {
            break;
        }
    }
    let mut got: Vec<(String, Vec<u8>)> = spy.received().into_iter().map(|(t, p, _)| (t, p)).collect();
    got.sort();
    let mut want: Vec<(String, Vec<u8>)> = (0..3).map(|q| (format!("lab/q{q}/set"), b"ON".to_vec())).collect();
    want.extend((0..24).map(|i| {
        (
            format!("lab/many{i}/set"),
            if i % 2 == 0 { b"ON".to_vec() } else { b"OFF".to_vec() },
        )
    }));
    want.sort();
    assert_eq!(got, want);
}

on_both_brokers!(
    /// After a reload, new topics are subscribed and old ones dropped:
    /// messages of a removed AP make no report, the new AP's do.
    reconfigure_follows_the_new_topics
);
async fn reconfigure_follows_the_new_topics(b: &mut impl TestBroker) {
    let old = FakeDevice::tasmota(b.port(), "plug-old").await;
    let mut h = Harness::start(config(b.port(), &tasmota("old", "plug-old"))).await;
    assert_eq!(next_report(&mut h.rx).await, (id("old"), Report::Available(true)));

    let new = FakeDevice::tasmota(b.port(), "plug-new").await;
    let config2 = config(b.port(), &tasmota("new", "plug-new"));
    h.driver.reconfigure(&config2).await;
    h.config = config2;
    let driver = Arc::clone(&h.driver);
    wait_for_at_most("the new subscriptions", TIMEOUT, || driver.is_subscribed()).await;
    assert_eq!(next_report(&mut h.rx).await, (id("new"), Report::Available(true)));

    old.publish_state("ON").await;
    new.publish_state("OFF").await;
    let seen = reports_until(&mut h.rx, |_, r| matches!(r, Report::State(_))).await;
    assert_eq!(seen, [(id("new"), Report::State(ObservedWifi::Off))]);
    assert_eq!(h.apply("new", Wifi::On).await.unwrap().wifi, ObservedWifi::On);
    assert_eq!(new.wait_commands(1).await, ["ON"]);
}

/// Shutdown sends a clean DISCONNECT and later applies fail at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_disconnects_cleanly() {
    let broker = ScriptedBroker::start().await;
    let h = Harness::start(config(broker.port(), &tasmota("sd", "plug-sd"))).await;
    h.driver.shutdown().await;
    wait_for_at_most("the DISCONNECT", TIMEOUT, || {
        broker.clean_disconnects() == ["borne-test"]
    })
    .await;
    assert!(!h.driver.is_connected());
    let err = h.apply("sd", Wifi::On).await.unwrap_err();
    assert!(
        matches!(&err, DriverError::Unreachable(m) if m.contains("driver stopped")),
        "{err:?}"
    );
}

/// The daemon's token stops the driver too (no call to `shutdown`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_token_stops_the_driver() {
    let broker = ScriptedBroker::start().await;
    let h = Harness::start(config(broker.port(), &tasmota("tk", "plug-tk"))).await;
    h.token.cancel();
    wait_for_at_most("the DISCONNECT", TIMEOUT, || {
        broker.clean_disconnects() == ["borne-test"]
    })
    .await;
    let driver = Arc::clone(&h.driver);
    wait_for_at_most("the driver to stop", TIMEOUT, || !driver.is_connected()).await;
}

/// A broker that never acknowledges makes `apply` time out (bounded), and
/// the driver works again once acknowledgements come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_times_out_when_the_broker_never_acknowledges() {
    let broker = ScriptedBroker::start().await;
    let options = MqttDriverOptions {
        ack_timeout: Duration::from_millis(300),
        ..MqttDriverOptions::default()
    };
    let h = Harness::start_with(config(broker.port(), &tasmota("to", "plug-to")), options).await;
    broker.set_ack_publishes(false);
    let started = Instant::now();
    let err = h.apply("to", Wifi::On).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        // The first command to a Tasmota is `PowerOnState 0` (issue 14), then PulseTime and POWER.
        matches!(&err, DriverError::Timeout { doing, .. } if doing.contains("cmnd/plug-to/")),
        "{err:?}"
    );
    // Not acknowledged means not known: nothing is assumed.
    assert_eq!(h.observe("to").await.unwrap().wifi, ObservedWifi::Unknown);
    broker.set_ack_publishes(true);
    assert_eq!(h.apply("to", Wifi::On).await.unwrap().wifi, ObservedWifi::On);
}

/// With no broker at all, `apply` and `observe` fail at once with
/// Unreachable naming the broker; starting does not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broker_means_unreachable_at_once() {
    let port = free_port();
    let h = Harness::start_unconnected(config(port, &tasmota("nb", "plug-nb")), MqttDriverOptions::default());
    for _ in 0..3 {
        let started = Instant::now();
        let err = h.apply("nb", Wifi::Off).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(
            matches!(&err, DriverError::Unreachable(m) if m.starts_with(&format!("mqtt broker 127.0.0.1:{port}: not connected"))),
            "{err:?}"
        );
        assert!(matches!(h.observe("nb").await, Err(DriverError::Unreachable(_))));
    }
    assert!(!h.driver.is_connected());
}

/// An `apply` refused before the first connection makes that connection
/// report `Lost`, so the reconciler re-sends without waiting for its backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_apply_before_first_connection_reports_lost() {
    let mut broker = ScriptedBroker::start().await;
    broker.stop();
    let options = MqttDriverOptions {
        reconnect_initial: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(200),
        ..MqttDriverOptions::default()
    };
    let mut h = Harness::start_unconnected(config(broker.port(), &tasmota("fc", "plug-fc")), options);
    assert!(h.apply("fc", Wifi::On).await.is_err());
    broker.restart().await;
    let driver = Arc::clone(&h.driver);
    wait_for_at_most("the first connection", TIMEOUT, || driver.connections() == 1).await;
    assert_eq!(next_report(&mut h.rx).await, (id("fc"), Report::Lost));
}

/// TLS to Mosquitto with the CA from `ca_file` (rustls, ring provider);
/// a different CA is refused with a certificate error, never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_mosquitto_with_ca_file() {
    let Some(broker) = TestMosquitto::start_tls().await else {
        return;
    };
    let ca = broker.tls_files().expect("tls").ca.clone();
    let device_free_yaml = |ca: &std::path::Path| {
        config_yaml(broker.port(), &ap_line("tls", "{ command_topic: lab/tls/set }")).replace(
            "keep_alive_seconds: 5 }",
            &format!("keep_alive_seconds: 5, tls: {{ ca_file: \"{}\" }} }}", ca.display()),
        )
    };
    let h = Harness::start(config_from(&device_free_yaml(&ca))).await;
    assert_eq!(h.apply("tls", Wifi::On).await.unwrap().wifi, ObservedWifi::On);

    let other = tempfile::tempdir().unwrap();
    let Some(wrong) = mqtt_support::TlsFiles::make(other.path()) else {
        return;
    };
    let bad = Harness::start_unconnected(config_from(&device_free_yaml(&wrong.ca)), MqttDriverOptions::default());
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let err = bad.apply("tls", Wifi::On).await.unwrap_err();
        let DriverError::Unreachable(msg) = &err else {
            panic!("{err:?}")
        };
        if msg.contains("certificate") || msg.contains("Certificate") {
            break;
        }
        assert!(Instant::now() < deadline, "no certificate error: {msg}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!bad.driver.is_connected());
}

on_both_brokers!(
    /// Back-to-back commands to an answering plug are not held back by
    /// Nagle + delayed ACKs (`TCP_NODELAY` on borne's socket; the harness's
    /// Mosquitto has `set_tcp_nodelay true`). Measured here: ~0.1 ms per
    /// apply; 0.8 ms without borne's NODELAY, 4-10 ms without the broker's.
    /// The bound only catches gross stalls, to stay green on a loaded CI.
    sequential_applies_are_not_delayed_by_nagle
);
async fn sequential_applies_are_not_delayed_by_nagle(b: &mut impl TestBroker) {
    const N: u32 = 60;
    let device = FakeDevice::tasmota(b.port(), "plug-nd").await;
    let h = Harness::start(config(b.port(), &tasmota("nd", "plug-nd"))).await;
    let started = Instant::now();
    for i in 0..N {
        let wifi = if i % 2 == 0 { Wifi::On } else { Wifi::Off };
        h.apply("nd", wifi).await.unwrap();
    }
    let mean = started.elapsed() / N;
    println!("mean apply latency: {mean:?}");
    device.wait_commands(N as usize).await;
    // Generous bound for a loaded 2-core CI machine; Nagle stalls are ~44 ms.
    assert!(mean < Duration::from_millis(20), "mean apply latency {mean:?}");
}
