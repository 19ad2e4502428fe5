//! `borne token`: fresh tokens, their hashes and the `users:` entries to paste.

use std::fmt::Write as _;

use rand::TryRngCore;
use sha2::{Digest, Sha256};

use crate::config::Role;

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
