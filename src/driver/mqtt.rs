//! MQTT driver: switches Tasmota, Shelly and generic MQTT devices (the
//! plugs or relays that power classroom access points) over ONE broker
//! connection shared by every MQTT access point.
//!
//! It receives the validated [`MqttBroker`] and the MQTT access points of the
//! [`Config`] (presets already expanded into topics and payloads by
//! `config::validate`), and hands back what the [`Driver`] trait promises:
//! `apply` publishes the command and returns once the broker acknowledged
//! it; `observe` returns the last state the device reported. What devices
//! say on their own (state and availability messages, and "state presumed
//! lost" after a reconnection) goes to the reconciler through the
//! [`ReportSink`].
//!
//! Shape, after rumqttc's client/event-loop pair:
//! - [`MqttDriver`] is the handle the reconciler calls. It only queues
//!   requests on rumqttc's channel and reads a small shared state under a
//!   `std` mutex (never held across an `.await`).
//! - One task polls the event loop continuously: nothing moves in rumqttc
//!   unless it is polled. It only updates the shared state, releases
//!   waiting `apply`s and `try_send`s reports: no slow work, no blocking
//!   send. After a connection error it sleeps a capped exponential backoff
//!   (rumqttc itself would reconnect at once on the next poll: a hot loop
//!   against a dead broker), `select!`ed against the shutdown token.
//!
//! Decisions (see also `docs/access-points.md`, MQTT section):
//! - Clean session, and every topic re-subscribed on every ConnAck: with a
//!   clean session the broker forgets subscriptions, and nothing queued for a
//!   previous connection is replayed (no stale command sent late).
//! - On every connection after the first, `Report::Lost` for every MQTT AP:
//!   the reconciler re-sends what differs. Commands are not retained by
//!   default because a retained command replays to a device that
//!   reconnects, switching it on a stale order ("ghost switching").
//! - While disconnected, `apply` and `observe` fail at once with
//!   [`DriverError::Unreachable`]: a dead broker never makes a caller hang.
//! - `TCP_NODELAY`: commands are tiny; with Nagle and delayed ACKs each one
//!   stalled about 44 ms here, against 0.5 ms without.
//! - Garbage on a state or availability topic (unknown words, non-UTF-8,
//!   huge payloads, topics of no AP) is ignored with a warning limited to
//!   one per topic per minute.

mod acks;
mod event_loop;
mod route;
mod tls;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rumqttc::{AsyncClient, MqttOptions, NetworkOptions, QoS, SubscribeFilter, TlsConfiguration, Transport};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{
    AccessPoint, ApId, Config, DriverConfig, MqttAp, MqttBroker, MqttLease, StatusRequest, lease_payload, pulse_time,
};
use crate::domain::{Observation, ObservedWifi, Wifi};
use crate::driver::{Driver, DriverError, ReportSink};

use acks::AckTracker;
use event_loop::{Backoff, EventLoopTask};
use route::{Routes, WarnLimiter};

/// Largest packet accepted from the broker. Larger than any state message
/// by far, on purpose: rumqttc drops the whole connection on a packet over
/// this limit, so a garbage payload of a few hundred KiB on a state topic
/// must still be read (and ignored by [`route::parse_payload`]) rather
/// than cut the link to every AP. Memory is only used while such a packet
/// is read.
const MAX_INCOMING_PACKET: usize = 4 << 20;
/// Largest packet sent: a SUBSCRIBE of [`SUBSCRIBE_BATCH`] topics of at most
/// 1024 bytes each (validation caps topic length) fits.
const MAX_OUTGOING_PACKET: usize = 64 << 10;
/// Topics per SUBSCRIBE packet.
const SUBSCRIBE_BATCH: usize = 32;
/// Requests (commands, subscriptions) rumqttc's channel holds at least.
/// Commands are queued with `try_publish` under the driver's lock, at most
/// one per operation in flight: the channel is sized from the reconciler's
/// `max_parallel` (see `start_with`) so that a full queue never turns a
/// command into a retry.
const REQUEST_CAPACITY: usize = 1024;
/// TCP connect + TLS + CONNECT/CONNACK limit, in seconds (rumqttc's unit).
const CONNECT_TIMEOUT_SECONDS: u64 = 10;
/// How long a clean DISCONNECT may take at shutdown.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);
/// How long `shutdown` waits for the event-loop task.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);
/// How often `observe` looks for the reply to a status request.
const STATUS_POLL: Duration = Duration::from_millis(20);
/// Longest topic written into a log line.
const LOG_TOPIC_CHARS: usize = 200;

/// Tuning of the driver. [`MqttDriver::start`] uses [`Default`]; tests use
/// shorter delays through [`MqttDriver::start_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttDriverOptions {
    /// How long `apply` waits for the broker's acknowledgement
    /// (PUBACK for QoS 1, PUBCOMP for QoS 2, the write for QoS 0).
    pub ack_timeout: Duration,
    /// Delay before the first reconnection attempt after an error; doubled
    /// after each failed attempt.
    pub reconnect_initial: Duration,
    /// Longest delay between reconnection attempts. A connection that stayed
    /// up at least this long resets the delay to `reconnect_initial`; one
    /// that drops sooner keeps doubling it, so that two clients kicking each
    /// other off with the same client id do not loop fast.
    pub reconnect_max: Duration,
    /// At most one warning per topic per this interval about ignored messages.
    pub warn_interval: Duration,
}

impl Default for MqttDriverOptions {
    fn default() -> Self {
        Self {
            ack_timeout: Duration::from_secs(5),
            reconnect_initial: Duration::from_millis(500),
            // A refused connection to a broker costs nothing: retry often
            // enough that recovery after an outage follows it closely.
            reconnect_max: Duration::from_secs(5),
            warn_interval: Duration::from_secs(60),
        }
    }
}

/// The MQTT driver: one broker connection for every MQTT access point.
///
/// Built by [`MqttDriver::start`], which spawns the event-loop task. The
/// task stops when the daemon's shutdown token is cancelled, when
/// [`Driver::shutdown`] is called, or when the driver is dropped; it sends
/// a clean DISCONNECT first.
pub struct MqttDriver {
    /// rumqttc's request handle (a cheap channel sender); the event-loop
    /// task owns the receiving end through the `EventLoop`.
    client: AsyncClient,
    /// `mqtt broker HOST:PORT`, the prefix of every error message.
    label: String,
    /// Broker settings at start, to tell that a reload changed them.
    broker: MqttBroker,
    /// See [`MqttDriverOptions::ack_timeout`].
    ack_timeout: Duration,
    /// State shared with the event-loop task.
    shared: Arc<Shared>,
    /// Stops the event-loop task: a child of the daemon's token, also
    /// cancelled by `shutdown` and on drop.
    stop: CancellationToken,
    /// The event-loop task, awaited by `shutdown`.
    task: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for MqttDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttDriver")
            .field("broker", &self.label)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// Released with the broker's acknowledgement, or with the reason there
/// will be none. The `apply` that created it holds the receiver.
type Waiter = oneshot::Sender<Result<(), DriverError>>;

/// State shared by the handle and the event-loop task. A `std` mutex:
/// every critical section is a few map operations and none awaits.
struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in
        // a way that matters (each section is a handful of assignments);
        // keep serving rather than propagate the poison to every caller.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Inner {
    /// ConnAck seen and no error since.
    connected: bool,
    /// Why the connection is down, for `Unreachable` messages.
    down_reason: String,
    /// ConnAcks seen so far.
    connections: u64,
    /// An `apply` was refused while down: the next connection reports
    /// `Lost` even if it is the first one, so that the reconciler re-sends
    /// without waiting for its retry backoff.
    refused_while_down: bool,
    /// `apply`s waiting for an acknowledgement.
    acks: AckTracker<Waiter>,
    /// Topic → AP, from the current configuration.
    routes: Routes,
    /// Topics subscribed (or to subscribe at the next ConnAck).
    subscribed: BTreeSet<String>,
    /// SUBSCRIBE packets queued and not yet acknowledged on this connection.
    pending_subacks: usize,
    /// What is known of each AP's device.
    devices: HashMap<ApId, Device>,
    /// The configuration `routes` and `devices` belong to: at a reload,
    /// what is known of an AP whose settings changed is dropped.
    config: Arc<Config>,
    /// Limits warnings about ignored messages.
    warn: WarnLimiter,
}

/// What the driver knows of one device.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Device {
    /// Last state reported on its state topic.
    reported: Option<ObservedWifi>,
    /// `reported` predates a reconnection: the device may have changed
    /// while the driver was not listening.
    stale: bool,
    /// Last command the broker acknowledged.
    commanded: Option<ObservedWifi>,
    /// A command was sent and no state message arrived since: `reported`
    /// predates it.
    awaiting: bool,
    /// The first-contact configuration (power-on state off) was acknowledged.
    configured: bool,
}

impl Device {
    /// What `observe` (and `apply`, once acknowledged) returns.
    ///
    /// With a state topic: the device's own report once one arrived after
    /// the last command (`assumed` only if it predates a reconnection);
    /// before that, the command as `assumed`. Without a state topic: the
    /// last acknowledged command as `assumed`. Nothing known: `Unknown`.
    fn observation(&self, has_state_topic: bool) -> Observation {
        let fresh = if has_state_topic && !self.awaiting {
            self.reported
        } else {
            None
        };
        let (wifi, assumed) = match (fresh, self.commanded, self.reported) {
            (Some(reported), _, _) => (reported, self.stale),
            (None, Some(commanded), _) => (commanded, true),
            (None, None, Some(reported)) => (reported, true),
            (None, None, None) => (ObservedWifi::Unknown, false),
        };
        Observation {
            wifi,
            clients: None,
            assumed,
        }
    }

    /// The device reported its state.
    fn on_state(&mut self, wifi: ObservedWifi) {
        self.reported = Some(wifi);
        self.stale = false;
        self.awaiting = false;
    }

    /// A command was handed to the broker connection.
    fn on_command_sent(&mut self) {
        self.awaiting = true;
    }

    /// A command was acknowledged by the broker.
    fn on_command_acked(&mut self, wifi: ObservedWifi) {
        self.commanded = Some(wifi);
    }

    /// A command failed (no ack, connection lost): whether the device got
    /// it is unknown, so the command is forgotten.
    fn on_command_failed(&mut self) {
        self.commanded = None;
        self.awaiting = false;
    }

    /// The broker connection came back: reports may have been missed.
    fn on_reconnect(&mut self) {
        self.stale = self.reported.is_some();
        self.awaiting = false;
    }
}

impl MqttDriver {
    /// Connects to the broker (in the background) and starts the event-loop
    /// task, with [`MqttDriverOptions::default`].
    ///
    /// Returns at once: the connection is made by the task, and `apply`
    /// fails with [`DriverError::Unreachable`] until it is up. Must be
    /// called inside a tokio runtime.
    ///
    /// # Errors
    /// [`DriverError::Setup`] when a file the broker settings name (password,
    /// CA, client certificate or key) cannot be read or used, or when called
    /// outside a tokio runtime.
    pub fn start(
        broker: &MqttBroker,
        config: &Arc<Config>,
        reports: ReportSink,
        shutdown: CancellationToken,
    ) -> Result<Arc<MqttDriver>, DriverError> {
        Self::start_with(broker, config, reports, shutdown, MqttDriverOptions::default())
    }

    /// [`MqttDriver::start`] with explicit tuning (shorter delays in tests).
    ///
    /// # Errors
    /// As [`MqttDriver::start`].
    pub fn start_with(
        broker: &MqttBroker,
        config: &Arc<Config>,
        reports: ReportSink,
        shutdown: CancellationToken,
        options: MqttDriverOptions,
    ) -> Result<Arc<MqttDriver>, DriverError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| DriverError::Setup("the MQTT driver must be started inside a tokio runtime".to_owned()))?;
        let label = format!("mqtt broker {}:{}", broker.host, broker.port);
        let capacity = REQUEST_CAPACITY.max(config.reconciler.max_parallel * 2 + SUBSCRIBE_BATCH);
        let (client, mut eventloop) = AsyncClient::new(mqtt_options(broker)?, capacity);
        let mut network = NetworkOptions::new();
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(CONNECT_TIMEOUT_SECONDS);
        eventloop.set_network_options(network);

        let routes = Routes::from_config(config);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                connected: false,
                down_reason: "connecting".to_owned(),
                connections: 0,
                refused_while_down: false,
                acks: AckTracker::default(),
                subscribed: routes.topics(),
                pending_subacks: 0,
                routes,
                devices: HashMap::new(),
                config: Arc::clone(config),
                warn: WarnLimiter::new(options.warn_interval),
            }),
        });
        let stop = shutdown.child_token();
        let task = EventLoopTask {
            eventloop,
            client: client.clone(),
            shared: Arc::clone(&shared),
            reports,
            stop: stop.clone(),
            label: label.clone(),
            backoff: Backoff::new(options.reconnect_initial, options.reconnect_max),
        };
        let handle = runtime.spawn(task.run());
        tracing::info!(broker = %label, tls = broker.tls.is_some(), "mqtt driver started");
        Ok(Arc::new(MqttDriver {
            client,
            label,
            broker: broker.clone(),
            ack_timeout: options.ack_timeout,
            shared,
            stop,
            task: Mutex::new(Some(handle)),
        }))
    }

    /// Whether the broker connection is up (for health checks and tests).
    pub fn is_connected(&self) -> bool {
        self.shared.lock().connected
    }

    /// Whether the connection is up and every subscription sent on it was
    /// acknowledged: from then on, state and availability messages reach
    /// the reconciler (a readiness signal for health checks and tests).
    pub fn is_subscribed(&self) -> bool {
        let inner = self.shared.lock();
        inner.connected && inner.pending_subacks == 0
    }

    /// How many times the connection came up (1 after the first ConnAck).
    pub fn connections(&self) -> u64 {
        self.shared.lock().connections
    }

    fn not_connected(&self, inner: &Inner) -> DriverError {
        DriverError::Unreachable(format!("{}: not connected ({})", self.label, inner.down_reason))
    }

    /// The AP's MQTT settings.
    fn settings<'a>(&self, ap: &'a AccessPoint) -> Result<&'a MqttAp, DriverError> {
        match &ap.driver {
            DriverConfig::Mqtt(m) => Ok(m),
            other => Err(DriverError::Setup(format!(
                "access point {} uses the {} driver, not mqtt",
                ap.id,
                other.kind()
            ))),
        }
    }
}

impl Drop for MqttDriver {
    fn drop(&mut self) {
        // Without this, a driver dropped without `shutdown` would leave its
        // task (and broker connection) running until the daemon's token.
        self.stop.cancel();
    }
}

impl MqttDriver {
    /// Publishes one message and waits for the broker's acknowledgement.
    /// With `command`, it is the AP's switch command: the device cache
    /// follows it and the AP's observation is returned.
    async fn publish(
        &self,
        ap: &AccessPoint,
        mqtt: &MqttAp,
        topic: &str,
        payload: &str,
        command: Option<Wifi>,
    ) -> Result<Observation, DriverError> {
        // Only the switch command may be retained (when configured so):
        // a retained lease or setup message would replay on reconnection.
        let retain = command.is_some() && mqtt.retain;
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.shared.lock();
            if !inner.connected {
                inner.refused_while_down = true;
                return Err(self.not_connected(&inner));
            }
            // Queue the waiter and the request under one lock, so that
            // waiters are in the same order as publishes in rumqttc's
            // channel (see `acks`).
            inner.acks.queue(tx);
            if self
                .client
                .try_publish(topic, qos(mqtt.qos), retain, payload.as_bytes())
                .is_err()
            {
                inner.acks.unqueue_last();
                return Err(DriverError::Unreachable(format!(
                    "{}: cannot queue the command to {} (request queue full or driver stopped)",
                    self.label, topic
                )));
            }
            if command.is_some() {
                inner.devices.entry(ap.id.clone()).or_default().on_command_sent();
            }
        }
        tracing::debug!(ap = %ap.id, topic = %topic, payload = %payload, "mqtt command sent");
        let outcome = tokio::time::timeout(self.ack_timeout, rx).await;
        let mut inner = self.shared.lock();
        let device = inner.devices.entry(ap.id.clone()).or_default();
        let failure = match outcome {
            Ok(Ok(Ok(()))) => {
                if let Some(wifi) = command {
                    device.on_command_acked(wifi.into());
                }
                return Ok(device.observation(mqtt.state_topic.is_some()));
            }
            Ok(Ok(Err(e))) => e,
            // The task dropped the waiter: it stopped.
            Ok(Err(_)) => DriverError::Unreachable(format!("{}: driver stopped", self.label)),
            Err(_) => DriverError::Timeout {
                seconds: self.ack_timeout.as_secs_f64().ceil() as u64,
                doing: format!("waiting for {} to acknowledge {payload:?} on {}", self.label, topic),
            },
        };
        if command.is_some() {
            device.on_command_failed();
        }
        Err(failure)
    }

    /// At first contact with a device (per driver start), sends the message
    /// that makes it come back off after a power cut (Tasmota
    /// `PowerOnState 0`, Shelly Gen2 `initial_state: off`), before anything
    /// that could switch it on.
    async fn configure_once(&self, ap: &AccessPoint, mqtt: &MqttAp) -> Result<(), DriverError> {
        let Some((topic, payload)) = &mqtt.configure else {
            return Ok(());
        };
        if self.shared.lock().devices.get(&ap.id).is_some_and(|d| d.configured) {
            return Ok(());
        }
        self.publish(ap, mqtt, topic, payload, None).await?;
        tracing::info!(ap = %ap.id, topic = %topic, payload = %payload, "device set to come back off after a power cut");
        self.shared.lock().devices.entry(ap.id.clone()).or_default().configured = true;
        Ok(())
    }
}

impl MqttDriver {
    /// First contact with a device that says nothing of its state until it
    /// changes (Shelly Gen2), and again after a reconnection: configures it,
    /// asks for its state and waits for the reply (at most the
    /// acknowledgement timeout), so that the reconciler acts on what the
    /// device is. Without a reply it acts on what it knows, as for any
    /// device that keeps quiet.
    async fn ask_status(&self, ap: &AccessPoint, mqtt: &MqttAp, request: &StatusRequest) -> Result<(), DriverError> {
        let known = |inner: &Inner| {
            inner
                .devices
                .get(&ap.id)
                .is_some_and(|d| d.reported.is_some() && !d.stale)
        };
        if known(&self.shared.lock()) {
            return Ok(());
        }
        self.configure_once(ap, mqtt).await?;
        self.publish(ap, mqtt, &request.topic, &request.payload, None).await?;
        let deadline = tokio::time::Instant::now() + self.ack_timeout;
        while tokio::time::Instant::now() < deadline {
            if known(&self.shared.lock()) {
                return Ok(());
            }
            tokio::time::sleep(STATUS_POLL).await;
        }
        tracing::warn!(
            ap = %ap.id,
            topic = %shorten(&request.topic),
            "no reply to the status request; acting without the device's state"
        );
        Ok(())
    }
}

#[async_trait]
impl Driver for MqttDriver {
    async fn apply(&self, ap: &AccessPoint, wifi: Wifi) -> Result<Observation, DriverError> {
        let mqtt = self.settings(ap)?;
        self.configure_once(ap, mqtt).await?;
        let mut payload = match wifi {
            Wifi::On => mqtt.payload_on.clone(),
            Wifi::Off => mqtt.payload_off.clone(),
        };
        // The lease is armed before (PulseTime) or with (payload) the "on":
        // an "on" that reached the device always ends by itself.
        if wifi == Wifi::On
            && let Some(lease) = ap.lease
        {
            match &mqtt.lease {
                Some(MqttLease::PulseTime { topic }) => {
                    self.publish(ap, mqtt, topic, &pulse_time(lease).to_string(), None)
                        .await?;
                }
                Some(MqttLease::Payload(template)) => payload = lease_payload(template, lease),
                None => {}
            }
        }
        self.publish(ap, mqtt, &mqtt.command_topic.clone(), &payload, Some(wifi))
            .await
    }

    async fn renew(&self, ap: &AccessPoint) -> Result<Observation, DriverError> {
        let mqtt = self.settings(ap)?;
        match (&mqtt.lease, ap.lease) {
            // Setting PulseTime while the relay is on re-arms the running
            // timer; the value is constant, so the flash is not rewritten.
            (Some(MqttLease::PulseTime { topic }), Some(lease)) => {
                self.publish(ap, mqtt, topic, &pulse_time(lease).to_string(), None)
                    .await
            }
            _ => self.apply(ap, Wifi::On).await,
        }
    }

    async fn observe(&self, ap: &AccessPoint) -> Result<Observation, DriverError> {
        let mqtt = self.settings(ap)?;
        if let Some(request) = &mqtt.status_request {
            self.ask_status(ap, mqtt, request).await?;
        }
        let inner = self.shared.lock();
        if !inner.connected {
            // A cached state is not news while nobody listens for changes.
            return Err(self.not_connected(&inner));
        }
        let device = inner.devices.get(&ap.id).copied().unwrap_or_default();
        Ok(device.observation(mqtt.state_topic.is_some()))
    }

    async fn reconfigure(&self, config: &Arc<Config>) {
        match &config.mqtt {
            Some(b) if same_broker(b, &self.broker) => {}
            _ => tracing::warn!(
                broker = %self.label,
                "the mqtt broker settings changed; restart borne to apply them (the driver keeps its current connection)"
            ),
        }
        let routes = Routes::from_config(config);
        let wanted = routes.topics();
        let (added, removed): (Vec<String>, Vec<String>) = {
            let mut inner = self.shared.lock();
            let keep: HashSet<&ApId> = routes.ap_ids().collect();
            let before = std::mem::replace(&mut inner.config, Arc::clone(config));
            // A device whose topics or payloads changed is another device
            // (or the same one re-addressed): nothing seen before holds.
            let same = |id: &ApId| {
                let settings = |c: &Config| match c.access_point(id.as_str()).map(|ap| &ap.driver) {
                    Some(DriverConfig::Mqtt(m)) => Some(m.clone()),
                    _ => None,
                };
                settings(&before).is_some_and(|a| Some(a) == settings(config))
            };
            inner.devices.retain(|id, _| keep.contains(id) && same(id));
            inner.routes = routes;
            let added: Vec<String> = wanted.difference(&inner.subscribed).cloned().collect();
            let removed = inner.subscribed.difference(&wanted).cloned().collect();
            inner.subscribed = wanted;
            if !inner.connected {
                // The next ConnAck subscribes to every current topic.
                (Vec::new(), Vec::new())
            } else {
                inner.pending_subacks += added.len().div_ceil(SUBSCRIBE_BATCH);
                (added, removed)
            }
        };
        for topic in &removed {
            if let Err(e) = self.client.unsubscribe(topic.clone()).await {
                tracing::warn!(broker = %self.label, topic = %shorten(topic), error = %e, "cannot unsubscribe");
            }
        }
        for batch in added.chunks(SUBSCRIBE_BATCH) {
            let filters = batch.iter().map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
            if let Err(e) = self.client.subscribe_many(filters).await {
                let mut inner = self.shared.lock();
                inner.pending_subacks = inner.pending_subacks.saturating_sub(1);
                drop(inner);
                tracing::warn!(broker = %self.label, error = %e, "cannot subscribe to new topics");
            }
        }
        tracing::info!(
            broker = %self.label,
            subscribed = added.len(),
            unsubscribed = removed.len(),
            "mqtt driver reconfigured"
        );
    }

    async fn shutdown(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(task) = task
            && tokio::time::timeout(SHUTDOWN_WAIT, task).await.is_err()
        {
            tracing::warn!(broker = %self.label, "mqtt event loop did not stop in time");
        }
    }
}

/// rumqttc options for the broker, reading the password and TLS files.
fn mqtt_options(broker: &MqttBroker) -> Result<MqttOptions, DriverError> {
    let mut options = MqttOptions::new(broker.client_id.clone(), broker.host.clone(), broker.port);
    // Validation keeps keep-alive in 5..=3600 s; clamping again here turns a
    // hand-built MqttBroker's bad value into a sane one instead of a rumqttc
    // assertion panic.
    options.set_keep_alive(
        broker
            .keep_alive
            .clamp(Duration::from_secs(5), Duration::from_secs(3600)),
    );
    options.set_clean_session(true);
    options.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
    if let Some(user) = &broker.username {
        let password = match &broker.password_file {
            Some(path) => tls::read_password(path)?,
            None => String::new(),
        };
        options.set_credentials(user.clone(), password);
    }
    if let Some(t) = &broker.tls {
        let config = tls::client_config(t)?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config))));
    }
    Ok(options)
}

/// rumqttc's QoS for the configured number (validation allows 0..=2; any
/// other value falls back to the default, 1).
fn qos(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        2 => QoS::ExactlyOnce,
        _ => QoS::AtLeastOnce,
    }
}

/// Whether two broker settings lead to the same connection.
fn same_broker(a: &MqttBroker, b: &MqttBroker) -> bool {
    let tls = |t: &Option<crate::config::MqttTls>| {
        t.as_ref()
            .map(|t| (t.ca_file.clone(), t.cert_file.clone(), t.key_file.clone()))
    };
    a.host == b.host
        && a.port == b.port
        && a.client_id == b.client_id
        && a.username == b.username
        && a.password_file == b.password_file
        && a.keep_alive == b.keep_alive
        && tls(&a.tls) == tls(&b.tls)
}

/// A topic cut for a log line (topics come from the network).
fn shorten(topic: &str) -> &str {
    match topic.char_indices().nth(LOG_TOPIC_CHARS) {
        Some((i, _)) => &topic[..i],
        None => topic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MqttTls;

    fn obs(wifi: ObservedWifi, assumed: bool) -> Observation {
        Observation {
            wifi,
            clients: None,
            assumed,
        }
    }

    #[test]
    fn nothing_known_is_unknown_and_not_assumed() {
        assert_eq!(Device::default().observation(true), obs(ObservedWifi::Unknown, false));
        assert_eq!(Device::default().observation(false), obs(ObservedWifi::Unknown, false));
    }

    #[test]
    fn without_state_topic_the_acknowledged_command_is_assumed() {
        let mut d = Device::default();
        d.on_command_sent();
        d.on_command_acked(ObservedWifi::On);
        assert_eq!(d.observation(false), obs(ObservedWifi::On, true));
        d.on_command_failed();
        assert_eq!(d.observation(false), obs(ObservedWifi::Unknown, false));
    }

    #[test]
    fn with_state_topic_the_command_is_assumed_until_the_device_reports() {
        let mut d = Device::default();
        d.on_state(ObservedWifi::Off);
        assert_eq!(d.observation(true), obs(ObservedWifi::Off, false));
        d.on_command_sent();
        d.on_command_acked(ObservedWifi::On);
        // The Off report predates the command.
        assert_eq!(d.observation(true), obs(ObservedWifi::On, true));
        d.on_state(ObservedWifi::On);
        assert_eq!(d.observation(true), obs(ObservedWifi::On, false));
    }

    #[test]
    fn a_report_arriving_before_the_ack_is_read_not_assumed() {
        let mut d = Device::default();
        d.on_command_sent();
        d.on_state(ObservedWifi::On);
        d.on_command_acked(ObservedWifi::On);
        assert_eq!(d.observation(true), obs(ObservedWifi::On, false));
    }

    #[test]
    fn a_report_from_before_a_reconnection_is_assumed() {
        let mut d = Device::default();
        d.on_state(ObservedWifi::On);
        d.on_reconnect();
        assert_eq!(d.observation(true), obs(ObservedWifi::On, true));
        d.on_state(ObservedWifi::On);
        assert_eq!(d.observation(true), obs(ObservedWifi::On, false));
    }

    #[test]
    fn qos_numbers_map_to_rumqttc() {
        assert_eq!(qos(0), QoS::AtMostOnce);
        assert_eq!(qos(1), QoS::AtLeastOnce);
        assert_eq!(qos(2), QoS::ExactlyOnce);
    }

    fn broker() -> MqttBroker {
        MqttBroker {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "borne".into(),
            username: None,
            password_file: None,
            tls: None,
            keep_alive: Duration::from_secs(30),
        }
    }

    #[test]
    fn broker_changes_are_detected_field_by_field() {
        let a = broker();
        assert!(same_broker(&a, &a.clone()));
        let mut b = broker();
        b.port = 1884;
        assert!(!same_broker(&a, &b));
        let mut c = broker();
        c.tls = Some(MqttTls {
            ca_file: None,
            cert_file: None,
            key_file: None,
        });
        assert!(!same_broker(&a, &c));
    }

    #[test]
    fn options_carry_credentials_keep_alive_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "hunter2\n").unwrap();
        let mut b = broker();
        b.username = Some("borne".into());
        b.password_file = Some(pw);
        // Below rumqttc's minimum: clamped instead of an assertion panic.
        b.keep_alive = Duration::from_millis(10);
        let o = mqtt_options(&b).unwrap();
        assert_eq!(
            o.credentials().map(|l| (l.username, l.password)),
            Some(("borne".into(), "hunter2".into()))
        );
        assert_eq!(o.keep_alive(), Duration::from_secs(5));
        assert!(o.clean_session());
        assert_eq!(o.max_packet_size(), MAX_INCOMING_PACKET);
    }

    #[test]
    fn unreadable_password_file_fails_start_with_its_path() {
        let mut b = broker();
        b.username = Some("borne".into());
        b.password_file = Some("/nonexistent/pw".into());
        let err = mqtt_options(&b).unwrap_err();
        assert!(
            matches!(&err, DriverError::Setup(m) if m.contains("/nonexistent/pw")),
            "{err:?}"
        );
    }

    #[test]
    fn long_topics_are_shortened_for_logs_on_a_char_boundary() {
        let long = "é".repeat(500);
        assert_eq!(shorten(&long).chars().count(), LOG_TOPIC_CHARS);
        assert_eq!(shorten("stat/x/POWER"), "stat/x/POWER");
    }
}
