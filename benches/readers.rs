//! Scan pace with and without readers: a real `scanledger serve` process (release build)
//! against a durable local PostgreSQL runs the same batch of demo-tenant scans twice,
//! once alone and once while 200 long-polls follow the scans and 50 event streams tail
//! the feed. Prints scans/s for both; asserts nothing.
//!
//!     cargo bench --bench readers                               # 400 scans, no delay
//!     cargo bench --bench readers -- --scans 200 --delay-ms 5   # scans that wait on their source
//!
//! Method and recorded figures: docs/performance.md.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scanledger::api::{auth, Role};
use scanledger::testing::TestCluster;

const BIN: &str = env!("CARGO_BIN_EXE_scanledger");
/// The demo tenant's subscription: its resources are the ones a scan of it lists.
const SUB: &str = "6f1c1a9e-5d7b-4c2e-9a41-0d3e5f7a9b10";

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arg(args: &[String], name: &str) -> Option<usize> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Bench {
    http: reqwest::Client,
    base: String,
    operator: String,
    readers: Vec<String>,
    pool: sqlx::PgPool,
}

impl Bench {
    async fn completed(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM scan_status WHERE status = 'completed'")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The feed's cursor after everything it serves now.
    async fn feed_end(&self) -> String {
        let mut after = "0".to_string();
        loop {
            let page: serde_json::Value = self
                .http
                .get(format!("{}/api/events?after={after}&limit=1000", self.base))
                .bearer_auth(&self.readers[0])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            after = page["next"].as_str().unwrap().to_string();
            if page["count"].as_u64().unwrap() < 1000 {
                return after;
            }
        }
    }

    async fn trigger(&self) -> String {
        let r = self
            .http
            .post(format!("{}/api/scans", self.base))
            .bearer_auth(&self.operator)
            .json(&serde_json::json!({"subscription_id": SUB, "rules": ["storage"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let body: serde_json::Value = r.json().await.unwrap();
        body["scan_id"].as_str().unwrap().to_string()
    }
}

/// Follow scans by long-polling (`?wait=20` with the last ETag), as a dashboard does:
/// poller `i` of `n` follows scans `i`, `i + n`, `i + 2n`, … one after another (scan
/// `i % total` when there are fewer scans than pollers), waiting for each to be requested.
async fn long_poller(
    b: Arc<Bench>,
    token: String,
    ids: Arc<std::sync::Mutex<Vec<String>>>,
    (i, n, total): (usize, usize, usize),
    polls: Arc<AtomicUsize>,
) {
    let mine: Vec<usize> = if total < n {
        vec![i % total]
    } else {
        (i..total).step_by(n).collect()
    };
    for k in mine {
        let scan = loop {
            if let Some(id) = ids.lock().unwrap().get(k) {
                break id.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let mut etag: Option<String> = None;
        loop {
            let mut req = b
                .http
                .get(format!("{}/api/scans/{scan}?wait=20", b.base))
                .bearer_auth(&token);
            if let Some(e) = &etag {
                req = req.header("if-none-match", e);
            }
            let r = req.send().await.unwrap();
            polls.fetch_add(1, Ordering::Relaxed);
            if r.status() == 304 {
                continue;
            }
            etag = r
                .headers()
                .get("etag")
                .map(|e| e.to_str().unwrap().to_string());
            let body: serde_json::Value = r.json().await.unwrap();
            if body["status"] != "pending" && body["status"] != "running" {
                break;
            }
        }
    }
}

/// Tail the feed as Server-Sent Events from `after` until `stop`, counting events.
async fn streamer(
    b: Arc<Bench>,
    token: String,
    after: String,
    stop: Arc<AtomicBool>,
    seen: Arc<AtomicUsize>,
) {
    let Ok(mut resp) = b
        .http
        .get(format!("{}/api/events/stream?after={after}", b.base))
        .bearer_auth(&token)
        .send()
        .await
    else {
        return;
    };
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(200), resp.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let n = chunk
                    .split(|&c| c == b'\n')
                    .filter(|l| l.starts_with(b"id:"))
                    .count();
                seen.fetch_add(n, Ordering::Relaxed);
            }
            Ok(_) => return,
            Err(_) => {}
        }
    }
}

/// `scans` scans requested at once; the clock runs until all are completed.
async fn run(b: &Arc<Bench>, scans: usize, long_polls: usize, streams: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (polls, events) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // Streams start at the feed's end: they carry this run's events, not the history.
    let after = b.feed_end().await;
    let mut streamers = Vec::new();
    for i in 0..streams {
        streamers.push(tokio::spawn(streamer(
            b.clone(),
            b.readers[i % b.readers.len()].clone(),
            after.clone(),
            stop.clone(),
            events.clone(),
        )));
    }
    let mut pollers = Vec::new();
    for i in 0..long_polls {
        pollers.push(tokio::spawn(long_poller(
            b.clone(),
            b.readers[i % b.readers.len()].clone(),
            ids.clone(),
            (i, long_polls, scans),
            polls.clone(),
        )));
    }
    let before = b.completed().await;
    let start = Instant::now();
    for chunk in (0..scans).collect::<Vec<_>>().chunks(50) {
        let batch = futures_util::future::join_all(chunk.iter().map(|_| b.trigger())).await;
        ids.lock().unwrap().extend(batch);
    }
    while b.completed().await < before + scans as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    for p in pollers {
        p.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for s in streamers {
        let _ = s.await;
    }
    let timed_out: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scan_events WHERE kind = 'TimedOut'")
            .fetch_one(&b.pool)
            .await
            .unwrap();
    println!(
        "readers     long-polls={long_polls:>3} streams={streams:>2} scans={scans}  all completed in {:>6.2}s  \
         => {:>6.1} scans/s  ({} long-poll answers, {} stream events delivered; {timed_out} leases lost so far)",
        took.as_secs_f64(),
        scans as f64 / took.as_secs_f64(),
        polls.load(Ordering::Relaxed),
        events.load(Ordering::Relaxed),
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scans = arg(&args, "--scans").unwrap_or(400);
    let delay = arg(&args, "--delay-ms").unwrap_or(0);
    let long_polls = arg(&args, "--long-polls").unwrap_or(200);
    let streams = arg(&args, "--streams").unwrap_or(50);
    scanledger::install_crypto_provider();
    let cluster = TestCluster::shared(&std::env::temp_dir().join("scanledger-bench-readers"), true);
    let db = cluster.fresh_database().await.unwrap();
    let pool = db.database.pool(4).await.unwrap();
    let port = free_port();
    let tenant = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/tenant");
    let _serve = Serve(
        Command::new(BIN)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--source",
                &format!("fixture:{}?delay_ms={delay}", tenant.display()),
            ])
            .args(["--concurrency", "16", "--parallel-per-subscription"])
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn scanledger serve"),
    );
    let mut readers = Vec::new();
    for i in 0..(streams.div_ceil(8)).max(1) {
        readers.push(
            auth::create_token(&pool, &format!("dashboard-{i}"), Role::Reader)
                .await
                .unwrap(),
        );
    }
    let b = Arc::new(Bench {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
        operator: auth::create_token(&pool, "bench", Role::Operator)
            .await
            .unwrap(),
        readers,
        pool,
    });
    loop {
        if let Ok(r) = b.http.get(format!("{}/readyz", b.base)).send().await {
            if r.status() == 200 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "scanledger readers benchmark: {} cores, durable PostgreSQL, serve --concurrency 16, \
         demo tenant (storage rules), {delay} ms per resource",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Warm-up (rule engines, connections), then alone, with readers, alone again.
    run(&b, scans / 4, 0, 0).await;
    run(&b, scans, 0, 0).await;
    run(&b, scans, long_polls, streams).await;
    run(&b, scans, 0, 0).await;
    run(&b, scans, long_polls, streams).await;
}
