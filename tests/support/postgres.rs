//! A throwaway PostgreSQL cluster for the tests (issue 17): `initdb` into a
//! temporary directory, `postgres` on a free loopback port with its socket
//! in that directory, stopped by PID and removed when dropped, also when
//! the test panics.
//!
//! PostgreSQL refuses to run as root: when the tests run as root (CI), the
//! cluster runs as `nobody:nogroup` through `setpriv`, with the temporary
//! directory given to that user; otherwise as the current user.
//!
//! ```ignore
//! use borne_test_support::postgres::PgCluster;
//!
//! let Some(pg) = PgCluster::start() else { return }; // skipped, said on stderr
//! let url = pg.create_database("borne_contract");
//! // … postgres://borne@127.0.0.1:<port>/borne_contract
//! pg.restart(); // same port, same data
//! ```
//!
//! Durability is traded for speed (`fsync=off`): a test cluster never
//! survives a crash of the machine, only of its processes.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::{find_program, require_peer};
use crate::wait::{TIMEOUT, free_port};

/// The superuser the cluster is created with (trust authentication on loopback).
pub const USER: &str = "borne";

/// Debian's `nobody` and `nogroup`: who runs the cluster when the tests run as root.
const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

/// The Debian package that brings the server programs.
const PACKAGE: &str = "PostgreSQL's initdb and postgres (Debian: apt-get install -y postgresql)";

/// Where the server programs are.
#[derive(Debug, Clone)]
struct Bin {
    dir: PathBuf,
}

impl Bin {
    fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `initdb` on `PATH` (its real directory, where `postgres` lives too),
    /// then the newest `/usr/lib/postgresql/*/bin`.
    fn find() -> Option<Bin> {
        let complete = |dir: &Path| {
            ["initdb", "postgres", "pg_ctl", "psql"]
                .iter()
                .all(|p| dir.join(p).is_file())
        };
        if let Some(initdb) = find_program("initdb")
            && let Ok(real) = std::fs::canonicalize(&initdb)
            && let Some(dir) = real.parent()
            && complete(dir)
        {
            return Some(Bin { dir: dir.to_path_buf() });
        }
        let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| {
                let e = e.ok()?;
                let version: u32 = e.file_name().to_str()?.parse().ok()?;
                Some((version, e.path().join("bin")))
            })
            .filter(|(_, dir)| complete(dir))
            .collect();
        dirs.sort();
        dirs.pop().map(|(_, dir)| Bin { dir })
    }
}

/// A running throwaway cluster. See the module documentation.
#[derive(Debug)]
pub struct PgCluster {
    bin: Bin,
    dir: tempfile::TempDir,
    port: u16,
    /// Run as this uid/gid (when the tests run as root).
    as_user: Option<(u32, u32)>,
    /// `-c name=value` settings of every start.
    settings: Vec<(String, String)>,
    child: Option<Child>,
}

impl PgCluster {
    /// Creates and starts a cluster, or `None` (a skip on stderr, a panic
    /// under `BORNE_REQUIRE_PEERS=1`) when PostgreSQL is not installed.
    ///
    /// # Panics
    /// `initdb` or the server fails.
    #[track_caller]
    pub fn start() -> Option<PgCluster> {
        Self::start_with(&[], |_| {})
    }

    /// [`start`](Self::start) with server settings (`-c name=value`),
    /// after `prepare` has run on the initialised cluster (to write
    /// certificates with [`write_file`](Self::write_file), say).
    ///
    /// # Panics
    /// `initdb` or the server fails.
    #[track_caller]
    pub fn start_with(settings: &[(&str, &str)], prepare: impl FnOnce(&PgCluster)) -> Option<PgCluster> {
        let bin = Bin::find();
        if !require_peer(PACKAGE, bin.is_some()) {
            return None;
        }
        let bin = bin.expect("found");
        let dir = tempfile::Builder::new()
            .prefix("borne-pg-")
            .tempdir()
            .expect("temporary directory");
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_user = (unsafe { libc::geteuid() } == 0).then_some((NOBODY, NOGROUP));
        if let Some((uid, gid)) = as_user {
            chown(dir.path(), uid, gid);
        }
        let mut cluster = PgCluster {
            bin,
            dir,
            port: free_port(),
            as_user,
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
        };
        let data = cluster.data_dir();
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        prepare(&cluster);
        cluster.launch();
        Some(cluster)
    }

    /// Writes a file into the cluster's directory, owned by the server's
    /// user with `mode` (a TLS key must be 0600 and the server's), and
    /// returns its path.
    ///
    /// # Panics
    /// The file cannot be written.
    pub fn write_file(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write into the cluster's directory");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        if let Some((uid, gid)) = self.as_user {
            chown(&path, uid, gid);
        }
        path
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log (stdout and stderr of every start, appended).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `postgres://borne@127.0.0.1:<port>/postgres`, the maintenance database.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of the database `name` on this cluster.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates the database `name` (letters, digits, `_`) and returns its URL.
    ///
    /// # Panics
    /// A bad name, or `psql` fails.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database name {name:?}: letters, digits and _ only"
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.database_url(name)
    }

    /// Runs one SQL statement in `database` with `psql` and returns what it
    /// printed (unaligned, tuples only).
    ///
    /// # Panics
    /// `psql` fails.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.program("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                USER,
            ])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the server (fast shutdown: sessions are disconnected) and waits
    /// until it has exited. Nothing is removed; [`PgCluster::restart`]
    /// starts it again.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGINT);
            let deadline = Instant::now() + TIMEOUT;
            loop {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Kills the postmaster with SIGKILL (a crash), without waiting for its
    /// backends; [`PgCluster::restart`] recovers.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops (if running) and starts again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts the postmaster and waits until it accepts queries.
    fn launch(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .expect("postgres.log");
        if let Some((uid, gid)) = self.as_user {
            chown(&self.dir.path().join("postgres.log"), uid, gid);
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(["-c", "max_connections=200", "-c", "log_min_messages=warning"])
            .args(
                self.settings
                    .iter()
                    .flat_map(|(k, v)| ["-c".to_owned(), format!("{k}={v}")]),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                panic!("postgres exited at start ({status}): {}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.ready() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready after {TIMEOUT:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether a query goes through (not only the port: startup and
    /// recovery refuse connections for a while).
    fn ready(&self) -> bool {
        Command::new(self.bin.program("psql"))
            .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-U", USER])
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", "SELECT 1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A server program, run as the cluster's user.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.program(program);
        match self.as_user {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.args([
                    format!("--reuid={uid}"),
                    format!("--regid={gid}"),
                    "--clear-groups".into(),
                ])
                .arg(path)
                .current_dir(self.dir.path());
                c
            }
            None => {
                let mut c = Command::new(path);
                c.current_dir(self.dir.path());
                c
            }
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate shutdown: nothing to keep, and a test waiting on a
        // fast shutdown's checkpoint would only be slower.
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGQUIT);
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown the cluster's directory");
}

fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill has no memory preconditions; the PID is our child's,
        // not yet reaped, so it cannot name another process.
        unsafe { libc::kill(pid, sig) };
    }
}
