//! SSH test harness: fake OpenWrt access points behind real SSH servers,
//! reusable by the SSH driver tests and by daemon-level tests.
//!
//! **The fake AP** ([`FakeOpenWrt`]) is a directory: `bin/` holds small
//! POSIX shell scripts standing in for OpenWrt's `uci`, `wifi`, `ubus` and
//! `iw` (copied from `ssh/fake-openwrt/`), `state/` holds the
//! AP's state in plain files. Commands from borne run with `/bin/sh -c`
//! and `bin/` first on `PATH`, exactly as a real AP's shell would run them,
//! so quoting, `&&` chains and pipes are exercised for real.
//! - `uci [-q] show wireless` lists one `wifi-device` section per radio
//!   (and its `wifi-iface`); `uci set wireless.<radio>.disabled=<v>` stages
//!   (unknown radio: `uci: Invalid argument`, exit 1); `uci commit
//!   wireless` writes the staged values to the *committed* configuration.
//! - `wifi reload` copies the committed `disabled` of every radio to the
//!   *running* state; [`FakeOpenWrt::set_hang`] makes it wait (30 s at
//!   most), [`FakeOpenWrt::set_reload_failure`] makes it fail.
//! - `ubus call network.wireless status` prints the running state like
//!   netifd (`up`, `disabled`, `interfaces[].ifname` while up), or what
//!   [`FakeOpenWrt::set_ubus_output`] says.
//! - `iw dev <ifname> station dump` prints [`FakeOpenWrt::set_stations`]
//!   stations while the interface's radio runs.
//! - Every command received is appended to `state/commands.log`
//!   ([`FakeOpenWrt::commands`]).
//!
//! Radios start on (`disabled=0`, committed and running), with no station.
//!
//! **The servers** both implement [`SshFake`] (port, client key,
//! `known_hosts`, host key and fingerprint, count of authenticated
//! connections, restart on the same port with the same host key):
//! - [`TestSshd::start`] runs the real OpenSSH `/usr/sbin/sshd` as a child
//!   process on a free loopback port (`ListenAddress 127.0.0.1`, keys made
//!   with `ssh-keygen -t ed25519`, `ForceCommand` = `bin/login`, which logs
//!   and runs the command with the fake first on `PATH`), waits until it
//!   accepts connections (in a mount namespace that hides the test user's
//!   login rc files, see [`login_rc`]), and kills it and its session processes by PID on
//!   drop, also when the test panics. When sshd is not installed it returns
//!   `None` after [`require_peer`](crate::peers::require_peer) (a skip on
//!   stderr, or a failure under `BORNE_REQUIRE_PEERS=1`).
//! - [`InProcessSsh::start`] (in `inprocess.rs`) is an SSH server written
//!   with the `russh` crate, on its own Tokio runtime in the test process;
//!   it serves the same fake and needs nothing but Rust and `/bin/sh`.
//!
//! **Configuration helpers**: [`ssh_ap`] gives the [`SshAp`] borne would
//! build for a fake (OpenWrt preset, all radios, key + `known_hosts`, short
//! timeouts), [`access_point`] wraps it in an [`AccessPoint`], and
//! [`ap_yaml`] / [`config_yaml`] / [`config`] write the same thing as
//! configuration YAML and validate it, for daemon-level tests.
//!
//! [`wait_for`] polls a condition (never a bare sleep); [`TIMEOUT`] is the
//! one limit for anything a test waits for.

pub mod fleet;
pub mod inprocess;
pub mod login_rc;
pub mod process;

use std::fmt::Write as _;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use borne::config::{AccessPoint, ApId, Config, DriverConfig, HostKeyCheck, SshAp, SshAuth, SshPreset};
use sha2::{Digest as _, Sha256};

pub use inprocess::InProcessSsh;

pub use crate::wait::{TIMEOUT, free_port, wait_for};

/// Where Debian's `openssh-server` puts sshd (it must be run by absolute path).
pub const SSHD: &str = "/usr/sbin/sshd";

/// The fake's commands, copied into each fake's `bin/`.
const SCRIPTS: [(&str, &str); 5] = [
    ("uci", include_str!("ssh/fake-openwrt/uci")),
    ("wifi", include_str!("ssh/fake-openwrt/wifi")),
    ("ubus", include_str!("ssh/fake-openwrt/ubus")),
    ("iw", include_str!("ssh/fake-openwrt/iw")),
    ("login", include_str!("ssh/fake-openwrt/login")),
];

/// The user running the tests, who logs in to the fakes.
pub fn current_user() -> String {
    if let Ok(user) = std::env::var("USER")
        && !user.is_empty()
    {
        return user;
    }
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `SHA256:...` of an OpenSSH public key line (`type base64 [comment]`),
/// as `ssh-keygen -l` prints it.
pub fn fingerprint_of(public_key_line: &str) -> String {
    let b64 = public_key_line
        .split_whitespace()
        .nth(1)
        .expect("public key line has a key");
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64 key");
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob))
    )
}

/// A `known_hosts` line for `host` (a name, an address or `[addr]:port`)
/// and a public key line (its comment dropped).
pub fn known_hosts_line(host: &str, public_key_line: &str) -> String {
    let mut words = public_key_line.split_whitespace();
    let kind = words.next().expect("key type");
    let key = words.next().expect("key");
    format!("{host} {kind} {key}\n")
}

/// What a radio of the fake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RadioState {
    /// `wireless.<radio>.disabled` is 0 in the committed configuration
    /// (what the AP comes back with after a reboot).
    pub committed_on: bool,
    /// The radio is up in the running system.
    pub running_on: bool,
}

/// A fake OpenWrt AP: commands in `root/bin`, state in `root/state`.
#[derive(Debug)]
pub struct FakeOpenWrt {
    root: PathBuf,
    radios: Vec<(String, String)>,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn flag(path: &Path, on: bool) {
    if on {
        write(path, "");
    } else {
        let _ = std::fs::remove_file(path);
    }
}

impl FakeOpenWrt {
    /// Installs a fake in `root` with these `(radio, ifname)` pairs, all on.
    pub fn install(root: &Path, radios: &[(&str, &str)]) -> Self {
        let bin = root.join("bin");
        let state = root.join("state");
        for dir in [
            &bin,
            &state.join("staged"),
            &state.join("committed"),
            &state.join("running"),
            &state.join("stations"),
            &root.join("tmp"),
        ] {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        for (name, text) in SCRIPTS {
            let path = bin.join(name);
            write(&path, text);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
        }
        let mut list = String::new();
        for (radio, ifname) in radios {
            writeln!(list, "{radio} {ifname}").expect("string write");
            write(&state.join("committed").join(radio), "0\n");
            write(&state.join("running").join(radio), "0\n");
        }
        write(&state.join("radios"), &list);
        write(&state.join("commands.log"), "");
        FakeOpenWrt {
            root: root.to_owned(),
            radios: radios.iter().map(|(r, i)| ((*r).to_owned(), (*i).to_owned())).collect(),
        }
    }

    /// The directory of the fake commands.
    pub fn bin_dir(&self) -> PathBuf {
        self.root.join("bin")
    }

    /// The directory of the fake's state files (`FAKE_DIR` of the scripts).
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    /// The radios, as installed.
    pub fn radios(&self) -> Vec<String> {
        self.radios.iter().map(|(r, _)| r.clone()).collect()
    }

    fn read_on(&self, dir: &str, radio: &str) -> bool {
        let path = self.state_dir().join(dir).join(radio);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        text.trim() == "0"
    }

    /// A radio's committed and running state.
    pub fn state(&self, radio: &str) -> RadioState {
        RadioState {
            committed_on: self.read_on("committed", radio),
            running_on: self.read_on("running", radio),
        }
    }

    /// Whether every radio is `on`, committed and running.
    pub fn all(&self, on: bool) -> bool {
        self.radios.iter().all(|(r, _)| {
            self.state(r)
                == RadioState {
                    committed_on: on,
                    running_on: on,
                }
        })
    }

    /// Sets a radio, committed and running (as if switched and rebooted).
    pub fn set_radio(&self, radio: &str, on: bool) {
        let v = if on { "0\n" } else { "1\n" };
        write(&self.state_dir().join("committed").join(radio), v);
        write(&self.state_dir().join("running").join(radio), v);
    }

    /// Sets only the running state of a radio (as `wifi down radio0` would).
    pub fn set_running(&self, radio: &str, on: bool) {
        write(
            &self.state_dir().join("running").join(radio),
            if on { "0\n" } else { "1\n" },
        );
    }

    /// Sets how many stations `iw dev <ifname> station dump` lists.
    pub fn set_stations(&self, ifname: &str, n: u32) {
        write(&self.state_dir().join("stations").join(ifname), &format!("{n}\n"));
    }

    /// Makes `wifi reload` hang (until unset, 30 s at most).
    pub fn set_hang(&self, hang: bool) {
        flag(&self.state_dir().join("hang"), hang);
    }

    /// Makes `wifi reload` sleep this long before applying.
    pub fn set_reload_delay(&self, delay: Duration) {
        write(
            &self.state_dir().join("reload_seconds"),
            &format!("{:.3}\n", delay.as_secs_f64()),
        );
    }

    /// Makes `wifi reload` print `message` on stderr and exit 1, or work again.
    pub fn set_reload_failure(&self, message: Option<&str>) {
        let path = self.state_dir().join("fail_reload");
        match message {
            Some(m) => write(&path, &format!("{m}\n")),
            None => flag(&path, false),
        }
    }

    /// Makes `ubus call network.wireless status` print `text`, or the state again.
    pub fn set_ubus_output(&self, text: Option<&str>) {
        let path = self.state_dir().join("ubus_output");
        match text {
            Some(t) => write(&path, t),
            None => flag(&path, false),
        }
    }

    /// Every command received, in order (a multi-line command spans lines).
    pub fn commands(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.state_dir().join("commands.log")).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }

    /// Appends a received command to the log (the in-process server's
    /// equivalent of `bin/login`).
    pub fn log_command(&self, command: &str) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.state_dir().join("commands.log"))
            .expect("open commands.log");
        writeln!(f, "{command}").expect("append commands.log");
    }

    /// `/bin/sh -c command` with the environment `bin/login` gives: what
    /// the in-process server runs.
    pub fn shell(&self, command: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(command)
            .env("FAKE_DIR", self.state_dir())
            .env("TMPDIR", self.tmp_dir())
            .env(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.bin_dir().display()),
            )
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

/// An SSH server in front of a [`FakeOpenWrt`].
pub trait SshFake {
    /// `sshd` or `russh`, for messages.
    fn label(&self) -> &'static str;
    /// The AP behind it.
    fn fake(&self) -> &FakeOpenWrt;
    /// Its port on 127.0.0.1.
    fn port(&self) -> u16;
    /// A scratch directory for the test's own files.
    fn dir(&self) -> &Path;
    /// The private key borne logs in with (unencrypted).
    fn client_key(&self) -> &Path;
    /// A `known_hosts` with the server's key as `[127.0.0.1]:port`.
    fn known_hosts(&self) -> &Path;
    /// The server's host public key, `ssh-ed25519 AAAA...`.
    fn host_key(&self) -> &str;
    /// Its fingerprint, `SHA256:...`.
    fn fingerprint(&self) -> String {
        fingerprint_of(self.host_key())
    }
    /// Connections that authenticated so far.
    fn connections(&self) -> usize;
    /// Authenticated connections still open.
    fn open_connections(&self) -> usize;
    /// Drops every connection and comes back on the same port with the
    /// same host key (like an AP whose sshd restarts).
    fn restart(&mut self);
}

/// The `SshAp` of an OpenWrt fake: all radios, key + `known_hosts`,
/// connect 5 s, command 10 s, connections kept 60 s.
pub fn ssh_ap(fake: &dyn SshFake) -> SshAp {
    SshAp {
        host: "127.0.0.1".to_owned(),
        port: fake.port(),
        user: current_user(),
        auth: SshAuth::Key {
            key_file: fake.client_key().to_owned(),
            passphrase_file: None,
        },
        host_key: HostKeyCheck::KnownHosts(fake.known_hosts().to_owned()),
        preset: SshPreset::OpenWrt { radios: Vec::new() },
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(10),
        reuse: Duration::from_secs(60),
        prewarm: Duration::from_secs(20),
    }
}

/// An access point `id` switched over SSH as `ssh` says.
pub fn access_point(id: &str, ssh: SshAp) -> AccessPoint {
    AccessPoint {
        id: ApId::from(id),
        classroom: "room".into(),
        school: "school".into(),
        driver: DriverConfig::Ssh(ssh),
        lease: None,
    }
}

/// One `access_points:` entry (YAML flow mapping) for a fake, as [`ssh_ap`].
pub fn ap_yaml(id: &str, fake: &dyn SshFake) -> String {
    format!(
        "{{ id: {id}, ssh: {{ host: 127.0.0.1, port: {}, user: \"{}\", key_file: \"{}\", known_hosts: \"{}\", \
         connect_timeout_seconds: 5, command_timeout_seconds: 10 }} }}",
        fake.port(),
        current_user(),
        fake.client_key().display(),
        fake.known_hosts().display()
    )
}

/// A whole configuration: one school, one classroom per AP, a schedule
/// that keeps everything off (`locked`).
pub fn config_yaml(aps: &[(&str, &dyn SshFake)]) -> String {
    let mut yaml = String::from(
        "listen: 127.0.0.1:0\nschedules:\n  off:\n    default_mode: locked\nschools:\n  - id: school\n    schedule: off\n    classrooms:\n",
    );
    for (id, fake) in aps {
        write!(
            yaml,
            "      - id: room-{id}\n        access_points:\n          - {}\n",
            ap_yaml(id, *fake)
        )
        .expect("string write");
    }
    yaml
}

/// [`config_yaml`], validated.
pub fn config(aps: &[(&str, &dyn SshFake)]) -> Arc<Config> {
    let yaml = config_yaml(aps);
    match borne::config::from_str(&yaml, "test.yaml", None) {
        Ok(loaded) => Arc::new(loaded.config),
        Err(e) => panic!("invalid test configuration: {e}\n{yaml}"),
    }
}

// ---------------------------------------------------------------- sshd

/// `/usr/sbin/sshd`, or `None` after a skip (a failure under
/// `BORNE_REQUIRE_PEERS=1`).
#[track_caller]
pub fn require_sshd() -> Option<PathBuf> {
    let found = Path::new(SSHD).is_file();
    crate::peers::require_peer(&format!("{SSHD} (Debian: apt-get install -y openssh-server)"), found)
        .then(|| PathBuf::from(SSHD))
}

/// Whether `ssh-keygen` runs, or a skip (a failure under
/// `BORNE_REQUIRE_PEERS=1`).
#[track_caller]
pub fn require_ssh_keygen() -> bool {
    let found = Command::new("ssh-keygen")
        .arg("-?")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    crate::peers::require_peer("ssh-keygen (Debian: apt-get install -y openssh-client)", found)
}

/// Runs `ssh-keygen` with these arguments; panics when it fails.
pub fn ssh_keygen(args: &[&str]) {
    let out = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen (package openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes an ed25519 key pair at `path` (+ `.pub`) with `ssh-keygen`;
/// returns the public key line.
pub fn keygen(path: &Path, passphrase: &str) -> String {
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        passphrase,
        "-C",
        "borne-test",
        "-f",
        path.to_str().expect("utf-8 path"),
    ]);
    std::fs::read_to_string(path.with_extension("pub"))
        .expect("read public key")
        .trim()
        .to_owned()
}

/// OpenSSH's sshd as a child process in front of a [`FakeOpenWrt`].
pub struct TestSshd {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its temporary directory (deleted on drop): `bin/`, `state/`,
    /// `sshd/` (config, host key, log), `client_key`, `known_hosts`.
    pub dir: tempfile::TempDir,
    /// The AP behind it.
    pub fake: FakeOpenWrt,
    /// The key borne logs in with.
    pub client_key: PathBuf,
    /// `known_hosts` with `[127.0.0.1]:port`.
    pub known_hosts: PathBuf,
    /// The host public key line.
    pub host_key: String,
    child: Option<Child>,
}

impl TestSshd {
    /// Starts one with radios `radio0`/`wlan0` and `radio1`/`wlan1`, or
    /// `None` when sshd is missing (see [`require_sshd`]).
    pub fn start() -> Option<Self> {
        Self::start_with(&[("radio0", "wlan0"), ("radio1", "wlan1")])
    }

    /// Starts one with these `(radio, ifname)` pairs.
    pub fn start_with(radios: &[(&str, &str)]) -> Option<Self> {
        require_sshd()?;
        // sshd refuses to start without its privilege separation directory,
        // which systemd or the init script normally create.
        if !Path::new("/run/sshd").is_dir() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_owned();
        let fake = FakeOpenWrt::install(&root, radios);
        let sshd_dir = root.join("sshd");
        std::fs::create_dir_all(&sshd_dir).expect("mkdir sshd");
        let host_key = keygen(&sshd_dir.join("host_ed25519_key"), "");
        let client_key = root.join("client_key");
        let client_pub = keygen(&client_key, "");
        write(&sshd_dir.join("authorized_keys"), &format!("{client_pub}\n"));
        let mut sshd = TestSshd {
            port: 0,
            dir,
            fake,
            client_key,
            known_hosts: root.join("known_hosts"),
            host_key,
            child: None,
        };
        sshd.spawn_on_free_port();
        write(
            &sshd.known_hosts,
            &known_hosts_line(&format!("[127.0.0.1]:{}", sshd.port), &sshd.host_key),
        );
        Some(sshd)
    }

    fn sshd_dir(&self) -> PathBuf {
        self.dir.path().join("sshd")
    }

    /// The sshd log (`-e`: what it would send to syslog).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.sshd_dir().join("sshd.log")).unwrap_or_default()
    }

    fn write_config(&self, port: u16) -> PathBuf {
        let d = self.sshd_dir();
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {host_key}\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\n\
             UsePAM no\n\
             PermitRootLogin yes\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             ForceCommand {login}\n\
             LogLevel INFO\n\
             MaxStartups 100\n",
            host_key = d.join("host_ed25519_key").display(),
            d = d.display(),
            login = self.fake.bin_dir().join("login").display(),
        );
        let path = d.join("sshd_config");
        write(&path, &config);
        path
    }

    /// Starts sshd on `port`; `false` when it exits at once (port taken).
    fn spawn(&mut self, port: u16) -> bool {
        let config = self.write_config(port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.sshd_dir().join("sshd.log"))
            .expect("open sshd.log");
        let config = config.to_str().expect("utf-8 path");
        let mut child = login_rc::command(SSHD, &["-D", "-e", "-f", config])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                self.port = port;
                self.child = Some(child);
                return true;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sshd did not listen on 127.0.0.1:{port} within {TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn spawn_on_free_port(&mut self) {
        for _ in 0..5 {
            if self.spawn(free_port()) {
                return;
            }
        }
        panic!("sshd would not start:\n{}", self.log());
    }

    /// Kills sshd and every session process it forked (they outlive the
    /// listener otherwise, keeping connections open), by PID.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut pids = descendants(child.id());
        pids.reverse();
        let _ = child.kill();
        let _ = child.wait();
        if !pids.is_empty() {
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            let _ = Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("kill -9 {} 2>/dev/null", list.join(" ")))
                .status();
        }
    }
}

/// Every process below `pid` (from `/proc/*/stat`), parents first.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = after.split_whitespace().nth(1).and_then(|s| s.parse::<u32>().ok()) {
                parent_of.push((child, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(child, ppid) in &parent_of {
            if ppid == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        self.kill();
    }
}

impl SshFake for TestSshd {
    fn label(&self) -> &'static str {
        "sshd"
    }
    fn fake(&self) -> &FakeOpenWrt {
        &self.fake
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn client_key(&self) -> &Path {
        &self.client_key
    }
    fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }
    fn host_key(&self) -> &str {
        &self.host_key
    }
    fn connections(&self) -> usize {
        self.log().lines().filter(|l| l.starts_with("Accepted ")).count()
    }
    /// Counts closes sshd logs, so only connections closed by the client
    /// (as borne does) and not those cut by [`SshFake::restart`].
    fn open_connections(&self) -> usize {
        let log = self.log();
        let closed = log.lines().filter(|l| l.starts_with("Disconnected from user ")).count();
        self.connections().saturating_sub(closed)
    }
    fn restart(&mut self) {
        let port = self.port;
        self.kill();
        // SO_REUSEADDR lets sshd take the port again at once; retry while
        // the old sockets close.
        let deadline = Instant::now() + TIMEOUT;
        while !self.spawn(port) {
            assert!(
                Instant::now() < deadline,
                "sshd did not come back on port {port}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
