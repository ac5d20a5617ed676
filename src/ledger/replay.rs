//! Replaying the ledger into projections, for the operator's `projections status`,
//! `verify` and `rebuild`.
//!
//! Replays run the same folds as the inline path. `verify` folds the ledger into a
//! temporary table inside one REPEATABLE READ transaction and compares it with the live
//! table *in the same snapshot*, so concurrent writers cannot cause false differences.
//! `rebuild scan_status` folds into a shadow table while the service keeps writing, then
//! catches up with every event the shadow has not applied (commit order does not matter:
//! it compares stream versions), and swaps the shadow in under a short EXCLUSIVE lock that
//! makes writers wait, not fail. `rebuild finding_history` holds that lock for the whole
//! replay: only completions wait; polls, claims and heartbeats go on.

use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{Connection, PgConnection, Row};

use super::read::{decode_row, EVENT_COLUMNS};
use super::LedgerError;
use crate::domain::{Event, RecordedEvent};
use crate::projection::finding_history;
use crate::projection::table::{self, ApplyError, Projection, RowDifference, UnknownProjection};

/// Events folded per round trip.
const BATCH: i64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Unknown(#[from] UnknownProjection),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// Progress reports: (applied, to apply, per second).
pub type ProgressFn<'a> = &'a mut (dyn FnMut(u64, u64, f64) + Send);

/// Fold every event visible in the connection's snapshot into `table`, in `seq` order.
async fn replay_status(
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
        let batch = read_batch(conn, after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        table::apply_status_batch(conn, table, &batch).await?;
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

/// Fold every completion visible in the connection's snapshot into a finding-history table.
async fn replay_history(
    conn: &mut PgConnection,
    table: &str,
    progress: ProgressFn<'_>,
) -> Result<u64, RebuildError> {
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scan_events WHERE kind = 'Completed'")
            .fetch_one(&mut *conn)
            .await?;
    let started = Instant::now();
    let (mut after, mut applied) = (0i64, 0u64);
    loop {
        let batch = completions(conn, after, 1_000).await?;
        let Some((last, _)) = batch.last() else { break };
        after = last.seq;
        let ids: Vec<uuid::Uuid> = batch.iter().map(|(e, _)| e.scan_id.0).collect();
        let findings = super::findings::of_scans(conn, &ids).await?;
        let none = Vec::new();
        let completions: Vec<finding_history::Completion<'_>> = batch
            .iter()
            .filter_map(|(e, subscription_id)| {
                let Event::Completed(c) = &e.event else {
                    return None;
                };
                Some(finding_history::Completion {
                    subscription_id,
                    scan_id: e.scan_id,
                    at: c.origin.as_ref().map_or(e.recorded_at, |o| o.occurred_at),
                    seq: e.seq,
                    findings: findings.get(&e.scan_id).unwrap_or(&none),
                })
            })
            .collect();
        table::apply_history_batch(conn, table, &completions).await?;
        applied += batch.len() as u64;
        progress(
            applied,
            total as u64,
            applied as f64 / started.elapsed().as_secs_f64().max(1e-9),
        );
    }
    Ok(applied)
}

async fn replay(
    conn: &mut PgConnection,
    p: Projection,
    table: &str,
    progress: ProgressFn<'_>,
) -> Result<u64, RebuildError> {
    if p.is_scan_status() {
        replay_status(conn, table, progress).await
    } else {
        replay_history(conn, table, progress).await
    }
}

/// Fold what `table` has not applied yet (written by transactions from `min_tx` on).
async fn catch_up(conn: &mut PgConnection, table: &str, min_tx: i64) -> Result<u64, RebuildError> {
    let mut applied = 0;
    loop {
        let batch = unapplied(conn, table, min_tx, BATCH).await?;
        applied += batch.len() as u64;
        table::apply_status_batch(conn, table, &batch).await?;
        if (batch.len() as i64) < BATCH {
            return Ok(applied);
        }
    }
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
    let p = Projection::named(name)?;
    let table = p.name;
    let mut tx = owner.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let scratch = format!("{table}_verify");
    table::create_scratch(&mut tx, p, &scratch).await?;
    let events = replay(&mut tx, p, &scratch, progress).await?;
    let rows = table::rows_and_position(&mut tx, p)
        .await?
        .map_or(0, |(rows, _)| rows);
    let differences = table::differences(&mut tx, p, &scratch).await?;
    tx.rollback().await?;
    Ok(VerifyReport {
        projection: name.to_string(),
        events,
        rows,
        differences,
    })
}

#[derive(Debug, Serialize)]
pub struct RebuildReport {
    pub projection: String,
    pub version: i32,
    pub events_replayed: u64,
    pub events_caught_up: u64,
    pub seconds: f64,
    /// How long writers waited on the swap (the whole replay for finding_history).
    pub swap_ms: f64,
}

/// Rebuild `name` at the DDL version this build carries. Runs as the owner; the service
/// may keep running.
pub async fn rebuild(
    owner: &mut PgConnection,
    name: &str,
    progress: ProgressFn<'_>,
) -> Result<RebuildReport, RebuildError> {
    let p = Projection::named(name)?;
    let started = Instant::now();
    let shadow = format!("{}_shadow", p.name);

    if p.name == finding_history::TABLE {
        let mut tx = owner.begin().await?;
        table::lock_live(&mut tx, p).await?;
        table::create_shadow(&mut tx, p, &shadow).await?;
        let replayed = replay(&mut tx, p, &shadow, progress).await?;
        table::swap(&mut tx, p, &shadow).await?;
        tx.commit().await?;
        let seconds = started.elapsed().as_secs_f64();
        return Ok(RebuildReport {
            projection: name.to_string(),
            version: p.version,
            events_replayed: replayed,
            events_caught_up: 0,
            seconds,
            swap_ms: seconds * 1000.0,
        });
    }

    // 1. Everything visible in one snapshot, folded into the shadow.
    let mut tx = owner.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let min_tx: i64 =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            .fetch_one(&mut *tx)
            .await?;
    table::create_shadow(&mut tx, p, &shadow).await?;
    let replayed = replay(&mut tx, p, &shadow, progress).await?;
    tx.commit().await?;

    // 2. Catch up with what was written meanwhile (without blocking writers).
    let mut caught_up = catch_up(owner, &shadow, min_tx).await?;

    // 3. Writers wait for this short transaction: final catch-up, then the swap.
    let swap_started = Instant::now();
    let mut tx = owner.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '30s'")
        .execute(&mut *tx)
        .await?;
    table::lock_live(&mut tx, p).await?;
    caught_up += catch_up(&mut tx, &shadow, min_tx).await?;
    table::swap(&mut tx, p, &shadow).await?;
    tx.commit().await?;
    let swap_ms = swap_started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        projection = name,
        version = p.version,
        replayed,
        caught_up,
        swap_ms,
        "projection rebuilt"
    );
    Ok(RebuildReport {
        projection: name.to_string(),
        version: p.version,
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
    /// Events not applied (exact for scan_status; finding_history keeps no per-scan
    /// position, so none is reported for it).
    pub lag_events: Option<i64>,
}

pub async fn status(conn: &mut PgConnection) -> Result<Vec<ProjectionStatus>, RebuildError> {
    let mut out = Vec::new();
    let ledger_head: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM scan_events")
        .fetch_one(&mut *conn)
        .await?;
    for p in Projection::all() {
        let stored_version = table::stored_version(conn, p).await?;
        let (rows, last_position, lag_events) = match table::rows_and_position(conn, p).await? {
            None => (None, None, None),
            Some((rows, last)) => {
                // Exact for scan_status; finding_history keeps no per-scan position.
                let lag = if p.is_scan_status() {
                    Some(lag_behind(conn, p.name).await?)
                } else {
                    None
                };
                (Some(rows), last, lag)
            }
        };
        out.push(ProjectionStatus {
            name: p.name.to_string(),
            table: p.name.to_string(),
            stored_version,
            code_version: p.version,
            rows,
            last_position,
            ledger_head,
            lag_events,
        });
    }
    Ok(out)
}

/// Events a scan_status-shaped `table` has not applied.
async fn lag_behind(conn: &mut PgConnection, table: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM scan_events e LEFT JOIN {table} p ON p.scan_id = e.scan_id
          WHERE e.version > coalesce(p.version, 0)"
    ))
    .fetch_one(&mut *conn)
    .await
}

/// Events after `after_seq` in `seq` order, read on the caller's connection (and so in
/// its snapshot): replays run inside one REPEATABLE READ transaction.
async fn read_batch(
    conn: &mut PgConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<RecordedEvent>, LedgerError> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM scan_events WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(decode_row).collect()
}

/// Events that `table` (a scan_status-shaped projection) has not applied yet, among those
/// written by transactions from `min_tx_id` on, in `seq` order (which is version order
/// within a scan). Commit order does not matter: whatever committed late is still here.
async fn unapplied(
    conn: &mut PgConnection,
    table: &str,
    min_tx_id: i64,
    limit: i64,
) -> Result<Vec<RecordedEvent>, LedgerError> {
    let rows = sqlx::query(&format!(
        "SELECT e.seq, e.scan_id, e.version, e.kind, e.attempt, e.worker_id, e.payload, e.recorded_at,
                e.tx_id::text::bigint AS tx_id
           FROM scan_events e LEFT JOIN {table} p ON p.scan_id = e.scan_id
          WHERE e.tx_id >= $1::text::xid8 AND e.version > coalesce(p.version, 0)
          ORDER BY e.seq LIMIT $2"
    ))
    .bind(min_tx_id.to_string())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(decode_row).collect()
}

/// `Completed` events after `after_seq` in `seq` order, each with its scan's subscription
/// (from its `Requested`), read on the caller's connection (for replays).
async fn completions(
    conn: &mut PgConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(RecordedEvent, String)>, LedgerError> {
    let rows = sqlx::query(
        "SELECT e.seq, e.scan_id, e.version, e.kind, e.attempt, e.worker_id, e.payload, e.recorded_at,
                e.tx_id::text::bigint AS tx_id, r.payload ->> 'subscription_id' AS subscription_id
           FROM scan_events e JOIN scan_events r ON r.scan_id = e.scan_id AND r.kind = 'Requested'
          WHERE e.kind = 'Completed' AND e.seq > $1
          ORDER BY e.seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let sub: String = row.try_get("subscription_id")?;
            Ok((decode_row(row)?, sub))
        })
        .collect()
}
