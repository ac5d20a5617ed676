//! Operator commands over projections: verify finds tampering, rebuild runs under load
//! without stopping the service, start-up refuses a projection it cannot trust.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use scanledger::api::{self, ApiConfig, AppState, AuthMode};
use scanledger::ledger::replay as rebuild;
use scanledger::ledger::Ledger;
use scanledger::worker::Shutdown;

const BIN: &str = env!("CARGO_BIN_EXE_scanledger");

fn cli(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn quiet(_: u64, _: u64, _: f64) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_exactly_the_rows_that_differ() {
    let env = env().await;
    let ids = request_scans(&env.ledger, 30, 3).await;
    let w = spawn_worker(
        &env.ledger,
        Arc::new(ScriptedJob::new(Behaviour::Succeed)),
        fast_config("v"),
    );
    wait_until("all completed", Duration::from_secs(20), || async {
        count_status(&env.pool, "completed").await == 30
    })
    .await;
    w.stop().await;
    let mut owner = env.db.owner.owner_connection().await.unwrap();
    let report = rebuild::verify(&mut owner, "scan_status", &mut quiet)
        .await
        .unwrap();
    assert_eq!(
        (report.rows, report.events, report.differences.len()),
        (30, 90, 0)
    );
    let ok = cli(&env.db.owner_url, &["projections", "verify", "scan_status"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Tamper with one row and remove another: verify names both, and exits 1.
    sqlx::query("UPDATE scan_status SET status = 'failed' WHERE scan_id = $1")
        .bind(ids[3].0)
        .execute(&mut owner)
        .await
        .unwrap();
    sqlx::query("DELETE FROM scan_status WHERE scan_id = $1")
        .bind(ids[7].0)
        .execute(&mut owner)
        .await
        .unwrap();
    let report = rebuild::verify(&mut owner, "scan_status", &mut quiet)
        .await
        .unwrap();
    let mut named: Vec<String> = report
        .differences
        .iter()
        .map(|d| d.key["scan_id"].as_str().unwrap().to_string())
        .collect();
    named.sort();
    let mut expected = vec![ids[3].to_string(), ids[7].to_string()];
    expected.sort();
    assert_eq!(named, expected);
    let missing = report
        .differences
        .iter()
        .find(|d| d.key["scan_id"] == ids[7].to_string())
        .unwrap();
    assert!(missing.live.is_none() && missing.replayed.is_some());
    let bad = cli(&env.db.owner_url, &["projections", "verify", "scan_status"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains(&ids[3].to_string()));

    // A rebuild repairs both.
    let report = rebuild::rebuild(&env.db.owner, "scan_status", &mut quiet)
        .await
        .unwrap();
    assert_eq!(report.events_replayed, 90);
    assert!(rebuild::verify(&mut owner, "scan_status", &mut quiet)
        .await
        .unwrap()
        .differences
        .is_empty());
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_under_load_keeps_serving_and_verifies_clean() {
    let env = env().await;
    request_scans(&env.ledger, 3000, 3).await;
    // The API keeps answering throughout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, shutdown) = Shutdown::new();
    tokio::spawn(api::serve(
        listener,
        AppState::new(env.ledger.clone(), AuthMode::Disabled, ApiConfig::default()),
        shutdown,
    ));
    // 8 writers: 4 keep triggering scans through the API, 4 workers keep completing them.
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, answered, failed, base) =
            (stop.clone(), answered.clone(), failed.clone(), base.clone());
        clients.push(tokio::spawn(async move {
            scanledger::install_crypto_provider();
            let http = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let sub = uuid::Uuid::new_v4().to_string();
                let r = http
                    .post(format!("{base}/api/scans"))
                    .json(&serde_json::json!({"subscription_id": sub}))
                    .send()
                    .await;
                let ok = matches!(&r, Ok(r) if r.status() == 202);
                let listed = http.get(format!("{base}/api/scans?limit=5")).send().await;
                let ok = ok && matches!(&listed, Ok(r) if r.status() == 200);
                if ok {
                    answered.fetch_add(1, Ordering::Relaxed)
                } else {
                    failed.fetch_add(1, Ordering::Relaxed)
                };
            }
        }));
    }
    let mut workers = Vec::new();
    for i in 0..4 {
        let ledger = Ledger::new(env.db.database.pool(4).await.unwrap());
        let mut cfg = fast_config(&format!("load-{i}"));
        cfg.lease = Duration::from_secs(30);
        cfg.heartbeat = Duration::from_secs(5);
        workers.push(spawn_worker(
            &ledger,
            Arc::new(ScriptedJob::new(Behaviour::Succeed)),
            cfg,
        ));
    }
    wait_until("the load is running", Duration::from_secs(20), || async {
        count_status(&env.pool, "completed").await > 200 && answered.load(Ordering::Relaxed) > 20
    })
    .await;
    let before = answered.load(Ordering::Relaxed);
    let mut owner = env.db.owner.owner_connection().await.unwrap();
    let report = rebuild::rebuild(&env.db.owner, "scan_status", &mut quiet)
        .await
        .unwrap();
    println!("rebuild under load: {report:?}");
    assert!(
        answered.load(Ordering::Relaxed) > before,
        "the API answered during the rebuild"
    );
    // Keep the load on after the swap for a moment, then stop.
    let after_swap = count_status(&env.pool, "completed").await;
    wait_until(
        "work continues after the swap",
        Duration::from_secs(20),
        || async { count_status(&env.pool, "completed").await > after_swap + 100 },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    for w in workers {
        w.stop().await;
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed during the rebuild"
    );
    let report = rebuild::verify(&mut owner, "scan_status", &mut quiet)
        .await
        .unwrap();
    assert!(
        report.differences.is_empty(),
        "{:#?}",
        &report.differences[..report.differences.len().min(3)]
    );
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test]
async fn start_up_refuses_a_stale_projection_until_it_is_rebuilt() {
    let env = env().await;
    request_scans(&env.ledger, 5, 3).await;
    let owner = env.db.owner.pool(1).await.unwrap();
    // The registry says the table was built by another DDL version.
    sqlx::query("UPDATE projections SET version = 0 WHERE name = 'scan_status'")
        .execute(&owner)
        .await
        .unwrap();
    let refused = cli(&env.db.owner_url, &["migrate"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("scanledger projections rebuild scan_status"),
        "{stderr}"
    );
    let status = cli(&env.db.owner_url, &["projections", "status"]);
    assert!(
        status.status.success(),
        "status works on a stale projection"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&status.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "one line per projection");
    let line = lines.iter().find(|l| l["name"] == "scan_status").unwrap();
    assert_eq!(
        (
            line["stored_version"].as_i64(),
            line["code_version"].as_i64()
        ),
        (Some(0), Some(3))
    );
    assert_eq!(line["lag_events"], 0);

    let rebuilt = cli(
        &env.db.owner_url,
        &["projections", "rebuild", "scan_status"],
    );
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert!(cli(&env.db.owner_url, &["migrate"]).status.success());

    // A dropped projection: refused, then rebuilt at start-up when asked to.
    sqlx::raw_sql("DROP TABLE scan_status; DELETE FROM projections")
        .execute(&owner)
        .await
        .unwrap();
    assert!(!cli(&env.db.owner_url, &["migrate"]).status.success());
    let healed = cli(&env.db.owner_url, &["migrate", "--rebuild-projections"]);
    assert!(
        healed.status.success(),
        "{}",
        String::from_utf8_lossy(&healed.stderr)
    );
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM scan_status").await,
        5
    );
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'scan_status' ORDER BY 1",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    assert!(indexes.iter().all(|i| !i.contains("shadow")), "{indexes:?}");
    assert!(
        indexes.contains(&"scan_status_queue".to_string()),
        "{indexes:?}"
    );
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_history_follows_findings_across_scans_and_rebuilds_identically() {
    use scanledger::domain::Severity;
    let env = env().await;
    let (a, b, c) = (
        finding("storage-https-only", "st1", Severity::High, "storage"),
        finding("nsg-ssh-open", "nsg1", Severity::Critical, "network"),
        finding("kv-purge-protection", "kv1", Severity::Medium, "keyvault"),
    );
    // Four scans of one subscription: a always; b appears, disappears, reappears; c fixed.
    let plans = [
        vec![a.clone(), c.clone()],
        vec![a.clone(), b.clone()],
        vec![a.clone()],
        vec![a.clone(), b.clone()],
    ];
    let job = Arc::new(ScriptedJob::new(Behaviour::Succeed));
    let mut w = spawn_worker(&env.ledger, job.clone(), fast_config("history"));
    let mut scans = Vec::new();
    for plan in plans {
        let id = request_scripted(&env.ledger, &job, &mut w, [Behaviour::Find(plan)]).await;
        scans.push(id);
    }
    w.stop().await;
    let row = |fp: String| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_as::<_, (String, uuid::Uuid, uuid::Uuid, Option<uuid::Uuid>, i32)>(
                "SELECT state, first_seen_scan, last_seen_scan, resolved_scan, reopened_count
                   FROM finding_history WHERE fingerprint = $1",
            )
            .bind(fp)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        row(a.fingerprint.clone()).await,
        ("open".into(), scans[0].0, scans[3].0, None, 0)
    );
    assert_eq!(
        row(b.fingerprint.clone()).await,
        ("open".into(), scans[1].0, scans[3].0, None, 1)
    );
    assert_eq!(
        row(c.fingerprint.clone()).await,
        (
            "resolved".into(),
            scans[0].0,
            scans[0].0,
            Some(scans[1].0),
            0
        )
    );

    let mut owner = env.db.owner.owner_connection().await.unwrap();
    let report = rebuild::verify(&mut owner, "finding_history", &mut quiet)
        .await
        .unwrap();
    assert_eq!((report.rows, report.differences.len()), (3, 0));
    sqlx::query("UPDATE finding_history SET reopened_count = 9 WHERE fingerprint = $1")
        .bind(&a.fingerprint)
        .execute(&mut owner)
        .await
        .unwrap();
    let report = rebuild::verify(&mut owner, "finding_history", &mut quiet)
        .await
        .unwrap();
    assert_eq!(report.differences.len(), 1);
    assert_eq!(
        report.differences[0].key["fingerprint"],
        a.fingerprint.as_str()
    );
    rebuild::rebuild(&env.db.owner, "finding_history", &mut quiet)
        .await
        .unwrap();
    assert!(rebuild::verify(&mut owner, "finding_history", &mut quiet)
        .await
        .unwrap()
        .differences
        .is_empty());
    assert_eq!(row(a.fingerprint.clone()).await.4, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_scan_status_is_served_only_after_its_rebuild_to_v3() {
    use scanledger::domain::Severity;
    let env = env().await;
    let owner = env.db.owner.pool(1).await.unwrap();
    // Scans run, then the table is put in the shape the previous release left it:
    // scan_status v2 is v3 without the score, resources and severity columns and the
    // console's indexes, with the same rows otherwise (v1 was v2 without total_findings).
    let job = Arc::new(ScriptedJob::new(Behaviour::Find(vec![
        finding("storage-https-only", "st1", Severity::High, "storage"),
        finding("nsg-ssh-open", "nsg1", Severity::Critical, "network"),
    ])));
    let ids = request_scans(&env.ledger, 3, 3).await;
    let w = spawn_worker(&env.ledger, job, fast_config("v2"));
    wait_until("scans completed", Duration::from_secs(20), || async {
        count_status(&env.pool, "completed").await == 3
    })
    .await;
    w.stop().await;
    sqlx::raw_sql(
        "ALTER TABLE scan_status DROP COLUMN score, DROP COLUMN resources_seen,
                                 DROP COLUMN findings_by_severity;
         DROP INDEX scan_status_subscription, scan_status_completed, scan_status_ended;
         UPDATE projections SET version = 2 WHERE name = 'scan_status'",
    )
    .execute(&owner)
    .await
    .unwrap();
    let gone = count(&env.pool, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'scan_status' AND column_name = 'findings_by_severity'").await;
    assert_eq!(gone, 0);

    // This release refuses to serve it, and says how to fix it.
    let refused = cli(&env.db.owner_url, &["migrate"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("version 2")
            && stderr.contains("version 3")
            && stderr.contains("projections rebuild scan_status"),
        "{stderr}"
    );

    let rebuilt = cli(
        &env.db.owner_url,
        &["projections", "rebuild", "scan_status"],
    );
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert!(
        cli(&env.db.owner_url, &["migrate"]).status.success(),
        "served after the rebuild"
    );
    let filled = count(
        &env.pool,
        &format!(
            "SELECT count(*) FROM scan_status WHERE scan_id IN ({})
                AND total_findings = 2 AND resources_seen = (summary ->> 'resources_seen')::bigint
                AND findings_by_severity = summary -> 'findings_by_severity'
                AND score IS NOT DISTINCT FROM (summary ->> 'score')::float8",
            ids.iter()
                .map(|i| format!("'{i}'"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    )
    .await;
    assert_eq!(filled, 3, "the new columns are filled from the ledger");
    let indexes = count(
        &env.pool,
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'scan_status'
            AND indexname IN ('scan_status_subscription', 'scan_status_completed', 'scan_status_ended')",
    )
    .await;
    assert_eq!(indexes, 3, "the rebuilt table has the console's indexes");
    let version: i32 =
        sqlx::query_scalar("SELECT version FROM projections WHERE name = 'scan_status'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(version, 3);
    let mut conn = env.db.owner.owner_connection().await.unwrap();
    assert!(rebuild::verify(&mut conn, "scan_status", &mut quiet)
        .await
        .unwrap()
        .differences
        .is_empty());
    assert_projection_matches_ledger(&env).await;
}

/// Import `n` completed scans spread over `subs` (three findings each, from a pool of
/// resources so findings come and go), dated in 2024, as a backfill would.
async fn seed_history(ledger: &Ledger, subs: &[String], n: usize) {
    use scanledger::domain::*;
    use scanledger::ledger::NewEvent;
    let start = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let origin = |i: usize| {
        Some(Origin {
            backfilled_from: "seed".into(),
            occurred_at: start + chrono::Duration::minutes(i as i64),
        })
    };
    let worker = Some(WorkerId::new("seed"));
    let streams: Vec<Vec<NewEvent>> = (0..n)
        .map(|i| {
            let scan_id = ScanId::new();
            let findings: Vec<Finding> = (0..3)
                .map(|k| {
                    finding(
                        &format!("rule-{k}"),
                        &format!("res-{}", (i * 7 + k) % 40),
                        Severity::High,
                        "storage",
                    )
                })
                .collect();
            let mut request = requested(1);
            request.subscription_id = SubscriptionId::parse(&subs[i % subs.len()]).unwrap();
            request.origin = origin(i);
            let at = |version: i32, event| NewEvent {
                scan_id,
                expected_version: version,
                attempt: if version == 0 { 0 } else { 1 },
                worker_id: if version == 0 { None } else { worker.clone() },
                event,
            };
            vec![
                at(0, Event::Requested(request)),
                at(
                    1,
                    Event::Claimed(Claimed {
                        lease_ms: 1,
                        origin: origin(i),
                    }),
                ),
                at(
                    2,
                    Event::Completed(Completed {
                        summary: ScanSummary {
                            findings: 3,
                            ..Default::default()
                        },
                        findings: findings.into(),
                        origin: origin(i),
                    }),
                ),
            ]
        })
        .collect();
    for chunk in streams.chunks(1_000) {
        ledger.import(chunk.to_vec()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_every_projection_while_worker_processes_complete_scans_times_out_nothing() {
    use scanledger::domain::{ScanId, SubscriptionId};
    use scanledger::ledger::NewScan;
    let env = env().await;
    let subs: Vec<String> = (0..6).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    // Enough history that one replay outlasts a lease: a rebuild that held its lock for
    // the whole replay (as finding_history's once did) would time live attempts out.
    const SEEDED: usize = 8_000;
    let seeding = std::time::Instant::now();
    seed_history(&env.ledger, &subs, SEEDED).await;
    eprintln!("seeded {SEEDED} scans in {:?}", seeding.elapsed());

    // Two worker processes on a short lease run scans that store findings (the demo
    // tenant, with the whole catalogue) across the six subscriptions.
    let demo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/tenant");
    let source = format!("fixture:{}?delay_ms=50", demo.display());
    let lease = [
        "--lease",
        "2s",
        "--heartbeat",
        "500ms",
        "--concurrency",
        "4",
    ];
    let workers: Vec<Killed> = (0..2)
        .map(|i| {
            Killed(
                Command::new(BIN)
                    .args([
                        "worker",
                        "--source",
                        &source,
                        "--worker-id",
                        &format!("live-{i}"),
                    ])
                    .args(lease)
                    .env("DATABASE_URL", &env.db.url)
                    .env("RUST_LOG", "warn")
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    const LIVE: usize = 1_000;
    let live: Vec<NewScan> = (0..LIVE)
        .map(|i| {
            let mut request = requested(1);
            request.subscription_id = SubscriptionId::parse(&subs[i % subs.len()]).unwrap();
            NewScan {
                scan_id: ScanId::new(),
                request,
            }
        })
        .collect();
    env.ledger.request(live).await.unwrap();

    // Once the workers are completing scans, rebuild both projections, one after the
    // other, until the live scans are done; each projection's rebuild must overlap
    // completions (counted in the database) at least once.
    wait_until(
        "the workers complete scans",
        Duration::from_secs(120),
        || async { count_status(&env.pool, "completed").await >= (SEEDED + 20) as i64 },
    )
    .await;
    let completions = || {
        count(
            &env.pool,
            "SELECT count(*) FROM scan_events WHERE kind = 'Completed'",
        )
    };
    let mut overlapped = std::collections::BTreeMap::new();
    let mut rebuilds = 0;
    while count_status(&env.pool, "completed").await < (SEEDED + LIVE) as i64 {
        for name in ["finding_history", "scan_status"] {
            let before = completions().await;
            let started = std::time::Instant::now();
            let out = cli(&env.db.owner_url, &["projections", "rebuild", name]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("rebuild {name}: {:?}", started.elapsed());
            rebuilds += 1;
            *overlapped.entry(name).or_insert(0) += usize::from(completions().await > before);
        }
        assert!(rebuilds < 200, "the live scans do not finish");
    }
    drop(workers);
    assert!(
        overlapped.values().all(|&n| n > 0),
        "rebuilds that overlapped completions: {overlapped:?} of {rebuilds}"
    );
    assert_eq!(
        count(
            &env.pool,
            "SELECT count(*) FROM scan_events WHERE kind = 'TimedOut'"
        )
        .await,
        0,
        "a live attempt lost its lease during a rebuild"
    );
    assert_eq!(
        count_status(&env.pool, "completed").await,
        (SEEDED + LIVE) as i64
    );
    for name in ["scan_status", "finding_history"] {
        let out = cli(&env.db.owner_url, &["projections", "verify", name]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_projection_matches_ledger(&env).await;
}

/// A child process killed when the test ends (or panics).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
