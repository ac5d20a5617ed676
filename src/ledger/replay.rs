//! Replaying the ledger into projections, for the operator's `projections status`,
//! `verify` and `rebuild`.
//!
//! Replays run the same folds as the inline path. `verify` folds the ledger into
//! temporary tables inside one REPEATABLE READ transaction and compares them with the live
//! tables *in the same snapshot*, so concurrent writers cannot cause false differences.
//! `rebuild` reads one snapshot through a read-only transaction (which takes no
//! transaction id, so it never holds back the event feed) and writes a shadow copy in
//! short transactions while the service keeps writing; then it catches up with every
//! event the shadow has not applied (commit order does not matter: `scan_status` compares
//! stream versions, `finding_history` its list of folded completions), and swaps the
//! shadow in under a short EXCLUSIVE lock that makes writers wait, not fail.

use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{Connection, PgConnection, Row};

use super::read::{decode_row, EVENT_COLUMNS};
use super::LedgerError;
use crate::domain::{Event, RecordedEvent};
use crate::pg::Database;
use crate::projection::finding_history;
use crate::projection::table::{self, ApplyError, Projection, RowDifference, UnknownProjection};

/// Events folded per round trip.
const BATCH: i64 = 5_000;
/// Completions folded per round trip (their findings are read with them).
const COMPLETIONS_BATCH: i64 = 500;

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
    #[error(transparent)]
    Connect(#[from] crate::pg::PgError),
}

/// Progress reports: (applied, to apply, per second).
pub type ProgressFn<'a> = &'a mut (dyn FnMut(u64, u64, f64) + Send);

/// Where a replay reads and writes: one connection (verify: one transaction), or a
/// read-only snapshot and a writer (rebuild).
enum Conns<'a> {
    One(&'a mut PgConnection),
    Two {
        reader: &'a mut PgConnection,
        writer: &'a mut PgConnection,
    },
}

impl Conns<'_> {
    fn reader(&mut self) -> &mut PgConnection {
        match self {
            Conns::One(c) => c,
            Conns::Two { reader, .. } => reader,
        }
    }
}

struct Meter<'a> {
    progress: ProgressFn<'a>,
    total: u64,
    applied: u64,
    started: Instant,
    last_report: Instant,
}

impl<'a> Meter<'a> {
    fn new(progress: ProgressFn<'a>, total: i64) -> Self {
        Self {
            progress,
            total: total as u64,
            applied: 0,
            started: Instant::now(),
            last_report: Instant::now(),
        }
    }
    fn add(&mut self, n: usize) {
        self.applied += n as u64;
        if self.last_report.elapsed() > Duration::from_millis(500) {
            self.report();
            self.last_report = Instant::now();
        }
    }
    fn report(&mut self) {
        let rate = self.applied as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        (self.progress)(self.applied, self.total, rate);
    }
}

/// Fold every event visible in the reader's snapshot into `table`, in `seq` order.
async fn replay_status(
    conns: &mut Conns<'_>,
    table: &str,
    progress: ProgressFn<'_>,
) -> Result<u64, RebuildError> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM scan_events")
        .fetch_one(conns.reader())
        .await?;
    let mut meter = Meter::new(progress, total);
    let mut batch = read_batch(conns.reader(), 0, BATCH).await?;
    while let Some(last) = batch.last() {
        let after = last.seq;
        let next = match conns {
            // Two connections: the next batch is read while this one is written, so the
            // reading and the writing backends work at once.
            Conns::Two { reader, writer } => {
                let (next, applied) = tokio::join!(
                    read_batch(reader, after, BATCH),
                    table::apply_status_batch(writer, table, &batch)
                );
                applied?;
                next?
            }
            Conns::One(conn) => {
                table::apply_status_batch(conn, table, &batch).await?;
                read_batch(conn, after, BATCH).await?
            }
        };
        meter.add(batch.len());
        batch = next;
    }
    meter.report();
    Ok(meter.applied)
}

/// The time a completion folds at: the attempt's original time for imported history.
/// Matches `projection::apply_inline` (the replay must agree with the inline fold).
const COMPLETION_AT: &str =
    "coalesce((e.payload -> 'origin' ->> 'occurred_at')::timestamptz, e.recorded_at)";

/// Fold every completion visible in the reader's snapshot into a finding-history table,
/// read in time order through a cursor (so each subscription mostly takes the fold's
/// fast path) and written a bounded batch at a time.
async fn replay_history(
    conns: &mut Conns<'_>,
    table: &str,
    progress: ProgressFn<'_>,
) -> Result<u64, RebuildError> {
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scan_events WHERE kind = 'Completed'")
            .fetch_one(conns.reader())
            .await?;
    let mut meter = Meter::new(progress, total);
    sqlx::raw_sql(&format!(
        "DECLARE replay_completions NO SCROLL CURSOR FOR
         SELECT {COMPLETION_COLUMNS}
           FROM scan_events e JOIN scan_events r ON r.scan_id = e.scan_id AND r.kind = 'Requested'
          WHERE e.kind = 'Completed'
          ORDER BY {COMPLETION_AT}, e.seq"
    ))
    .execute(conns.reader())
    .await?;
    let fetch = format!("FETCH {COMPLETIONS_BATCH} FROM replay_completions");
    let mut batch = decode_completions(sqlx::query(&fetch).fetch_all(conns.reader()).await?)?;
    while !batch.is_empty() {
        let next = match conns {
            // As for scan_status: fetch the next batch while this one is written.
            Conns::Two { reader, writer } => {
                let (next, applied) = tokio::join!(
                    sqlx::query(&fetch).fetch_all(&mut **reader),
                    apply_completions(writer, table, &batch)
                );
                applied?;
                next?
            }
            Conns::One(conn) => {
                apply_completions(conn, table, &batch).await?;
                sqlx::query(&fetch).fetch_all(&mut **conn).await?
            }
        };
        meter.add(batch.len());
        batch = decode_completions(next)?;
    }
    sqlx::raw_sql("CLOSE replay_completions")
        .execute(conns.reader())
        .await?;
    meter.report();
    Ok(meter.applied)
}

const COMPLETION_COLUMNS: &str =
    "e.seq, e.scan_id, e.version, e.kind, e.attempt, e.worker_id, e.payload, e.recorded_at,
    e.tx_id::text::bigint AS tx_id, r.payload ->> 'subscription_id' AS subscription_id";

fn decode_completions(
    rows: Vec<sqlx::postgres::PgRow>,
) -> Result<Vec<(RecordedEvent, String)>, LedgerError> {
    rows.into_iter()
        .map(|row| {
            let sub: String = row.try_get("subscription_id")?;
            Ok((decode_row(row)?, sub))
        })
        .collect()
}

/// Fold completions read from the ledger into `table`, in one (sub)transaction.
async fn apply_completions(
    conn: &mut PgConnection,
    table: &str,
    batch: &[(RecordedEvent, String)],
) -> Result<(), RebuildError> {
    let completions: Vec<_> = batch
        .iter()
        .filter_map(|(e, sub)| {
            let Event::Completed(c) = &e.event else {
                return None;
            };
            let at = c.origin.as_ref().map_or(e.recorded_at, |o| o.occurred_at);
            Some((sub.as_str(), e.scan_id, at, e.seq))
        })
        .collect();
    let mut tx = conn.begin().await?;
    finding_history::apply_stored(&mut tx, table, &completions).await?;
    tx.commit().await?;
    Ok(())
}

async fn replay(
    conns: &mut Conns<'_>,
    p: Projection,
    table: &str,
    progress: ProgressFn<'_>,
) -> Result<u64, RebuildError> {
    if p.is_scan_status() {
        replay_status(conns, table, progress).await
    } else {
        replay_history(conns, table, progress).await
    }
}

/// Fold what `table` has not applied yet (written by transactions from `min_tx` on).
async fn catch_up(
    conn: &mut PgConnection,
    p: Projection,
    table: &str,
    min_tx: i64,
) -> Result<u64, RebuildError> {
    let mut applied = 0;
    loop {
        let n = if p.is_scan_status() {
            let batch = unapplied(conn, table, min_tx, BATCH).await?;
            table::apply_status_batch(conn, table, &batch).await?;
            batch.len()
        } else {
            let batch = unfolded(conn, table, min_tx, COMPLETIONS_BATCH).await?;
            apply_completions(conn, table, &batch).await?;
            batch.len()
        };
        applied += n as u64;
        let limit = if p.is_scan_status() {
            BATCH
        } else {
            COMPLETIONS_BATCH
        };
        if (n as i64) < limit {
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

/// Replay the ledger into scratch tables and report every row that differs from the
/// live tables (both read in one snapshot). Writes nothing that outlives the call. It
/// holds a transaction id while it runs (its scratch tables), which holds back the event
/// feed for as long (see docs/operations.md).
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
    let events = replay(&mut Conns::One(&mut tx), p, &scratch, progress).await?;
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
    /// How long writers waited on the swap.
    pub swap_ms: f64,
}

/// The oldest transaction still running, as seen now: every transaction below it has
/// ended, so whatever it wrote is visible to the next statement.
async fn horizon(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        .fetch_one(conn)
        .await
}

/// Rebuild `name` at the DDL version this build carries, online. Runs as the owner on
/// two connections of its own; the service keeps running and its writers wait only for
/// the final catch-up and the swap.
pub async fn rebuild(
    owner: &Database,
    name: &str,
    progress: ProgressFn<'_>,
) -> Result<RebuildReport, RebuildError> {
    let p = Projection::named(name)?;
    let started = Instant::now();
    let shadow = format!("{}_shadow", p.name);
    let mut writer = owner.owner_connection().await?;
    let mut reader = owner.owner_connection().await?;
    table::create_shadow(&mut writer, p, &shadow).await?;

    // 1. Everything visible in one snapshot, folded into the shadow. The snapshot is read
    // only (no transaction id: the feed keeps flowing); the shadow is written in short
    // transactions.
    let mut snapshot = reader.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *snapshot)
        .await?;
    let mut min_tx = horizon(&mut snapshot).await?;
    let replayed = replay(
        &mut Conns::Two {
            reader: &mut snapshot,
            writer: &mut writer,
        },
        p,
        &shadow,
        progress,
    )
    .await?;
    snapshot.commit().await?;

    // 2. Catch up with what was written meanwhile, without blocking writers: two passes,
    // each from the horizon seen before the previous one, so the last pass (under the
    // lock) has only seconds of writes to look at.
    let mut caught_up = 0;
    for _ in 0..2 {
        let next = horizon(&mut writer).await?;
        caught_up += catch_up(&mut writer, p, &shadow, min_tx).await?;
        min_tx = next;
    }

    // 3. Writers wait for this short transaction: final catch-up, then the swap.
    let swap_started = Instant::now();
    let mut tx = writer.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '30s'")
        .execute(&mut *tx)
        .await?;
    table::lock_live(&mut tx, p).await?;
    caught_up += catch_up(&mut tx, p, &shadow, min_tx).await?;
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
    /// Events (scan_status) or completions (finding_history) not applied.
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
            Some((rows, last)) => (Some(rows), last, lag_behind(conn, p).await?),
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

/// What the live tables of `p` have not applied (`None`: the table keeps no way to tell,
/// e.g. an older version).
async fn lag_behind(conn: &mut PgConnection, p: Projection) -> Result<Option<i64>, sqlx::Error> {
    if p.is_scan_status() {
        let table = p.name;
        return sqlx::query_scalar(&format!(
            "SELECT count(*) FROM scan_events e LEFT JOIN {table} p ON p.scan_id = e.scan_id
              WHERE e.version > coalesce(p.version, 0)"
        ))
        .fetch_one(&mut *conn)
        .await
        .map(Some);
    }
    let log = finding_history::log_table(p.name);
    if !table::exists(conn, &log).await? {
        return Ok(None);
    }
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM scan_events e
          WHERE e.kind = 'Completed' AND NOT EXISTS (SELECT 1 FROM {log} s WHERE s.seq = e.seq)"
    ))
    .fetch_one(&mut *conn)
    .await
    .map(Some)
}

/// Events after `after_seq` in `seq` order, read on the caller's connection (and so in
/// its snapshot).
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

/// Completions that a finding-history `table` has not folded, among those written by
/// transactions from `min_tx_id` on, each with its scan's subscription.
async fn unfolded(
    conn: &mut PgConnection,
    table: &str,
    min_tx_id: i64,
    limit: i64,
) -> Result<Vec<(RecordedEvent, String)>, LedgerError> {
    let log = finding_history::log_table(table);
    let rows = sqlx::query(&format!(
        "SELECT {COMPLETION_COLUMNS}
           FROM scan_events e JOIN scan_events r ON r.scan_id = e.scan_id AND r.kind = 'Requested'
          WHERE e.tx_id >= $1::text::xid8 AND e.kind = 'Completed'
            AND NOT EXISTS (SELECT 1 FROM {log} s WHERE s.seq = e.seq)
          ORDER BY e.seq LIMIT $2"
    ))
    .bind(min_tx_id.to_string())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    decode_completions(rows)
}
