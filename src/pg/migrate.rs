//! Forward-only migrations of the ledger's tables (`migrations/`), embedded in the
//! binary so a deployed service never runs against SQL it was not built with. Read
//! models are installed afterwards by `ledger::schema`, which knows whether the ledger
//! holds events.

use sqlx::Connection;

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
    (
        4,
        "integrity",
        include_str!("../../migrations/0004_integrity.sql"),
    ),
    (
        5,
        "token_changes",
        include_str!("../../migrations/0005_token_changes.sql"),
    ),
    (
        6,
        "governance",
        include_str!("../../migrations/0006_governance.sql"),
    ),
    (
        7,
        "estates",
        include_str!("../../migrations/0007_estates.sql"),
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
    #[error("database error during migration: {0}")]
    Db(#[from] sqlx::Error),
}

/// Take the migration lock (serializes `migrate` runs of several replicas), held by
/// this session until [`unlock`].
pub async fn lock(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn unlock(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Apply pending migrations, one transaction each (the caller holds [`lock`]).
pub async fn apply(conn: &mut sqlx::PgConnection) -> Result<(), MigrateError> {
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
    Ok(())
}

/// The migrations of this build not applied to the database of `conn`; `None` when
/// this login cannot tell (no privilege on `schema_migrations`: a database last migrated
/// by a build that did not grant it, which `migrate` repairs).
pub async fn pending(
    conn: &mut sqlx::PgConnection,
) -> Result<Option<Vec<(i32, &'static str)>>, sqlx::Error> {
    let (exists, readable): (bool, bool) = sqlx::query_as(
        "SELECT to_regclass('schema_migrations') IS NOT NULL,
                coalesce(has_table_privilege(to_regclass('schema_migrations'), 'SELECT'), false)",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        return Ok(Some(MIGRATIONS.iter().map(|&(v, n, _)| (v, n)).collect()));
    }
    if !readable {
        return Ok(None);
    }
    let applied: Vec<i32> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?;
    Ok(Some(
        MIGRATIONS
            .iter()
            .filter(|(v, _, _)| !applied.contains(v))
            .map(|&(v, n, _)| (v, n))
            .collect(),
    ))
}

/// Take from PUBLIC what lets any login plant objects the ledger might resolve:
/// temporary tables (TEMP) and new schemas or objects (CREATE) in this database and its
/// current schema. Idempotent; run by every migrate, and on every database cloned from
/// a template (a clone does not inherit the template's database grants).
pub async fn harden(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "DO $$ BEGIN
            EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
            EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
         END $$",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
