//! End-to-end throughput and request→claim latency against a real, durable local
//! PostgreSQL (fsync and synchronous_commit on). Prints figures; asserts nothing.
//!
//!     cargo bench --bench throughput              # full run (10,000 scans)
//!     cargo bench --bench throughput -- --scans 2000 --workers 8
//!
//! Method and recorded figures: docs/performance.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use scanledger::domain::{Requested, ScanId, SubscriptionId, WorkerId};
use scanledger::ledger::{Ledger, NewScan};
use scanledger::testing::TestCluster;
use scanledger::worker::{
    ProgressReporter, ScanError, ScanJob, ScanReport, ScanTarget, Shutdown, Worker, WorkerConfig,
    WorkerEvent,
};
use tokio::sync::broadcast;

/// A scan that does nothing: what is measured is the ledger, not the scanner.
struct Noop;

impl ScanJob for Noop {
    fn run(
        &self,
        _: ScanTarget,
        _: ProgressReporter,
    ) -> BoxFuture<'static, Result<ScanReport, ScanError>> {
        Box::pin(async { Ok(ScanReport::default()) })
    }
}

/// Each scan for its own subscription, so the one-scan-per-subscription rule (on, as by
/// default) is checked on every claim but never serializes the run.
fn request(n: usize) -> Vec<NewScan> {
    (0..n)
        .map(|_| NewScan {
            scan_id: ScanId::new(),
            request: Requested {
                origin: None,
                subscription_id: SubscriptionId::parse(&uuid::Uuid::new_v4().to_string()).unwrap(),
                rules: vec![],
                priority: 0,
                max_attempts: 3,
                requested_by: Some("bench".into()),
                estate: None,
            },
        })
        .collect()
}

fn worker_config(i: usize, concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        id: WorkerId::new(format!("bench-{i}")),
        concurrency,
        claim_batch: concurrency,
        poll: Duration::from_millis(100),
        one_per_subscription: !std::env::args().any(|a| a == "--parallel-per-subscription"),
        ..WorkerConfig::default()
    }
}

async fn count_completed(ledger: &Ledger) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM scan_status WHERE status = 'completed'")
        .fetch_one(ledger.pool())
        .await
        .unwrap()
}

/// `scans` no-op scans requested in batches of 100 while `workers` workers run them.
async fn throughput(cluster: &TestCluster, scans: usize, workers: usize, concurrency: usize) {
    let db = cluster.fresh_database().await.unwrap();
    let ledger = Ledger::new(db.database.pool(8).await.unwrap());
    let (trigger, shutdown) = Shutdown::new();
    let mut handles = Vec::new();
    for i in 0..workers {
        let pool = db.database.pool(4).await.unwrap();
        let w = Worker::new(
            Ledger::new(pool),
            Arc::new(Noop),
            worker_config(i, concurrency),
        )
        .unwrap();
        handles.push(tokio::spawn(w.run(shutdown.clone())));
    }
    let start = Instant::now();
    let producer = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            for _ in 0..scans / 100 {
                ledger.request(request(100)).await.unwrap();
            }
        })
    };
    producer.await.unwrap();
    let requested = start.elapsed();
    while count_completed(&ledger).await < scans as i64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = start.elapsed();
    trigger.trigger();
    for h in handles {
        h.await.unwrap();
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM scan_events")
        .fetch_one(ledger.pool())
        .await
        .unwrap();
    println!(
        "throughput  workers={workers:>2} x concurrency={concurrency:<3} scans={scans}  requested in {:>6.2}s  \
         all completed in {:>6.2}s  => {:>6.0} scans/s end to end, {:>6.0} events/s ({events} events)",
        requested.as_secs_f64(),
        total.as_secs_f64(),
        scans as f64 / total.as_secs_f64(),
        events as f64 / total.as_secs_f64(),
    );
}

/// One idle worker; scans requested one at a time. Latency is measured on the database
/// clock: Claimed.recorded_at − Requested.recorded_at.
async fn latency(cluster: &TestCluster, samples: usize) {
    let db = cluster.fresh_database().await.unwrap();
    let ledger = Ledger::new(db.database.pool(4).await.unwrap());
    let (trigger, shutdown) = Shutdown::new();
    let mut cfg = worker_config(0, 8);
    // An idle worker must be woken by NOTIFY, not found by its poll.
    cfg.poll = Duration::from_secs(3600);
    let worker = Worker::new(
        Ledger::new(db.database.pool(4).await.unwrap()),
        Arc::new(Noop),
        cfg,
    )
    .unwrap();
    let mut events = worker.subscribe();
    let handle = tokio::spawn(worker.run(shutdown));
    async fn next(
        events: &mut broadcast::Receiver<WorkerEvent>,
        want: impl Fn(&WorkerEvent) -> bool,
    ) {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(30), events.recv())
                .await
                .expect("worker went quiet for 30 s");
            if matches!(&e, Ok(e) if want(e)) {
                return;
            }
        }
    }
    next(&mut events, |e| matches!(e, WorkerEvent::Listening)).await;
    next(&mut events, |e| matches!(e, WorkerEvent::Idle)).await;
    let mut client_ms = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let id = ledger.request(request(1)).await.unwrap()[0].scan_id;
        next(
            &mut events,
            |e| matches!(e, WorkerEvent::Claimed { scan_id, .. } if *scan_id == id),
        )
        .await;
        client_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        // Let the scan finish so the worker is idle again before the next sample.
        next(&mut events, |e| matches!(e, WorkerEvent::Idle)).await;
    }
    trigger.trigger();
    handle.await.unwrap();
    let mut db_ms: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM c.recorded_at - r.recorded_at)::float8 * 1000
           FROM scan_events r JOIN scan_events c ON c.scan_id = r.scan_id AND c.kind = 'Claimed' AND c.attempt = 1
          WHERE r.kind = 'Requested'",
    )
    .fetch_all(ledger.pool())
    .await
    .unwrap();
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    println!(
        "latency     requested->claimed over {samples} scans, idle worker woken by NOTIFY: \
         database clock median {:.2} ms, p99 {:.2} ms; client (request sent -> claim seen) median {:.2} ms, p99 {:.2} ms",
        pct(&mut db_ms, 0.5),
        pct(&mut db_ms, 0.99),
        pct(&mut client_ms, 0.5),
        pct(&mut client_ms, 0.99),
    );
}

fn arg(args: &[String], name: &str) -> Option<usize> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scans = arg(&args, "--scans").unwrap_or(10_000);
    let concurrency = arg(&args, "--concurrency").unwrap_or(16);
    let workers: Vec<usize> = arg(&args, "--workers")
        .map(|w| vec![w])
        .unwrap_or_else(|| vec![8, 32]);
    let samples = arg(&args, "--samples").unwrap_or(500);
    let cluster = TestCluster::shared(&std::env::temp_dir().join("scanledger-bench"), true);
    println!(
        "scanledger benchmark: {} cores, durable PostgreSQL (fsync on, synchronous_commit on)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for w in workers {
        throughput(cluster, scans, w, concurrency).await;
    }
    latency(cluster, samples).await;
}
