//! Bearer tokens and roles. Only a SHA-256 of each token is stored; the token is shown
//! once, at creation. Event payloads record the token's name, never the token.

use std::fmt;
use std::str::FromStr;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::pg::tokens;

/// What a token may do. Each role includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything.
    Reader,
    /// Reader, plus trigger and cancel scans.
    Operator,
    /// Operator, plus token management.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reader" => Ok(Self::Reader),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            _ => Err(format!(
                "unknown role {s:?}: expected reader, operator or admin"
            )),
        }
    }
}

/// Who is calling: the token's name and role.
#[derive(Clone, Debug)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// How requests are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    Tokens,
    /// `--no-auth`: every caller is `local` with the admin role (loopback only).
    Disabled,
}

const PREFIX: &str = "slk_";

/// A new token: 244 random bits from the OS generator (UUID v4), hex-encoded.
pub fn generate_token() -> String {
    format!(
        "{PREFIX}{}{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    )
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token names are 1-64 characters of A-Z a-z 0-9 . _ -")]
    BadName,
    #[error("a token named {0:?} exists already")]
    Exists(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

pub(crate) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Create a token; returns it (the only time it is ever available).
pub async fn create_token(pool: &PgPool, name: &str, role: Role) -> Result<String, TokenError> {
    if !valid_name(name) {
        return Err(TokenError::BadName);
    }
    let token = generate_token();
    if !tokens::insert(pool, name, role.as_str(), &hash(&token)).await? {
        return Err(TokenError::Exists(name.to_string()));
    }
    tracing::info!(token_name = name, role = %role, "API token created");
    Ok(token)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub name: String,
    pub role: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn list_tokens(pool: &PgPool) -> Result<Vec<TokenInfo>, sqlx::Error> {
    Ok(tokens::list(pool)
        .await?
        .into_iter()
        .map(|t| TokenInfo {
            name: t.name,
            role: t.role,
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        })
        .collect())
}

/// Revoke a token by name; false when no live token has that name.
pub async fn revoke_token(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let revoked = tokens::revoke(pool, name).await?;
    if revoked {
        tracing::info!(token_name = name, "API token revoked");
    }
    Ok(revoked)
}

async fn authenticate(
    state: &AppState,
    authorization: Option<String>,
) -> Result<Principal, ApiError> {
    if state.auth == AuthMode::Disabled {
        return Ok(Principal {
            name: "local".into(),
            role: Role::Admin,
        });
    }
    let token = authorization
        .as_deref()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(PREFIX))
        .ok_or(ApiError::Unauthorized)?;
    let hash = hash(token);
    if let Some(principal) = state.tokens.get(&hash) {
        return Ok(principal);
    }
    // Read before the lookup: a revocation announced meanwhile keeps this out of the cache.
    let generation = state.tokens.generation();
    let row = tokens::find_live(state.ledger.pool(), &hash).await?;
    let (name, role) = row.ok_or(ApiError::Unauthorized)?;
    let role = role.parse().map_err(ApiError::internal)?;
    let principal = Principal { name, role };
    state.tokens.insert(hash, principal.clone(), generation);
    Ok(principal)
}

/// `localhost`, `127.0.0.1` (any 127/8 address) or `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Middleware: find the role the route needs ([`super::required_role`]), authenticate,
/// check the role, and hand the principal to the handler. Fails closed.
pub async fn require(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let min = match req.extensions().get::<MatchedPath>() {
        Some(route) => super::required_role(req.method(), route.as_str()),
        None => Some(Role::Reader),
    };
    let Some(min) = min else {
        return Ok(next.run(req).await);
    };
    // Without authentication, only a request addressed to a loopback name is served: a
    // web page that rebinds its own DNS name to 127.0.0.1 sends its own name as Host.
    if state.auth == AuthMode::Disabled
        && !req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_loopback_host)
    {
        return Err(ApiError::Forbidden);
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let principal = authenticate(&state, authorization).await?;
    if principal.role < min {
        return Err(ApiError::Forbidden);
    }
    tracing::Span::current().record("principal", principal.name.as_str());
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_only_their_hash_is_kept() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        assert_eq!(hash(&a).len(), 32);
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Reader);
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1",
            "[::2]:80",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().is_err());
        assert!(valid_name("ci-pipeline.prod_1") && !valid_name("a b") && !valid_name(""));
    }
}
