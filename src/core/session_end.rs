//! How a teacher session ends, and the audit row every end leaves
//! (`session.end`), so that a city can count how sessions end and why.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::ClassroomId;
use crate::policy::Session;
use crate::store::AuditRecord;

/// Why a teacher session ended: the first word of the audit row's `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Its time ran out.
    Expired,
    /// The teacher switched the other way (or back to the schedule).
    Teacher,
    /// Nobody was using the Wi-Fi.
    Idle,
    /// The schedule locked the classroom.
    Locked,
    /// Its time ran out while an IT override held the classroom. (A
    /// session outlives an override set over it: it holds again if the
    /// override is lifted before the session's end.)
    Override,
    /// The clock moved so that the session no longer holds.
    Clock,
    /// A reload removed the classroom or changed its schedule.
    Reload,
}

impl SessionEnd {
    /// As the audit log spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::Expired => "expired",
            SessionEnd::Teacher => "teacher",
            SessionEnd::Idle => "idle",
            SessionEnd::Locked => "locked",
            SessionEnd::Override => "override",
            SessionEnd::Clock => "clock",
            SessionEnd::Reload => "reload",
        }
    }
}

/// The `session.end` audit row of `session` in `classroom`, ended at `at`
/// for `reason`; `why` is the sentence after the reason. The actor is
/// borne itself: the request that ended a session has its own row, and a
/// user's rows stay the requests they made.
pub fn session_end_record(
    at: DateTime<Utc>,
    classroom: &ClassroomId,
    tz: Tz,
    session: &Session,
    reason: SessionEnd,
    why: &str,
) -> AuditRecord {
    let until = session.until.with_timezone(&tz).format("%Y-%m-%d %H:%M");
    AuditRecord {
        at,
        actor: "borne".to_owned(),
        role: None,
        classroom: Some(classroom.to_string()),
        access_point: None,
        action: "session.end".into(),
        detail: format!(
            "{}: {why} (session {} by {}, planned until {until})",
            reason.as_str(),
            session.wifi,
            session.by
        ),
        result: "ok".into(),
        source: None,
        via: None,
    }
}
