//! `scan_status`: one row per scan, the status clients poll and workers claim from.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{
    Event, FailureCode, Progress, PublicError, RecordedEvent, ScanId, ScanSummary,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanState {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl ScanState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// A row of `scan_status`. Field names are the column names: rows travel to and from
/// PostgreSQL as JSON (`to_jsonb` / `jsonb_populate_recordset`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanStatus {
    pub scan_id: ScanId,
    pub subscription_id: String,
    pub status: ScanState,
    pub priority: i16,
    /// The current (or last) attempt; 0 before the first claim.
    pub attempt: i32,
    pub max_attempts: i32,
    pub rules: Vec<String>,
    pub worker_id: Option<String>,
    pub requested_by: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When a pending scan may next be claimed.
    pub next_eligible_at: Option<DateTime<Utc>>,
    pub progress: Option<Progress>,
    pub error: Option<PublicError>,
    pub summary: Option<ScanSummary>,
    /// v2: the summary's finding count, as a column.
    #[serde(default)]
    pub total_findings: Option<i64>,
    /// v3: the summary's score (absent for imported scans), as a column.
    #[serde(default)]
    pub score: Option<f64>,
    /// v3: the summary's resources seen, as a column.
    #[serde(default)]
    pub resources_seen: Option<i64>,
    /// v3: the summary's findings by severity, as a column.
    #[serde(default)]
    pub findings_by_severity: Option<BTreeMap<String, u64>>,
    /// The stream version this row has applied.
    pub version: i32,
    /// The global position of the last event applied.
    pub last_seq: i64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FoldError {
    #[error("scan {0}: event at version {1} has no preceding Requested")]
    NoStream(ScanId, i32),
    #[error("scan {0}: Requested appears twice")]
    DuplicateRequested(ScanId),
    #[error("scan {0}: event version {1} does not follow applied version {2}")]
    OutOfOrder(ScanId, i32, i32),
}

fn after(at: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    at + Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX / 2))
}

/// The fold: previous row + event → next row. Pure: it reads only its inputs (times come
/// from `recorded_at` and the payload, never from the clock), so replaying the ledger
/// reproduces the live table exactly.
pub fn fold(prev: Option<ScanStatus>, e: &RecordedEvent) -> Result<ScanStatus, FoldError> {
    let at = e.recorded_at;
    // Imported history keeps its original times; leases and retries run on the ledger's clock.
    let occurred = e.event.origin().map_or(at, |o| o.occurred_at);
    let mut row = match (prev, &e.event) {
        (None, Event::Requested(r)) => {
            return Ok(ScanStatus {
                scan_id: e.scan_id,
                subscription_id: r.subscription_id.to_string(),
                status: ScanState::Pending,
                priority: r.priority,
                attempt: 0,
                max_attempts: r.max_attempts,
                rules: r.rules.clone(),
                worker_id: None,
                requested_by: r.requested_by.clone(),
                requested_at: occurred,
                claimed_at: None,
                heartbeat_at: None,
                finished_at: None,
                lease_expires_at: None,
                next_eligible_at: Some(at),
                progress: None,
                error: None,
                summary: None,
                total_findings: None,
                score: None,
                resources_seen: None,
                findings_by_severity: None,
                version: e.version,
                last_seq: e.seq,
            })
        }
        (Some(_), Event::Requested(_)) => return Err(FoldError::DuplicateRequested(e.scan_id)),
        (None, _) => return Err(FoldError::NoStream(e.scan_id, e.version)),
        (Some(row), _) if e.version != row.version + 1 => {
            return Err(FoldError::OutOfOrder(e.scan_id, e.version, row.version))
        }
        (Some(row), _) => row,
    };
    row.version = e.version;
    row.last_seq = e.seq;
    match &e.event {
        Event::Requested(_) => unreachable!("handled above"),
        Event::Claimed(c) => {
            row.status = ScanState::Running;
            row.attempt = e.attempt;
            row.worker_id = e.worker_id.as_ref().map(|w| w.to_string());
            row.claimed_at = Some(occurred);
            row.heartbeat_at = None;
            row.lease_expires_at = Some(after(at, c.lease_ms));
            row.next_eligible_at = None;
            row.progress = Some(Progress::default());
        }
        Event::Heartbeat(h) => {
            row.heartbeat_at = Some(at);
            row.lease_expires_at = Some(after(at, h.lease_ms));
            row.progress = Some(h.progress.clone());
        }
        Event::Completed(c) => {
            row.status = ScanState::Completed;
            row.finished_at = Some(occurred);
            row.lease_expires_at = None;
            row.error = None;
            row.summary = Some(c.summary.clone());
            row.total_findings = Some(c.summary.findings as i64);
            row.score = c.summary.score;
            row.resources_seen = Some(c.summary.resources_seen as i64);
            row.findings_by_severity = Some(c.summary.findings_by_severity.clone());
        }
        Event::Failed(f) => {
            row.error = Some(f.error.clone());
            retry_or_fail(&mut row, at, f.retry_in_ms);
            if row.status == ScanState::Failed {
                row.finished_at = Some(occurred);
            }
        }
        Event::TimedOut(t) => {
            row.error = Some(PublicError {
                code: FailureCode::LeaseExpired,
                message: FailureCode::LeaseExpired.public_message().to_string(),
                correlation_id: None,
            });
            retry_or_fail(&mut row, at, t.retry_in_ms);
        }
        Event::Cancelled(_) => {
            row.status = ScanState::Cancelled;
            row.finished_at = Some(occurred);
            row.lease_expires_at = None;
            row.next_eligible_at = None;
        }
    }
    Ok(row)
}

fn retry_or_fail(row: &mut ScanStatus, at: DateTime<Utc>, retry_in_ms: Option<u64>) {
    row.lease_expires_at = None;
    match retry_in_ms {
        Some(ms) => {
            row.status = ScanState::Pending;
            row.next_eligible_at = Some(after(at, ms));
        }
        None => {
            row.status = ScanState::Failed;
            row.finished_at = Some(at);
            row.next_eligible_at = None;
        }
    }
}

/// Fold a whole stream (in version order) from nothing.
pub fn fold_stream<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<Option<ScanStatus>, FoldError> {
    let mut row = None;
    for e in events {
        row = Some(fold(row, e)?);
    }
    Ok(row)
}

// ---- storage -------------------------------------------------------------------------

/// Every column of a row, as JSON (rows travel as JSON to and from the database).
pub(crate) const SELECT_ROW: &str = "SELECT to_jsonb(s) FROM scan_status s";

pub(crate) fn decode(values: Vec<serde_json::Value>) -> Result<Vec<ScanStatus>, sqlx::Error> {
    values
        .into_iter()
        .map(|v| serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect()
}

/// Read one row (for polling clients).
pub async fn get<'c>(
    db: impl PgExecutor<'c>,
    id: ScanId,
) -> Result<Option<ScanStatus>, sqlx::Error> {
    let v: Option<serde_json::Value> =
        sqlx::query_scalar(&format!("{SELECT_ROW} WHERE scan_id = $1"))
            .bind(id.0)
            .fetch_optional(db)
            .await?;
    Ok(decode(v.into_iter().collect())?.pop())
}

/// Filters for [`list`]; `before` is the keyset position (requested_at, scan_id).
#[derive(Debug, Default)]
pub struct ListFilter {
    pub status: Option<ScanState>,
    pub subscription_id: Option<String>,
    pub requested_after: Option<DateTime<Utc>>,
    pub requested_before: Option<DateTime<Utc>>,
    pub before: Option<(DateTime<Utc>, Uuid)>,
}

/// Scans newest first, keyset-paginated on (requested_at, scan_id): rows inserted while
/// a client pages are newer than its cursor and never shift the pages it has left.
pub async fn list<'c>(
    db: impl PgExecutor<'c>,
    f: &ListFilter,
    limit: i64,
) -> Result<Vec<ScanStatus>, sqlx::Error> {
    let status = f.status.map(|s| {
        serde_json::to_value(s)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
    });
    let values: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
        "{SELECT_ROW}
          WHERE ($1::text IS NULL OR status = $1)
            AND ($2::text IS NULL OR subscription_id = $2)
            AND ($3::timestamptz IS NULL OR requested_at >= $3)
            AND ($4::timestamptz IS NULL OR requested_at < $4)
            AND ($5::timestamptz IS NULL OR (requested_at, scan_id) < ($5, $6))
          ORDER BY requested_at DESC, scan_id DESC
          LIMIT $7"
    ))
    .bind(status.flatten())
    .bind(&f.subscription_id)
    .bind(f.requested_after)
    .bind(f.requested_before)
    .bind(f.before.map(|b| b.0))
    .bind(f.before.map(|b| b.1))
    .bind(limit)
    .fetch_all(db)
    .await?;
    decode(values)
}

/// Read the rows of `ids` from a scan_status-shaped `table` (the live table, a shadow,
/// a scratch), with a locking `tail` (e.g. `ORDER BY scan_id FOR UPDATE`, or "").
pub(crate) async fn read_rows(
    tx: &mut PgConnection,
    table: &str,
    ids: &[Uuid],
    tail: &str,
) -> Result<HashMap<ScanId, ScanStatus>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let values: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
        "SELECT to_jsonb(s) FROM {table} s WHERE scan_id = ANY($1) {tail}"
    ))
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    Ok(decode(values)?
        .into_iter()
        .map(|r| (r.scan_id, r))
        .collect())
}

/// The live table's name; rebuilds and verifies fold into other tables of its shape.
pub const TABLE: &str = "scan_status";

/// Write folded rows into `table` (the live table, a rebuild's shadow, a verify's scratch).
pub(crate) async fn upsert_into(
    tx: &mut PgConnection,
    table: &str,
    rows: &[&ScanStatus],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_value(rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(&format!(
        "INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, $1)
         ON CONFLICT (scan_id) DO UPDATE SET
            subscription_id = EXCLUDED.subscription_id, status = EXCLUDED.status,
            priority = EXCLUDED.priority, attempt = EXCLUDED.attempt,
            max_attempts = EXCLUDED.max_attempts, rules = EXCLUDED.rules,
            worker_id = EXCLUDED.worker_id, requested_by = EXCLUDED.requested_by,
            requested_at = EXCLUDED.requested_at, claimed_at = EXCLUDED.claimed_at,
            heartbeat_at = EXCLUDED.heartbeat_at, finished_at = EXCLUDED.finished_at,
            lease_expires_at = EXCLUDED.lease_expires_at,
            next_eligible_at = EXCLUDED.next_eligible_at, progress = EXCLUDED.progress,
            error = EXCLUDED.error, summary = EXCLUDED.summary, total_findings = EXCLUDED.total_findings,
            score = EXCLUDED.score, resources_seen = EXCLUDED.resources_seen,
            findings_by_severity = EXCLUDED.findings_by_severity,
            version = EXCLUDED.version, last_seq = EXCLUDED.last_seq"
    ))
    .bind(json)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Scans by status, the claimable queue's depth and its oldest wait (database clock).
#[derive(Clone, Debug, Default)]
pub struct QueueCounts {
    pub by_status: Vec<(String, i64)>,
    pub claimable: i64,
    pub oldest_claimable_seconds: Option<f64>,
}

/// The queue figures every process's `/metrics` reports, in one query (one scan of
/// `scan_status`): scans by status, and the claimable pending ones' count and oldest
/// wait, by the database clock.
pub async fn queue_counts(pool: &sqlx::PgPool) -> Result<QueueCounts, sqlx::Error> {
    let rows: Vec<(String, i64, i64, Option<f64>)> = sqlx::query_as(
        "SELECT status, count(*),
                count(*) FILTER (WHERE status = 'pending' AND next_eligible_at <= now()),
                extract(epoch FROM now() - min(next_eligible_at)
                    FILTER (WHERE status = 'pending' AND next_eligible_at <= now()))::float8
           FROM scan_status GROUP BY status",
    )
    .fetch_all(pool)
    .await?;
    let mut counts = QueueCounts::default();
    for (status, n, claimable, oldest) in rows {
        counts.claimable += claimable;
        if oldest.is_some() {
            counts.oldest_claimable_seconds = oldest;
        }
        counts.by_status.push((status, n));
    }
    Ok(counts)
}

/// The latest completed scan of each subscription (or of one), newest first per
/// subscription.
pub async fn latest_completed(
    pool: &sqlx::PgPool,
    subscription_id: Option<&str>,
) -> Result<Vec<ScanId>, sqlx::Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT ON (subscription_id) scan_id FROM scan_status
          WHERE status = 'completed' AND ($1::text IS NULL OR subscription_id = $1)
          ORDER BY subscription_id, finished_at DESC",
    )
    .bind(subscription_id)
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(ScanId).collect())
}

/// The completed scan of `scan`'s subscription that finished last before it.
pub async fn previous_completed(
    pool: &sqlx::PgPool,
    scan: &ScanStatus,
) -> Result<Option<ScanId>, sqlx::Error> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "SELECT scan_id FROM scan_status
          WHERE subscription_id = $1 AND status = 'completed' AND scan_id <> $2
            AND (finished_at, scan_id) < ($3, $2)
          ORDER BY finished_at DESC, scan_id DESC LIMIT 1",
    )
    .bind(&scan.subscription_id)
    .bind(scan.scan_id.0)
    .bind(scan.finished_at)
    .fetch_optional(pool)
    .await?;
    Ok(id.map(ScanId))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Event, WorkerId};

    fn recorded(seq: i64, version: i32, kind: &str, payload: serde_json::Value) -> RecordedEvent {
        let event = Event::decode(kind, payload).unwrap();
        RecordedEvent {
            seq,
            scan_id: ScanId(Uuid::nil()),
            version,
            attempt: if event.kind().is_scan_level() { 0 } else { 1 },
            worker_id: Some(WorkerId::new("w")),
            recorded_at: DateTime::from_timestamp(1_790_000_000 + seq, 0).unwrap(),
            tx_id: seq,
            event,
        }
    }

    /// Upcasting: streams stored as v1 fold to the same rows as their current encoding.
    #[test]
    fn v1_streams_fold_to_the_same_rows_as_current_ones() {
        let fixtures: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../../tests/fixtures/payloads-v1.json")).unwrap();
        let by_kind =
            |k: &str| fixtures.iter().find(|f| f["kind"] == k).unwrap()["payload"].clone();
        let streams: [&[&str]; 3] = [
            &["Requested", "Claimed", "Heartbeat", "Completed"],
            &["Requested", "Claimed", "Failed", "Claimed", "TimedOut"],
            &["Requested", "Cancelled"],
        ];
        for kinds in streams {
            let old: Vec<RecordedEvent> = kinds
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let mut e = recorded(i as i64 + 1, i as i32 + 1, k, by_kind(k));
                    if *k == "Claimed" && i > 1 {
                        e.attempt = 2;
                    }
                    if *k == "TimedOut" {
                        e.attempt = 2;
                    }
                    e
                })
                .collect();
            let current: Vec<RecordedEvent> = old
                .iter()
                .map(|e| {
                    let mut c = e.clone();
                    c.event = Event::decode(e.event.kind().as_str(), e.event.payload()).unwrap();
                    c
                })
                .collect();
            let a = fold_stream(&old).unwrap().unwrap();
            let b = fold_stream(&current).unwrap().unwrap();
            assert_eq!(a, b, "{kinds:?}");
        }
    }

    #[test]
    fn imported_events_keep_their_original_times() {
        let at = DateTime::from_timestamp(1_600_000_000, 0).unwrap();
        let origin = serde_json::json!({"backfilled_from": "openshield", "occurred_at": at});
        let req = recorded(
            1,
            1,
            "Requested",
            serde_json::json!({"v": 2, "subscription_id": "6f1c1a9e-5d7b-4c2e-9a41-0d3e5f7a9b10",
            "priority": 0, "max_attempts": 1, "origin": origin}),
        );
        let row = fold(None, &req).unwrap();
        assert_eq!(row.requested_at, at);
        assert_ne!(
            row.next_eligible_at,
            Some(at),
            "eligibility runs on the ledger's clock"
        );
    }
}
