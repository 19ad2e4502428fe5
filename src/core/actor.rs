//! Who asks: what they may see, and the audit row their request leaves.

use chrono::{DateTime, Utc};

use super::RequestError;
use crate::config::{Classroom, ClassroomId, Config, User};
use crate::store::AuditRecord;

/// Who asks, from where: what the audit log records.
#[derive(Debug, Clone)]
pub struct Actor<'a> {
    /// The authenticated user.
    pub user: &'a User,
    /// The client's address.
    pub source: Option<String>,
    /// How the user signed in: `token` or `oidc`.
    pub via: &'static str,
}

pub(super) fn visible<'c>(config: &'c Config, user: &User, id: &str) -> Result<&'c Classroom, RequestError> {
    config
        .classroom(id)
        .filter(|c| user.can_see(&c.id))
        .ok_or_else(|| RequestError::NotFound(format!("no classroom \"{id}\" visible to you")))
}

pub(super) fn audit(
    actor: &Actor<'_>,
    at: DateTime<Utc>,
    classroom: Option<&ClassroomId>,
    action: &str,
    detail: String,
    result: String,
) -> AuditRecord {
    AuditRecord {
        at,
        actor: actor.user.name.clone(),
        role: Some(actor.user.role.as_str().to_owned()),
        classroom: classroom.map(|c| c.to_string()),
        access_point: None,
        action: action.to_owned(),
        detail,
        result,
        source: actor.source.clone(),
        via: Some(actor.via.to_owned()),
    }
}
