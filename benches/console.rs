//! The console's roll-ups on a ledger of 100,000 scans: the API (in this process, on a
//! real socket, authentication off) against a durable local PostgreSQL. Prints latency
//! per route; asserts nothing.
//!
//!     cargo bench --bench console                                   # 100,000 scans, 1,000 subscriptions
//!     cargo bench --bench console -- --scans 20000 --subscriptions 200
//!     cargo bench --bench console -- --index-cost 20000             # also: appends with and without the v3 indexes
//!
//! The ledger: scans requested in batches of 5,000 across the subscriptions, then claimed
//! and completed 256 at a time by one worker, in request order (97 %: three findings of
//! catalogue rules and per-rule tallies for 40 rules each), failed for good (2 %), or left
//! pending (1 %); 50 left running. One worker: concurrent workers would commit a
//! subscription's completions out of time order, and each such completion refolds the
//! subscription's finding history — a cost of its own, not what this bench measures. Then `VACUUM ANALYZE` (what autovacuum does to a ledger at rest). Each route
//! is asked 20 times to warm up, then 200 times in a row (subscriptions varying); p50,
//! p99 and max as the client sees them.
//!
//! Method and recorded figures: docs/performance.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scanledger::api::{self, ApiConfig, AppState, AuthMode};
use scanledger::domain::{
    Completed, Details, Event, Failed, FailureCode, Finding, PublicError, Requested, RuleTally,
    ScanId, ScanSummary, Severity, SubscriptionId, WorkerId,
};
use scanledger::ledger::{Claim, Ledger, NewEvent, NewScan};
use scanledger::scanner::rules::Catalogue;
use scanledger::shutdown::Shutdown;
use scanledger::testing::{TestCluster, TestDatabase};
use uuid::Uuid;

/// The path of a route's `i`-th request.
type PathOf = Box<dyn Fn(usize) -> String>;

fn arg(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

struct Rules {
    ids: Vec<(String, Severity)>,
}

fn subscription(i: usize) -> String {
    // Deterministic, spread over the id space.
    Uuid::from_u128(0x6f1c_1a9e_0000_4000_8000_0000_0000_0000 | (i as u128) << 64 | i as u128)
        .to_string()
}

fn finding(rule: &(String, Severity), sub: &str, n: usize) -> Finding {
    let resource_id = format!(
        "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st{n}"
    );
    Finding {
        fingerprint: Finding::fingerprint(&rule.0, &resource_id, ""),
        rule: Arc::new(scanledger::domain::FindingRule {
            id: rule.0.as_str().into(),
            name: "a rule".into(),
            severity: rule.1,
            category: "storage".into(),
            description: "what is wrong".into(),
            remediation: "how to fix it".into(),
            frameworks: Arc::new(serde_json::json!({"cis_azure": ["3.1"]})),
        }),
        resource_id: resource_id.into(),
        resource_name: format!("st{n}").into(),
        resource_type: "Microsoft.Storage/storageAccounts".into(),
        details: Details::from(serde_json::json!({"value": false})),
        detected_at: None,
    }
}

fn outcome(c: &Claim, worker: &WorkerId, rules: &Rules) -> NewEvent {
    let roll = c.scan_id.0.as_bytes()[0] as usize;
    let event = if roll < 5 {
        Event::Failed(Failed {
            origin: None,
            error: PublicError::new(FailureCode::CredentialsRejected, Uuid::new_v4()),
            retryable: false,
            retry_in_ms: None,
        })
    } else {
        let sub = c.subscription_id.as_str();
        let pick = |k: usize| &rules.ids[(roll + k * 7) % rules.ids.len()];
        let findings: Vec<Finding> = (0..3).map(|k| finding(pick(k), sub, k)).collect();
        let mut by_severity = BTreeMap::new();
        for f in &findings {
            *by_severity
                .entry(f.rule.severity.as_str().to_string())
                .or_insert(0u64) += 1;
        }
        let tallies = (0..40)
            .map(|k| {
                let (id, _) = pick(k);
                let failed = u64::from(k < 3);
                (
                    id.clone(),
                    RuleTally {
                        evaluated: 10,
                        failed,
                        indeterminate: u64::from(k % 11 == 5),
                        errored: 0,
                        muted: 0,
                    },
                )
            })
            .collect();
        Event::Completed(Completed {
            origin: None,
            summary: ScanSummary {
                resources_seen: 120,
                resources_by_type: BTreeMap::from([(
                    "microsoft.storage/storageaccounts".to_string(),
                    120,
                )]),
                findings: 3,
                findings_by_severity: by_severity,
                rules: tallies,
                score: Some((roll % 100) as f64 + 0.5),
                muted: 0,
            },
            findings: findings.into(),
        })
    };
    NewEvent {
        scan_id: c.scan_id,
        expected_version: c.version,
        attempt: c.attempt,
        worker_id: Some(worker.clone()),
        event,
    }
}

/// `scans` scans over `subs` subscriptions (see the module's comment). Returns seconds.
async fn generate(db: &TestDatabase, scans: usize, subs: usize, rules: &Arc<Rules>) -> f64 {
    let start = Instant::now();
    let ledger = Ledger::new(db.database.pool(4).await.unwrap());
    let pending = scans / 100;
    let mut requested = 0;
    while requested < scans - pending {
        let n = (scans - pending - requested).min(5_000);
        let batch: Vec<NewScan> = (requested..requested + n)
            .map(|i| NewScan {
                scan_id: ScanId::new(),
                request: Requested {
                    origin: None,
                    subscription_id: SubscriptionId::parse(&subscription(i % subs)).unwrap(),
                    rules: vec![],
                    priority: 0,
                    max_attempts: 1,
                    requested_by: Some("bench".into()),
                    estate: None,
                },
            })
            .collect();
        ledger.request(batch).await.unwrap();
        requested += n;
    }
    // Eight worker names, one batch each in turn (workers seen).
    for round in 0.. {
        let worker = WorkerId::new(format!("bench-w{}", round % 8));
        let claims = ledger
            .claim(&worker, 256, Duration::from_secs(3600), false)
            .await
            .unwrap();
        if claims.is_empty() {
            break;
        }
        for r in ledger
            .append_many(claims.iter().map(|c| outcome(c, &worker, rules)).collect())
            .await
            .unwrap()
        {
            r.unwrap();
        }
    }
    // Some left pending, 50 of them running.
    let tail: Vec<NewScan> = (0..pending)
        .map(|i| NewScan {
            scan_id: ScanId::new(),
            request: Requested {
                origin: None,
                subscription_id: SubscriptionId::parse(&subscription(i % subs)).unwrap(),
                rules: vec![],
                priority: 0,
                max_attempts: 1,
                requested_by: Some("bench".into()),
                estate: None,
            },
        })
        .collect();
    for chunk in tail.chunks(5_000) {
        ledger.request(chunk.to_vec()).await.unwrap();
    }
    ledger
        .claim(
            &WorkerId::new("bench-running"),
            50.min(pending),
            Duration::from_secs(3600),
            false,
        )
        .await
        .unwrap();
    start.elapsed().as_secs_f64()
}

async fn vacuum(db: &TestDatabase) {
    let mut owner = db.owner.owner_connection().await.unwrap();
    sqlx::raw_sql("VACUUM ANALYZE")
        .execute(&mut owner)
        .await
        .unwrap();
}

/// p50, p99, max (ms) of `n` GETs of the paths `path(i)` yields.
async fn measure(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    path: impl Fn(usize) -> String,
) -> (f64, f64, f64, usize) {
    for i in 0..20 {
        let r = http.get(format!("{base}{}", path(i))).send().await.unwrap();
        assert!(r.status().is_success(), "{}: {}", path(i), r.status());
        r.bytes().await.unwrap();
    }
    let mut ms = Vec::with_capacity(n);
    let mut bytes = 0;
    for i in 0..n {
        let t = Instant::now();
        let r = http
            .get(format!("{base}{}", path(i + 20)))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        bytes = r.bytes().await.unwrap().len();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let p = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    (p(0.5), p(0.99), *ms.last().unwrap(), bytes)
}

#[tokio::main]
async fn main() {
    let scans = arg("--scans").unwrap_or(100_000);
    let subs = arg("--subscriptions").unwrap_or(1_000);
    let cluster = TestCluster::shared(&std::env::temp_dir().join("scanledger-bench-console"), true);
    println!(
        "scanledger console benchmark: {} cores, durable PostgreSQL, {scans} scans over {subs} subscriptions",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let catalogue = Catalogue::embedded().unwrap();
    let rules = Arc::new(Rules {
        ids: catalogue
            .rules()
            .iter()
            .map(|r| (r.meta.id.clone(), r.meta.severity))
            .collect(),
    });

    if let Some(n) = arg("--index-cost") {
        // Appends with the console's indexes (as migrated) and without them, alternating.
        let mut with = Vec::new();
        let mut without = Vec::new();
        for indexed in [true, false, false, true] {
            let db = cluster.fresh_database().await.unwrap();
            if !indexed {
                let mut owner = db.owner.owner_connection().await.unwrap();
                sqlx::raw_sql(
                    "DROP INDEX scan_status_subscription, scan_status_completed, scan_status_ended",
                )
                .execute(&mut owner)
                .await
                .unwrap();
            }
            let secs = generate(&db, n, subs.min(n), &rules).await;
            let rate = n as f64 / secs;
            println!(
                "appends     {:<24} {n} scans in {secs:>6.2}s: {rate:>6.0} scans/s",
                if indexed {
                    "with the v3 indexes"
                } else {
                    "without them"
                }
            );
            if indexed { &mut with } else { &mut without }.push(rate);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "appends     mean {:.0} vs {:.0} scans/s: the indexes cost {:.1} % of append throughput",
            mean(&with),
            mean(&without),
            (1.0 - mean(&with) / mean(&without)) * 100.0
        );
    }

    let db = cluster.fresh_database().await.unwrap();
    let secs = generate(&db, scans, subs, &rules).await;
    println!("ledger      {scans} scans written in {secs:.1}s");
    vacuum(&db).await;
    let pool = db.database.pool(8).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, shutdown) = Shutdown::new();
    let state = AppState::new(Ledger::new(pool), AuthMode::Disabled, ApiConfig::default());
    tokio::spawn(api::serve(listener, state, shutdown));
    scanledger::install_crypto_provider();
    let http = reqwest::Client::new();
    let first: serde_json::Value = http
        .get(format!("{base}/api/subscriptions?limit=500"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursors: Vec<String> = first["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subscription_id"].as_str().unwrap().to_string())
        .collect();
    let sub = move |i: usize| subscription((i * 37) % subs);
    let routes: Vec<(&str, PathOf)> = vec![
        (
            "GET /api/subscriptions?limit=100",
            Box::new(|_| "/api/subscriptions?limit=100".to_string()),
        ),
        (
            "GET /api/subscriptions?limit=100&cursor=…",
            Box::new(move |i| {
                format!(
                    "/api/subscriptions?limit=100&cursor={}",
                    cursors[i % cursors.len()]
                )
            }),
        ),
        (
            "GET /api/subscriptions/{id}/posture?limit=100",
            Box::new(move |i| format!("/api/subscriptions/{}/posture?limit=100", sub(i))),
        ),
        (
            "GET /api/subscriptions/{id}/compliance",
            Box::new(move |i| format!("/api/subscriptions/{}/compliance", sub(i))),
        ),
        (
            "GET …/compliance?framework=cis_azure&format=csv",
            Box::new(move |i| {
                format!(
                    "/api/subscriptions/{}/compliance?framework=cis_azure&format=csv",
                    sub(i)
                )
            }),
        ),
        (
            "GET /api/operations",
            Box::new(|_| "/api/operations".to_string()),
        ),
        (
            "GET /api/operations?window=604800",
            Box::new(|_| "/api/operations?window=604800".to_string()),
        ),
        (
            "GET /api/scans?subscription_id=…&limit=50",
            Box::new(move |i| format!("/api/scans?subscription_id={}&limit=50", sub(i))),
        ),
    ];
    println!(
        "{:<48} {:>8} {:>8} {:>8} {:>9}",
        "route (200 requests each)", "p50 ms", "p99 ms", "max ms", "bytes"
    );
    for (name, path) in &routes {
        let (p50, p99, max, bytes) = measure(&http, &base, 200, path).await;
        println!("{name:<48} {p50:>8.2} {p99:>8.2} {max:>8.2} {bytes:>9}");
    }
}
