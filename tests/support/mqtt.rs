//! MQTT test harness, reusable by driver, daemon-level tests and benchmarks.
//!
//! Brokers (both implement [`TestBroker`]: `port`, `stop`, `restart`):
//! - [`TestMosquitto::start`] runs a real `mosquitto` as a child process on a
//!   free loopback port (`listener PORT 127.0.0.1`, anonymous, no
//!   persistence, `set_tcp_nodelay true` as advised for production, config
//!   in a tempdir), waits until it accepts connections,
//!   can [`stop`](TestBroker::stop) it (SIGKILL, as a crash) and
//!   [`restart`](TestBroker::restart) it on the same port, and kills it by
//!   PID on drop, also when the test panics. It returns `None` when the
//!   binary is missing, after [`require_peer`](crate::peers::require_peer)
//!   (a skip on stderr, or a failure under `BORNE_REQUIRE_PEERS=1`).
//!   [`TestMosquitto::start_tls`] adds a TLS listener with a throw-away CA
//!   made with `openssl` ([`TlsFiles`]).
//! - [`ScriptedBroker::start`] (in `broker.rs`) is an in-process broker on
//!   rumqttc's packet codec: always available, scriptable
//!   (`set_ack_publishes(false)`), records what it receives.
//!
//! Devices and observers:
//! - [`FakeDevice`] is a test-side rumqttc client that behaves like a
//!   Tasmota plug, a Shelly Gen1 relay or a generic device: it subscribes to
//!   its command topic, records commands, switches its relay, answers on its
//!   state topic, publishes availability (retained, with a retained last
//!   will for the offline word), reconnects by itself, and can
//!   [`vanish`](FakeDevice::vanish) (TCP dropped without DISCONNECT, so the
//!   broker publishes its will).
//! - [`Spy`] subscribes to a filter and records what it receives;
//!   [`Spy::sync`] is a barrier (everything the broker sent it before is in).
//!
//! - [`require_clients`] finds `mosquitto_sub` and `mosquitto_pub`;
//!   [`Subscriber`] runs `mosquitto_sub -v` and hands over its lines.
//!
//! Helpers: [`wait_for_at_most`] polls a condition (never a bare sleep),
//! [`TIMEOUT`] is the one global limit, [`config_yaml`]/[`config`] build a
//! validated `Config` for a broker port, [`next_report`]/[`reports_until`]
//! read the driver's `ReportSink`.

pub mod broker;
pub mod clients;
pub mod firmware;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use borne::config::{ApId, Config};
use borne::driver::Report;
use rumqttc::{AsyncClient, Event, Incoming, LastWill, MqttOptions, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use broker::ScriptedBroker;

pub use crate::wait::{TIMEOUT, free_port, wait_for_at_most};

/// A broker the tests can crash and bring back.
pub trait TestBroker {
    /// Its port on 127.0.0.1.
    fn port(&self) -> u16;
    /// Takes it down at once, like a crash.
    fn stop(&mut self);
    /// Brings it back on the same port and waits until it accepts connections.
    fn restart(&mut self) -> impl std::future::Future<Output = ()>;
}

impl TestBroker for ScriptedBroker {
    fn port(&self) -> u16 {
        ScriptedBroker::port(self)
    }
    fn stop(&mut self) {
        ScriptedBroker::stop(self);
    }
    fn restart(&mut self) -> impl std::future::Future<Output = ()> {
        ScriptedBroker::restart(self)
    }
}

// ---------------------------------------------------------------- mosquitto

/// Where `mosquitto` is (Debian puts it in `/usr/sbin`, not on every
/// user's `PATH`).
pub fn mosquitto_binary() -> Option<PathBuf> {
    crate::peers::find_program("mosquitto")
}

/// The `mosquitto` binary, or `None` after a skip (a failure under
/// `BORNE_REQUIRE_PEERS=1`).
#[track_caller]
pub fn require_mosquitto() -> Option<PathBuf> {
    crate::peers::require_program("mosquitto", "mosquitto")
}

/// The `mosquitto` binary when the command-line clients (`mosquitto_sub`,
/// `mosquitto_pub`) are there too, or `None` after a skip.
#[track_caller]
pub fn require_clients() -> Option<PathBuf> {
    let bin = require_mosquitto()?;
    let clients = ["mosquitto_sub", "mosquitto_pub"]
        .iter()
        .all(|c| crate::peers::find_program(c).is_some());
    crate::peers::require_peer(
        "mosquitto_sub and mosquitto_pub (Debian: apt-get install -y mosquitto-clients)",
        clients,
    )
    .then_some(bin)
}

/// Writes `conf` to `dir/mosquitto.conf` and starts `bin` on it, its
/// stderr appended to `dir/mosquitto.log`.
pub fn spawn_mosquitto(bin: &Path, dir: &Path, conf: &str) -> Child {
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).expect("write mosquitto.conf");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("mosquitto.log"))
        .expect("mosquitto.log");
    Command::new(bin)
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn mosquitto")
}

pub use crate::tls::TlsFiles;

/// A `mosquitto` child process on a free loopback port.
pub struct TestMosquitto {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// `Some` when started with TLS: the listener speaks TLS only.
    tls: Option<TlsFiles>,
}

impl TestMosquitto {
    /// Starts one (plain MQTT), or `None` when mosquitto is not installed
    /// (see [`require_mosquitto`]).
    pub async fn start() -> Option<Self> {
        Self::start_inner(false).await
    }

    /// Starts one whose listener is TLS only, or `None` when mosquitto or
    /// openssl is missing (printing why).
    pub async fn start_tls() -> Option<Self> {
        Self::start_inner(true).await
    }

    async fn start_inner(tls: bool) -> Option<Self> {
        let bin = require_mosquitto()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = if tls {
            match TlsFiles::make(dir.path()) {
                Some(files) => Some(files),
                None => {
                    crate::peers::require_peer("openssl, to make test certificates", false);
                    return None;
                }
            }
        } else {
            None
        };
        let mut me = TestMosquitto {
            bin,
            dir,
            port: free_port(),
            child: None,
            tls,
        };
        me.spawn().await;
        Some(me)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS files, when started with [`TestMosquitto::start_tls`].
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// What mosquitto wrote on stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let mut text = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\nlog_dest stderr\n\
             log_type error\nlog_type warning\nlog_type notice\n",
            self.port
        );
        if let Some(t) = &self.tls {
            text.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ));
        }
        self.child = Some(spawn_mosquitto(&self.bin, self.dir.path(), &text));
        let port = self.port;
        let mut exited = None;
        let child = self.child.as_mut().expect("just set");
        wait_for_at_most("mosquitto to accept connections", TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        if let Some(status) = exited {
            panic!("mosquitto exited with {status}:\n{}", self.log());
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // By PID (std's Child::kill is SIGKILL to this very child).
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TestBroker for TestMosquitto {
    fn port(&self) -> u16 {
        self.port
    }

    fn stop(&mut self) {
        self.kill();
    }

    fn restart(&mut self) -> impl std::future::Future<Output = ()> {
        self.kill();
        self.spawn()
    }
}

impl Drop for TestMosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------- config

/// A configuration with one school, one classroom and the given access
/// points (YAML list items at 10 spaces of indentation, e.g.
/// `"          - id: plug\n            mqtt: { preset: tasmota, topic: plug }\n"`).
pub fn config_yaml(port: u16, access_points: &str) -> String {
    format!(
        "schedules:\n  always: {{ default_mode: locked }}\n\
         mqtt: {{ host: 127.0.0.1, port: {port}, client_id: borne-test, keep_alive_seconds: 5 }}\n\
         schools:\n  - id: school\n    schedule: always\n    classrooms:\n      - id: room\n        access_points:\n\
         {access_points}"
    )
}

/// [`config_yaml`], validated.
pub fn config(port: u16, access_points: &str) -> Arc<Config> {
    config_from(&config_yaml(port, access_points))
}

/// A validated configuration from YAML text.
pub fn config_from(yaml: &str) -> Arc<Config> {
    match borne::config::from_str(yaml, "test.yaml", None) {
        Ok(loaded) => Arc::new(loaded.config),
        Err(e) => panic!("test configuration is invalid: {e}\n{yaml}"),
    }
}

/// One access point line for [`config_yaml`].
pub fn ap_line(id: &str, mqtt: &str) -> String {
    format!("          - id: {id}\n            mqtt: {mqtt}\n")
}

// ---------------------------------------------------------------- reports

/// The next report, or a panic after [`TIMEOUT`].
pub async fn next_report(rx: &mut mpsc::Receiver<(ApId, Report)>) -> (ApId, Report) {
    match tokio::time::timeout(TIMEOUT, rx.recv()).await {
        Ok(Some(r)) => r,
        Ok(None) => panic!("report channel closed"),
        Err(_) => panic!("no report within {TIMEOUT:?}"),
    }
}

/// Every report up to and including the first for which `done` holds.
pub async fn reports_until(
    rx: &mut mpsc::Receiver<(ApId, Report)>,
    mut done: impl FnMut(&ApId, &Report) -> bool,
) -> Vec<(ApId, Report)> {
    let mut seen = Vec::new();
    loop {
        let (ap, report) = next_report(rx).await;
        let stop = done(&ap, &report);
        seen.push((ap, report));
        if stop {
            return seen;
        }
    }
}

// ---------------------------------------------------------------- devices

/// Which firmware a [`FakeDevice`] imitates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKind {
    /// Tasmota: `cmnd/<t>/POWER` ON/OFF, `stat/<t>/POWER`, `tele/<t>/LWT` Online/Offline.
    Tasmota,
    /// Shelly Gen1: `shellies/<t>/relay/0/command` on/off, `shellies/<t>/relay/0`, `shellies/<t>/online` true/false.
    Shelly,
    /// Given command topic and optional state topic, payloads ON/OFF, no availability.
    Generic,
}

/// Topics and words of a fake device.
#[derive(Debug, Clone)]
struct Script {
    command_topic: String,
    on: String,
    off: String,
    state_topic: Option<String>,
    state_on: String,
    state_off: String,
    /// (topic, online word, offline word)
    availability: Option<(String, String, String)>,
}

static DEVICE_SEQ: AtomicU64 = AtomicU64::new(0);

/// A test-side MQTT client playing a smart plug. Stops when dropped.
pub struct FakeDevice {
    client: AsyncClient,
    script: Script,
    commands: Arc<Mutex<Vec<String>>>,
    relay: Arc<Mutex<Option<bool>>>,
    /// Whether it answers commands on its state topic (default true).
    answers: Arc<AtomicBool>,
    /// ConnAck + SubAck seen (reset on every disconnection).
    ready: Arc<AtomicBool>,
    /// ConnAcks seen.
    connections: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl FakeDevice {
    /// A Tasmota plug with device topic `topic`, ready (subscribed) on return.
    pub async fn tasmota(port: u16, topic: &str) -> Self {
        Self::start(
            port,
            DeviceKind::Tasmota,
            Script {
                command_topic: format!("cmnd/{topic}/POWER"),
                on: "ON".into(),
                off: "OFF".into(),
                state_topic: Some(format!("stat/{topic}/POWER")),
                state_on: "ON".into(),
                state_off: "OFF".into(),
                availability: Some((format!("tele/{topic}/LWT"), "Online".into(), "Offline".into())),
            },
        )
        .await
    }

    /// A Shelly Gen1 relay with device id `topic`, ready on return.
    pub async fn shelly(port: u16, topic: &str) -> Self {
        Self::start(
            port,
            DeviceKind::Shelly,
            Script {
                command_topic: format!("shellies/{topic}/relay/0/command"),
                on: "on".into(),
                off: "off".into(),
                state_topic: Some(format!("shellies/{topic}/relay/0")),
                state_on: "on".into(),
                state_off: "off".into(),
                availability: Some((format!("shellies/{topic}/online"), "true".into(), "false".into())),
            },
        )
        .await
    }

    /// A generic device (ON/OFF) on `command_topic`, answering on
    /// `state_topic` if given, without availability; ready on return.
    pub async fn generic(port: u16, command_topic: &str, state_topic: Option<&str>) -> Self {
        Self::start(
            port,
            DeviceKind::Generic,
            Script {
                command_topic: command_topic.into(),
                on: "ON".into(),
                off: "OFF".into(),
                state_topic: state_topic.map(str::to_owned),
                state_on: "ON".into(),
                state_off: "OFF".into(),
                availability: None,
            },
        )
        .await
    }

    async fn start(port: u16, _kind: DeviceKind, script: Script) -> Self {
        let n = DEVICE_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut options = MqttOptions::new(format!("fake-device-{}-{n}", std::process::id()), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_max_packet_size(16 << 20, 16 << 20);
        if let Some((topic, _, offline)) = &script.availability {
            options.set_last_will(LastWill::new(topic.clone(), offline.clone(), QoS::AtLeastOnce, true));
        }
        let (client, eventloop) = AsyncClient::new(options, 64);
        let me = FakeDevice {
            client,
            script,
            commands: Arc::default(),
            relay: Arc::default(),
            answers: Arc::new(AtomicBool::new(true)),
            ready: Arc::default(),
            connections: Arc::default(),
            stop: CancellationToken::new(),
        };
        tokio::spawn(me.run(eventloop));
        me.wait_ready().await;
        me
    }

    /// The device's event loop: like firmware, it reconnects by itself,
    /// re-subscribes and re-announces itself online on every connection.
    fn run(&self, mut eventloop: rumqttc::EventLoop) -> impl std::future::Future<Output = ()> + use<> {
        let client = self.client.clone();
        let script = self.script.clone();
        let commands = Arc::clone(&self.commands);
        let relay = Arc::clone(&self.relay);
        let answers = Arc::clone(&self.answers);
        let ready = Arc::clone(&self.ready);
        let connections = Arc::clone(&self.connections);
        let stop = self.stop.clone();
        async move {
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return,
                    e = eventloop.poll() => e,
                };
                match event {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        connections.fetch_add(1, Ordering::SeqCst);
                        let _ = client.try_subscribe(script.command_topic.clone(), QoS::AtLeastOnce);
                        if let Some((topic, online, _)) = &script.availability {
                            let _ = client.try_publish(topic.clone(), QoS::AtLeastOnce, true, online.clone());
                        }
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => ready.store(true, Ordering::SeqCst),
                    Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == script.command_topic => {
                        let text = String::from_utf8_lossy(&p.payload).into_owned();
                        commands.lock().unwrap().push(text.clone());
                        let on = if text == script.on {
                            Some(true)
                        } else if text == script.off {
                            Some(false)
                        } else {
                            None
                        };
                        if let Some(on) = on {
                            *relay.lock().unwrap() = Some(on);
                            if let (Some(topic), true) = (&script.state_topic, answers.load(Ordering::SeqCst)) {
                                let word = if on { &script.state_on } else { &script.state_off };
                                let _ = client.try_publish(topic.clone(), QoS::AtMostOnce, false, word.clone());
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        ready.store(false, Ordering::SeqCst);
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                    }
                }
            }
        }
    }

    /// Waits until connected and subscribed to its command topic.
    pub async fn wait_ready(&self) {
        let ready = Arc::clone(&self.ready);
        wait_for_at_most("the fake device to subscribe", TIMEOUT, || ready.load(Ordering::SeqCst)).await;
    }

    /// Whether connected and subscribed right now.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// ConnAcks seen (2 after one reconnection).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Commands received, oldest first, as text.
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }

    /// Waits until `n` commands were received; returns them.
    pub async fn wait_commands(&self, n: usize) -> Vec<String> {
        let commands = Arc::clone(&self.commands);
        wait_for_at_most(&format!("{n} command(s) at the fake device"), TIMEOUT, || {
            commands.lock().unwrap().len() >= n
        })
        .await;
        self.commands()
    }

    /// The relay: `None` until a command switched it.
    pub fn relay(&self) -> Option<bool> {
        *self.relay.lock().unwrap()
    }

    /// Whether it reports its state after a command (default true).
    pub fn set_answers(&self, answers: bool) {
        self.answers.store(answers, Ordering::SeqCst);
    }

    /// Its state topic, if it has one.
    pub fn state_topic(&self) -> Option<&str> {
        self.script.state_topic.as_deref()
    }

    /// Publishes `payload` (any bytes) on `topic` at QoS 1, not retained.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("queue a publish");
    }

    /// Publishes `payload` on its own state topic.
    pub async fn publish_state(&self, payload: impl Into<Vec<u8>>) {
        let topic = self.script.state_topic.clone().expect("device without state topic");
        self.publish(&topic, payload).await;
    }

    /// Disappears without DISCONNECT (its TCP connection just closes), so
    /// the broker publishes its last will.
    pub fn vanish(self) {
        // Dropping the event loop (the task ends) closes the socket.
        self.stop.cancel();
    }
}

impl Drop for FakeDevice {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A message as a [`Spy`] received it: (topic, payload, retain flag).
pub type Message = (String, Vec<u8>, bool);

/// A client that records what arrives on a filter.
pub struct Spy {
    client: AsyncClient,
    received: Arc<Mutex<Vec<Message>>>,
    /// Barrier topic: unique to this spy.
    marker: String,
    markers_seen: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Spy {
    /// Connects, subscribes to `filter` and returns once subscribed.
    pub async fn start(port: u16, filter: &str) -> Self {
        let n = DEVICE_SEQ.fetch_add(1, Ordering::Relaxed);
        let marker = format!("spy-marker/{}/{n}", std::process::id());
        let mut options = MqttOptions::new(format!("spy-{}-{n}", std::process::id()), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let received = Arc::new(Mutex::new(Vec::new()));
        let markers_seen = Arc::new(AtomicU64::new(0));
        let subacks = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("queue subscribe");
        client
            .subscribe(&marker, QoS::AtLeastOnce)
            .await
            .expect("queue subscribe");
        {
            let received = Arc::clone(&received);
            let markers_seen = Arc::clone(&markers_seen);
            let subacks = Arc::clone(&subacks);
            let stop = stop.clone();
            let marker = marker.clone();
            tokio::spawn(async move {
                loop {
                    let event = tokio::select! {
                        () = stop.cancelled() => return,
                        e = eventloop.poll() => e,
                    };
                    match event {
                        Ok(Event::Incoming(Incoming::SubAck(_))) => {
                            subacks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == marker => {
                            markers_seen.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Incoming::Publish(p))) => {
                            received
                                .lock()
                                .unwrap()
                                .push((p.topic.clone(), p.payload.to_vec(), p.retain));
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
        }
        wait_for_at_most("the spy to subscribe", TIMEOUT, || subacks.load(Ordering::SeqCst) >= 2).await;
        Spy {
            client,
            received,
            marker,
            markers_seen,
            stop,
        }
    }

    /// Waits until everything the broker sent before now has arrived: the
    /// spy publishes to its own marker topic and waits for it to come back
    /// (a broker delivers to one client in order).
    pub async fn sync(&self) {
        let before = self.markers_seen.load(Ordering::SeqCst);
        self.client
            .publish(&self.marker, QoS::AtLeastOnce, false, "sync")
            .await
            .expect("queue marker");
        let seen = Arc::clone(&self.markers_seen);
        wait_for_at_most("the spy's marker", TIMEOUT, || seen.load(Ordering::SeqCst) > before).await;
    }

    /// Messages received: (topic, payload, retain flag).
    pub fn received(&self) -> Vec<Message> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Spy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Writes `text` to a new file in `dir` (password files and the like).
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("create file");
    f.write_all(text.as_bytes()).expect("write file");
    path
}
