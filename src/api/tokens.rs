//! `/api/tokens`: token management for admins.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{self, Role, TokenError, TokenInfo};
use super::error::Problem;
use super::{parse_json, ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1-64 characters of A-Z a-z 0-9 . _ -
    name: String,
    /// reader, operator or admin
    role: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    pub name: String,
    pub role: Role,
    /// Shown once; only its hash is stored.
    pub token: String,
}

/// Create a token (shown once).
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, description = "Created", body = CreatedToken), (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The token's role does not allow this", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenList {
    pub count: usize,
    pub tokens: Vec<TokenInfo>,
}

/// List tokens (never the tokens themselves).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens",
    responses((status = 200, description = "Tokens", body = TokenList), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The token's role does not allow this", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn list(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let tokens = auth::list_tokens(state.ledger.pool()).await?;
    Ok(Json(TokenList {
        count: tokens.len(),
        tokens,
    }))
}

/// Revoke a token by name.
#[utoipa::path(delete, path = "/api/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "Token name")),
    responses((status = 204, description = "Revoked"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The token's role does not allow this", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No live token of that name", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !auth::valid_name(&name) {
        return Err(ApiError::bad_request(
            Some("name"),
            TokenError::BadName.to_string(),
        ));
    }
    if auth::revoke_token(state.ledger.pool(), &name).await? {
        // This process refuses it from the next request on; the others when the
        // database's announcement reaches them.
        state.tokens.forget_all();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
