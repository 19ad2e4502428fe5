//! `/api/v1/classrooms...`, `/api/v1/access-points` and `/api/v1/me`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Auth;
use super::error::{ApiError, ApiJson, ApiPath};
use crate::config::{Role, is_valid_id};
use crate::core::{Actor, Status};
use crate::policy::{Request, Wifi};

/// Rejects ids that cannot exist before any lookup.
pub(super) fn check_id(id: &str) -> Result<(), ApiError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "bad_id",
            "ids are 1 to 64 characters among a-z, 0-9 and -".into(),
        ))
    }
}

/// `{"classrooms": [...]}`.
#[derive(Serialize)]
pub struct List {
    classrooms: Vec<Status>,
}

/// `GET /api/v1/classrooms`: the classrooms the token may see.
pub async fn list(State(state): State<AppState>, auth: Auth) -> Json<List> {
    Json(List {
        classrooms: state.core.statuses(&auth.user),
    })
}

/// `GET /api/v1/classrooms/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath,
) -> Result<Json<Status>, ApiError> {
    check_id(&id)?;
    Ok(Json(state.core.status(&auth.user, &id)?))
}

/// Body of `POST /api/v1/classrooms/{id}/wifi`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WifiBody {
    wifi: Wifi,
    minutes: Option<u32>,
}

/// `POST /api/v1/classrooms/{id}/wifi`: a teacher's request.
pub async fn wifi(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<WifiBody>,
) -> Result<Json<Status>, ApiError> {
    check_id(&id)?;
    let request = match (body.wifi, body.minutes) {
        (Wifi::On, minutes) => Request::On { minutes },
        (Wifi::Off, None) => Request::Off,
        (Wifi::Off, Some(_)) => {
            return Err(ApiError::BadRequest(
                "bad_body",
                "minutes only goes with \"wifi\": \"on\"".into(),
            ));
        }
    };
    let actor = Actor {
        user: &auth.user,
        source: Some(auth.source.to_string()),
        via: auth.via,
    };
    Ok(Json(state.core.teacher_request(&actor, &id, request).await?))
}

/// An AP in `GET /api/v1/access-points`.
#[derive(Serialize)]
pub struct ApEntry {
    classroom: String,
    school: String,
    desired: Wifi,
    #[serde(flatten)]
    view: crate::core::ApView,
}

/// `{"access_points": [...]}`, unreachable ones first.
#[derive(Serialize)]
pub struct ApList {
    access_points: Vec<ApEntry>,
}

/// `GET /api/v1/access-points` (admin, viewer).
pub async fn access_points(State(state): State<AppState>, auth: Auth) -> Result<Json<ApList>, ApiError> {
    if auth.user.role == Role::Teacher {
        return Err(ApiError::Forbidden(
            "the access point list is for IT (admin or viewer)".into(),
        ));
    }
    let mut list: Vec<ApEntry> = state
        .core
        .statuses(&auth.user)
        .into_iter()
        .flat_map(|s| {
            let (classroom, school, desired) = (s.id.to_string(), s.school.to_string(), s.wifi);
            s.access_points.into_iter().map(move |view| ApEntry {
                classroom: classroom.clone(),
                school: school.clone(),
                desired,
                view,
            })
        })
        .collect();
    list.sort_by_key(|a| (a.view.reachable, a.view.observed.is(a.desired)));
    Ok(Json(ApList { access_points: list }))
}

/// `GET /api/v1/summary`: counts over the visible classrooms.
pub async fn summary(State(state): State<AppState>, auth: Auth) -> Json<crate::core::Summary> {
    Json(state.core.summary(&auth.user))
}

/// `GET /api/v1/me`: who the token belongs to, for the pages.
#[derive(Serialize)]
pub struct Me {
    name: String,
    role: Role,
    /// Classrooms visible, `null` for all.
    classrooms: Option<Vec<String>>,
}

/// `GET /api/v1/me`.
pub async fn me(auth: Auth) -> Json<Me> {
    Json(Me {
        name: auth.user.name.clone(),
        role: auth.user.role,
        classrooms: auth
            .user
            .scope
            .as_ref()
            .map(|s| s.iter().map(|c| c.to_string()).collect()),
    })
}
