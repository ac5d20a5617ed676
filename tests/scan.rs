//! The real scan job inside the service: a worker claims a scan of the demo tenant,
//! evaluates the rule catalogue, and appends `Completed` with its findings.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use scanledger::projection::ScanState;
use scanledger::scanner::fixture::FixtureSource;
use scanledger::scanner::rules::Catalogue;
use scanledger::scanner::RuleScan;
use scanledger::worker::WorkerEvent;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn demo_job(rules: &std::path::Path, delay: Duration) -> Arc<RuleScan> {
    let catalogue = Arc::new(Catalogue::load(rules).expect("catalogue"));
    let source = Arc::new(FixtureSource::new(repo().join("demo/tenant"), delay));
    Arc::new(RuleScan::new(source, catalogue))
}

async fn run_one_scan(env: &TestEnv, job: Arc<RuleScan>) -> scanledger::domain::ScanId {
    let mut worker = spawn_worker(&env.ledger, job, fast_config("scan-test"));
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let finished = wait_finished(&mut worker, id, Duration::from_secs(60)).await;
    assert!(
        matches!(
            finished,
            WorkerEvent::Finished {
                completed: true,
                ..
            }
        ),
        "{finished:?}"
    );
    worker.stop().await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_tenant_scan_completes_with_its_findings_stored_and_a_consistent_summary() {
    let env = env().await;
    // A small delay per resource makes the scan span several heartbeats.
    let id = run_one_scan(
        &env,
        demo_job(&repo().join("rules"), Duration::from_millis(15)),
    )
    .await;

    let status = status_of(&env.ledger, id).await;
    assert_eq!(status.status, ScanState::Completed);
    let summary = status.summary.expect("a completed scan has a summary");

    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT rule_id, severity, fingerprint FROM findings WHERE scan_id = $1")
            .bind(id.0)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert!(!rows.is_empty());
    assert_eq!(
        rows.len() as u64,
        summary.findings,
        "summary counts what is stored"
    );
    for (severity, n) in &summary.findings_by_severity {
        let stored = rows.iter().filter(|(_, s, _)| s == severity).count() as u64;
        assert_eq!(stored, *n, "{severity}");
    }
    for rule in ["AZ-NET-001", "AZ-STG-002"] {
        assert!(
            rows.iter().any(|(r, _, _)| r == rule),
            "{rule} fires on the demo tenant"
        );
    }
    for (rule, tally) in &summary.rules {
        let stored = rows.iter().filter(|(r, _, _)| r == rule).count() as u64;
        assert!(tally.failed <= stored, "{rule}: {tally:?}, {stored} stored");
        assert_eq!(tally.failed > 0, stored > 0, "{rule}");
    }
    assert!(summary.score.is_some());

    // Heartbeats carried progress while the scan ran.
    let progress: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload -> 'progress' FROM scan_events WHERE scan_id = $1 AND kind = 'Heartbeat'",
    )
    .bind(id.0)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(
        progress
            .iter()
            .any(|p| p["resources_seen"].as_u64().unwrap_or(0) > 0),
        "a heartbeat reported resources seen: {progress:?}"
    );
    assert_projection_matches_ledger(&env).await;
    assert_ledger_invariants(&env.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erroring_rule_does_not_fail_the_scan_and_shows_up_as_errored() {
    let env = env().await;
    let dir = std::env::temp_dir().join(format!("scanledger-scan-errored-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("network")).unwrap();
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    for entry in std::fs::read_dir(repo().join("rules/lib")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join("lib").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::copy(
        repo().join("rules/network/nsg_ssh_internet.rego"),
        dir.join("network/nsg_ssh_internet.rego"),
    )
    .unwrap();
    // `to_number` of a resource name is an evaluation error in regorus.
    std::fs::write(
        dir.join("network/broken.rego"),
        r#"package scanledger.rules.network.broken

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-NET-999",
	"title": "A broken rule",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {"nist_csf": ["PR.AC-5"]},
	"description": "Errors on every resource.",
	"remediation": {"portal": "None.", "cli": "az version"},
}

deny contains lib.finding(r, "", {}) if {
	some r in input.resources
	to_number(r.name) > 1
}
"#,
    )
    .unwrap();
    let id = run_one_scan(&env, demo_job(&dir, Duration::ZERO)).await;
    let status = status_of(&env.ledger, id).await;
    assert_eq!(status.status, ScanState::Completed);
    let summary = status.summary.unwrap();
    let broken = summary.rules["AZ-NET-999"];
    assert!(broken.evaluated > 0);
    assert_eq!(broken.errored, broken.evaluated, "{broken:?}");
    assert_eq!(broken.failed, 0);
    let ssh = summary.rules["AZ-NET-001"];
    assert_eq!(ssh.errored, 0);
    assert!(ssh.failed > 0, "the other rule still ran: {ssh:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
