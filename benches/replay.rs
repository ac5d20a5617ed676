//! Backfill and rebuild speed against a real, durable local PostgreSQL. Prints figures;
//! asserts nothing.
//!
//!     cargo bench --bench replay                    # 333,334 legacy scans → 1,000,002 events
//!     cargo bench --bench replay -- --scans 50000
//!
//! 1. Generates an OpenShield database (`scans`, one finding per third completed scan).
//! 2. Backfills it (rows/s).
//! 3. Rebuilds `scan_status` and `finding_history` from the ledger (events/s), and
//!    verifies `scan_status`.
//!
//! Method and recorded figures: docs/performance.md.

use std::time::Instant;

use scanledger::backfill::{openshield, BackfillOptions};
use scanledger::ledger::replay as rebuild;
use scanledger::ledger::Ledger;
use scanledger::pg::quote_ident;
use scanledger::testing::TestCluster;
use sqlx::Connection;

const LEGACY_SCHEMA: &str = include_str!("../tests/fixtures/openshield-schema.sql");

fn arg(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn quiet(_: u64, _: u64, _: f64) {}

#[tokio::main]
async fn main() {
    let scans = arg("--scans").unwrap_or(333_334) as i64;
    let cluster = TestCluster::shared(&std::env::temp_dir().join("scanledger-bench"), true);
    let db = cluster.fresh_database().await.unwrap();

    // 1. The legacy database, generated in SQL: 95 % completed, 5 % failed, 200 subscriptions.
    let legacy = format!("openshield_{}", uuid::Uuid::new_v4().simple());
    let mut admin =
        sqlx::PgConnection::connect_with(&cluster.cluster().connect_options("postgres"))
            .await
            .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {}", quote_ident(&legacy)))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut src = sqlx::PgConnection::connect_with(&cluster.cluster().connect_options(&legacy))
        .await
        .unwrap();
    sqlx::raw_sql(LEGACY_SCHEMA)
        .execute(&mut src)
        .await
        .unwrap();
    let t = Instant::now();
    sqlx::query(
        "INSERT INTO scans (scan_id, subscription_id, started_at, claimed_at, completed_at, total_findings, score, status, attempt_count)
         SELECT gen_random_uuid(),
                (ARRAY(SELECT gen_random_uuid()::text FROM generate_series(1, 200)))[1 + i % 200],
                timestamptz '2023-01-01' + make_interval(mins => i::int), timestamptz '2023-01-01' + make_interval(mins => i::int, secs => 5),
                timestamptz '2023-01-01' + make_interval(mins => i::int, secs => 300), 0, 80,
                CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'completed' END, 1
           FROM generate_series(1, $1) i",
    )
    .bind(scans)
    .execute(&mut src)
    .await
    .unwrap();
    sqlx::raw_sql(
        "INSERT INTO findings (scan_id, rule_id, rule_name, severity, category, resource_id, resource_name, resource_type,
                               description, remediation, frameworks, metadata, detected_at)
         SELECT scan_id, 'storage-https-only', 'Storage accounts require HTTPS', 'high', 'storage',
                '/subscriptions/' || subscription_id || '/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st' || (row_number() OVER ()),
                'st', 'Microsoft.Storage/storageAccounts', 'd', 'r', '{\"cis_azure\": [\"3.1\"]}', '{}', completed_at
           FROM (SELECT * FROM scans WHERE status = 'completed' ORDER BY scan_id) s
          WHERE get_byte(uuid_send(scan_id), 0) % 3 = 0",
    )
    .execute(&mut src)
    .await
    .unwrap();
    let findings: i64 = sqlx::query_scalar("SELECT count(*) FROM findings")
        .fetch_one(&mut src)
        .await
        .unwrap();
    println!(
        "generated {scans} OpenShield scans and {findings} findings in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    // 2. Backfill.
    let ledger = Ledger::new(db.database.pool(4).await.unwrap());
    let opts = BackfillOptions {
        non_terminal: None,
        dry_run: false,
        batch: 1_000,
        max_attempts: 3,
    };
    let t = Instant::now();
    let report = openshield::import(&mut src, &ledger, &opts, &mut quiet)
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "backfill    {} scans ({} findings) → {} events in {secs:.1}s: {:.0} scans/s, {:.0} events/s",
        report.scans_read,
        report.findings,
        report.events_appended,
        report.scans_read as f64 / secs,
        report.events_appended as f64 / secs
    );

    // 3. Rebuilds and a verify.
    let mut owner = db.owner.owner_connection().await.unwrap();
    for name in ["scan_status", "finding_history"] {
        let r = rebuild::rebuild(&db.owner, name, &mut quiet).await.unwrap();
        println!(
            "rebuild     {name}: {} events in {:.1}s: {:.0} events/s (swap {:.0} ms)",
            r.events_replayed + r.events_caught_up,
            r.seconds,
            (r.events_replayed + r.events_caught_up) as f64 / r.seconds,
            r.swap_ms
        );
    }
    let t = Instant::now();
    let v = rebuild::verify(&mut owner, "scan_status", &mut quiet)
        .await
        .unwrap();
    println!(
        "verify      scan_status: {} events, {} rows, {} differences in {:.1}s",
        v.events,
        v.rows,
        v.differences.len(),
        t.elapsed().as_secs_f64()
    );
}
