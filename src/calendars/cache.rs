//! Where a URL calendar's last good copy and its fetch status live in
//! `state_dir`, and how they are read and written. The configuration loader
//! reads them (no network); the daemon's refresh task and
//! `borne check --fetch` write them.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The outcome of the latest fetch of a URL calendar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchStatus {
    /// When the copy in the cache was fetched (the last success).
    pub fetched_at: Option<DateTime<Utc>>,
    /// When a fetch was last tried.
    pub attempted_at: Option<DateTime<Utc>>,
    /// Why the last try failed; `None` after a success.
    pub error: Option<String>,
}

/// `state_dir/calendars/NAME.ics`: the last good copy of calendar `name`.
pub fn copy_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("calendars").join(format!("{name}.ics"))
}

/// `state_dir/calendars/NAME.status.json`: its [`FetchStatus`].
pub fn status_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("calendars").join(format!("{name}.status.json"))
}

/// The fetch status of calendar `name`; the default when never fetched or
/// unreadable (a damaged status file only loses the timestamps).
pub fn read_status(state_dir: &Path, name: &str) -> FetchStatus {
    std::fs::read(status_path(state_dir, name))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that
/// a crash or a full disk never leaves half a file where the last good copy
/// was.
///
/// # Errors
/// The directory cannot be created, or the file cannot be written or renamed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Records a fetch outcome.
///
/// # Errors
/// As [`write_atomically`].
pub fn write_status(state_dir: &Path, name: &str, status: &FetchStatus) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    write_atomically(&status_path(state_dir, name), &json)
}
