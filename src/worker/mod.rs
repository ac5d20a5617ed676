//! The worker runtime: claims scans, runs them under a lease kept alive by heartbeats,
//! reaps attempts whose lease ran out, and shuts down without losing a scan.
//!
//! Correctness rests on the ledger, not on this code: a claim is the unique `Claimed`
//! insert, and every later append names the stream version it expects, so a worker
//! whose attempt was timed out (or cancelled) learns it on its next append and stops.
//! A worker cut off from the database cannot learn anything, so it fences itself: it
//! stops a running scan once its lease must have run out by the database clock (see
//! `attempt.rs`), while a finished scan's outcome is held and retried until the ledger
//! takes it or has timed the attempt out.

mod appender;
mod attempt;
pub mod checkpointer;
mod claim;
mod health;
pub mod job;
mod mutes;
mod reaper;
pub mod retry;
pub mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch, Notify, Semaphore};
use tracing::Instrument;

use crate::domain::{ScanId, WorkerId};
use crate::ledger::Ledger;
pub use crate::metrics::WorkerMetrics;
pub use crate::shutdown::{Shutdown, ShutdownTrigger};
pub use job::{ProgressReporter, ScanError, ScanJob, ScanReport, ScanTarget};
pub use retry::RetryPolicy;

pub const CONCURRENCY_DEFAULT: usize = 8;
pub const HEARTBEAT_DEFAULT: Duration = Duration::from_secs(5);
pub const LEASE_DEFAULT: Duration = Duration::from_secs(30);
pub const POLL_DEFAULT: Duration = Duration::from_secs(1);
pub const GRACE_DEFAULT: Duration = Duration::from_secs(20);
pub const CLAIM_BATCH_DEFAULT: usize = 64;
pub const SCHEDULE_TICK_DEFAULT: Duration = Duration::from_secs(10);
/// The fewest connections a worker's shared pool needs: its LISTEN connection (held for
/// good), claims, the reaper and the checkpointer. The two append lanes (heartbeats,
/// outcomes) have a connection each on top of these (see `appender.rs`).
pub const SHARED_POOL_MIN: u32 = 4;

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
    /// How often this worker's scheduler looks for due schedules (`None`: it runs none).
    pub schedule_tick: Option<Duration>,
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
            schedule_tick: Some(SCHEDULE_TICK_DEFAULT),
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

    /// How long before `lease` has passed since its last confirmed heartbeat a running
    /// scan is stopped when no newer heartbeat is confirmed: a tenth of the lease (the
    /// time to stop the job is well within it), but never more than half the time the
    /// lease leaves a heartbeat to be confirmed in.
    pub fn fence_margin(&self) -> Duration {
        (self.lease / 10).min(self.lease.saturating_sub(self.heartbeat) / 2)
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
    /// No heartbeat was confirmed for (almost) a lease, so the lease may have run out by
    /// the database clock: the running scan was aborted and nothing appended for it.
    Fenced {
        scan_id: ScanId,
        attempt: i32,
    },
    /// A database call failed because the database could not be reached.
    Disconnected,
    /// The database answered again after [`WorkerEvent::Disconnected`].
    Reconnected,
    /// This worker's reaper timed out someone's attempt.
    Reaped {
        scan_id: ScanId,
        attempt: i32,
    },
    /// The queue was drained: the claim loop now waits for a NOTIFY, a free slot or the poll.
    Idle,
    /// LISTEN is in effect: from now on a new scan wakes this worker at once.
    Listening,
    /// Shutdown began and the claim loop has ended (a claim that was in flight when it
    /// began has been taken): this worker claims nothing more.
    Draining,
}

pub struct Worker {
    ledger: Ledger,
    job: Arc<dyn ScanJob>,
    cfg: WorkerConfig,
    events: broadcast::Sender<WorkerEvent>,
    metrics: WorkerMetrics,
}

/// What attempt tasks share.
struct Shared {
    /// The shared pool: claims, the reaper, reads.
    ledger: Ledger,
    job: Arc<dyn ScanJob>,
    cfg: WorkerConfig,
    events: broadcast::Sender<WorkerEvent>,
    /// The heartbeat lane: a task and a connection of its own.
    heartbeats: appender::Lane,
    /// The outcome lane: another task and connection.
    outcomes: appender::Lane,
    health: Arc<health::Health>,
    /// The mutes each attempt applies (re-read when governance changes).
    mutes: mutes::MuteCache,
    /// Set when the grace period is over: running attempts hand their scans back.
    hard_stop: watch::Receiver<bool>,
    metrics: WorkerMetrics,
}

impl Shared {
    fn emit(&self, e: WorkerEvent) {
        let _ = self.events.send(e);
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
            metrics: WorkerMetrics::default(),
        })
    }

    /// Record into these metrics (a process's registry) instead of none.
    pub fn with_metrics(mut self, metrics: WorkerMetrics) -> Self {
        metrics.init(crate::domain::Severity::ALL.map(|s| s.as_str()));
        self.metrics = metrics;
        self
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
            let health = Arc::new(health::Health::new(
                self.events.clone(),
                self.metrics.clone(),
            ));
            let lane_ledgers =
                [1, 2].map(|_| self.ledger.dedicated(1, appender::LANE_ACQUIRE_TIMEOUT));
            let (heartbeats, heartbeat_lane) = appender::Lane::spawn(
                "heartbeat",
                lane_ledgers[0].clone(),
                appender::HEARTBEAT_BATCH_MAX,
                health.clone(),
                self.metrics.clone(),
            );
            let (outcomes, outcome_lane) = appender::Lane::spawn(
                "outcome",
                lane_ledgers[1].clone(),
                appender::OUTCOME_BATCH_MAX,
                health.clone(),
                self.metrics.clone(),
            );
            let (hard_stop_tx, hard_stop) = watch::channel(false);
            let shared = Arc::new(Shared {
                ledger: self.ledger.clone(),
                job: self.job,
                cfg: self.cfg,
                events: self.events,
                heartbeats,
                outcomes,
                health,
                mutes: mutes::MuteCache::default(),
                hard_stop,
                metrics: self.metrics,
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
            let scheduler = shared.cfg.schedule_tick.map(|every| {
                let mut stop = shutdown.clone();
                tokio::spawn(
                    scheduler::run(
                        shared.ledger.clone(),
                        every,
                        async move { stop.wait().await },
                    )
                    .in_current_span(),
                )
            });
            let slots = Arc::new(Semaphore::new(shared.cfg.concurrency));
            tracing::info!(concurrency = shared.cfg.concurrency, "worker started");

            claim::run(&shared, &slots, &wake, &mut shutdown).await;
            shared.emit(WorkerEvent::Draining);

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
            if let Some(s) = scheduler {
                s.abort();
            }
            let _ = reaper.await;
            drop(shared);
            // The lanes end once their queues are empty; a batch still waiting for the
            // database gets as long as an outcome does after the grace period.
            for mut lane in [heartbeat_lane, outcome_lane] {
                if tokio::time::timeout(attempt::SHUTDOWN_OUTCOME_WINDOW, &mut lane)
                    .await
                    .is_err()
                {
                    lane.abort();
                }
            }
            for l in lane_ledgers {
                l.pool().close().await;
            }
            tracing::info!("worker stopped");
        }
        .instrument(span)
        .await
    }
}
