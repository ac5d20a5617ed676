//! Roll-ups over `scan_status` for the console and its API routes: the subscriptions the
//! ledger knows, a subscription's posture over time, and the operations figures. Each is
//! answered from an index of the projection (see `projections/scan_status/v3.sql`), so
//! its cost follows the rows it returns, not the number of scans in the ledger.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::scan_status::{self, ScanState, ScanStatus};
use crate::domain::{FailureCode, Progress, ScanId};

/// A subscription's most recent scan, whatever its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LatestScan {
    pub scan_id: ScanId,
    pub status: ScanState,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One completed scan's posture: its score and what it found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PosturePoint {
    pub scan_id: ScanId,
    /// When the scan completed (for imported history, when it completed at the source).
    pub finished_at: DateTime<Utc>,
    /// Severity-weighted share of checks passed, 0–100; absent for imported scans.
    pub score: Option<f64>,
    /// Findings of the scan.
    pub findings: i64,
    /// Resources the scan saw; absent for imported scans.
    pub resources_seen: Option<i64>,
    /// Severity (`critical` … `info`) → findings.
    pub findings_by_severity: BTreeMap<String, u64>,
}

/// A subscription the ledger has scans of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionSummary {
    #[schema(value_type = uuid::Uuid)]
    pub subscription_id: String,
    /// Its most recently requested scan.
    pub latest_scan: LatestScan,
    /// Its most recently completed scan (absent until one completes).
    pub latest_completed: Option<PosturePoint>,
}

/// The columns of a [`PosturePoint`], as JSON, from a `scan_status` row `s`.
const POSTURE_JSON: &str = "jsonb_build_object(
        'scan_id', s.scan_id, 'finished_at', s.finished_at, 'score', s.score,
        'findings', coalesce(s.total_findings, 0), 'resources_seen', s.resources_seen,
        'findings_by_severity', coalesce(s.findings_by_severity, '{}'::jsonb))";

fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, sqlx::Error> {
    serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Subscriptions in id order after `after`, at most `limit`, each with its latest scan
/// and latest completed scan.
///
/// A skip scan over `scan_status_subscription`: one index descent per subscription
/// returned (a recursive query stepping to the next distinct id), then one for its latest
/// scan and one on `scan_status_completed` for its latest completed scan.
pub async fn subscriptions(
    pool: &PgPool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<SubscriptionSummary>, sqlx::Error> {
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
        "WITH RECURSIVE subs(id) AS (
             (SELECT subscription_id FROM scan_status
               WHERE subscription_id > coalesce($1, '')
               ORDER BY subscription_id LIMIT 1)
             UNION ALL
             SELECT (SELECT s.subscription_id FROM scan_status s
                      WHERE s.subscription_id > subs.id
                      ORDER BY s.subscription_id LIMIT 1)
               FROM subs WHERE subs.id IS NOT NULL)
         SELECT jsonb_build_object(
                  'subscription_id', subs.id,
                  'latest_scan', (SELECT jsonb_build_object('scan_id', l.scan_id, 'status', l.status,
                                          'requested_at', l.requested_at, 'finished_at', l.finished_at)
                                    FROM scan_status l WHERE l.subscription_id = subs.id
                                   ORDER BY l.requested_at DESC, l.scan_id DESC LIMIT 1),
                  'latest_completed', (SELECT {POSTURE_JSON} FROM scan_status s
                                        WHERE s.subscription_id = subs.id AND s.status = 'completed'
                                        ORDER BY s.finished_at DESC, s.scan_id DESC LIMIT 1))
           FROM (SELECT id FROM subs WHERE id IS NOT NULL LIMIT $2) subs
          ORDER BY subs.id"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(decode).collect()
}

/// A subscription's completed scans, newest first, before the keyset position `before`
/// (`finished_at`, `scan_id`) and not older than `since`, at most `limit`.
pub async fn posture(
    pool: &PgPool,
    subscription_id: &str,
    since: Option<DateTime<Utc>>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<PosturePoint>, sqlx::Error> {
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
        "SELECT {POSTURE_JSON} FROM scan_status s
          WHERE s.subscription_id = $1 AND s.status = 'completed'
            AND ($2::timestamptz IS NULL OR s.finished_at >= $2)
            AND ($3::timestamptz IS NULL OR (s.finished_at, s.scan_id) < ($3, $4))
          ORDER BY s.finished_at DESC, s.scan_id DESC
          LIMIT $5"
    ))
    .bind(subscription_id)
    .bind(since)
    .bind(before.map(|b| b.0))
    .bind(before.map(|b| b.1))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(decode).collect()
}

/// The latest completed scan of one subscription, whole (its summary holds the per-rule
/// tallies compliance is computed from).
pub async fn latest_completed_scan(
    pool: &PgPool,
    subscription_id: &str,
) -> Result<Option<ScanStatus>, sqlx::Error> {
    let v: Option<serde_json::Value> = sqlx::query_scalar(&format!(
        "{} WHERE subscription_id = $1 AND status = 'completed'
          ORDER BY finished_at DESC, scan_id DESC LIMIT 1",
        scan_status::SELECT_ROW
    ))
    .bind(subscription_id)
    .fetch_optional(pool)
    .await?;
    Ok(scan_status::decode(v.into_iter().collect())?.pop())
}

/// Whether the ledger has any scan of `subscription_id`.
pub async fn subscription_known(pool: &PgPool, subscription_id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM scan_status WHERE subscription_id = $1)")
        .bind(subscription_id)
        .fetch_one(pool)
        .await
}

/// Scans in each state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusCounts {
    pub pending: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
}

/// The queue workers claim from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueFigures {
    /// Pending scans a worker may claim now.
    pub claimable: i64,
    /// Pending scans waiting out a retry back-off.
    pub backing_off: i64,
    /// Seconds the longest-waiting claimable scan has waited (database clock); absent when none.
    pub oldest_claimable_seconds: Option<f64>,
    /// When the longest-waiting claimable scan became claimable.
    pub oldest_claimable_since: Option<DateTime<Utc>>,
}

/// An attempt in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunningScan {
    pub scan_id: ScanId,
    #[schema(value_type = uuid::Uuid)]
    pub subscription_id: String,
    pub worker_id: Option<String>,
    pub attempt: i32,
    pub claimed_at: Option<DateTime<Utc>>,
    /// The attempt's last heartbeat; absent before its first.
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Seconds until the lease runs out (database clock); negative once it has: the
    /// reaper times the attempt out.
    pub lease_seconds_left: Option<f64>,
    pub progress: Option<Progress>,
}

/// How many of the latest scans that ended the workers list is read from.
pub const WORKERS_SAMPLE: i64 = 1000;

/// A worker, as the scans it ran show it: the attempts running now, and the latest
/// [`WORKERS_SAMPLE`] scans that ended in the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerSeen {
    pub worker_id: String,
    /// Its latest claim, heartbeat or outcome among those scans.
    pub last_seen: DateTime<Utc>,
    /// Attempts it holds now.
    pub running: i64,
    /// Scans it completed, among the latest that ended in the window.
    pub completed: i64,
    /// Scans that ended failed on its attempt, among the latest that ended in the window.
    pub failed: i64,
}

/// Failures of one code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailureCount {
    pub code: FailureCode,
    /// Scans that ended failed with this code in the window.
    pub failed: i64,
    /// Pending scans whose last attempt failed with this code and will be retried.
    pub retrying: i64,
}

/// What an operator checks first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Operations {
    /// The database clock when these figures were read; ages are relative to it.
    pub as_of: DateTime<Utc>,
    /// The window `workers` and `failures` cover, in seconds.
    pub window_seconds: i64,
    pub scans: StatusCounts,
    pub queue: QueueFigures,
    /// Running attempts, the soonest lease expiry first (at most `limit`).
    pub running: Vec<RunningScan>,
    /// Workers that hold an attempt now, or completed or failed one of the latest scans
    /// that ended in the window (`workers_sample` of them), the most recently seen first
    /// (at most `limit`).
    pub workers: Vec<WorkerSeen>,
    /// How many scans that ended in the window `workers` was read from (at most 1,000:
    /// the latest).
    pub workers_sample: i64,
    /// Failure codes of scans that ended failed in the window or wait to be retried.
    pub failures: Vec<FailureCount>,
}

/// The operations figures, in one round trip and one snapshot: counts from the partial
/// index of each state (an index-only count: its cost grows with the scans in that state,
/// about 2 ms per 10,000), running attempts from `scan_status_leases`, workers from the
/// running rows and the latest [`WORKERS_SAMPLE`] scans that ended in `window` (two
/// bounded reads of `scan_status_ended`), failures from the failed scans of the window
/// and the pending scans waiting for a retry.
pub async fn operations(
    pool: &PgPool,
    window: std::time::Duration,
    limit: i64,
) -> Result<Operations, sqlx::Error> {
    let secs = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    let v: serde_json::Value = sqlx::query_scalar(
        "WITH w AS (SELECT now() AS now, now() - make_interval(secs => $1::float8) AS since),
         -- The latest scans that ended in the window, completed or failed: each status
         -- read backwards from its range of scan_status_ended, at most $3 of each.
         ended AS (
           SELECT worker_id, status, finished_at, code FROM (
             (SELECT worker_id, status, finished_at, error ->> 'code' AS code FROM scan_status, w
               WHERE status = 'completed' AND finished_at >= w.since
               ORDER BY finished_at DESC LIMIT $3)
             UNION ALL
             (SELECT worker_id, status, finished_at, error ->> 'code' FROM scan_status, w
               WHERE status = 'failed' AND finished_at >= w.since
               ORDER BY finished_at DESC LIMIT $3)) e
           ORDER BY finished_at DESC LIMIT $3)
         SELECT jsonb_build_object(
           'as_of', w.now,
           'window_seconds', $1,
           'scans', jsonb_build_object(
              'pending', (SELECT count(*) FROM scan_status WHERE status = 'pending'),
              'running', (SELECT count(*) FROM scan_status WHERE status = 'running'),
              'completed', (SELECT count(*) FROM scan_status WHERE status = 'completed'),
              'failed', (SELECT count(*) FROM scan_status WHERE status = 'failed'),
              'cancelled', (SELECT count(*) FROM scan_status WHERE status = 'cancelled')),
           'queue', (SELECT jsonb_build_object(
                'claimable', count(*) FILTER (WHERE next_eligible_at <= w.now),
                'backing_off', count(*) FILTER (WHERE next_eligible_at > w.now),
                'oldest_claimable_since', min(next_eligible_at) FILTER (WHERE next_eligible_at <= w.now),
                'oldest_claimable_seconds',
                    extract(epoch FROM w.now - min(next_eligible_at) FILTER (WHERE next_eligible_at <= w.now))::float8)
              FROM scan_status WHERE status = 'pending'),
           'running', coalesce((SELECT jsonb_agg(r ORDER BY r.lease_expires_at, r.scan_id) FROM (
                SELECT scan_id, subscription_id, worker_id, attempt, claimed_at, heartbeat_at,
                       lease_expires_at, progress,
                       extract(epoch FROM lease_expires_at - w.now)::float8 AS lease_seconds_left
                  FROM scan_status WHERE status = 'running'
                 ORDER BY lease_expires_at, scan_id LIMIT $2) r), '[]'::jsonb),
           'workers', coalesce((SELECT jsonb_agg(x ORDER BY x.last_seen DESC, x.worker_id) FROM (
                SELECT worker_id, max(seen) AS last_seen,
                       count(*) FILTER (WHERE status = 'running') AS running,
                       count(*) FILTER (WHERE status = 'completed') AS completed,
                       count(*) FILTER (WHERE status = 'failed') AS failed
                  FROM (SELECT worker_id, status, greatest(claimed_at, heartbeat_at) AS seen
                          FROM scan_status WHERE status = 'running'
                        UNION ALL
                        SELECT worker_id, status, finished_at FROM ended
                         -- A scan whose lease ran out on its last attempt ended without
                         -- its worker: that worker was not seen then.
                         WHERE code IS DISTINCT FROM 'lease_expired') seen
                 WHERE worker_id IS NOT NULL
                 GROUP BY worker_id
                 ORDER BY last_seen DESC, worker_id LIMIT $2) x), '[]'::jsonb),
           'workers_sample', (SELECT count(*) FROM ended),
           'failures', coalesce((SELECT jsonb_agg(f ORDER BY f.failed + f.retrying DESC, f.code) FROM (
                SELECT code, count(*) FILTER (WHERE status = 'failed') AS failed,
                       count(*) FILTER (WHERE status = 'pending') AS retrying
                  FROM (SELECT error ->> 'code' AS code, status FROM scan_status
                         WHERE status = 'failed' AND finished_at >= w.since
                        UNION ALL
                        SELECT error ->> 'code', status FROM scan_status
                         WHERE status = 'pending' AND error IS NOT NULL) e
                 WHERE code IS NOT NULL
                 GROUP BY code) f), '[]'::jsonb))
         FROM w",
    )
    .bind(secs)
    .bind(limit)
    .bind(WORKERS_SAMPLE)
    .fetch_one(pool)
    .await?;
    decode(v)
}
