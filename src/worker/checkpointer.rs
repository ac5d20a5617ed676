//! The checkpointer: now and then, append a checkpoint over the events committed since
//! the last one. Every worker process runs one; an advisory lock in the ledger lets one
//! at a time write, so the checkpoint chain is linear however many workers run.

use std::sync::Arc;
use std::time::Duration;

use crate::ledger::audit::Signer;
use crate::ledger::Ledger;
use crate::shutdown::Shutdown;

pub const CHECKPOINT_INTERVAL_DEFAULT: Duration = Duration::from_secs(30);

pub async fn run(
    ledger: Ledger,
    signer: Option<Arc<Signer>>,
    interval: Duration,
    mut shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = ledger.checkpoint(signer.as_deref()).await {
            tracing::warn!(error = %e, "checkpoint failed; retrying at the next interval");
        }
    }
}
