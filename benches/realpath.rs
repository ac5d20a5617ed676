//! The path a user runs: the `scanledger` binary's `api` and `worker` processes (release
//! build under `cargo bench`), the real scan job, every scan requested over HTTP, a
//! durable local PostgreSQL (fsync and synchronous_commit on). Prints scans/s and WAL per
//! scan; asserts nothing. With `--peer graphile`, graphile-worker 0.18 runs no-op jobs on
//! the same cluster in the same sitting (installed from npm into target/peers).
//!
//!     cargo bench --bench realpath                          # empty + demo inventory, concurrency 8 and 32
//!     cargo bench --bench realpath -- --scans 3000 --concurrency 8 --inventory empty
//!     cargo bench --bench realpath -- --peer graphile       # adds graphile-worker figures
//!     cargo bench --bench realpath -- --scans 0 --latency 1000   # wake-up latency only
//!
//! Method and recorded figures: docs/performance.md.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use scanledger::api::{auth, Role};
use scanledger::testing::{TestCluster, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_scanledger");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: signalling our own child; SIGTERM lets it stop cleanly.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(db: &TestDatabase, args: &[&str]) -> Proc {
    Proc(
        Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env(
                "RUST_LOG",
                std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn scanledger"),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn scalar_i64(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn wal_lsn(pool: &sqlx::PgPool) -> String {
    sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wal_bytes(pool: &sqlx::PgPool, from: &str) -> i64 {
    sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint")
        .bind(from)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// `scans` scans, each of its own subscription, requested over HTTP by 32 concurrent
/// clients while one worker process at `concurrency` runs them against `source`.
async fn real_path(
    cluster: &TestCluster,
    inventory: &str,
    source: &str,
    concurrency: usize,
    scans: usize,
) {
    let db = cluster.fresh_database().await.unwrap();
    let owner = db.owner.pool(1).await.unwrap();
    // The empty inventory: as shipped, one running scan per subscription is enforced (each
    // scan has its own subscription, so the check runs on every claim but never serializes
    // the run). The demo inventory belongs to one subscription: its scans run in parallel.
    let demo = inventory == "demo";
    sqlx::query("UPDATE ledger_settings SET parallel_per_subscription = $1")
        .bind(demo)
        .execute(&owner)
        .await
        .unwrap();
    let pool = db.database.pool(4).await.unwrap();
    let token = auth::create_token(&pool, "bench", Role::Operator)
        .await
        .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _api = spawn(&db, &["api", "--listen", &listen]);
    let c = concurrency.to_string();
    let _worker = spawn(&db, &["worker", "--source", source, "--concurrency", &c]);
    scanledger::install_crypto_provider();
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    let ready = Instant::now();
    while !http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "the API did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wal0 = wal_lsn(&owner).await;
    let started = Instant::now();
    let requests = stream::iter(0..scans)
        .map({
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            move |_| {
                let (http, base, token) = (http.clone(), base.clone(), token.clone());
                async move {
                    let subscription = if demo {
                        scanledger::cli::DEMO_SUBSCRIPTION.to_string()
                    } else {
                        uuid::Uuid::new_v4().to_string()
                    };
                    let body = serde_json::json!({ "subscription_id": subscription });
                    let r = http
                        .post(format!("{base}/api/scans"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 202);
                }
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>();
    let requested = tokio::spawn(async move {
        requests.await;
        started.elapsed()
    });
    loop {
        let done = scalar_i64(
            &pool,
            "SELECT count(*) FROM scan_status WHERE status IN ('completed', 'failed')",
        )
        .await;
        if done >= scans as i64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "stalled at {done}/{scans}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let accepted = requested.await.unwrap().as_secs_f64();
    let failed = scalar_i64(
        &pool,
        "SELECT count(*) FROM scan_status WHERE status = 'failed'",
    )
    .await;
    let wal = wal_bytes(&owner, &wal0).await;
    let seen = scalar_i64(
        &pool,
        "SELECT coalesce(max((summary->>'resources_seen')::bigint), 0) FROM scan_status",
    )
    .await;
    eprintln!("resources seen per scan (max): {seen}");
    let findings = scalar_i64(
        &pool,
        "SELECT coalesce(sum(total_findings), 0)::bigint FROM scan_status",
    )
    .await;
    println!(
        "real path  inventory={inventory:<5} worker --concurrency {concurrency:<3} scans={scans}  {:>7.0} scans/s  \
         ({secs:.2} s; all {scans} accepted by the API in {accepted:.2} s; {failed} failed; {} findings/scan)  WAL {:.2} KB/scan",
        scans as f64 / secs,
        findings / scans as i64,
        wal as f64 / scans as f64 / 1024.0
    );
}

/// Request → claim on an idle `scanledger worker` process: `samples` scans requested one
/// at a time through the API, each after the previous one completed; database clock
/// (`Claimed.recorded_at − Requested.recorded_at`).
async fn latency(cluster: &TestCluster, source: &str, samples: usize) {
    let db = cluster.fresh_database().await.unwrap();
    let pool = db.database.pool(2).await.unwrap();
    let token = auth::create_token(&pool, "bench", Role::Operator)
        .await
        .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let _api = spawn(&db, &["api", "--listen", &listen]);
    // The polling fallback an hour away: only a NOTIFY wakes the worker.
    let _worker = spawn(&db, &["worker", "--source", source, "--poll", "1h"]);
    scanledger::install_crypto_provider();
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    let ready = Instant::now();
    while !http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "the API did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the worker reach its LISTEN before the first sample.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..samples {
        let body = serde_json::json!({ "subscription_id": uuid::Uuid::new_v4().to_string() });
        let r = http
            .post(format!("{base}/api/scans"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let id = r.json::<serde_json::Value>().await.unwrap()["scan_id"]
            .as_str()
            .unwrap()
            .to_string();
        let waited = Instant::now();
        loop {
            let s: serde_json::Value = http
                .get(format!("{base}/api/scans/{id}?wait=5"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if s["status"] == "completed" {
                break;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "scan {id} was not claimed: a lost wake-up"
            );
        }
    }
    let mut waits: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM c.recorded_at - r.recorded_at)::float8 * 1000
           FROM scan_events r JOIN scan_events c ON c.scan_id = r.scan_id AND c.kind = 'Claimed'
          WHERE r.kind = 'Requested'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    waits.sort_by(f64::total_cmp);
    let n = waits.len();
    println!(
        "wake-up    request -> claim, idle worker process, {n} sequential samples (database clock): \
         p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        waits[n / 2],
        waits[n * 99 / 100],
        waits[n - 1]
    );
}

/// graphile-worker 0.18 on a fresh database of the same cluster: `jobs` no-op jobs added
/// in one call, then a runner at `concurrency` (defaults, then tuned per its docs).
fn graphile(cluster: &TestCluster, db: &TestDatabase, jobs: usize, concurrency: usize) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peers/graphile");
    std::fs::create_dir_all(&dir).unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/graphile");
    for f in ["package.json", "run.mjs"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    if !dir.join("node_modules/graphile-worker").exists() {
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            println!("graphile-worker: npm install failed; no peer figure");
            return;
        }
    }
    let _ = cluster;
    for tuned in [false, true] {
        let out = Command::new("node")
            .arg(dir.join("run.mjs"))
            .env("DATABASE_URL", &db.owner_url)
            .env("JOBS", jobs.to_string())
            .env("CONCURRENCY", concurrency.to_string())
            .env("TUNED", if tuned { "1" } else { "0" })
            .current_dir(&dir)
            .output()
            .expect("node");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            println!(
                "graphile-worker failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn fixture(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    format!("fixture:{}", path.display())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scans: usize = arg(&args, "--scans").map_or(3_000, |v| v.parse().unwrap());
    let concurrency: Vec<usize> =
        arg(&args, "--concurrency").map_or(vec![8, 32], |v| vec![v.parse().unwrap()]);
    let inventories: Vec<String> =
        arg(&args, "--inventory").map_or(vec!["empty".into(), "demo".into()], |v| vec![v]);
    let cluster = TestCluster::shared(&std::env::temp_dir().join("scanledger-bench"), true);
    println!(
        "scanledger real-path benchmark: {} cores, durable PostgreSQL (fsync on, synchronous_commit on)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let scratch = std::env::temp_dir().join(format!("scanledger-realpath-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/tenant");
    for inventory in &inventories {
        let source = match inventory.as_str() {
            "empty" => fixture(&scratch, "empty.json", "[]"),
            "demo" => format!("fixture:{}?delay_ms=0", demo.display()),
            other => panic!("--inventory empty|demo, not {other}"),
        };
        for &c in &concurrency {
            if scans > 0 {
                real_path(cluster, inventory, &source, c, scans).await;
            }
        }
    }
    let samples: usize = arg(&args, "--latency").map_or(1_000, |v| v.parse().unwrap());
    if samples > 0 {
        latency(cluster, &fixture(&scratch, "empty.json", "[]"), samples).await;
    }
    if arg(&args, "--peer").as_deref() == Some("graphile") {
        let db = cluster.fresh_database().await.unwrap();
        for &c in &concurrency {
            graphile(cluster, &db, scans.max(10_000), c);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
