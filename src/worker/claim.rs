//! The claim loop: claim as many scans as there are free slots, start an attempt task
//! for each, and sleep until a NOTIFY (or the polling fallback) says there is more.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, Semaphore};

use super::{attempt, Shared, WorkerEvent};
use crate::ledger::{Ledger, PENDING_CHANNEL};
use crate::shutdown::Shutdown;

/// Longest a claim waits for more free slots while scans are queued.
const CLAIM_LINGER: Duration = Duration::from_millis(2);

pub(super) async fn run(
    shared: &Arc<Shared>,
    slots: &Arc<Semaphore>,
    wake: &Arc<Notify>,
    shutdown: &mut Shutdown,
) {
    let cfg = &shared.cfg;
    let mut backoff = Duration::from_millis(100);
    // Enough free slots to make a claim worth its transaction while the queue is deep.
    let worth = cfg.claim_batch.min(cfg.concurrency).div_ceil(2);
    // The last claim filled every free slot: more scans are waiting.
    let mut backlog = false;
    while !shutdown.is_triggered() {
        let mut free = slots.available_permits().min(cfg.claim_batch);
        if free == 0 {
            tokio::select! {
                _ = wake.notified() => {}
                _ = shutdown.wait() => {}
            }
            continue;
        }
        if backlog && free < worth {
            // With a backlog, slots free up one attempt at a time; claiming for each
            // alone costs a commit (an fsync) per scan. Wait briefly for a few more, so one
            // claim serves several. An idle worker (no backlog) claims at once.
            let _ = tokio::time::timeout(CLAIM_LINGER, async {
                while slots.available_permits() < worth {
                    wake.notified().await;
                }
            })
            .await;
            free = slots.available_permits().min(cfg.claim_batch);
        }
        // The lease runs from the claim's commit, which is later than this.
        let sent = tokio::time::Instant::now();
        let result = shared
            .ledger
            .claim(&cfg.id, free, cfg.lease, cfg.one_per_subscription)
            .await;
        shared.health.result("claim", &result);
        let claims = match result {
            Ok(c) => {
                backoff = Duration::from_millis(100);
                shared.metrics.claim(sent.elapsed().as_secs_f64(), c.len());
                c
            }
            Err(e) => {
                // While the database is away the health tracker has said so once; this
                // loop only backs off, and wakes early when another call finds it back.
                let unreachable = crate::ledger::unreachable(&e);
                if unreachable {
                    tracing::debug!(error = %e, retry_in = ?backoff, "claim failed: database unreachable");
                } else {
                    tracing::error!(error = %e, retry_in = ?backoff, "claim failed; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shared.health.wait_reachable(), if unreachable => {}
                    _ = shutdown.wait() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        let full = claims.len() == free;
        backlog = full;
        for claim in claims {
            let permit = slots
                .clone()
                .try_acquire_owned()
                .expect("a slot per claimed scan");
            shared.metrics.claim_waited(claim.waited.as_secs_f64());
            shared.emit(WorkerEvent::Claimed {
                scan_id: claim.scan_id,
                attempt: claim.attempt,
            });
            let (shared, wake) = (shared.clone(), wake.clone());
            tokio::spawn(async move {
                attempt::run(shared, claim, sent).await;
                drop(permit);
                wake.notify_one();
            });
        }
        if full {
            continue;
        }
        // Queue drained: sleep until a NOTIFY, a freed slot, the poll interval, or shutdown.
        shared.emit(WorkerEvent::Idle);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(cfg.poll) => {}
            _ = shutdown.wait() => {}
        }
    }
}

/// LISTEN for new work; the polling fallback covers a lost connection. A lost
/// connection is logged once, not at every failed reconnect of an outage.
pub(super) async fn listen(ledger: Ledger, wake: Arc<Notify>, emit: impl Fn(WorkerEvent)) {
    let mut lost = false;
    loop {
        let result: Result<(), sqlx::Error> = async {
            let mut listener = PgListener::connect_with(ledger.pool()).await?;
            listener.listen(PENDING_CHANNEL).await?;
            if std::mem::take(&mut lost) {
                tracing::info!("LISTEN in effect again");
            }
            // Scans requested before LISTEN took effect sent their NOTIFY to no one:
            // one more claim round finds them.
            wake.notify_one();
            emit(WorkerEvent::Listening);
            loop {
                // `None`: the connection dropped and is re-established on the next call;
                // notifications may have been missed meanwhile, so claim once more.
                if listener.try_recv().await?.is_none() {
                    tracing::warn!("LISTEN connection lost; reconnecting");
                }
                wake.notify_one();
            }
        }
        .await;
        if let Err(e) = result {
            if lost {
                tracing::debug!(error = %e, "LISTEN still not possible");
            } else {
                lost = true;
                tracing::warn!(error = %e, "LISTEN connection lost; polling until it is back");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
