//! The one write path. Every append runs in one transaction that (1) locks the affected
//! `scan_status` rows in scan id order, (2) checks the expected stream versions, (3)
//! inserts the events — the database re-checks every lifecycle invariant in its trigger
//! and unique indexes — and the findings of any `Completed`, (4) folds them into the
//! inline projections, and (5) sends at most one NOTIFY.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use super::{findings, notify, AppendError, Idempotent, Ledger, NewEvent, NewScan};
use crate::domain::*;
use crate::projection::{self, scan_status, ScanStatus};

/// What the database said about a failed batch insert.
pub(super) enum Refusal {
    Constraint(String),
    /// A value the database cannot store (SQLSTATE class 22, e.g. a NUL character in
    /// text): the SQLSTATE.
    Data(String),
    Other(sqlx::Error),
}

pub(super) fn classify(err: sqlx::Error) -> Refusal {
    if let sqlx::Error::Database(db) = &err {
        let code = db.code().unwrap_or_default();
        // 23xxx: integrity violations, raised by indexes, checks or the lifecycle trigger.
        if code.starts_with("23") {
            let constraint = db.constraint().unwrap_or("scan_events").to_string();
            return Refusal::Constraint(constraint);
        }
        if code.starts_with("22") {
            return Refusal::Data(code.to_string());
        }
    }
    Refusal::Other(err)
}

impl Ledger {
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
        match insert_and_fold(&mut tx, batch, HashMap::new()).await {
            Ok(recorded) => {
                tx.commit().await?;
                self.waker.wake();
                Ok(recorded)
            }
            Err(e) => match classify(e) {
                Refusal::Constraint(constraint) => Err(AppendError::Rejected {
                    scan_id: None,
                    constraint,
                }),
                Refusal::Data(code) => Err(AppendError::Unstorable {
                    scan_id: None,
                    sqlstate: code,
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
        let mut recorded = insert_and_fold(&mut tx, batch, HashMap::new()).await?;
        tx.commit().await?;
        self.waker.wake();
        Ok(Idempotent::Created(recorded.pop().expect("one event")))
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
        let recorded = insert_and_fold(&mut tx, batch, HashMap::new())
            .await
            .map_err(|e| match classify(e) {
                Refusal::Constraint(constraint) => AppendError::Rejected {
                    scan_id: None,
                    constraint,
                },
                Refusal::Data(code) => AppendError::Unstorable {
                    scan_id: None,
                    sqlstate: code,
                },
                Refusal::Other(e) => e.into(),
            })?;
        tx.commit().await?;
        if recorded.iter().any(|e| e.event.makes_claimable_now()) {
            self.waker.wake();
        }
        Ok(recorded)
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
        match append_batch(&mut conn, &events).await? {
            BatchOutcome::Appended(results) => Ok(results),
            // The database refused something in the batch: isolate it by appending one by one.
            BatchOutcome::Refused(refusal) if events.len() > 1 => {
                tracing::debug!(?refusal, "batch refused; appending one by one");
                let mut results = Vec::with_capacity(events.len());
                for e in events {
                    let r = match append_batch(&mut conn, std::slice::from_ref(&e)).await? {
                        BatchOutcome::Appended(mut r) => r.pop().expect("one result"),
                        BatchOutcome::Refused(r) => Err(r.into_error(e.scan_id)),
                    };
                    results.push(r);
                }
                Ok(results)
            }
            BatchOutcome::Refused(r) => Ok(vec![Err(r.into_error(events[0].scan_id))]),
        }
    }
}

/// Lock and read the rows of the scans about to be appended to. Locks are taken in
/// scan id order so that concurrent batches cannot deadlock.
async fn lock_rows(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<ScanId, ScanStatus>, sqlx::Error> {
    scan_status::read_rows(tx, scan_status::TABLE, ids, "ORDER BY scan_id FOR UPDATE").await
}

/// What became of a batch appended in one transaction.
enum BatchOutcome {
    /// Committed: one result per event (a stale expected version fails alone).
    Appended(Vec<Result<RecordedEvent, AppendError>>),
    /// The database refused the batch (nothing committed).
    Refused(Refused),
}

/// Why the database refused a batch.
#[derive(Debug)]
enum Refused {
    /// An invariant, by the constraint's name.
    Constraint(String),
    /// A value it cannot store, by SQLSTATE.
    Data(String),
}

impl Refused {
    fn into_error(self, scan_id: ScanId) -> AppendError {
        match self {
            Self::Constraint(constraint) => AppendError::Rejected {
                scan_id: Some(scan_id),
                constraint,
            },
            Self::Data(sqlstate) => AppendError::Unstorable {
                scan_id: Some(scan_id),
                sqlstate,
            },
        }
    }
}

/// One transaction: lock rows, check versions, append what passes.
async fn append_batch(
    conn: &mut PgConnection,
    events: &[NewEvent],
) -> Result<BatchOutcome, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut ids: Vec<Uuid> = events
        .iter()
        .filter(|e| e.expected_version > 0)
        .map(|e| e.scan_id.0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let prev = lock_rows(&mut tx, &ids).await?;

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
    let recorded = match insert_and_fold(&mut tx, accepted, prev).await {
        Ok(r) => r,
        Err(e) => {
            return match classify(e) {
                Refusal::Constraint(c) => Ok(BatchOutcome::Refused(Refused::Constraint(c))),
                Refusal::Data(code) => Ok(BatchOutcome::Refused(Refused::Data(code))),
                Refusal::Other(e) => Err(e),
            }
        }
    };
    tx.commit().await?;
    let mut recorded: Vec<Option<RecordedEvent>> = recorded.into_iter().map(Some).collect();
    Ok(BatchOutcome::Appended(
        slots
            .into_iter()
            .map(|s| s.map(|i| recorded[i].take().expect("each event recorded once")))
            .collect(),
    ))
}

/// Inside the caller's transaction (which commits it): insert events (in order) and the
/// findings of any `Completed`, fold them into the inline projections, and announce
/// them. `prev` holds the locked `scan_status` rows of the scans appended to.
pub(super) async fn insert_and_fold(
    tx: &mut PgConnection,
    batch: Vec<NewEvent>,
    prev: HashMap<ScanId, ScanStatus>,
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
    // Findings first: the database seals them into their Completed's hash.
    findings::insert(tx, &batch).await?;
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
    let mut recorded = Vec::with_capacity(n);
    for e in batch {
        let version = e.expected_version + 1;
        let (seq, recorded_at, tx_id) = stamps
            .remove(&(e.scan_id.0, version))
            .ok_or_else(|| sqlx::Error::Protocol("insert returned no row for an event".into()))?;
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

    // Inline projections: the same folds a rebuild uses.
    projection::apply_inline(tx, &recorded, prev).await?;
    notify::announce(tx, &recorded).await?;
    Ok(recorded)
}
