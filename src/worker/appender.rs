//! The appender: one task per worker that writes its attempts' heartbeats and outcomes.

use tokio::sync::{mpsc, oneshot};

use crate::domain::RecordedEvent;
use crate::ledger::{AppendError, Ledger, NewEvent};

/// Most events one append transaction carries (heartbeats and outcomes are batched).
pub(super) const APPEND_BATCH_MAX: usize = 256;

/// Batches heartbeats and outcomes from all attempts into few transactions: whatever
/// is queued when the previous batch finishes goes in the next one.
pub(super) async fn run(
    ledger: Ledger,
    mut rx: mpsc::Receiver<(
        NewEvent,
        oneshot::Sender<Result<RecordedEvent, AppendError>>,
    )>,
) {
    let mut batch = Vec::with_capacity(APPEND_BATCH_MAX);
    while rx.recv_many(&mut batch, APPEND_BATCH_MAX).await > 0 {
        let (events, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        match ledger.append_many(events).await {
            Ok(results) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                let e = AppendError::from(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
