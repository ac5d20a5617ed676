//! Governance facts (`governance_events`): the one place that writes and reads mutes and
//! schedules. The current state is a pure fold ([`Governance::fold`]) of every stream,
//! read whole: governance changes are rare (hundreds, not millions).

use chrono::{DateTime, Utc};
use sqlx::{Connection, Row};
use uuid::Uuid;

use crate::domain::governance::{
    Governance, GovernanceDecodeError, GovernanceEvent, RecordedGovernance,
};

use super::Ledger;

#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    /// Another writer changed the stream first, or the stream does not exist.
    #[error("governance stream {stream_id}: expected version {expected}")]
    Conflict { stream_id: Uuid, expected: i32 },
    /// The database refused the event (lifecycle or payload check).
    #[error("governance stream {stream_id}: the ledger rejected the event ({constraint})")]
    Rejected { stream_id: Uuid, constraint: String },
    #[error("stored governance event {seq} cannot be read: {source}")]
    Decode {
        seq: i64,
        #[source]
        source: GovernanceDecodeError,
    },
    #[error("ledger database error: {0}")]
    Db(#[from] sqlx::Error),
}

fn decode(row: &sqlx::postgres::PgRow) -> Result<RecordedGovernance, GovernanceError> {
    let seq: i64 = row.try_get("seq")?;
    let kind: String = row.try_get("kind")?;
    let payload: serde_json::Value = row.try_get("payload")?;
    Ok(RecordedGovernance {
        seq,
        stream_id: row.try_get("stream_id")?,
        version: row.try_get("version")?,
        actor: row.try_get("actor")?,
        recorded_at: row.try_get("recorded_at")?,
        event: GovernanceEvent::decode(&kind, payload)
            .map_err(|source| GovernanceError::Decode { seq, source })?,
    })
}

impl Ledger {
    /// Append one governance event to `stream_id`, whose current version the writer
    /// believes is `expected_version` (0 for a new stream).
    pub async fn append_governance(
        &self,
        stream_id: Uuid,
        expected_version: i32,
        actor: &str,
        event: GovernanceEvent,
    ) -> Result<RecordedGovernance, GovernanceError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query(
            "INSERT INTO governance_events (stream_id, version, kind, actor, payload)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING seq, stream_id, version, kind, actor, payload, recorded_at",
        )
        .bind(stream_id)
        .bind(expected_version + 1)
        .bind(event.kind().as_str())
        .bind(actor)
        .bind(event.payload())
        .fetch_one(&mut *tx)
        .await;
        let row = match row {
            Ok(row) => row,
            Err(sqlx::Error::Database(db)) => {
                let constraint = db.constraint().unwrap_or_default().to_string();
                return Err(match db.code().as_deref() {
                    Some("23505") => GovernanceError::Conflict {
                        stream_id,
                        expected: expected_version,
                    },
                    Some("23514") => GovernanceError::Rejected {
                        stream_id,
                        constraint,
                    },
                    _ => GovernanceError::Db(sqlx::Error::Database(db)),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let recorded = decode(&row)?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// Every governance event, in `seq` order.
    pub async fn governance_events(&self) -> Result<Vec<RecordedGovernance>, GovernanceError> {
        let rows = sqlx::query(
            "SELECT seq, stream_id, version, kind, actor, payload, recorded_at
               FROM governance_events ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Mutes and schedules as of now, with the database clock's reading of now.
    pub async fn governance(&self) -> Result<(Governance, DateTime<Utc>), GovernanceError> {
        let events = self.governance_events().await?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.pool)
            .await?;
        Ok((Governance::fold(&events), now))
    }
}
