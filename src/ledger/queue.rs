//! The queue: claiming eligible scans and reaping attempts whose lease ran out. The
//! candidates are read from `scan_status` (locked, skipping rows other claimers hold);
//! the events themselves go through the one write path.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::{Connection, PgConnection};

use super::append::{classify, insert_and_fold, Refusal};
use super::{Claim, Ledger, NewEvent};
use crate::domain::*;
use crate::projection::scan_status::{self, ScanStatus};

impl Ledger {
    /// Claim up to `limit` eligible scans for `worker` by appending `Claimed` for each
    /// one's next attempt. The unique (scan, attempt) claim index decides any race;
    /// `SKIP LOCKED` only keeps concurrent claimers from queueing behind each other.
    ///
    /// With `one_per_subscription`, a scan is not claimed while another scan of its
    /// subscription runs (it stays queued behind it).
    pub async fn claim(
        &self,
        worker: &WorkerId,
        limit: usize,
        lease: Duration,
        one_per_subscription: bool,
    ) -> Result<Vec<Claim>, sqlx::Error> {
        let lease_ms = lease.as_millis() as u64;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        // The database may enforce one running scan per subscription for the whole fleet
        // (its trigger refuses a second claim); then this worker honours it too.
        let parallel_allowed: bool =
            sqlx::query_scalar("SELECT parallel_per_subscription FROM ledger_settings")
                .fetch_one(&mut *tx)
                .await?;
        let one_per_subscription = one_per_subscription || !parallel_allowed;
        let mut rows = lock_claimable(&mut tx, limit as i64, one_per_subscription).await?;
        if one_per_subscription {
            rows = one_per_idle_subscription(&mut tx, rows).await?;
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let batch: Vec<NewEvent> = rows
            .iter()
            .map(|r| NewEvent {
                scan_id: r.scan_id,
                expected_version: r.version,
                attempt: r.attempt + 1,
                worker_id: Some(worker.clone()),
                event: Event::Claimed(Claimed {
                    lease_ms,
                    origin: None,
                }),
            })
            .collect();
        let mut by_id: HashMap<ScanId, ScanStatus> =
            rows.into_iter().map(|r| (r.scan_id, r)).collect();
        let prev = by_id.clone();
        let recorded = match insert_and_fold(&mut tx, batch, prev).await {
            Ok(r) => r,
            Err(e) => match classify(e) {
                // Only possible if the projection disagrees with the ledger; claim nothing.
                Refusal::Constraint(c) | Refusal::Data(c) => {
                    tracing::warn!(constraint = %c, "claim batch refused by the ledger");
                    return Ok(Vec::new());
                }
                Refusal::Other(e) => return Err(e),
            },
        };
        tx.commit().await?;
        Ok(recorded
            .into_iter()
            .filter_map(|e| {
                let row = by_id.remove(&e.scan_id)?;
                let Event::Claimed(c) = &e.event else {
                    return None;
                };
                Some(Claim {
                    scan_id: e.scan_id,
                    attempt: e.attempt,
                    max_attempts: row.max_attempts,
                    version: e.version,
                    subscription_id: SubscriptionId::parse(&row.subscription_id).ok()?,
                    rules: row.rules,
                    lease_expires_at: e.recorded_at
                        + chrono::Duration::milliseconds(c.lease_ms as i64),
                    waited: row
                        .next_eligible_at
                        .and_then(|at| (e.recorded_at - at).to_std().ok())
                        .unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Append `TimedOut` for up to `limit` attempts whose lease ran out by the database
    /// clock. Safe with any number of concurrent reapers: rows being reaped elsewhere are
    /// skipped, and the ledger refuses a second outcome for an attempt.
    /// `retry_in` decides the back-off from (attempt, max_attempts).
    pub async fn reap_expired(
        &self,
        reaper: &WorkerId,
        limit: usize,
        retry_in: impl Fn(i32, i32) -> Option<Duration>,
    ) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let rows = lock_expired(&mut tx, limit as i64).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let batch: Vec<NewEvent> = rows
            .iter()
            .map(|r| NewEvent {
                scan_id: r.scan_id,
                expected_version: r.version,
                attempt: r.attempt,
                worker_id: Some(reaper.clone()),
                event: Event::TimedOut(TimedOut {
                    lease_holder: WorkerId::new(r.worker_id.clone().unwrap_or_default()),
                    retry_in_ms: retry_in(r.attempt, r.max_attempts).map(|d| d.as_millis() as u64),
                }),
            })
            .collect();
        let prev = rows.into_iter().map(|r| (r.scan_id, r)).collect();
        match insert_and_fold(&mut tx, batch, prev).await {
            Ok(recorded) => {
                tx.commit().await?;
                Ok(recorded)
            }
            Err(e) => match classify(e) {
                Refusal::Constraint(c) | Refusal::Data(c) => {
                    tracing::warn!(constraint = %c, "reap batch refused by the ledger");
                    Ok(Vec::new())
                }
                Refusal::Other(e) => Err(e),
            },
        }
    }
}

/// Lock up to `limit` scans that are eligible to be claimed now (database clock).
/// Rows another worker is claiming are skipped, not waited for.
async fn lock_claimable(
    tx: &mut PgConnection,
    limit: i64,
    skip_busy_subscriptions: bool,
) -> Result<Vec<ScanStatus>, sqlx::Error> {
    // The NOT EXISTS only keeps busy subscriptions from filling the batch;
    // `one_per_idle_subscription` is what guarantees exclusivity.
    let values: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
        "{} WHERE status = 'pending' AND next_eligible_at <= now()
           AND (NOT $2 OR NOT EXISTS (SELECT 1 FROM scan_status r
                                       WHERE r.subscription_id = s.subscription_id AND r.status = 'running'))
         ORDER BY priority DESC, next_eligible_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        scan_status::SELECT_ROW
    ))
    .bind(limit)
    .bind(skip_busy_subscriptions)
    .fetch_all(&mut *tx)
    .await?;
    scan_status::decode(values)
}

/// Keep at most one candidate per subscription, and only for subscriptions with no
/// running scan. A transaction-scoped advisory lock per subscription serializes
/// concurrent claimers; the running check runs in a later statement than the lock, so
/// its snapshot sees any claim committed by the lock's previous holder.
async fn one_per_idle_subscription(
    tx: &mut PgConnection,
    rows: Vec<ScanStatus>,
) -> Result<Vec<ScanStatus>, sqlx::Error> {
    let mut subs: Vec<String> = rows.iter().map(|r| r.subscription_id.clone()).collect();
    subs.sort_unstable();
    subs.dedup();
    if subs.is_empty() {
        return Ok(rows);
    }
    let locked: Vec<String> = sqlx::query_scalar(
        "SELECT s FROM unnest($1::text[]) s
          WHERE pg_try_advisory_xact_lock(hashtextextended('scanledger:subscription:' || s, 0))",
    )
    .bind(&subs)
    .fetch_all(&mut *tx)
    .await?;
    let busy: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT subscription_id FROM scan_status WHERE subscription_id = ANY($1) AND status = 'running'",
    )
    .bind(&locked)
    .fetch_all(&mut *tx)
    .await?;
    let mut free: std::collections::HashSet<String> =
        locked.into_iter().filter(|s| !busy.contains(s)).collect();
    Ok(rows
        .into_iter()
        .filter(|r| free.remove(&r.subscription_id))
        .collect())
}

/// Lock up to `limit` running scans whose lease has run out by the database clock.
async fn lock_expired(tx: &mut PgConnection, limit: i64) -> Result<Vec<ScanStatus>, sqlx::Error> {
    let values: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
        "{} WHERE status = 'running' AND lease_expires_at <= now()
         ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        scan_status::SELECT_ROW
    ))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    scan_status::decode(values)
}
