//! The ledger: the append-only `scan_events` table and the only code that writes it.
//!
//! Every append runs in one transaction that (1) locks the affected `scan_status` rows
//! in scan id order, (2) checks the expected stream versions, (3) inserts the events —
//! the database re-checks every lifecycle invariant in its trigger and unique indexes —
//! (4) folds them into `scan_status` inline, and (5) sends one NOTIFY when a scan became
//! claimable. The rest of the code asks for intent-named operations (`request`, `claim`,
//! `append`, `reap_expired`) and never writes SQL against `scan_events`.

mod event;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection, PgPool, Row};
use uuid::Uuid;

pub use event::*;

use crate::projection::finding_history;
use crate::projection::scan_status::{self, ScanStatus};

/// Channel notified (once per transaction) when a scan became claimable.
pub const PENDING_CHANNEL: &str = "scanledger_pending";
/// Channel notified (once per transaction) with the ids of scans whose status changed
/// (comma-separated), or `*` when too many changed to list. Claims and heartbeats are
/// not sent: they are the bulk of all transactions, and a NOTIFY serializes commits.
/// Waiters see those changes at their timeout.
pub const CHANGES_CHANNEL: &str = "scanledger_changes";
/// NOTIFY payloads must stay under 8000 bytes.
const CHANGES_PAYLOAD_MAX: usize = 7000;

fn changed_payload(recorded: &[RecordedEvent]) -> Option<String> {
    let mut ids: Vec<ScanId> = recorded
        .iter()
        .filter(|e| !matches!(e.event, Event::Heartbeat(_) | Event::Claimed(_)))
        .map(|e| e.scan_id)
        .collect();
    if ids.is_empty() {
        return None;
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.len() * 37 > CHANGES_PAYLOAD_MAX {
        return Some("*".into());
    }
    Some(
        ids.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
    )
}

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
    #[error("scan {scan_id}: the ledger rejected the event ({constraint})")]
    Rejected { scan_id: ScanId, constraint: String },
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
    pub fn is_lost(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::Rejected { .. })
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

/// Handle on the ledger (cheap to clone).
#[derive(Clone, Debug)]
pub struct Ledger {
    pool: PgPool,
}

/// What the database said about a failed batch insert.
enum Refusal {
    Constraint(String),
    Other(sqlx::Error),
}

fn classify(err: sqlx::Error) -> Refusal {
    if let sqlx::Error::Database(db) = &err {
        let code = db.code().unwrap_or_default();
        // 23xxx: integrity violations, raised by indexes, checks or the lifecycle trigger.
        if code.starts_with("23") {
            let constraint = db.constraint().unwrap_or("scan_events").to_string();
            return Refusal::Constraint(constraint);
        }
    }
    Refusal::Other(err)
}

impl Ledger {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Append `Requested` for new scans, in one transaction.
    pub async fn request(&self, scans: Vec<NewScan>) -> Result<Vec<RecordedEvent>, AppendError> {
        let batch: Vec<NewEvent> = scans
            .into_iter()
            .map(|s| NewEvent {
                scan_id: s.scan_id,
                expected_version: 0,
                attempt: 0,
                worker_id: None,
                event: Event::Requested(s.request),
            })
            .collect();
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        match commit(&mut tx, batch, HashMap::new()).await {
            Ok(recorded) => {
                tx.commit().await?;
                Ok(recorded)
            }
            Err(e) => match classify(e) {
                Refusal::Constraint(constraint) => Err(AppendError::Rejected {
                    scan_id: ScanId(Uuid::nil()),
                    constraint,
                }),
                Refusal::Other(e) => Err(e.into()),
            },
        }
    }

    /// Append `Requested` under an idempotency key, in one transaction with the key, so
    /// that concurrent requests with one key create one scan.
    pub async fn request_idempotent(
        &self,
        principal: &str,
        key: &str,
        request_hash: &[u8],
        scan: NewScan,
    ) -> Result<Idempotent, AppendError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        // Concurrent requests with the same key wait here for the first to commit.
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (principal, key, request_hash, scan_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT (principal, key) DO NOTHING",
        )
        .bind(principal)
        .bind(key)
        .bind(request_hash)
        .bind(scan.scan_id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let (hash, scan_id): (Vec<u8>, Uuid) = sqlx::query_as(
                "SELECT request_hash, scan_id FROM idempotency_keys WHERE principal = $1 AND key = $2",
            )
            .bind(principal)
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
            return Ok(if hash == request_hash {
                Idempotent::Replayed(ScanId(scan_id))
            } else {
                Idempotent::Mismatch
            });
        }
        let batch = vec![NewEvent {
            scan_id: scan.scan_id,
            expected_version: 0,
            attempt: 0,
            worker_id: None,
            event: Event::Requested(scan.request),
        }];
        let mut recorded = commit(&mut tx, batch, HashMap::new()).await?;
        tx.commit().await?;
        Ok(Idempotent::Created(recorded.pop().expect("one event")))
    }

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
    ) -> Result<Vec<RecordedEvent>, LedgerError> {
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
        rows.into_iter().map(decode_row).collect()
    }

    /// Append whole new streams (imported history) in one transaction. Each stream starts
    /// with `Requested` at expected version 0 and continues at 1, 2, …; the database checks
    /// every event as it would a live one.
    pub async fn import(
        &self,
        streams: Vec<Vec<NewEvent>>,
    ) -> Result<Vec<RecordedEvent>, AppendError> {
        let batch: Vec<NewEvent> = streams.into_iter().flatten().collect();
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let recorded =
            commit(&mut tx, batch, HashMap::new())
                .await
                .map_err(|e| match classify(e) {
                    Refusal::Constraint(constraint) => AppendError::Rejected {
                        scan_id: ScanId(Uuid::nil()),
                        constraint,
                    },
                    Refusal::Other(e) => e.into(),
                })?;
        tx.commit().await?;
        Ok(recorded)
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

    /// Append one event at an expected version.
    pub async fn append(&self, event: NewEvent) -> Result<RecordedEvent, AppendError> {
        let mut results = self.append_many(vec![event]).await?;
        results.pop().expect("one result per event")
    }

    /// Append events to existing scans in one transaction where possible. Each event
    /// gets its own result: a stale expected version or a refused event fails alone.
    pub async fn append_many(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Result<RecordedEvent, AppendError>>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        match try_append(&mut conn, &events).await? {
            Ok(results) => Ok(results),
            // The database refused something in the batch: isolate it by appending one by one.
            Err(refusal) if events.len() > 1 => {
                tracing::debug!(?refusal, "batch refused; appending one by one");
                let mut results = Vec::with_capacity(events.len());
                for e in events {
                    let r = match try_append(&mut conn, std::slice::from_ref(&e)).await? {
                        Ok(mut r) => r.pop().expect("one result"),
                        Err(constraint) => Err(AppendError::Rejected {
                            scan_id: e.scan_id,
                            constraint,
                        }),
                    };
                    results.push(r);
                }
                Ok(results)
            }
            Err(constraint) => Ok(vec![Err(AppendError::Rejected {
                scan_id: events[0].scan_id,
                constraint,
            })]),
        }
    }

    /// Claim up to `limit` eligible scans for `worker` by appending `Claimed` for each
    /// one's next attempt. The unique (scan, attempt) claim index decides any race;
    /// `SKIP LOCKED` only keeps concurrent claimers from queueing behind each other.
    ///
    /// With `one_per_subscription`, a scan is not claimed while another scan of its
    /// subscription runs (it stays queued behind it).
    pub async fn claim(
        &self,
        worker: &WorkerId,
        limit: usize,
        lease: Duration,
        one_per_subscription: bool,
    ) -> Result<Vec<Claim>, sqlx::Error> {
        let lease_ms = lease.as_millis() as u64;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut rows =
            scan_status::lock_claimable(&mut tx, limit as i64, one_per_subscription).await?;
        if one_per_subscription {
            rows = scan_status::one_per_idle_subscription(&mut tx, rows).await?;
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let batch: Vec<NewEvent> = rows
            .iter()
            .map(|r| NewEvent {
                scan_id: r.scan_id,
                expected_version: r.version,
                attempt: r.attempt + 1,
                worker_id: Some(worker.clone()),
                event: Event::Claimed(Claimed {
                    lease_ms,
                    origin: None,
                }),
            })
            .collect();
        let mut by_id: HashMap<ScanId, ScanStatus> =
            rows.into_iter().map(|r| (r.scan_id, r)).collect();
        let prev = by_id.clone();
        let recorded = match commit(&mut tx, batch, prev).await {
            Ok(r) => r,
            Err(e) => match classify(e) {
                // Only possible if the projection disagrees with the ledger; claim nothing.
                Refusal::Constraint(c) => {
                    tracing::warn!(constraint = %c, "claim batch refused by the ledger");
                    return Ok(Vec::new());
                }
                Refusal::Other(e) => return Err(e),
            },
        };
        tx.commit().await?;
        Ok(recorded
            .into_iter()
            .filter_map(|e| {
                let row = by_id.remove(&e.scan_id)?;
                let Event::Claimed(c) = &e.event else {
                    return None;
                };
                Some(Claim {
                    scan_id: e.scan_id,
                    attempt: e.attempt,
                    max_attempts: row.max_attempts,
                    version: e.version,
                    subscription_id: SubscriptionId::parse(&row.subscription_id).ok()?,
                    rules: row.rules,
                    lease_expires_at: e.recorded_at
                        + chrono::Duration::milliseconds(c.lease_ms as i64),
                })
            })
            .collect())
    }

    /// Append `TimedOut` for up to `limit` attempts whose lease ran out by the database
    /// clock. Safe with any number of concurrent reapers: rows being reaped elsewhere are
    /// skipped, and the ledger refuses a second outcome for an attempt.
    /// `retry_in` decides the back-off from (attempt, max_attempts).
    pub async fn reap_expired(
        &self,
        reaper: &WorkerId,
        limit: usize,
        retry_in: impl Fn(i32, i32) -> Option<Duration>,
    ) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let rows = scan_status::lock_expired(&mut tx, limit as i64).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let batch: Vec<NewEvent> = rows
            .iter()
            .map(|r| NewEvent {
                scan_id: r.scan_id,
                expected_version: r.version,
                attempt: r.attempt,
                worker_id: Some(reaper.clone()),
                event: Event::TimedOut(TimedOut {
                    lease_holder: WorkerId::new(r.worker_id.clone().unwrap_or_default()),
                    retry_in_ms: retry_in(r.attempt, r.max_attempts).map(|d| d.as_millis() as u64),
                }),
            })
            .collect();
        let prev = rows.into_iter().map(|r| (r.scan_id, r)).collect();
        match commit(&mut tx, batch, prev).await {
            Ok(recorded) => {
                tx.commit().await?;
                Ok(recorded)
            }
            Err(e) => match classify(e) {
                Refusal::Constraint(c) => {
                    tracing::warn!(constraint = %c, "reap batch refused by the ledger");
                    Ok(Vec::new())
                }
                Refusal::Other(e) => Err(e),
            },
        }
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
}

impl Ledger {
    /// Events after global position `after_seq`, in position order (for replay).
    /// Only call when no writer is active, or accept that late commits may appear later:
    /// the live feed with a commit-safe cursor is a separate reader.
    pub async fn read_from(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, LedgerError> {
        let mut conn = self.pool.acquire().await?;
        read_batch(&mut conn, after_seq, limit).await
    }
}

/// Events after `after_seq` in `seq` order, read on the caller's connection (and so in
/// its snapshot): replays run inside one REPEATABLE READ transaction.
pub(crate) async fn read_batch(
    conn: &mut PgConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<RecordedEvent>, LedgerError> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM scan_events WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(decode_row).collect()
}

/// Events that `table` (a scan_status-shaped projection) has not applied yet, among those
/// written by transactions from `min_tx_id` on, in `seq` order (which is version order
/// within a scan). Commit order does not matter: whatever committed late is still here.
pub(crate) async fn unapplied(
    conn: &mut PgConnection,
    table: &str,
    min_tx_id: i64,
    limit: i64,
) -> Result<Vec<RecordedEvent>, LedgerError> {
    let rows = sqlx::query(&format!(
        "SELECT e.seq, e.scan_id, e.version, e.kind, e.attempt, e.worker_id, e.payload, e.recorded_at,
                e.tx_id::text::bigint AS tx_id
           FROM scan_events e LEFT JOIN {table} p ON p.scan_id = e.scan_id
          WHERE e.tx_id >= $1::text::xid8 AND e.version > coalesce(p.version, 0)
          ORDER BY e.seq LIMIT $2"
    ))
    .bind(min_tx_id.to_string())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(decode_row).collect()
}

/// `Completed` events after `after_seq` in `seq` order, each with its scan's subscription
/// (from its `Requested`), read on the caller's connection (for replays).
pub(crate) async fn completions(
    conn: &mut PgConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(RecordedEvent, String)>, LedgerError> {
    let rows = sqlx::query(
        "SELECT e.seq, e.scan_id, e.version, e.kind, e.attempt, e.worker_id, e.payload, e.recorded_at,
                e.tx_id::text::bigint AS tx_id, r.payload ->> 'subscription_id' AS subscription_id
           FROM scan_events e JOIN scan_events r ON r.scan_id = e.scan_id AND r.kind = 'Requested'
          WHERE e.kind = 'Completed' AND e.seq > $1
          ORDER BY e.seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let sub: String = row.try_get("subscription_id")?;
            Ok((decode_row(row)?, sub))
        })
        .collect()
}

/// The stored findings of `scans`, by scan.
pub(crate) async fn findings_of(
    conn: &mut PgConnection,
    scans: &[Uuid],
) -> Result<HashMap<ScanId, Vec<Finding>>, LedgerError> {
    let rows: Vec<(Uuid, serde_json::Value)> = sqlx::query_as(
        "SELECT scan_id, to_jsonb(f) FROM findings f WHERE scan_id = ANY($1) ORDER BY finding_id",
    )
    .bind(scans)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<ScanId, Vec<Finding>> = HashMap::new();
    for (scan, v) in rows {
        let f: Finding = serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        out.entry(ScanId(scan)).or_default().push(f);
    }
    Ok(out)
}

/// The columns `decode_row` reads.
const EVENT_COLUMNS: &str =
    "seq, scan_id, version, kind, attempt, worker_id, payload, recorded_at, tx_id::text::bigint AS tx_id";

fn decode_row(row: sqlx::postgres::PgRow) -> Result<RecordedEvent, LedgerError> {
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

/// One transaction: lock rows, check versions, append what passes. The outer error is a
/// database failure; the inner `Err` names the constraint that refused the batch.
async fn try_append(
    conn: &mut PgConnection,
    events: &[NewEvent],
) -> Result<Result<Vec<Result<RecordedEvent, AppendError>>, String>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut ids: Vec<Uuid> = events
        .iter()
        .filter(|e| e.expected_version > 0)
        .map(|e| e.scan_id.0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let prev = scan_status::lock(&mut tx, &ids).await?;

    // Stale writers lose here, before touching the ledger.
    let mut current: HashMap<ScanId, Option<i32>> = HashMap::new();
    let mut accepted = Vec::new();
    let mut slots: Vec<Result<usize, AppendError>> = Vec::with_capacity(events.len());
    for e in events {
        let cur = *current
            .entry(e.scan_id)
            .or_insert_with(|| prev.get(&e.scan_id).map(|r| r.version));
        if cur.unwrap_or(0) == e.expected_version {
            current.insert(e.scan_id, Some(e.expected_version + 1));
            slots.push(Ok(accepted.len()));
            accepted.push(e.clone());
        } else {
            slots.push(Err(AppendError::Conflict {
                scan_id: e.scan_id,
                expected: e.expected_version,
                actual: cur,
            }));
        }
    }
    let recorded = match commit(&mut tx, accepted, prev).await {
        Ok(r) => r,
        Err(e) => {
            return match classify(e) {
                Refusal::Constraint(c) => Ok(Err(c)),
                Refusal::Other(e) => Err(e),
            }
        }
    };
    tx.commit().await?;
    let mut recorded: Vec<Option<RecordedEvent>> = recorded.into_iter().map(Some).collect();
    Ok(Ok(slots
        .into_iter()
        .map(|s| s.map(|i| recorded[i].take().expect("each event recorded once")))
        .collect()))
}

/// Rows per findings INSERT: bounded statements however large the tenant.
const FINDINGS_CHUNK: usize = 5_000;

/// Write the findings of the `Completed` events in this batch (after the events: the
/// database checks that each finding's Completed was appended by this transaction).
async fn insert_findings(
    tx: &mut PgConnection,
    recorded: &[RecordedEvent],
) -> Result<(), sqlx::Error> {
    /// One row as `jsonb_to_recordset` reads it, borrowing the finding: findings are
    /// serialized a bounded chunk at a time, never all at once.
    #[derive(serde::Serialize)]
    struct Row<'a> {
        scan_id: uuid::Uuid,
        attempt: i32,
        #[serde(flatten)]
        finding: &'a Finding,
        // Detected when its scan completed, unless it says otherwise (imports).
        #[serde(rename = "detected_at")]
        at: DateTime<Utc>,
    }
    // Rows of every Completed in the batch (references only), a bounded statement at a time.
    let rows: Vec<Row<'_>> = recorded
        .iter()
        .filter_map(|e| match &e.event {
            Event::Completed(c) => Some((e, c)),
            _ => None,
        })
        .flat_map(|(e, c)| {
            c.findings.iter().map(move |f| Row {
                scan_id: e.scan_id.0,
                attempt: e.attempt,
                finding: f,
                at: f.detected_at.unwrap_or(e.recorded_at),
            })
        })
        .collect();
    for chunk in rows.chunks(FINDINGS_CHUNK) {
        sqlx::query(
            "INSERT INTO findings (scan_id, attempt, fingerprint, rule_id, rule_name, severity, category,
                                   resource_id, resource_name, resource_type, description, remediation,
                                   frameworks, details, detected_at)
             SELECT scan_id, attempt, fingerprint, rule_id, rule_name, severity, category,
                    resource_id, resource_name, resource_type, description, remediation,
                    coalesce(frameworks, '{}'), coalesce(details, '{}'), detected_at
               FROM jsonb_to_recordset($1) AS f(scan_id uuid, attempt int, fingerprint text, rule_id text,
                    rule_name text, severity text, category text, resource_id text, resource_name text,
                    resource_type text, description text, remediation text, frameworks jsonb, details jsonb,
                    detected_at timestamptz)",
        )
        .bind(sqlx::types::Json(chunk))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Insert events (in order), fold them into `scan_status`, and notify workers once if a
/// scan became claimable. `prev` holds the locked rows of the scans appended to.
async fn commit(
    tx: &mut PgConnection,
    batch: Vec<NewEvent>,
    mut prev: HashMap<ScanId, ScanStatus>,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let n = batch.len();
    let mut scan_ids = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut workers = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    for e in &batch {
        scan_ids.push(e.scan_id.0);
        versions.push(e.expected_version + 1);
        kinds.push(e.event.kind().as_str());
        attempts.push(e.attempt);
        workers.push(e.worker_id.as_ref().map(|w| w.as_str().to_string()));
        payloads.push(e.event.payload());
    }
    // WITH ORDINALITY keeps the batch order, so seq follows it and the trigger sees
    // earlier events of the same scan (backfill appends whole streams at once).
    let rows = sqlx::query(
        "INSERT INTO scan_events (scan_id, version, kind, attempt, worker_id, payload)
         SELECT scan_id, version, kind, attempt, worker_id, payload
           FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::text[], $6::jsonb[])
                WITH ORDINALITY AS t(scan_id, version, kind, attempt, worker_id, payload, ord)
          ORDER BY ord
         RETURNING seq, scan_id, version, recorded_at, tx_id::text::bigint AS tx_id",
    )
    .bind(&scan_ids)
    .bind(&versions)
    .bind(&kinds)
    .bind(&attempts)
    .bind(&workers)
    .bind(&payloads)
    .fetch_all(&mut *tx)
    .await?;

    let mut stamps: HashMap<(Uuid, i32), (i64, DateTime<Utc>, i64)> = HashMap::with_capacity(n);
    for row in rows {
        stamps.insert(
            (row.try_get("scan_id")?, row.try_get("version")?),
            (
                row.try_get("seq")?,
                row.try_get("recorded_at")?,
                row.try_get("tx_id")?,
            ),
        );
    }
    let mut notify = false;
    let mut recorded = Vec::with_capacity(n);
    for e in batch {
        let version = e.expected_version + 1;
        let (seq, recorded_at, tx_id) = stamps
            .remove(&(e.scan_id.0, version))
            .ok_or_else(|| sqlx::Error::Protocol("insert returned no row for an event".into()))?;
        notify |= e.event.makes_claimable_now();
        recorded.push(RecordedEvent {
            seq,
            scan_id: e.scan_id,
            version,
            attempt: e.attempt,
            worker_id: e.worker_id,
            recorded_at,
            tx_id,
            event: e.event,
        });
    }
    recorded.sort_by_key(|e| e.seq);
    insert_findings(tx, &recorded).await?;

    // Inline projection: the same fold a rebuild uses.
    for e in &recorded {
        let row = scan_status::fold(prev.remove(&e.scan_id), e)
            .map_err(|err| sqlx::Error::Protocol(format!("scan_status fold: {err}")))?;
        prev.insert(e.scan_id, row);
    }
    let touched: Vec<&ScanStatus> = {
        let mut ids: Vec<ScanId> = recorded.iter().map(|e| e.scan_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.iter().filter_map(|id| prev.get(id)).collect()
    };
    scan_status::upsert(tx, &touched).await?;

    // Inline finding history: this batch's completions, in order, in one pass.
    let completions: Vec<finding_history::Completion<'_>> = recorded
        .iter()
        .filter_map(|e| {
            let Event::Completed(c) = &e.event else {
                return None;
            };
            let row = prev.get(&e.scan_id)?;
            Some(finding_history::Completion {
                subscription_id: &row.subscription_id,
                scan_id: e.scan_id,
                at: c.origin.as_ref().map_or(e.recorded_at, |o| o.occurred_at),
                seq: e.seq,
                findings: &c.findings,
            })
        })
        .collect();
    finding_history::apply(tx, finding_history::TABLE, &completions).await?;

    // At most one round trip, once per transaction: NOTIFY serializes commits on a global
    // lock. Claims and heartbeats notify no one (see CHANGES_CHANNEL).
    // Changes are announced only while a request waits for one of these scans (or for
    // any change): see `change_waiters`.
    let changed = changed_payload(&recorded);
    if notify || changed.is_some() {
        let ids: Vec<Uuid> = recorded.iter().map(|e| e.scan_id.0).collect();
        sqlx::query(
            "SELECT (SELECT pg_notify($1, '') WHERE $2),
                    (SELECT pg_notify($3, $4) WHERE $4 IS NOT NULL AND EXISTS (
                        SELECT 1 FROM change_waiters
                         WHERE (scan_id IS NULL OR scan_id = ANY($5)) AND expires_at > now()))",
        )
        .bind(PENDING_CHANNEL)
        .bind(notify)
        .bind(CHANGES_CHANNEL)
        .bind(changed)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    }
    Ok(recorded)
}
