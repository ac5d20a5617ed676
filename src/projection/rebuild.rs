//! Operator commands over projections: `status`, `verify` and `rebuild`.
//!
//! Replays run the same folds as the inline path. `verify` folds the ledger into a
//! temporary table inside one REPEATABLE READ transaction and compares it with the live
//! table *in the same snapshot*, so concurrent writers cannot cause false differences.
//! `rebuild scan_status` folds into a shadow table while the service keeps writing, then
//! catches up with every event the shadow has not applied (commit order does not matter:
//! it compares stream versions), and swaps the shadow in under a short EXCLUSIVE lock that
//! makes writers wait, not fail. `rebuild finding_history` holds that lock for the whole
//! replay: only completions wait; polls, claims and heartbeats go on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{Connection, PgConnection};

use super::finding_history;
use super::scan_status::{self, fold, FoldError, ScanStatus};
use crate::ledger::{self, Event, LedgerError, RecordedEvent, ScanId};
use crate::pg::migrate::PROJECTIONS;

/// Events folded per round trip.
const BATCH: i64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("unknown projection {0:?}; known: scan_status, finding_history")]
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

/// The projections this build knows: name (= table), key columns, version, DDL.
#[derive(Clone, Copy)]
struct Projection {
    name: &'static str,
    key: &'static [&'static str],
    version: i32,
    ddl: &'static str,
}

fn known(name: &str) -> Result<Projection, RebuildError> {
    let (name, version, ddl) = PROJECTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .copied()
        .ok_or_else(|| RebuildError::Unknown(name.to_string()))?;
    let key: &'static [&'static str] = if name == scan_status::TABLE {
        &["scan_id"]
    } else {
        &["subscription_id", "fingerprint"]
    };
    Ok(Projection {
        name,
        key,
        version,
        ddl,
    })
}

/// Progress reports: (applied, to apply, per second).
pub type ProgressFn<'a> = &'a mut (dyn FnMut(u64, u64, f64) + Send);

/// Fold `events` (in `seq` order) into a scan_status-shaped `table`.
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
        let batch = ledger::completions(conn, after, 1_000).await?;
        let Some((last, _)) = batch.last() else { break };
        after = last.seq;
        let ids: Vec<uuid::Uuid> = batch.iter().map(|(e, _)| e.scan_id.0).collect();
        let findings = ledger::findings_of(conn, &ids).await?;
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
        finding_history::apply(conn, table, &completions).await?;
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
    if p.name == scan_status::TABLE {
        replay_status(conn, table, progress).await
    } else {
        replay_history(conn, table, progress).await
    }
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

/// One row where the live table and the replay disagree (`key`: its key columns).
#[derive(Debug, Serialize)]
pub struct RowDifference {
    pub key: serde_json::Value,
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
    let p = known(name)?;
    let table = p.name;
    let mut tx = owner.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let scratch = format!("{table}_verify");
    sqlx::raw_sql(&format!(
        "CREATE TEMP TABLE {scratch} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) ON COMMIT DROP;
         ALTER TABLE {scratch} ADD PRIMARY KEY ({})",
        p.key.join(", ")
    ))
    .execute(&mut *tx)
    .await?;
    let events = replay(&mut tx, p, &scratch, progress).await?;
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut *tx)
        .await?;
    let join: Vec<String> = p.key.iter().map(|k| format!("r.{k} = l.{k}")).collect();
    let key_obj: Vec<String> = p
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
               FROM {table} l FULL JOIN {scratch} r ON {}
              WHERE to_jsonb(l) IS DISTINCT FROM to_jsonb(r)
              ORDER BY 1",
        key_obj.join(", "),
        join.join(" AND ")
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
            .map(|(key, live, replayed)| RowDifference {
                key,
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
    /// How long writers waited on the swap (the whole replay for finding_history).
    pub swap_ms: f64,
}

async fn exists(conn: &mut PgConnection, table: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(conn)
        .await
}

/// Swap `shadow` in for the live table (indexes renamed to their canonical names) and
/// record the version. Runs in the caller's transaction, which holds the live table's lock.
async fn swap(tx: &mut PgConnection, p: Projection, shadow: &str) -> Result<(), RebuildError> {
    let live = p.name;
    if exists(tx, live).await? {
        sqlx::raw_sql(&format!("DROP TABLE {live}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::raw_sql(&format!("ALTER TABLE {shadow} RENAME TO {live}"))
        .execute(&mut *tx)
        .await?;
    let indexes: Vec<String> =
        sqlx::query_scalar("SELECT indexname FROM pg_indexes WHERE tablename = $1")
            .bind(live)
            .fetch_all(&mut *tx)
            .await?;
    for index in indexes.iter().filter(|i| i.starts_with(shadow)) {
        let canonical = index.replacen(shadow, live, 1);
        sqlx::raw_sql(&format!("ALTER INDEX {index} RENAME TO {canonical}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO projections (name, version) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, built_at = now()",
    )
    .bind(p.name)
    .bind(p.version)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Rebuild `name` at the DDL version this build carries. Runs as the owner; the service
/// may keep running.
pub async fn rebuild(
    owner: &mut PgConnection,
    name: &str,
    progress: ProgressFn<'_>,
) -> Result<RebuildReport, RebuildError> {
    let p = known(name)?;
    let started = Instant::now();
    let shadow = format!("{}_shadow", p.name);
    // A crashed earlier rebuild may have left its shadow.
    sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {shadow}"))
        .execute(&mut *owner)
        .await?;

    if p.name == finding_history::TABLE {
        let mut tx = owner.begin().await?;
        if exists(&mut tx, p.name).await? {
            sqlx::raw_sql(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", p.name))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::raw_sql(&p.ddl.replace(p.name, &shadow))
            .execute(&mut *tx)
            .await?;
        let replayed = replay(&mut tx, p, &shadow, progress).await?;
        swap(&mut tx, p, &shadow).await?;
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
    sqlx::raw_sql(&p.ddl.replace(p.name, &shadow))
        .execute(&mut *tx)
        .await?;
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
    if exists(&mut tx, p.name).await? {
        // Every append writes the live table, so once this lock is held every append
        // has committed and none can start.
        sqlx::raw_sql(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", p.name))
            .execute(&mut *tx)
            .await?;
    }
    caught_up += catch_up(&mut tx, &shadow, min_tx).await?;
    swap(&mut tx, p, &shadow).await?;
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
    for &(name, code_version, _) in PROJECTIONS {
        let stored_version: Option<i32> =
            sqlx::query_scalar("SELECT version FROM projections WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
        let (rows, last_position, lag_events) = if exists(conn, name).await? {
            let (rows, last): (i64, Option<i64>) =
                sqlx::query_as(&format!("SELECT count(*), max(last_seq) FROM {name}"))
                    .fetch_one(&mut *conn)
                    .await?;
            let lag = if name == scan_status::TABLE {
                Some(
                    sqlx::query_scalar(&format!(
                        "SELECT count(*) FROM scan_events e LEFT JOIN {name} p ON p.scan_id = e.scan_id
                          WHERE e.version > coalesce(p.version, 0)"
                    ))
                    .fetch_one(&mut *conn)
                    .await?,
                )
            } else {
                None
            };
            (Some(rows), last, lag)
        } else {
            (None, None, None)
        };
        out.push(ProjectionStatus {
            name: name.to_string(),
            table: name.to_string(),
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
