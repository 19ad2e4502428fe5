//! `borne token`: fresh tokens, their hashes and the `users:` entries to paste.

use std::fmt::Write as _;

use rand::TryRngCore;
use sha2::{Digest, Sha256};

use crate::config::{Config, Role};

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
    let link = sign_in_link(base_url, role, token);
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

/// The sign-in link of a token: the token rides in the fragment, which
/// browsers never send to a server or write to its logs.
pub fn sign_in_link(base_url: &str, role: Role, token: &str) -> String {
    // IT signs in on the dashboard, teachers on the page with the button.
    let page = if role == Role::Teacher { "/" } else { "/admin" };
    format!("{}{page}#token={token}", base_url.trim_end_matches('/'))
}

/// Checks a token's scope against the configuration: every classroom and
/// school must exist (a typo would give a token that switches nothing).
///
/// # Errors
/// One message per unknown id.
pub fn check_scope(config: &Config, classrooms: &[String], schools: &[String]) -> Result<(), Vec<String>> {
    let mut errors: Vec<String> = classrooms
        .iter()
        .filter(|id| config.classroom(id).is_none())
        .map(|id| format!("classroom \"{id}\" is not in the configuration"))
        .collect();
    errors.extend(
        schools
            .iter()
            .filter(|id| config.school(id).is_none())
            .map(|id| format!("school \"{id}\" is not in the configuration")),
    );
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// A name as a YAML scalar: quoted when it could be read as something else.
pub(super) fn yaml_scalar(s: &str) -> String {
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

/// What `borne token list` prints: each user's role, scope, expiry and
/// last use (from the state database; `never` when none is recorded).
pub fn token_list(
    config: &crate::config::Config,
    uses: &std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
    json: bool,
) -> String {
    let tz = config.timezone;
    let rows: Vec<serde_json::Value> = config
        .users
        .iter()
        .map(|u| {
            let last = u.token_sha256.and_then(|h| uses.get(&hex::encode(h)));
            serde_json::json!({
                "name": u.name,
                "role": u.role,
                "scope": if u.scope.is_none() {
                    serde_json::Value::Null
                } else {
                    serde_json::json!({ "schools": u.schools, "classrooms": u.classrooms })
                },
                "expires": u.expires.map(|d| d.to_string()),
                "expired": u.expired(now, tz),
                "last_used": last.map(|t| t.with_timezone(&tz).fixed_offset().to_rfc3339()),
            })
        })
        .collect();
    if json {
        return format!("{}\n", serde_json::json!({ "users": rows }));
    }
    let scope_text = |u: &crate::config::User| {
        if u.scope.is_none() {
            return "everything".to_owned();
        }
        let mut parts = Vec::new();
        if !u.schools.is_empty() {
            parts.push(format!(
                "schools {}",
                u.schools.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
            ));
        }
        if !u.classrooms.is_empty() {
            parts.push(format!(
                "classrooms {}",
                u.classrooms.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
            ));
        }
        parts.join("; ")
    };
    let table: Vec<[String; 5]> = config
        .users
        .iter()
        .zip(&rows)
        .map(|(u, r)| {
            let expires = match (u.expires, r["expired"].as_bool() == Some(true)) {
                (Some(d), true) => format!("{d} (expired)"),
                (Some(d), false) => d.to_string(),
                (None, _) => "-".to_owned(),
            };
            [
                u.name.clone(),
                u.role.to_string(),
                scope_text(u),
                expires,
                r["last_used"].as_str().unwrap_or("never").to_owned(),
            ]
        })
        .collect();
    let head = ["name", "role", "scope", "expires", "last used"];
    let mut widths = head.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(head.map(str::to_owned)).chain(table) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}
