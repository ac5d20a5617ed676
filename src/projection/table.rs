//! Projection tables as whole objects, for the operator's replays: which projections
//! this build knows, scratch and shadow copies, the swap, the comparison with the live
//! table, and the registry of built versions. The events come from the ledger's
//! replay, which drives these steps.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::PgConnection;

use super::scan_status::{self, FoldError, ScanStatus};
use super::PROJECTIONS;
use crate::domain::{RecordedEvent, ScanId};

/// A projection this build knows: name (= its main table), version, DDL, and its tables
/// (the main one first), each with its key columns.
#[derive(Clone, Copy, Debug)]
pub struct Projection {
    pub name: &'static str,
    pub version: i32,
    pub ddl: &'static str,
    pub tables: &'static [TableDef],
}

/// One table of a projection. Every table's name starts with the projection's name, so
/// one prefix names a whole shadow or scratch copy (`finding_history_shadow`,
/// `finding_history_shadow_scans`).
#[derive(Clone, Copy, Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub key: &'static [&'static str],
}

#[derive(Debug, thiserror::Error)]
#[error("unknown projection {0:?}; known: scan_status, finding_history")]
pub struct UnknownProjection(pub String);

impl Projection {
    pub fn named(name: &str) -> Result<Self, UnknownProjection> {
        Self::all()
            .find(|p| p.name == name)
            .ok_or_else(|| UnknownProjection(name.to_string()))
    }

    pub fn all() -> impl Iterator<Item = Projection> {
        PROJECTIONS.iter().copied()
    }

    pub fn is_scan_status(&self) -> bool {
        self.name == scan_status::TABLE
    }

    /// `table`'s name in the copy whose main table is `prefix`.
    fn renamed(&self, table: &str, prefix: &str) -> String {
        table.replacen(self.name, prefix, 1)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event {seq} does not fold: {source}")]
    Fold {
        seq: i64,
        #[source]
        source: FoldError,
    },
}

/// Fold `events` (in `seq` order) into a scan_status-shaped `table` (a shadow, a scratch).
pub async fn apply_status_batch(
    conn: &mut PgConnection,
    table: &str,
    events: &[RecordedEvent],
) -> Result<(), ApplyError> {
    let mut ids: Vec<uuid::Uuid> = events.iter().map(|e| e.scan_id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut rows: HashMap<ScanId, ScanStatus> =
        scan_status::read_rows(conn, table, &ids, "").await?;
    for e in events {
        let row = scan_status::fold(rows.remove(&e.scan_id), e)
            .map_err(|source| ApplyError::Fold { seq: e.seq, source })?;
        rows.insert(e.scan_id, row);
    }
    let rows: Vec<&ScanStatus> = rows.values().collect();
    scan_status::upsert_into(conn, table, &rows).await?;
    Ok(())
}

pub async fn exists(conn: &mut PgConnection, table: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(conn)
        .await
}

/// Create the shadow copy of `p` (main table `shadow`) with `p`'s DDL, dropping one a
/// crashed earlier rebuild left.
pub async fn create_shadow(
    conn: &mut PgConnection,
    p: Projection,
    shadow: &str,
) -> Result<(), sqlx::Error> {
    for t in p.tables {
        sqlx::raw_sql(&format!(
            "DROP TABLE IF EXISTS {}",
            p.renamed(t.name, shadow)
        ))
        .execute(&mut *conn)
        .await?;
    }
    sqlx::raw_sql(&p.ddl.replace(p.name, shadow))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A temporary copy of `p`'s live tables (main table `scratch`), dropped when the
/// transaction ends.
pub async fn create_scratch(
    tx: &mut PgConnection,
    p: Projection,
    scratch: &str,
) -> Result<(), sqlx::Error> {
    for t in p.tables {
        sqlx::raw_sql(&format!(
            "CREATE TEMP TABLE {} (LIKE {} INCLUDING ALL) ON COMMIT DROP",
            p.renamed(t.name, scratch),
            t.name
        ))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Make writers of `p`'s live table wait until the caller's transaction ends. Every
/// append writes the live tables, so once this lock is held every append has committed
/// and none can start.
pub async fn lock_live(tx: &mut PgConnection, p: Projection) -> Result<(), sqlx::Error> {
    if exists(tx, p.name).await? {
        sqlx::raw_sql(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", p.name))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Swap the shadow copy (main table `shadow`) in for the live tables (indexes renamed to
/// their canonical names) and record the version. Runs in the caller's transaction, which
/// holds the live main table's lock.
pub async fn swap(tx: &mut PgConnection, p: Projection, shadow: &str) -> Result<(), sqlx::Error> {
    for t in p.tables {
        let live = t.name;
        let copy = p.renamed(live, shadow);
        if exists(tx, live).await? {
            sqlx::raw_sql(&format!("DROP TABLE {live}"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::raw_sql(&format!("ALTER TABLE {copy} RENAME TO {live}"))
            .execute(&mut *tx)
            .await?;
        let indexes: Vec<String> =
            sqlx::query_scalar("SELECT indexname FROM pg_indexes WHERE tablename = $1")
                .bind(live)
                .fetch_all(&mut *tx)
                .await?;
        for index in indexes.iter().filter(|i| i.starts_with(shadow)) {
            let canonical = index.replacen(shadow, p.name, 1);
            sqlx::raw_sql(&format!("ALTER INDEX {index} RENAME TO {canonical}"))
                .execute(&mut *tx)
                .await?;
        }
    }
    record_version(tx, p).await
}

async fn record_version(conn: &mut PgConnection, p: Projection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projections (name, version) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, built_at = now()",
    )
    .bind(p.name)
    .bind(p.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One row where a live table and the replay disagree (`key`: its key columns).
#[derive(Debug, Serialize)]
pub struct RowDifference {
    pub table: String,
    pub key: serde_json::Value,
    pub live: Option<serde_json::Value>,
    pub replayed: Option<serde_json::Value>,
}

/// Rows of the live tables and the scratch copy (main table `scratch`) that differ, in
/// table and key order.
pub async fn differences(
    tx: &mut PgConnection,
    p: Projection,
    scratch: &str,
) -> Result<Vec<RowDifference>, sqlx::Error> {
    let mut out = Vec::new();
    for t in p.tables {
        let table = t.name;
        let copy = p.renamed(table, scratch);
        let join: Vec<String> = t.key.iter().map(|k| format!("r.{k} = l.{k}")).collect();
        let key_obj: Vec<String> = t
            .key
            .iter()
            .map(|k| format!("'{k}', coalesce(to_jsonb(l.{k}), to_jsonb(r.{k}))"))
            .collect();
        let diffs: Vec<(
            serde_json::Value,
            Option<serde_json::Value>,
            Option<serde_json::Value>,
        )> = sqlx::query_as(&format!(
            "SELECT jsonb_build_object({}), to_jsonb(l), to_jsonb(r)
               FROM {table} l FULL JOIN {copy} r ON {}
              WHERE to_jsonb(l) IS DISTINCT FROM to_jsonb(r)
              ORDER BY 1",
            key_obj.join(", "),
            join.join(" AND ")
        ))
        .fetch_all(&mut *tx)
        .await?;
        out.extend(
            diffs
                .into_iter()
                .map(|(key, live, replayed)| RowDifference {
                    table: table.to_string(),
                    key,
                    live,
                    replayed,
                }),
        );
    }
    Ok(out)
}

/// The live table's size and the highest global position it applied (`None`: no table).
pub async fn rows_and_position(
    conn: &mut PgConnection,
    p: Projection,
) -> Result<Option<(i64, Option<i64>)>, sqlx::Error> {
    if !exists(conn, p.name).await? {
        return Ok(None);
    }
    let (rows, last): (i64, Option<i64>) =
        sqlx::query_as(&format!("SELECT count(*), max(last_seq) FROM {}", p.name))
            .fetch_one(&mut *conn)
            .await?;
    Ok(Some((rows, last)))
}

/// The version recorded in the registry (`None`: never built).
pub async fn stored_version(
    conn: &mut PgConnection,
    p: Projection,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM projections WHERE name = $1")
        .bind(p.name)
        .fetch_optional(&mut *conn)
        .await
}

/// Create `p` empty at this build's version (only over an empty ledger: an empty
/// projection over a non-empty ledger would serve wrong answers).
pub async fn install_empty(conn: &mut PgConnection, p: Projection) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(p.ddl).execute(&mut *tx).await?;
    record_version(&mut tx, p).await?;
    tx.commit().await?;
    tracing::info!(name = p.name, version = p.version, "created projection");
    Ok(())
}
