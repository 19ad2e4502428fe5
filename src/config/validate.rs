//! Raw YAML → [`Config`]: every check runs, every problem is collected, and
//! a `Config` is built only when there is none.
//!
//! Locations are `file:line:col` when the YAML parser knows them (syntax and
//! type errors), otherwise key paths such as `schools[1].classrooms[3].schedule`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use sha2::{Digest, Sha256};

use super::raw::{
    RawAccessPoint, RawCalendar, RawConfig, RawMqttAp, RawMqttBroker, RawReconciler, RawSchedule, RawSim, RawSsh,
    RawUser,
};
use super::yaml;
use super::*;
use crate::schedule::{CronExpr, Mode, Rule, Schedule};

/// Reads and validates the file at `path` and the files it includes.
///
/// # Errors
/// [`LoadError::Read`] when the file cannot be read (or is larger than
/// 64 MiB), [`LoadError::Invalid`] with every problem found otherwise.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let text = super::include::read_limited(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let name = path.display().to_string();
    validate_text(&text, &name, path.parent(), Some(path))
}

/// Validates configuration text. `source_name` prefixes parser locations;
/// relative file paths (and `include:` patterns) in the configuration are
/// resolved against `base_dir`.
///
/// # Errors
/// [`LoadError::Invalid`] with every problem found.
pub fn from_str(text: &str, source_name: &str, base_dir: Option<&Path>) -> Result<Loaded, LoadError> {
    validate_text(text, source_name, base_dir, None)
}

fn validate_text(
    text: &str,
    source_name: &str,
    base_dir: Option<&Path>,
    main_file: Option<&Path>,
) -> Result<Loaded, LoadError> {
    let invalid = |errors| LoadError::Invalid {
        source_name: source_name.to_owned(),
        errors,
    };
    let at = |pos: &yaml::Pos, message: String| Problem {
        location: pos.to_string(),
        message,
        missing_file: false,
    };
    let mut tree = yaml::parse(text, &Arc::from(source_name)).map_err(|e| invalid(vec![at(&e.pos, e.message)]))?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    super::include::resolve(&mut tree, base_dir, main_file, &mut errors, &mut warnings);
    let unknown = std::cell::RefCell::new(Vec::new());
    let config_sha256 = super::ha::config_sha256(&tree);
    let raw: RawConfig = match yaml::from_node(&tree, &unknown) {
        Ok(raw) => raw,
        Err(e) => {
            let pos = e.pos.clone().unwrap_or_else(|| tree.pos.clone());
            errors.push(at(&pos, e.message));
            return Err(invalid(errors));
        }
    };
    for u in unknown.into_inner() {
        let key = u.path.rsplit('.').next().unwrap_or(&u.path).to_owned();
        errors.push(at(
            &u.pos,
            format!("{}: unknown key \"{key}\" (check its spelling and indentation)", u.path),
        ));
    }
    let mut v = Validator {
        errors: Vec::new(),
        warnings: Vec::new(),
        base_dir: base_dir.map(Path::to_owned),
        checked_files: Default::default(),
    };
    let config = v.config(raw);
    // The checks name key paths; give each its file:line:col as well.
    if !v.errors.is_empty() || !v.warnings.is_empty() {
        let index = yaml::index(&tree);
        for p in v.errors.iter_mut().chain(v.warnings.iter_mut()) {
            locate(p, &index);
        }
    }
    errors.append(&mut v.errors);
    warnings.append(&mut v.warnings);
    if errors.is_empty() {
        // `config` is only `None` when an error was recorded.
        if let Some(mut config) = config {
            config.ha.config_sha256 = config_sha256;
            return Ok(Loaded { config, warnings });
        }
    }
    Err(invalid(errors))
}

/// The position of a key path, or of its nearest written ancestor (a
/// default that is missing has no position of its own).
fn position_of<'a>(path: &str, index: &'a HashMap<String, yaml::Pos>) -> Option<&'a yaml::Pos> {
    let mut p = path;
    loop {
        if let Some(pos) = index.get(p) {
            return Some(pos);
        }
        let cut = p.rfind(['.', '['])?;
        p = &p[..cut];
    }
}

/// `schools[3].id` → `schools/b.yaml:4:5: schools[3].id`, and the
/// `(also at PATH)` of duplicate errors gets its position too, so that
/// both files are named.
fn locate(p: &mut Problem, index: &HashMap<String, yaml::Pos>) {
    if let Some(pos) = position_of(&p.location, index) {
        p.location = format!("{pos}: {}", p.location);
    }
    for marker in ["(also at ", "(also "] {
        if let Some(start) = p.message.find(marker) {
            let from = start + marker.len();
            if let Some(len) = p.message[from..].find(')') {
                let path = p.message[from..from + len].to_owned();
                if let Some(pos) = position_of(&path, index) {
                    p.message.replace_range(from..from + len, &format!("{path}, {pos}"));
                }
            }
            break;
        }
    }
}

/// "known: a, b, c" for messages about unknown names.
fn known<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    if names.is_empty() {
        "none is defined".to_owned()
    } else {
        format!("known: {}", names.join(", "))
    }
}

struct Validator {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    base_dir: Option<PathBuf>,
    /// Files already checked: one warning per file, not one per AP using it.
    checked_files: std::collections::HashSet<PathBuf>,
}

impl Validator {
    fn error(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem {
            location: location.into(),
            message: message.into(),
            missing_file: false,
        });
    }

    fn warn(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem {
            location: location.into(),
            message: message.into(),
            missing_file: false,
        });
    }

    /// Resolves a configured file path and warns when it cannot be read:
    /// `borne check` must pass on any machine, `borne run` refuses to start.
    fn file(&mut self, location: String, path: &Path) -> PathBuf {
        let resolved = match &self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_owned(),
        };
        if self.checked_files.insert(resolved.clone())
            && let Err(e) = std::fs::File::open(&resolved)
        {
            self.warnings.push(Problem {
                location,
                message: format!("cannot read {}: {e}", resolved.display()),
                missing_file: true,
            });
        }
        resolved
    }

    fn id(&mut self, location: String, id: &str, what: &str) -> bool {
        if super::is_valid_id(id) {
            true
        } else if id.is_empty() {
            self.error(location, format!("{what} id is missing"));
            false
        } else {
            self.error(
                location,
                format!("{what} id \"{id}\" must be 1 to 64 characters among a-z, 0-9 and -"),
            );
            false
        }
    }

    fn timezone(&mut self, location: String, name: &str) -> Option<Tz> {
        match name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.error(
                    location,
                    format!("unknown time zone \"{name}\"; use an IANA name such as Europe/Paris"),
                );
                None
            }
        }
    }

    fn mode(&mut self, location: String, s: &str) -> Option<Mode> {
        match s {
            "locked" => Some(Mode::Locked),
            "available" => Some(Mode::Available),
            "on" => Some(Mode::On),
            _ => {
                self.error(location, format!("unknown mode \"{s}\"; use locked, available or on"));
                None
            }
        }
    }

    fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let timezone = self
            .timezone("timezone".into(), raw.timezone.as_deref().unwrap_or("Europe/Paris"))
            .unwrap_or(Tz::UTC);
        let listen_text = raw.listen.as_deref().unwrap_or("127.0.0.1:8080");
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                self.error(
                    "listen",
                    format!("\"{listen_text}\" is not an address:port such as 127.0.0.1:8080"),
                );
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };
        let state_dir = match raw.state_dir {
            Some(p) => match &self.base_dir {
                Some(base) if p.is_relative() => base.join(p),
                _ => p,
            },
            None => PathBuf::from("/var/lib/borne"),
        };
        let public_url = raw
            .public_url
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{listen}"));
        let teacher_session = self.teacher_session(&raw.teacher_session);
        let mut calendars = self.calendars(&raw.calendars, &state_dir, timezone);
        let schedules = self.schedules(&raw.schedules, &calendars);
        let reconciler = self.reconciler(&raw.reconciler);
        let failsafe = self.failsafe(&raw.failsafe);
        let clock = ClockSettings {
            require_sync: raw.clock.require_sync.unwrap_or(false),
        };
        let audit_retention_days = raw.audit_retention_days.unwrap_or(365);
        if audit_retention_days == 0 {
            self.error("audit_retention_days", "must be at least 1");
        }
        let report_retention_days = raw.report_retention_days.unwrap_or(1830);
        if !(1..=36_500).contains(&report_retention_days) {
            self.error("report_retention_days", "must be between 1 and 36500");
        }

        let mut schools = Vec::new();
        let mut classrooms = Vec::new();
        let mut access_points = Vec::new();
        let mut seen_schools = HashMap::new();
        let mut seen_classrooms: HashMap<String, String> = HashMap::new();
        let mut seen_aps: HashMap<String, String> = HashMap::new();
        let mut uses_mqtt = false;
        let mut extra_schedules = HashMap::new();
        if raw.schools.is_empty() {
            // An empty or truncated file must not pass for a city without
            // schools: adopting it would end every session at a reload.
            self.error(
                "schools",
                "no school is defined (is the file empty or truncated?); borne needs at least one",
            );
        }
        if raw.users.is_empty() {
            self.warn("users", "no user is defined: nobody can use the API or the pages");
        }
        for (si, school) in raw.schools.iter().enumerate() {
            let sloc = format!("schools[{si}]");
            if self.id(format!("{sloc}.id"), &school.id, "school")
                && let Some(prev) = seen_schools.insert(school.id.clone(), sloc.clone())
            {
                self.error(
                    format!("{sloc}.id"),
                    format!("duplicate school id \"{}\" (also at {prev})", school.id),
                );
            }
            let school_tz = match &school.timezone {
                Some(name) => self.timezone(format!("{sloc}.timezone"), name).unwrap_or(timezone),
                None => timezone,
            };
            if let Some(name) = &school.schedule
                && !schedules.contains_key(name.as_str())
                && !raw.schedules.contains_key(name)
            {
                self.error(
                    format!("{sloc}.schedule"),
                    format!(
                        "unknown schedule \"{name}\"; {}",
                        known(raw.schedules.keys().map(String::as_str))
                    ),
                );
            }
            let school_id = SchoolId::from(school.id.as_str());
            let school_calendars = self.known_calendars(&sloc, &school.calendars, &calendars);
            let school_ssh = match &school.ssh {
                Some(s) => s.under(&raw.ssh),
                None => raw.ssh.clone(),
            };
            let mut school_classrooms = Vec::new();
            if school.classrooms.is_empty() {
                self.warn(format!("{sloc}.classrooms"), "school has no classroom");
            }
            for (ci, classroom) in school.classrooms.iter().enumerate() {
                let cloc = format!("{sloc}.classrooms[{ci}]");
                if self.id(format!("{cloc}.id"), &classroom.id, "classroom")
                    && let Some(prev) = seen_classrooms.insert(classroom.id.clone(), cloc.clone())
                {
                    self.error(
                        format!("{cloc}.id"),
                        format!("duplicate classroom id \"{}\" (also at {prev})", classroom.id),
                    );
                }
                let classroom_id = ClassroomId::from(classroom.id.as_str());
                let schedule = match (&classroom.schedule, &school.schedule) {
                    (Some(name), _) => {
                        let found = schedules.get(name.as_str()).cloned();
                        if found.is_none() && !raw.schedules.contains_key(name) {
                            self.error(
                                format!("{cloc}.schedule"),
                                format!(
                                    "unknown schedule \"{name}\"; {}",
                                    known(raw.schedules.keys().map(String::as_str))
                                ),
                            );
                        }
                        found.map(|s| (name.clone(), s))
                    }
                    (None, Some(name)) => schedules.get(name.as_str()).cloned().map(|s| (name.clone(), s)),
                    (None, None) => {
                        self.error(
                            format!("{cloc}.schedule"),
                            "no schedule: give the classroom or its school a `schedule:`",
                        );
                        None
                    }
                };
                let mut ap_ids = Vec::new();
                if classroom.access_points.is_empty() {
                    self.warn(format!("{cloc}.access_points"), "classroom has no access point");
                }
                for (ai, ap) in classroom.access_points.iter().enumerate() {
                    let aloc = format!("{cloc}.access_points[{ai}]");
                    if self.id(format!("{aloc}.id"), &ap.id, "access point")
                        && let Some(prev) = seen_aps.insert(ap.id.clone(), aloc.clone())
                    {
                        self.error(
                            format!("{aloc}.id"),
                            format!("duplicate access point id \"{}\" (also at {prev})", ap.id),
                        );
                    }
                    if ap.mqtt.is_some() {
                        uses_mqtt = true;
                    }
                    if let Some(driver) = self.driver(&aloc, ap, &school_ssh, school.mqtt.as_ref()) {
                        let id = ApId::from(ap.id.as_str());
                        ap_ids.push(id.clone());
                        access_points.push(AccessPoint {
                            id,
                            classroom: classroom_id.clone(),
                            school: school_id.clone(),
                            lease: None,
                            driver,
                        });
                    }
                }
                if let Some((schedule_name, schedule)) = schedule {
                    let mut extra = school_calendars.clone();
                    extra.extend(self.known_calendars(&cloc, &classroom.calendars, &calendars));
                    let (schedule, classroom_calendars) = Self::classroom_schedule(
                        &raw.schedules,
                        &calendars,
                        &mut extra_schedules,
                        &extra,
                        &schedule_name,
                        schedule,
                    );
                    classrooms.push(Classroom {
                        id: classroom_id.clone(),
                        name: classroom.name.clone().unwrap_or_else(|| classroom.id.clone()),
                        school: school_id.clone(),
                        schedule_name,
                        schedule,
                        calendars: classroom_calendars,
                        timezone: school_tz,
                        access_points: ap_ids,
                    });
                }
                school_classrooms.push(classroom_id);
            }
            schools.push(School {
                id: school_id,
                name: school.name.clone().unwrap_or_else(|| school.id.clone()),
                timezone: school_tz,
                classrooms: school_classrooms,
            });
        }

        let mqtt = match &raw.mqtt {
            Some(b) => self.mqtt_broker(b),
            None if uses_mqtt => {
                self.error(
                    "mqtt",
                    "access points use MQTT but there is no top-level `mqtt:` block naming the broker",
                );
                None
            }
            None => None,
        };
        let users = self.users(&raw.users, raw.demo, &seen_classrooms, &schools);
        let oidc = raw.oidc.as_ref().and_then(|o| {
            match super::oidc::validate(o, &public_url, &schools, &seen_classrooms, self.base_dir.as_deref()) {
                Ok(v) => {
                    if let Some(f) = &v.client_secret_file {
                        self.file("oidc.client_secret_file".into(), f);
                    }
                    Some(v)
                }
                Err(problems) => {
                    for (location, message) in problems {
                        self.error(location, message);
                    }
                    None
                }
            }
        });
        let database =
            raw.database
                .as_ref()
                .and_then(|d| match super::database::validate(d, self.base_dir.as_deref()) {
                    Ok(v) => {
                        if let Some(f) = &v.password_file {
                            self.file("database.password_file".into(), f);
                        }
                        if let Some(f) = &v.ca_file {
                            self.file("database.ca_file".into(), f);
                        }
                        Some(v)
                    }
                    Err(problems) => {
                        for (location, message) in problems {
                            self.error(location, message);
                        }
                        None
                    }
                });
        if oidc.is_none()
            && let Some(i) = raw.users.iter().position(|u| u.login.is_some())
        {
            self.warn(
                format!("users[{i}].login"),
                "logins are only used with an `oidc:` block (sign-in with the identity provider)",
            );
        }
        let mut trusted_proxies = Vec::new();
        for (i, p) in raw.trusted_proxies.iter().enumerate() {
            match p.parse() {
                Ok(ip) => trusted_proxies.push(ip),
                Err(_) => self.error(format!("trusted_proxies[{i}]"), format!("\"{p}\" is not an IP address")),
            }
        }

        self.leases(&failsafe, &mut access_points);
        if teacher_session.idle_off_minutes > 0 {
            for c in &classrooms {
                let counts = c.access_points.iter().any(|id| {
                    access_points
                        .iter()
                        .find(|a| a.id == *id)
                        .is_some_and(AccessPoint::counts_clients)
                });
                if !counts && !c.access_points.is_empty() {
                    self.warn(
                        format!("classroom \"{}\" (school {})", c.id, c.school),
                        "cannot use teacher_session.idle_off_minutes: none of its access points can count clients \
                         (MQTT plugs, custom without clients_command), so its sessions are never cut for idleness",
                    );
                }
            }
        }
        let (limits, limit_errors) = super::limits::validate(&raw.limits);
        for (key, message) in limit_errors {
            self.error(key, message);
        }
        let (ha, ha_errors) = super::ha::validate(&raw.ha);
        for (key, message) in ha_errors {
            self.error(key, message);
        }

        let used: BTreeSet<&str> = classrooms.iter().map(|c| c.schedule_name.as_str()).collect();
        for (_, schedule) in raw.schedules.iter().filter(|(n, _)| used.contains(n.as_str())) {
            for cal in &schedule.calendars {
                if let Some(c) = calendars.get_mut(cal) {
                    Arc::make_mut(c).in_schedule = true;
                }
            }
        }
        let classroom_index = classrooms.iter().enumerate().map(|(i, c)| (c.id.clone(), i)).collect();
        let ap_index = access_points
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        if !self.errors.is_empty() {
            return None;
        }
        Some(Config {
            timezone,
            listen,
            state_dir,
            public_url,
            teacher_session,
            schools,
            classrooms,
            access_points,
            users,
            oidc,
            mqtt,
            reconciler,
            demo: raw.demo,
            audit_retention_days,
            report_retention_days,
            metrics_public: raw.metrics_public,
            trusted_proxies,
            failsafe,
            clock,
            calendars,
            limits,
            ha,
            database,
            classroom_index,
            ap_index,
        })
    }

    fn teacher_session(&mut self, raw: &super::raw::RawTeacherSession) -> TeacherSession {
        let default_minutes = raw.default_minutes.unwrap_or(60);
        let max_minutes = raw.max_minutes.unwrap_or(240);
        if default_minutes == 0 {
            self.error("teacher_session.default_minutes", "must be at least 1");
        }
        if max_minutes < default_minutes {
            self.error(
                "teacher_session.max_minutes",
                format!("max_minutes ({max_minutes}) is below default_minutes ({default_minutes})"),
            );
        }
        if max_minutes > 24 * 60 {
            self.error(
                "teacher_session.max_minutes",
                format!("{max_minutes} minutes is more than a day; a teacher's session must end the same day"),
            );
        }
        let idle_off_minutes = raw.idle_off_minutes.unwrap_or(0);
        if idle_off_minutes > 24 * 60 {
            self.error(
                "teacher_session.idle_off_minutes",
                format!("{idle_off_minutes} minutes is more than a day; use 0 to never end an idle session"),
            );
        }
        TeacherSession {
            default_minutes,
            max_minutes,
            idle_off_minutes,
        }
    }

    fn failsafe(&mut self, raw: &super::raw::RawFailsafe) -> Failsafe {
        let lease = match (raw.lease_seconds, raw.lease_minutes) {
            (Some(_), Some(_)) => {
                self.error(
                    "failsafe.lease_seconds",
                    "give lease_minutes or lease_seconds, not both",
                );
                None
            }
            (Some(0), None) | (None, Some(0)) => None,
            (Some(s), None) => Some(Duration::from_secs(s)),
            (None, Some(m)) => Some(Duration::from_secs(u64::from(m) * 60)),
            (None, None) => Failsafe::default().lease,
        };
        if let Some(l) = lease
            && !(MIN_LEASE..=MAX_LEASE).contains(&l)
        {
            let key = if raw.lease_seconds.is_some() {
                "failsafe.lease_seconds"
            } else {
                "failsafe.lease_minutes"
            };
            self.error(
                key,
                format!(
                    "a lease of {} s is outside {}..={} s (Tasmota's PulseTime range); 0 disables leases",
                    l.as_secs(),
                    MIN_LEASE.as_secs(),
                    MAX_LEASE.as_secs()
                ),
            );
        }
        Failsafe {
            lease,
            configure_devices: raw.configure_devices.unwrap_or(true),
        }
    }

    /// Gives each AP its lease, or a warning saying why it holds none; drops
    /// the first-contact configuration when IT asked borne not to touch it.
    fn leases(&mut self, failsafe: &Failsafe, aps: &mut [AccessPoint]) {
        let location = |ap: &AccessPoint| {
            format!(
                "access point \"{}\" (school {}, classroom {})",
                ap.id, ap.school, ap.classroom
            )
        };
        for ap in aps.iter_mut() {
            if !failsafe.configure_devices
                && let DriverConfig::Mqtt(m) = &mut ap.driver
            {
                m.configure = None;
            }
            let Some(lease) = failsafe.lease else {
                let at = location(ap);
                self.warn(
                    at,
                    "failsafe.lease_minutes is 0: no off-timer on the device, so if borne stops, this AP stays \
                     on until someone switches it off",
                );
                continue;
            };
            match lease_support(&ap.driver) {
                Ok(()) => ap.lease = Some(lease),
                Err(why) => {
                    let at = location(ap);
                    self.warn(at, why);
                }
            }
        }
    }

    fn calendars(
        &mut self,
        raw: &BTreeMap<String, RawCalendar>,
        state_dir: &Path,
        tz: Tz,
    ) -> BTreeMap<String, Arc<super::calendars::NamedCalendar>> {
        let built = super::calendars::build(raw, self.base_dir.as_deref(), state_dir, tz);
        self.errors.extend(built.errors);
        self.warnings.extend(built.warnings);
        built.calendars
    }

    /// The calendars of `raw_names` (a school's or a classroom's list at
    /// `loc`) that exist; an error for each unknown one.
    fn known_calendars(
        &mut self,
        loc: &str,
        raw_names: &[String],
        calendars: &BTreeMap<String, Arc<super::calendars::NamedCalendar>>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (i, name) in raw_names.iter().enumerate() {
            if calendars.contains_key(name) {
                out.push(name.clone());
            } else {
                self.error(
                    format!("{loc}.calendars[{i}]"),
                    format!(
                        "unknown calendar \"{name}\"; {}",
                        known(calendars.keys().map(String::as_str))
                    ),
                );
            }
        }
        out
    }

    /// A classroom's calendars (its schedule's, then `extra`: its school's
    /// and its own) and its schedule with all their closed days. Classrooms
    /// with the same schedule and calendars share one schedule (`memo`).
    fn classroom_schedule(
        raw_schedules: &BTreeMap<String, RawSchedule>,
        calendars: &BTreeMap<String, Arc<super::calendars::NamedCalendar>>,
        memo: &mut HashMap<(String, Vec<String>), Arc<Schedule>>,
        extra: &[String],
        schedule_name: &str,
        schedule: Arc<Schedule>,
    ) -> (Arc<Schedule>, Vec<String>) {
        let mut names: Vec<String> = raw_schedules
            .get(schedule_name)
            .map(|s| s.calendars.clone())
            .unwrap_or_default();
        let before = names.len();
        for name in extra {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        if names.len() == before {
            return (schedule, names);
        }
        let schedule = memo
            .entry((schedule_name.to_owned(), names.clone()))
            .or_insert_with(|| {
                Arc::new(Schedule::new(
                    schedule.default_mode(),
                    schedule.rules().to_vec(),
                    super::calendars::closed_ranges(calendars, &names),
                ))
            })
            .clone();
        (schedule, names)
    }

    fn schedules(
        &mut self,
        raw: &BTreeMap<String, RawSchedule>,
        calendars: &BTreeMap<String, Arc<super::calendars::NamedCalendar>>,
    ) -> BTreeMap<String, Arc<Schedule>> {
        let mut out = BTreeMap::new();
        for (name, schedule) in raw {
            let loc = format!("schedules.{name}");
            let mut ok = true;
            let mut closed = Vec::new();
            for (i, cal) in schedule.calendars.iter().enumerate() {
                match calendars.get(cal) {
                    Some(c) => closed.extend(c.calendar.ranges()),
                    None => {
                        ok = false;
                        self.error(
                            format!("{loc}.calendars[{i}]"),
                            format!(
                                "unknown calendar \"{cal}\"; {}",
                                known(calendars.keys().map(String::as_str))
                            ),
                        );
                    }
                }
            }
            let default_mode = match &schedule.default_mode {
                Some(m) => self.mode(format!("{loc}.default_mode"), m),
                None => Some(Mode::Locked),
            };
            let mut rules = Vec::new();
            if schedule.rules.is_empty() && schedule.default_mode.is_none() {
                self.warn(
                    format!("{loc}.rules"),
                    "no rules and no default_mode: the schedule is always locked",
                );
            }
            for (i, rule) in schedule.rules.iter().enumerate() {
                let rloc = format!("{loc}.rules[{i}]");
                let at = match CronExpr::parse(&rule.at) {
                    Ok(at) => Some(at),
                    Err(e) => {
                        self.error(format!("{rloc}.at"), e);
                        None
                    }
                };
                let mode = self.mode(format!("{rloc}.mode"), &rule.mode);
                match (at, mode) {
                    (Some(at), Some(mode)) => rules.push(Rule { at, mode }),
                    _ => ok = false,
                }
            }
            if let (true, Some(default_mode)) = (ok, default_mode) {
                out.insert(name.clone(), Arc::new(Schedule::new(default_mode, rules, closed)));
            }
        }
        out
    }

    fn reconciler(&mut self, raw: &RawReconciler) -> ReconcilerSettings {
        let d = ReconcilerSettings::default();
        let secs = |v: Option<u64>, default: Duration| v.map(Duration::from_secs).unwrap_or(default);
        let s = ReconcilerSettings {
            resync: secs(raw.resync_seconds, d.resync),
            max_parallel: raw.max_parallel.unwrap_or(d.max_parallel),
            backoff_initial: secs(raw.backoff_initial_seconds, d.backoff_initial),
            backoff_max: secs(raw.backoff_max_seconds, d.backoff_max),
            shutdown_grace: secs(raw.shutdown_grace_seconds, d.shutdown_grace),
            unreachable_after: raw.unreachable_after_failures.unwrap_or(d.unreachable_after),
            probe_timeout: secs(raw.probe_timeout_seconds, d.probe_timeout),
            probe_parallel: raw.probe_parallel.unwrap_or(d.probe_parallel),
            min_switch_interval: secs(raw.min_switch_interval_seconds, d.min_switch_interval),
        };
        if s.unreachable_after == 0 {
            self.error("reconciler.unreachable_after_failures", "must be at least 1");
        }
        if s.probe_timeout.is_zero() {
            self.error("reconciler.probe_timeout_seconds", "must be at least 1");
        }
        if s.probe_parallel == 0 || s.probe_parallel > 4096 {
            self.error("reconciler.probe_parallel", "must be between 1 and 4096");
        }
        if s.min_switch_interval > Duration::from_secs(3600) {
            self.error("reconciler.min_switch_interval_seconds", "must be between 0 and 3600");
        }
        if s.resync.is_zero() {
            self.error("reconciler.resync_seconds", "must be at least 1");
        }
        if s.max_parallel == 0 || s.max_parallel > 4096 {
            self.error("reconciler.max_parallel", "must be between 1 and 4096");
        }
        if s.backoff_initial.is_zero() {
            self.error("reconciler.backoff_initial_seconds", "must be at least 1");
        }
        if s.backoff_max < s.backoff_initial {
            self.error(
                "reconciler.backoff_max_seconds",
                "must not be below backoff_initial_seconds",
            );
        }
        s
    }

    fn driver(
        &mut self,
        loc: &str,
        ap: &RawAccessPoint,
        ssh_defaults: &RawSsh,
        mqtt_defaults: Option<&RawMqttAp>,
    ) -> Option<DriverConfig> {
        let blocks = [ap.ssh.is_some(), ap.mqtt.is_some(), ap.sim.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if blocks != 1 {
            self.error(
                loc.to_owned(),
                format!("an access point needs exactly one driver block (ssh, mqtt or sim), found {blocks}"),
            );
            return None;
        }
        if let Some(ssh) = &ap.ssh {
            return self
                .ssh(&format!("{loc}.ssh"), ssh, ssh_defaults)
                .map(DriverConfig::Ssh);
        }
        if let Some(mqtt) = &ap.mqtt {
            let merged;
            let mqtt = match mqtt_defaults {
                Some(d) => {
                    merged = mqtt.under(d);
                    &merged
                }
                None => mqtt,
            };
            return self.mqtt_ap(&format!("{loc}.mqtt"), mqtt).map(DriverConfig::Mqtt);
        }
        ap.sim
            .as_ref()
            .and_then(|sim| self.sim(&format!("{loc}.sim"), sim, &ap.id))
            .map(DriverConfig::Sim)
    }

    fn ssh(&mut self, loc: &str, ap: &RawSsh, d: &RawSsh) -> Option<SshAp> {
        let errors_before = self.errors.len();
        // Per-AP value, else the school's or the top-level default.
        macro_rules! pick {
            ($field:ident) => {
                ap.$field.clone().or_else(|| d.$field.clone())
            };
        }
        let host = pick!(host).unwrap_or_default();
        if host.is_empty() {
            self.error(format!("{loc}.host"), "an SSH access point needs a host");
        } else if host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(
                format!("{loc}.host"),
                format!("\"{host}\" is not a host name or address"),
            );
        }
        let user = pick!(user).unwrap_or_else(|| "root".to_owned());
        if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(format!("{loc}.user"), format!("\"{user}\" is not a user name"));
        }
        let auth = match (pick!(key_file), pick!(password_file)) {
            (Some(key), None) => {
                let key_file = self.file(format!("{loc}.key_file"), &key);
                let passphrase_file = pick!(passphrase_file).map(|p| self.file(format!("{loc}.passphrase_file"), &p));
                Some(SshAuth::Key {
                    key_file,
                    passphrase_file,
                })
            }
            (None, Some(pw)) => Some(SshAuth::Password {
                password_file: self.file(format!("{loc}.password_file"), &pw),
            }),
            // An AP-level choice replaces the default one rather than conflicting with it.
            (Some(key), Some(pw)) => {
                if ap.password_file.is_some() && ap.key_file.is_none() {
                    Some(SshAuth::Password {
                        password_file: self.file(format!("{loc}.password_file"), &pw),
                    })
                } else if ap.key_file.is_some() && ap.password_file.is_none() {
                    let key_file = self.file(format!("{loc}.key_file"), &key);
                    let passphrase_file =
                        pick!(passphrase_file).map(|p| self.file(format!("{loc}.passphrase_file"), &p));
                    Some(SshAuth::Key {
                        key_file,
                        passphrase_file,
                    })
                } else {
                    self.error(loc.to_owned(), "give either key_file or password_file, not both");
                    None
                }
            }
            (None, None) => {
                self.error(
                    format!("{loc}.key_file"),
                    "no credentials: give key_file (or password_file) here or in the top-level ssh: block",
                );
                None
            }
        };
        let insecure = pick!(insecure_ignore_host_key).unwrap_or(false);
        let host_key = if let Some(fp) = pick!(host_key_sha256) {
            if !fp.starts_with("SHA256:") || fp.len() < 20 {
                self.error(
                    format!("{loc}.host_key_sha256"),
                    format!("\"{fp}\" is not a fingerprint like \"SHA256:...\" as printed by ssh-keygen -lf"),
                );
            }
            Some(HostKeyCheck::Fingerprint(fp))
        } else if let Some(kh) = pick!(known_hosts) {
            Some(HostKeyCheck::KnownHosts(self.file(format!("{loc}.known_hosts"), &kh)))
        } else if insecure {
            Some(HostKeyCheck::Insecure)
        } else {
            self.error(
                format!("{loc}.known_hosts"),
                "no way to verify the AP's host key: give known_hosts or host_key_sha256 \
                 (or, for a lab only, insecure_ignore_host_key: true)",
            );
            None
        };
        let preset = match pick!(preset).as_deref().unwrap_or("openwrt") {
            "openwrt" => {
                let radios = pick!(radios).unwrap_or_default();
                for (i, r) in radios.iter().enumerate() {
                    let ok = !r.is_empty()
                        && r.len() <= 64
                        && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !ok {
                        self.error(
                            format!("{loc}.radios[{i}]"),
                            format!("\"{r}\" is not a uci section name (letters, digits, _ and -)"),
                        );
                    }
                }
                Some(SshPreset::OpenWrt { radios })
            }
            "custom" => {
                let mut required = |field: &str, v: Option<String>| -> String {
                    match v {
                        Some(c) if !c.trim().is_empty() => c,
                        _ => {
                            self.error(format!("{loc}.{field}"), format!("preset custom needs {field}"));
                            String::new()
                        }
                    }
                };
                let on_command = required("on_command", pick!(on_command));
                let off_command = required("off_command", pick!(off_command));
                let status_command = required("status_command", pick!(status_command));
                let mut regex = |field: &str, v: Option<String>| {
                    v.and_then(|r| match regex::Regex::new(&r) {
                        Ok(re) => Some(re),
                        Err(e) => {
                            self.error(format!("{loc}.{field}"), format!("bad regular expression: {e}"));
                            None
                        }
                    })
                };
                let status_on = regex("status_on", pick!(status_on));
                let status_off = regex("status_off", pick!(status_off));
                Some(SshPreset::Custom(CustomCommands {
                    on_command,
                    off_command,
                    status_command,
                    status_on,
                    status_off,
                    clients_command: pick!(clients_command),
                    lease_command: pick!(lease_command).filter(|c| !c.trim().is_empty()),
                }))
            }
            other => {
                self.error(
                    format!("{loc}.preset"),
                    format!("unknown preset \"{other}\"; use openwrt or custom"),
                );
                None
            }
        };
        let connect_timeout = Duration::from_secs(pick!(connect_timeout_seconds).unwrap_or(5));
        let command_timeout = Duration::from_secs(pick!(command_timeout_seconds).unwrap_or(30));
        if connect_timeout.is_zero() {
            self.error(format!("{loc}.connect_timeout_seconds"), "must be at least 1");
        }
        if command_timeout.is_zero() {
            self.error(format!("{loc}.command_timeout_seconds"), "must be at least 1");
        }
        let reuse = Duration::from_secs(pick!(reuse_seconds).unwrap_or(60));
        let prewarm = Duration::from_secs(pick!(prewarm_seconds).unwrap_or(20));
        if prewarm > Duration::from_secs(3600) {
            self.error(format!("{loc}.prewarm_seconds"), "must be at most 3600");
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(SshAp {
            host,
            port: pick!(port).unwrap_or(22),
            user,
            auth: auth?,
            host_key: host_key?,
            preset: preset?,
            connect_timeout,
            command_timeout,
            reuse,
            prewarm,
        })
    }

    fn mqtt_broker(&mut self, raw: &RawMqttBroker) -> Option<MqttBroker> {
        let keep_alive = raw.keep_alive_seconds.unwrap_or(30);
        // rumqttc panics on a keep-alive below 5 s; check it here instead.
        if !(5..=3600).contains(&keep_alive) {
            self.error("mqtt.keep_alive_seconds", format!("{keep_alive} is outside 5..=3600"));
        }
        let client_id = raw.client_id.clone().unwrap_or_else(|| "borne".to_owned());
        if client_id.is_empty() || client_id.len() > 128 {
            self.error("mqtt.client_id", "must be 1 to 128 characters");
        }
        let password_file = raw
            .password_file
            .as_ref()
            .map(|p| self.file("mqtt.password_file".into(), p));
        if password_file.is_some() && raw.username.is_none() {
            self.error("mqtt.username", "password_file is given without a username");
        }
        let tls = raw.tls.as_ref().map(|t| MqttTls {
            ca_file: t.ca_file.as_ref().map(|p| self.file("mqtt.tls.ca_file".into(), p)),
            cert_file: t.cert_file.as_ref().map(|p| self.file("mqtt.tls.cert_file".into(), p)),
            key_file: t.key_file.as_ref().map(|p| self.file("mqtt.tls.key_file".into(), p)),
        });
        if let Some(t) = &tls
            && t.cert_file.is_some() != t.key_file.is_some()
        {
            self.error("mqtt.tls", "cert_file and key_file go together");
        }
        Some(MqttBroker {
            host: raw.host.clone().unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: raw.port.unwrap_or(if tls.is_some() { 8883 } else { 1883 }),
            client_id,
            username: raw.username.clone(),
            password_file,
            tls,
            keep_alive: Duration::from_secs(keep_alive),
        })
    }

    fn mqtt_ap(&mut self, loc: &str, raw: &RawMqttAp) -> Option<MqttAp> {
        let errors_before = self.errors.len();
        let preset = raw
            .preset
            .clone()
            .unwrap_or_else(|| if raw.command_topic.is_some() { "generic" } else { "" }.to_owned());
        let topic = raw.topic.clone().unwrap_or_default();
        let needs_topic = |v: &mut Self| {
            if topic.is_empty() || topic.contains(['+', '#', '/', '\0']) {
                v.error(
                    format!("{loc}.topic"),
                    format!("preset {preset} needs `topic`, the device topic (no /, + or #)"),
                );
            }
        };
        // Preset defaults; every field can still be overridden one by one.
        let base = match preset.as_str() {
            "tasmota" => {
                needs_topic(self);
                MqttAp::tasmota(&topic)
            }
            "shelly" => {
                needs_topic(self);
                MqttAp::shelly(&topic)
            }
            "shelly-gen2" => {
                needs_topic(self);
                MqttAp::shelly_gen2(&topic)
            }
            "generic" => {
                if raw.command_topic.is_none() {
                    self.error(format!("{loc}.command_topic"), "preset generic needs command_topic");
                }
                MqttAp::generic(raw.command_topic.as_deref().unwrap_or_default())
            }
            "" => {
                self.error(
                    loc.to_owned(),
                    "give a preset (tasmota, shelly) with a topic, or a command_topic",
                );
                return None;
            }
            other => {
                self.error(
                    format!("{loc}.preset"),
                    format!("unknown preset \"{other}\"; use tasmota, shelly, shelly-gen2 or generic"),
                );
                return None;
            }
        };
        let ap = MqttAp {
            command_topic: raw.command_topic.clone().unwrap_or(base.command_topic),
            payload_on: raw.payload_on.clone().unwrap_or(base.payload_on),
            payload_off: raw.payload_off.clone().unwrap_or(base.payload_off),
            state_topic: raw.state_topic.clone().or(base.state_topic),
            state_on: raw.state_on.clone().unwrap_or(base.state_on),
            state_off: raw.state_off.clone().unwrap_or(base.state_off),
            availability_topic: raw.availability_topic.clone().or(base.availability_topic),
            payload_available: raw.payload_available.clone().unwrap_or(base.payload_available),
            payload_not_available: raw.payload_not_available.clone().unwrap_or(base.payload_not_available),
            qos: raw.qos.unwrap_or(base.qos),
            retain: raw.retain.unwrap_or(base.retain),
            state_format: base.state_format,
            lease: match &raw.lease_payload {
                Some(template) => Some(MqttLease::Payload(template.clone())),
                None => base.lease,
            },
            configure: base.configure,
            status_request: base.status_request,
            preset: base.preset,
        };
        if let Some(template) = &raw.lease_payload
            && !template.contains("{seconds}")
        {
            self.warn(
                format!("{loc}.lease_payload"),
                "has no {seconds}: the device is never told how long the lease is",
            );
        }
        let topics = [
            ("command_topic", Some(&ap.command_topic)),
            ("state_topic", ap.state_topic.as_ref()),
            ("availability_topic", ap.availability_topic.as_ref()),
        ];
        for (field, topic) in topics {
            if let Some(t) = topic
                && (t.is_empty() || t.contains(['+', '#', '\0']) || t.len() > 1024)
            {
                self.error(
                    format!("{loc}.{field}"),
                    format!("\"{t}\" is not a topic one can publish to (no + or #, not empty)"),
                );
            }
        }
        if ap.qos > 2 {
            self.error(format!("{loc}.qos"), format!("qos {} is not 0, 1 or 2", ap.qos));
        }
        if ap.payload_on == ap.payload_off {
            self.error(format!("{loc}.payload_off"), "payload_on and payload_off must differ");
        }
        if ap.state_on == ap.state_off {
            self.error(format!("{loc}.state_off"), "state_on and state_off must differ");
        }
        if ap.retain && ap.availability_topic.is_some() {
            self.warn(
                format!("{loc}.retain"),
                "retained commands make a device switch on a stale command when it reconnects; \
                 with an availability topic, borne re-sends the desired state itself",
            );
        }
        (self.errors.len() == errors_before).then_some(ap)
    }

    fn sim(&mut self, loc: &str, raw: &RawSim, id: &str) -> Option<SimAp> {
        let fail_rate = raw.fail_rate.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&fail_rate) {
            self.error(format!("{loc}.fail_rate"), format!("{fail_rate} is outside 0..1"));
            return None;
        }
        let seed = raw.seed.unwrap_or_else(|| {
            let digest = Sha256::digest(id.as_bytes());
            u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
        });
        let (hang, refuse) = (raw.hang.unwrap_or(false), raw.refuse.unwrap_or(false));
        if hang && refuse {
            self.error(
                format!("{loc}.hang"),
                "hang and refuse exclude each other (an AP either answers nothing or refuses at once)",
            );
            return None;
        }
        let timeout = Duration::from_secs(raw.timeout_seconds.unwrap_or(35));
        if timeout.is_zero() {
            self.error(format!("{loc}.timeout_seconds"), "must be at least 1");
            return None;
        }
        Some(SimAp {
            latency: Duration::from_millis(raw.latency_ms.unwrap_or(0)),
            fail_rate,
            clients: raw.clients.unwrap_or(0),
            seed,
            hang,
            refuse,
            timeout,
        })
    }

    fn users(
        &mut self,
        raw: &[RawUser],
        demo: bool,
        classrooms: &HashMap<String, String>,
        schools: &[School],
    ) -> Vec<User> {
        let mut out = Vec::new();
        let mut names = HashMap::new();
        let mut hashes: HashMap<[u8; 32], usize> = HashMap::new();
        let mut logins: HashMap<String, usize> = HashMap::new();
        for (i, u) in raw.iter().enumerate() {
            let loc = format!("users[{i}]");
            if u.name.trim().is_empty() {
                self.error(
                    format!("{loc}.name"),
                    "a user needs a name (it is what the audit log shows)",
                );
            } else if let Some(prev) = names.insert(u.name.clone(), i) {
                self.error(
                    format!("{loc}.name"),
                    format!("duplicate user name \"{}\" (also users[{prev}])", u.name),
                );
            }
            let role = match u.role.as_str() {
                "admin" => Some(Role::Admin),
                "teacher" => Some(Role::Teacher),
                "viewer" => Some(Role::Viewer),
                other => {
                    self.error(
                        format!("{loc}.role"),
                        format!("unknown role \"{other}\"; use admin, teacher or viewer"),
                    );
                    None
                }
            };
            let hash = match (&u.token_sha256, &u.token) {
                (Some(_), Some(_)) => {
                    self.error(loc.clone(), "give token_sha256 or token, not both");
                    None
                }
                (Some(hex_hash), None) => {
                    let mut h = [0u8; 32];
                    match hex::decode_to_slice(hex_hash.trim(), &mut h) {
                        Ok(()) => Some(h),
                        Err(_) => {
                            self.error(
                                format!("{loc}.token_sha256"),
                                "must be 64 hex digits, the SHA-256 of the token (borne token new prints it)",
                            );
                            None
                        }
                    }
                }
                (None, Some(token)) if demo => {
                    if token.len() < 8 {
                        self.error(format!("{loc}.token"), "a token needs at least 8 characters");
                    }
                    Some(Sha256::digest(token.as_bytes()).into())
                }
                (None, Some(_)) => {
                    self.error(
                        format!("{loc}.token"),
                        "plain tokens are only allowed with `demo: true`; store token_sha256 instead \
                         (borne token new prints it)",
                    );
                    None
                }
                (None, None) if u.login.is_some() => None,
                (None, None) => {
                    self.error(
                        format!("{loc}.token_sha256"),
                        "a user needs token_sha256, a login (with oidc), or both",
                    );
                    None
                }
            };
            let login = u.login.as_ref().map(|l| l.trim().to_owned());
            if login.as_ref().is_some_and(String::is_empty) {
                self.error(
                    format!("{loc}.login"),
                    "an empty login matches nobody; remove it or fill it in",
                );
            } else if let Some(l) = &login
                && let Some(prev) = logins.insert(l.clone(), i)
            {
                self.error(format!("{loc}.login"), format!("login \"{l}\" is also users[{prev}]'s"));
            }
            if let Some(h) = hash
                && let Some(prev) = hashes.insert(h, i)
            {
                self.error(
                    format!("{loc}.token_sha256"),
                    format!("same token as users[{prev}]; give each user its own"),
                );
            }
            let mut scope: BTreeSet<ClassroomId> = BTreeSet::new();
            for (j, c) in u.classrooms.iter().enumerate() {
                if classrooms.contains_key(c) {
                    scope.insert(ClassroomId::from(c.as_str()));
                } else {
                    let mut names: Vec<&str> = classrooms.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    names.truncate(20);
                    self.error(
                        format!("{loc}.classrooms[{j}]"),
                        format!("unknown classroom \"{c}\"; {}", known(names)),
                    );
                }
            }
            for (j, s) in u.schools.iter().enumerate() {
                match schools.iter().find(|school| school.id.as_str() == s) {
                    Some(school) => scope.extend(school.classrooms.iter().cloned()),
                    None => self.error(
                        format!("{loc}.schools[{j}]"),
                        format!(
                            "unknown school \"{s}\"; {}",
                            known(schools.iter().map(|s| s.id.as_str()))
                        ),
                    ),
                }
            }
            let limited = !u.classrooms.is_empty() || !u.schools.is_empty();
            if role == Some(Role::Teacher) && !limited {
                self.error(
                    format!("{loc}.classrooms"),
                    "a teacher needs classrooms (or schools) to switch",
                );
            }
            if role == Some(Role::Admin) && !u.classrooms.is_empty() {
                self.error(
                    format!("{loc}.classrooms"),
                    "an admin is limited by schools, not classrooms",
                );
            }
            let expires = match &u.expires {
                None => None,
                Some(text) => match chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
                    Ok(d) => Some(d),
                    Err(_) => {
                        self.error(
                            format!("{loc}.expires"),
                            format!("\"{text}\" is not a date YYYY-MM-DD (the last day the token is accepted)"),
                        );
                        None
                    }
                },
            };
            if let Some(role) = role
                && (hash.is_some() || login.is_some())
            {
                out.push(User {
                    name: u.name.clone(),
                    role,
                    token_sha256: hash,
                    login,
                    demo_token: if demo { u.token.clone() } else { None },
                    scope: limited.then_some(scope),
                    schools: u.schools.iter().map(|s| SchoolId::from(s.as_str())).collect(),
                    classrooms: u.classrooms.iter().map(|c| ClassroomId::from(c.as_str())).collect(),
                    expires,
                });
            }
        }
        out
    }
}
