//! `GET /api/v1/audit`: the audit log, newest first, filtered and paged with
//! a cursor; JSON or CSV. Admins and viewers (the steering committee's
//! role) read every row; a teacher reads the rows of their classrooms.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use super::AppState;
use super::auth::Auth;
use super::classrooms::check_id;
use super::csv::{self, Sep};
use super::error::ApiError;
use crate::store::{AuditEntry, AuditQuery, SchoolFilter};

/// Rows per JSON page when `limit` is absent.
const DEFAULT_LIMIT: usize = 100;
/// Largest JSON page.
const MAX_LIMIT: usize = 1000;
/// Largest CSV export (one request); beyond it `X-Next-Cursor` says where to go on.
const MAX_CSV: usize = 100_000;

/// A page of the audit log.
#[derive(Serialize)]
pub struct AuditPage {
    entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<i64>,
}

#[derive(Default)]
struct Params {
    classroom: Option<String>,
    user: Option<String>,
    since: Option<DateTime<FixedOffset>>,
    until: Option<DateTime<FixedOffset>>,
    limit: Option<usize>,
    cursor: Option<i64>,
    actions: Vec<String>,
    school: Option<String>,
    result: Option<String>,
    ap: Option<String>,
    format: Option<String>,
    sep: Option<String>,
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest("bad_query", message)
}

fn once(slot: &mut Option<String>, key: &str, value: String) -> Result<(), ApiError> {
    if slot.replace(value).is_some() {
        return Err(bad(format!("{key} may be given once")));
    }
    Ok(())
}

fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
    let mut p = Params::default();
    let text = |k: &str, v: &str| -> Result<String, ApiError> {
        if v.is_empty() || v.chars().count() > 200 {
            return Err(bad(format!("{k} is 1 to 200 characters")));
        }
        Ok(v.to_owned())
    };
    let time = |k: &str, v: &str| {
        DateTime::parse_from_rfc3339(v).map_err(|_| bad(format!("{k} is an RFC 3339 time, not \"{v}\"")))
    };
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let (k, v) = (k.as_ref(), v.as_ref());
        match k {
            "action" => p.actions.push(text(k, v)?),
            "classroom" => once(&mut p.classroom, k, text(k, v)?)?,
            "user" => once(&mut p.user, k, text(k, v)?)?,
            "school" => once(&mut p.school, k, text(k, v)?)?,
            "result" => once(&mut p.result, k, text(k, v)?)?,
            "ap" => once(&mut p.ap, k, text(k, v)?)?,
            "format" => once(&mut p.format, k, v.to_owned())?,
            "sep" => once(&mut p.sep, k, v.to_owned())?,
            "since" => p.since = Some(time(k, v)?),
            "until" => p.until = Some(time(k, v)?),
            "limit" => p.limit = Some(v.parse().map_err(|_| bad(format!("limit is a number, not \"{v}\"")))?),
            "cursor" => p.cursor = Some(v.parse().map_err(|_| bad(format!("cursor is a number, not \"{v}\"")))?),
            other => {
                return Err(bad(format!(
                    "unknown parameter \"{other}\" (known: action, classroom, school, ap, user, result, since, until, limit, cursor, format, sep)"
                )));
            }
        }
    }
    for id in [&p.classroom, &p.school, &p.ap].into_iter().flatten() {
        check_id(id)?;
    }
    Ok(p)
}

/// `GET /api/v1/audit`.
pub async fn audit(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = parse(raw.as_deref())?;
    let csv = csv::wants_csv(p.format.as_deref(), &headers)?;
    let sep = Sep::parse(p.sep.as_deref())?;
    let limit = match (p.limit, csv) {
        (Some(l), false) if !(1..=MAX_LIMIT).contains(&l) => {
            return Err(bad(format!("limit is between 1 and {MAX_LIMIT}")));
        }
        (Some(l), true) if !(1..=MAX_CSV).contains(&l) => {
            return Err(bad(format!("limit is between 1 and {MAX_CSV} for CSV")));
        }
        (Some(l), _) => l,
        (None, false) => DEFAULT_LIMIT,
        (None, true) => MAX_CSV,
    };
    let config = state.core.config();
    let school = match &p.school {
        Some(id) => {
            let s = config
                .school(id)
                .filter(|s| s.classrooms.iter().any(|c| auth.user.can_see(c)))
                .ok_or_else(|| ApiError::NotFound(format!("no school \"{id}\" visible to you")))?;
            Some(SchoolFilter {
                id: id.clone(),
                classrooms: s.classrooms.iter().map(|c| c.to_string()).collect(),
            })
        }
        None => None,
    };
    let q = AuditQuery {
        classroom: p.classroom,
        actor: p.user,
        since: p.since.map(|t| t.with_timezone(&Utc)),
        until: p.until.map(|t| t.with_timezone(&Utc)),
        before_id: p.cursor,
        scope: auth
            .user
            .scope
            .as_ref()
            .map(|s| s.iter().map(|c| c.to_string()).collect()),
        actions: p.actions,
        result: p.result,
        access_point: p.ap,
        school,
        limit,
    };
    let entries = state
        .core
        .writer()
        .audit(q)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the audit log cannot be read: {e}")))?;
    // Ids only grow: a cursor names a fixed place, so rows added while
    // someone pages never shift or repeat what the next page shows.
    let next_cursor = (entries.len() == limit).then(|| entries.last().map(|e| e.id)).flatten();
    if !csv {
        return Ok(Json(AuditPage { entries, next_cursor }).into_response());
    }
    let mut w = csv::Writer::new(
        sep,
        &[
            "id",
            "at",
            "actor",
            "role",
            "classroom",
            "access_point",
            "action",
            "detail",
            "result",
            "source",
            "via",
        ],
    );
    for e in &entries {
        let r = &e.record;
        let id = e.id.to_string();
        let at = r.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        w.row([
            id.as_str(),
            at.as_str(),
            r.actor.as_str(),
            r.role.as_deref().unwrap_or(""),
            r.classroom.as_deref().unwrap_or(""),
            r.access_point.as_deref().unwrap_or(""),
            r.action.as_str(),
            r.detail.as_str(),
            r.result.as_str(),
            r.source.as_deref().unwrap_or(""),
            r.via.as_deref().unwrap_or(""),
        ]);
    }
    let mut response = w.into_response("borne-audit.csv");
    if let Some(c) = next_cursor
        && let Ok(v) = HeaderValue::from_str(&c.to_string())
    {
        response.headers_mut().insert("x-next-cursor", v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_actions_and_unknown_keys() {
        let p = parse(Some("action=override.&action=teacher.on&result=refused&ap=ap-1")).unwrap();
        assert_eq!(p.actions, ["override.", "teacher.on"]);
        assert_eq!(p.result.as_deref(), Some("refused"));
        assert!(parse(Some("school=a&school=b")).is_err());
        assert!(parse(Some("colour=red")).is_err());
        assert!(parse(Some("ap=Bad_Id")).is_err());
        assert!(parse(Some("since=yesterday")).is_err());
        assert!(parse(Some("action=")).is_err());
    }
}
