//! One LISTEN connection per API process, fanned out to every long-poll and event
//! stream waiting in it, so waiters are woken by the database and not by a sleep loop;
//! and one watcher of the transaction horizon, which tells a waiter when every writer
//! that might have missed its registration has ended (its fence, `ledger::notify`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{broadcast, watch, Notify};

use crate::domain::ScanId;
use crate::ledger::notify::{self, CHANGES_CHANNEL};

/// What changed, as far as a waiter can tell.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Scans(Arc<Vec<ScanId>>),
    /// Too many to list, or notifications may have been missed: re-check everything.
    Any,
}

impl Change {
    pub fn touches(&self, id: ScanId) -> bool {
        match self {
            Self::Scans(ids) => ids.contains(&id),
            Self::Any => true,
        }
    }
}

#[derive(Clone)]
pub struct Changes {
    tx: broadcast::Sender<Change>,
    horizon: Arc<Horizon>,
}

/// The last transaction horizon read, read again only while someone waits for it.
struct Horizon {
    value: watch::Sender<i64>,
    /// Waiters whose fence the horizon has not reached yet.
    demand: AtomicUsize,
    wake: Notify,
}

/// How often the horizon is read while someone waits for it: at first, and again
/// whenever it moved; it backs off to [`HORIZON_POLL_MAX`] while it stands still (a long
/// transaction somewhere), so a stalled horizon costs a few queries a second per process.
const HORIZON_POLL_MIN: Duration = Duration::from_millis(10);
const HORIZON_POLL_MAX: Duration = Duration::from_millis(250);

impl Changes {
    /// Start listening on `pool`; the task lives as long as the process.
    pub fn start(pool: PgPool) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let sender = tx.clone();
        let horizon = Arc::new(Horizon {
            value: watch::channel(0).0,
            demand: AtomicUsize::new(0),
            wake: Notify::new(),
        });
        tokio::spawn(watch_horizon(pool.clone(), horizon.clone()));
        // Waiters of a crashed API process expire; sweep them now and then.
        let sweeper = pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if sweeper.is_closed() {
                    break;
                }
                let _ = notify::sweep_expired_waiters(&sweeper).await;
            }
        });
        tokio::spawn(async move {
            loop {
                if let Err(e) = listen(&pool, &sender).await {
                    // The process is shutting down: nothing to listen for any more.
                    if pool.is_closed() {
                        break;
                    }
                    tracing::warn!(error = %e, "change listener lost its connection; retrying");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Self { tx, horizon }
    }

    /// Requests (long-polls, event streams) currently waiting for changes.
    pub fn waiters(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Register interest in changes of `scan` (`None`: any scan) for `ttl`, so that
    /// writers announce them. Removed when the returned guard is dropped.
    pub async fn watch(
        &self,
        pool: &PgPool,
        scan: Option<ScanId>,
        ttl: Duration,
    ) -> Result<Watch, sqlx::Error> {
        let id = uuid::Uuid::new_v4();
        let fence = notify::register_waiter(pool, id, scan, ttl).await?;
        Ok(Watch {
            pool: pool.clone(),
            id,
            fence,
        })
    }

    /// Resolves once every writer that may have missed `watch`'s registration has ended
    /// (the horizon has reached its fence): read once more then, and no change is missed.
    /// Holds no connection: one task per process reads the horizon for all waiters.
    pub async fn settled(&self, watch: &Watch) {
        let mut rx = self.horizon.value.subscribe();
        if *rx.borrow() >= watch.fence {
            return;
        }
        let _demand = Demand::new(&self.horizon);
        if rx.wait_for(|h| *h >= watch.fence).await.is_err() {
            // The watcher is gone (the process is stopping): nothing will settle.
            std::future::pending::<()>().await;
        }
    }

    /// Subscribe before reading the state you will wait on, so no change slips between.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}

/// Counts a waiter in [`Horizon::demand`] for as long as it waits.
struct Demand<'a>(&'a Horizon);

impl<'a> Demand<'a> {
    fn new(h: &'a Horizon) -> Self {
        h.demand.fetch_add(1, Ordering::SeqCst);
        h.wake.notify_one();
        Self(h)
    }
}

impl Drop for Demand<'_> {
    fn drop(&mut self) {
        self.0.demand.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Read the horizon while anyone waits for it; sleep on [`Horizon::wake`] otherwise.
async fn watch_horizon(pool: PgPool, h: Arc<Horizon>) {
    let mut pause = HORIZON_POLL_MIN;
    loop {
        if pool.is_closed() {
            break;
        }
        if h.demand.load(Ordering::SeqCst) == 0 {
            // `notify_one` leaves a permit when nobody waits here, so no wake-up is lost.
            h.wake.notified().await;
            pause = HORIZON_POLL_MIN;
            continue;
        }
        match notify::horizon(&pool).await {
            Ok(now) => {
                let moved = h.value.send_if_modified(|v| {
                    let moved = now > *v;
                    *v = (*v).max(now);
                    moved
                });
                pause = if moved {
                    HORIZON_POLL_MIN
                } else {
                    (pause * 2).min(HORIZON_POLL_MAX)
                };
            }
            Err(e) => {
                tracing::debug!(error = %e, "reading the transaction horizon failed; retrying");
                pause = HORIZON_POLL_MAX;
            }
        }
        tokio::time::sleep(pause).await;
    }
}

async fn listen(pool: &PgPool, tx: &broadcast::Sender<Change>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    // Anything sent while no LISTEN was in effect (before this connection, or while the
    // last one was lost) reached no one: every waiter re-reads.
    let _ = tx.send(Change::Any);
    loop {
        let change = match listener.try_recv().await? {
            // The connection was lost. Reconnect here, not inside the listener, so that
            // the `Any` above is sent once the new LISTEN is in effect.
            None => return Ok(()),
            Some(n) if n.payload() == "*" => Change::Any,
            Some(n) => Change::Scans(Arc::new(
                n.payload()
                    .split(',')
                    .filter_map(|id| uuid::Uuid::parse_str(id).ok().map(ScanId))
                    .collect(),
            )),
        };
        let _ = tx.send(change);
    }
}

/// A registered waiter (see [`Changes::watch`]).
pub struct Watch {
    pool: PgPool,
    id: uuid::Uuid,
    /// Writers that may have missed the registration have ids below it.
    fence: i64,
}

impl Watch {
    /// Keep the registration alive for another `ttl` (long-lived streams).
    pub async fn extend(&self, ttl: Duration) -> Result<(), sqlx::Error> {
        notify::renew_waiter(&self.pool, self.id, ttl).await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let (pool, id) = (self.pool.clone(), self.id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = notify::remove_waiter(&pool, id).await;
            });
        }
    }
}

/// Wait until a change touching `id` arrives (or a lagging receiver must assume one).
pub async fn changed(rx: &mut broadcast::Receiver<Change>, id: ScanId) {
    loop {
        match rx.recv().await {
            Ok(c) if c.touches(id) => return,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}
