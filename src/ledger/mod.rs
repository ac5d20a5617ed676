//! The ledger: the append-only `scan_events` table (and the findings written with each
//! `Completed`), and the only code that reads or writes them.
//!
//! The rest of the code asks for intent-named operations and never writes SQL against
//! the ledger's tables itself:
//! - [`append`]: the one write path (lock, check versions, insert, fold inline, notify);
//! - [`queue`]: claiming scans and reaping expired leases;
//! - [`read`]: a scan's stream, the global feed, counters;
//! - [`findings`]: the findings of completed attempts;
//! - [`notify`]: wake-ups for workers and change notifications for waiting readers;
//! - [`replay`]: rebuilding and verifying projections from the events;
//! - [`audit`]: checkpoints, the online integrity check, bundles and proofs;
//! - [`schema`]: migrations of the ledger and installation of the projections.

mod append;
pub mod audit;
pub mod findings;
pub mod governance;
pub mod notify;
mod queue;
mod read;
pub mod replay;
pub mod schema;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::*;

pub use notify::{CHANGES_CHANNEL, PENDING_CHANNEL};
pub use read::{AttemptFate, FeedCursor, StoredEvent};

/// One event to append, with the stream version the writer believes is current.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub scan_id: ScanId,
    /// The version the writer last saw (0 for a new scan).
    pub expected_version: i32,
    pub attempt: i32,
    pub worker_id: Option<WorkerId>,
    pub event: Event,
}

/// A request for a new scan.
#[derive(Clone, Debug)]
pub struct NewScan {
    pub scan_id: ScanId,
    pub request: Requested,
}

/// An attempt a worker now owns.
#[derive(Clone, Debug)]
pub struct Claim {
    pub scan_id: ScanId,
    pub attempt: i32,
    pub max_attempts: i32,
    /// Stream version after the `Claimed` event: the next append expects it.
    pub version: i32,
    pub subscription_id: SubscriptionId,
    pub rules: Vec<String>,
    pub lease_expires_at: DateTime<Utc>,
    /// How long the scan had been eligible (requested, or its retry due) when this
    /// claim was recorded, by the database clock.
    pub waited: std::time::Duration,
}

/// Outcome of an idempotent request.
// One value per API request, consumed at once: boxing the event would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Idempotent {
    /// The key was new: the scan was requested.
    Created(RecordedEvent),
    /// The key was used before with the same request: that scan.
    Replayed(ScanId),
    /// The key was used before with a different request.
    Mismatch,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended first: re-read the stream.
    #[error("scan {scan_id}: expected stream version {expected}, found {actual:?}")]
    Conflict {
        scan_id: ScanId,
        expected: i32,
        actual: Option<i32>,
    },
    /// The database refused the event (an invariant: fencing, terminal state, lease).
    /// `scan_id` is `None` when the database refused a whole batch of new streams
    /// (requests, imports) and did not say which one.
    #[error(
        "{}: the ledger rejected the event ({constraint})",
        scan_label(scan_id)
    )]
    Rejected {
        scan_id: Option<ScanId>,
        constraint: String,
    },
    /// The event (or its findings) holds a value the database cannot store, e.g. a NUL
    /// character in text. Retrying the same data will fail the same way.
    #[error(
        "{}: the ledger cannot store a value of the event (SQLSTATE {sqlstate})",
        scan_label(scan_id)
    )]
    Unstorable {
        scan_id: Option<ScanId>,
        sqlstate: String,
    },
    #[error("ledger database error: {0}")]
    Db(std::sync::Arc<sqlx::Error>),
}

impl From<sqlx::Error> for AppendError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(std::sync::Arc::new(e))
    }
}

impl AppendError {
    /// True when the writer lost the scan (another writer won, or it was fenced off).
    /// It may also be the writer's own earlier append, stored although its acknowledgement
    /// never arrived: [`Ledger::attempt_fate`] tells the two apart.
    pub fn is_lost(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::Rejected { .. })
    }

    /// True when the database could not be reached (see [`unreachable`]): whether the
    /// event was stored is unknown.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Db(e) if unreachable(e))
    }
}

/// Whether an error means that the database could not be reached or went away (network,
/// server shut down or starting up, no connection to be had), as opposed to an answer
/// from a reachable database (a refusal, a timeout of one statement).
pub fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect
            // now (starting up or shutting down); 53300: too many connections.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored event {seq} cannot be read: {source}")]
    Decode {
        seq: i64,
        #[source]
        source: DecodeError,
    },
}

fn scan_label(id: &Option<ScanId>) -> String {
    id.map_or_else(|| "a batch".to_string(), |id| format!("scan {id}"))
}

/// Handle on the ledger (cheap to clone).
#[derive(Clone, Debug)]
pub struct Ledger {
    pool: PgPool,
    /// Wakes idle workers after new scans commit (see [`notify::Waker`]).
    waker: std::sync::Arc<notify::Waker>,
}

impl Ledger {
    pub fn new(pool: PgPool) -> Self {
        Self {
            waker: std::sync::Arc::new(notify::Waker::new(pool.clone())),
            pool,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A handle on a pool of its own (`connections` connections, opened lazily) to the
    /// same database as the same login, with the same session settings: for a writer that
    /// must never queue behind this handle's other users. A connection lost in an outage
    /// is replaced on next use; one acquire waits at most `acquire_timeout` (connecting
    /// included), so a caller learns of an outage in bounded time.
    pub fn dedicated(&self, connections: u32, acquire_timeout: std::time::Duration) -> Ledger {
        let options = (*self.pool.connect_options()).clone();
        Ledger::new(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(acquire_timeout)
                .connect_lazy_with(options),
        )
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        crate::pg::ping(&self.pool).await
    }
}
