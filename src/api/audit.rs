//! What an auditor fetches to check the ledger without trusting us: one scan's proof
//! bundle (its events with hashes, its findings, every checkpoint, and an inclusion proof
//! per checkpointed event) and the public key checkpoints are signed with.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::error::Problem;
use super::{ApiError, AppState};
use crate::domain::integrity::{self, hex};
use crate::ledger::audit::{self, Scope};
use crate::projection::scan_status;

/// The key that signs checkpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublicKey {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The first 16 hex digits of the key's SHA-256; checkpoints name it.
    pub key_id: String,
    /// The 32-byte public key, hex.
    pub public_key: String,
}

/// The public key checkpoints are signed with.
#[utoipa::path(get, path = "/api/audit/public-key", tag = "audit",
    responses((status = 200, description = "The key", body = PublicKey),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "Checkpoints are not signed by this deployment", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn public_key(State(state): State<AppState>) -> Result<Json<PublicKey>, ApiError> {
    let pk = state
        .config
        .audit_public_key
        .as_ref()
        .ok_or(ApiError::NotFound)?;
    Ok(Json(PublicKey {
        algorithm: "Ed25519",
        key_id: integrity::key_id(pk),
        public_key: hex(pk),
    }))
}

/// One scan's proof bundle, as JSON lines: the same lines `scanledger audit export --scan`
/// writes, which `scanledger audit verify --bundle` checks offline.
#[utoipa::path(get, path = "/api/scans/{id}/proof", tag = "audit",
    params(("id" = String, Path, description = "Scan id (UUID)")),
    responses((status = 200, description = "The bundle (JSON lines)", content_type = "application/x-ndjson", body = String),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such scan", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn proof(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = super::path_id(&id)?;
    scan_status::get(state.ledger.pool(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let lines = audit::bundle(
        state.ledger.pool(),
        &Scope::Scan(id),
        state.config.audit_public_key.clone(),
    )
    .await
    .map_err(ApiError::internal)?;
    let mut body = Vec::new();
    audit::write_bundle(&mut body, &lines).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
