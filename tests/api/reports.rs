//! `GET /api/scans/{id}/report`: the CLI's reports, from the API, streamed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use scanledger::domain::Severity;
use scanledger::scanner::fixture::FixtureSource;
use scanledger::scanner::rules::Catalogue;
use scanledger::scanner::RuleScan;
use serde_json::Value;

use super::common::*;
use super::problem;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `scanledger scan` of the demo tenant with the repository's rules, in `format`.
fn cli_report(format: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanledger"))
        .args(["scan", "--subscription", SUB, "--format", format])
        .arg("--source")
        .arg(format!("fixture:{}", repo().join("demo/tenant").display()))
        .arg("--rules-dir")
        .arg(repo().join("rules"))
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .output()
        .expect("run scanledger scan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn api_report(app: &App, id: &str, format: &str) -> (String, String, String) {
    let resp = app
        .get_as(
            &app.reader,
            &format!("/api/scans/{id}/report?format={format}"),
        )
        .await;
    assert_eq!(resp.status(), 200, "{format}");
    let header = |name: &str| resp.headers()[name].to_str().unwrap().to_string();
    let (ct, disposition) = (header("content-type"), header("content-disposition"));
    (ct, disposition, resp.text().await.unwrap())
}

/// OCSF events without their event time (a local scan's is its own run's).
fn ocsf_without_time(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("time");
            v
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scans_report_from_the_api_is_the_clis_report_of_the_same_inventory() {
    let app = spawn_app().await;
    let catalogue = Arc::new(Catalogue::load(&repo().join("rules")).expect("catalogue"));
    let source = Arc::new(FixtureSource::new(
        repo().join("demo/tenant"),
        Duration::ZERO,
    ));
    let job = Arc::new(RuleScan::new(source, catalogue));
    let mut worker = spawn_worker(&app.env.ledger, job, fast_config("reports"));
    let id = app.trigger(SUB).await;
    wait_finished(&mut worker, id, Duration::from_secs(60)).await;
    worker.stop().await;
    let id = id.to_string();

    for (format, content_type, extension) in [
        ("json", "application/json", "json"),
        ("sarif", "application/sarif+json", "sarif"),
        ("csv", "text/csv; charset=utf-8", "csv"),
        ("ocsf", "application/x-ndjson", "ocsf.jsonl"),
    ] {
        let (ct, disposition, api) = api_report(&app, &id, format).await;
        assert_eq!(ct, content_type);
        assert_eq!(
            disposition,
            format!("attachment; filename=\"scan-{id}.{extension}\"")
        );
        let cli = cli_report(format);
        assert!(cli.len() > 1000, "{format}: {cli}");
        if format == "ocsf" {
            assert_eq!(ocsf_without_time(&api), ocsf_without_time(&cli));
        } else {
            assert_eq!(
                api, cli,
                "{format}: the API's report differs from the CLI's"
            );
        }
    }
    // JSON is the default.
    let resp = app
        .get_as(&app.reader, &format!("/api/scans/{id}/report"))
        .await;
    assert_eq!(resp.headers()["content-type"], "application/json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_stream_every_page_of_findings_in_order_and_refuse_what_is_not_ready() {
    let app = spawn_app().await;
    let job = Arc::new(ScriptedJob::new(Behaviour::Succeed));
    // More findings than one page of the report's reads (1000), and a formula-like name.
    let mut found: Vec<_> = (0..2_345)
        .map(|i| {
            finding(
                "AZ-STG-002",
                &format!("st{i:05}"),
                Severity::High,
                "storage",
            )
        })
        .collect();
    found.push(finding(
        "AZ-STG-003",
        "=HYPERLINK(\"x\")",
        Severity::Low,
        "storage",
    ));
    let id = app.trigger(SUB).await;
    run_scripted(
        &app.env.ledger,
        &job,
        id,
        [Behaviour::Find(found.clone())],
        "pages",
    )
    .await;

    let (_, _, json) = api_report(&app, &id.to_string(), "json").await;
    let doc: Value = serde_json::from_str(&json).unwrap();
    let fingerprints: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fingerprint"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = found.iter().map(|f| f.fingerprint.as_str()).collect();
    assert_eq!(
        fingerprints, want,
        "every finding once, in the scan's order"
    );
    assert_eq!(
        doc["summary"]["findings"].as_u64(),
        Some(found.len() as u64)
    );
    assert!(doc["findings"][0].get("detected_at").is_none());

    let (_, _, csv) = api_report(&app, &id.to_string(), "csv").await;
    assert_eq!(csv.lines().count(), found.len() + 1);
    assert!(
        csv.lines()
            .last()
            .unwrap()
            .contains(",\"'=HYPERLINK(\"\"x\"\")\","),
        "a formula-like cell is text: {}",
        csv.lines().last().unwrap()
    );
    let (_, _, sarif) = api_report(&app, &id.to_string(), "sarif").await;
    let log: Value = serde_json::from_str(&sarif).unwrap();
    assert_eq!(
        log["runs"][0]["results"].as_array().unwrap().len(),
        found.len()
    );
    assert_eq!(
        log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Not completed yet: 409. Unknown: 404. Bad input: 400 naming the field.
    let pending = app.trigger(SUB).await;
    let resp = app
        .get_as(
            &app.reader,
            &format!("/api/scans/{pending}/report?format=csv"),
        )
        .await;
    problem(resp, 409).await;
    let resp = app
        .get_as(
            &app.reader,
            &format!("/api/scans/{}/report", uuid::Uuid::new_v4()),
        )
        .await;
    problem(resp, 404).await;
    for (query, field) in [("format=table", "format"), ("colour=red", "colour")] {
        let resp = app
            .get_as(&app.reader, &format!("/api/scans/{id}/report?{query}"))
            .await;
        assert_eq!(problem(resp, 400).await["field"], field, "{query}");
    }
    let resp = app.get_as(&app.reader, "/api/scans/nope/report").await;
    assert_eq!(problem(resp, 400).await["field"], "id");
    let resp = app
        .http
        .get(app.url(&format!("/api/scans/{id}/report")))
        .send()
        .await
        .unwrap();
    problem(resp, 401).await;
}
