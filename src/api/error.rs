//! The one error type handlers return. Clients get `application/problem+json` (RFC 9457:
//! `title` is the status's phrase) with a code, a fixed or input-only `detail` and a
//! correlation id (the request id); details go to the logs under that id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use uuid::Uuid;

tokio::task_local! {
    /// The id of the request being served (set by the request-id middleware).
    pub static REQUEST_ID: Uuid;
}

/// The current request's id, or a fresh one outside a request.
pub fn request_id() -> Uuid {
    REQUEST_ID
        .try_with(|id| *id)
        .unwrap_or_else(|_| Uuid::new_v4())
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; `detail` describes the client's own input only.
    #[error("bad request: {detail}")]
    BadRequest {
        detail: String,
        field: Option<String>,
    },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("the token's role does not allow this")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// The request conflicts with the resource's state (e.g. cancelling a finished scan).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("payload too large")]
    TooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Well-formed but unacceptable (e.g. an idempotency key reused with another body).
    #[error("unprocessable: {0}")]
    Unprocessable(&'static str),
    #[error("too many requests")]
    TooMany { retry_after_secs: u64 },
    #[error("request timed out")]
    Timeout,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(field: Option<&str>, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
            field: field.map(str::to_string),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code and a fixed sentence saying what went wrong.
    fn code_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest { .. } => ("bad_request", "The request is invalid."),
            Self::Unauthorized => ("unauthorized", "A valid bearer token is required."),
            Self::Forbidden => ("forbidden", "The token's role does not allow this request."),
            Self::NotFound => ("not_found", "No such resource."),
            Self::Conflict(_) => (
                "conflict",
                "The request conflicts with the resource's current state.",
            ),
            Self::TooLarge => ("payload_too_large", "The request body is too large."),
            Self::UnsupportedMediaType => (
                "unsupported_media_type",
                "The request body must be application/json.",
            ),
            Self::Unprocessable(_) => ("unprocessable", "The request cannot be processed as sent."),
            Self::TooMany { .. } => (
                "too_many_requests",
                "Too many open streams; retry after the time in Retry-After.",
            ),
            Self::Timeout => ("timeout", "The request took too long."),
            Self::Unavailable(_) => ("unavailable", "The service is temporarily unavailable."),
            Self::Internal(_) => ("internal", "An internal error occurred."),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    /// A database that cannot be reached is a 503 (try again); anything else a 500.
    fn from(e: sqlx::Error) -> Self {
        if crate::ledger::unreachable(&e) {
            Self::Unavailable(e.to_string())
        } else {
            Self::internal(e)
        }
    }
}

/// An RFC 9457 problem: every error body, served as `application/problem+json`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Machine-readable: bad_request, unauthorized, forbidden, not_found, conflict, ...
    pub code: String,
    /// The client's own input that was refused, or a fixed sentence; never internals.
    pub detail: String,
    /// The offending field or parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Also the `x-request-id` of the response and in the server's log lines.
    pub correlation_id: Uuid,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let correlation_id = request_id();
        let status = self.status();
        let (code, sentence) = self.code_and_title();
        // Only the client's own input, or a fixed phrase, is echoed back; the rest stays in the logs.
        let (detail, field) = match &self {
            Self::BadRequest { detail, field } => (detail.as_str(), field.as_deref()),
            Self::Conflict(d) | Self::Unprocessable(d) => (*d, None),
            _ => (sentence, None),
        };
        if status.is_server_error() {
            tracing::error!(%correlation_id, error = %self, "request failed");
        } else {
            tracing::info!(%correlation_id, error = %self, "request rejected");
        }
        let body = Problem {
            kind: "about:blank".into(),
            // RFC 9457 §4.2.1: with type about:blank, the title is the status's phrase.
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            code: code.into(),
            detail: detail.to_string(),
            field: field.map(String::from),
            correlation_id,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::TooMany { retry_after_secs } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        if matches!(self, Self::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
