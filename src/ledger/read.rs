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

    /// What became of `worker`'s `attempt` of `scan_id` after `after_version`, the last
    /// stream version the worker knows it wrote (see [`AttemptFate`]).
    pub async fn attempt_fate(
        &self,
        scan_id: ScanId,
        attempt: i32,
        worker: &WorkerId,
        after_version: i32,
    ) -> Result<AttemptFate, sqlx::Error> {
        let events: Vec<(i32, String, i32, Option<String>)> = sqlx::query_as(
            "SELECT version, kind, attempt, worker_id FROM scan_events
              WHERE scan_id = $1 AND version > $2 ORDER BY version",
        )
        .bind(scan_id.0)
        .bind(after_version)
        .fetch_all(&self.pool)
        .await?;
        Ok(AttemptFate::of(attempt, worker, after_version, &events))
    }
}

/// What became of an attempt after the stream version its writer last knew, for a writer
/// whose append was refused or whose acknowledgement never arrived (the connection broke
/// after the commit). Judged by attempt and worker id: only the lease holder may write
/// an attempt's heartbeats and outcome (the ledger's fencing trigger), so an event of
/// this attempt by this worker is the writer's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptFate {
    /// Only this writer's own heartbeats were stored since: the attempt is still its own,
    /// now at `version` (the next append expects it).
    Held { version: i32 },
    /// This writer's outcome is stored, at `version`.
    Recorded { version: i32, completed: bool },
    /// Someone else wrote to the scan (a `TimedOut`, a `Cancelled`, a later claim): the
    /// attempt is no longer this writer's.
    Lost { kind: String, version: i32 },
}

impl AttemptFate {
    /// Classify the events stored after `after_version` (in version order), as
    /// (version, kind, attempt, worker id).
    pub fn of(
        attempt: i32,
        worker: &WorkerId,
        after_version: i32,
        events: &[(i32, String, i32, Option<String>)],
    ) -> Self {
        let mut version = after_version;
        for (v, kind, a, w) in events {
            let own = *a == attempt && w.as_deref() == Some(worker.as_str());
            match kind.as_str() {
                "Heartbeat" if own => version = *v,
                "Completed" | "Failed" if own => {
                    return Self::Recorded {
                        version: *v,
                        completed: kind == "Completed",
                    }
                }
                _ => {
                    return Self::Lost {
                        kind: kind.clone(),
                        version: *v,
                    }
                }
            }
        }
        Self::Held { version }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(
        v: i32,
        kind: &str,
        attempt: i32,
        worker: Option<&str>,
    ) -> (i32, String, i32, Option<String>) {
        (v, kind.to_string(), attempt, worker.map(str::to_string))
    }

    #[test]
    fn an_attempt_fate_tells_own_lost_acknowledgements_from_other_writers() {
        let me = WorkerId::new("w1");
        // Nothing since: still held where it was.
        assert_eq!(
            AttemptFate::of(2, &me, 5, &[]),
            AttemptFate::Held { version: 5 }
        );
        // A heartbeat of ours whose acknowledgement was lost: still held, one version on.
        assert_eq!(
            AttemptFate::of(2, &me, 5, &[ev(6, "Heartbeat", 2, Some("w1"))]),
            AttemptFate::Held { version: 6 }
        );
        // Our outcome, behind a heartbeat of ours: recorded.
        assert_eq!(
            AttemptFate::of(
                2,
                &me,
                5,
                &[
                    ev(6, "Heartbeat", 2, Some("w1")),
                    ev(7, "Failed", 2, Some("w1"))
                ]
            ),
            AttemptFate::Recorded {
                version: 7,
                completed: false
            }
        );
        assert_eq!(
            AttemptFate::of(2, &me, 5, &[ev(6, "Completed", 2, Some("w1"))]),
            AttemptFate::Recorded {
                version: 6,
                completed: true
            }
        );
        // Timed out by a reaper, cancelled, or an outcome of another worker or attempt: lost.
        for other in [
            ev(6, "TimedOut", 2, Some("reaper")),
            ev(6, "Cancelled", 0, None),
            ev(6, "Completed", 2, Some("w2")),
            ev(6, "Heartbeat", 3, Some("w1")),
            ev(6, "Claimed", 3, Some("w1")),
        ] {
            let kind = other.1.clone();
            assert_eq!(
                AttemptFate::of(2, &me, 5, &[other]),
                AttemptFate::Lost { kind, version: 6 }
            );
        }
    }
}
