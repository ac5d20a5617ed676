//! The `api_tokens` table: token names, roles and SHA-256 hashes (never the tokens).
//! The API decides what a token may do; this module only stores and finds them.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A stored token, without its hash.
#[derive(Clone, Debug)]
pub struct StoredToken {
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Store a new token's hash; false when the name is taken.
pub async fn insert(
    pool: &PgPool,
    name: &str,
    role: &str,
    hash: &[u8],
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO api_tokens (name, role, token_hash) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(role)
    .bind(hash)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// Every token, by name.
pub async fn list(pool: &PgPool) -> Result<Vec<StoredToken>, sqlx::Error> {
    type Row = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);
    let rows: Vec<Row> =
        sqlx::query_as("SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY name")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(name, role, created_at, revoked_at)| StoredToken {
            name,
            role,
            created_at,
            revoked_at,
        })
        .collect())
}

/// Revoke a live token by name; false when there is none.
pub async fn revoke(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
    )
    .bind(name)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// The (name, role) of the live token with this hash.
pub async fn find_live(
    pool: &PgPool,
    hash: &[u8],
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
        .bind(hash)
        .fetch_optional(pool)
        .await
}
