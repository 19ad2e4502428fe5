//! `LISTEN borne_changes`: what other instances committed, as [`Change`]s
//! for the daemon to reload from the store.
//!
//! The store sends, in the transaction of each commit that changes
//! sessions, overrides or observed states, `{"instance", "classrooms":
//! [...], "aps": [...]}` (or `{"instance", "all": true}` when the list is
//! too long for a notification). This instance's own are skipped. After
//! every (re)connection the listener asks for everything to be reloaded:
//! notifications sent while it was not listening are lost.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::session::Connect;
use crate::config::{ApId, ClassroomId};

/// The channel.
pub const CHANNEL: &str = "borne_changes";

/// What to reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Everything (after a reconnection, or a large commit).
    All,
    /// These classrooms' sessions and overrides, these APs' observed states.
    Some {
        /// Classrooms.
        classrooms: BTreeSet<ClassroomId>,
        /// Access points.
        aps: BTreeSet<ApId>,
    },
}

impl Change {
    /// Merges `other` into `self`.
    pub fn merge(&mut self, other: Change) {
        match (self, other) {
            (Change::All, _) => {}
            (me @ Change::Some { .. }, Change::All) => *me = Change::All,
            (
                Change::Some { classrooms, aps },
                Change::Some {
                    classrooms: c2,
                    aps: a2,
                },
            ) => {
                classrooms.extend(c2);
                aps.extend(a2);
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Payload {
    instance: String,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    classrooms: Vec<String>,
    #[serde(default)]
    aps: Vec<String>,
}

/// Parses a notification; `None` for this instance's own (or nonsense,
/// which is logged).
pub fn parse(payload: &str, self_id: &str) -> Option<Change> {
    let p: Payload = match serde_json::from_str(payload) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring a malformed change notification; reloading everything");
            return Some(Change::All);
        }
    };
    if p.instance == self_id {
        return None;
    }
    if p.all {
        return Some(Change::All);
    }
    Some(Change::Some {
        classrooms: p.classrooms.iter().map(|c| ClassroomId::from(c.as_str())).collect(),
        aps: p.aps.iter().map(|a| ApId::from(a.as_str())).collect(),
    })
}

/// Listens until `shutdown`, reconnecting; sends what to reload.
pub async fn run(
    connect: Connect,
    self_id: String,
    changes: mpsc::UnboundedSender<Change>,
    shutdown: CancellationToken,
) {
    let mut failed_before = false;
    loop {
        let opened = tokio::time::timeout(Duration::from_secs(5), (connect)()).await;
        let mut session = match opened {
            Ok(Ok(s)) => s,
            other => {
                let why = match other {
                    Ok(Err(e)) => e,
                    _ => "no answer within 5 s".into(),
                };
                if !failed_before {
                    tracing::warn!(error = %why, "cannot listen for other instances' changes; retrying every second");
                    failed_before = true;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let listened = tokio::time::timeout(
            Duration::from_secs(5),
            session.client.batch_execute(&format!("LISTEN {CHANNEL}")),
        )
        .await;
        if !matches!(listened, Ok(Ok(()))) {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => continue,
            }
        }
        if failed_before {
            tracing::info!("listening for other instances' changes again");
            failed_before = false;
        }
        // What was committed while not listening is unknown: all of it.
        if changes.send(Change::All).is_err() {
            return;
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                why = &mut session.closed => {
                    tracing::warn!(error = %why.unwrap_or_default(), "lost the change notifications' connection; reconnecting");
                    failed_before = true;
                    break;
                }
                notice = session.notices.recv() => {
                    let Some(n) = notice else { break };
                    if n.channel != CHANNEL {
                        continue;
                    }
                    if let Some(change) = parse(&n.payload, &self_id)
                        && changes.send(change).is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_notifications_are_skipped() {
        assert_eq!(parse(r#"{"instance":"a","classrooms":["c1"],"aps":[]}"#, "a"), None);
    }

    #[test]
    fn lists_and_all() {
        let c = parse(r#"{"instance":"b","classrooms":["c1"],"aps":["ap-1"]}"#, "a").unwrap();
        let Change::Some { classrooms, aps } = &c else {
            panic!("{c:?}")
        };
        assert!(classrooms.contains("c1"));
        assert!(aps.contains("ap-1"));
        assert_eq!(parse(r#"{"instance":"b","all":true}"#, "a"), Some(Change::All));
        assert_eq!(parse("not json", "a"), Some(Change::All));
    }

    #[test]
    fn merging() {
        let mut c = parse(r#"{"instance":"b","classrooms":["c1"]}"#, "a").unwrap();
        c.merge(parse(r#"{"instance":"b","classrooms":["c2"],"aps":["x"]}"#, "a").unwrap());
        let Change::Some { classrooms, aps } = &c else { panic!() };
        assert_eq!(classrooms.len(), 2);
        assert_eq!(aps.len(), 1);
        c.merge(Change::All);
        assert_eq!(c, Change::All);
    }
}
