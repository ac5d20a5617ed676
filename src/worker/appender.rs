//! The append lanes. A worker writes its attempts' events through two of them, each a
//! task with a connection of its own: one for heartbeats, one for outcomes. A slow or
//! huge `Completed` (thousands of findings in one transaction), or a queue of them, so
//! never delays a heartbeat, and a lease never runs out behind an outcome.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::health::Health;
use crate::domain::RecordedEvent;
use crate::ledger::{AppendError, Ledger, NewEvent};
use crate::metrics::WorkerMetrics;

/// Most heartbeats one transaction carries (they are small).
pub(super) const HEARTBEAT_BATCH_MAX: usize = 256;
/// Most outcomes one transaction carries: each `Completed` brings its findings along.
pub(super) const OUTCOME_BATCH_MAX: usize = 32;
/// The longest one lane waits for its connection (connecting included): in an outage the
/// lane fails its batch after this and its callers retry, instead of waiting for the
/// pool's usual acquire timeout.
pub(super) const LANE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

type Request = (
    NewEvent,
    oneshot::Sender<Result<RecordedEvent, AppendError>>,
);

/// The result of a queued append, once its batch is written.
pub(super) type Reply = oneshot::Receiver<Result<RecordedEvent, AppendError>>;

/// One lane: a queue in front of a task that appends whatever is queued in one
/// transaction, then the next batch.
#[derive(Clone)]
pub(super) struct Lane {
    tx: mpsc::Sender<Request>,
}

impl Lane {
    /// Start a lane writing through `ledger` (a pool of its own, see
    /// [`Ledger::dedicated`]); it ends when every `Lane` handle is dropped.
    pub(super) fn spawn(
        name: &'static str,
        ledger: Ledger,
        batch_max: usize,
        health: Arc<Health>,
        metrics: WorkerMetrics,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(batch_max * 4);
        let task =
            tokio::spawn(run(name, ledger, rx, batch_max, health, metrics).in_current_span());
        (Self { tx }, task)
    }

    /// Queue `event`; its result arrives on the returned receiver.
    pub(super) async fn submit(&self, event: NewEvent) -> Reply {
        let (tx, rx) = oneshot::channel();
        // A closed lane drops `tx`: the receiver then reads as closed (see `reply`).
        let _ = self.tx.send((event, tx)).await;
        rx
    }

    /// Append `event` and wait for its result.
    pub(super) async fn append(&self, event: NewEvent) -> Result<RecordedEvent, AppendError> {
        reply(self.submit(event).await).await
    }
}

/// Wait for a queued append's result.
pub(super) async fn reply(rx: Reply) -> Result<RecordedEvent, AppendError> {
    rx.await
        .unwrap_or_else(|_| Err(AppendError::from(sqlx::Error::PoolClosed)))
}

/// Whatever is queued when the previous batch finishes goes in the next one.
async fn run(
    name: &'static str,
    ledger: Ledger,
    mut rx: mpsc::Receiver<Request>,
    batch_max: usize,
    health: Arc<Health>,
    metrics: WorkerMetrics,
) {
    let mut batch = Vec::with_capacity(batch_max);
    while rx.recv_many(&mut batch, batch_max).await > 0 {
        metrics.append_batch(name, batch.len());
        let (events, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let results = ledger.append_many(events).await;
        health.result(name, &results);
        match results {
            Ok(results) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                // Committed or not is unknown: the callers' retries find out (a stored
                // event makes the retry conflict, and the attempt's fate says whose it is).
                let e = AppendError::from(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
