//! The `oidc:` block: sign-in with the schools' identity provider (OpenID
//! Connect), as written ([`RawOidc`]) and validated ([`Oidc`]).
//!
//! The loader calls [`validate`] with what it already resolved (schools,
//! classrooms, the public URL) and reports the problems it returns with the
//! others. The API's sign-in routes (`api::oidc`) read the result.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ClassroomId, Role, School};

/// The `oidc:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawOidc {
    /// The provider's issuer URL; discovery is at
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: Option<String>,
    /// borne's client id at the provider.
    pub client_id: Option<String>,
    /// File holding the client secret; none for a public client (PKCE only).
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for. Default `[openid, profile, email]`; must hold `openid`.
    pub scopes: Option<Vec<String>>,
    /// The ID token claim naming the person, matched against `users[].login`.
    /// Default `preferred_username`.
    pub user_claim: Option<String>,
    /// The claim listing the person's groups, for `groups:` mappings.
    pub roles_claim: Option<String>,
    /// Group mappings: a person in `group` gets `role` on `schools`/`classrooms`.
    pub groups: Vec<RawGroupMapping>,
    /// Text of the sign-in button. Default "Se connecter avec l'ENT" /
    /// "Sign in with your school account".
    pub label: Option<String>,
    /// A session unused this long ends. Default 120.
    pub session_idle_minutes: Option<u64>,
    /// A session ends this long after sign-in, used or not. Default 12.
    pub session_max_hours: Option<u64>,
    /// Tolerated difference between the provider's clock and ours. Default 60, at most 300.
    pub clock_skew_seconds: Option<u64>,
    /// While the provider cannot be reached, discovery is retried this often. Default 30.
    pub retry_seconds: Option<u64>,
}

/// One entry of `oidc.groups`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawGroupMapping {
    /// Group name as the provider writes it in `roles_claim`.
    pub group: String,
    /// `admin`, `teacher` or `viewer`.
    pub role: String,
    /// Schools whose classrooms the members may see (and switch).
    pub schools: Vec<String>,
    /// Classrooms the members may see (and switch).
    pub classrooms: Vec<String>,
}

/// The validated `oidc:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oidc {
    /// Issuer URL, as written (no trailing slash added or removed).
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret file; `None` for a public client.
    pub client_secret_file: Option<PathBuf>,
    /// Scopes, `openid` first.
    pub scopes: Vec<String>,
    /// Claim naming the person.
    pub user_claim: String,
    /// Claim listing groups.
    pub roles_claim: Option<String>,
    /// Group mappings in file order.
    pub groups: Vec<GroupMapping>,
    /// Button text when set; the pages show their own bilingual default otherwise.
    pub label: Option<String>,
    /// Idle lifetime of a session.
    pub session_idle: Duration,
    /// Absolute lifetime of a session.
    pub session_max: Duration,
    /// Clock skew tolerated on `exp` and `iat`.
    pub clock_skew: Duration,
    /// Discovery retry interval while the provider is down.
    pub retry: Duration,
    /// `<public_url>/auth/callback`: the redirect URI to register at the provider.
    pub redirect_uri: String,
    /// Whether the session cookie carries `Secure` (not for plain-HTTP loopback public URLs).
    pub secure_cookie: bool,
}

/// A group mapping, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMapping {
    /// Group name.
    pub group: String,
    /// Role given.
    pub role: Role,
    /// Classrooms in scope; `None` for every classroom (an admin or viewer without schools).
    pub scope: Option<BTreeSet<ClassroomId>>,
}

/// Whether `url` is plain HTTP to this machine (where `Secure` cookies and
/// an `https` issuer cannot be had, and need not be).
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host == "localhost" || host == "::1" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Validates the block; problems come back as `(location, message)`.
///
/// `classrooms` maps each classroom id to its school id.
pub fn validate(
    raw: &RawOidc,
    public_url: &str,
    schools: &[School],
    classrooms: &HashMap<String, String>,
    base_dir: Option<&Path>,
) -> Result<Oidc, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let mut err = |loc: &str, msg: String| errors.push((loc.to_owned(), msg));
    let issuer = raw.issuer.clone().unwrap_or_default();
    if issuer.is_empty() {
        err("oidc.issuer", "the provider's issuer URL is missing".into());
    } else if !(issuer.starts_with("https://") || is_loopback_http(&issuer)) {
        err(
            "oidc.issuer",
            format!("\"{issuer}\" must be an https:// URL (plain http only for 127.0.0.1 or localhost)"),
        );
    } else if reqwest::Url::parse(&issuer).is_err() {
        err("oidc.issuer", format!("\"{issuer}\" is not a URL"));
    }
    let client_id = raw.client_id.clone().unwrap_or_default();
    if client_id.trim().is_empty() {
        err("oidc.client_id", "borne's client id at the provider is missing".into());
    }
    let scopes = raw
        .scopes
        .clone()
        .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into()]);
    if !scopes.iter().any(|s| s == "openid") {
        err("oidc.scopes", "must include openid".into());
    }
    if let Some((i, s)) = scopes
        .iter()
        .enumerate()
        .find(|(_, s)| s.is_empty() || s.contains(char::is_whitespace))
    {
        err(&format!("oidc.scopes[{i}]"), format!("\"{s}\" is not a scope name"));
    }
    let mut scopes_ordered = vec!["openid".to_owned()];
    scopes_ordered.extend(scopes.into_iter().filter(|s| s != "openid"));
    let user_claim = raw.user_claim.clone().unwrap_or_else(|| "preferred_username".into());
    if user_claim.trim().is_empty() {
        err("oidc.user_claim", "names no claim".into());
    }
    let roles_claim = raw.roles_claim.clone().filter(|c| !c.trim().is_empty());
    if !raw.groups.is_empty() && roles_claim.is_none() {
        err(
            "oidc.groups",
            "group mappings need oidc.roles_claim (the claim listing the groups, often `groups`)".into(),
        );
    }
    let mut groups = Vec::new();
    let mut seen = HashMap::new();
    for (i, g) in raw.groups.iter().enumerate() {
        let loc = format!("oidc.groups[{i}]");
        if g.group.trim().is_empty() {
            err(&format!("{loc}.group"), "the group name is missing".into());
        } else if let Some(prev) = seen.insert(g.group.clone(), i) {
            err(
                &format!("{loc}.group"),
                format!("group \"{}\" is mapped twice (also oidc.groups[{prev}])", g.group),
            );
        }
        let role = match g.role.as_str() {
            "admin" => Some(Role::Admin),
            "teacher" => Some(Role::Teacher),
            "viewer" => Some(Role::Viewer),
            other => {
                err(
                    &format!("{loc}.role"),
                    format!("unknown role \"{other}\"; use admin, teacher or viewer"),
                );
                None
            }
        };
        let mut scope = BTreeSet::new();
        for (j, c) in g.classrooms.iter().enumerate() {
            if classrooms.contains_key(c) {
                scope.insert(ClassroomId::from(c.as_str()));
            } else {
                err(&format!("{loc}.classrooms[{j}]"), format!("unknown classroom \"{c}\""));
            }
        }
        for (j, s) in g.schools.iter().enumerate() {
            match schools.iter().find(|school| school.id.as_str() == s) {
                Some(school) => scope.extend(school.classrooms.iter().cloned()),
                None => err(&format!("{loc}.schools[{j}]"), format!("unknown school \"{s}\"")),
            }
        }
        let limited = !g.classrooms.is_empty() || !g.schools.is_empty();
        if role == Some(Role::Teacher) && !limited {
            err(
                &format!("{loc}.schools"),
                "a teacher mapping needs schools (or classrooms) to switch".into(),
            );
        }
        if let Some(role) = role {
            groups.push(GroupMapping {
                group: g.group.clone(),
                role,
                scope: limited.then_some(scope),
            });
        }
    }
    let label = raw.label.clone().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > 80) {
        err("oidc.label", "at most 80 characters".into());
    }
    let idle = raw.session_idle_minutes.unwrap_or(120);
    if !(1..=60 * 24 * 30).contains(&idle) {
        err("oidc.session_idle_minutes", format!("{idle} is out of range 1..=43200"));
    }
    let max = raw.session_max_hours.unwrap_or(12);
    if !(1..=24 * 90).contains(&max) {
        err("oidc.session_max_hours", format!("{max} is out of range 1..=2160"));
    }
    let skew = raw.clock_skew_seconds.unwrap_or(60);
    if skew > 300 {
        err(
            "oidc.clock_skew_seconds",
            format!("{skew} is more than 300: fix the clocks (NTP) rather than accept stale tokens"),
        );
    }
    let retry = raw.retry_seconds.unwrap_or(30);
    if !(1..=3600).contains(&retry) {
        err("oidc.retry_seconds", format!("{retry} is out of range 1..=3600"));
    }
    let secure_cookie = !is_loopback_http(public_url);
    if secure_cookie && !public_url.starts_with("https://") {
        err(
            "public_url",
            format!(
                "sign-in with oidc needs an https:// public_url (plain http only for 127.0.0.1 or localhost), not \"{public_url}\""
            ),
        );
    }
    let client_secret_file = raw.client_secret_file.as_ref().map(|p| match base_dir {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.clone(),
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Oidc {
        issuer,
        client_id,
        client_secret_file,
        scopes: scopes_ordered,
        user_claim,
        roles_claim,
        groups,
        label,
        session_idle: Duration::from_secs(idle * 60),
        session_max: Duration::from_secs(max * 3600),
        clock_skew: Duration::from_secs(skew),
        retry: Duration::from_secs(retry),
        redirect_uri: format!("{public_url}/auth/callback"),
        secure_cookie,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_to_this_machine_counts_as_loopback() {
        for yes in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://[::1]:80/x",
            "http://127.3.4.5/",
        ] {
            assert!(is_loopback_http(yes), "{yes}");
        }
        for no in [
            "https://127.0.0.1",
            "http://10.0.0.1",
            "http://localhost.evil.org",
            "http://127.0.0.1.nip.io",
            "ftp://localhost",
        ] {
            assert!(!is_loopback_http(no), "{no}");
        }
    }
}
