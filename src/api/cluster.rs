//! `GET /api/v1/cluster`: the instances sharing the database, which one
//! leads, and their configuration hashes (admin, viewer).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::auth::Auth;
use super::{ApiError, AppState};
use crate::config::Role;

/// `{"instances": [{"id", "role", "config_sha256", "last_heartbeat", "up"}], "self": id}`.
/// A lone instance (no database) lists itself as the leader.
pub async fn get(State(state): State<AppState>, auth: Auth) -> Result<Json<Value>, ApiError> {
    if auth.user.role == Role::Teacher {
        return Err(ApiError::Forbidden(
            "the cluster view is for IT (admin or viewer)".into(),
        ));
    }
    let cluster = state.core.cluster();
    let instances = cluster.instances(state.core.now());
    Ok(Json(json!({
        "instances": instances,
        "self": cluster.self_id(),
        "shared": cluster.is_shared(),
        "config_differs": cluster.config_differs(),
    })))
}
