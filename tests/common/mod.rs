//! Shared test support: a real PostgreSQL (one cluster per test binary, a fresh
//! database per test), scripted scan jobs, and condition waits instead of sleeps.
//!
//! Test binaries include this module whole (`mod common;`, or
//! `#[path = "../common/mod.rs"] mod common;` from a folder), so each uses only part
//! of it: unused helpers are not warnings here.
//!
//! - `app`: the HTTP API on a real socket with a reader, an operator and an admin token;
//! - `jobs`: scripted scan jobs, workers that run them, "script, request, wait until finished";
//! - `fake_arm`: a fake ARM + Resource Graph + Entra token server over TLS;
//! - `sse`: a reader of `text/event-stream` responses, frame by frame;
//! - `ops`: a `scanledger` process with its metrics listener and its log;
//! - `proxy`: a path to the test database that a test can cut (a network partition);
//! - `webdriver`: chromedriver and a small WebDriver client, for the console's browser tests.
#![allow(dead_code)]

mod app;
mod fake_arm;
mod jobs;
mod ops;
mod proxy;
mod sse;
mod webdriver;

// A binary that uses nothing of a module would see its re-export as an unused import.
#[allow(unused_imports)]
pub use {app::*, fake_arm::*, jobs::*, ops::*, proxy::*, sse::*, webdriver::*};

use std::future::Future;
use std::time::Duration;

use scanledger::domain::{Requested, ScanId, SubscriptionId};
use scanledger::ledger::{Ledger, NewScan};
use scanledger::projection::scan_status;
use scanledger::testing::{TestCluster, TestDatabase};
use sqlx::PgPool;

pub struct TestEnv {
    pub db: TestDatabase,
    pub pool: PgPool,
    pub ledger: Ledger,
}

pub async fn env() -> TestEnv {
    let _ = tracing_subscriber_init();
    let cluster = TestCluster::shared(&test_root(), false);
    let db = cluster.fresh_database().await.expect("fresh test database");
    let pool = db.database.pool(40).await.expect("runtime pool");
    TestEnv {
        ledger: Ledger::new(pool.clone()),
        pool,
        db,
    }
}

/// Test clusters live under the system temp folder: the `postgres` account that runs
/// them (when tests run as root) may not be able to reach a checkout under /root.
pub fn test_root() -> std::path::PathBuf {
    std::env::temp_dir().join("scanledger-tests")
}

fn tracing_subscriber_init() -> Option<()> {
    if std::env::var_os("TEST_LOG").is_some() {
        scanledger::telemetry::init();
    }
    Some(())
}

pub const SUB: &str = "6f1c1a9e-5d7b-4c2e-9a41-0d3e5f7a9b10";

pub fn requested(max_attempts: i32) -> Requested {
    Requested {
        origin: None,
        subscription_id: SubscriptionId::parse(SUB).unwrap(),
        rules: vec![],
        priority: 0,
        max_attempts,
        requested_by: Some("test".into()),
        estate: None,
    }
}

/// Request `n` scans in batches; returns their ids.
pub async fn request_scans(ledger: &Ledger, n: usize, max_attempts: i32) -> Vec<ScanId> {
    let mut ids = Vec::with_capacity(n);
    let all: Vec<NewScan> = (0..n)
        .map(|_| NewScan {
            scan_id: ScanId::new(),
            request: requested(max_attempts),
        })
        .collect();
    for chunk in all.chunks(500) {
        ids.extend(chunk.iter().map(|s| s.scan_id));
        ledger.request(chunk.to_vec()).await.expect("request scans");
    }
    ids
}

/// Await a condition, checking every 20 ms, failing after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

pub async fn status_of(ledger: &Ledger, id: ScanId) -> scan_status::ScanStatus {
    scan_status::get(ledger.pool(), id)
        .await
        .unwrap()
        .expect("scan row")
}

/// `scan_status` must equal the fold of the ledger, row for row.
pub async fn assert_projection_matches_ledger(env: &TestEnv) {
    // Verify folds into a temporary table: an owner's operation.
    let mut conn = env
        .db
        .owner
        .owner_connection()
        .await
        .expect("an owner connection");
    let report = scanledger::ledger::replay::verify(&mut conn, "scan_status", &mut |_, _, _| {})
        .await
        .expect("verify");
    assert!(
        report.differences.is_empty(),
        "scan_status differs from the fold of the ledger: {:#?}",
        report.differences
    );
}

/// The ledger-level invariants, checked over the whole table.
pub async fn assert_ledger_invariants(pool: &PgPool) {
    let double_claims = count(
        pool,
        "SELECT count(*) FROM (SELECT 1 FROM scan_events WHERE kind = 'Claimed'
           GROUP BY scan_id, attempt HAVING count(*) > 1) x",
    )
    .await;
    assert_eq!(double_claims, 0, "an attempt was claimed twice");
    let double_outcomes = count(
        pool,
        "SELECT count(*) FROM (SELECT 1 FROM scan_events WHERE kind IN ('Completed','Failed','TimedOut')
           GROUP BY scan_id, attempt HAVING count(*) > 1) x",
    )
    .await;
    assert_eq!(double_outcomes, 0, "an attempt has two outcomes");
    let gaps = count(
        pool,
        "SELECT count(*) FROM (SELECT scan_id FROM scan_events GROUP BY scan_id
           HAVING max(version) <> count(*) OR min(version) <> 1) x",
    )
    .await;
    assert_eq!(gaps, 0, "a stream has a version gap");
}

pub async fn count_status(pool: &PgPool, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM scan_status WHERE status = $1")
        .bind(status)
        .fetch_one(pool)
        .await
        .unwrap()
}
