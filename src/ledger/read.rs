//! Reading the ledger: one scan's stream, the global feed, and counters.

use sqlx::Row;
use uuid::Uuid;

use super::{Ledger, LedgerError};
use crate::domain::*;

/// A position in the global feed: the writing transaction and the event's `seq`.
/// Opaque to clients (`"<tx_id>.<seq>"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedCursor {
    pub tx_id: i64,
    pub seq: i64,
}

impl FeedCursor {
    pub fn after(e: &RecordedEvent) -> Self {
        Self {
            tx_id: e.tx_id,
            seq: e.seq,
        }
    }
}

impl std::fmt::Display for FeedCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.tx_id, self.seq)
    }
}

impl std::str::FromStr for FeedCursor {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (tx, seq) = s.split_once('.').ok_or(())?;
        let (tx_id, seq) = (tx.parse().map_err(|_| ())?, seq.parse().map_err(|_| ())?);
        if tx_id < 0 || seq < 0 {
            return Err(());
        }
        Ok(Self { tx_id, seq })
    }
}

/// An event exactly as stored: what the feed serves, so an event this build cannot
/// decode (a newer build's payload during a rolling upgrade) is served as it is, with
/// its schema version, instead of stopping every reader at its cursor.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub tx_id: i64,
    pub scan_id: ScanId,
    pub version: i32,
    pub kind: String,
    pub attempt: i32,
    pub worker_id: Option<String>,
    /// The stored payload, its schema version `v` included.
    pub payload: serde_json::Value,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

impl StoredEvent {
    /// The feed position just after this event.
    pub fn cursor(&self) -> FeedCursor {
        FeedCursor {
            tx_id: self.tx_id,
            seq: self.seq,
        }
    }
}

impl Ledger {
    /// The global feed: events committed after `after`, in commit-safe order.
    ///
    /// Positions (`seq`) are taken at insert but transactions commit in any order, so a
    /// reader of `seq > last` could skip an event forever. Only events whose writing
    /// transaction is older than every transaction still in flight are served, ordered by
    /// `(tx_id, seq)`, with that pair as the cursor: nothing can commit behind it later.
    pub async fn feed(
        &self,
        after: FeedCursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM scan_events
              WHERE (tx_id, seq) > ($1::text::xid8, $2)
                AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY tx_id, seq
              LIMIT $3"
        ))
        .bind(after.tx_id.to_string())
        .bind(after.seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredEvent {
                    seq: row.try_get("seq")?,
                    tx_id: row.try_get("tx_id")?,
                    scan_id: ScanId(row.try_get("scan_id")?),
                    version: row.try_get("version")?,
                    kind: row.try_get("kind")?,
                    attempt: row.try_get("attempt")?,
                    worker_id: row.try_get("worker_id")?,
                    payload: row.try_get("payload")?,
                    recorded_at: row.try_get("recorded_at")?,
                })
            })
            .collect()
    }

    /// How long the feed has been holding back a committed event, in seconds: the age
    /// (from its transaction's start, `recorded_at`) of the first event in feed order
    /// that has committed but whose transaction is not below the horizon yet. `None`
    /// when nothing waits. One probe of the feed index, at the horizon.
    pub async fn feed_lag(&self) -> Result<Option<f64>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT extract(epoch FROM now() - recorded_at)::float8 FROM scan_events
              WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY tx_id, seq
              LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
    }

    /// Which of `ids` already have a stream.
    pub async fn existing(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT scan_id FROM scan_events WHERE kind = 'Requested' AND scan_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await
    }

    /// The whole stream of one scan, in version order.
    pub async fn stream(&self, scan_id: ScanId) -> Result<Vec<RecordedEvent>, LedgerError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM scan_events WHERE scan_id = $1 ORDER BY version"
        ))
        .bind(scan_id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(decode_row).collect()
    }

    /// Claims ever made and attempts ever timed out (both read partial unique indexes,
    /// not the whole ledger).
    pub async fn lifetime_counts(&self) -> Result<LifetimeCounts, sqlx::Error> {
        let (claims, timeouts): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM scan_events WHERE kind = 'Claimed'),
                    (SELECT count(*) FROM scan_events WHERE kind IN ('Completed', 'Failed', 'TimedOut')
                                                        AND kind = 'TimedOut')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(LifetimeCounts { claims, timeouts })
    }
}

/// Totals over the whole ledger, for metrics.
#[derive(Clone, Copy, Debug)]
pub struct LifetimeCounts {
    pub claims: i64,
    pub timeouts: i64,
}

/// The columns `decode_row` reads.
pub(super) const EVENT_COLUMNS: &str =
    "seq, scan_id, version, kind, attempt, worker_id, payload, recorded_at, tx_id::text::bigint AS tx_id";

pub(super) fn decode_row(row: sqlx::postgres::PgRow) -> Result<RecordedEvent, LedgerError> {
    let seq: i64 = row.try_get("seq")?;
    let kind: String = row.try_get("kind")?;
    let payload: serde_json::Value = row.try_get("payload")?;
    let event =
        Event::decode(&kind, payload).map_err(|source| LedgerError::Decode { seq, source })?;
    Ok(RecordedEvent {
        seq,
        scan_id: ScanId(row.try_get("scan_id")?),
        version: row.try_get("version")?,
        attempt: row.try_get("attempt")?,
        worker_id: row
            .try_get::<Option<String>, _>("worker_id")?
            .map(WorkerId::new),
        recorded_at: row.try_get("recorded_at")?,
        tx_id: row.try_get("tx_id")?,
        event,
    })
}
