//! A real OpenID Provider for the single sign-on tests: `tests/oidc/provider.mjs`
//! (the certified `oidc-provider` package) run by Node on a free loopback
//! port, with one client (borne) and three people (see [`TEACHER`],
//! [`ADMIN`], [`STRANGER`]).
//!
//! [`TestProvider::start`] returns `None` when Node or the installed
//! package (`npm ci` in `tests/oidc`) is missing: a skip on stderr, or a
//! failure under `BORNE_REQUIRE_PEERS=1` ([`crate::peers`]). The child
//! is killed by PID on drop, also when the test panics; it also exits by
//! itself when its stdin (a pipe held by the test) closes, so a test
//! process killed outright leaves no provider behind.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A person at the provider: login and password.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    /// What they type as login (also their `preferred_username`).
    pub login: &'static str,
    /// Their password at the provider.
    pub password: &'static str,
}

/// A teacher, in group `ecole-jules-ferry-enseignants`.
pub const TEACHER: Person = Person {
    login: "c.martin",
    password: "martin-password",
};
/// IT staff, in group `dsi-ecoles`.
pub const ADMIN: Person = Person {
    login: "it.admin",
    password: "admin-password",
};
/// Someone borne knows nothing about (group `parents`).
pub const STRANGER: Person = Person {
    login: "p.inconnu",
    password: "inconnu-password",
};

/// The client secret the provider expects unless told otherwise.
pub const CLIENT_SECRET: &str = "borne-test-secret";

/// How the provider registers borne.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// borne's callback, e.g. `http://127.0.0.1:PORT/auth/callback`.
    pub redirect_uri: String,
    /// Where the provider may send people back after sign-out.
    pub post_logout_redirect_uri: Option<String>,
    /// `client_secret_basic` or `client_secret_post`; `None` for a public client.
    pub auth_method: Option<&'static str>,
}

/// Node and the installed provider package (`tests/oidc`), or `None`
/// after a skip (a failure under `BORNE_REQUIRE_PEERS=1`).
pub fn require_node() -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../oidc");
    let node = crate::peers::require_program("node", "nodejs npm")?;
    let installed = dir.join("node_modules/oidc-provider/package.json").is_file();
    crate::peers::require_peer(
        "the OpenID provider of tests/oidc (run `npm ci` in tests/oidc)",
        installed,
    )
    .then_some((node, dir))
}

pub use crate::wait::free_port;

/// The provider, running.
pub struct TestProvider {
    port: u16,
    options: ProviderOptions,
    node: PathBuf,
    dir: PathBuf,
    child: Option<(Child, ChildStdin)>,
    http: reqwest::Client,
}

impl TestProvider {
    /// Starts the provider on a free port; `None` when it cannot run here
    /// (see [`require_node`]).
    pub fn start(options: ProviderOptions) -> Option<Self> {
        Self::start_on(free_port(), options)
    }

    /// Starts the provider on `port`.
    pub fn start_on(port: u16, options: ProviderOptions) -> Option<Self> {
        let (node, dir) = require_node()?;
        let mut p = TestProvider {
            port,
            options,
            node,
            dir,
            child: None,
            http: reqwest::Client::new(),
        };
        p.spawn();
        Some(p)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(&self.node);
        cmd.current_dir(&self.dir)
            .arg("provider.mjs")
            .args(["--port", &self.port.to_string()])
            .args(["--redirect-uri", &self.options.redirect_uri]);
        if let Some(uri) = &self.options.post_logout_redirect_uri {
            cmd.args(["--post-logout-redirect-uri", uri]);
        }
        match self.options.auth_method {
            Some(method) => cmd.args(["--auth-method", method, "--client-secret", CLIENT_SECRET]),
            None => cmd.arg("--public"),
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node tests/oidc/provider.mjs");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("oidc-provider ready on") {
                    let _ = tx.send(());
                } else {
                    eprintln!("[oidc-provider] {line}");
                }
            }
        });
        self.child = Some((child, stdin));
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            self.stop();
            panic!("the OpenID provider did not start within 30 s");
        }
    }

    /// Its issuer, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (as a crash); [`restart`](Self::restart) brings it back on the same port.
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (new keys, no sessions).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Tampers with the ID tokens it hands out from now on: `none`,
    /// `wrong-issuer`, `wrong-audience`, `expired`, `other-key`, `replay`.
    pub async fn set_fault(&self, mode: &str) {
        let r = self
            .http
            .post(format!("{}/__test/fault?mode={mode}", self.issuer()))
            .send()
            .await
            .expect("provider answers");
        assert!(r.status().is_success(), "set fault: {}", r.status());
    }

    /// Rolls its signing key over (new kid; the old key leaves the JWKS).
    /// Returns the new kid.
    pub async fn rotate_key(&self) -> String {
        let r = self
            .http
            .post(format!("{}/__test/rotate", self.issuer()))
            .send()
            .await
            .expect("provider answers");
        let v: serde_json::Value = r.json().await.expect("JSON");
        v["kid"].as_str().expect("kid").to_owned()
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.stop();
    }
}
