//! Drivers: the boundary between the reconciler and the access points.
//!
//! The reconciler decides *what* each AP must be; a [`Driver`] makes it so
//! and says what it sees. One driver value serves every AP of its kind
//! (`ssh`, `mqtt`, `sim`): the SSH driver keeps a connection per AP, the
//! MQTT driver one broker connection for all. A driver never decides
//! anything: it applies, observes, and reports what devices say on their own
//! (MQTT state and availability messages) through a [`ReportSink`].

pub mod mqtt;
pub mod sim;
pub mod ssh;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{AccessPoint, ApId, Config};
use crate::domain::Wifi;
pub use crate::domain::{Observation, ObservedWifi};

/// Why a driver operation failed. The message reaches the AP's `last_error`,
/// so it says what was being done and never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The operation did not finish in time.
    #[error("timed out after {seconds} s while {doing}")]
    Timeout {
        /// Limit.
        seconds: u64,
        /// What was being done.
        doing: String,
    },
    /// The AP could not be reached.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The AP's host key is unknown or changed: the AP is not switched.
    #[error("host key rejected: {0}")]
    HostKey(String),
    /// Authentication failed.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    /// A command failed on the AP.
    #[error("command failed (exit {status}) while {doing}: {stderr}")]
    CommandFailed {
        /// Exit status.
        status: i32,
        /// What it printed on stderr, trimmed.
        stderr: String,
        /// What was being done, e.g. "switching off over ssh root@10.20.1.41:22".
        doing: String,
    },
    /// The device answered something that makes no sense.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The driver cannot serve this AP (configuration or setup problem).
    #[error("{0}")]
    Setup(String),
    /// This instance may not drive access points now (it is not, or no
    /// longer surely, the leader): nothing was sent.
    #[error("{0}")]
    Fenced(String),
}

/// Something a device said on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// It reported its state.
    State(ObservedWifi),
    /// It came online (`true`) or went offline (`false`).
    Available(bool),
    /// Its state must be presumed lost (e.g. after a broker reconnection):
    /// the reconciler re-sends the desired state.
    Lost,
}

/// Where drivers send what devices report; the reconciler holds the
/// receiving end and lives as long as the daemon.
pub type ReportSink = tokio::sync::mpsc::Sender<(ApId, Report)>;

/// Switches access points of one kind.
#[async_trait]
pub trait Driver: Send + Sync {
    /// Makes the AP's Wi-Fi `wifi` and returns what it then observes.
    ///
    /// # Errors
    /// A [`DriverError`] saying what failed; the reconciler retries with backoff.
    async fn apply(&self, ap: &AccessPoint, wifi: Wifi) -> Result<Observation, DriverError>;

    /// Reads the AP's current state.
    ///
    /// # Errors
    /// A [`DriverError`] saying what failed.
    async fn observe(&self, ap: &AccessPoint) -> Result<Observation, DriverError>;

    /// Checks within `limit` whether an AP that stopped answering is back,
    /// and reads its state if so. The reconciler probes unreachable APs this
    /// way, apart from the operations of healthy ones, so a probe must end
    /// about `limit` and hold nothing long after it. By default an
    /// [`observe`] abandoned at `limit`.
    ///
    /// [`observe`]: Driver::observe
    ///
    /// # Errors
    /// A [`DriverError`]: still unreachable, or [`DriverError::Timeout`] at `limit`.
    async fn probe(&self, ap: &AccessPoint, limit: Duration) -> Result<Observation, DriverError> {
        match tokio::time::timeout(limit, self.observe(ap)).await {
            Ok(result) => result,
            Err(_) => Err(DriverError::Timeout {
                seconds: limit.as_secs(),
                doing: format!("probing {}, unreachable since its last failures", ap.id),
            }),
        }
    }

    /// Gets ready to switch the AP soon (a scheduled change in a few
    /// seconds): opens or refreshes what an operation needs and keeps it for
    /// `keep`, or until the next operation, whichever comes first. Returns
    /// what it read on the way, if anything. By default nothing: drivers
    /// without a per-AP connection have nothing to warm.
    ///
    /// # Errors
    /// A [`DriverError`] saying what failed; the change then runs cold.
    async fn prewarm(&self, _ap: &AccessPoint, _keep: Duration) -> Result<Option<Observation>, DriverError> {
        Ok(None)
    }

    /// Re-arms the off-timer on the device of an AP that is on
    /// ([`AccessPoint::lease`]), so that it stays on for another lease.
    /// Switches nothing off, and does not cancel anything: "off" needs no
    /// lease. The default switches on again, which re-arms the lease of
    /// drivers whose "on" carries it.
    ///
    /// # Errors
    /// A [`DriverError`] saying what failed; the reconciler retries.
    async fn renew(&self, ap: &AccessPoint) -> Result<Observation, DriverError> {
        self.apply(ap, Wifi::On).await
    }

    /// Takes a new configuration (after a reload): drop what belongs to APs
    /// that left, pick up new topics or hosts.
    async fn reconfigure(&self, _config: &Arc<Config>) {}

    /// Closes connections at shutdown.
    async fn shutdown(&self) {}
}

impl fmt::Debug for dyn Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Driver")
    }
}
