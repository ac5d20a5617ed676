//! Operator commands over projections: `status`, `verify` and `rebuild`.
//!
//! Both replays run the same fold as the inline path. `verify` folds the whole ledger
//! into a temporary table inside one REPEATABLE READ transaction and compares it with the
//! live table *in the same snapshot*, so concurrent writers cannot cause false
//! differences. `rebuild` folds into a shadow table while the service keeps writing, then
//! catches up with every event the shadow has not applied (commit order does not matter:
//! it compares stream versions), and swaps the shadow in under a short EXCLUSIVE lock
//! that makes writers wait, not fail.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{Connection, PgConnection};

use super::scan_status::{self, fold, FoldError, ScanStatus, TABLE};
use crate::ledger::{self, LedgerError, RecordedEvent, ScanId};
use crate::pg::migrate::PROJECTIONS;

/// Events folded per round trip.
const BATCH: i64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("unknown projection {0:?}; known: scan_status")]
    Unknown(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event {seq} does not fold: {source}")]
    Fold {
        seq: i64,
        #[source]
        source: FoldError,
    },
}

fn known(name: &str) -> Result<(i32, &'static str), RebuildError> {
    PROJECTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, v, sql)| (*v, *sql))
        .ok_or_else(|| RebuildError::Unknown(name.to_string()))
}

/// Progress reports: (events applied, events to apply, events per second).
pub type ProgressFn<'a> = &'a mut (dyn FnMut(u64, u64, f64) + Send);

/// Fold `events` (in `seq` order) into `table`.
async fn apply(
    conn: &mut PgConnection,
    table: &str,
    events: &[RecordedEvent],
) -> Result<(), RebuildError> {
    let mut ids: Vec<uuid::Uuid> = events.iter().map(|e| e.scan_id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut rows: HashMap<ScanId, ScanStatus> =
        scan_status::read_from_table(conn, table, &ids).await?;
    for e in events {
        let row = fold(rows.remove(&e.scan_id), e)
            .map_err(|source| RebuildError::Fold { seq: e.seq, source })?;
        rows.insert(e.scan_id, row);
    }
    let rows: Vec<&ScanStatus> = rows.values().collect();
    scan_status::upsert_into(conn, table, &rows).await?;
    Ok(())
}

/// Fold every event visible in the connection's snapshot into `table`, in `seq` order.
async fn replay_snapshot(
    conn: &mut PgConnection,
    table: &str,
    progress: ProgressFn<'_>,
) -> Result<u64, RebuildError> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM scan_events")
        .fetch_one(&mut *conn)
        .await?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let (mut after, mut applied) = (0i64, 0u64);
    loop {
        let batch = ledger::read_batch(conn, after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        apply(conn, table, &batch).await?;
        applied += batch.len() as u64;
        if last_report.elapsed() > Duration::from_millis(500) {
            progress(
                applied,
                total as u64,
                applied as f64 / started.elapsed().as_secs_f64(),
            );
            last_report = Instant::now();
        }
    }
    progress(
        applied,
        total as u64,
        applied as f64 / started.elapsed().as_secs_f64().max(1e-9),
    );
    Ok(applied)
}

/// Fold what `table` has not applied yet (written by transactions from `min_tx` on).
async fn catch_up(conn: &mut PgConnection, table: &str, min_tx: i64) -> Result<u64, RebuildError> {
    let mut applied = 0;
    loop {
        let batch = ledger::unapplied(conn, table, min_tx, BATCH).await?;
        applied += batch.len() as u64;
        apply(conn, table, &batch).await?;
        if (batch.len() as i64) < BATCH {
            return Ok(applied);
        }
    }
}

/// One row where the live table and the replay disagree.
#[derive(Debug, Serialize)]
pub struct RowDifference {
    pub scan_id: ScanId,
    pub live: Option<serde_json::Value>,
    pub replayed: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub projection: String,
    pub events: u64,
    pub rows: i64,
    pub differences: Vec<RowDifference>,
}

/// Replay the ledger into a scratch table and report every row that differs from the
/// live table (both read in one snapshot). Writes nothing that outlives the call.
pub async fn verify(
    owner: &mut PgConnection,
    name: &str,
    progress: ProgressFn<'_>,
) -> Result<VerifyReport, RebuildError> {
    known(name)?;
    let mut tx = owner.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let scratch = "scan_status_verify";
    sqlx::raw_sql(&format!(
        "CREATE TEMP TABLE {scratch} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) ON COMMIT DROP;
         ALTER TABLE {scratch} ADD PRIMARY KEY (scan_id)"
    ))
    .execute(&mut *tx)
    .await?;
    let events = replay_snapshot(&mut tx, scratch, progress).await?;
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {TABLE}"))
        .fetch_one(&mut *tx)
        .await?;
    let diffs: Vec<(
        uuid::Uuid,
        Option<serde_json::Value>,
        Option<serde_json::Value>,
    )> = sqlx::query_as(&format!(
        "SELECT coalesce(l.scan_id, r.scan_id), to_jsonb(l), to_jsonb(r)
           FROM {TABLE} l FULL JOIN {scratch} r ON r.scan_id = l.scan_id
          WHERE to_jsonb(l) IS DISTINCT FROM to_jsonb(r)
          ORDER BY 1"
    ))
    .fetch_all(&mut *tx)
    .await?;
    tx.rollback().await?;
    Ok(VerifyReport {
        projection: name.to_string(),
        events,
        rows,
        differences: diffs
            .into_iter()
            .map(|(id, live, replayed)| RowDifference {
                scan_id: ScanId(id),
                live,
                replayed,
            })
            .collect(),
    })
}

#[derive(Debug, Serialize)]
pub struct RebuildReport {
    pub projection: String,
    pub version: i32,
    pub events_replayed: u64,
    pub events_caught_up: u64,
    pub seconds: f64,
    /// How long writers waited on the swap.
    pub swap_ms: f64,
}

/// Rebuild `name` at the DDL version this build carries: replay into a shadow table,
/// catch up, swap in. Runs as the owner; the service may keep running.
pub async fn rebuild(
    owner: &mut PgConnection,
    name: &str,
    progress: ProgressFn<'_>,
) -> Result<RebuildReport, RebuildError> {
    let (version, ddl) = known(name)?;
    let started = Instant::now();
    let shadow = format!("{TABLE}_shadow");
    // A crashed earlier rebuild may have left its shadow.
    sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {shadow}"))
        .execute(&mut *owner)
        .await?;

    // 1. Everything visible in one snapshot, folded into the shadow.
    let mut tx = owner.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let min_tx: i64 =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            .fetch_one(&mut *tx)
            .await?;
    sqlx::raw_sql(&ddl.replace(TABLE, &shadow))
        .execute(&mut *tx)
        .await?;
    let replayed = replay_snapshot(&mut tx, &shadow, progress).await?;
    tx.commit().await?;

    // 2. Catch up with what was written meanwhile (without blocking writers).
    let mut caught_up = catch_up(owner, &shadow, min_tx).await?;

    // 3. Writers wait for this short transaction: final catch-up, then the swap.
    let swap_started = Instant::now();
    let mut tx = owner.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '30s'")
        .execute(&mut *tx)
        .await?;
    let live_exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(TABLE)
        .fetch_one(&mut *tx)
        .await?;
    if live_exists {
        // Every append writes the live table, so once this lock is held every append
        // has committed and none can start.
        sqlx::raw_sql(&format!("LOCK TABLE {TABLE} IN EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await?;
    }
    caught_up += catch_up(&mut tx, &shadow, min_tx).await?;
    if live_exists {
        sqlx::raw_sql(&format!("DROP TABLE {TABLE}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::raw_sql(&format!("ALTER TABLE {shadow} RENAME TO {TABLE}"))
        .execute(&mut *tx)
        .await?;
    let indexes: Vec<String> =
        sqlx::query_scalar("SELECT indexname FROM pg_indexes WHERE tablename = $1")
            .bind(TABLE)
            .fetch_all(&mut *tx)
            .await?;
    for index in indexes.iter().filter(|i| i.starts_with(&shadow)) {
        let canonical = index.replacen(&shadow, TABLE, 1);
        sqlx::raw_sql(&format!("ALTER INDEX {index} RENAME TO {canonical}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO projections (name, version) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, built_at = now()",
    )
    .bind(name)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let swap_ms = swap_started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        projection = name,
        version,
        replayed,
        caught_up,
        swap_ms,
        "projection rebuilt"
    );
    Ok(RebuildReport {
        projection: name.to_string(),
        version,
        events_replayed: replayed,
        events_caught_up: caught_up,
        seconds: started.elapsed().as_secs_f64(),
        swap_ms,
    })
}

#[derive(Debug, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub table: String,
    /// Version recorded in the `projections` registry (None: not built).
    pub stored_version: Option<i32>,
    /// Version this build folds into.
    pub code_version: i32,
    pub rows: Option<i64>,
    /// Highest global position applied.
    pub last_position: Option<i64>,
    pub ledger_head: Option<i64>,
    /// Events the projection has not applied (0 for an inline projection in good health).
    pub lag_events: Option<i64>,
}

pub async fn status(conn: &mut PgConnection) -> Result<Vec<ProjectionStatus>, RebuildError> {
    let mut out = Vec::new();
    for &(name, code_version, _) in PROJECTIONS {
        let stored_version: Option<i32> =
            sqlx::query_scalar("SELECT version FROM projections WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
        let ledger_head: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM scan_events")
            .fetch_one(&mut *conn)
            .await?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(TABLE)
            .fetch_one(&mut *conn)
            .await?;
        let (rows, last_position, lag_events) = if exists {
            let (rows, last): (i64, Option<i64>) =
                sqlx::query_as(&format!("SELECT count(*), max(last_seq) FROM {TABLE}"))
                    .fetch_one(&mut *conn)
                    .await?;
            let lag: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM scan_events e LEFT JOIN {TABLE} p ON p.scan_id = e.scan_id
                  WHERE e.version > coalesce(p.version, 0)"
            ))
            .fetch_one(&mut *conn)
            .await?;
            (Some(rows), last, Some(lag))
        } else {
            (None, None, None)
        };
        out.push(ProjectionStatus {
            name: name.to_string(),
            table: TABLE.to_string(),
            stored_version,
            code_version,
            rows,
            last_position,
            ledger_head,
            lag_events,
        });
    }
    Ok(out)
}
