//! Schedules: request the scans that are due. Every worker runs a scheduler loop, but a
//! tick runs only in the transaction that wins a transaction-scoped advisory lock, so one
//! scheduler at a time across the fleet requests scans. Correctness does not rest on the
//! lock: each slot (schedule id, slot time) is the idempotency key of its request, so a
//! slot is requested at most once even by schedulers that race or restart.
//!
//! After downtime only the latest due slot of each schedule is requested: a scanner that
//! was away for a day runs one scan, not 96.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use sqlx::Connection;

use crate::domain::governance::{Governance, Schedule};
use crate::domain::{Requested, ScanId};
use crate::ledger::{Idempotent, Ledger, NewScan};

/// Arbitrary, fixed: the advisory lock one scheduler tick holds.
const LOCK_KEY: i64 = 0x5c4e_d01e;

/// Attempts a scheduled scan gets (as an API request's default).
const MAX_ATTEMPTS: i32 = 3;

/// The idempotency principal of a schedule's requests; its key is the slot time.
pub fn principal(schedule: &Schedule) -> String {
    format!("schedule:{}", schedule.schedule_id)
}

/// What one tick did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// False when another scheduler held the lock (this one did nothing).
    pub ran: bool,
    /// Scans requested for slots nobody had requested yet.
    pub requested: Vec<ScanId>,
}

/// One tick under the fleet-wide lock.
pub async fn tick(ledger: &Ledger) -> Result<Tick, anyhow::Error> {
    let mut conn = ledger.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    let (won, now): (bool, DateTime<Utc>) =
        sqlx::query_as("SELECT pg_try_advisory_xact_lock($1), now()")
            .bind(LOCK_KEY)
            .fetch_one(&mut *tx)
            .await?;
    if !won {
        return Ok(Tick::default());
    }
    let requested = request_due(ledger, now).await?;
    tx.commit().await?;
    Ok(Tick {
        ran: true,
        requested,
    })
}

/// Request the slot due at `now` of every schedule in effect, unless requested before.
pub async fn request_due(
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Result<Vec<ScanId>, anyhow::Error> {
    let events = ledger.governance_events().await?;
    let governance = Governance::fold(&events);
    let mut requested = Vec::new();
    for schedule in governance.schedules.values() {
        let Some(slot) = schedule.due_slot(now) else {
            continue;
        };
        let key = slot.to_rfc3339_opts(SecondsFormat::Secs, true);
        let scan = NewScan {
            scan_id: ScanId::new(),
            request: Requested {
                subscription_id: schedule.subscription_id.clone(),
                rules: schedule.rules.clone(),
                priority: 0,
                max_attempts: MAX_ATTEMPTS,
                requested_by: Some(principal(schedule)),
                origin: None,
                estate: None,
            },
        };
        // The slot alone is the request: the same key always means the same request.
        let hash = Sha256::digest(key.as_bytes());
        match ledger
            .request_idempotent(&principal(schedule), &key, &hash, scan)
            .await?
        {
            Idempotent::Created(e) => {
                tracing::info!(schedule_id = %schedule.schedule_id, slot = %key, scan_id = %e.scan_id,
                               "scheduled scan requested");
                requested.push(e.scan_id);
            }
            Idempotent::Replayed(_) | Idempotent::Mismatch => {}
        }
    }
    Ok(requested)
}

/// Tick every `every` until `shutdown` resolves; errors are logged and retried.
pub async fn run(ledger: Ledger, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        if let Err(e) = tick(&ledger).await {
            tracing::warn!(error = %e, "scheduler tick failed; retrying at the next one");
        }
    }
}
