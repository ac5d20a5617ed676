//! The console's roll-ups (subscriptions, posture, compliance, operations) and the
//! console's own files (`/ui`), served with a strict Content-Security-Policy.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use crate::{problem, random_sub};
use scanledger::domain::{
    Completed, Event, Failed, FailureCode, Finding, PublicError, ScanId, ScanSummary, Severity,
    WorkerId,
};
use scanledger::ledger::NewEvent;
use serde_json::json;

/// Request a scan of `sub` through the API and claim it as `worker` (it must be the only
/// claimable scan).
async fn claimed(app: &App, sub: &str, worker: &str) -> (ScanId, i32) {
    let id = app.trigger(sub).await;
    let claims = app
        .env
        .ledger
        .claim(&WorkerId::new(worker), 1, Duration::from_secs(300), true)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].scan_id, id, "the only claimable scan");
    (id, claims[0].version)
}

/// A completed scan of `sub` with this score and these findings.
async fn completed(
    app: &App,
    sub: &str,
    worker: &str,
    score: Option<f64>,
    findings: Vec<Finding>,
) -> ScanId {
    let (id, version) = claimed(app, sub, worker).await;
    let mut by_severity = BTreeMap::new();
    for f in &findings {
        *by_severity
            .entry(f.rule.severity.as_str().to_string())
            .or_insert(0) += 1;
    }
    app.env
        .ledger
        .append(NewEvent {
            scan_id: id,
            expected_version: version,
            attempt: 1,
            worker_id: Some(WorkerId::new(worker)),
            event: Event::Completed(Completed {
                origin: None,
                summary: ScanSummary {
                    resources_seen: 10,
                    findings: findings.len() as u64,
                    findings_by_severity: by_severity,
                    score,
                    ..Default::default()
                },
                findings: findings.into(),
            }),
        })
        .await
        .unwrap();
    id
}

/// A scan of `sub` whose first attempt failed with `code`: retried later (`retry`) or
/// failed for good.
async fn failed(app: &App, sub: &str, worker: &str, code: FailureCode, retry: bool) -> ScanId {
    let (id, version) = claimed(app, sub, worker).await;
    app.env
        .ledger
        .append(NewEvent {
            scan_id: id,
            expected_version: version,
            attempt: 1,
            worker_id: Some(WorkerId::new(worker)),
            event: Event::Failed(Failed {
                origin: None,
                error: PublicError::new(code, uuid::Uuid::new_v4()),
                retryable: retry,
                retry_in_ms: retry.then_some(3_600_000),
            }),
        })
        .await
        .unwrap();
    id
}

fn findings(n: usize, severity: Severity) -> Vec<Finding> {
    (0..n)
        .map(|i| finding("AZ-STG-001", &format!("st{i}"), severity, "storage"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_come_in_id_order_with_their_latest_scan_and_latest_score() {
    let app = spawn_app().await;
    let mut subs: Vec<String> = (0..3).map(|_| random_sub()).collect();
    subs.sort();
    let (a, b, c) = (&subs[0], &subs[1], &subs[2]);
    completed(&app, a, "w", Some(40.0), findings(3, Severity::High)).await;
    let a2 = completed(&app, a, "w", Some(75.5), findings(1, Severity::Low)).await;
    failed(&app, c, "w", FailureCode::CredentialsRejected, false).await;
    let b1 = app.trigger(b).await;
    // Requested after a's completions: a's latest scan is this pending one.
    let a3 = app.trigger(a).await;

    let page = app.json("/api/subscriptions").await;
    assert_eq!(page["count"], 3);
    assert!(page["next_cursor"].is_null());
    let got: Vec<&str> = page["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subscription_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [a.as_str(), b.as_str(), c.as_str()]);
    let sa = &page["subscriptions"][0];
    assert_eq!(sa["latest_scan"]["scan_id"], a3.to_string());
    assert_eq!(sa["latest_scan"]["status"], "pending");
    assert_eq!(sa["latest_completed"]["scan_id"], a2.to_string());
    assert_eq!(sa["latest_completed"]["score"], 75.5);
    assert_eq!(sa["latest_completed"]["findings"], 1);
    assert_eq!(sa["latest_completed"]["findings_by_severity"]["low"], 1);
    let sb = &page["subscriptions"][1];
    assert_eq!(sb["latest_scan"]["scan_id"], b1.to_string());
    assert!(sb["latest_completed"].is_null(), "{sb}");
    assert_eq!(page["subscriptions"][2]["latest_scan"]["status"], "failed");

    // Pages.
    let first = app.json("/api/subscriptions?limit=2").await;
    assert_eq!(first["count"], 2);
    assert_eq!(first["next_cursor"], b.as_str());
    let rest = app
        .json(&format!("/api/subscriptions?limit=2&cursor={b}"))
        .await;
    assert_eq!(rest["count"], 1);
    assert_eq!(rest["subscriptions"][0]["subscription_id"], c.as_str());
    assert!(rest["next_cursor"].is_null());

    for (q, field) in [
        ("cursor=x", "cursor"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("colour=red", "colour"),
    ] {
        let body = problem(app.get(&format!("/api/subscriptions?{q}")).await, 400).await;
        assert_eq!(body["field"], field, "{q}");
    }
    let resp = app
        .http
        .get(app.url("/api/subscriptions"))
        .send()
        .await
        .unwrap();
    problem(resp, 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posture_is_each_completed_scan_s_score_and_findings_newest_first() {
    let app = spawn_app().await;
    let sub = random_sub();
    let mut ids = Vec::new();
    for (score, n) in [(50.0, 4), (70.0, 2), (90.0, 1)] {
        ids.push(completed(&app, &sub, "w", Some(score), findings(n, Severity::Medium)).await);
    }
    // Neither a failed nor a pending scan is a point.
    failed(&app, &sub, "w", FailureCode::Throttled, false).await;
    app.trigger(&sub).await;

    let page = app.json(&format!("/api/subscriptions/{sub}/posture")).await;
    assert_eq!(page["subscription_id"], sub.as_str());
    assert_eq!(page["count"], 3);
    let points = page["points"].as_array().unwrap();
    let got: Vec<(String, f64, i64)> = points
        .iter()
        .map(|p| {
            (
                p["scan_id"].as_str().unwrap().to_string(),
                p["score"].as_f64().unwrap(),
                p["findings"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (ids[2].to_string(), 90.0, 1),
            (ids[1].to_string(), 70.0, 2),
            (ids[0].to_string(), 50.0, 4)
        ]
    );
    assert_eq!(points[2]["findings_by_severity"]["medium"], 4);
    assert_eq!(points[0]["resources_seen"], 10);
    let times: Vec<&str> = points
        .iter()
        .map(|p| p["finished_at"].as_str().unwrap())
        .collect();
    let scan = app.json(&format!("/api/scans/{}", ids[2])).await;
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(times[0]).unwrap(),
        chrono::DateTime::parse_from_rfc3339(scan["finished_at"].as_str().unwrap()).unwrap()
    );

    // Pages, and a lower bound in time.
    let first = app
        .json(&format!("/api/subscriptions/{sub}/posture?limit=2"))
        .await;
    assert_eq!(first["count"], 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app
        .json(&format!(
            "/api/subscriptions/{sub}/posture?limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(rest["count"], 1);
    assert_eq!(rest["points"][0]["scan_id"], ids[0].to_string());
    assert!(rest["next_cursor"].is_null());
    let since = urlencode(times[1]);
    let recent = app
        .json(&format!("/api/subscriptions/{sub}/posture?since={since}"))
        .await;
    assert_eq!(recent["count"], 2);

    problem(
        app.get(&format!("/api/subscriptions/{}/posture", random_sub()))
            .await,
        404,
    )
    .await;
    let body = problem(app.get("/api/subscriptions/nope/posture").await, 400).await;
    assert_eq!(body["field"], "id");
    for (q, field) in [
        ("cursor=zzz", "cursor"),
        ("since=yesterday", "since"),
        ("limit=1001", "limit"),
    ] {
        let body = problem(
            app.get(&format!("/api/subscriptions/{sub}/posture?{q}"))
                .await,
            400,
        )
        .await;
        assert_eq!(body["field"], field, "{q}");
    }
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// The embedded catalogue's rules mapped to `framework`: control → rule ids.
fn mapped(framework: &str) -> BTreeMap<String, BTreeSet<String>> {
    let catalogue = scanledger::scanner::rules::Catalogue::embedded().unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in catalogue.rules() {
        for control in r.meta.frameworks.get(framework).into_iter().flatten() {
            out.entry(control.clone())
                .or_default()
                .insert(r.meta.id.clone());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_counts_each_rule_s_resources_on_the_latest_completed_scan() {
    use scanledger::scanner::fixture::FixtureSource;
    use scanledger::scanner::rules::Catalogue;
    use scanledger::scanner::RuleScan;
    let app = spawn_app().await;
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let source = Arc::new(FixtureSource::new(repo.join("demo/tenant"), Duration::ZERO));
    let job = Arc::new(RuleScan::new(
        source,
        Arc::new(Catalogue::embedded().unwrap()),
    ));
    let mut worker = spawn_worker(&app.env.ledger, job, fast_config("compliance"));
    let id = app.trigger(SUB).await;
    wait_finished(&mut worker, id, Duration::from_secs(60)).await;
    worker.stop().await;
    let scan = app.json(&format!("/api/scans/{id}")).await;
    let tallies = scan["summary"]["rules"].as_object().unwrap().clone();

    let report = app
        .json(&format!("/api/subscriptions/{SUB}/compliance"))
        .await;
    assert_eq!(report["scan_id"], id.to_string());
    assert_eq!(report["subscription_id"], SUB);
    let names: Vec<&str> = report["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["framework"].as_str().unwrap())
        .collect();
    assert_eq!(names, scanledger::scanner::rules::FRAMEWORKS);

    // Each rule's failing resources, as the scan's findings list them.
    let mut failing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let all = app
        .json(&format!("/api/scans/{id}/findings?limit=1000"))
        .await;
    assert!(all["next_cursor"].is_null());
    for f in all["findings"].as_array().unwrap() {
        failing
            .entry(f["rule_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(f["resource_id"].as_str().unwrap().to_lowercase());
    }
    let subscription_rules: BTreeSet<String> = Catalogue::embedded()
        .unwrap()
        .rules()
        .iter()
        .filter(|r| r.meta.scope == scanledger::scanner::rules::Scope::Subscription)
        .map(|r| r.meta.id.clone())
        .collect();
    assert!(!subscription_rules.is_empty());
    let mut failed_controls = 0;
    for fw in report["frameworks"].as_array().unwrap() {
        let name = fw["framework"].as_str().unwrap();
        let expected = mapped(name);
        let controls = fw["controls"].as_array().unwrap();
        let got: BTreeMap<String, BTreeSet<String>> = controls
            .iter()
            .map(|c| {
                let rules = c["rules"].as_array().unwrap().iter();
                (
                    c["control_id"].as_str().unwrap().to_string(),
                    rules
                        .map(|r| r["rule_id"].as_str().unwrap().to_string())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(got, expected, "{name}: the catalogue's mapping, whole");
        for c in controls {
            let mut sums = [0u64; 4];
            for r in c["rules"].as_array().unwrap() {
                let rule = r["rule_id"].as_str().unwrap();
                let counts =
                    ["pass", "fail", "indeterminate", "muted"].map(|k| r[k].as_u64().unwrap());
                let evaluated = tallies
                    .get(rule)
                    .map_or(0, |t| t["evaluated"].as_u64().unwrap());
                assert_eq!(r["evaluated"], evaluated, "{rule}");
                assert_eq!(
                    counts.iter().sum::<u64>(),
                    evaluated,
                    "{rule}: each resource once"
                );
                let with_findings = failing.get(rule).map_or(0, |s| s.len() as u64);
                let expected_fail = if subscription_rules.contains(rule) {
                    // An existence check: one check, the subscription.
                    u64::from(with_findings > 0)
                } else {
                    with_findings
                };
                assert_eq!(
                    counts[1], expected_fail,
                    "{rule}: fail is the resources (or the subscription) with findings"
                );
                assert_eq!(counts[3], 0, "no finding is muted");
                for (s, n) in sums.iter_mut().zip(counts) {
                    *s += n;
                }
            }
            let got = ["pass", "fail", "indeterminate", "muted"].map(|k| c[k].as_u64().unwrap());
            assert_eq!(
                got, sums,
                "control {}: the sum of its rules",
                c["control_id"]
            );
            let state = c["state"].as_str().unwrap();
            assert_eq!(state == "fail", sums[1] > 0);
            failed_controls += usize::from(state == "fail");
        }
    }
    assert!(failed_controls > 0, "the demo tenant fails some controls");

    // A mute in effect moves a rule's failing resources from fail to muted, at once.
    let (rule, resources) = failing
        .iter()
        .find(|(id, r)| r.len() > 1 && !subscription_rules.contains(*id))
        .map(|(k, v)| (k.clone(), v.len() as u64))
        .expect("a rule failing on two resources or more");
    let mute = json!({"rule_id": rule, "resource_pattern": "*", "reason": "accepted risk"});
    assert_eq!(
        app.post("/api/mutes", &mute.to_string()).await.status(),
        201
    );
    let muted = app
        .json(&format!("/api/subscriptions/{SUB}/compliance"))
        .await;
    let mut seen = 0;
    for fw in muted["frameworks"].as_array().unwrap() {
        for c in fw["controls"].as_array().unwrap() {
            for r in c["rules"].as_array().unwrap() {
                if r["rule_id"] == rule.as_str() {
                    seen += 1;
                    assert_eq!(
                        (r["fail"].as_u64(), r["muted"].as_u64()),
                        (Some(0), Some(resources)),
                        "{r}"
                    );
                    assert_eq!(r["state"], "muted", "{r}");
                } else {
                    assert_eq!(r["muted"], 0, "{r}");
                }
            }
        }
    }
    assert!(seen > 0, "{rule} is mapped to some control");

    // One framework, and the same as CSV.
    let nist = app
        .json(&format!(
            "/api/subscriptions/{SUB}/compliance?framework=nist_csf"
        ))
        .await;
    assert_eq!(nist["frameworks"].as_array().unwrap().len(), 1);
    let resp = app
        .get(&format!(
            "/api/subscriptions/{SUB}/compliance?framework=nist_csf&format=csv"
        ))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        resp.headers()["content-disposition"],
        format!("attachment; filename=\"compliance-{SUB}-nist_csf.csv\"").as_str()
    );
    let csv = resp.text().await.unwrap();
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("framework,control_id,control_state,rule_id,"));
    let pairs: usize = nist["frameworks"][0]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rules"].as_array().unwrap().len())
        .sum();
    assert_eq!(lines.count(), pairs, "one row per (control, rule)");

    let body = problem(
        app.get(&format!(
            "/api/subscriptions/{SUB}/compliance?framework=pci"
        ))
        .await,
        400,
    )
    .await;
    assert_eq!(body["field"], "framework");
    problem(
        app.get(&format!("/api/subscriptions/{}/compliance", random_sub()))
            .await,
        404,
    )
    .await;
    // A newer completed scan is the one reported.
    let newer = completed(&app, SUB, "w", None, vec![]).await;
    let report = app
        .json(&format!(
            "/api/subscriptions/{SUB}/compliance?framework=cis_azure"
        ))
        .await;
    assert_eq!(report["scan_id"], newer.to_string());

    let pending_only = random_sub();
    app.trigger(&pending_only).await;
    problem(
        app.get(&format!("/api/subscriptions/{pending_only}/compliance"))
            .await,
        409,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_show_the_queue_running_attempts_workers_and_failures() {
    let app = spawn_app().await;
    let ledger = &app.env.ledger;
    completed(&app, &random_sub(), "w-done", Some(90.0), vec![]).await;
    failed(
        &app,
        &random_sub(),
        "w-fail",
        FailureCode::CredentialsRejected,
        false,
    )
    .await;
    let retrying = failed(&app, &random_sub(), "w-retry", FailureCode::Throttled, true).await;
    let (running, _) = claimed(&app, &random_sub(), "w-run").await;
    let cancelled = app.trigger(&random_sub()).await;
    app.post(&format!("/api/scans/{cancelled}/cancel"), "{}")
        .await;
    let queued = app.trigger(&random_sub()).await;

    let ops = app.json("/api/operations").await;
    assert_eq!(
        ops["scans"],
        json!({"pending": 2, "running": 1, "completed": 1, "failed": 1, "cancelled": 1})
    );
    assert_eq!(ops["window_seconds"], 900);
    assert_eq!(ops["queue"]["claimable"], 1, "{ops}");
    assert_eq!(ops["queue"]["backing_off"], 1);
    assert!(ops["queue"]["oldest_claimable_seconds"].as_f64().unwrap() >= 0.0);
    let queued_at = app.json(&format!("/api/scans/{queued}")).await["requested_at"].clone();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(
            ops["queue"]["oldest_claimable_since"].as_str().unwrap()
        )
        .unwrap(),
        chrono::DateTime::parse_from_rfc3339(queued_at.as_str().unwrap()).unwrap()
    );

    let run = &ops["running"][0];
    assert_eq!(ops["running"].as_array().unwrap().len(), 1);
    assert_eq!(run["scan_id"], running.to_string());
    assert_eq!(run["worker_id"], "w-run");
    assert_eq!(run["attempt"], 1);
    let left = run["lease_seconds_left"].as_f64().unwrap();
    assert!(left > 0.0 && left <= 300.0, "{left}");

    let workers: BTreeMap<String, (i64, i64, i64)> = ops["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["worker_id"].as_str().unwrap().to_string(),
                (
                    w["running"].as_i64().unwrap(),
                    w["completed"].as_i64().unwrap(),
                    w["failed"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        workers,
        BTreeMap::from([
            ("w-run".to_string(), (1, 0, 0)),
            ("w-done".to_string(), (0, 1, 0)),
            ("w-fail".to_string(), (0, 0, 1)),
        ]),
        "a worker whose attempt will be retried is not counted as seen by its scan's row"
    );
    assert_eq!(
        ops["workers_sample"], 2,
        "the completed and the failed scan"
    );
    let failures: BTreeMap<String, (i64, i64)> = ops["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                (
                    f["failed"].as_i64().unwrap(),
                    f["retrying"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        failures,
        BTreeMap::from([
            ("credentials_rejected".to_string(), (1, 0)),
            ("throttled".to_string(), (0, 1)),
        ])
    );
    let retry_row = status_of(ledger, retrying).await;
    assert_eq!(retry_row.status, scanledger::projection::ScanState::Pending);

    // The window bounds what ended; running attempts and retries show whatever the window.
    let narrow = app.json("/api/operations?window=1&limit=1").await;
    assert_eq!(narrow["window_seconds"], 1);
    assert!(narrow["running"].as_array().unwrap().len() <= 1);
    for (q, field) in [
        ("window=0", "window"),
        ("window=604801", "window"),
        ("limit=0", "limit"),
        ("window=soon", "window"),
    ] {
        let body = problem(app.get(&format!("/api/operations?{q}")).await, 400).await;
        assert_eq!(body["field"], field, "{q}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_without_a_token_under_a_strict_csp() {
    let app = spawn_app().await;
    let csp = scanledger::api::console::CSP;
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe"), "{csp}");
    let mut texts = Vec::new();
    for path in ["/ui", "/ui/"]
        .into_iter()
        .map(String::from)
        .chain(scanledger::api::console::asset_names().map(|n| format!("/ui/{n}")))
    {
        let resp = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        assert_eq!(h["content-security-policy"], csp, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        let ct = h["content-type"].to_str().unwrap().to_string();
        let want = if path.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else if path.ends_with(".svg") {
            "image/svg+xml"
        } else if path.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            "text/html; charset=utf-8"
        };
        assert_eq!(ct, want, "{path}");
        texts.push((path, resp.text().await.unwrap()));
    }
    problem(
        app.http.get(app.url("/ui/nope.js")).send().await.unwrap(),
        404,
    )
    .await;
    problem(
        app.http
            .get(app.url("/ui/..%2F..%2FCargo.toml"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    // What the CSP forbids is not in the files to begin with.
    for (path, text) in &texts {
        let lower = text.to_lowercase();
        for banned in [
            "<style",
            " style=",
            "innerhtml",
            "eval(",
            "new function",
            "javascript:",
        ] {
            assert!(!lower.contains(banned), "{path} contains {banned:?}");
        }
        if path == "/ui" {
            for script in lower.split("<script").skip(1) {
                let tag = script.split('>').next().unwrap();
                assert!(tag.contains("src=\"/ui/"), "inline script in {path}: {tag}");
            }
            assert!(
                !regex_like_on_handler(&lower),
                "an on…= handler attribute in {path}"
            );
        }
    }

    // The page calls only routes the API documents.
    let doc = scanledger::api::openapi::document();
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let mut called = BTreeSet::new();
    for (path, text) in &texts {
        for part in text
            .split(['\'', '`', '"'])
            .filter(|s| s.starts_with("/api/"))
        {
            let route = normalize(part);
            assert!(
                documented.contains(&route),
                "{path} calls {part} ({route}), which the API does not document"
            );
            called.insert(route);
        }
    }
    for route in [
        "/api/scans",
        "/api/scans/{id}",
        "/api/scans/{id}/events",
        "/api/scans/{id}/proof",
        "/api/scans/{id}/findings",
        "/api/scans/{id}/diff",
        "/api/scans/{id}/report",
        "/api/subscriptions",
        "/api/subscriptions/{id}/posture",
        "/api/subscriptions/{id}/compliance",
        "/api/subscriptions/{id}/findings/history",
        "/api/operations",
    ] {
        assert!(called.contains(route), "the console never calls {route}");
    }
}

/// `/api/scans/${id}/events?x=1` → `/api/scans/{id}/events`.
fn normalize(s: &str) -> String {
    let path = s.split('?').next().unwrap();
    path.split('/')
        .map(|seg| if seg.contains("${") { "{id}" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
        .trim_end_matches('/')
        .to_string()
}

/// An HTML attribute like ` onclick=` (event handlers inline are scripts too).
fn regex_like_on_handler(html: &str) -> bool {
    html.split(|c: char| c.is_whitespace()).any(|w| {
        w.starts_with("on")
            && w.contains('=')
            && w[2..]
                .split('=')
                .next()
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_alphabetic())
    })
}

#[test]
fn route_normalization_reads_template_literals() {
    assert_eq!(
        normalize("/api/scans/${id}/events"),
        "/api/scans/{id}/events"
    );
    assert_eq!(
        normalize("/api/subscriptions/${encodeURIComponent(id)}/posture?limit=200"),
        "/api/subscriptions/{id}/posture"
    );
    assert_eq!(normalize("/api/scans?"), "/api/scans");
    assert!(regex_like_on_handler("<a onclick=\"x\">"));
    assert!(!regex_like_on_handler("<p>one=two</p>"));
}
