//! The ledger's side of tamper evidence: checkpoints (a Merkle root over event hashes in
//! feed order, optionally Ed25519-signed), the full online verification, exports of
//! self-contained bundles, and single-scan proofs. The checks themselves live in
//! [`crate::domain::integrity`], so a bundle verifies the same way with no database.

use std::collections::HashMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::{Connection, PgConnection, PgPool, Row};
use uuid::Uuid;

use super::{Ledger, LedgerError};
use crate::domain::integrity::{
    self, canonical_time, hex, AuditCheckpoint, AuditEvent, AuditFinding, AuditGovernance, Broken,
    BundleLine, InclusionProof, Summary, Verifier, BUNDLE_FORMAT,
};
use crate::domain::merkle::{self, Hash};
use crate::domain::ScanId;

/// One checkpointer at a time across the fleet.
const CHECKPOINT_LOCK: i64 = 0x5ca1_1ed7;
/// Most events one checkpoint covers (bounds the memory of proofs and the transaction).
pub const CHECKPOINT_MAX_EVENTS: i64 = 65_536;

/// An Ed25519 key that signs checkpoints.
pub struct Signer {
    pair: ring::signature::Ed25519KeyPair,
    key_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the signing key {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the signing key {0} must hold 64 hex digits (an Ed25519 seed); make one with `scanledger audit keygen`")]
    Format(String),
}

impl Signer {
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .expect("any 32 bytes are an Ed25519 seed");
        let key_id = integrity::key_id(ring::signature::KeyPair::public_key(&pair).as_ref());
        Self { pair, key_id }
    }

    /// A key file: the seed as 64 hex digits.
    pub fn from_file(path: &std::path::Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let seed: [u8; 32] = integrity::unhex(text.trim())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| KeyError::Format(path.display().to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// A new random key's seed (hex), for `audit keygen`.
    pub fn generate_seed_hex() -> String {
        let rng = ring::rand::SystemRandom::new();
        let seed: [u8; 32] = ring::rand::generate(&rng)
            .expect("the system random source works")
            .expose();
        hex(&seed)
    }

    pub fn public_key(&self) -> Vec<u8> {
        ring::signature::KeyPair::public_key(&self.pair)
            .as_ref()
            .to_vec()
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

fn h32(v: Option<Vec<u8>>) -> Option<Hash> {
    v.and_then(|b| b.try_into().ok())
}

fn decode_event(row: &sqlx::postgres::PgRow) -> Result<AuditEvent, sqlx::Error> {
    let recorded_at: DateTime<Utc> = row.try_get("recorded_at")?;
    let scan_id: Uuid = row.try_get("scan_id")?;
    Ok(AuditEvent {
        seq: row.try_get("seq")?,
        tx_id: row.try_get("tx_id")?,
        scan_id: scan_id.to_string(),
        version: row.try_get("version")?,
        kind: row.try_get("kind")?,
        attempt: row.try_get("attempt")?,
        worker_id: row.try_get("worker_id")?,
        payload: row.try_get("payload")?,
        recorded_at: canonical_time(recorded_at),
        prev_hash: h32(row.try_get("prev_hash")?),
        findings_digest: h32(row.try_get("findings_digest")?),
        hash: h32(row.try_get("hash")?).unwrap_or([0; 32]),
    })
}

fn decode_governance(row: &sqlx::postgres::PgRow) -> Result<AuditGovernance, sqlx::Error> {
    let recorded_at: DateTime<Utc> = row.try_get("recorded_at")?;
    let stream_id: Uuid = row.try_get("stream_id")?;
    Ok(AuditGovernance {
        seq: row.try_get("seq")?,
        stream_id: stream_id.to_string(),
        version: row.try_get("version")?,
        kind: row.try_get("kind")?,
        actor: row.try_get("actor")?,
        payload: row.try_get("payload")?,
        recorded_at: canonical_time(recorded_at),
        prev_hash: h32(row.try_get("prev_hash")?),
        hash: h32(row.try_get("hash")?).unwrap_or([0; 32]),
    })
}

const AUDIT_EVENT_COLUMNS: &str =
    "seq, tx_id::text::bigint AS tx_id, scan_id, version, kind, attempt, worker_id,
     payload::text AS payload, recorded_at, prev_hash, findings_digest, hash";

fn decode_finding(row: &sqlx::postgres::PgRow) -> Result<AuditFinding, sqlx::Error> {
    let scan_id: Uuid = row.try_get("scan_id")?;
    let detected_at: DateTime<Utc> = row.try_get("detected_at")?;
    Ok(AuditFinding {
        scan_id: scan_id.to_string(),
        attempt: row.try_get("attempt")?,
        fingerprint: row.try_get("fingerprint")?,
        rule_id: row.try_get("rule_id")?,
        rule_name: row.try_get("rule_name")?,
        severity: row.try_get("severity")?,
        category: row.try_get("category")?,
        resource_id: row.try_get("resource_id")?,
        resource_name: row.try_get("resource_name")?,
        resource_type: row.try_get("resource_type")?,
        description: row.try_get("description")?,
        remediation: row.try_get("remediation")?,
        frameworks: row.try_get("frameworks")?,
        details: row.try_get("details")?,
        detected_at: canonical_time(detected_at),
    })
}

const AUDIT_FINDING_COLUMNS: &str = "scan_id, attempt, fingerprint, rule_id, rule_name, severity, category,
     resource_id, resource_name, resource_type, description, remediation, frameworks::text AS frameworks,
     details::text AS details, detected_at";

fn decode_checkpoint(row: &sqlx::postgres::PgRow) -> Result<AuditCheckpoint, sqlx::Error> {
    let created_at: DateTime<Utc> = row.try_get("created_at")?;
    let signature: Option<Vec<u8>> = row.try_get("signature")?;
    Ok(AuditCheckpoint {
        checkpoint_id: row.try_get("checkpoint_id")?,
        upto_tx_id: row.try_get("upto_tx_id")?,
        upto_seq: row.try_get("upto_seq")?,
        events: row.try_get("events")?,
        total_events: row.try_get("total_events")?,
        root: h32(row.try_get("root")?).unwrap_or([0; 32]),
        prev_root: h32(row.try_get("prev_root")?),
        created_at: canonical_time(created_at),
        key_id: row.try_get("key_id")?,
        signature: signature.map(|s| hex(&s)),
    })
}

async fn checkpoints(conn: &mut PgConnection) -> Result<Vec<AuditCheckpoint>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM ledger_checkpoints ORDER BY checkpoint_id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(decode_checkpoint).collect()
}

impl Ledger {
    /// Append a checkpoint over the events committed since the last one (below the same
    /// safe horizon as the feed), unless another checkpointer holds the lock or there is
    /// nothing new. Returns the checkpoint written.
    pub async fn checkpoint(
        &self,
        signer: Option<&Signer>,
    ) -> Result<Option<AuditCheckpoint>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(CHECKPOINT_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(None);
        }
        let last: Option<(i64, i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT upto_tx_id, upto_seq, total_events, root FROM ledger_checkpoints
              ORDER BY checkpoint_id DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let (after, total, prev_root) = match last {
            Some((t, s, total, root)) => ((t, s), total, h32(Some(root))),
            None => ((0, 0), 0, None),
        };
        let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT tx_id::text::bigint, seq, hash FROM scan_events
              WHERE (tx_id, seq) > ($1::text::xid8, $2)
                AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY tx_id, seq LIMIT $3",
        )
        .bind(after.0.to_string())
        .bind(after.1)
        .bind(CHECKPOINT_MAX_EVENTS)
        .fetch_all(&mut *tx)
        .await?;
        let Some(&(upto_tx, upto_seq, _)) = rows.last() else {
            return Ok(None);
        };
        let mut builder = merkle::RootBuilder::new();
        for (_, _, hash) in &rows {
            builder.push(merkle::leaf_hash(hash));
        }
        let root = builder.root();
        let events = rows.len() as i64;
        let total_events = total + events;
        let upto = (upto_tx, upto_seq);
        let (key_id, signature) = match signer {
            Some(s) => {
                let msg = AuditCheckpoint::signed_message(
                    upto,
                    events,
                    total_events,
                    &root,
                    prev_root.as_ref(),
                );
                (
                    Some(s.key_id().to_string()),
                    Some(s.pair.sign(&msg).as_ref().to_vec()),
                )
            }
            None => (None, None),
        };
        let row = sqlx::query(
            "INSERT INTO ledger_checkpoints (upto_tx_id, upto_seq, events, total_events, root, prev_root, key_id, signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        )
        .bind(upto_tx)
        .bind(upto_seq)
        .bind(events)
        .bind(total_events)
        .bind(root.to_vec())
        .bind(prev_root.map(|r| r.to_vec()))
        .bind(key_id)
        .bind(signature)
        .fetch_one(&mut *tx)
        .await?;
        let cp = decode_checkpoint(&row)?;
        tx.commit().await?;
        tracing::info!(
            checkpoint = cp.checkpoint_id,
            events,
            total_events,
            "ledger checkpoint"
        );
        Ok(Some(cp))
    }
}

/// Recompute every chain, findings digest, checkpoint root and signature in the
/// database. `trusted_keys`: public keys signatures must verify with.
pub async fn verify(
    conn: &mut PgConnection,
    trusted_keys: &[Vec<u8>],
    mut progress: impl FnMut(u64),
) -> Result<(Summary, Vec<Broken>), LedgerError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut v = Verifier::new(checkpoints(&mut tx).await?, true);
    for k in trusted_keys {
        v.trust_key(k.clone());
    }
    {
        let sql = format!("SELECT {AUDIT_EVENT_COLUMNS} FROM scan_events ORDER BY tx_id, seq");
        let mut rows = sqlx::query(&sql).fetch(&mut *tx);
        let mut n = 0u64;
        while let Some(row) = rows.try_next().await? {
            v.push_event(&decode_event(&row)?);
            n += 1;
            if n.is_multiple_of(100_000) {
                progress(n);
            }
        }
    }
    {
        let sql = format!(
            "SELECT {AUDIT_FINDING_COLUMNS} FROM findings ORDER BY scan_id, attempt, fingerprint COLLATE \"C\""
        );
        let mut rows = sqlx::query(&sql).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            v.push_finding(&decode_finding(&row)?);
        }
    }
    {
        let mut rows = sqlx::query(
            "SELECT seq, stream_id, version, kind, actor, payload::text AS payload, recorded_at,
                    prev_hash, hash
               FROM governance_events ORDER BY seq",
        )
        .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            v.push_governance(&decode_governance(&row)?);
        }
    }
    tx.rollback().await?;
    Ok(v.finish())
}

/// What an export covers.
#[derive(Clone, Debug)]
pub enum Scope {
    Scan(ScanId),
    Subscription(String),
    Since(DateTime<Utc>),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Scan(s) => write!(f, "scan {s}"),
            Self::Subscription(s) => write!(f, "subscription {s}"),
            Self::Since(t) => write!(f, "since {}", t.to_rfc3339()),
        }
    }
}

/// The lines of a bundle for `scope`: whole streams of the scans in scope, their
/// findings, every checkpoint, and an inclusion proof for each checkpointed event.
pub async fn bundle(
    pool: &PgPool,
    scope: &Scope,
    public_key: Option<Vec<u8>>,
) -> Result<Vec<BundleLine>, LedgerError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let scans: Vec<Uuid> = match scope {
        Scope::Scan(id) => vec![id.0],
        Scope::Subscription(sub) => sqlx::query_scalar(
            "SELECT scan_id FROM scan_events WHERE kind = 'Requested' AND payload ->> 'subscription_id' = $1",
        )
        .bind(sub)
        .fetch_all(&mut *tx)
        .await?,
        Scope::Since(t) => sqlx::query_scalar(
            "SELECT DISTINCT scan_id FROM scan_events WHERE recorded_at >= $1",
        )
        .bind(t)
        .fetch_all(&mut *tx)
        .await?,
    };
    let mut lines = vec![BundleLine::Header {
        format: BUNDLE_FORMAT.into(),
        created_at: canonical_time(Utc::now()),
        scope: scope.to_string(),
    }];
    if let Some(pk) = public_key {
        lines.push(BundleLine::PublicKey {
            key_id: integrity::key_id(&pk),
            public_key: hex(&pk),
        });
    }
    let cps = checkpoints(&mut tx).await?;
    let events: Vec<AuditEvent> = sqlx::query(&format!(
        "SELECT {AUDIT_EVENT_COLUMNS} FROM scan_events WHERE scan_id = ANY($1) ORDER BY scan_id, version"
    ))
    .bind(&scans)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(decode_event)
    .collect::<Result<_, _>>()?;
    let proofs = proofs_for(&mut tx, &cps, &events).await?;
    let findings: Vec<AuditFinding> = sqlx::query(&format!(
        "SELECT {AUDIT_FINDING_COLUMNS} FROM findings WHERE scan_id = ANY($1)
          ORDER BY scan_id, attempt, fingerprint COLLATE \"C\""
    ))
    .bind(&scans)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(decode_finding)
    .collect::<Result<_, _>>()?;
    tx.rollback().await?;
    lines.extend(cps.into_iter().map(BundleLine::Checkpoint));
    lines.extend(events.into_iter().map(BundleLine::Event));
    lines.extend(findings.into_iter().map(BundleLine::Finding));
    lines.extend(proofs.into_iter().map(BundleLine::Proof));
    Ok(lines)
}

/// Inclusion proofs of `events` in the checkpoints that cover them: each covering
/// checkpoint's leaves are read once, in feed order.
async fn proofs_for(
    tx: &mut PgConnection,
    cps: &[AuditCheckpoint],
    events: &[AuditEvent],
) -> Result<Vec<InclusionProof>, sqlx::Error> {
    let mut by_checkpoint: HashMap<usize, Vec<&AuditEvent>> = HashMap::new();
    for e in events {
        if let Some(i) = cps.iter().position(|c| e.feed_position() <= c.upto()) {
            by_checkpoint.entry(i).or_default().push(e);
        }
    }
    let mut out = Vec::new();
    let mut keys: Vec<usize> = by_checkpoint.keys().copied().collect();
    keys.sort_unstable();
    for i in keys {
        let cp = &cps[i];
        let after = i.checked_sub(1).map_or((0, 0), |j| cps[j].upto());
        let leaves: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, hash FROM scan_events
              WHERE (tx_id, seq) > ($1::text::xid8, $2) AND (tx_id, seq) <= ($3::text::xid8, $4)
              ORDER BY tx_id, seq",
        )
        .bind(after.0.to_string())
        .bind(after.1)
        .bind(cp.upto_tx_id.to_string())
        .bind(cp.upto_seq)
        .fetch_all(&mut *tx)
        .await?;
        let index: HashMap<i64, usize> = leaves
            .iter()
            .enumerate()
            .map(|(i, (seq, _))| (*seq, i))
            .collect();
        let hashes: Vec<Hash> = leaves.iter().map(|(_, h)| merkle::leaf_hash(h)).collect();
        for e in &by_checkpoint[&i] {
            let Some(&leaf) = index.get(&e.seq) else {
                continue;
            };
            out.push(InclusionProof {
                seq: e.seq,
                checkpoint_id: cp.checkpoint_id,
                leaf_index: leaf as u64,
                tree_size: hashes.len() as u64,
                path: merkle::inclusion_proof(&hashes, leaf)
                    .iter()
                    .map(|h| hex(h))
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// Write `lines` as JSON lines.
pub fn write_bundle(out: &mut impl Write, lines: &[BundleLine]) -> std::io::Result<()> {
    for l in lines {
        serde_json::to_writer(&mut *out, l)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
