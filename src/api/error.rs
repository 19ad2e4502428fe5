//! One error type for the API and one JSON shape for every error:
//! `{"error": "<machine code>", "message": "<sentence for a person>"}`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::core::{RequestError, refusal_code};
use crate::policy::Refusal;

/// Everything an API call can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed request.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// 401.
    #[error("{0}")]
    Unauthorized(String),
    /// 401: a known token past its `expires` day.
    #[error("this token expired: it was accepted through {0}; ask IT for a new link")]
    TokenExpired(chrono::NaiveDate),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the policy refused; times in the classroom's time zone.
    #[error("{}", refusal_message(.0, *.1))]
    Refused(Refusal, chrono_tz::Tz),
    /// 408: the request took too long (a slow client or a stuck call).
    #[error("the request took longer than {} s", super::REQUEST_TIMEOUT.as_secs())]
    Timeout,
    /// 413.
    #[error("request body larger than {} bytes", super::BODY_LIMIT)]
    TooLarge,
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but not acceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// 429 with Retry-After seconds.
    #[error("too many failed authentications from this address; retry in {0} s")]
    TooManyAttempts(u64),
    /// 503: `clock.require_sync` and the clock is not synchronised.
    #[error(
        "Horloge du serveur non synchronisée : le Wi-Fi ne peut pas être allumé pour l'instant. / \
         The server clock is not synchronised: Wi-Fi cannot be switched on until it is."
    )]
    ClockUnsynchronized,
    /// 429 with Retry-After seconds: the user's writes per minute are used up.
    #[error("too many changes from this user (at most {per_minute} a minute); retry in {retry} s")]
    TooManyWrites {
        /// The limit.
        per_minute: u32,
        /// Seconds until the next write is accepted.
        retry: u64,
    },
    /// 503: the store cannot take writes; nothing was changed.
    #[error("{0}")]
    Unavailable(String),
    /// 503: the database server (PostgreSQL) cannot be reached; nothing
    /// was changed.
    #[error(
        "Base de données injoignable : la demande n'a pas été enregistrée, réessayez dans un instant. / \
         The database cannot be reached: the request was not recorded; try again in a moment."
    )]
    DatabaseUnavailable,
    /// 500: a bug; details are logged, not sent.
    #[error("internal error")]
    Internal,
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::NotFound(message) => ApiError::NotFound(message),
            RequestError::Forbidden(m) => ApiError::Forbidden(m),
            RequestError::Refused(Refusal::MinutesOutOfRange { minutes, max }, _) => ApiError::BadRequest(
                "minutes_out_of_range",
                format!("{minutes} minutes is out of range: ask between 1 and {max}"),
            ),
            RequestError::Refused(r, tz) => ApiError::Refused(r, tz),
            RequestError::Invalid(m) => ApiError::Unprocessable(m),
            RequestError::ClockUnsynchronized => ApiError::ClockUnsynchronized,
            RequestError::Store(e @ crate::store::StoreError::Unavailable(_)) => {
                tracing::error!(error = %e, "request refused: the database cannot be reached");
                ApiError::DatabaseUnavailable
            }
            RequestError::Store(e) => {
                tracing::error!(error = %e, "request refused: the state database cannot be written");
                ApiError::Unavailable(
                    "the request was not applied: borne cannot write its state database right now; try again shortly"
                        .into(),
                )
            }
        }
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::TokenExpired(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Refused(..) => StatusCode::CONFLICT,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyAttempts(_) | ApiError::TooManyWrites { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable | ApiError::ClockUnsynchronized => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(code, _) => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::TokenExpired(_) => "token_expired",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Refused(r, _) => refusal_code(r),
            ApiError::Timeout => "timeout",
            ApiError::TooLarge => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::TooManyAttempts(_) => "too_many_attempts",
            ApiError::TooManyWrites { .. } => "too_many_writes",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::DatabaseUnavailable => "database_unavailable",
            ApiError::ClockUnsynchronized => "clock_unsynchronized",
            ApiError::Internal => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.code(), "message": self.to_string()});
        if let ApiError::Refused(r, tz) = &self {
            let local =
                |u: chrono::DateTime<chrono::Utc>| Value::String(u.with_timezone(tz).fixed_offset().to_rfc3339());
            match r {
                Refusal::Locked { until } => {
                    body["until"] = until.map_or(Value::Null, local);
                }
                Refusal::Overridden(o) => {
                    body["until"] = o.until.map_or(Value::Null, local);
                    body["override"] = json!({"wifi": o.wifi, "reason": o.reason, "by": o.by});
                }
                Refusal::MinutesOutOfRange { .. } => {}
            }
        }
        let mut response = (self.status(), axum::Json(body)).into_response();
        match self {
            ApiError::TooManyAttempts(secs) | ApiError::TooManyWrites { retry: secs, .. } => {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"borne\""),
                );
            }
            ApiError::TokenExpired(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"borne\", error=\"invalid_token\""),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("send the body as JSON with Content-Type: application/json".into())
            }
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
            JsonRejection::JsonDataError(e) => ApiError::BadRequest("bad_body", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest("bad_json", e.body_text()),
            other => ApiError::BadRequest("bad_body", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest("bad_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest("bad_path", r.body_text())
    }
}

/// A refusal as a sentence, with its times in the classroom's time zone.
fn refusal_message(r: &Refusal, tz: chrono_tz::Tz) -> String {
    let at = |u: chrono::DateTime<chrono::Utc>| u.with_timezone(&tz).fixed_offset().to_rfc3339();
    match r {
        Refusal::Locked { until: Some(u) } => format!("Wi-Fi is locked by the schedule until {}", at(*u)),
        Refusal::Overridden(o) => {
            let until = o
                .until
                .map_or_else(|| "until IT clears it".to_owned(), |u| format!("until {}", at(u)));
            format!("Wi-Fi is set {} by IT ({}): {}, {until}", o.wifi, o.by, o.reason)
        }
        other => other.to_string(),
    }
}

/// A path segment (an id) whose rejections use the API's error shape.
pub struct ApiPath(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(id) = axum::extract::Path::<String>::from_request_parts(parts, state).await?;
        Ok(ApiPath(id))
    }
}

/// Cuts a request that takes longer than [`super::REQUEST_TIMEOUT`] with a
/// JSON 408 (tower-http's timeout answers with an empty body).
pub async fn timeout(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(super::REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// `Json` whose rejections use the API's error shape. Malformed JSON is
/// `bad_json`; well-formed JSON of the wrong shape (a missing field, a
/// boolean where `"on"` is expected) is `bad_body`, with the path of the
/// offending value. serde_json alone cannot tell the two apart: asked for
/// an enum, it reports `true` as a syntax error.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::BadRequest("bad_body", r.body_text())
            }
        })?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest("bad_json", format!("the body is not valid JSON: {e}")))?;
        serde_path_to_error::deserialize(value).map(ApiJson).map_err(|e| {
            let path = e.path().to_string();
            let message = if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            };
            ApiError::BadRequest("bad_body", message)
        })
    }
}

/// `application/json` or `application/<anything>+json`, parameters aside.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Unknown `/api/v1/...` route.
pub async fn not_found(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> ApiError {
    ApiError::NotFound(format!("no such API route: {}", uri.path()))
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Known route outside `/api/v1`, wrong method: JSON under `/api/`.
pub async fn method_not_allowed_anywhere(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return ApiError::MethodNotAllowed.into_response();
    }
    (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response()
}

/// Anything else: JSON under `/api/`, plain text elsewhere.
pub async fn fallback(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return ApiError::NotFound(format!("no such API route: {}", uri.path())).into_response();
    }
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// A handler panicked: log the detail, answer a generic 500.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown");
    tracing::error!(panic = detail, "a request handler panicked");
    ApiError::Internal.into_response()
}
