//! The offline commands: `check`, `plan` and `token new`. Each one is a
//! function from its arguments to the text it prints, so tests call them
//! without spawning the binary.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use rand::TryRngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Config, Loaded, Role};
use crate::policy::Wifi;
use crate::schedule::{Change, Mode};

/// The one-line summary `borne check` prints on success.
pub fn summary(config: &Config) -> String {
    let mut drivers = std::collections::BTreeMap::new();
    for ap in &config.access_points {
        *drivers.entry(ap.driver.kind()).or_insert(0usize) += 1;
    }
    let mut roles = std::collections::BTreeMap::new();
    for u in &config.users {
        *roles.entry(u.role.as_str()).or_insert(0usize) += 1;
    }
    let join = |m: std::collections::BTreeMap<&str, usize>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
        }
    };
    format!(
        "ok: {} schools, {} classrooms, {} access points ({}), {} users ({})",
        config.schools.len(),
        config.classrooms.len(),
        config.access_points.len(),
        join(drivers),
        config.users.len(),
        join(roles),
    )
}

/// What `borne check` prints for warnings.
pub fn warnings(loaded: &Loaded) -> String {
    loaded.warnings.iter().map(|w| format!("warning: {w}\n")).collect()
}

/// Wi-Fi state implied by a mode alone (no runtime state).
fn wifi_of(mode: Mode) -> Wifi {
    if mode == Mode::On { Wifi::On } else { Wifi::Off }
}

#[derive(Serialize)]
struct PlanChange {
    at: String,
    mode: Mode,
}

impl PlanChange {
    fn new(c: Change, tz: chrono_tz::Tz) -> Self {
        Self {
            at: c.at.with_timezone(&tz).to_rfc3339(),
            mode: c.mode,
        }
    }
}

#[derive(Serialize)]
struct PlanRow<'a> {
    id: &'a str,
    school: &'a str,
    mode: Mode,
    wifi: Wifi,
    next_change: Option<PlanChange>,
}

/// `borne plan --at`: every classroom's mode and desired state at `at` from
/// the schedule alone, and its next change.
pub fn plan_at(config: &Config, at: DateTime<Utc>, json: bool) -> String {
    let rows: Vec<PlanRow> = config
        .classrooms
        .iter()
        .map(|c| {
            let mode = c.schedule.mode_at(c.timezone, at);
            PlanRow {
                id: c.id.as_str(),
                school: c.school.as_str(),
                mode,
                wifi: wifi_of(mode),
                next_change: c
                    .schedule
                    .next_change(c.timezone, at)
                    .map(|n| PlanChange::new(n, c.timezone)),
            }
        })
        .collect();
    let at_text = at.with_timezone(&config.timezone).to_rfc3339();
    if json {
        let doc = serde_json::json!({ "at": at_text, "classrooms": rows });
        return format!("{doc}\n");
    }
    let mut out = format!("at {at_text}\n");
    let width = rows.iter().map(|r| r.id.len()).max().unwrap_or(0).max(9);
    let _ = writeln!(out, "{:width$}  {:9}  {:4}  next change", "classroom", "mode", "wifi");
    for r in rows {
        let next = match r.next_change {
            Some(n) => format!("{} at {}", n.mode, n.at),
            None => "none planned".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:width$}  {:9}  {:4}  {next}",
            r.id,
            r.mode.to_string(),
            r.wifi.as_str()
        );
    }
    out
}

#[derive(Serialize)]
struct IntervalChange<'a> {
    classroom: &'a str,
    at: String,
    mode: Mode,
    wifi: Wifi,
}

/// `borne plan --from --days`: every mode change in the interval, in order.
///
/// # Errors
/// An unknown `classroom`.
pub fn plan_interval(
    config: &Config,
    from: DateTime<Utc>,
    days: u32,
    classroom: Option<&str>,
    json: bool,
) -> Result<String, String> {
    let to = from + Duration::days(i64::from(days));
    let classrooms: Vec<_> = match classroom {
        Some(id) => vec![
            config
                .classroom(id)
                .ok_or_else(|| format!("unknown classroom \"{id}\""))?,
        ],
        None => config.classrooms.iter().collect(),
    };
    let mut changes: Vec<(DateTime<Utc>, IntervalChange)> = Vec::new();
    for c in classrooms {
        for ch in c.schedule.changes(c.timezone, from, to) {
            changes.push((
                ch.at,
                IntervalChange {
                    classroom: c.id.as_str(),
                    at: ch.at.with_timezone(&c.timezone).to_rfc3339(),
                    mode: ch.mode,
                    wifi: wifi_of(ch.mode),
                },
            ));
        }
    }
    changes.sort_by_key(|a| a.0);
    let tz = config.timezone;
    if json {
        let list: Vec<_> = changes.into_iter().map(|(_, c)| c).collect();
        let doc = serde_json::json!({
            "from": from.with_timezone(&tz).to_rfc3339(),
            "to": to.with_timezone(&tz).to_rfc3339(),
            "changes": list,
        });
        return Ok(format!("{doc}\n"));
    }
    let mut out = format!(
        "{} change(s) from {} to {}\n",
        changes.len(),
        from.with_timezone(&tz).to_rfc3339(),
        to.with_timezone(&tz).to_rfc3339()
    );
    for (_, c) in changes {
        let _ = writeln!(out, "{}  {}  {} (wifi {})", c.at, c.classroom, c.mode, c.wifi.as_str());
    }
    Ok(out)
}

/// A fresh bearer token: 256 bits from the operating system's RNG, URL-safe base64.
///
/// # Errors
/// The OS RNG failed.
pub fn new_token() -> Result<String, String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("the operating system's random generator failed: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Hex SHA-256 of a token, as `users[].token_sha256` holds it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What `borne token new` prints: the token, its sign-in link and the
/// `users:` entry to paste (and a QR code of the link when `qr`).
pub fn token_entry(
    token: &str,
    name: &str,
    role: Role,
    classrooms: &[String],
    schools: &[String],
    base_url: &str,
    qr: bool,
) -> String {
    // IT signs in on the dashboard, teachers on the page with the button.
    let page = if role == Role::Teacher { "/" } else { "/admin" };
    let link = format!("{}{page}#token={token}", base_url.trim_end_matches('/'));
    let mut out = String::new();
    let _ = writeln!(out, "token: {token}");
    let _ = writeln!(out, "link:  {link}");
    let _ = writeln!(out, "(shown once: borne keeps only its SHA-256)\n");
    let _ = writeln!(out, "# add to users: in the configuration, then reload borne");
    let _ = writeln!(out, "  - name: {}", yaml_scalar(name));
    let _ = writeln!(out, "    role: {role}");
    if !classrooms.is_empty() {
        let _ = writeln!(out, "    classrooms: [{}]", classrooms.join(", "));
    }
    if !schools.is_empty() {
        let _ = writeln!(out, "    schools: [{}]", schools.join(", "));
    }
    let _ = writeln!(out, "    token_sha256: {}", token_sha256(token));
    if qr && let Ok(code) = qrcode::QrCode::new(link.as_bytes()) {
        let art = code
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        let _ = writeln!(out, "\n{art}");
    }
    out
}

/// A name as a YAML scalar: quoted when it could be read as something else.
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        && !s.starts_with(' ')
        && !s.ends_with(' ');
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}
