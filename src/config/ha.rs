//! The `ha:` block (several instances sharing one PostgreSQL database), as
//! written ([`RawHa`]) and validated ([`Ha`]), and the configuration's
//! SHA-256 that instances compare before one of them may lead.
//!
//! What must differ between instances — `listen` and `ha.instance_id` —
//! can also come from the command line or the environment, and is left out
//! of the hash: see [`config_sha256`].

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::yaml::{Kind, Node};

/// Default of `ha.lease_seconds`.
pub const DEFAULT_LEASE_SECONDS: u64 = 3;

/// Bounds of `ha.lease_seconds`. The lock connection's
/// `idle_session_timeout` is the lease plus [`RELEASE_MARGIN`]; the upper
/// bound keeps a frozen leader's lock released within 10 s.
pub const LEASE_SECONDS_RANGE: std::ops::RangeInclusive<u64> = 1..=8;

/// How much later than the leader's own fence PostgreSQL ends a silent
/// leader's session (docs/design.md, "Fencing").
pub const RELEASE_MARGIN: Duration = Duration::from_secs(2);

/// The `ha:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawHa {
    /// This instance's name in the cluster. Default `<hostname>:<port of listen>`.
    pub instance_id: Option<String>,
    /// A leader that cannot confirm its lock for this long stops driving
    /// access points. Default 3.
    pub lease_seconds: Option<u64>,
}

/// `ha:`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ha {
    /// The id given in the file or on the command line; `None`: the default
    /// (see [`super::Config::instance_id`]).
    pub instance_id: Option<String>,
    /// The leader's fencing lease.
    pub lease: Duration,
    /// Hex SHA-256 of the configuration without `listen` and
    /// `ha.instance_id` ([`config_sha256`]).
    pub config_sha256: String,
}

impl Default for Ha {
    fn default() -> Self {
        Self {
            instance_id: None,
            lease: Duration::from_secs(DEFAULT_LEASE_SECONDS),
            config_sha256: String::new(),
        }
    }
}

impl Ha {
    /// How long PostgreSQL lets the lock connection sit idle before it ends
    /// the session (and releases the lock): the lease plus [`RELEASE_MARGIN`].
    pub fn idle_session_timeout(&self) -> Duration {
        self.lease + RELEASE_MARGIN
    }
}

/// Checks an instance id: 1 to 100 characters among letters, digits and
/// `.` `_` `:` `-` (a host name and a port fit).
///
/// # Errors
/// Why the id is refused.
pub fn check_instance_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 100 {
        return Err(format!("\"{id}\" must be 1 to 100 characters long"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "\"{id}\" contains {c:?}: use letters, digits, '.', '_', ':' and '-'"
        ));
    }
    Ok(())
}

/// Validates `ha:`; returns it (without its hash) and the `(key, message)` errors.
pub(super) fn validate(raw: &RawHa) -> (Ha, Vec<(String, String)>) {
    let mut errors = Vec::new();
    let mut ha = Ha::default();
    if let Some(id) = &raw.instance_id {
        match check_instance_id(id) {
            Ok(()) => ha.instance_id = Some(id.clone()),
            Err(e) => errors.push(("ha.instance_id".to_owned(), e)),
        }
    }
    if let Some(s) = raw.lease_seconds {
        if LEASE_SECONDS_RANGE.contains(&s) {
            ha.lease = Duration::from_secs(s);
        } else {
            errors.push((
                "ha.lease_seconds".to_owned(),
                format!(
                    "{s} is out of range: {} to {} (PostgreSQL must release a silent leader's lock within 10 s)",
                    LEASE_SECONDS_RANGE.start(),
                    LEASE_SECONDS_RANGE.end()
                ),
            ));
        }
    }
    (ha, errors)
}

/// The default instance id: `<hostname>:<port>`.
pub fn default_instance_id(port: u16) -> String {
    let host = hostname().unwrap_or_else(|| "borne".to_owned());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(90)
        .collect();
    format!("{host}:{port}")
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname writes
    // at most that many bytes and we read up to the first NUL only.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
    (!name.is_empty()).then_some(name)
}

/// An MQTT client id built from `client_id` and the instance id: every
/// character outside `[A-Za-z0-9_-]` becomes `-`, so that any broker takes
/// it and two instances never share one (a broker disconnects the older of
/// two clients with the same id).
pub fn mqtt_client_id(client_id: &str, instance_id: &str) -> String {
    let safe: String = instance_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{client_id}-{safe}")
}

/// The configuration's SHA-256 (hex), compared between instances.
///
/// Computed over the YAML tree after `include:` files are merged, with the
/// top-level `listen` key and `ha.instance_id` removed (and `ha` itself
/// when nothing else is left in it). The tree is encoded canonically, so
/// comments, indentation, quoting style of keys and the order of keys in a
/// mapping do not change it: a scalar is its text and whether it was plain
/// (unquoted: `on` and `"on"` may mean different things), a sequence is
/// its items in order, a mapping its entries sorted by encoded key. Each
/// part is length-prefixed, so no two trees share an encoding. Files the
/// configuration only points to (keys, ICS calendars, password files) are
/// not part of it.
pub fn config_sha256(root: &Node) -> String {
    let mut out = Vec::new();
    encode(root, &mut out, true);
    hex::encode(Sha256::digest(&out))
}

fn encode(node: &Node, out: &mut Vec<u8>, root: bool) {
    match &node.kind {
        Kind::Scalar { text, plain } => {
            out.push(if *plain { b'p' } else { b'q' });
            out.extend_from_slice(&(text.len() as u64).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Kind::Seq(items) => {
            out.push(b'l');
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                encode(item, out, false);
            }
        }
        Kind::Map(entries) => {
            let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let key = k.as_str();
                let mut value = Vec::new();
                if root && key == Some("listen") {
                    continue;
                }
                if root && key == Some("ha") {
                    match without_instance_id(v) {
                        Some(rest) => encode(&rest, &mut value, false),
                        None => continue,
                    }
                } else {
                    encode(v, &mut value, false);
                }
                let mut kb = Vec::new();
                encode(k, &mut kb, false);
                encoded.push((kb, value));
            }
            encoded.sort();
            out.push(b'm');
            out.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
            for (k, v) in encoded {
                out.extend_from_slice(&k);
                out.extend_from_slice(&v);
            }
        }
    }
}

/// `ha:` without `instance_id`; `None` when nothing else is left.
fn without_instance_id(ha: &Node) -> Option<Node> {
    match &ha.kind {
        Kind::Map(entries) => {
            let rest: Vec<(Node, Node)> = entries
                .iter()
                .filter(|(k, _)| k.as_str() != Some("instance_id"))
                .cloned()
                .collect();
            (!rest.is_empty()).then(|| Node::new(Kind::Map(rest), ha.pos.clone()))
        }
        _ if ha.is_null() => None,
        _ => Some(ha.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(text: &str) -> String {
        let tree = super::super::yaml::parse(text, &std::sync::Arc::from("t.yaml")).expect("yaml");
        config_sha256(&tree)
    }

    #[test]
    fn listen_and_instance_id_do_not_count() {
        let a = sha("listen: 127.0.0.1:8080\nha:\n  instance_id: a\n  lease_seconds: 3\ntimezone: Europe/Paris\n");
        let b = sha("timezone: Europe/Paris\nha: {lease_seconds: 3, instance_id: b}\nlisten: 0.0.0.0:9090\n");
        assert_eq!(a, b);
        let c = sha("timezone: Europe/Paris\nha: {lease_seconds: 3}\n");
        assert_eq!(a, c);
    }

    #[test]
    fn an_empty_ha_block_is_no_block() {
        assert_eq!(sha("demo: true\nha:\n  instance_id: x\n"), sha("demo: true\n"));
        assert_eq!(sha("demo: true\nha:\n"), sha("demo: true\n"));
    }

    #[test]
    fn everything_else_counts() {
        let base = sha("timezone: Europe/Paris\nha: {lease_seconds: 3}\n");
        assert_ne!(base, sha("timezone: Europe/Paris\nha: {lease_seconds: 4}\n"));
        assert_ne!(base, sha("timezone: Europe/London\nha: {lease_seconds: 3}\n"));
        // Quoting a value can change its meaning.
        assert_ne!(sha("demo: true\n"), sha("demo: \"true\"\n"));
        // A nested `listen` is not the top-level one.
        assert_ne!(sha("a: {listen: 1}\n"), sha("a: {}\n"));
        // Sequences keep their order.
        assert_ne!(sha("a: [1, 2]\n"), sha("a: [2, 1]\n"));
    }

    #[test]
    fn instance_ids_are_checked() {
        assert!(check_instance_id("db-1.example.org:8080").is_ok());
        assert!(check_instance_id("").is_err());
        assert!(check_instance_id("a b").is_err());
        assert!(check_instance_id(&"x".repeat(101)).is_err());
    }

    #[test]
    fn mqtt_client_ids_are_safe() {
        assert_eq!(mqtt_client_id("borne", "srv-1.city:8080"), "borne-srv-1-city-8080");
    }

    #[test]
    fn lease_bounds() {
        let (ha, errors) = validate(&RawHa {
            instance_id: None,
            lease_seconds: Some(9),
        });
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(ha.lease, Duration::from_secs(3));
        let (ha, errors) = validate(&RawHa {
            instance_id: Some("a:1".into()),
            lease_seconds: Some(5),
        });
        assert!(errors.is_empty());
        assert_eq!(ha.lease, Duration::from_secs(5));
        assert_eq!(ha.idle_session_timeout(), Duration::from_secs(7));
    }
}
