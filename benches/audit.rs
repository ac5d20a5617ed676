//! The cost of tamper evidence against a real, durable local PostgreSQL. Prints figures;
//! asserts nothing.
//!
//!     cargo bench --bench audit                       # 200,000 appended events per run, 1,000,000 verified
//!     cargo bench --bench audit -- --append-events 60000 --events 200000
//!     cargo bench --bench audit -- --skip-append      # only verify and the proof
//!
//! 1. Hashing on the append path: Requested → Claimed → Completed (one finding per third
//!    scan) through `Ledger::request` / `claim` / `append_many`, on two pipelines, into
//!    fresh databases of one cluster: as migrated, and with `scanledger_event_hash` and
//!    `scanledger_finding_hash` replaced by constants. Runs alternate (with, without,
//!    without, with).
//! 2. `audit verify` over `--events` events after checkpointing them all, and where its
//!    time goes: the database read and decode alone, the hashes alone, the verifier alone.
//! 3. A one-scan export (bundle) from that ledger: size, lines, proof path, time.
//!
//! Method and recorded figures: docs/performance.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use scanledger::domain::integrity::{
    canonical_time, AuditCheckpoint, AuditEvent, AuditFinding, BundleLine, Verifier,
};
use scanledger::domain::{
    Completed, Details, Event, Finding, Requested, ScanId, ScanSummary, Severity, SubscriptionId,
    WorkerId,
};
use scanledger::ledger::audit::{self, Scope};
use scanledger::ledger::{Claim, Ledger, NewEvent, NewScan};
use scanledger::testing::{TestCluster, TestDatabase};
use sqlx::{Connection, Row};
use uuid::Uuid;

fn arg(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn rate(n: u64, secs: f64) -> f64 {
    n as f64 / secs
}

fn new_scans(n: usize) -> Vec<NewScan> {
    (0..n)
        .map(|_| NewScan {
            scan_id: ScanId::new(),
            request: Requested {
                origin: None,
                subscription_id: SubscriptionId::parse(&Uuid::new_v4().to_string()).unwrap(),
                rules: vec![],
                priority: 0,
                max_attempts: 3,
                requested_by: Some("bench".into()),
                estate: None,
            },
        })
        .collect()
}

fn finding(scan: &ScanId) -> Finding {
    let resource_id = format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st{}",
        scan.0.simple()
    );
    Finding {
        fingerprint: Finding::fingerprint("storage-https-only", &resource_id, ""),
        rule: Arc::new(scanledger::domain::FindingRule {
            id: "storage-https-only".into(),
            name: "Storage accounts require HTTPS".into(),
            severity: Severity::High,
            category: "storage".into(),
            description: "Secure transfer is disabled".into(),
            remediation: "Enable secure transfer".into(),
            frameworks: Arc::new(serde_json::json!({"cis_azure": ["3.1"]})),
        }),
        resource_id: resource_id.into(),
        resource_name: "st".into(),
        resource_type: "Microsoft.Storage/storageAccounts".into(),
        details: Details::from(serde_json::json!({"supportsHttpsTrafficOnly": false})),
        detected_at: None,
    }
}

/// `Completed` for a claim; one finding for every third scan (by its first id byte).
fn completed(c: &Claim, worker: &WorkerId) -> NewEvent {
    let findings = if c.scan_id.0.as_bytes()[0].is_multiple_of(3) {
        vec![finding(&c.scan_id)]
    } else {
        vec![]
    };
    NewEvent {
        scan_id: c.scan_id,
        expected_version: c.version,
        attempt: c.attempt,
        worker_id: Some(worker.clone()),
        event: Event::Completed(Completed {
            summary: ScanSummary {
                resources_seen: 1,
                findings: findings.len() as u64,
                ..ScanSummary::default()
            },
            findings: findings.into(),
            origin: None,
        }),
    }
}

/// Claim up to `limit` queued scans and complete them, outcomes in batches of
/// `append_batch` (the worker's appender batches up to 256). Returns events appended.
async fn claim_and_complete(
    ledger: &Ledger,
    worker: &WorkerId,
    limit: usize,
    append_batch: usize,
) -> u64 {
    let claims = ledger
        .claim(worker, limit, Duration::from_secs(600), false)
        .await
        .unwrap();
    let mut n = claims.len() as u64;
    for chunk in claims.chunks(append_batch) {
        let results = ledger
            .append_many(chunk.iter().map(|c| completed(c, worker)).collect())
            .await
            .unwrap();
        for r in results {
            r.unwrap();
            n += 1;
        }
    }
    n
}

/// `scans` scans through Requested → Claimed → Completed on `lanes` concurrent
/// pipelines, `batch` scans per round. Returns (events, seconds).
async fn drive(db: &TestDatabase, scans: usize, batch: usize, lanes: usize) -> (u64, f64) {
    let start = Instant::now();
    let mut handles = Vec::new();
    for lane in 0..lanes {
        let ledger = Ledger::new(db.database.pool(2).await.unwrap());
        let quota = scans / lanes + usize::from(lane < scans % lanes);
        handles.push(tokio::spawn(async move {
            let worker = WorkerId::new(format!("bench-{lane}"));
            let mut left = quota;
            let mut events = 0u64;
            while left > 0 {
                let n = left.min(batch);
                events += ledger.request(new_scans(n)).await.unwrap().len() as u64;
                events += claim_and_complete(&ledger, &worker, n, 256).await;
                left -= n;
            }
            events
        }));
    }
    let mut events = 0;
    for h in handles {
        events += h.await.unwrap();
    }
    // Scans one lane requested while another claimed them are all done; any left over:
    let ledger = Ledger::new(db.database.pool(1).await.unwrap());
    let worker = WorkerId::new("bench-drain");
    loop {
        let n = claim_and_complete(&ledger, &worker, batch, 256).await;
        if n == 0 {
            break;
        }
        events += n;
    }
    (events, start.elapsed().as_secs_f64())
}

/// Replace the hash functions by constants of the same signature (owner only).
async fn disable_hashing(db: &TestDatabase) {
    let mut owner = db.owner.owner_connection().await.unwrap();
    sqlx::raw_sql(
        "CREATE OR REPLACE FUNCTION scanledger_event_hash(
             scan_id uuid, version integer, kind text, attempt integer, worker_id text, payload jsonb,
             recorded_at timestamptz, prev_hash bytea, findings_digest bytea) RETURNS bytea
             LANGUAGE sql IMMUTABLE PARALLEL SAFE
             RETURN '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
         CREATE OR REPLACE FUNCTION scanledger_finding_hash(f findings) RETURNS bytea
             LANGUAGE sql IMMUTABLE PARALLEL SAFE
             RETURN '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    owner.close().await.unwrap();
}

async fn append_cost(cluster: &TestCluster, events: usize, batch: usize, lanes: usize) {
    let scans = events.div_ceil(3);
    println!(
        "append      {scans} scans x (Requested, Claimed, Completed), 1 finding per 3rd scan, \
         {lanes} pipelines, {batch} scans per request/claim, outcomes in batches of 256"
    );
    let mut with = Vec::new();
    let mut without = Vec::new();
    for hashed in [true, false, false, true] {
        let db = cluster.fresh_database().await.unwrap();
        if !hashed {
            disable_hashing(&db).await;
        }
        let (n, secs) = drive(&db, scans, batch, lanes).await;
        let r = rate(n, secs);
        println!(
            "append      {:<16} {n} events in {secs:>6.2}s: {r:>7.0} events/s",
            if hashed {
                "with hashing"
            } else {
                "without hashing"
            }
        );
        if hashed {
            with.push(r);
        } else {
            without.push(r);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (w, wo) = (mean(&with), mean(&without));
    println!(
        "append      mean with hashing {w:.0} events/s, without {wo:.0} events/s: \
         hashing costs {:.1} % of throughput",
        (1.0 - w / wo) * 100.0
    );
}

/// `events` events through the ledger: `events / 10` scans requested, claimed and
/// completed, the rest only requested. Returns (events, seconds).
async fn generate(db: &TestDatabase, events: usize) -> (u64, f64) {
    let completed = events / 10;
    let requested_only = events - 3 * completed;
    let scans = requested_only + completed;
    let start = Instant::now();
    // Requests first (in batches of 5,000, two connections), then claims and outcomes.
    let batch = 5_000;
    let mut handles = Vec::new();
    for lane in 0..2 {
        let ledger = Ledger::new(db.database.pool(1).await.unwrap());
        let quota = scans / 2 + usize::from(lane < scans % 2);
        handles.push(tokio::spawn(async move {
            let mut left = quota;
            let mut n = 0u64;
            while left > 0 {
                let b = left.min(batch);
                n += ledger.request(new_scans(b)).await.unwrap().len() as u64;
                left -= b;
            }
            n
        }));
    }
    let mut n = 0;
    for h in handles {
        n += h.await.unwrap();
    }
    let ledger = Ledger::new(db.database.pool(1).await.unwrap());
    let worker = WorkerId::new("bench");
    let mut left = completed;
    while left > 0 {
        let b = left.min(batch);
        let done = claim_and_complete(&ledger, &worker, b, 1_000).await;
        assert!(done > 0, "nothing left to claim");
        n += done;
        left -= (done / 2) as usize;
    }
    (n, start.elapsed().as_secs_f64())
}

const EVENT_COLUMNS: &str =
    "seq, tx_id::text::bigint AS tx_id, scan_id, version, kind, attempt, worker_id,
     payload::text AS payload, recorded_at, prev_hash, findings_digest, hash";

fn h32(v: Option<Vec<u8>>) -> Option<[u8; 32]> {
    v.and_then(|b| b.try_into().ok())
}

/// The same decoding as `audit::verify`.
fn decode_event(row: &sqlx::postgres::PgRow) -> AuditEvent {
    let recorded_at: DateTime<Utc> = row.get("recorded_at");
    let scan_id: Uuid = row.get("scan_id");
    AuditEvent {
        seq: row.get("seq"),
        tx_id: row.get("tx_id"),
        scan_id: scan_id.to_string(),
        version: row.get("version"),
        kind: row.get("kind"),
        attempt: row.get("attempt"),
        worker_id: row.get("worker_id"),
        payload: row.get("payload"),
        recorded_at: canonical_time(recorded_at),
        prev_hash: h32(row.get("prev_hash")),
        findings_digest: h32(row.get("findings_digest")),
        hash: h32(row.get("hash")).unwrap_or([0; 32]),
    }
}

fn decode_finding(row: &sqlx::postgres::PgRow) -> AuditFinding {
    let scan_id: Uuid = row.get("scan_id");
    let detected_at: DateTime<Utc> = row.get("detected_at");
    AuditFinding {
        scan_id: scan_id.to_string(),
        attempt: row.get("attempt"),
        fingerprint: row.get("fingerprint"),
        rule_id: row.get("rule_id"),
        rule_name: row.get("rule_name"),
        severity: row.get("severity"),
        category: row.get("category"),
        resource_id: row.get("resource_id"),
        resource_name: row.get("resource_name"),
        resource_type: row.get("resource_type"),
        description: row.get("description"),
        remediation: row.get("remediation"),
        frameworks: row.get("frameworks"),
        details: row.get("details"),
        detected_at: canonical_time(detected_at),
    }
}

/// Where `audit verify`'s time goes: the read alone (rows streamed, not decoded), the
/// read with the verifier's decoding, the hashes alone, and the verifier alone.
async fn profile_verify(db: &TestDatabase, checkpoints: &[AuditCheckpoint]) {
    let mut conn = db.owner.owner_connection().await.unwrap();
    let sql = format!("SELECT {EVENT_COLUMNS} FROM scan_events ORDER BY tx_id, seq");

    let t = Instant::now();
    let mut rows = sqlx::query(&sql).fetch(&mut conn);
    let mut n = 0u64;
    while rows.try_next().await.unwrap().is_some() {
        n += 1;
    }
    drop(rows);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  profile   read only (same query, rows not decoded): {n} rows in {secs:.2}s: {:.0} rows/s",
        rate(n, secs)
    );

    let t = Instant::now();
    let mut events = Vec::with_capacity(n as usize);
    let mut rows = sqlx::query(&sql).fetch(&mut conn);
    while let Some(row) = rows.try_next().await.unwrap() {
        events.push(decode_event(&row));
    }
    drop(rows);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  profile   read + decode into AuditEvent: {} events in {secs:.2}s: {:.0} events/s",
        events.len(),
        rate(events.len() as u64, secs)
    );

    let t = Instant::now();
    let findings: Vec<AuditFinding> = sqlx::query(
        "SELECT scan_id, attempt, fingerprint, rule_id, rule_name, severity, category,
                resource_id, resource_name, resource_type, description, remediation,
                frameworks::text AS frameworks, details::text AS details, detected_at
           FROM findings ORDER BY scan_id, attempt, fingerprint COLLATE \"C\"",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(decode_finding)
    .collect();
    println!(
        "  profile   read + decode findings: {} in {:.2}s",
        findings.len(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut x = 0u8;
    for e in &events {
        x ^= e.expected_hash()[0];
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  profile   event hashes alone (canonical encoding + SHA-256, one core): {secs:.2}s: {:.0} events/s [{x}]",
        rate(events.len() as u64, secs)
    );

    let t = Instant::now();
    let mut v = Verifier::new(checkpoints.to_vec(), true);
    for e in &events {
        v.push_event(e);
    }
    let pushed = t.elapsed().as_secs_f64();
    for f in &findings {
        v.push_finding(f);
    }
    let (summary, broken) = v.finish();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  profile   verifier alone (in memory): {secs:.2}s ({pushed:.2}s pushing events, {:.2}s findings + finish): \
         {:.0} events/s, {} broken",
        secs - pushed,
        rate(summary.events, secs),
        broken.len()
    );
    conn.close().await.unwrap();
}

async fn verify_and_proof(cluster: &TestCluster, events: usize) {
    let db = cluster.fresh_database().await.unwrap();
    let (n, secs) = generate(&db, events).await;
    println!(
        "generate    {n} events ({} completed scans with Claimed + Completed, one finding per 3rd) \
         through the ledger in {secs:.1}s: {:.0} events/s",
        events / 10,
        rate(n, secs)
    );

    let ledger = Ledger::new(db.database.pool(1).await.unwrap());
    let t = Instant::now();
    let mut checkpoints = Vec::new();
    while let Some(cp) = ledger.checkpoint(None).await.unwrap() {
        checkpoints.push(cp);
    }
    println!(
        "checkpoint  {} checkpoint(s) over {} events in {:.2}s",
        checkpoints.len(),
        checkpoints.last().map_or(0, |c| c.total_events),
        t.elapsed().as_secs_f64()
    );
    let mut owner = db.owner.owner_connection().await.unwrap();
    let (table, indexes): (i64, i64) =
        sqlx::query_as("SELECT pg_table_size('scan_events'), pg_indexes_size('scan_events')")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    println!(
        "            scan_events: {} MiB table, {} MiB indexes",
        table >> 20,
        indexes >> 20
    );

    for run in 1..=2 {
        let t = Instant::now();
        let (summary, broken) = audit::verify(&mut owner, &[], |_| {}).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "verify      run {run}: {} events, {} scans, {} findings, {} checkpoints ({} events after the last) \
             in {secs:.2}s: {:.0} events/s, {} broken",
            summary.events,
            summary.scans,
            summary.findings,
            summary.checkpoints,
            summary.events_after_last_checkpoint,
            rate(summary.events, secs),
            broken.len()
        );
    }
    profile_verify(&db, &checkpoints).await;

    // 3. One scan's export: a completed scan with a finding, from the middle of the feed.
    let scan: Uuid = sqlx::query_scalar(
        "SELECT scan_id FROM scan_events WHERE kind = 'Completed'
            AND scan_id IN (SELECT scan_id FROM findings)
          ORDER BY seq OFFSET (SELECT count(*) / 2 FROM findings) LIMIT 1",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    let pool = db.database.pool(1).await.unwrap();
    for run in 1..=2 {
        let t = Instant::now();
        let lines = audit::bundle(&pool, &Scope::Scan(ScanId(scan)), None)
            .await
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let mut bytes = Vec::new();
        audit::write_bundle(&mut bytes, &lines).unwrap();
        let proofs: Vec<_> = lines
            .iter()
            .filter_map(|l| match l {
                BundleLine::Proof(p) => Some(p),
                _ => None,
            })
            .collect();
        let count = |f: fn(&BundleLine) -> bool| lines.iter().filter(|l| f(l)).count();
        let t2 = Instant::now();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let offline = scanledger::domain::integrity::verify_bundle(&text, &[]);
        let offline_ms = t2.elapsed().as_secs_f64() * 1000.0;
        println!(
            "bundle      run {run}: scan {scan}: {} bytes, {} lines ({} checkpoint, {} events, {} findings, {} proofs), \
             proof path lengths {:?} (tree size {:?}), built in {:.0} ms; offline verify {:.2} ms ({})",
            bytes.len(),
            lines.len(),
            count(|l| matches!(l, BundleLine::Checkpoint(_))),
            count(|l| matches!(l, BundleLine::Event(_))),
            count(|l| matches!(l, BundleLine::Finding(_))),
            proofs.len(),
            proofs.iter().map(|p| p.path.len()).collect::<Vec<_>>(),
            proofs.first().map(|p| p.tree_size),
            secs * 1000.0,
            offline_ms,
            match &offline {
                Ok((_, broken)) if broken.is_empty() => "holds".to_string(),
                Ok((_, broken)) => format!("{} broken", broken.len()),
                Err(e) => format!("refused: {e:?}"),
            }
        );
        if run == 1 {
            let path = std::env::temp_dir().join("scanledger-bench-bundle.jsonl");
            std::fs::write(&path, &bytes).unwrap();
            println!("            written to {}", path.display());
        }
    }
    owner.close().await.unwrap();
}

#[tokio::main]
async fn main() {
    let append_events = arg("--append-events").unwrap_or(200_000);
    let batch = arg("--batch").unwrap_or(1_000);
    let events = arg("--events").unwrap_or(1_000_000);
    let cluster = TestCluster::shared(&std::env::temp_dir().join("scanledger-bench"), true);
    println!(
        "scanledger audit benchmark: {} cores, durable PostgreSQL (fsync on, synchronous_commit on, shared_buffers 256MB)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if !flag("--skip-append") {
        append_cost(cluster, append_events, batch, 2).await;
    }
    if !flag("--skip-verify") {
        verify_and_proof(cluster, events).await;
    }
}
