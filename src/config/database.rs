//! `database:`: the state lives in PostgreSQL instead of the embedded
//! SQLite file (issue 17). Without the block, `state_dir/borne.db` stays
//! the store.
//!
//! ```yaml
//! database:
//!   url: postgres://borne@db.example.org/borne
//!   password_file: /etc/borne/db-password   # read at start, never logged
//!   tls: verify-full                         # disable | require | verify-full
//!   ca_file: /etc/borne/db-ca.pem            # verify-full: the CA to trust
//! ```
//!
//! The URL is checked here (form, user, database name, no password in it:
//! a configuration file is read by more people than a secret file); the
//! password file is read when the store opens, so that `borne check`
//! passes on a machine without the secret.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `database:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawDatabase {
    /// `postgres://user@host[:port]/database[?options]`.
    pub url: Option<String>,
    /// A file holding the password (one line; a trailing newline is ignored).
    pub password_file: Option<PathBuf>,
    /// `disable`, `require` or `verify-full`.
    pub tls: Option<String>,
    /// With `verify-full`: the CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
}

/// How the connection to PostgreSQL is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbTls {
    /// Plain TCP (a loopback or otherwise trusted network).
    Disable,
    /// Encrypted, the server's certificate not checked (protects against
    /// listening, not against an impostor).
    Require,
    /// Encrypted, the certificate checked against the CA and the host name.
    VerifyFull,
}

impl DbTls {
    /// As written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            DbTls::Disable => "disable",
            DbTls::Require => "require",
            DbTls::VerifyFull => "verify-full",
        }
    }
}

/// `database:`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// The URL as written (it holds no password).
    pub url: String,
    /// Where the password is, if any.
    pub password_file: Option<PathBuf>,
    /// Transport protection.
    pub tls: DbTls,
    /// CA certificates for `verify-full`; `None`: the system's.
    pub ca_file: Option<PathBuf>,
}

impl Database {
    /// `user@host:port/database`, for logs and error messages (no password).
    pub fn display_target(&self) -> String {
        match self.url.parse::<tokio_postgres::Config>() {
            Ok(c) => target_of(&c),
            Err(_) => "PostgreSQL".into(),
        }
    }
}

/// `user@host:port/database` of a client configuration.
pub fn target_of(c: &tokio_postgres::Config) -> String {
    let host = c
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        c.get_user().unwrap_or("?"),
        c.get_dbname().unwrap_or("?")
    )
}

/// Whether every host of the URL is this machine (loopback or a socket).
fn loopback_only(c: &tokio_postgres::Config) -> bool {
    !c.get_hosts().is_empty()
        && c.get_hosts().iter().all(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => {
                h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
            }
            tokio_postgres::config::Host::Unix(_) => true,
        })
}

/// Validates `database:`; the problems as `(key path, message)`.
///
/// # Errors
/// Every problem found.
pub fn validate(raw: &RawDatabase, base_dir: Option<&Path>) -> Result<Database, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let resolve = |p: &PathBuf| match base_dir {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.clone(),
    };
    let url = raw.url.clone().unwrap_or_default();
    let parsed = if url.trim().is_empty() {
        problems.push((
            "database.url".into(),
            "is missing: give postgres://user@host/database (or remove the database block to keep the embedded SQLite store)"
                .into(),
        ));
        None
    } else if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        problems.push((
            "database.url".into(),
            "must start with postgres:// (postgres://user@host[:port]/database)".into(),
        ));
        None
    } else {
        match url.parse::<tokio_postgres::Config>() {
            Ok(c) => Some(c),
            Err(e) => {
                // The parser's message never quotes the URL, so no password leaks here.
                problems.push(("database.url".into(), format!("not a PostgreSQL URL: {e}")));
                None
            }
        }
    };
    if let Some(c) = &parsed {
        if c.get_user().is_none_or(str::is_empty) {
            problems.push((
                "database.url".into(),
                "names no user: postgres://borne@host/database".into(),
            ));
        }
        if c.get_dbname().is_none_or(str::is_empty) {
            problems.push((
                "database.url".into(),
                "names no database: postgres://borne@host/borne".into(),
            ));
        }
        if c.get_hosts().is_empty() {
            problems.push(("database.url".into(), "names no host".into()));
        }
        if c.get_password().is_some() {
            problems.push((
                "database.url".into(),
                "holds a password: put it in password_file (a secret file, readable by borne only) and remove it from the URL"
                    .into(),
            ));
        }
    }
    let tls = match raw.tls.as_deref() {
        Some("disable") => DbTls::Disable,
        Some("require") => DbTls::Require,
        Some("verify-full") => DbTls::VerifyFull,
        Some(other) => {
            problems.push((
                "database.tls".into(),
                format!("unknown value \"{other}\"; use disable, require or verify-full"),
            ));
            DbTls::Disable
        }
        // Across a network the connection carries the password and every
        // audit line: checked TLS unless the server is on this machine.
        None if parsed.as_ref().is_some_and(loopback_only) => DbTls::Disable,
        None => DbTls::VerifyFull,
    };
    if raw.ca_file.is_some() && tls != DbTls::VerifyFull {
        problems.push((
            "database.ca_file".into(),
            format!("is only used with tls: verify-full (tls is {})", tls.as_str()),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Database {
        url,
        password_file: raw.password_file.as_ref().map(resolve),
        tls,
        ca_file: raw.ca_file.as_ref().map(resolve),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(url: &str) -> RawDatabase {
        RawDatabase {
            url: Some(url.into()),
            ..RawDatabase::default()
        }
    }

    #[test]
    fn a_plain_url_validates_with_tls_by_host() {
        let d = validate(&raw("postgres://borne@db.example.org/borne"), None).unwrap();
        assert_eq!(d.tls, DbTls::VerifyFull, "a remote server gets checked TLS by default");
        assert_eq!(d.display_target(), "borne@db.example.org:5432/borne");
        let d = validate(&raw("postgres://borne@127.0.0.1:5433/borne"), None).unwrap();
        assert_eq!(d.tls, DbTls::Disable, "loopback needs no TLS by default");
    }

    #[test]
    fn bad_urls_are_refused_with_the_key_and_without_the_password() {
        for (url, expect) in [
            ("", "is missing"),
            ("mysql://borne@h/b", "must start with postgres://"),
            ("postgres://h/borne", "names no user"),
            ("postgres://borne@h", "names no database"),
            ("postgres://borne:s3cret@h/borne", "holds a password"),
        ] {
            let problems = validate(&raw(url), None).unwrap_err();
            assert!(
                problems.iter().any(|(k, m)| k == "database.url" && m.contains(expect)),
                "{url}: {problems:?}"
            );
            assert!(!format!("{problems:?}").contains("s3cret"), "{problems:?}");
        }
    }

    #[test]
    fn tls_values_and_ca_file() {
        let mut r = raw("postgres://borne@db/borne");
        r.tls = Some("sometimes".into());
        assert!(
            validate(&r, None).unwrap_err()[0]
                .1
                .contains("use disable, require or verify-full")
        );
        r.tls = Some("require".into());
        r.ca_file = Some("ca.pem".into());
        assert_eq!(validate(&r, None).unwrap_err()[0].0, "database.ca_file");
        r.tls = Some("verify-full".into());
        let d = validate(&r, Some(Path::new("/etc/borne"))).unwrap();
        assert_eq!(d.ca_file.as_deref(), Some(Path::new("/etc/borne/ca.pem")));
    }
}
