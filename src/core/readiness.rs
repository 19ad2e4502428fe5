//! `/readyz`'s question to the core: does the database still take a write?

use std::time::{Duration, Instant};

use super::Core;
use crate::store::{Batch, StoreError};

/// A heartbeat is written at most this often; probes in between get the
/// last answer.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// The last heartbeat's time and outcome.
pub(super) type LastHeartbeat = Option<(Instant, Result<(), StoreError>)>;

impl Core {
    /// Writes a heartbeat row (at most once a second) and says whether it
    /// was committed: a full or read-only disk, or a locked database, makes
    /// the daemon not ready.
    ///
    /// # Errors
    /// The heartbeat could not be committed.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        // Held across the write: probes arriving meanwhile share its answer.
        let mut last = self.heartbeat.lock().await;
        if let Some((at, result)) = &*last
            && at.elapsed() < HEARTBEAT_EVERY
        {
            return result.clone();
        }
        let batch = Batch {
            heartbeat: Some(self.now()),
            ..Batch::default()
        };
        let result = self.writer.commit(batch).await;
        *last = Some((Instant::now(), result.clone()));
        result
    }
}
