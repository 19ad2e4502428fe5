//! A daemon started in process on a loopback port with a temporary state
//! directory and a clock the test moves, a daemon started as a real process
//! (for signals and `kill -9`), and their HTTP helpers.
//!
//! Every helper that starts something stops it when dropped, also when the
//! test fails: `TestDaemon` cancels its token, `DaemonProcess` kills its
//! child by PID.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use borne::config;
use borne::core::{Clock, Core};
use borne::daemon::{self, Options, Running};
use borne::driver::sim::SimDriver;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use crate::wait::{TIMEOUT, free_port, wait_for};

/// A clock the test sets.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `t` (RFC 3339).
    pub fn at(t: &str) -> Arc<Self> {
        Arc::new(Self(Mutex::new(t.parse().expect("RFC 3339 time"))))
    }

    /// Sets the time.
    pub fn set(&self, t: &str) {
        *self.0.lock().unwrap() = t.parse().expect("RFC 3339 time");
    }

    /// Moves the time.
    pub fn advance(&self, d: chrono::Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A clock that runs at the system clock's pace from a chosen instant: the
/// daemon's own timers fire at a schedule rule's instant, as under
/// `borne run`, without waiting for that time of day.
#[derive(Debug)]
pub struct RunningClock {
    start: DateTime<Utc>,
    origin: std::time::Instant,
}

impl RunningClock {
    /// A clock showing `t` (RFC 3339) now, and moving on from there.
    pub fn from(t: &str) -> Arc<Self> {
        Arc::new(Self {
            start: t.parse().expect("RFC 3339 time"),
            origin: std::time::Instant::now(),
        })
    }

    /// The monotonic instant at which this clock shows `t` (RFC 3339).
    pub fn instant_of(&self, t: &str) -> std::time::Instant {
        let at: DateTime<Utc> = t.parse().expect("RFC 3339 time");
        let after = (at - self.start).to_std().expect("an instant after the clock's start");
        self.origin + after
    }
}

impl Clock for RunningClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.origin.elapsed()).unwrap_or_default()
    }
}

/// Cancels a daemon started with `token` and waits (at most [`TIMEOUT`])
/// until `running` has stopped cleanly.
pub async fn stop_running(token: &CancellationToken, running: Option<Running>) {
    token.cancel();
    if let Some(r) = running {
        tokio::time::timeout(TIMEOUT, r.wait())
            .await
            .expect("stops in time")
            .expect("stops cleanly");
    }
}

/// A configuration with `STATE_DIR` replaced, loaded and validated.
pub fn load_config(yaml: &str, dir: &Path) -> config::Config {
    let text = yaml.replace("STATE_DIR", &dir.join("state").display().to_string());
    match config::from_str(&text, "test.yaml", Some(dir)) {
        Ok(l) => l.config,
        Err(e) => panic!("test configuration invalid: {e}"),
    }
}

/// A daemon running in this process.
pub struct TestDaemon {
    /// Its HTTP address.
    pub addr: std::net::SocketAddr,
    /// Its core.
    pub core: Arc<Core>,
    /// Its simulated APs.
    pub sim: SimDriver,
    /// Its shutdown token.
    pub token: CancellationToken,
    /// The temporary directory holding its state (kept across restarts).
    pub dir: Arc<tempfile::TempDir>,
    running: Option<Running>,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl TestDaemon {
    /// Starts a daemon on `yaml` (with `STATE_DIR` in it) in a new temp dir.
    pub async fn start(yaml: &str, clock: Arc<dyn Clock>) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::start_in(dir, yaml, clock).await
    }

    /// Starts a daemon in an existing dir (a restart).
    pub async fn start_in(dir: Arc<tempfile::TempDir>, yaml: &str, clock: Arc<dyn Clock>) -> Self {
        let config = load_config(yaml, dir.path());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let token = CancellationToken::new();
        let options = Options {
            clock,
            listener: Some(listener),
            config_path: None,
            watchdog: None,
        };
        let running = daemon::start(config, options, token.clone())
            .await
            .expect("daemon starts");
        TestDaemon {
            addr: running.addr,
            core: running.core.clone(),
            sim: running.sim.clone(),
            token,
            dir,
            running: Some(running),
            http: reqwest::Client::new(),
        }
    }

    /// Stops the daemon and waits for it; returns the state dir for a restart.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        stop_running(&self.token, self.running.take()).await;
        self.dir.clone()
    }

    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GET with a token; returns (status, JSON body).
    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A request with a JSON body; returns (status, JSON body).
    pub async fn send(&self, method: reqwest::Method, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST a teacher request.
    pub async fn wifi(&self, token: &str, classroom: &str, body: Value) -> (u16, Value) {
        self.send(
            reqwest::Method::POST,
            token,
            &format!("/api/v1/classrooms/{classroom}/wifi"),
            body,
        )
        .await
    }

    /// Waits until the simulated AP is in `state`.
    pub async fn wait_sim(&self, ap: &str, state: borne::policy::Wifi) {
        let sim = self.sim.clone();
        let ap = ap.to_owned();
        wait_for(&format!("sim AP {ap} {state}"), || sim.state(&ap) == Some(state)).await;
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// The `borne` binary cargo built next to the test (or benchmark) that
/// runs: `target/<profile>/borne`, the test being in `target/<profile>/deps/`.
pub fn borne_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the running test's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let bin = profile_dir.join("borne");
    assert!(
        bin.is_file(),
        "{} is missing: run through cargo test or cargo bench",
        bin.display()
    );
    bin
}

/// `borne run` as a real process, killed by PID when dropped.
pub struct DaemonProcess {
    /// The child.
    pub child: Child,
    /// Its HTTP port.
    pub port: u16,
    /// The configuration file.
    pub config: PathBuf,
}

impl DaemonProcess {
    /// Starts `borne run --config path` and waits for `/readyz`.
    pub fn start(config: &Path, port: u16) -> Self {
        Self::spawn(config, port, "warn", Stdio::inherit())
    }

    /// As [`DaemonProcess::start`], its log (stderr, `info`, no colour)
    /// written to the file `log` for the test to read.
    pub fn start_logged(config: &Path, port: u16, log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        Self::spawn(config, port, "info", file.into())
    }

    fn spawn(config: &Path, port: u16, level: &str, stderr: Stdio) -> Self {
        let child = Command::new(borne_bin())
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", level)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn borne");
        let p = DaemonProcess {
            child,
            port,
            config: config.to_owned(),
        };
        p.wait_ready();
        p
    }

    fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            if crate::http::is_ready(self.port) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "borne did not become ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `http://127.0.0.1:port/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
