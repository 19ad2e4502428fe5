//! Adopts what other instances committed: the changes `LISTEN` reports are
//! merged while one reload runs, so a burst of notifications costs a few
//! reloads, not one each; a reload that fails is retried every second
//! (the database is down: reads serve what memory holds meanwhile).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{ApId, ClassroomId};
use crate::core::{Core, RemoteSource};
use crate::ha::Change;
use crate::store::postgres::PostgresStore;
use crate::store::{ObservedRecord, Snapshot, Store, StoreError};

/// The shared store, as the core's source of other instances' changes.
pub(super) struct Shared(pub(super) PostgresStore);

impl RemoteSource for Shared {
    fn all(&self) -> Result<Snapshot, StoreError> {
        self.0.load()
    }

    fn classrooms(&self, ids: &[ClassroomId]) -> Result<Snapshot, StoreError> {
        self.0.load_classrooms(ids)
    }

    fn observed(&self, ids: &[ApId]) -> Result<Vec<(ApId, ObservedRecord)>, StoreError> {
        self.0.load_observed(ids)
    }
}

/// Runs until `shutdown` or the listener is gone.
pub(super) async fn run(
    core: Arc<Core>,
    source: Arc<dyn RemoteSource>,
    mut changes: mpsc::UnboundedReceiver<Change>,
    shutdown: CancellationToken,
) {
    let mut pending: Option<Change> = None;
    loop {
        if pending.is_none() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                c = changes.recv() => match c {
                    Some(c) => pending = Some(c),
                    None => return,
                },
            }
        }
        while let Ok(c) = changes.try_recv() {
            match &mut pending {
                Some(p) => p.merge(c),
                None => pending = Some(c),
            }
        }
        let Some(change) = pending.take() else { continue };
        if let Err(e) = core.adopt(change.clone(), source.clone()).await {
            tracing::warn!(error = %e, "cannot reload another instance's changes; retrying in 1 s");
            pending = Some(change);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}
