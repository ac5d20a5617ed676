//! Shared test support: a real PostgreSQL (one cluster per test binary, a fresh
//! database per test), scripted scan jobs, and condition waits instead of sleeps.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use scanledger::domain::{FailureCode, Requested, ScanId, ScanSummary, SubscriptionId};
use scanledger::ledger::{Ledger, NewScan};
use scanledger::projection::scan_status;
use scanledger::testing::{TestCluster, TestDatabase};
use scanledger::worker::{ProgressReporter, ScanError, ScanJob, ScanReport, ScanTarget};
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

/// What a scripted job does on one attempt.
#[derive(Clone, Debug)]
pub enum Behaviour {
    Succeed,
    /// Succeeds with these findings.
    Find(Vec<scanledger::domain::Finding>),
    Fail(FailureCode),
    /// Never finishes (until aborted).
    Hang,
    Panic,
    /// Finishes after the given time.
    Slow(Duration),
    /// Blocks its thread (and so a current-thread runtime, heartbeats included) for
    /// the given time, then succeeds: a stalled process.
    Freeze(Duration),
}

/// A job whose behaviour per scan is scripted attempt by attempt; unscripted scans use
/// the default behaviour.
#[derive(Clone)]
pub struct ScriptedJob {
    default: Behaviour,
    script: Arc<Mutex<HashMap<ScanId, VecDeque<Behaviour>>>>,
}

impl ScriptedJob {
    pub fn new(default: Behaviour) -> Self {
        Self {
            default,
            script: Arc::default(),
        }
    }

    pub fn script(&self, id: ScanId, steps: impl IntoIterator<Item = Behaviour>) {
        self.script
            .lock()
            .unwrap()
            .insert(id, steps.into_iter().collect());
    }
}

impl ScanJob for ScriptedJob {
    fn run(
        &self,
        target: ScanTarget,
        progress: ProgressReporter,
    ) -> BoxFuture<'static, Result<ScanReport, ScanError>> {
        let step = self
            .script
            .lock()
            .unwrap()
            .get_mut(&target.scan_id)
            .and_then(|q| q.pop_front())
            .unwrap_or_else(|| self.default.clone());
        Box::pin(async move {
            progress.resources_seen(1);
            match step {
                Behaviour::Succeed => Ok(ScanReport {
                    summary: ScanSummary {
                        resources_seen: 1,
                        ..Default::default()
                    },
                    findings: vec![],
                }),
                Behaviour::Find(findings) => Ok(ScanReport {
                    summary: ScanSummary {
                        resources_seen: 1,
                        findings: findings.len() as u64,
                        ..Default::default()
                    },
                    findings,
                }),
                Behaviour::Fail(code) => Err(ScanError::new(
                    code,
                    "scripted failure with secret-ish detail",
                )),
                Behaviour::Hang => std::future::pending().await,
                Behaviour::Panic => panic!("scripted panic"),
                Behaviour::Slow(d) => {
                    tokio::time::sleep(d).await;
                    Ok(ScanReport::default())
                }
                Behaviour::Freeze(d) => {
                    std::thread::sleep(d);
                    Ok(ScanReport::default())
                }
            }
        })
    }
}

use scanledger::domain::WorkerId;
use scanledger::worker::{RetryPolicy, ShutdownTrigger, Worker, WorkerConfig, WorkerEvent};
use tokio::sync::broadcast;

/// Short timings so lifecycle tests run in seconds.
pub fn fast_config(id: &str) -> WorkerConfig {
    WorkerConfig {
        id: WorkerId::new(id),
        concurrency: 8,
        heartbeat: Duration::from_millis(100),
        lease: Duration::from_millis(1000),
        poll: Duration::from_millis(200),
        reaper_interval: Duration::from_millis(100),
        grace: Duration::from_secs(5),
        claim_batch: 16,
        retry: RetryPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
        },
        // Most tests request many scans of one subscription; exclusivity has its own test.
        one_per_subscription: false,
    }
}

pub struct RunningWorker {
    pub trigger: ShutdownTrigger,
    pub events: broadcast::Receiver<WorkerEvent>,
    pub handle: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    /// Trigger shutdown and wait for `run` to return.
    pub async fn stop(self) {
        self.trigger.trigger();
        self.handle.await.expect("worker task");
    }
}

pub fn spawn_worker(ledger: &Ledger, job: Arc<dyn ScanJob>, cfg: WorkerConfig) -> RunningWorker {
    let worker = Worker::new(ledger.clone(), job, cfg).expect("valid config");
    let events = worker.subscribe();
    let (trigger, shutdown) = scanledger::worker::Shutdown::new();
    let handle = tokio::spawn(worker.run(shutdown));
    RunningWorker {
        trigger,
        events,
        handle,
    }
}

/// Wait for a worker event matching `pred`.
pub async fn wait_event(
    events: &mut broadcast::Receiver<WorkerEvent>,
    timeout: Duration,
    pred: impl Fn(&WorkerEvent) -> bool,
) -> WorkerEvent {
    tokio::time::timeout(timeout, async {
        loop {
            match events.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("worker events closed: {e}"),
            }
        }
    })
    .await
    .expect("timed out waiting for a worker event")
}

pub async fn count_status(pool: &PgPool, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM scan_status WHERE status = $1")
        .bind(status)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub fn finding(
    rule_id: &str,
    resource: &str,
    severity: scanledger::domain::Severity,
    category: &str,
) -> scanledger::domain::Finding {
    let resource_id = format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{resource}");
    scanledger::domain::Finding {
        fingerprint: scanledger::domain::Finding::fingerprint(rule_id, &resource_id, ""),
        rule_id: rule_id.into(),
        rule_name: format!("Rule {rule_id}").into(),
        severity,
        category: category.into(),
        resource_name: resource.into(),
        resource_id,
        resource_type: "Microsoft.Storage/storageAccounts".into(),
        description: "what is wrong".into(),
        remediation: "how to fix it".into(),
        frameworks: serde_json::json!({"cis_azure": ["3.1"]}).into(),
        details: serde_json::json!({"property": "supportsHttpsTrafficOnly", "value": false}).into(),
        detected_at: None,
    }
}
