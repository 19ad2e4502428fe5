//! SSH driver: switches access points by running commands over SSH.
//!
//! Two presets decide the commands ([`SshPreset`]):
//!
//! - `openwrt` sets `wireless.<radio>.disabled` with `uci`, commits it (so
//!   the state survives a reboot of the AP) and runs `wifi reload`, all in
//!   one exec; it then reads the *running* state back from
//!   `ubus call network.wireless status` and counts stations with
//!   `iw dev <ifname> station dump`, again in one exec. The exact strings
//!   are in `ssh/commands.rs` and in `docs/access-points.md`.
//! - `custom` runs the configured `on_command` / `off_command` /
//!   `status_command` / `clients_command` verbatim, one exec each.
//!
//! An apply is followed by observations until the AP reports the asked
//! state or a few seconds pass (netifd sets radios up in the background
//! after `wifi reload`); the reconciler judges the last one.
//!
//! **Blocking library, async driver.** `ssh2` (libssh2) blocks, so every
//! ssh2 call runs on Tokio's blocking pool under libssh2's own timeout
//! (`connect_timeout` for TCP connect + handshake + authentication,
//! `command_timeout` for each command) and an outer `tokio::time::timeout`
//! a little longer, so a hung AP never holds a thread or an operation
//! forever.
//!
//! **Host keys are always verified** before authenticating, against a
//! `known_hosts` file or a `SHA256:` fingerprint; an unknown or changed key
//! is a [`DriverError::HostKey`] and no command runs. Only
//! `insecure_ignore_host_key: true` skips the check, with a warning at every
//! connection.
//!
//! **Connections are reused** like OpenSSH's `ControlPersist`: a handshake
//! costs about as much as `wifi reload` itself, so after an operation the
//! connection stays open for `reuse_seconds` (0: closed at once). A command
//! that cannot even start on a reused connection (the AP rebooted, sshd
//! restarted) is retried once on a new one. A reaper task closes idle
//! connections; [`Driver::shutdown`] and [`Driver::reconfigure`] close what
//! is no longer wanted.
//!
//! **One operation per AP at a time**: each AP has an async mutex that also
//! holds its idle connection. The reconciler bounds how many APs are worked
//! on at once.
//!
//! Key, passphrase and password files are read at every connection, so
//! systemd `LoadCredential=` and key rotation work without a restart. No
//! secret goes into an error or a log line.

mod commands;
mod conn;
mod lease;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use self::commands::{
    OPENWRT_DISCOVER, OPENWRT_OBSERVE, OPENWRT_STATE, custom_state, openwrt_switch, parse_clients,
    parse_openwrt_observe, parse_uci_radios, stderr_for_error,
};
use self::conn::{Conn, ExecError, Output};
use self::lease::{custom_lease, openwrt_arm, openwrt_on_with_lease};
use super::{Driver, DriverError, Observation};
use crate::config::{AccessPoint, ApId, Config, DriverConfig, SshAp, SshPreset};
use crate::domain::Wifi;

/// Added to libssh2's own limits for the outer `tokio::time::timeout`:
/// libssh2 normally gives up first, with a clearer error and a clean thread.
const OUTER_GRACE: Duration = Duration::from_secs(2);

/// How often the reaper looks for idle connections past their reuse time.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// How long an apply keeps reading the state back until the AP reports
/// what was asked (netifd brings radios up asynchronously, hostapd takes
/// a second or two). Capped by `command_timeout`.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// Pause between those reads.
const SETTLE_POLL: Duration = Duration::from_millis(500);

/// Switches APs over SSH; one value serves every SSH AP of the daemon.
pub struct SshDriver {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Mutex<HashMap<ApId, Arc<Slot>>>,
    /// The daemon's token: once cancelled, no connection is kept.
    shutdown: CancellationToken,
    /// Set by [`Driver::shutdown`].
    closed: AtomicBool,
    /// Whether the reaper task was spawned.
    reaper_started: AtomicBool,
}

/// One AP: its lock (one operation at a time) and its idle connection.
#[derive(Default)]
struct Slot {
    idle: tokio::sync::Mutex<Option<Idle>>,
    /// Radios discovered on the AP (`radios:` not configured), with the
    /// [`conn_key`] they were read under: discovering them before every
    /// switch costs one more command per operation (50 APs off+on: 1.79 s
    /// with, 1.44 s without, in `benches/ssh_fanout.rs`). Only touched while
    /// `idle` is held; forgotten when a switch fails, so a radio renamed on
    /// the AP is rediscovered at the retry.
    radios: std::sync::Mutex<Option<(String, Vec<String>)>>,
    /// The AP left the configuration: an operation still running closes its
    /// connection instead of keeping it, as nobody would reap it.
    retired: AtomicBool,
}

/// A connection kept open for reuse.
struct Idle {
    conn: Conn,
    /// [`conn_key`] of the settings it was opened with.
    key: String,
    since: Instant,
    keep: Duration,
}

/// What identifies the connection an AP's settings make: when any of them
/// changes (address, login, host key, preset, timeouts), an open connection
/// and the radios read through it are no longer the right ones: a reload
/// that changes an AP starts it afresh. The `Debug` form holds file paths
/// and fingerprints, never secrets, and is only compared.
fn conn_key(ssh: &SshAp) -> String {
    format!("{ssh:?}")
}

/// Closes a connection on the blocking pool (the goodbye message is a
/// blocking write, bounded to a second).
fn close(conn: Conn) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || conn.close())
}

/// What a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Radios and associated clients.
    Full,
    /// Radios only (the read-back after a switch).
    StateOnly,
}

/// What an operation does.
#[derive(Debug, Clone, Copy)]
enum Task {
    Apply(Wifi),
    Observe,
    /// A full read, and the radios learnt if they are not configured.
    Prewarm,
    /// Re-arm the lease of an AP that is on.
    Renew,
}

impl SshDriver {
    /// A driver with no connection yet. Its reaper task, which closes idle
    /// connections, starts with the first operation and stops when
    /// `shutdown` is cancelled (closing every idle connection) or the
    /// driver is dropped.
    pub fn new(shutdown: CancellationToken) -> SshDriver {
        SshDriver {
            inner: Arc::new(Inner {
                slots: Mutex::new(HashMap::new()),
                shutdown,
                closed: AtomicBool::new(false),
                reaper_started: AtomicBool::new(false),
            }),
        }
    }

    /// One operation; `pin`: keep the connection at least this long
    /// afterwards (a prewarm), instead of `reuse_seconds`.
    async fn run(&self, ap: &AccessPoint, task: Task, pin: Option<Duration>) -> Result<Observation, DriverError> {
        let DriverConfig::Ssh(ssh) = &ap.driver else {
            return Err(DriverError::Setup(format!(
                "access point {} uses the {} driver, not ssh",
                ap.id,
                ap.driver.kind()
            )));
        };
        self.inner.start_reaper();
        let who = conn::target(ssh);
        let doing = match task {
            Task::Apply(wifi) => format!("switching {} over ssh {who}", wifi.as_str()),
            Task::Observe => format!("reading the state over ssh {who}"),
            Task::Prewarm => format!("preparing a scheduled switch over ssh {who}"),
            Task::Renew => format!("renewing the lease over ssh {who}"),
        };
        let key = conn_key(ssh);
        let slot = self.inner.slot(&ap.id);
        let mut idle = slot.idle.lock().await;
        let pooled = match idle.take() {
            Some(i) if i.key == key && i.since.elapsed() < i.keep => {
                let mut conn = i.conn;
                conn.reused = true;
                Some(conn)
            }
            Some(i) => {
                // Settings changed or kept past its time: not this one.
                close(i.conn);
                None
            }
            None => None,
        };
        let reused = pooled.is_some();
        let started = Instant::now();
        let known_radios = slot
            .radios
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(k, _)| *k == key)
            .map(|(_, r)| r.clone());
        let mut op = Op {
            ssh,
            doing,
            conn: pooled,
            radios: known_radios,
            lease: ap.lease,
        };
        let result = match task {
            Task::Apply(wifi) => op.apply(wifi).await,
            Task::Observe => op.observe(Reading::Full).await,
            Task::Prewarm => op.prewarm().await,
            Task::Renew => op.renew().await,
        };
        {
            let mut cached = slot.radios.lock().unwrap_or_else(PoisonError::into_inner);
            *cached = match (&result, op.radios.take()) {
                (Err(_), _) if matches!(task, Task::Apply(_) | Task::Renew) => None,
                (_, Some(radios)) => Some((key.clone(), radios)),
                (_, None) => cached.take(),
            };
        }
        tracing::debug!(
            ap = %ap.id,
            ?task,
            reused,
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            "ssh operation"
        );
        if let Some(conn) = op.conn.take() {
            // A prewarmed connection is kept until the operation it was
            // opened for (which then keeps it `reuse_seconds`, as usual).
            let keep = pin.map_or(ssh.reuse, |p| p.max(ssh.reuse));
            if keep.is_zero() || self.inner.closing() || slot.retired.load(Ordering::SeqCst) {
                close(conn);
            } else {
                *idle = Some(Idle {
                    conn,
                    key,
                    since: Instant::now(),
                    keep,
                });
            }
        }
        result
    }
}

impl fmt::Debug for SshDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let aps = self.inner.slots.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("SshDriver").field("aps", &aps).finish_non_exhaustive()
    }
}

impl Inner {
    fn closing(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || self.shutdown.is_cancelled()
    }

    /// The AP's slot, created on first use. The map is only held for
    /// lookups, never across an await, and nothing panics while holding it,
    /// so a poisoned lock still guards a consistent map.
    fn slot(&self, id: &ApId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(id.clone()).or_default())
    }

    fn all_slots(&self) -> Vec<(ApId, Arc<Slot>)> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.iter().map(|(id, s)| (id.clone(), Arc::clone(s))).collect()
    }

    /// Spawns the reaper once, from within the runtime of the first operation.
    fn start_reaper(self: &Arc<Self>) {
        if self.reaper_started.swap(true, Ordering::SeqCst) || self.shutdown.is_cancelled() {
            return;
        }
        tokio::spawn(reap(Arc::downgrade(self), self.shutdown.clone()));
    }

    /// Closes idle connections: all of them, or those past their reuse time.
    /// A slot in use is skipped: its operation decides when it ends.
    async fn close_idle(&self, all: bool) {
        let mut closing = Vec::new();
        for (_, slot) in self.all_slots() {
            let Ok(mut idle) = slot.idle.try_lock() else {
                continue;
            };
            if idle.as_ref().is_some_and(|i| all || i.since.elapsed() >= i.keep)
                && let Some(i) = idle.take()
            {
                closing.push(close(i.conn));
            }
        }
        for handle in closing {
            let _ = handle.await;
        }
    }
}

/// Closes idle connections past their reuse time; at shutdown, all of them.
/// Holds the driver weakly, so that dropping the driver ends it too.
async fn reap(inner: Weak<Inner>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let all = tokio::select! {
            () = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.close_idle(all).await;
        if all {
            return;
        }
    }
}

/// One operation on one AP, holding that AP's lock.
struct Op<'a> {
    ssh: &'a SshAp,
    /// "switching off over ssh root@10.0.0.1:22", for errors.
    doing: String,
    conn: Option<Conn>,
    /// Radios discovered earlier on this AP, or by this operation.
    radios: Option<Vec<String>>,
    /// The AP's lease, armed with every "on" and by renewals.
    lease: Option<Duration>,
}

impl Op<'_> {
    async fn connect(&self) -> Result<Conn, DriverError> {
        let ssh = self.ssh.clone();
        let doing = self.doing.clone();
        let task = tokio::task::spawn_blocking(move || Conn::open(&ssh, &doing));
        match tokio::time::timeout(self.ssh.connect_timeout + OUTER_GRACE, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(DriverError::Setup(format!(
                "the SSH worker failed ({e}) while {}",
                self.doing
            ))),
            Err(_) => Err(DriverError::Timeout {
                seconds: self.ssh.connect_timeout.as_secs(),
                doing: format!("{} (connecting)", self.doing),
            }),
        }
    }

    /// Runs one command, on the kept connection if there is one. When the
    /// command cannot even start on a reused connection, the connection is
    /// dropped and the command retried once on a new one.
    async fn exec(&mut self, command: &str) -> Result<Output, DriverError> {
        loop {
            let conn = match self.conn.take() {
                Some(conn) => conn,
                None => self.connect().await?,
            };
            let reused = conn.reused;
            let start_limit = self.ssh.connect_timeout;
            let run_limit = self.ssh.command_timeout;
            let command_owned = command.to_owned();
            let doing = self.doing.clone();
            let task = tokio::task::spawn_blocking(move || {
                let mut conn = conn;
                match conn.exec(&command_owned, start_limit, run_limit, &doing) {
                    Ok(out) => (Some(conn), Ok(out)),
                    // A connection that failed is dropped here, off the runtime.
                    Err(e) => (None, Err(e)),
                }
            });
            let outer = start_limit + run_limit + OUTER_GRACE;
            let (conn, result) = match tokio::time::timeout(outer, task).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => {
                    return Err(DriverError::Setup(format!(
                        "the SSH worker failed ({e}) while {}",
                        self.doing
                    )));
                }
                Err(_) => {
                    return Err(DriverError::Timeout {
                        seconds: run_limit.as_secs(),
                        doing: self.doing.clone(),
                    });
                }
            };
            self.conn = conn;
            match result {
                Ok(out) => return Ok(out),
                Err(ExecError::NotStarted(why)) if reused => {
                    tracing::debug!(doing = %self.doing, %why, "kept ssh connection is gone; opening a new one");
                }
                Err(ExecError::NotStarted(why)) => {
                    return Err(DriverError::Unreachable(format!("{why} while {}", self.doing)));
                }
                Err(ExecError::Failed(e)) => return Err(e),
            }
        }
    }

    /// Runs a command that changes something: any exit status but 0, or
    /// anything on stderr, is a failure.
    async fn exec_switch(&mut self, command: &str) -> Result<Output, DriverError> {
        let out = self.exec(command).await?;
        if out.status != 0 || !out.stderr.trim().is_empty() {
            return Err(DriverError::CommandFailed {
                status: out.status,
                stderr: stderr_for_error(&out.stderr),
                doing: self.doing.clone(),
            });
        }
        Ok(out)
    }

    /// The radios to switch: configured, or discovered once on the AP.
    async fn radios(&mut self) -> Result<Vec<String>, DriverError> {
        if let SshPreset::OpenWrt { radios } = &self.ssh.preset
            && !radios.is_empty()
        {
            return Ok(radios.clone());
        }
        if self.radios.is_none() {
            let out = self.exec_switch(OPENWRT_DISCOVER).await?;
            self.radios = Some(parse_uci_radios(&out.stdout)?);
        }
        Ok(self.radios.clone().unwrap_or_default())
    }

    async fn apply(&mut self, wifi: Wifi) -> Result<Observation, DriverError> {
        match &self.ssh.preset {
            SshPreset::OpenWrt { .. } => {
                let radios = self.radios().await?;
                let command = match (wifi, self.lease) {
                    (Wifi::On, Some(lease)) => openwrt_on_with_lease(&radios, lease)?,
                    _ => openwrt_switch(&radios, wifi)?,
                };
                self.exec_switch(&command).await?;
            }
            SshPreset::Custom(cmds) => {
                let command = match wifi {
                    Wifi::On => &cmds.on_command,
                    Wifi::Off => &cmds.off_command,
                };
                self.exec_switch(command).await?;
                if let (Wifi::On, Some(lease), Some(template)) = (wifi, self.lease, &cmds.lease_command) {
                    self.exec_switch(&custom_lease(template, lease)).await?;
                }
            }
        }
        let deadline = Instant::now() + SETTLE_LIMIT.min(self.ssh.command_timeout);
        loop {
            let seen = self.observe(Reading::StateOnly).await?;
            if seen.wifi.is(wifi) || Instant::now() + SETTLE_POLL >= deadline {
                return Ok(seen);
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    /// What a switch will need: the connection (kept by the caller), the
    /// radios when they are not configured, and the state now.
    async fn prewarm(&mut self) -> Result<Observation, DriverError> {
        if let SshPreset::OpenWrt { radios } = &self.ssh.preset
            && radios.is_empty()
            && self.radios.is_none()
        {
            let out = self.exec_switch(OPENWRT_DISCOVER).await?;
            self.radios = Some(parse_uci_radios(&out.stdout)?);
        }
        self.observe(Reading::Full).await
    }

    /// Re-arms the lease (nothing is switched), then reads the state.
    async fn renew(&mut self) -> Result<Observation, DriverError> {
        if let Some(lease) = self.lease {
            match &self.ssh.preset {
                SshPreset::OpenWrt { .. } => {
                    let radios = self.radios().await?;
                    self.exec_switch(&openwrt_arm(&radios, lease)?).await?;
                }
                SshPreset::Custom(cmds) => {
                    if let Some(template) = &cmds.lease_command {
                        self.exec_switch(&custom_lease(template, lease)).await?;
                    }
                }
            }
        }
        self.observe(Reading::Full).await
    }

    async fn observe(&mut self, reading: Reading) -> Result<Observation, DriverError> {
        let seen = self.read(reading).await?;
        Ok(match (reading, &self.ssh.preset) {
            // OpenWrt: radios off have no client; after switching on, the
            // count is not known until the next full read. A custom preset
            // runs its own clients_command either way.
            (Reading::StateOnly, SshPreset::OpenWrt { .. }) => Observation {
                clients: seen.wifi.is(Wifi::Off).then_some(0),
                ..seen
            },
            _ => seen,
        })
    }

    async fn read(&mut self, reading: Reading) -> Result<Observation, DriverError> {
        match &self.ssh.preset {
            SshPreset::OpenWrt { radios } => {
                let command = match reading {
                    Reading::Full => OPENWRT_OBSERVE,
                    Reading::StateOnly => OPENWRT_STATE,
                };
                let out = self.exec(command).await?;
                if out.status != 0 {
                    return Err(DriverError::CommandFailed {
                        status: out.status,
                        stderr: stderr_for_error(&out.stderr),
                        doing: self.doing.clone(),
                    });
                }
                parse_openwrt_observe(&out.stdout, radios)
            }
            SshPreset::Custom(cmds) => {
                let out = self.exec(&cmds.status_command).await?;
                if out.status < 0 {
                    // Killed by a signal: that says nothing about the radios.
                    return Err(DriverError::CommandFailed {
                        status: out.status,
                        stderr: stderr_for_error(&out.stderr),
                        doing: self.doing.clone(),
                    });
                }
                let wifi = custom_state(cmds, out.status, &out.stdout, &out.stderr)?;
                let clients = match &cmds.clients_command {
                    None => None,
                    Some(command) => {
                        let out = self.exec(command).await?;
                        // A printed number wins over the exit status:
                        // `grep -c` prints 0 and exits 1 when it counts nothing.
                        let count = parse_clients(&out.stdout).map_err(|e| {
                            if out.status == 0 {
                                e
                            } else {
                                DriverError::CommandFailed {
                                    status: out.status,
                                    stderr: stderr_for_error(&out.stderr),
                                    doing: self.doing.clone(),
                                }
                            }
                        });
                        // The state was read; a client count is only informative.
                        count
                            .inspect_err(|e| tracing::warn!(doing = %self.doing, error = %e, "clients_command failed"))
                            .ok()
                    }
                };
                Ok(Observation::read(wifi, clients))
            }
        }
    }
}

#[async_trait]
impl Driver for SshDriver {
    async fn apply(&self, ap: &AccessPoint, wifi: Wifi) -> Result<Observation, DriverError> {
        self.run(ap, Task::Apply(wifi), None).await
    }

    async fn observe(&self, ap: &AccessPoint) -> Result<Observation, DriverError> {
        self.run(ap, Task::Observe, None).await
    }

    /// Opens (or refreshes) the AP's connection with a full read, which also
    /// learns its radios, and keeps it `keep` even past `reuse_seconds`.
    async fn prewarm(&self, ap: &AccessPoint, keep: Duration) -> Result<Option<Observation>, DriverError> {
        self.run(ap, Task::Prewarm, Some(keep)).await.map(Some)
    }

    /// A read with libssh2's own limits cut to `limit`, so that the blocking
    /// threads end with the probe (connect, then one command: twice `limit`
    /// at most) instead of running on to the full timeouts.
    async fn probe(&self, ap: &AccessPoint, limit: Duration) -> Result<Observation, DriverError> {
        let mut ap = ap.clone();
        if let DriverConfig::Ssh(ssh) = &mut ap.driver {
            ssh.connect_timeout = ssh.connect_timeout.min(limit);
            ssh.command_timeout = ssh.command_timeout.min(limit);
        }
        self.run(&ap, Task::Observe, None).await
    }

    async fn renew(&self, ap: &AccessPoint) -> Result<Observation, DriverError> {
        self.run(ap, Task::Renew, None).await
    }

    /// Forgets APs that left or stopped using SSH, and closes idle
    /// connections opened with settings that changed (an operation in
    /// progress notices the change at its next use).
    async fn reconfigure(&self, config: &Arc<Config>) {
        let mut closing = Vec::new();
        for (id, slot) in self.inner.all_slots() {
            let still = match config.access_point(id.as_str()).map(|ap| &ap.driver) {
                Some(DriverConfig::Ssh(ssh)) => Some(conn_key(ssh)),
                _ => None,
            };
            if still.is_none() {
                slot.retired.store(true, Ordering::SeqCst);
                let mut slots = self.inner.slots.lock().unwrap_or_else(PoisonError::into_inner);
                slots.remove(&id);
            }
            let Ok(mut idle) = slot.idle.try_lock() else {
                continue;
            };
            if idle.as_ref().is_some_and(|i| still.as_ref() != Some(&i.key))
                && let Some(i) = idle.take()
            {
                closing.push(close(i.conn));
            }
        }
        for handle in closing {
            let _ = handle.await;
        }
    }

    async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.close_idle(true).await;
    }
}
