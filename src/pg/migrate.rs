//! Forward-only migrations, embedded in the binary so a deployed service never runs
//! against SQL it was not built with. Ledger tables come from `migrations/`; read models
//! come from `projections/<name>/v<N>.sql` and are recorded in the `projections` table.

use sqlx::{Connection, PgPool};

/// Ledger migrations in order. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "ledger",
        include_str!("../../migrations/0001_ledger.sql"),
    ),
    (2, "api", include_str!("../../migrations/0002_api.sql")),
    (
        3,
        "findings",
        include_str!("../../migrations/0003_findings.sql"),
    ),
];

/// Projection DDL: (name, version, sql) for the version this build folds into.
pub const PROJECTIONS: &[(&str, i32, &str)] = &[
    (
        "scan_status",
        2,
        include_str!("../../projections/scan_status/v2.sql"),
    ),
    (
        "finding_history",
        1,
        include_str!("../../projections/finding_history/v1.sql"),
    ),
];

/// Serializes concurrent `migrate` runs (several replicas starting at once).
const LOCK_KEY: i64 = 0x5ca1_1ed6;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration {version} ({name}) failed: {source}")]
    Step {
        version: i32,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "projection {name} is at version {found} but this build needs version {wanted}; \
         rebuild it from the ledger with `scanledger projections rebuild {name}` \
         (or start with --rebuild-projections)"
    )]
    ProjectionVersion {
        name: String,
        found: i32,
        wanted: i32,
    },
    #[error(
        "projection {name} is missing but the ledger holds events; rebuild it from the ledger \
         with `scanledger projections rebuild {name}` (or start with --rebuild-projections)"
    )]
    ProjectionMissing { name: String },
    #[error("database error during migration: {0}")]
    Db(#[from] sqlx::Error),
}

pub async fn run(pool: &PgPool) -> Result<(), MigrateError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let result = apply(&mut conn).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    result
}

async fn apply(conn: &mut sqlx::PgConnection) -> Result<(), MigrateError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut *conn)
    .await?;
    let applied: Vec<i32> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?;
    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        let step = |source| MigrateError::Step {
            version,
            name,
            source,
        };
        let mut tx = conn.begin().await.map_err(step)?;
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(step)?;
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(step)?;
        tx.commit().await.map_err(step)?;
        tracing::info!(version, name, "applied migration");
    }
    for &(name, version, sql) in PROJECTIONS {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT version FROM projections WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
        match found {
            Some(v) if v == version => {}
            Some(found) => {
                return Err(MigrateError::ProjectionVersion {
                    name: name.to_string(),
                    found,
                    wanted: version,
                })
            }
            None => {
                let has_events: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM scan_events)")
                        .fetch_one(&mut *conn)
                        .await?;
                if has_events {
                    // An empty projection over a non-empty ledger would serve wrong answers.
                    return Err(MigrateError::ProjectionMissing {
                        name: name.to_string(),
                    });
                }
                // A fresh database: the ledger is empty, so the projection starts empty too.
                let mut tx = conn.begin().await?;
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO projections (name, version) VALUES ($1, $2)")
                    .bind(name)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!(name, version, "created projection");
            }
        }
    }
    Ok(())
}
