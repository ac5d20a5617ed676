//! Tamper evidence an auditor can check without trusting us: the canonical encoding the
//! database hashes (in `migrations/0004_integrity.sql`), the records an audit reads or a
//! bundle carries, and the [`Verifier`] that recomputes every chain, findings digest,
//! checkpoint root, signature and inclusion proof from those records alone.
//!
//! The same encoding is written twice, once in SQL (the trigger computes it on insert, so
//! no writer can skip or forge it) and once here (so checking needs no database); the
//! tests in `tests/audit.rs` prove the two agree on every kind of event.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::merkle::{self, Hash};

/// Append one field of the canonical encoding: `S<octet length>:<text>\n`, or `N\n`.
fn field(buf: &mut Vec<u8>, v: Option<&str>) {
    match v {
        None => buf.extend_from_slice(b"N\n"),
        Some(t) => {
            buf.push(b'S');
            buf.extend_from_slice(t.len().to_string().as_bytes());
            buf.push(b':');
            buf.extend_from_slice(t.as_bytes());
            buf.push(b'\n');
        }
    }
}

fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// Timestamps as the database encodes them: UTC, microseconds.
pub fn canonical_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub fn hex(h: &[u8]) -> String {
    use std::fmt::Write;
    h.iter()
        .fold(String::with_capacity(h.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn unhex32(s: &str) -> Option<Hash> {
    unhex(s)?.try_into().ok()
}

/// Hex on the wire, 32 bytes in memory.
mod hex32 {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        super::unhex32(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }

    pub mod option {
        use super::Hash;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(h: &Option<Hash>, s: S) -> Result<S::Ok, S::Error> {
            match h {
                Some(h) => s.serialize_str(&super::super::hex(h)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Hash>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::super::unhex32(&s)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits")),
            }
        }
    }
}

/// One stored event with the exact texts its hash covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub tx_id: i64,
    pub scan_id: String,
    pub version: i32,
    pub kind: String,
    pub attempt: i32,
    pub worker_id: Option<String>,
    /// PostgreSQL's canonical `jsonb` text of the payload (the bytes hashed).
    pub payload: String,
    /// [`canonical_time`] of `recorded_at`.
    pub recorded_at: String,
    #[serde(with = "hex32::option")]
    pub prev_hash: Option<Hash>,
    #[serde(with = "hex32::option")]
    pub findings_digest: Option<Hash>,
    #[serde(with = "hex32")]
    pub hash: Hash,
}

impl AuditEvent {
    /// The hash the database must have computed for these facts.
    pub fn expected_hash(&self) -> Hash {
        let mut buf = Vec::with_capacity(256 + self.payload.len());
        let prev = self.prev_hash.map(|h| hex(&h));
        let digest = self.findings_digest.map(|h| hex(&h));
        field(&mut buf, Some("scanledger-event-v1"));
        field(&mut buf, Some(&self.scan_id));
        field(&mut buf, Some(&self.version.to_string()));
        field(&mut buf, Some(&self.kind));
        field(&mut buf, Some(&self.attempt.to_string()));
        field(&mut buf, self.worker_id.as_deref());
        field(&mut buf, Some(&self.payload));
        field(&mut buf, Some(&self.recorded_at));
        field(&mut buf, prev.as_deref());
        field(&mut buf, digest.as_deref());
        sha256(&buf)
    }

    /// Position in the feed (the order checkpoints commit to).
    pub fn feed_position(&self) -> (i64, i64) {
        (self.tx_id, self.seq)
    }
}

/// One stored governance event (a mute or schedule change) with the exact texts its
/// hash covers. All governance events form one chain in `seq` order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditGovernance {
    pub seq: i64,
    pub stream_id: String,
    pub version: i32,
    pub kind: String,
    pub actor: String,
    /// PostgreSQL's canonical `jsonb` text of the payload.
    pub payload: String,
    pub recorded_at: String,
    #[serde(with = "hex32::option")]
    pub prev_hash: Option<Hash>,
    #[serde(with = "hex32")]
    pub hash: Hash,
}

impl AuditGovernance {
    /// The hash the database must have computed for these facts.
    pub fn expected_hash(&self) -> Hash {
        let mut buf = Vec::with_capacity(256 + self.payload.len());
        let prev = self.prev_hash.map(|h| hex(&h));
        field(&mut buf, Some("scanledger-governance-v1"));
        field(&mut buf, Some(&self.stream_id));
        field(&mut buf, Some(&self.version.to_string()));
        field(&mut buf, Some(&self.kind));
        field(&mut buf, Some(&self.actor));
        field(&mut buf, Some(&self.payload));
        field(&mut buf, Some(&self.recorded_at));
        field(&mut buf, prev.as_deref());
        sha256(&buf)
    }
}

/// One stored finding with the exact texts its hash covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditFinding {
    pub scan_id: String,
    pub attempt: i32,
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_name: String,
    pub severity: String,
    pub category: String,
    pub resource_id: String,
    pub resource_name: String,
    pub resource_type: String,
    pub description: String,
    pub remediation: String,
    /// Canonical `jsonb` text.
    pub frameworks: String,
    /// Canonical `jsonb` text.
    pub details: String,
    pub detected_at: String,
}

impl AuditFinding {
    pub fn hash(&self) -> Hash {
        let mut buf = Vec::with_capacity(512);
        for v in [
            "scanledger-finding-v1",
            &self.fingerprint,
            &self.rule_id,
            &self.rule_name,
            &self.severity,
            &self.category,
            &self.resource_id,
            &self.resource_name,
            &self.resource_type,
            &self.description,
            &self.remediation,
            &self.frameworks,
            &self.details,
            &self.detected_at,
        ] {
            field(&mut buf, Some(v));
        }
        sha256(&buf)
    }
}

/// The digest a `Completed` commits to: SHA-256 over its findings' hashes in fingerprint
/// (byte) order. Feed findings in that order.
#[derive(Default)]
pub struct FindingsDigest {
    hasher: Sha256,
}

impl FindingsDigest {
    pub fn push(&mut self, finding_hash: &Hash) {
        self.hasher.update(finding_hash);
    }

    pub fn finish(self) -> Hash {
        self.hasher.finalize().into()
    }
}

/// A checkpoint: a Merkle root over the hashes of the events in feed order after the
/// previous checkpoint, up to and including `upto`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    pub checkpoint_id: i64,
    pub upto_tx_id: i64,
    pub upto_seq: i64,
    pub events: i64,
    pub total_events: i64,
    #[serde(with = "hex32")]
    pub root: Hash,
    #[serde(with = "hex32::option")]
    pub prev_root: Option<Hash>,
    pub created_at: String,
    pub key_id: Option<String>,
    /// Ed25519 over [`AuditCheckpoint::signed_message`], hex.
    pub signature: Option<String>,
}

impl AuditCheckpoint {
    /// What a checkpoint's signature covers (its id is assigned later, by the database).
    pub fn signed_message(
        upto: (i64, i64),
        events: i64,
        total_events: i64,
        root: &Hash,
        prev_root: Option<&Hash>,
    ) -> Vec<u8> {
        let mut buf = Vec::with_capacity(256);
        let prev = prev_root.map(|h| hex(h));
        field(&mut buf, Some("scanledger-checkpoint-v1"));
        field(&mut buf, Some(&upto.0.to_string()));
        field(&mut buf, Some(&upto.1.to_string()));
        field(&mut buf, Some(&events.to_string()));
        field(&mut buf, Some(&total_events.to_string()));
        field(&mut buf, Some(&hex(root)));
        field(&mut buf, prev.as_deref());
        buf
    }

    pub fn upto(&self) -> (i64, i64) {
        (self.upto_tx_id, self.upto_seq)
    }
}

/// An event's place in a checkpoint's tree, and the path to its root (RFC 9162 §2.1.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub seq: i64,
    pub checkpoint_id: i64,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub path: Vec<String>,
}

/// One line of an audit bundle (JSON lines).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BundleLine {
    Header {
        format: String,
        created_at: String,
        scope: String,
    },
    PublicKey {
        key_id: String,
        public_key: String,
    },
    Checkpoint(AuditCheckpoint),
    Event(AuditEvent),
    Finding(AuditFinding),
    Proof(InclusionProof),
}

pub const BUNDLE_FORMAT: &str = "scanledger-audit-bundle-v1";

/// The id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(public_key: &[u8]) -> String {
    hex(&sha256(public_key))[..16].to_string()
}

/// Ed25519 signature check with the public key `public_key`.
pub fn signature_holds(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// The first place where the history does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("scan {scan_id} version {version}: event hash does not match its contents (expected {expected}, found {found})")]
    EventHash {
        scan_id: String,
        version: i32,
        expected: String,
        found: String,
    },
    #[error("scan {scan_id} version {version}: prev_hash does not chain to version {prev_version} (expected {expected}, found {found})")]
    Chain {
        scan_id: String,
        version: i32,
        prev_version: i32,
        expected: String,
        found: String,
    },
    #[error(
        "scan {scan_id}: version {found} follows version {after} (missing or reordered events)"
    )]
    VersionGap {
        scan_id: String,
        after: i32,
        found: i32,
    },
    #[error("scan {scan_id} attempt {attempt}: findings digest does not match the findings (expected {expected}, found {found})")]
    FindingsDigest {
        scan_id: String,
        attempt: i32,
        expected: String,
        found: String,
    },
    #[error("scan {scan_id} attempt {attempt}: findings without a Completed event")]
    OrphanFindings { scan_id: String, attempt: i32 },
    #[error("checkpoint {checkpoint_id}: Merkle root does not match the events it covers (expected {expected}, found {found}; {events} events, checkpoint says {declared})")]
    CheckpointRoot {
        checkpoint_id: i64,
        expected: String,
        found: String,
        events: i64,
        declared: i64,
    },
    #[error("checkpoint {checkpoint_id}: does not chain to the previous checkpoint ({reason})")]
    CheckpointChain { checkpoint_id: i64, reason: String },
    #[error("checkpoint {checkpoint_id}: signature does not verify with key {key_id}")]
    Signature { checkpoint_id: i64, key_id: String },
    #[error("scan {scan_id} version {version}: not included in checkpoint {checkpoint_id} (proof fails)")]
    Inclusion {
        scan_id: String,
        version: i32,
        checkpoint_id: i64,
    },
    #[error("governance event {seq}: hash does not match its contents (expected {expected}, found {found})")]
    GovernanceHash {
        seq: i64,
        expected: String,
        found: String,
    },
    #[error("governance event {seq}: prev_hash does not chain to the governance event before it (expected {expected}, found {found})")]
    GovernanceChain {
        seq: i64,
        expected: String,
        found: String,
    },
    #[error("bundle line {line}: {reason}")]
    Bundle { line: usize, reason: String },
}

/// What a verification covered.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub events: u64,
    pub scans: u64,
    pub findings: u64,
    pub checkpoints: u64,
    pub signed_checkpoints: u64,
    pub proofs: u64,
    /// Events not under a checkpoint's Merkle root (online: after the last checkpoint;
    /// in a bundle: without an inclusion proof): chained, but not anchored.
    pub events_after_last_checkpoint: u64,
    /// Mute and schedule changes checked (one chain in `seq` order).
    pub governance_events: u64,
    /// The newest governance hash: record it, and a later verify proves nothing before
    /// it was removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub governance_head: Option<String>,
}

/// Compact chain entry kept between passes.
struct Link {
    scan: String,
    version: i32,
    prev: Option<Hash>,
    hash: Hash,
}

/// Recomputes everything from records. Events may arrive in any order for the chains;
/// for checkpoint roots (`full` mode) they must arrive in feed order.
pub struct Verifier {
    /// Recompute checkpoint roots from the events (the whole ledger is present).
    full: bool,
    public_keys: HashMap<String, Vec<u8>>,
    checkpoints: Vec<AuditCheckpoint>,
    next_checkpoint: usize,
    builder: merkle::RootBuilder,
    links: Vec<Link>,
    completed: HashMap<(String, i32), Hash>,
    digests: BTreeMap<(String, i32), FindingsDigest>,
    leaves_by_seq: HashMap<i64, (String, i32, Hash)>,
    proofs: Vec<InclusionProof>,
    broken: Vec<Broken>,
    governance_head: Option<Hash>,
    pub summary: Summary,
}

impl Verifier {
    /// `checkpoints` in id order; `full`: every event of the ledger will be pushed, in feed order.
    pub fn new(checkpoints: Vec<AuditCheckpoint>, full: bool) -> Self {
        Self {
            full,
            public_keys: HashMap::new(),
            checkpoints,
            next_checkpoint: 0,
            builder: merkle::RootBuilder::new(),
            links: Vec::new(),
            completed: HashMap::new(),
            digests: BTreeMap::new(),
            leaves_by_seq: HashMap::new(),
            proofs: Vec::new(),
            broken: Vec::new(),
            governance_head: None,
            summary: Summary::default(),
        }
    }

    pub fn trust_key(&mut self, public_key: Vec<u8>) {
        self.public_keys.insert(key_id(&public_key), public_key);
    }

    fn fail(&mut self, b: Broken) {
        self.broken.push(b);
    }

    /// Close checkpoints whose range ends before `pos` (full mode).
    fn close_checkpoints_before(&mut self, pos: Option<(i64, i64)>) {
        while let Some(cp) = self.checkpoints.get(self.next_checkpoint) {
            if pos.is_some_and(|p| p <= cp.upto()) {
                return;
            }
            let builder = std::mem::take(&mut self.builder);
            let (events, root) = (builder.len() as i64, builder.root());
            if root != cp.root || events != cp.events {
                let b = Broken::CheckpointRoot {
                    checkpoint_id: cp.checkpoint_id,
                    expected: hex(&root),
                    found: hex(&cp.root),
                    events,
                    declared: cp.events,
                };
                self.fail(b);
            }
            self.next_checkpoint += 1;
        }
    }

    /// One event (in feed order when `full`).
    pub fn push_event(&mut self, e: &AuditEvent) {
        self.summary.events += 1;
        let expected = e.expected_hash();
        if expected != e.hash {
            self.fail(Broken::EventHash {
                scan_id: e.scan_id.clone(),
                version: e.version,
                expected: hex(&expected),
                found: hex(&e.hash),
            });
        }
        if self.full {
            self.close_checkpoints_before(Some(e.feed_position()));
            if self.next_checkpoint < self.checkpoints.len() {
                self.builder.push(merkle::leaf_hash(&e.hash));
            } else {
                self.summary.events_after_last_checkpoint += 1;
            }
        } else {
            self.leaves_by_seq
                .insert(e.seq, (e.scan_id.clone(), e.version, e.hash));
        }
        if e.kind == "Completed" {
            self.completed.insert(
                (e.scan_id.clone(), e.attempt),
                e.findings_digest.unwrap_or([0; 32]),
            );
        }
        self.links.push(Link {
            scan: e.scan_id.clone(),
            version: e.version,
            prev: e.prev_hash,
            hash: e.hash,
        });
    }

    /// One finding; each (scan, attempt) group in fingerprint byte order.
    pub fn push_finding(&mut self, f: &AuditFinding) {
        self.summary.findings += 1;
        self.digests
            .entry((f.scan_id.clone(), f.attempt))
            .or_default()
            .push(&f.hash());
    }

    /// One governance event, in `seq` order: its hash and its link to the one before.
    pub fn push_governance(&mut self, g: &AuditGovernance) {
        self.summary.governance_events += 1;
        let expected = g.expected_hash();
        if expected != g.hash {
            self.fail(Broken::GovernanceHash {
                seq: g.seq,
                expected: hex(&expected),
                found: hex(&g.hash),
            });
        }
        if g.prev_hash != self.governance_head {
            let b = Broken::GovernanceChain {
                seq: g.seq,
                expected: self.governance_head.map_or("none".into(), |h| hex(&h)),
                found: g.prev_hash.map_or("none".into(), |h| hex(&h)),
            };
            self.fail(b);
        }
        self.governance_head = Some(g.hash);
        self.summary.governance_head = Some(hex(&g.hash));
    }

    pub fn push_proof(&mut self, p: InclusionProof) {
        self.proofs.push(p);
    }

    /// Finish: every check, and the broken places (empty when all holds).
    pub fn finish(mut self) -> (Summary, Vec<Broken>) {
        if self.full {
            self.close_checkpoints_before(None);
        }
        self.check_checkpoint_chain();
        self.check_chains();
        self.check_digests();
        self.check_proofs();
        (self.summary, self.broken)
    }

    fn check_checkpoint_chain(&mut self) {
        let mut prev: Option<&AuditCheckpoint> = None;
        let mut broken = Vec::new();
        for cp in &self.checkpoints {
            self.summary.checkpoints += 1;
            let reason = match prev {
                None if cp.prev_root.is_some() && cp.checkpoint_id == 1 => {
                    Some("the first checkpoint names a previous root".to_string())
                }
                Some(p) if cp.prev_root != Some(p.root) => Some(format!(
                    "prev_root {} is not checkpoint {}'s root {}",
                    cp.prev_root.map_or("null".into(), |h| hex(&h)),
                    p.checkpoint_id,
                    hex(&p.root)
                )),
                Some(p) if cp.total_events != p.total_events + cp.events => Some(format!(
                    "total_events {} is not {} + {}",
                    cp.total_events, p.total_events, cp.events
                )),
                Some(p) if cp.upto() <= p.upto() => {
                    Some("its position is not after the previous one".to_string())
                }
                _ => None,
            };
            if let Some(reason) = reason {
                broken.push(Broken::CheckpointChain {
                    checkpoint_id: cp.checkpoint_id,
                    reason,
                });
            }
            if let (Some(key_id), Some(sig)) = (&cp.key_id, &cp.signature) {
                self.summary.signed_checkpoints += 1;
                let msg = AuditCheckpoint::signed_message(
                    cp.upto(),
                    cp.events,
                    cp.total_events,
                    &cp.root,
                    cp.prev_root.as_ref(),
                );
                let holds = match (self.public_keys.get(key_id), unhex(sig)) {
                    (Some(pk), Some(sig)) => signature_holds(pk, &msg, &sig),
                    // No trusted key to check with: reported, never assumed.
                    _ => false,
                };
                if !holds {
                    broken.push(Broken::Signature {
                        checkpoint_id: cp.checkpoint_id,
                        key_id: key_id.clone(),
                    });
                }
            }
            prev = Some(cp);
        }
        self.broken.extend(broken);
    }

    fn check_chains(&mut self) {
        self.links
            .sort_unstable_by(|a, b| (&a.scan, a.version).cmp(&(&b.scan, b.version)));
        let mut broken = Vec::new();
        let mut scans = 0;
        for (i, l) in self.links.iter().enumerate() {
            let prev = i
                .checked_sub(1)
                .map(|j| &self.links[j])
                .filter(|p| p.scan == l.scan);
            match prev {
                None => {
                    scans += 1;
                    // A bundle may start a stream later only if it says where (never here:
                    // exports carry whole streams).
                    if l.version != 1 {
                        broken.push(Broken::VersionGap {
                            scan_id: l.scan.clone(),
                            after: 0,
                            found: l.version,
                        });
                    } else if l.prev.is_some() {
                        broken.push(Broken::Chain {
                            scan_id: l.scan.clone(),
                            version: 1,
                            prev_version: 0,
                            expected: "null".into(),
                            found: l.prev.map(|h| hex(&h)).unwrap_or_default(),
                        });
                    }
                }
                Some(p) => {
                    if l.version != p.version + 1 {
                        broken.push(Broken::VersionGap {
                            scan_id: l.scan.clone(),
                            after: p.version,
                            found: l.version,
                        });
                    } else if l.prev != Some(p.hash) {
                        broken.push(Broken::Chain {
                            scan_id: l.scan.clone(),
                            version: l.version,
                            prev_version: p.version,
                            expected: hex(&p.hash),
                            found: l.prev.map_or("null".into(), |h| hex(&h)),
                        });
                    }
                }
            }
        }
        self.summary.scans = scans;
        self.broken.extend(broken);
    }

    fn check_digests(&mut self) {
        let digests = std::mem::take(&mut self.digests);
        let mut seen = std::collections::HashSet::new();
        for ((scan, attempt), d) in digests {
            let found = d.finish();
            seen.insert((scan.clone(), attempt));
            match self.completed.get(&(scan.clone(), attempt)) {
                None => self.broken.push(Broken::OrphanFindings {
                    scan_id: scan,
                    attempt,
                }),
                Some(expected) if *expected != found => self.broken.push(Broken::FindingsDigest {
                    scan_id: scan,
                    attempt,
                    expected: hex(expected),
                    found: hex(&found),
                }),
                Some(_) => {}
            }
        }
        // A Completed whose findings are all gone: its digest is not the empty digest.
        let empty = FindingsDigest::default().finish();
        let mut missing: Vec<_> = self
            .completed
            .iter()
            .filter(|(k, d)| !seen.contains(*k) && **d != empty)
            .map(|((s, a), d)| (s.clone(), *a, *d))
            .collect();
        missing.sort();
        for (scan, attempt, expected) in missing {
            self.broken.push(Broken::FindingsDigest {
                scan_id: scan,
                attempt,
                expected: hex(&expected),
                found: hex(&empty),
            });
        }
    }

    fn check_proofs(&mut self) {
        // Offline, an event without a proof is anchored by its chain only (a forger who
        // rewrites whole streams can recompute chains, never a checkpoint): count them.
        if !self.full {
            let proven: std::collections::HashSet<i64> =
                self.proofs.iter().map(|p| p.seq).collect();
            self.summary.events_after_last_checkpoint = self
                .leaves_by_seq
                .keys()
                .filter(|seq| !proven.contains(seq))
                .count() as u64;
        }
        let roots: HashMap<i64, (Hash, i64)> = self
            .checkpoints
            .iter()
            .map(|c| (c.checkpoint_id, (c.root, c.events)))
            .collect();
        for p in std::mem::take(&mut self.proofs) {
            self.summary.proofs += 1;
            let Some((scan, version, hash)) = self.leaves_by_seq.get(&p.seq).cloned() else {
                continue;
            };
            let path: Option<Vec<Hash>> = p.path.iter().map(|h| unhex32(h)).collect();
            let holds = match (roots.get(&p.checkpoint_id), path) {
                (Some((root, events)), Some(path)) => {
                    p.tree_size == *events as u64
                        && merkle::verify_inclusion(
                            &merkle::leaf_hash(&hash),
                            p.leaf_index,
                            p.tree_size,
                            &path,
                            root,
                        )
                }
                _ => false,
            };
            if !holds {
                self.broken.push(Broken::Inclusion {
                    scan_id: scan,
                    version,
                    checkpoint_id: p.checkpoint_id,
                });
            }
        }
    }
}

/// Verify a bundle (JSON lines) offline. `trusted_keys`: public keys to check
/// signatures with (the bundle's own key is used only when none is given, and the report
/// says which key it was).
pub fn verify_bundle(
    text: &str,
    trusted_keys: &[Vec<u8>],
) -> Result<(Summary, Vec<Broken>), Broken> {
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: BundleLine = serde_json::from_str(line).map_err(|e| Broken::Bundle {
            line: i + 1,
            reason: e.to_string(),
        })?;
        lines.push(l);
    }
    match lines.first() {
        Some(BundleLine::Header { format, .. }) if format == BUNDLE_FORMAT => {}
        _ => {
            return Err(Broken::Bundle {
                line: 1,
                reason: format!("not a {BUNDLE_FORMAT} bundle (no header)"),
            })
        }
    }
    let checkpoints: Vec<AuditCheckpoint> = lines
        .iter()
        .filter_map(|l| match l {
            BundleLine::Checkpoint(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    let mut v = Verifier::new(checkpoints, false);
    for k in trusted_keys {
        v.trust_key(k.clone());
    }
    if trusted_keys.is_empty() {
        for l in &lines {
            if let BundleLine::PublicKey { public_key, .. } = l {
                if let Some(k) = unhex(public_key) {
                    v.trust_key(k);
                }
            }
        }
    }
    let mut findings: Vec<&AuditFinding> = Vec::new();
    for l in &lines {
        match l {
            BundleLine::Event(e) => v.push_event(e),
            BundleLine::Finding(f) => findings.push(f),
            BundleLine::Proof(p) => v.push_proof(p.clone()),
            _ => {}
        }
    }
    findings.sort_by(|a, b| {
        (&a.scan_id, a.attempt, a.fingerprint.as_bytes()).cmp(&(
            &b.scan_id,
            b.attempt,
            b.fingerprint.as_bytes(),
        ))
    });
    for f in findings {
        v.push_finding(f);
    }
    Ok(v.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_length_prefixed_and_null_is_distinct_from_empty() {
        let mut a = Vec::new();
        field(&mut a, None);
        let mut b = Vec::new();
        field(&mut b, Some(""));
        assert_eq!(a, b"N\n");
        assert_eq!(b, b"S0:\n");
        let mut c = Vec::new();
        field(&mut c, Some("héllo"));
        assert_eq!(c, "S6:héllo\n".as_bytes());
    }

    #[test]
    fn times_are_utc_with_microseconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-29T23:01:02.5+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(canonical_time(t), "2026-11-29T22:01:02.500000Z");
    }
}
