//! The HTTP API (axum). Handlers append through the ledger and read projections; they
//! never touch `scan_events` directly.

mod error;
mod scans;

use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

pub use error::ApiError;
pub use scans::ScanView;

use crate::ledger::Ledger;
use crate::worker::Shutdown;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub ledger: Ledger,
    /// `max_attempts` written into each new scan's `Requested`.
    pub max_attempts: i32,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/scans", post(scans::trigger))
        .route("/api/scans/trigger", post(scans::trigger))
        .route("/api/scans/{id}", get(scans::get))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::middleware::map_response(limit_to_problem))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// axum answers an oversized body with a plain-text 413; clients always get problem+json.
async fn limit_to_problem(resp: axum::response::Response) -> axum::response::Response {
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        && resp
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes())
            != Some(b"application/problem+json")
    {
        return ApiError::TooLarge.into_response();
    }
    resp
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    sqlx::query("SELECT 1")
        .execute(state.ledger.pool())
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

/// Serve until `shutdown` fires; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "API listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}
