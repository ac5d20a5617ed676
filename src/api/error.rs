//! The one error type handlers return. Clients get `application/problem+json` with a
//! code, a fixed message and a correlation id; details go to the logs under that id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; `detail` describes the client's own input only.
    #[error("bad request: {detail}")]
    BadRequest {
        detail: String,
        field: Option<String>,
    },
    #[error("not found")]
    NotFound,
    #[error("payload too large")]
    TooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
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
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    correlation_id: Uuid,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let correlation_id = Uuid::new_v4();
        let (status, code, title) = match &self {
            Self::BadRequest { .. } => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The request is invalid.",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", "No such resource."),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The request body must be application/json.",
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service is temporarily unavailable.",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "An internal error occurred.",
            ),
        };
        // Only the client's own input is echoed back; everything else stays in the logs.
        let (detail, field) = match &self {
            Self::BadRequest { detail, field } => (Some(detail.as_str()), field.as_deref()),
            _ => (None, None),
        };
        if status.is_server_error() {
            tracing::error!(%correlation_id, error = %self, "request failed");
        } else {
            tracing::info!(%correlation_id, error = %self, "request rejected");
        }
        let body = Problem {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            code,
            detail,
            field,
            correlation_id,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}
