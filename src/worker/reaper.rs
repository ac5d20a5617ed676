//! The reaper: times out attempts whose lease ran out by the database clock.

use std::sync::Arc;

use super::{Shared, WorkerEvent};
use crate::shutdown::Shutdown;

const REAP_BATCH: usize = 100;

/// The reaper: every worker runs one; concurrent reapers are safe (see `Ledger::reap_expired`).
pub(super) async fn run(shared: Arc<Shared>, mut shutdown: Shutdown) {
    let retry = shared.cfg.retry.clone();
    let mut tick = tokio::time::interval(shared.cfg.reaper_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        loop {
            match shared
                .ledger
                .reap_expired(&shared.cfg.id, REAP_BATCH, |a, max| {
                    retry.retry_in(a, max, true)
                })
                .await
            {
                Ok(reaped) => {
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
                Err(e) => {
                    tracing::error!(error = %e, "reaper query failed");
                    break;
                }
            }
        }
    }
}
