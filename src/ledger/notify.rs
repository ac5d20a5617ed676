//! Wake-ups and change notifications. Workers LISTEN on [`PENDING_CHANNEL`] to claim
//! new work at once; long-polls and event streams register in `change_waiters` and
//! LISTEN on [`CHANGES_CHANNEL`]. A NOTIFY serializes commits on a global lock, so the
//! append path sends at most one per transaction, and announces changes only while
//! someone waits for them. A waiter that registered while a writer was between its
//! look for waiters and its commit is covered by its fence ([`register_waiter`]).

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Event, RecordedEvent, ScanId};

/// Channel notified (once per transaction) when a scan became claimable.
pub const PENDING_CHANNEL: &str = "scanledger_pending";
/// Channel notified (once per transaction) with the ids of scans whose status changed
/// (comma-separated), or `*` when too many changed to list. Claims and heartbeats are
/// not sent: they are the bulk of all transactions, and a NOTIFY serializes commits.
/// Waiters see those changes at their timeout.
pub const CHANGES_CHANNEL: &str = "scanledger_changes";
/// NOTIFY payloads must stay under 8000 bytes.
const CHANGES_PAYLOAD_MAX: usize = 7000;

fn changed_payload(recorded: &[RecordedEvent]) -> Option<String> {
    let mut ids: Vec<ScanId> = recorded
        .iter()
        .filter(|e| !matches!(e.event, Event::Heartbeat(_) | Event::Claimed(_)))
        .map(|e| e.scan_id)
        .collect();
    if ids.is_empty() {
        return None;
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.len() * 37 > CHANGES_PAYLOAD_MAX {
        return Some("*".into());
    }
    Some(
        ids.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Announce what this transaction appended (delivered when it commits): workers when
/// a scan became claimable, waiters when a scan they wait for changed. At most one
/// round trip; none when there is nothing to say.
pub(super) async fn announce(
    tx: &mut PgConnection,
    recorded: &[RecordedEvent],
) -> Result<(), sqlx::Error> {
    // New scans are announced after their commit, by the [`Waker`]: a NOTIFY in the
    // requesting transaction would serialize every request's commit (and its WAL flush).
    let claimable = recorded
        .iter()
        .any(|e| e.event.makes_claimable_now() && !matches!(e.event, Event::Requested(_)));
    let changed = changed_payload(recorded);
    if !claimable && changed.is_none() {
        return Ok(());
    }
    let ids: Vec<Uuid> = recorded.iter().map(|e| e.scan_id.0).collect();
    sqlx::query(
        "SELECT (SELECT pg_notify($1, '') WHERE $2),
                (SELECT pg_notify($3, $4) WHERE $4 IS NOT NULL AND EXISTS (
                    SELECT 1 FROM change_waiters
                     WHERE (scan_id IS NULL OR scan_id = ANY($5)) AND expires_at > now()))",
    )
    .bind(PENDING_CHANNEL)
    .bind(claimable)
    .bind(CHANGES_CHANNEL)
    .bind(changed)
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Register a waiter for changes of `scan` (`None`: any scan) for `ttl`, so that
/// writers announce them. Returns the waiter's fence (see [`horizon`]).
///
/// A writer looks for waiters inside its transaction, after locking the scan's row, and
/// may commit after the waiter's first read: such a writer neither announces (it saw no
/// waiter) nor shows in that read. It had its transaction id before the registration
/// committed, so it is below the fence, read here in a later statement than the
/// (committed) registration: once [`horizon`] reaches the fence, it has ended, and one
/// more read sees its change. No row lock and no waiting connection are needed.
pub async fn register_waiter(
    pool: &PgPool,
    waiter: Uuid,
    scan: Option<ScanId>,
    ttl: Duration,
) -> Result<i64, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    sqlx::query(
        "INSERT INTO change_waiters (waiter_id, scan_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(waiter)
    .bind(scan.map(|s| s.0))
    .bind(ttl.as_secs_f64())
    .execute(&mut *conn)
    .await?;
    // A statement of its own: the insert above has committed (autocommit).
    sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        .fetch_one(&mut *conn)
        .await
}

/// Every transaction with an id below this one has ended (`pg_snapshot_xmin`): the
/// global feed's horizon, and what a waiter's fence is compared with. Any transaction
/// holding an id anywhere in the cluster holds it back.
pub async fn horizon(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        .fetch_one(pool)
        .await
}

/// Keep a waiter registered for another `ttl`.
pub async fn renew_waiter(pool: &PgPool, waiter: Uuid, ttl: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE change_waiters SET expires_at = now() + make_interval(secs => $2) WHERE waiter_id = $1",
    )
    .bind(waiter)
    .bind(ttl.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// Remove a waiter that stopped waiting.
pub async fn remove_waiter(pool: &PgPool, waiter: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM change_waiters WHERE waiter_id = $1")
        .bind(waiter)
        .execute(pool)
        .await?;
    Ok(())
}

/// Remove waiters whose process died without removing them.
pub async fn sweep_expired_waiters(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM change_waiters WHERE expires_at < now()")
        .execute(pool)
        .await?;
    Ok(())
}

/// Wakes idle workers once new scans have committed, outside the requesting
/// transactions. PostgreSQL holds its notification queue lock from a notifying
/// transaction's pre-commit through its commit record, so a NOTIFY in every request would
/// line their commits (and WAL flushes) up one behind another; this sends one NOTIFY, in
/// a transaction of its own that writes nothing durable (asynchronous commit), for all the
/// requests that committed while the previous one was on its way. A request whose wake is
/// lost (the process dies between its commit and the NOTIFY) is found by the workers'
/// polling fallback.
pub(super) struct Waker {
    pool: PgPool,
    signal: std::sync::Arc<tokio::sync::Notify>,
    started: std::sync::Once,
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

impl Waker {
    pub(super) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            signal: std::sync::Arc::new(tokio::sync::Notify::new()),
            started: std::sync::Once::new(),
        }
    }

    /// Called after a commit that made scans claimable; returns at once.
    pub(super) fn wake(&self) {
        self.started.call_once(|| {
            let (pool, signal) = (self.pool.clone(), self.signal.clone());
            tokio::spawn(async move {
                loop {
                    signal.notified().await;
                    if pool.is_closed() {
                        break;
                    }
                    let sent = sqlx::Executor::execute(
                        &pool,
                        sqlx::raw_sql(&format!(
                            "BEGIN; SET LOCAL synchronous_commit = off; NOTIFY {PENDING_CHANNEL}; COMMIT"
                        )),
                    )
                    .await;
                    if let Err(e) = sent {
                        tracing::warn!(error = %e, "could not wake the workers; they will find the new scans at their next poll");
                    }
                }
            });
        });
        // One stored permit: wakes signalled while a NOTIFY is on its way coalesce.
        self.signal.notify_one();
    }
}
