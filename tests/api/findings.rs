//! Findings: per scan and latest per subscription (OpenShield's shape), each finding's
//! history across scans, and diffs between scans.

use std::sync::Arc;

use crate::common::*;
use crate::{problem, random_sub};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_per_scan_and_latest_per_subscription_with_openshield_fields() {
    use scanledger::domain::Severity;
    let app = spawn_app().await;
    let old = app.trigger(SUB).await;
    let job = Arc::new(ScriptedJob::new(Behaviour::Succeed));
    run_scripted(
        &app.env.ledger,
        &job,
        old,
        [Behaviour::Find(vec![finding(
            "storage-https-only",
            "old",
            Severity::High,
            "storage",
        )])],
        "finder",
    )
    .await;
    // Its worker stopped: no worker runs while the next scan is requested and scripted.
    let new = app.trigger(SUB).await;
    let mut many: Vec<_> = (0..7)
        .map(|i| {
            finding(
                "storage-https-only",
                &format!("st{i}"),
                Severity::High,
                "storage",
            )
        })
        .collect();
    many.push(finding(
        "nsg-ssh-open",
        "nsg1",
        Severity::Critical,
        "network",
    ));
    run_scripted(
        &app.env.ledger,
        &job,
        new,
        [Behaviour::Find(many)],
        "finder-2",
    )
    .await;

    let all = app.json(&format!("/api/scans/{new}/findings")).await;
    assert_eq!(all["count"], 8);
    let scan = app.json(&format!("/api/scans/{new}")).await;
    assert_eq!(
        scan["total_findings"], 8,
        "the summary agrees with the stored findings"
    );
    let critical = app
        .json(&format!("/api/scans/{new}/findings?severity=critical"))
        .await;
    assert_eq!(critical["count"], 1);
    assert_eq!(critical["findings"][0]["rule_id"], "nsg-ssh-open");
    assert_eq!(
        app.json(&format!("/api/scans/{new}/findings?category=network"))
            .await["count"],
        1
    );
    assert_eq!(
        app.json(&format!(
            "/api/scans/{new}/findings?rule_id=storage-https-only"
        ))
        .await["count"],
        7
    );
    // Pages.
    let first = app
        .json(&format!("/api/scans/{new}/findings?limit=5"))
        .await;
    assert_eq!(first["count"], 5);
    let next = first["next_cursor"].as_i64().unwrap();
    let second = app
        .json(&format!("/api/scans/{new}/findings?limit=5&cursor={next}"))
        .await;
    assert_eq!(second["count"], 3);
    assert!(second["next_cursor"].is_null());
    // OpenShield: latest completed scan per subscription, OpenShield field names.
    let latest = app.json("/api/findings").await;
    assert_eq!(
        latest["count"], 8,
        "only the latest scan of the subscription"
    );
    let f = &latest["findings"][0];
    for field in [
        "id",
        "scan_id",
        "rule_id",
        "rule_name",
        "severity",
        "category",
        "resource_id",
        "resource_name",
        "resource_type",
        "description",
        "remediation",
        "frameworks",
        "metadata",
        "detected_at",
    ] {
        assert!(f.get(field).is_some(), "finding lacks {field}: {f}");
    }
    assert_eq!(f["scan_id"], new.to_string());
    let by_scan = app
        .json(&format!(
            "/api/findings?scan_id={old}&severity=high&category=storage&rule_id=storage-https-only"
        ))
        .await;
    assert_eq!(by_scan["count"], 1);
    let p = problem(app.get("/api/findings?severity=urgent").await, 400).await;
    assert_eq!(p["field"], "severity");
    problem(
        app.get(&format!("/api/scans/{}/findings", uuid::Uuid::new_v4()))
            .await,
        404,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_history_and_scan_diffs_for_auditors() {
    use scanledger::domain::Severity;
    let app = spawn_app().await;
    let (a, b, c) = (
        finding("storage-https-only", "st1", Severity::High, "storage"),
        finding("nsg-ssh-open", "nsg1", Severity::Critical, "network"),
        finding("kv-purge-protection", "kv1", Severity::Medium, "keyvault"),
    );
    let job = Arc::new(ScriptedJob::new(Behaviour::Succeed));
    let mut w = spawn_worker(&app.env.ledger, job.clone(), fast_config("auditor"));
    let mut scans = Vec::new();
    for plan in [
        vec![a.clone(), c.clone()],
        vec![a.clone(), b.clone()],
        vec![a.clone()],
    ] {
        let id = request_scripted(&app.env.ledger, &job, &mut w, [Behaviour::Find(plan)]).await;
        scans.push(id);
    }
    w.stop().await;

    let h = app
        .json(&format!("/api/subscriptions/{SUB}/findings/history"))
        .await;
    assert_eq!(h["count"], 3);
    let by_rule = |rule: &str| {
        h["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule_id"] == rule)
            .unwrap()
            .clone()
    };
    let b_row = by_rule("nsg-ssh-open");
    assert_eq!(b_row["state"], "resolved");
    assert_eq!(b_row["first_seen_scan"], scans[1].to_string());
    assert_eq!(b_row["resolved_scan"], scans[2].to_string());
    assert_eq!(by_rule("storage-https-only")["state"], "open");
    let open = app
        .json(&format!(
            "/api/subscriptions/{SUB}/findings/history?state=open"
        ))
        .await;
    assert_eq!(open["count"], 1);
    let crit = app
        .json(&format!(
            "/api/subscriptions/{SUB}/findings/history?severity=critical"
        ))
        .await;
    assert_eq!(crit["count"], 1);
    let p = problem(
        app.get("/api/subscriptions/not-a-uuid/findings/history")
            .await,
        400,
    )
    .await;
    assert_eq!(p["field"], "id");

    let rules = |v: &Value, k: &str| -> Vec<String> {
        let mut r: Vec<String> = v[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule_id"].as_str().unwrap().to_string())
            .collect();
        r.sort();
        r
    };
    // Default base: the previous completed scan of the subscription.
    let d = app.json(&format!("/api/scans/{}/diff", scans[2])).await;
    assert_eq!(d["base_scan_id"], scans[1].to_string());
    assert_eq!(
        (
            rules(&d, "new"),
            rules(&d, "resolved"),
            rules(&d, "unchanged")
        ),
        (
            vec![],
            vec!["nsg-ssh-open".to_string()],
            vec!["storage-https-only".to_string()]
        )
    );
    let d = app
        .json(&format!("/api/scans/{}/diff?base={}", scans[1], scans[0]))
        .await;
    assert_eq!(rules(&d, "new"), vec!["nsg-ssh-open"]);
    assert_eq!(rules(&d, "resolved"), vec!["kv-purge-protection"]);
    assert_eq!(rules(&d, "unchanged"), vec!["storage-https-only"]);
    let first = app.json(&format!("/api/scans/{}/diff", scans[0])).await;
    assert!(first["base_scan_id"].is_null());
    assert_eq!(rules(&first, "new").len(), 2);
    // A scan that has not completed, and a base of another subscription.
    let pending = app.trigger(SUB).await;
    problem(app.get(&format!("/api/scans/{pending}/diff")).await, 409).await;
    let other = app.trigger(&random_sub()).await;
    app.post(&format!("/api/scans/{other}/cancel"), "").await;
    let p = problem(
        app.get(&format!("/api/scans/{}/diff?base={other}", scans[2]))
            .await,
        422,
    )
    .await;
    assert_eq!(p["detail"], "the base scan is of another subscription");
}

/// A diff is served a page at a time, in fingerprint order across its three lists; walking
/// the pages (by `next_cursor` or by the `Link` header) yields every finding once, and the
/// cursor keeps the base it was issued for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffs_are_paged_and_each_finding_is_served_once() {
    use scanledger::domain::Severity;
    use std::collections::BTreeMap;
    let app = spawn_app().await;
    let make = |range: std::ops::Range<usize>| -> Vec<_> {
        range
            .map(|i| {
                finding(
                    "storage-https-only",
                    &format!("st{i}"),
                    Severity::High,
                    "storage",
                )
            })
            .collect()
    };
    // base: 0..150; scan: 100..260 → resolved 0..100, unchanged 100..150, new 150..260.
    let job = Arc::new(ScriptedJob::new(Behaviour::Succeed));
    let mut w = spawn_worker(&app.env.ledger, job.clone(), fast_config("differ"));
    let base = request_scripted(
        &app.env.ledger,
        &job,
        &mut w,
        [Behaviour::Find(make(0..150))],
    )
    .await;
    let scan = request_scripted(
        &app.env.ledger,
        &job,
        &mut w,
        [Behaviour::Find(make(100..260))],
    )
    .await;
    w.stop().await;
    let expected: BTreeMap<String, &str> = make(0..260)
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let change = match i {
                0..100 => "resolved",
                100..150 => "unchanged",
                _ => "new",
            };
            (f.fingerprint, change)
        })
        .collect();

    // By next_cursor (the default base is the previous completed scan).
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut bounds: Vec<(String, String)> = Vec::new();
    let mut path = format!("/api/scans/{scan}/diff?limit=37");
    loop {
        let resp = app.get(&path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let link = resp
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        let page: Value = resp.json().await.unwrap();
        assert_eq!(page["base_scan_id"], base.to_string());
        let mut fps = Vec::new();
        for change in ["new", "resolved", "unchanged"] {
            for f in page[change].as_array().unwrap() {
                let fp = f["fingerprint"].as_str().unwrap().to_string();
                seen.push((fp.clone(), change.into()));
                fps.push(fp);
            }
        }
        let on_page = fps.len();
        assert_eq!(page["count"], on_page);
        bounds.push((
            fps.iter().min().unwrap().clone(),
            fps.iter().max().unwrap().clone(),
        ));
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(on_page, 37);
                let link = link.expect("a Link header names the next page");
                assert_eq!(
                    link,
                    format!("</api/scans/{scan}/diff?limit=37&cursor={c}>; rel=\"next\"")
                );
                path = format!("/api/scans/{scan}/diff?limit=37&cursor={c}");
            }
            None => {
                assert!(link.is_none());
                break;
            }
        }
    }
    assert_eq!(bounds.len(), 260usize.div_ceil(37));
    assert_eq!(seen.len(), 260, "each finding once");
    let got: BTreeMap<String, &str> = seen
        .iter()
        .map(|(fp, c)| (fp.clone(), c.as_str()))
        .collect();
    assert_eq!(got, expected);
    // Pages follow each other in fingerprint order (within one, the lists are split).
    for pair in bounds.windows(2) {
        assert!(pair[0].1 < pair[1].0, "pages overlap: {pair:?}");
    }

    // A cursor keeps its base; naming another base with it is refused.
    let first = app
        .json(&format!("/api/scans/{scan}/diff?base={scan}&limit=5"))
        .await;
    assert_eq!(first["unchanged"].as_array().unwrap().len(), 5);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second = app
        .json(&format!("/api/scans/{scan}/diff?cursor={cursor}&limit=5"))
        .await;
    assert_eq!(second["base_scan_id"], scan.to_string());
    assert_eq!(second["unchanged"].as_array().unwrap().len(), 5);
    let p = problem(
        app.get(&format!(
            "/api/scans/{scan}/diff?base={base}&cursor={cursor}"
        ))
        .await,
        422,
    )
    .await;
    assert_eq!(p["detail"], "the cursor was issued for another base");
    let p = problem(
        app.get(&format!("/api/scans/{scan}/diff?cursor=abc")).await,
        400,
    )
    .await;
    assert_eq!(p["field"], "cursor");
    let p = problem(
        app.get(&format!("/api/scans/{scan}/diff?limit=0")).await,
        400,
    )
    .await;
    assert_eq!(p["field"], "limit");
}
