//! Whether this worker reaches its database, as its own calls find out (claims, the
//! reaper, both append lanes). One place decides, so an outage is logged once when it
//! starts and once when it ends, not once per failed call, and so the reaper knows when
//! the database came back.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::WorkerEvent;
use crate::ledger;
use crate::metrics::WorkerMetrics;

pub(super) struct Health {
    state: Mutex<State>,
    reachable: watch::Sender<bool>,
    events: broadcast::Sender<WorkerEvent>,
    metrics: WorkerMetrics,
}

#[derive(Default)]
struct State {
    down_since: Option<Instant>,
    /// When the database answered again after the last outage.
    regained_at: Option<Instant>,
}

impl Health {
    pub(super) fn new(events: broadcast::Sender<WorkerEvent>, metrics: WorkerMetrics) -> Self {
        Self {
            state: Mutex::default(),
            reachable: watch::Sender::new(true),
            events,
            metrics,
        }
    }

    /// The database answered (whatever it said).
    pub(super) fn ok(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = s.down_since.take() {
            s.regained_at = Some(Instant::now());
            drop(s);
            tracing::warn!(
                down_for = ?since.elapsed(),
                "database reachable again: claiming resumes, held outcomes are being recorded"
            );
            self.reachable.send_replace(true);
            self.metrics.database_reachable(true);
            let _ = self.events.send(WorkerEvent::Reconnected);
        }
    }

    /// A call failed; only an unreachable database counts as an outage.
    pub(super) fn failed(&self, what: &'static str, error: &sqlx::Error) {
        if !ledger::unreachable(error) {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.down_since.is_none() {
            s.down_since = Some(Instant::now());
            drop(s);
            tracing::error!(
                %error,
                failed = what,
                "database unreachable: no new claims; running scans are aborted once their \
                 lease must have run out (self-fencing); finished scans' outcomes are held \
                 and retried until the database takes them"
            );
            self.reachable.send_replace(false);
            self.metrics.database_reachable(false);
            let _ = self.events.send(WorkerEvent::Disconnected);
        }
    }

    /// Report the result of a call (an append lane's, a claim's, the reaper's).
    pub(super) fn result<T>(&self, what: &'static str, r: &Result<T, sqlx::Error>) {
        match r {
            Ok(_) => self.ok(),
            Err(e) if ledger::unreachable(e) => self.failed(what, e),
            Err(_) => self.ok(),
        }
    }

    pub(super) fn reachable(&self) -> bool {
        *self.reachable.borrow()
    }

    /// Resolves once the database is reachable (at once if it is).
    pub(super) async fn wait_reachable(&self) {
        let mut rx = self.reachable.subscribe();
        let _ = rx.wait_for(|up| *up).await;
    }

    /// How long ago the database came back after the last outage, if it ever went away.
    pub(super) fn regained_ago(&self) -> Option<Duration> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.regained_at.map(|at| at.elapsed())
    }
}
