//! IT overrides (one classroom, a school, the city).

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Auth;
use super::classrooms::check_id;
use super::error::{ApiError, ApiJson, ApiPath};
use crate::config::SchoolId;
use crate::core::{Actor, OverrideRequest, Scope, Status};
use crate::policy::Wifi;

/// Body of `PUT /api/v1/classrooms/{id}/override`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    wifi: Wifi,
    #[serde(default)]
    from: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    until: Option<DateTime<FixedOffset>>,
    reason: String,
}

/// The core's request from what was sent, after the checks on free input
/// (see [`super::input`]).
fn request(
    state: &AppState,
    wifi: Wifi,
    from: Option<DateTime<FixedOffset>>,
    until: Option<DateTime<FixedOffset>>,
    reason: &str,
) -> Result<OverrideRequest, ApiError> {
    let max = state.core.config().limits.override_max;
    let now = state.core.now();
    let until = until
        .map(|u| super::input::until(u.with_timezone(&Utc), now, max))
        .transpose()?;
    let from = from.map(|f| f.with_timezone(&Utc));
    if let (Some(f), Some(u)) = (from, until)
        && f >= u
    {
        return Err(ApiError::BadRequest(
            "bad_from",
            format!(
                "from ({}) must be before until ({})",
                f.to_rfc3339_opts(SecondsFormat::Secs, true),
                u.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        ));
    }
    if let Some(f) = from
        && Duration::from_std(max)
            .ok()
            .and_then(|m| now.checked_add_signed(m))
            .is_none_or(|latest| f > latest)
    {
        return Err(ApiError::Unprocessable(format!(
            "from is more than {} days ahead (limits.override_max_days)",
            max.as_secs() / 86_400
        )));
    }
    super::input::reason(reason)?;
    Ok(OverrideRequest {
        wifi,
        from,
        until,
        reason: reason.trim().to_owned(),
    })
}

fn actor(auth: &Auth) -> Actor<'_> {
    Actor {
        user: &auth.user,
        source: Some(auth.source.to_string()),
        via: auth.via,
    }
}

/// `PUT /api/v1/classrooms/{id}/override` (admin).
pub async fn put_one(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<OverrideBody>,
) -> Result<Json<Status>, ApiError> {
    check_id(&id)?;
    let request = request(&state, body.wifi, body.from, body.until, &body.reason)?;
    Ok(Json(state.core.set_override(&actor(&auth), &id, request).await?))
}

/// Query of `DELETE /api/v1/classrooms/{id}/override`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    from: Option<String>,
}

/// `from=` of a cancellation: the start of the planned override, as sent
/// or as the status lists it.
fn cancel_from(from: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(from.trim())
        .map(|f| f.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::BadRequest(
                "bad_from",
                format!(
                    "from={from:?} is not an RFC 3339 time ({e}); write it like 2026-12-06T08:00:00Z, or encode + as %2B"
                ),
            )
        })
}

/// `DELETE /api/v1/classrooms/{id}/override[?from=...]` (admin): clears
/// the override in force, or with `from` cancels the one planned to start
/// then.
pub async fn delete_one(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Status>, ApiError> {
    let Query(q) = query?;
    check_id(&id)?;
    match q.from {
        Some(from) => {
            let from = cancel_from(&from)?;
            Ok(Json(state.core.cancel_planned(&actor(&auth), &id, from).await?))
        }
        None => Ok(Json(state.core.clear_override(&actor(&auth), &id).await?)),
    }
}

/// `scope` of a bulk override.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    #[serde(default)]
    school: Option<String>,
    #[serde(default)]
    all: Option<bool>,
}

/// Body of `POST /api/v1/overrides`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    scope: ScopeBody,
    wifi: Wifi,
    #[serde(default)]
    from: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    until: Option<DateTime<FixedOffset>>,
    reason: String,
}

/// What a bulk request covered.
#[derive(Serialize)]
pub struct BulkResult {
    classrooms: Vec<String>,
    count: usize,
}

fn scope(s: &ScopeBody) -> Result<Scope, ApiError> {
    match (&s.school, s.all) {
        (Some(school), None | Some(false)) => {
            check_id(school)?;
            Ok(Scope::School(SchoolId::from(school.as_str())))
        }
        (None, Some(true)) => Ok(Scope::All),
        _ => Err(ApiError::BadRequest(
            "bad_scope",
            "scope is {\"school\": \"<id>\"} or {\"all\": true}".into(),
        )),
    }
}

/// `POST /api/v1/overrides` (admin): a school or the whole city, atomically.
pub async fn bulk_set(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<BulkBody>,
) -> Result<Json<BulkResult>, ApiError> {
    let scope = scope(&body.scope)?;
    let request = request(&state, body.wifi, body.from, body.until, &body.reason)?;
    let ids = state.core.bulk_override(&actor(&auth), &scope, Some(request)).await?;
    Ok(Json(BulkResult {
        count: ids.len(),
        classrooms: ids.into_iter().map(|c| c.to_string()).collect(),
    }))
}

/// Query of `DELETE /api/v1/overrides`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearQuery {
    school: Option<String>,
    from: Option<String>,
}

/// `DELETE /api/v1/overrides[?school=...][&from=...]` (admin): clears the
/// overrides in force, or with `from` cancels the ones planned to start
/// then (404 if there are none).
pub async fn bulk_clear(
    State(state): State<AppState>,
    auth: Auth,
    query: Result<Query<ClearQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BulkResult>, ApiError> {
    let Query(q) = query?;
    let scope = match q.school {
        Some(s) => {
            check_id(&s)?;
            Scope::School(SchoolId::from(s.as_str()))
        }
        None => Scope::All,
    };
    let ids = match q.from {
        Some(from) => {
            let from = cancel_from(&from)?;
            let ids = state.core.bulk_cancel_planned(&actor(&auth), &scope, from).await?;
            if ids.is_empty() {
                return Err(ApiError::NotFound(format!(
                    "no override planned to start at {} in this scope",
                    from.to_rfc3339_opts(SecondsFormat::Secs, true)
                )));
            }
            ids
        }
        None => state.core.bulk_override(&actor(&auth), &scope, None).await?,
    };
    Ok(Json(BulkResult {
        count: ids.len(),
        classrooms: ids.into_iter().map(|c| c.to_string()).collect(),
    }))
}
