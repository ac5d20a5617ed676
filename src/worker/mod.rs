//! The worker runtime: claims scans, runs them under a lease kept alive by heartbeats,
//! reaps attempts whose lease ran out, and shuts down without losing a scan.
//!
//! Correctness rests on the ledger, not on this code: a claim is the unique `Claimed`
//! insert, and every later append names the stream version it expects, so a worker
//! whose attempt was timed out (or cancelled) learns it on its next append and stops.

mod appender;
mod attempt;
mod claim;
pub mod job;
mod reaper;
pub mod retry;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify, Semaphore};
use tracing::Instrument;

use crate::domain::{RecordedEvent, ScanId, WorkerId};
use crate::ledger::{AppendError, Ledger, NewEvent};
pub use crate::shutdown::{Shutdown, ShutdownTrigger};
pub use job::{ProgressReporter, ScanError, ScanJob, ScanReport, ScanTarget};
pub use retry::RetryPolicy;

pub const CONCURRENCY_DEFAULT: usize = 8;
pub const HEARTBEAT_DEFAULT: Duration = Duration::from_secs(5);
pub const LEASE_DEFAULT: Duration = Duration::from_secs(30);
pub const POLL_DEFAULT: Duration = Duration::from_secs(1);
pub const GRACE_DEFAULT: Duration = Duration::from_secs(20);
pub const CLAIM_BATCH_DEFAULT: usize = 64;

/// Worker settings. Validated once by [`WorkerConfig::validate`].
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub id: WorkerId,
    /// Scans run at once.
    pub concurrency: usize,
    /// Interval between heartbeats of a running attempt.
    pub heartbeat: Duration,
    /// Lease granted by each claim and heartbeat; must exceed `heartbeat`.
    pub lease: Duration,
    /// Polling fallback when no NOTIFY arrives.
    pub poll: Duration,
    /// How often the reaper looks for expired leases.
    pub reaper_interval: Duration,
    /// Time running scans get to finish on shutdown before they are handed back.
    pub grace: Duration,
    /// Most scans claimed in one round trip.
    pub claim_batch: usize,
    pub retry: RetryPolicy,
    /// Run at most one scan per subscription at a time; others queue behind it.
    pub one_per_subscription: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            id: WorkerId::generate(),
            concurrency: CONCURRENCY_DEFAULT,
            heartbeat: HEARTBEAT_DEFAULT,
            lease: LEASE_DEFAULT,
            poll: POLL_DEFAULT,
            reaper_interval: HEARTBEAT_DEFAULT,
            grace: GRACE_DEFAULT,
            claim_batch: CLAIM_BATCH_DEFAULT,
            retry: RetryPolicy::default(),
            one_per_subscription: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("concurrency must be at least 1")]
    Concurrency,
    #[error("the lease ({lease:?}) must be longer than the heartbeat interval ({heartbeat:?})")]
    LeaseTooShort {
        lease: Duration,
        heartbeat: Duration,
    },
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

impl WorkerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.concurrency == 0 {
            return Err(ConfigError::Concurrency);
        }
        for (name, d) in [
            ("heartbeat", self.heartbeat),
            ("poll", self.poll),
            ("reaper interval", self.reaper_interval),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.claim_batch == 0 {
            return Err(ConfigError::Zero("claim batch"));
        }
        if self.lease <= self.heartbeat {
            return Err(ConfigError::LeaseTooShort {
                lease: self.lease,
                heartbeat: self.heartbeat,
            });
        }
        Ok(())
    }
}

/// What a worker did, for tests and embedding code to await instead of sleeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerEvent {
    Claimed {
        scan_id: ScanId,
        attempt: i32,
    },
    Heartbeat {
        scan_id: ScanId,
        attempt: i32,
    },
    /// The attempt's outcome was recorded (`Completed` or `Failed`).
    Finished {
        scan_id: ScanId,
        attempt: i32,
        completed: bool,
    },
    /// The ledger refused this worker's append: the attempt belongs to no one now.
    Lost {
        scan_id: ScanId,
        attempt: i32,
    },
    /// This worker's reaper timed out someone's attempt.
    Reaped {
        scan_id: ScanId,
        attempt: i32,
    },
    /// The queue was drained: the claim loop now waits for a NOTIFY, a free slot or the poll.
    Idle,
    /// LISTEN is in effect: from now on a new scan wakes this worker at once.
    Listening,
}

pub struct Worker {
    ledger: Ledger,
    job: Arc<dyn ScanJob>,
    cfg: WorkerConfig,
    events: broadcast::Sender<WorkerEvent>,
}

/// What attempt tasks share.
struct Shared {
    ledger: Ledger,
    job: Arc<dyn ScanJob>,
    cfg: WorkerConfig,
    events: broadcast::Sender<WorkerEvent>,
    appender: mpsc::Sender<(
        NewEvent,
        oneshot::Sender<Result<RecordedEvent, AppendError>>,
    )>,
    /// Set when the grace period is over: running attempts hand their scans back.
    hard_stop: watch::Receiver<bool>,
}

impl Shared {
    fn emit(&self, e: WorkerEvent) {
        let _ = self.events.send(e);
    }

    /// Append through the batching appender.
    async fn append(&self, event: NewEvent) -> Result<RecordedEvent, AppendError> {
        let (tx, rx) = oneshot::channel();
        let closed = || AppendError::from(sqlx::Error::PoolClosed);
        self.appender
            .send((event, tx))
            .await
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

impl Worker {
    pub fn new(
        ledger: Ledger,
        job: Arc<dyn ScanJob>,
        cfg: WorkerConfig,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let (events, _) = broadcast::channel(4096);
        Ok(Self {
            ledger,
            job,
            cfg,
            events,
        })
    }

    pub fn id(&self) -> &WorkerId {
        &self.cfg.id
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WorkerEvent> {
        self.events.subscribe()
    }

    /// Run until `shutdown` fires; then stop claiming, give running scans the grace
    /// period, and hand back the rest as retryable `Failed` (`worker_shutdown`).
    pub async fn run(self, mut shutdown: Shutdown) {
        let span = tracing::info_span!("worker", worker_id = %self.cfg.id);
        async move {
            let (append_tx, append_rx) = mpsc::channel(appender::APPEND_BATCH_MAX * 4);
            let appender =
                tokio::spawn(appender::run(self.ledger.clone(), append_rx).in_current_span());
            let (hard_stop_tx, hard_stop) = watch::channel(false);
            let shared = Arc::new(Shared {
                ledger: self.ledger.clone(),
                job: self.job,
                cfg: self.cfg,
                events: self.events,
                appender: append_tx,
                hard_stop,
            });
            let wake = Arc::new(Notify::new());
            let events = shared.events.clone();
            let emit = move |e| {
                let _ = events.send(e);
            };
            let listener = tokio::spawn(
                claim::listen(shared.ledger.clone(), wake.clone(), emit).in_current_span(),
            );
            let reaper =
                tokio::spawn(reaper::run(shared.clone(), shutdown.clone()).in_current_span());
            let slots = Arc::new(Semaphore::new(shared.cfg.concurrency));
            tracing::info!(concurrency = shared.cfg.concurrency, "worker started");

            claim::run(&shared, &slots, &wake, &mut shutdown).await;

            tracing::info!(grace = ?shared.cfg.grace, "worker stopping: no new claims");
            let all = shared.cfg.concurrency as u32;
            if tokio::time::timeout(shared.cfg.grace, slots.acquire_many(all))
                .await
                .is_err()
            {
                tracing::warn!("grace period over: handing running scans back");
                let _ = hard_stop_tx.send(true);
                let _ = slots.acquire_many(all).await;
            }
            listener.abort();
            reaper.abort();
            let _ = reaper.await;
            drop(shared);
            let _ = appender.await;
            tracing::info!("worker stopped");
        }
        .instrument(span)
        .await
    }
}
