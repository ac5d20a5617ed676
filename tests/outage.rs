//! PostgreSQL stopped for longer than the lease while `scanledger worker` processes run
//! scans, then started again on the same data: the scans that finished during the outage
//! end `Completed` with their findings, and no scan ever ran twice at the same time.
//!
//! The test has a PostgreSQL cluster of its own (the shared one keeps serving the other
//! tests). Each worker logs, per attempt, the wall-clock time its scan job stopped
//! (`scan job stopped … stopped_at=…`); the ledger records, on the database clock (the
//! same machine's clock), when each attempt was claimed and each lease ran out.

mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use scanledger::domain::{Event, EventKind, ScanId};
use scanledger::ledger::Ledger;
use scanledger::projection::ScanState;
use scanledger::testing::TestCluster;

const BIN: &str = env!("CARGO_BIN_EXE_scanledger");
/// Lease 4 s (self-fencing 0.4 s before it runs out), heartbeat 1 s.
const LEASE: Duration = Duration::from_secs(4);

/// A worker process whose stderr (its log) is collected line by line; killed if the test
/// fails first, and its log printed then.
struct WorkerProc {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl WorkerProc {
    fn spawn(url: &str, name: &'static str, delay_ms: u64, concurrency: usize) -> Self {
        let tenant = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/tenant");
        let mut child = Command::new(BIN)
            .arg("worker")
            .args(["--worker-id", name])
            .arg("--source")
            .arg(format!("fixture:{}?delay_ms={delay_ms}", tenant.display()))
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--lease", "4s", "--heartbeat", "1s"])
            .args(["--reaper-interval", "500ms", "--poll", "500ms"])
            .args(["--retry-base", "100ms", "--retry-cap", "500ms"])
            .args(["--checkpoint-interval", "0s", "--parallel-per-subscription"])
            .args(["--db-connections", "4"])
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn,scanledger::worker=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn scanledger worker");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        Self { name, child, log }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    async fn terminate(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "worker {} exited with {status}",
                    self.name
                );
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "worker {} did not exit",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- log of worker {} ----", self.name);
            for line in self.log() {
                eprintln!("{line}");
            }
        }
    }
}

/// When one attempt's scan job stopped, and why, from a worker's log line
/// `… scan{scan_id=… attempt=N}: … scan job stopped reason="…" stopped_at=…`.
#[derive(Clone, Debug)]
struct Stop {
    reason: String,
    at: DateTime<Utc>,
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = line[start..].trim_start_matches('"');
    let end = rest.find([' ', '}', '"']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn stops(lines: &[String]) -> HashMap<(ScanId, i32), Stop> {
    lines
        .iter()
        .filter(|l| l.contains("scan job stopped"))
        .map(|l| {
            let scan_id = ScanId(field(l, "scan_id").unwrap().parse().unwrap());
            let attempt = field(l, "attempt").unwrap().parse().unwrap();
            let stop = Stop {
                reason: field(l, "reason").unwrap().to_string(),
                at: field(l, "stopped_at").unwrap().parse().unwrap(),
            };
            ((scan_id, attempt), stop)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_finished_during_an_outage_longer_than_the_lease_are_completed_and_none_runs_twice() {
    let mut cluster =
        tokio::task::block_in_place(|| TestCluster::dedicated(&test_root(), "outage"));
    let db = cluster.fresh_database().await.expect("a database");
    let pool = db.database.pool(4).await.unwrap();
    let env = TestEnv {
        ledger: Ledger::new(pool.clone()),
        pool,
        db,
    };
    let running_on = |ids: Vec<ScanId>, worker: &'static str| {
        let ledger = env.ledger.clone();
        move || {
            let (ids, ledger) = (ids.clone(), ledger.clone());
            async move {
                for id in ids {
                    let row = status_of(&ledger, id).await;
                    if row.status != ScanState::Running || row.worker_id.as_deref() != Some(worker)
                    {
                        return false;
                    }
                }
                true
            }
        }
    };

    // Slow scans (the demo tenant's 84 resources x 150 ms): still running when
    // PostgreSQL goes away, and for longer than a lease after that.
    let mut slow = WorkerProc::spawn(&env.db.url, "slow", 150, 2);
    let slow_ids = request_scans(&env.ledger, 2, 3).await;
    wait_until(
        "the slow worker runs both slow scans",
        Duration::from_secs(60),
        running_on(slow_ids.clone(), "slow"),
    )
    .await;
    // Quick scans (84 resources x 25 ms, ~2 s: set by the delay, not by how fast rules
    // evaluate, which the engine's speed-ups had brought under a second): claimed just
    // before the outage, finished during it, well within their lease. The slow worker is
    // full, so the quick one claims them. A first round warms the quick worker up (its
    // rule engines are built on first use).
    let mut quick = WorkerProc::spawn(&env.db.url, "quick", 25, 4);
    let warm_up = request_scans(&env.ledger, 4, 3).await;
    wait_until(
        "the quick worker completed its warm-up scans",
        Duration::from_secs(120),
        || async {
            let mut done = true;
            for id in &warm_up {
                done &= status_of(&env.ledger, *id).await.status == ScanState::Completed;
            }
            done
        },
    )
    .await;
    let quick_ids = request_scans(&env.ledger, 4, 3).await;
    wait_until(
        "the quick worker runs the quick scans",
        Duration::from_secs(60),
        running_on(quick_ids.clone(), "quick"),
    )
    .await;

    tokio::task::block_in_place(|| cluster.stop());
    let down_at = Utc::now();
    // The scenario: an outage of two leases.
    tokio::time::sleep(2 * LEASE).await;
    let up_at = Utc::now();
    tokio::task::block_in_place(|| cluster.start_again());

    let all: Vec<ScanId> = [&slow_ids, &warm_up, &quick_ids]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    wait_until("every scan settled", Duration::from_secs(180), || async {
        count(
            &env.pool,
            "SELECT count(*) FROM scan_status WHERE status IN ('completed', 'failed', 'cancelled')",
        )
        .await
            == all.len() as i64
    })
    .await;
    quick.terminate().await;
    slow.terminate().await;
    let mut stopped = stops(&quick.log());
    stopped.extend(stops(&slow.log()));

    let mut finished_during_outage = 0;
    let mut fenced = 0;
    for &id in &all {
        let row = status_of(&env.ledger, id).await;
        assert_eq!(row.status, ScanState::Completed, "scan {id}: {row:?}");
        let stream = env.ledger.stream(id).await.unwrap();
        let claims: Vec<_> = stream
            .iter()
            .filter(|e| e.event.kind() == EventKind::Claimed)
            .collect();
        for claim in &claims {
            let attempt = claim.attempt;
            let stop = stopped
                .get(&(id, attempt))
                .unwrap_or_else(|| panic!("no stop logged for scan {id} attempt {attempt}"));
            // No overlap: the next attempt was claimed after this one's job had stopped.
            if let Some(next) = claims.iter().find(|c| c.attempt == attempt + 1) {
                assert!(
                    stop.at < next.recorded_at,
                    "scan {id}: attempt {attempt} stopped at {}, attempt {} claimed at {}",
                    stop.at,
                    attempt + 1,
                    next.recorded_at
                );
            }
            match stop.reason.as_str() {
                "fenced" => {
                    fenced += 1;
                    // Self-fenced before its lease ran out by the database clock.
                    let confirmed = stream
                        .iter()
                        .filter(|e| e.attempt == attempt)
                        .filter_map(|e| match &e.event {
                            Event::Claimed(c) => Some((e.recorded_at, c.lease_ms)),
                            Event::Heartbeat(h) => Some((e.recorded_at, h.lease_ms)),
                            _ => None,
                        })
                        .next_back()
                        .unwrap();
                    let expiry = confirmed.0 + chrono::Duration::milliseconds(confirmed.1 as i64);
                    assert!(
                        stop.at < expiry,
                        "scan {id} attempt {attempt} stopped at {} after its lease ran out at {expiry}",
                        stop.at
                    );
                    let outcome = stream.iter().find(|e| {
                        e.attempt == attempt
                            && matches!(
                                e.event.kind(),
                                EventKind::Completed | EventKind::Failed | EventKind::TimedOut
                            )
                    });
                    assert_eq!(
                        outcome.map(|e| e.event.kind()),
                        Some(EventKind::TimedOut),
                        "scan {id}: a fenced attempt appends nothing; it is timed out"
                    );
                }
                "finished" if stop.at > down_at && stop.at < up_at => {
                    finished_during_outage += 1;
                    // Held through the outage and recorded: Completed, findings stored.
                    assert_eq!(
                        (row.attempt, stream.last().unwrap().event.kind()),
                        (attempt, EventKind::Completed),
                        "scan {id} finished attempt {attempt} during the outage: {:?}",
                        stream
                            .iter()
                            .map(|e| (e.event.kind(), e.attempt))
                            .collect::<Vec<_>>()
                    );
                    let findings: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM findings WHERE scan_id = $1 AND attempt = $2",
                    )
                    .bind(id.0)
                    .bind(attempt)
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
                    assert!(findings > 0, "scan {id}: no findings stored");
                    assert_eq!(row.total_findings, Some(findings));
                }
                _ => {}
            }
        }
    }
    assert!(
        finished_during_outage > 0,
        "no scan finished during the outage: the scenario did not happen"
    );
    assert!(
        fenced > 0,
        "no running scan was fenced: the scenario did not happen"
    );
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
    env.pool.close().await;
    drop(env);
    tokio::task::block_in_place(|| drop(cluster));
}

/// A worker's `/readyz` (`--metrics-listen`) answers 503 while its PostgreSQL is stopped
/// and 200 once it is back; `/healthz` and `/metrics` answer throughout, the database's
/// figures left out meanwhile (`scanledger_database_up 0`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database() {
    let mut cluster = tokio::task::block_in_place(|| TestCluster::dedicated(&test_root(), "ready"));
    let db = cluster.fresh_database().await.expect("a database");
    let tenant = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/tenant");
    let source = format!("fixture:{}", tenant.display());
    let mut w = OpsProc::spawn(
        &[
            "worker",
            "--source",
            &source,
            "--poll",
            "200ms",
            "--checkpoint-interval",
            "0s",
            "--db-connections",
            "4",
        ],
        &[("DATABASE_URL", db.url.as_str())],
    )
    .await;
    assert_eq!(w.get("/readyz").await.0, 200);
    assert_eq!(
        sample(&w.metrics().await, "scanledger_database_up"),
        Some(1.0)
    );

    tokio::task::block_in_place(|| cluster.stop());
    wait_until("/readyz answers 503", Duration::from_secs(30), || async {
        w.get("/readyz").await.0 == 503
    })
    .await;
    let (_, body) = w.get("/readyz").await;
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "unavailable", "{body}");
    assert!(
        !body.contains("connect"),
        "no driver text reaches the client: {body}"
    );
    assert_eq!(w.get("/healthz").await.0, 200);
    wait_until(
        "the worker's own calls find the database gone",
        Duration::from_secs(30),
        || async {
            sample(&w.metrics().await, "scanledger_worker_database_reachable") == Some(0.0)
        },
    )
    .await;
    let text = w.metrics().await;
    assert_eq!(sample(&text, "scanledger_database_up"), Some(0.0));
    assert!(!text.contains("scanledger_queue_depth"), "{text}");
    assert!(text.contains("process_cpu_seconds_total"));

    tokio::task::block_in_place(|| cluster.start_again());
    wait_until(
        "/readyz answers 200 again",
        Duration::from_secs(60),
        || async { w.get("/readyz").await.0 == 200 },
    )
    .await;
    wait_until(
        "the worker finds the database back",
        Duration::from_secs(60),
        || async {
            sample(&w.metrics().await, "scanledger_worker_database_reachable") == Some(1.0)
        },
    )
    .await;
    assert!(w.terminate().await.success());
}
