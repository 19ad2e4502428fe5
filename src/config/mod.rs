//! Configuration: the YAML file ([`raw`]) checked and resolved (`validate`)
//! into a [`Config`] that the rest of the daemon can trust.
//!
//! A `Config` only exists once every check passed: ids are unique and well
//! formed, every reference (schedule, calendar, classroom, school) resolves,
//! cron rules are parsed, presets are expanded into topics and commands. The
//! schedule engine, the policy, the reconciler and the drivers receive it and
//! never re-check.

pub mod calendar_cache;
pub mod calendars;
pub mod changes;
pub mod database;
mod failsafe;
pub mod ha;
mod include;
mod limits;
pub mod oidc;
pub mod raw;
mod validate;
mod yaml;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Serialize;

use crate::schedule::Schedule;

pub use failsafe::{
    ClockSettings, DEFAULT_LEASE_MINUTES, Failsafe, MAX_LEASE, MIN_LEASE, lease_payload, lease_seconds, lease_support,
    pulse_time,
};
pub use limits::Limits;
pub use validate::{from_str, load};

/// Default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/borne/borne.yaml";

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The id as written in the configuration.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(Arc::from(s))
            }
        }
    };
}

id_type!(
    /// A school's id.
    SchoolId
);
id_type!(
    /// A classroom's id, unique across the configuration.
    ClassroomId
);
id_type!(
    /// An access point's id, unique across the configuration.
    ApId
);

/// Whether `s` is a valid id: `[a-z0-9-]{1,64}`. Ids end up in URLs, metric
/// labels, MQTT topics and shell commands, so they are kept this narrow.
pub fn is_valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Default time zone.
    pub timezone: Tz,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Directory of `borne.db`.
    pub state_dir: PathBuf,
    /// Base URL of the pages for links.
    pub public_url: String,
    /// Teacher session lengths.
    pub teacher_session: TeacherSession,
    /// Schools in file order.
    pub schools: Vec<School>,
    /// Classrooms in file order.
    pub classrooms: Vec<Classroom>,
    /// Access points in file order.
    pub access_points: Vec<AccessPoint>,
    /// API users.
    pub users: Vec<User>,
    /// Sign-in with the identity provider, when configured.
    pub oidc: Option<oidc::Oidc>,
    /// The MQTT broker, when any AP uses MQTT or the block is given.
    pub mqtt: Option<MqttBroker>,
    /// Reconciler tuning.
    pub reconciler: ReconcilerSettings,
    /// Demo mode.
    pub demo: bool,
    /// Audit log retention.
    pub audit_retention_days: u32,
    /// Usage report aggregates retention, in days.
    pub report_retention_days: u32,
    /// `/metrics` without a token.
    pub metrics_public: bool,
    /// Reverse proxies trusted for `X-Forwarded-For`.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Device-side leases.
    pub failsafe: Failsafe,
    /// Clock synchronisation policy.
    pub clock: ClockSettings,
    /// Calendars by name, with their closed days and sources.
    pub calendars: std::collections::BTreeMap<String, Arc<calendars::NamedCalendar>>,
    /// Connection handling, rate limits and input bounds of the HTTP side.
    pub limits: Limits,
    /// Several instances on one database: this one's id, the fencing lease,
    /// the configuration's hash.
    pub ha: ha::Ha,
    /// The PostgreSQL store; `None`: the embedded SQLite file in `state_dir`.
    pub database: Option<database::Database>,
    classroom_index: HashMap<ClassroomId, usize>,
    ap_index: HashMap<ApId, usize>,
}

impl Config {
    /// The classroom with this id.
    pub fn classroom(&self, id: &str) -> Option<&Classroom> {
        self.classroom_index.get(id).map(|&i| &self.classrooms[i])
    }

    /// The access point with this id.
    pub fn access_point(&self, id: &str) -> Option<&AccessPoint> {
        self.ap_index.get(id).map(|&i| &self.access_points[i])
    }

    /// The school with this id.
    pub fn school(&self, id: &str) -> Option<&School> {
        self.schools.iter().find(|s| s.id.as_str() == id)
    }

    /// This instance's id: `ha.instance_id` (file or command line), else
    /// `<hostname>:<port of listen>`.
    pub fn instance_id(&self) -> String {
        self.ha
            .instance_id
            .clone()
            .unwrap_or_else(|| ha::default_instance_id(self.listen.port()))
    }

    /// Path of the state database.
    pub fn database_path(&self) -> PathBuf {
        self.state_dir.join("borne.db")
    }
}

/// `teacher_session:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeacherSession {
    /// Length of an "on" when none is asked.
    pub default_minutes: u32,
    /// Longest "on".
    pub max_minutes: u32,
    /// A session ends after this many minutes without any associated
    /// client on every AP that counts them; 0: never.
    pub idle_off_minutes: u32,
}

/// A school.
#[derive(Debug, Clone)]
pub struct School {
    /// Its id.
    pub id: SchoolId,
    /// Its name.
    pub name: String,
    /// Its time zone.
    pub timezone: Tz,
    /// Its classrooms, in file order.
    pub classrooms: Vec<ClassroomId>,
}

/// A classroom, with its schedule resolved.
#[derive(Debug, Clone)]
pub struct Classroom {
    /// Its id.
    pub id: ClassroomId,
    /// Its name.
    pub name: String,
    /// Its school.
    pub school: SchoolId,
    /// The name of its schedule.
    pub schedule_name: String,
    /// Its schedule (shared by every classroom naming it with the same calendars).
    pub schedule: Arc<Schedule>,
    /// The calendars closing it: its schedule's, then its school's and its own.
    pub calendars: Vec<String>,
    /// The time zone its schedule is read in.
    pub timezone: Tz,
    /// Its access points.
    pub access_points: Vec<ApId>,
}

/// An access point and how to reach it.
#[derive(Debug, Clone)]
pub struct AccessPoint {
    /// Its id.
    pub id: ApId,
    /// Its classroom.
    pub classroom: ClassroomId,
    /// Its classroom's school.
    pub school: SchoolId,
    /// How it is switched.
    pub driver: DriverConfig,
    /// The off-timer armed on the device at every "on" and renewed while
    /// it must stay on: `failsafe`'s lease when the driver can hold one,
    /// `None` when it cannot or leases are disabled.
    pub lease: Option<Duration>,
}

/// The driver block of an access point.
#[derive(Debug, Clone)]
pub enum DriverConfig {
    /// SSH to a shell.
    Ssh(SshAp),
    /// An MQTT device.
    Mqtt(MqttAp),
    /// Simulated in process.
    Sim(SimAp),
}

impl DriverConfig {
    /// `ssh`, `mqtt` or `sim`.
    pub fn kind(&self) -> &'static str {
        match self {
            DriverConfig::Ssh(_) => "ssh",
            DriverConfig::Mqtt(_) => "mqtt",
            DriverConfig::Sim(_) => "sim",
        }
    }
}

/// An SSH access point, with the top-level defaults applied.
#[derive(Debug, Clone)]
pub struct SshAp {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Login.
    pub user: String,
    /// How borne authenticates.
    pub auth: SshAuth,
    /// How the AP's host key is verified.
    pub host_key: HostKeyCheck,
    /// What commands are run.
    pub preset: SshPreset,
    /// TCP connect + handshake limit.
    pub connect_timeout: Duration,
    /// Limit for one command.
    pub command_timeout: Duration,
    /// How long an idle connection is kept for reuse (zero: closed after use).
    pub reuse: Duration,
    /// How long before a scheduled change that switches the AP its
    /// connection is opened (zero: never); it is then kept until the change
    /// is applied.
    pub prewarm: Duration,
}

/// SSH authentication.
#[derive(Debug, Clone)]
pub enum SshAuth {
    /// Public key, optionally with a passphrase file.
    Key {
        /// Private key file.
        key_file: PathBuf,
        /// Its passphrase, in a file.
        passphrase_file: Option<PathBuf>,
    },
    /// Password in a file.
    Password {
        /// The file.
        password_file: PathBuf,
    },
}

/// SSH host key verification.
#[derive(Debug, Clone)]
pub enum HostKeyCheck {
    /// Against an OpenSSH `known_hosts` file.
    KnownHosts(PathBuf),
    /// Against a fingerprint `SHA256:<base64>`.
    Fingerprint(String),
    /// Not verified (explicitly asked).
    Insecure,
}

/// Which commands switch the AP.
#[derive(Debug, Clone)]
pub enum SshPreset {
    /// OpenWrt `uci` / `wifi` / `ubus`.
    OpenWrt {
        /// `wifi-device` sections to switch; empty means all.
        radios: Vec<String>,
    },
    /// Commands given in the configuration.
    Custom(CustomCommands),
}

/// `preset: custom` commands.
#[derive(Debug, Clone)]
pub struct CustomCommands {
    /// Switches on.
    pub on_command: String,
    /// Switches off.
    pub off_command: String,
    /// Prints the state.
    pub status_command: String,
    /// Output meaning on; without it, exit status 0 means on.
    pub status_on: Option<regex::Regex>,
    /// Output meaning off; without it, a non-zero exit status means off.
    pub status_off: Option<regex::Regex>,
    /// Prints the number of associated clients.
    pub clients_command: Option<String>,
    /// Arms the AP's own off-timer (`{seconds}` replaced by the lease).
    pub lease_command: Option<String>,
}

/// The broker connection.
#[derive(Debug, Clone)]
pub struct MqttBroker {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Client id.
    pub client_id: String,
    /// User name.
    pub username: Option<String>,
    /// Password file.
    pub password_file: Option<PathBuf>,
    /// TLS settings.
    pub tls: Option<MqttTls>,
    /// Keep-alive.
    pub keep_alive: Duration,
}

/// TLS to the broker.
#[derive(Debug, Clone)]
pub struct MqttTls {
    /// CA certificates, PEM.
    pub ca_file: Option<PathBuf>,
    /// Client certificate, PEM.
    pub cert_file: Option<PathBuf>,
    /// Client key, PEM.
    pub key_file: Option<PathBuf>,
}

/// An MQTT access point with its preset expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttAp {
    /// Preset it came from (`tasmota`, `shelly`, `shelly-gen2`, `generic`), for display.
    pub preset: String,
    /// Where commands go.
    pub command_topic: String,
    /// Command payload for on.
    pub payload_on: String,
    /// Command payload for off.
    pub payload_off: String,
    /// Where the device reports its state, if it does.
    pub state_topic: Option<String>,
    /// State payload meaning on.
    pub state_on: String,
    /// State payload meaning off.
    pub state_off: String,
    /// The device's last will topic, if any.
    pub availability_topic: Option<String>,
    /// Payload meaning online.
    pub payload_available: String,
    /// Payload meaning offline.
    pub payload_not_available: String,
    /// QoS of commands.
    pub qos: u8,
    /// Whether commands are retained.
    pub retain: bool,
    /// How state messages are read.
    pub state_format: StateFormat,
    /// How the device is told to switch itself off after a while, if it can.
    pub lease: Option<MqttLease>,
    /// Sent once at first contact so that the device comes back off after a
    /// power cut: `(topic, payload)`. `None` with `failsafe.configure_devices: false`.
    pub configure: Option<(String, String)>,
    /// How to ask the device for its state, for devices that do not
    /// publish it on their own at connection (Shelly Gen2
    /// `Switch.GetStatus`): read at first contact, before acting.
    pub status_request: Option<StatusRequest>,
}

/// A request for a device's state whose reply arrives on a shared topic
/// (JSON-RPC over MQTT: the reply goes to `<src>/rpc`), matched to the
/// access point by its request `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRequest {
    /// Where the request is published (`<topic>/rpc`).
    pub topic: String,
    /// The request.
    pub payload: String,
    /// Where the reply arrives (`<src>/rpc`).
    pub reply_topic: String,
    /// The request's `id`, which the reply carries back: derived from the
    /// device topic, so the same for every AP of one device and distinct
    /// (below 2^53, exact in any JSON reader) for different devices.
    pub id: u64,
}

/// The JSON-RPC request id of a Shelly Gen2 device's status requests:
/// FNV-1a of its topic, kept within JSON's exact integers.
fn rpc_id(topic: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // 0..=2 are the ids of borne's other requests.
    (h & ((1 << 53) - 1)).max(3)
}

/// How an MQTT device's state messages are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFormat {
    /// The payload is one of two words (`state_on`, `state_off`).
    #[default]
    Words,
    /// Shelly Gen2 JSON-RPC notifications: `NotifyStatus` (or
    /// `NotifyFullStatus`) whose `params["switch:0"].output` is the relay.
    ShellyNotify,
}

/// How an MQTT device holds a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttLease {
    /// Tasmota: `PulseTime` (lease + 100) published on `topic` before `ON`
    /// and alone to renew: setting it while the relay is on re-arms the
    /// running timer, and the value never changes, so renewals do not
    /// write the device's flash.
    PulseTime {
        /// `cmnd/<topic>/PulseTime`.
        topic: String,
    },
    /// The "on" command carries the lease (`{seconds}` replaced), sent
    /// instead of `payload_on` and again to renew (Shelly Gen2
    /// `toggle_after`, generic `lease_payload`).
    Payload(String),
}

impl MqttAp {
    /// A Tasmota device: `cmnd/<topic>/POWER` ON|OFF, `stat/<topic>/POWER`,
    /// `tele/<topic>/LWT` Online|Offline.
    pub fn tasmota(topic: &str) -> Self {
        Self {
            preset: "tasmota".into(),
            command_topic: format!("cmnd/{topic}/POWER"),
            payload_on: "ON".into(),
            payload_off: "OFF".into(),
            state_topic: Some(format!("stat/{topic}/POWER")),
            state_on: "ON".into(),
            state_off: "OFF".into(),
            availability_topic: Some(format!("tele/{topic}/LWT")),
            payload_available: "Online".into(),
            payload_not_available: "Offline".into(),
            qos: 1,
            retain: false,
            state_format: StateFormat::Words,
            lease: Some(MqttLease::PulseTime {
                topic: format!("cmnd/{topic}/PulseTime"),
            }),
            configure: Some((format!("cmnd/{topic}/PowerOnState"), "0".into())),
            // Tasmota publishes `stat/<t>/POWER` after every change and its
            // state at connection: no request needed.
            status_request: None,
        }
    }

    /// A Shelly Gen1 relay: `shellies/<topic>/relay/0/command` on|off,
    /// `shellies/<topic>/relay/0`, `shellies/<topic>/online` true|false.
    pub fn shelly(topic: &str) -> Self {
        Self {
            preset: "shelly".into(),
            command_topic: format!("shellies/{topic}/relay/0/command"),
            payload_on: "on".into(),
            payload_off: "off".into(),
            state_topic: Some(format!("shellies/{topic}/relay/0")),
            state_on: "on".into(),
            state_off: "off".into(),
            availability_topic: Some(format!("shellies/{topic}/online")),
            payload_available: "true".into(),
            payload_not_available: "false".into(),
            qos: 1,
            retain: false,
            state_format: StateFormat::Words,
            lease: None,
            configure: None,
            status_request: None,
        }
    }

    /// A Shelly Gen2 (Plus/Pro) switch, JSON-RPC over MQTT: `Switch.Set`
    /// requests on `<topic>/rpc` (with `toggle_after` for the lease),
    /// `NotifyStatus` on `<topic>/events/rpc`, `<topic>/online` true|false.
    /// Replies would go to `borne/rpc` (`src`); borne does not need them:
    /// the broker's acknowledgement and the notification say enough.
    pub fn shelly_gen2(topic: &str) -> Self {
        let set = |on: bool, extra: &str| {
            format!(r#"{{"id":1,"src":"borne","method":"Switch.Set","params":{{"id":0,"on":{on}{extra}}}}}"#)
        };
        Self {
            preset: "shelly-gen2".into(),
            command_topic: format!("{topic}/rpc"),
            payload_on: set(true, ""),
            payload_off: set(false, ""),
            state_topic: Some(format!("{topic}/events/rpc")),
            state_on: "true".into(),
            state_off: "false".into(),
            availability_topic: Some(format!("{topic}/online")),
            payload_available: "true".into(),
            payload_not_available: "false".into(),
            qos: 1,
            retain: false,
            state_format: StateFormat::ShellyNotify,
            lease: Some(MqttLease::Payload(set(true, r#","toggle_after":{seconds}"#))),
            configure: Some((
                format!("{topic}/rpc"),
                r#"{"id":2,"src":"borne","method":"Switch.SetConfig","params":{"id":0,"config":{"initial_state":"off"}}}"#
                    .into(),
            )),
            // A Gen2 device says nothing of its switch until it changes
            // (`NotifyStatus`): ask, and read the reply on `borne/rpc`.
            status_request: Some(StatusRequest {
                topic: format!("{topic}/rpc"),
                payload: format!(
                    r#"{{"id":{},"src":"borne","method":"Switch.GetStatus","params":{{"id":0}}}}"#,
                    rpc_id(topic)
                ),
                reply_topic: "borne/rpc".into(),
                id: rpc_id(topic),
            }),
        }
    }

    /// A generic device: ON|OFF on `command_topic`, no state or availability
    /// topic until configured.
    pub fn generic(command_topic: &str) -> Self {
        Self {
            preset: "generic".into(),
            command_topic: command_topic.into(),
            payload_on: "ON".into(),
            payload_off: "OFF".into(),
            state_topic: None,
            state_on: "ON".into(),
            state_off: "OFF".into(),
            availability_topic: None,
            payload_available: "online".into(),
            payload_not_available: "offline".into(),
            qos: 1,
            retain: false,
            state_format: StateFormat::Words,
            lease: None,
            configure: None,
            status_request: None,
        }
    }
}

/// A simulated access point.
#[derive(Debug, Clone, PartialEq)]
pub struct SimAp {
    /// Time each operation takes.
    pub latency: Duration,
    /// Probability that an operation fails.
    pub fail_rate: f64,
    /// Clients reported while on.
    pub clients: u32,
    /// Seed of the failure draws.
    pub seed: u64,
    /// Every operation waits `timeout` then fails (an AP that accepts TCP
    /// and never answers).
    pub hang: bool,
    /// Every operation fails at once (a refused connection).
    pub refuse: bool,
    /// How long a hanging operation waits.
    pub timeout: Duration,
}

/// `reconciler:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcilerSettings {
    /// Periodic re-check of every AP.
    pub resync: Duration,
    /// Operations in flight at once.
    pub max_parallel: usize,
    /// First retry delay.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Shutdown grace for operations in flight.
    pub shutdown_grace: Duration,
    /// Consecutive failures after which an AP is unreachable and only probed.
    pub unreachable_after: u32,
    /// Limit of one probe.
    pub probe_timeout: Duration,
    /// Probes in flight at once, apart from `max_parallel`.
    pub probe_parallel: usize,
    /// Shortest time between two switches of one AP.
    pub min_switch_interval: Duration,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(300),
            max_parallel: 64,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            unreachable_after: 3,
            probe_timeout: Duration::from_secs(5),
            probe_parallel: 4,
            min_switch_interval: Duration::from_secs(2),
        }
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Switches its classrooms.
    Teacher,
    /// Reads everything.
    Viewer,
    /// Reads everything in scope and overrides.
    Admin,
}

impl Role {
    /// The role as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API user.
#[derive(Debug, Clone)]
pub struct User {
    /// Name, shown in the audit log.
    pub name: String,
    /// Role.
    pub role: Role,
    /// SHA-256 of the bearer token; `None` for a user who signs in only
    /// with the identity provider.
    pub token_sha256: Option<[u8; 32]>,
    /// Login at the identity provider (`oidc.user_claim`).
    pub login: Option<String>,
    /// The plain token, only in demo mode.
    pub demo_token: Option<String>,
    /// Classrooms this user may see; `None` means every classroom.
    pub scope: Option<BTreeSet<ClassroomId>>,
    /// Schools as configured (`users[].schools`), for display.
    pub schools: Vec<SchoolId>,
    /// Classrooms as configured (`users[].classrooms`), for display.
    pub classrooms: Vec<ClassroomId>,
    /// Last day the token is accepted (in the configuration's time zone);
    /// `None`: no end.
    pub expires: Option<chrono::NaiveDate>,
}

impl User {
    /// Whether the token has expired at `now`: it is accepted through its
    /// `expires` day, in the configuration's time zone `tz`, and refused
    /// from the next midnight.
    pub fn expired(&self, now: chrono::DateTime<chrono::Utc>, tz: Tz) -> bool {
        self.expires
            .is_some_and(|last| now.with_timezone(&tz).date_naive() > last)
    }

    /// Whether this user may see the classroom.
    pub fn can_see(&self, classroom: &ClassroomId) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(classroom))
    }

    /// Whether this user may send teacher requests for the classroom.
    pub fn can_switch(&self, classroom: &ClassroomId) -> bool {
        matches!(self.role, Role::Teacher | Role::Admin) && self.can_see(classroom)
    }

    /// Whether this user may set overrides on the classroom.
    pub fn can_override(&self, classroom: &ClassroomId) -> bool {
        self.role == Role::Admin && self.can_see(classroom)
    }
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `file:line:col` or a key path such as `schools[1].classrooms[3].schedule`.
    pub location: String,
    /// What is wrong and what to do.
    pub message: String,
    /// A file the configuration points to is missing or unreadable.
    pub missing_file: bool,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// A configuration that passed validation, with what deserves a warning.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Warnings (missing files among them).
    pub warnings: Vec<Problem>,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file has errors.
    #[error("{} has {} error(s):\n{}", .source_name, .errors.len(), .errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// File name used in locations.
        source_name: String,
        /// Every error found.
        errors: Vec<Problem>,
    },
}
