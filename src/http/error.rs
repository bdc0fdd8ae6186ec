//! The one place library errors become HTTP responses:
//! `{"error": {"code": "…", "message": "…"}}` with a 4xx/5xx status.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::search::SearchError;

/// Every `error.code` the API can answer with. One enum, so the OpenAPI
/// document lists exactly the codes the server produces and a generated
/// client can match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request could not be parsed as HTTP/1.1.
    BadRequest,
    /// A query parameter is missing, malformed or out of range.
    InvalidQuery,
    /// The JSON body is malformed or misses a field.
    InvalidBody,
    /// A path parameter is malformed.
    InvalidPath,
    /// `channel` names no channel.
    InvalidChannel,
    /// `from` / `to` is not a date or time.
    InvalidTime,
    /// `q` is missing or blank.
    MissingQuery,
    /// `question` is missing or blank.
    MissingQuestion,
    /// No key, a malformed `Authorization` header, or an unknown key.
    Unauthorized,
    /// The key is valid but not allowed here (an agent key on an admin endpoint).
    Forbidden,
    /// No such article, session or endpoint.
    NotFound,
    /// Analytics are turned off on this server.
    AnalyticsDisabled,
    /// The endpoint exists but not for this method.
    MethodNotAllowed,
    /// The body did not arrive in time.
    RequestTimeout,
    /// The body is larger than the server accepts.
    PayloadTooLarge,
    /// The request URI is too long.
    UriTooLong,
    /// Too many requests from this key or address; see `Retry-After`.
    RateLimited,
    /// The request headers are too large or too many.
    HeadersTooLarge,
    /// A server-side failure; the server log has the details.
    Internal,
    /// The index is still being built.
    NotReady,
    /// The request took longer than the server's time limit.
    Timeout,
    /// The database is unreachable (replicas' shared PostgreSQL is down or
    /// restarting): nothing was stored; retry after `Retry-After` seconds.
    /// Searches and answers keep working meanwhile.
    DatabaseUnavailable,
    /// The hand-off is not in a state that allows this (claimed by someone
    /// else, already closed); the message says which.
    Conflict,
    /// A raw e-mail that is not a readable RFC 5322 / MIME message; the
    /// message names the problem.
    InvalidMessage,
    /// `thread_id` is missing and the message carries no id to thread by.
    MissingThread,
    /// The body's `Content-Type` is not one the endpoint takes.
    UnsupportedMediaType,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidPath => "invalid_path",
            ErrorCode::InvalidChannel => "invalid_channel",
            ErrorCode::InvalidTime => "invalid_time",
            ErrorCode::MissingQuery => "missing_query",
            ErrorCode::MissingQuestion => "missing_question",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AnalyticsDisabled => "analytics_disabled",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::Internal => "internal",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::Timeout => "timeout",
            ErrorCode::DatabaseUnavailable => "database_unavailable",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::MissingThread => "missing_thread",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: ErrorCode, message: String },
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
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("analytics are turned off on this server")]
    AnalyticsDisabled,
    #[error(transparent)]
    Analytics(#[from] crate::analytics::AnalyticsError),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<crate::handoff::queue::QueueError> for ApiError {
    fn from(error: crate::handoff::queue::QueueError) -> Self {
        use crate::handoff::queue::QueueError;
        match error {
            QueueError::UnknownSession(_) | QueueError::NotFound(_) => {
                ApiError::NotFound(error.to_string())
            }
            QueueError::Conflict(message) => ApiError::Conflict(message),
            QueueError::Store(error) => ApiError::Store(error),
        }
    }
}

impl ApiError {
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A store error that says the database cannot be reached (rather than
    /// a bug or a constraint).
    fn database_unavailable(&self) -> bool {
        match self {
            ApiError::Store(error)
            | ApiError::Analytics(crate::analytics::AnalyticsError::Store(error)) => {
                error.is_unavailable()
            }
            _ => false,
        }
    }

    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, *code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::Unauthorized(AuthError::Forbidden) => {
                (StatusCode::FORBIDDEN, ErrorCode::Forbidden)
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed)
            }
            ApiError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NotReady),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Timeout),
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, ErrorCode::RequestTimeout),
            ApiError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge)
            }
            ApiError::AnalyticsDisabled => (StatusCode::NOT_FOUND, ErrorCode::AnalyticsDisabled),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            _ if self.database_unavailable() => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::DatabaseUnavailable,
            ),
            ApiError::Search(_)
            | ApiError::Internal(_)
            | ApiError::Analytics(_)
            | ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error()
            && code != ErrorCode::DatabaseUnavailable
            && !matches!(self, ApiError::NotReady | ApiError::Timeout)
        {
            tracing::error!(error = %self, "request failed");
        }
        // A server-side failure's detail (paths, index internals) goes to the
        // log above, never to the caller.
        let message = match &self {
            _ if code == ErrorCode::DatabaseUnavailable => {
                "the database is unavailable, so nothing was stored; retry after the \
                 Retry-After seconds (searches and answers still work)"
                    .to_string()
            }
            ApiError::Search(_)
            | ApiError::Internal(_)
            | ApiError::Analytics(_)
            | ApiError::Store(_) => "internal error; the server log has the details".to_string(),
            _ => self.to_string(),
        };
        let body = Json(ErrorBody {
            error: ErrorDetail { code, message },
        });
        let mut response = (status, body).into_response();
        if let ApiError::RateLimited { retry_after_secs } = &self
            && let Ok(value) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert("retry-after", value);
        }
        if code == ErrorCode::DatabaseUnavailable {
            response.headers_mut().insert(
                "retry-after",
                axum::http::HeaderValue::from_static(DATABASE_RETRY_AFTER),
            );
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
        ApiError::bad_request(ErrorCode::InvalidQuery, rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge;
        }
        ApiError::bad_request(ErrorCode::InvalidBody, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(ErrorCode::InvalidPath, rejection.body_text())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

/// Seconds a client waits before retrying while the database is down: the
/// store pings it at least every two seconds, so it is seen back by then.
const DATABASE_RETRY_AFTER: &str = "5";

/// The shape of every error response, from every endpoint and status.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "missing_query", "message": "the query parameter `q` is required"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: match on this, not on `message`.
    pub code: ErrorCode,
    /// For a person: what was wrong and how to fix it.
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
            ErrorCode::InvalidQuery,
            format!("{name}={v} is over {MAX_COUNT_PARAM}"),
        )),
    }
}
