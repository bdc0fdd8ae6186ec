//! The one place library errors become HTTP responses:
//! `{"error": {"code": "…", "message": "…"}}` with a 4xx/5xx status.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::search::SearchError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    #[error("this endpoint does not accept that method")]
    MethodNotAllowed,
    #[error("the index is still being built")]
    NotReady,
    #[error("search failed: {0}")]
    Search(#[from] SearchError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the request took too long")]
    Timeout,
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("analytics are turned off on this server")]
    AnalyticsDisabled,
    #[error(transparent)]
    Analytics(#[from] crate::analytics::AnalyticsError),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Unauthorized(AuthError::Forbidden) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::AnalyticsDisabled => (StatusCode::NOT_FOUND, "analytics_disabled"),
            ApiError::Search(_) | ApiError::Internal(_) | ApiError::Analytics(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() && !matches!(self, ApiError::NotReady | ApiError::Timeout) {
            tracing::error!(error = %self, "request failed");
        }
        // A server-side failure's detail (paths, index internals) goes to the
        // log above, never to the caller.
        let message = match &self {
            ApiError::Search(_) | ApiError::Internal(_) | ApiError::Analytics(_) => {
                "internal error; the server log has the details".to_string()
            }
            _ => self.to_string(),
        };
        let body = Json(json!({"error": {"code": code, "message": message}}));
        let mut response = (status, body).into_response();
        if let ApiError::RateLimited { retry_after_secs } = &self
            && let Ok(value) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert("retry-after", value);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge;
        }
        ApiError::bad_request("invalid_body", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", rejection.body_text())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

/// The shape of every error response (for the OpenAPI document).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `missing_query`, `not_found`, `rate_limited`, …
    pub code: String,
    pub message: String,
}

/// The largest value any count parameter (`limit`, `offset`) may take; larger
/// values are rejected, smaller ones are clamped to each endpoint's cap.
pub const MAX_COUNT_PARAM: u64 = 1_000_000;

/// A count parameter, defaulted, checked against [`MAX_COUNT_PARAM`], and
/// clamped to `cap`.
pub fn count_param(
    value: Option<u64>,
    name: &str,
    default: usize,
    cap: usize,
) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(v) if v <= MAX_COUNT_PARAM => Ok((v as usize).min(cap)),
        Some(v) => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name}={v} is over {MAX_COUNT_PARAM}"),
        )),
    }
}
