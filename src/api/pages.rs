//! The teacher page (`/`) and the IT dashboard (`/admin`) (being written).

use axum::Router;

use super::AppState;

/// Routes of the pages and their assets.
pub fn routes() -> Router<AppState> {
    Router::new()
}
