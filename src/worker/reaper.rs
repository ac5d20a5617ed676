//! The reaper: times out attempts whose lease ran out by the database clock.
//!
//! After an outage every lease that ran out meanwhile is expired at once, including
//! those of attempts that finished during the outage and whose workers hold their
//! outcomes, waiting to record them. A reaper that timed those out first would throw
//! their findings away and run the scans again. So a reaper whose worker has just found
//! the database back (after failing to reach it) waits one lease before timing anything
//! out: held outcomes are retried at least once a second and land well within it.

use std::sync::Arc;

use super::{Shared, WorkerEvent};
use crate::shutdown::Shutdown;

const REAP_BATCH: usize = 100;

/// The reaper: every worker runs one; concurrent reapers are safe (see `Ledger::reap_expired`).
pub(super) async fn run(shared: Arc<Shared>, mut shutdown: Shutdown) {
    let retry = shared.cfg.retry.clone();
    let lease = shared.cfg.lease;
    let mut tick = tokio::time::interval(shared.cfg.reaper_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut holding = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        // Out of touch: find out whether the database is back before reaping anything,
        // so that its return starts the hold-off below instead of a reap.
        if !shared.health.reachable() {
            let ping = shared.ledger.ping().await;
            shared.health.result("reaper", &ping);
            if ping.is_err() {
                continue;
            }
        }
        if let Some(ago) = shared.health.regained_ago().filter(|ago| *ago < lease) {
            if !holding {
                holding = true;
                tracing::warn!(
                    resumes_in = ?(lease - ago),
                    "database back after an outage: not timing out leases for one lease, so \
                     that workers holding finished scans record them first"
                );
            }
            continue;
        }
        holding = false;
        loop {
            let result = shared
                .ledger
                .reap_expired(&shared.cfg.id, REAP_BATCH, |a, max| {
                    retry.retry_in(a, max, true)
                })
                .await;
            shared.health.result("reaper", &result);
            match result {
                Ok(reaped) => {
                    shared.metrics.lease_expiries(reaped.len());
                    for e in &reaped {
                        tracing::warn!(scan_id = %e.scan_id, attempt = e.attempt, "lease expired: attempt timed out");
                        shared.emit(WorkerEvent::Reaped {
                            scan_id: e.scan_id,
                            attempt: e.attempt,
                        });
                    }
                    if reaped.len() < REAP_BATCH {
                        break;
                    }
                }
                Err(e) if crate::ledger::unreachable(&e) => break,
                Err(e) => {
                    tracing::error!(error = %e, "reaper query failed");
                    break;
                }
            }
        }
    }
}
