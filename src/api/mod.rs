//! HTTP API v1 and the pages: a thin layer over [`Core`].
//!
//! Handlers extract and validate, call one core method, and shape the
//! answer; they never call a driver. Every `/api/` answer is JSON, errors
//! included (one shape: `{"error": code, "message": sentence}`), whatever
//! goes wrong: bad JSON, unknown route, wrong method, oversized body, a
//! panic.

mod audit;
mod auth;
mod classrooms;
mod cluster;
pub mod csv;
mod error;
mod events;
mod input;
pub mod oidc;
pub mod openapi;
mod overrides;
mod pages;
mod report;
pub mod server;
mod users;
mod write_limit;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

pub use auth::Limiter;
pub use error::ApiError;
pub use write_limit::WriteLimiter;

use crate::core::Core;

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 16 * 1024;

/// A request (but not the event stream) taking longer than this is cut with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What every handler receives.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub core: Arc<Core>,
    /// Failed-authentication limiter.
    pub limiter: Arc<Limiter>,
    /// Writes per user.
    pub writes: Arc<WriteLimiter>,
    /// Ends event streams at shutdown.
    pub shutdown: CancellationToken,
    /// The configuration file (for `/readyz`).
    pub config_path: Option<PathBuf>,
    /// Last use of each token, written at most once a minute.
    pub last_use: Arc<users::LastUse>,
    /// Sign-in with the identity provider: provider, sign-ins in progress, sessions.
    pub oidc: Arc<oidc::SignIn>,
}

/// The whole HTTP application.
pub fn router(core: Arc<Core>, config_path: Option<PathBuf>, shutdown: CancellationToken) -> Router {
    let limiter = Arc::new(Limiter::new(core.config().limits.failed_auth_addresses));
    let state = AppState {
        core,
        limiter,
        writes: Arc::new(WriteLimiter::default()),
        oidc: Arc::new(oidc::SignIn::new(shutdown.clone())),
        shutdown,
        config_path,
        last_use: Arc::default(),
    };
    oidc::start(&state);
    let api = Router::new()
        .route("/classrooms", get(classrooms::list))
        .route("/classrooms/{id}", get(classrooms::get_one))
        .route("/classrooms/{id}/wifi", post(classrooms::wifi))
        .route(
            "/classrooms/{id}/override",
            put(overrides::put_one).delete(overrides::delete_one),
        )
        .route("/overrides", post(overrides::bulk_set).delete(overrides::bulk_clear))
        .route("/access-points", get(classrooms::access_points))
        .route("/audit", get(audit::audit))
        .route("/report", get(report::report))
        .route("/me", get(classrooms::me))
        .route("/summary", get(classrooms::summary))
        .route("/users", get(users::list))
        .route("/cluster", get(cluster::get))
        .layer(middleware::from_fn(error::timeout))
        // The event stream lives as long as the page: no timeout for it.
        .route("/events", get(events::stream))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    Router::new()
        .nest("/api/v1", api)
        .route("/api/openapi.json", get(openapi::serve))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(pages::routes())
        .merge(oidc::routes())
        .fallback(error::fallback)
        .method_not_allowed_fallback(error::method_not_allowed_anywhere)
        // Cookie sessions: cross-site writes refused before any handler runs.
        .layer(middleware::from_fn_with_state(state.clone(), oidc::csrf))
        // Security headers on every answer, the fallbacks' included.
        .layer(middleware::map_response(pages::harden))
        // Inside the metrics middleware, so a request that panicked is
        // counted with its 500.
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Counts requests by route template and status, for `/metrics`.
async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    state.core.metrics.http(&route, &method, response.status().as_u16());
    response
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the configuration is loaded and the store answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.core.check_writable().await {
        Ok(()) => axum::Json(serde_json::json!({
            "status": "ready",
            "classrooms": state.core.config().classrooms.len(),
            // Informative: the API serves whatever the clock says.
            "clock": state.core.clock_status(),
            "calendars": state.core.config().calendar_statuses(),
        }))
        .into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

/// Prometheus text format: a viewer's or an admin's token, or anyone with
/// `metrics_public: true`. Not a teacher's: the exposition names every
/// school, classroom and access point of the city, and their state.
async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    if !state.core.config().metrics_public {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)), |c| c.0);
        match auth::authenticate(&state, request.headers(), peer) {
            Ok(user) if user.role == crate::config::Role::Teacher => {
                return ApiError::Forbidden("the metrics are for IT (admin or viewer)".into()).into_response();
            }
            Ok(_) => {}
            Err(e) => return e.into_response(),
        }
    }
    let mut response = state.core.metrics_text().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
