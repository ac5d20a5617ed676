//! `/api/tokens`: token management for admins.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{self, Role, TokenError, TokenInfo};
use super::{parse_json, ApiError, AppState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    role: String,
}

#[derive(Debug, Serialize)]
pub struct CreatedToken {
    pub name: String,
    pub role: Role,
    /// Shown once; only its hash is stored.
    pub token: String,
}

pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateToken = parse_json(&headers, &body)?;
    let role: Role = req
        .role
        .parse()
        .map_err(|e: String| ApiError::bad_request(Some("role"), e))?;
    let token = auth::create_token(state.ledger.pool(), &req.name, role)
        .await
        .map_err(|e| match e {
            TokenError::BadName => ApiError::bad_request(Some("name"), e.to_string()),
            TokenError::Exists(_) => ApiError::Conflict("a token with this name exists"),
            TokenError::Db(e) => ApiError::internal(e),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            name: req.name,
            role,
            token,
        }),
    )
        .into_response())
}

#[derive(Debug, Serialize)]
pub struct TokenList {
    pub count: usize,
    pub tokens: Vec<TokenInfo>,
}

pub(super) async fn list(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let tokens = auth::list_tokens(state.ledger.pool()).await?;
    Ok(Json(TokenList {
        count: tokens.len(),
        tokens,
    }))
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if auth::revoke_token(state.ledger.pool(), &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
