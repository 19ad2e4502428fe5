//! The YAML file as written: serde types that mirror it key for key.
//!
//! Everything a person can mistype is kept as a string or an `Option` here
//! and checked in `validate`, so that one run reports every mistake
//! instead of stopping at the first. Unknown keys are not rejected by serde
//! (`deny_unknown_fields` would stop at the first one); the loader's
//! deserializer (`yaml`) collects them with their positions and reports
//! them all as errors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    /// IANA time zone of every school that does not name its own. Default `Europe/Paris`.
    pub timezone: Option<String>,
    /// Address of the HTTP API and pages. Default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// Directory of the state database. Default `/var/lib/borne`.
    pub state_dir: Option<PathBuf>,
    /// Address teachers use to reach the pages (behind the TLS proxy), for the
    /// links `borne token new` and the demo print. Default `http://<listen>`.
    pub public_url: Option<String>,
    /// How long a teacher's "on" lasts.
    pub teacher_session: RawTeacherSession,
    /// Named sets of days when schools are closed.
    pub calendars: BTreeMap<String, RawCalendar>,
    /// Named schedules: cron rules setting the mode.
    pub schedules: BTreeMap<String, RawSchedule>,
    /// The MQTT broker shared by every MQTT access point.
    pub mqtt: Option<RawMqttBroker>,
    /// Defaults for every SSH access point.
    pub ssh: RawSsh,
    /// Reconciler tuning.
    pub reconciler: RawReconciler,
    /// Schools, their classrooms and access points.
    pub schools: Vec<RawSchool>,
    /// API users (tokens as SHA-256).
    pub users: Vec<RawUser>,
    /// Sign-in with the schools' identity provider (OpenID Connect).
    pub oidc: Option<super::oidc::RawOidc>,
    /// Demo mode: allows plain `token:` in users and prints sign-in links at start.
    pub demo: bool,
    /// How many days the audit log is kept. Default 365.
    pub audit_retention_days: Option<u32>,
    /// How many days the usage report's daily aggregates are kept. Default
    /// 1,830 (five school years).
    pub report_retention_days: Option<u32>,
    /// Serve `/metrics` without a token.
    pub metrics_public: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the real client (for
    /// the audit log and the failed-login limit).
    pub trusted_proxies: Vec<String>,
    /// Connection handling, rate limits and input bounds of the HTTP side.
    pub limits: RawLimits,
    /// Device-side leases: how an "on" ends by itself when borne cannot end it.
    pub failsafe: RawFailsafe,
    /// What borne does while the server's clock is not synchronised.
    pub clock: RawClock,
    /// Several instances sharing one database.
    pub ha: super::ha::RawHa,
    /// The state in PostgreSQL instead of `state_dir/borne.db`.
    pub database: Option<super::database::RawDatabase>,
}

/// `failsafe:` block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawFailsafe {
    /// Off-timer armed on the device at every "on" and renewed while the AP
    /// must stay on. Default 20; 0 disables leases.
    pub lease_minutes: Option<u32>,
    /// The lease in seconds, instead of `lease_minutes` (tests and labs:
    /// a short lease shows the fail-safe at work in seconds). At least 12.
    pub lease_seconds: Option<u64>,
    /// Set the device's power-on state to off at first contact (Tasmota
    /// `PowerOnState 0`, Shelly Gen2 `initial_state: off`). Default true.
    pub configure_devices: Option<bool>,
}

/// `clock:` block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawClock {
    /// No new "on" while the kernel says the clock is not synchronised.
    /// Default false.
    pub require_sync: Option<bool>,
}

/// `teacher_session:` block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawTeacherSession {
    /// Length of a teacher's "on" when the request names none. Default 60.
    pub default_minutes: Option<u32>,
    /// Longest "on" a teacher may ask for. Default 240.
    pub max_minutes: Option<u32>,
    /// End a session once every AP that counts clients has had none for
    /// this long. Default 0 (never).
    pub idle_off_minutes: Option<u32>,
}

/// One entry of `calendars:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawCalendar {
    /// Closed days: `YYYY-MM-DD` or an inclusive range `YYYY-MM-DD..YYYY-MM-DD`.
    pub closed: Vec<String>,
    /// An iCalendar file (relative to the configuration file), read with the
    /// Ministry of Education's semantics (see docs/configuration.md).
    pub ics: Option<PathBuf>,
    /// An iCalendar URL, fetched by the daemon (start, reload, daily) and
    /// cached in `state_dir/calendars/`.
    pub url: Option<String>,
    /// Computed public holidays: `fr` or `fr-alsace-moselle`.
    pub public_holidays: Option<String>,
}

/// One entry of `schedules:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSchedule {
    /// Calendars whose closed days lock this schedule.
    pub calendars: Vec<String>,
    /// Mode when no rule fired within the last 366 days. Default `locked`.
    pub default_mode: Option<String>,
    /// The latest rule to have fired sets the mode.
    pub rules: Vec<RawRule>,
}

/// One schedule rule.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawRule {
    /// Cron expression (5 fields, or 6 with seconds first) in the school's time zone.
    pub at: String,
    /// `locked`, `available` or `on`.
    pub mode: String,
}

/// One school.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSchool {
    /// Unique id, `[a-z0-9-]{1,64}`.
    pub id: String,
    /// Name shown to people.
    pub name: Option<String>,
    /// Default schedule of its classrooms.
    pub schedule: Option<String>,
    /// Calendars closing this school, added to its classrooms' schedules' ones.
    pub calendars: Vec<String>,
    /// IANA time zone, default the top-level one.
    pub timezone: Option<String>,
    /// Defaults for its SSH access points, over the top-level `ssh:`.
    pub ssh: Option<RawSsh>,
    /// Defaults for its MQTT access points' `mqtt:` blocks.
    pub mqtt: Option<RawMqttAp>,
    /// Its classrooms.
    pub classrooms: Vec<RawClassroom>,
}

/// One classroom.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawClassroom {
    /// Unique id across the file, `[a-z0-9-]{1,64}`.
    pub id: String,
    /// Name shown to people.
    pub name: Option<String>,
    /// Overrides the school's schedule.
    pub schedule: Option<String>,
    /// Calendars closing this classroom, added to its schedule's and school's ones.
    pub calendars: Vec<String>,
    /// Its access points.
    pub access_points: Vec<RawAccessPoint>,
}

/// One access point: exactly one driver block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawAccessPoint {
    /// Unique id across the file, `[a-z0-9-]{1,64}`.
    pub id: String,
    /// Reached over SSH.
    pub ssh: Option<RawSsh>,
    /// Obeys an MQTT topic.
    pub mqtt: Option<RawMqttAp>,
    /// Simulated, in process.
    pub sim: Option<RawSim>,
}

/// SSH settings: the top-level `ssh:` block gives defaults, an AP's block overrides them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RawSsh {
    /// Host name or address of the AP.
    pub host: Option<String>,
    /// Default 22.
    pub port: Option<u16>,
    /// Default `root`.
    pub user: Option<String>,
    /// Private key file.
    pub key_file: Option<PathBuf>,
    /// Passphrase of an encrypted key, in a file.
    pub passphrase_file: Option<PathBuf>,
    /// Password, in a file (instead of a key).
    pub password_file: Option<PathBuf>,
    /// OpenSSH `known_hosts` file.
    pub known_hosts: Option<PathBuf>,
    /// Expected host key fingerprint, `SHA256:...` as `ssh-keygen -l` prints it.
    pub host_key_sha256: Option<String>,
    /// Skip host key verification (logs a warning at every connection).
    pub insecure_ignore_host_key: Option<bool>,
    /// `openwrt` (default) or `custom`.
    pub preset: Option<String>,
    /// openwrt: which `wifi-device` sections to switch; default all.
    pub radios: Option<Vec<String>>,
    /// Default 5.
    pub connect_timeout_seconds: Option<u64>,
    /// Default 30.
    pub command_timeout_seconds: Option<u64>,
    /// Keep an idle connection open this long for reuse; 0 closes it after each operation.
    pub reuse_seconds: Option<u64>,
    /// Open the connection this long before a scheduled change that switches
    /// the AP, and keep it until the change is applied. Default 20; 0: never.
    pub prewarm_seconds: Option<u64>,
    /// custom: command switching the Wi-Fi on.
    pub on_command: Option<String>,
    /// custom: command switching the Wi-Fi off.
    pub off_command: Option<String>,
    /// custom: command printing the state.
    pub status_command: Option<String>,
    /// custom: regex on the status output meaning on (else exit status 0 means on).
    pub status_on: Option<String>,
    /// custom: regex on the status output meaning off.
    pub status_off: Option<String>,
    /// custom: command printing the number of associated clients.
    pub clients_command: Option<String>,
    /// custom: command arming the AP's own off-timer; `{seconds}` is
    /// replaced by the lease. Run after `on_command` and at every renewal.
    pub lease_command: Option<String>,
}

/// The top-level `mqtt:` block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawMqttBroker {
    /// Broker host. Default `127.0.0.1`.
    pub host: Option<String>,
    /// Default 1883 (8883 with `tls`).
    pub port: Option<u16>,
    /// Default `borne`.
    pub client_id: Option<String>,
    /// User name at the broker.
    pub username: Option<String>,
    /// Password, in a file.
    pub password_file: Option<PathBuf>,
    /// TLS to the broker.
    pub tls: Option<RawMqttTls>,
    /// Keep-alive interval, 5..=3600 seconds. Default 30.
    pub keep_alive_seconds: Option<u64>,
}

/// `mqtt.tls`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawMqttTls {
    /// CA certificate(s) to trust, PEM. Default: the system's CA store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate, PEM.
    pub cert_file: Option<PathBuf>,
    /// Client key, PEM.
    pub key_file: Option<PathBuf>,
}

/// An access point's `mqtt:` block.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RawMqttAp {
    /// `tasmota`, `shelly`, `shelly-gen2` or `generic`.
    pub preset: Option<String>,
    /// Device topic for the presets.
    pub topic: Option<String>,
    /// generic: where commands are published.
    pub command_topic: Option<String>,
    /// Where the device reports its state.
    pub state_topic: Option<String>,
    /// The device's availability (last will) topic.
    pub availability_topic: Option<String>,
    /// Command payloads.
    pub payload_on: Option<String>,
    /// Command payloads.
    pub payload_off: Option<String>,
    /// State payloads.
    pub state_on: Option<String>,
    /// State payloads.
    pub state_off: Option<String>,
    /// Availability payloads.
    pub payload_available: Option<String>,
    /// Availability payloads.
    pub payload_not_available: Option<String>,
    /// 0, 1 or 2. Default 1.
    pub qos: Option<u8>,
    /// Retain commands (only for devices without availability topic). Default false.
    pub retain: Option<bool>,
    /// generic: the "on" command carrying a lease, `{seconds}` replaced,
    /// e.g. `{"state":"ON","expires_in":{seconds}}`. Sent instead of
    /// `payload_on` and at every renewal.
    pub lease_payload: Option<String>,
}

/// An access point's `sim:` block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSim {
    /// Time each operation takes.
    pub latency_ms: Option<u64>,
    /// Probability (0..1) that an operation fails.
    pub fail_rate: Option<f64>,
    /// Associated clients reported while on.
    pub clients: Option<u32>,
    /// Seed of the failure draws (default derived from the AP id).
    pub seed: Option<u64>,
    /// Every operation waits until `timeout_seconds` and fails, like an AP
    /// that accepts TCP and never answers. Default false.
    pub hang: Option<bool>,
    /// Every operation fails at once, like a refused connection. Default false.
    pub refuse: Option<bool>,
    /// How long a hanging operation waits. Default 35 (the SSH defaults'
    /// connect + command timeouts).
    pub timeout_seconds: Option<u64>,
}

/// `reconciler:` block.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawReconciler {
    /// Periodic re-check of every AP. Default 300.
    pub resync_seconds: Option<u64>,
    /// Operations in flight at once, all APs together. Default 64.
    pub max_parallel: Option<usize>,
    /// First retry delay. Default 1.
    pub backoff_initial_seconds: Option<u64>,
    /// Longest retry delay. Default 60.
    pub backoff_max_seconds: Option<u64>,
    /// How long shutdown waits for operations in flight. Default 10.
    pub shutdown_grace_seconds: Option<u64>,
    /// Consecutive failures after which an AP is unreachable: it is then
    /// only probed, outside `max_parallel`. Default 3.
    pub unreachable_after_failures: Option<u32>,
    /// Limit of a probe of an unreachable AP. Default 5.
    pub probe_timeout_seconds: Option<u64>,
    /// Probes in flight at once, all unreachable APs together, apart from
    /// `max_parallel`. Default 4.
    pub probe_parallel: Option<usize>,
    /// Never switch one AP more often than this; changes in between are
    /// coalesced to the latest. 0 to 3600, default 2.
    pub min_switch_interval_seconds: Option<u64>,
}

/// One API user.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawUser {
    /// Shown in the audit log.
    pub name: String,
    /// `admin`, `teacher` or `viewer`.
    pub role: String,
    /// Hex SHA-256 of the bearer token.
    pub token_sha256: Option<String>,
    /// Plain token, only with `demo: true`.
    pub token: Option<String>,
    /// Matched against `oidc.user_claim` at sign-in with the identity provider.
    pub login: Option<String>,
    /// Classrooms a teacher may switch.
    pub classrooms: Vec<String>,
    /// Schools whose classrooms the user may see (and switch, as teacher or admin).
    pub schools: Vec<String>,
    /// Last day the token is accepted, `YYYY-MM-DD` (refused from the next midnight).
    pub expires: Option<String>,
}

/// `self`'s keys over `defaults`'.
macro_rules! under {
    ($self:ident, $defaults:ident, $($field:ident),*) => {
        Self { $($field: $self.$field.clone().or_else(|| $defaults.$field.clone()),)* }
    };
}

impl RawSsh {
    /// These settings with `defaults` filling what they leave out. How to
    /// authenticate and how to check the host key are each one choice: a
    /// block that names a key file or a password file takes the whole
    /// choice, so a school's password does not clash with a city-wide key.
    pub fn under(&self, defaults: &RawSsh) -> RawSsh {
        let mut d = defaults.clone();
        if self.key_file.is_some() || self.password_file.is_some() {
            d.key_file = None;
            d.password_file = None;
            d.passphrase_file = None;
        }
        if self.known_hosts.is_some() || self.host_key_sha256.is_some() || self.insecure_ignore_host_key.is_some() {
            d.known_hosts = None;
            d.host_key_sha256 = None;
            d.insecure_ignore_host_key = None;
        }
        under!(
            self,
            d,
            host,
            port,
            user,
            key_file,
            passphrase_file,
            password_file,
            known_hosts,
            host_key_sha256,
            insecure_ignore_host_key,
            preset,
            radios,
            connect_timeout_seconds,
            command_timeout_seconds,
            reuse_seconds,
            prewarm_seconds,
            on_command,
            off_command,
            status_command,
            status_on,
            status_off,
            clients_command,
            lease_command
        )
    }
}

impl RawMqttAp {
    /// This block with `defaults` (a school's `mqtt:`) filling what it leaves out.
    pub fn under(&self, defaults: &RawMqttAp) -> RawMqttAp {
        under!(
            self,
            defaults,
            preset,
            topic,
            command_topic,
            state_topic,
            availability_topic,
            payload_on,
            payload_off,
            state_on,
            state_off,
            payload_available,
            payload_not_available,
            qos,
            retain,
            lease_payload
        )
    }
}

/// `limits:` block: what one client, one user or one access point may cost
/// the daemon. Every key has a default sized for a city; see
/// docs/deployment.md for how to size them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawLimits {
    /// Open HTTP connections at once; past it, new ones wait in the kernel's
    /// queue until one closes. Default 8192 (the unit allows 16384 files).
    pub max_connections: Option<usize>,
    /// A client has this long to send a request's headers, counted from the
    /// connection (or from the first byte of a later request). Default 10.
    pub header_read_timeout_seconds: Option<u64>,
    /// A keep-alive connection with no request in progress is closed after
    /// this long (event streams are requests in progress). Default 60.
    pub idle_timeout_seconds: Option<u64>,
    /// Accepted writes (POST, PUT, DELETE) per user per minute. Default 30.
    pub writes_per_minute: Option<u32>,
    /// Failed authentications per client address per minute before it gets
    /// 429 for a minute. Default 10.
    pub failed_auth_per_address: Option<u32>,
    /// Failed authentications per minute, all addresses together, before
    /// every failing request gets 429. Default 600.
    pub failed_auth_total: Option<u32>,
    /// Client addresses whose failures are remembered (least recently
    /// failing forgotten first). Default 65536.
    pub failed_auth_addresses: Option<usize>,
    /// How far ahead an override's `until` may be, in days. Default 400.
    pub override_max_days: Option<u32>,
}
