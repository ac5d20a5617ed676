//! One LISTEN connection per API process, fanned out to every long-poll and event
//! stream waiting in it, so waiters are woken by the database and not by a sleep loop.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::broadcast;

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
}

impl Changes {
    /// Start listening on `pool`; the task lives as long as the process.
    pub fn start(pool: PgPool) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let sender = tx.clone();
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
                let _ = sender.send(Change::Any);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Self { tx }
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
        notify::register_waiter(pool, id, scan, ttl).await?;
        Ok(Watch {
            pool: pool.clone(),
            id,
        })
    }

    /// Subscribe before reading the state you will wait on, so no change slips between.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}

async fn listen(pool: &PgPool, tx: &broadcast::Sender<Change>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    loop {
        let change = match listener.try_recv().await? {
            None => Change::Any,
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
