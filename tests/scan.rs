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

/// A local scan of the demo tenant (no database), as `scanledger scan` runs it.
fn demo_report() -> scanledger::worker::ScanReport {
    let catalogue = Arc::new(Catalogue::load(&repo().join("rules")).expect("catalogue"));
    let source = FixtureSource::new(repo().join("demo/tenant"), Duration::ZERO);
    let (progress, _rx) = scanledger::worker::ProgressReporter::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(scanledger::scanner::scan(
        &source,
        catalogue,
        &scanledger::domain::SubscriptionId::parse(SUB).unwrap(),
        &progress,
        2,
    ))
    .expect("the demo tenant scans")
}

fn render(format: report::Format, r: &scanledger::worker::ScanReport) -> String {
    let header = report::Header {
        subscription: SUB.into(),
        completed_at: chrono::Utc::now(),
        summary: r.summary.clone(),
        mutes: Default::default(),
    };
    report::render(format, header, &r.findings)
}

fn fixture(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(repo().join("tests/fixtures").join(name)).unwrap())
        .unwrap()
}

fn text<'a>(v: &'a serde_json::Value, what: &str) -> &'a str {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is missing: {v}"));
    assert!(!s.trim().is_empty(), "{what} is empty");
    s
}

use scanledger::scanner::report;

/// GitHub code scanning's documented upload requirements ("SARIF support for code
/// scanning": required properties, empty strings refused; "SARIF results exceed limit":
/// the hard limits) on top of the OASIS SARIF 2.1.0 schema.
#[test]
fn sarif_reports_meet_github_code_scannings_upload_rules_and_the_oasis_schema() {
    let r = demo_report();
    assert!(!r.findings.is_empty());
    let log: serde_json::Value = serde_json::from_str(&render(report::Format::Sarif, &r)).unwrap();

    let schema = fixture("sarif-schema-2.1.0.json");
    let oasis = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    let errors: Vec<String> = oasis
        .iter_errors(&log)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "OASIS schema violations: {errors:#?}");

    // sarifLog: $schema, version 2.1.0, 1 to 20 runs.
    text(&log["$schema"], "$schema");
    assert_eq!(log["version"], "2.1.0");
    let runs = log["runs"].as_array().expect("runs[]");
    assert!((1..=20).contains(&runs.len()));
    for run in runs {
        // run: tool.driver (name; rules[]) and results[], each within GitHub's limits.
        let driver = &run["tool"]["driver"];
        assert_eq!(text(&driver["name"], "tool.driver.name"), "scanledger");
        assert!(
            driver.get("informationUri").is_none(),
            "no informationUri: Cargo.toml names no repository"
        );
        let rules = driver["rules"].as_array().expect("tool.driver.rules[]");
        let results = run["results"].as_array().expect("results[]");
        assert_eq!(results.len(), r.findings.len());
        assert!(results.len() <= 25_000 && rules.len() <= 25_000);
        let bases = &run["originalUriBaseIds"];
        let mut ids = std::collections::HashSet::new();
        for rule in rules {
            // reportingDescriptor: id, shortDescription.text, fullDescription.text,
            // help.text; name ≤ 255, descriptions ≤ 1024 characters, ≤ 20 tags.
            let id = text(&rule["id"], "rule id");
            assert!(ids.insert(id.to_string()), "rule {id} listed twice");
            assert!(text(&rule["name"], "name").chars().count() <= 255);
            for d in ["shortDescription", "fullDescription"] {
                assert!(
                    text(&rule[d]["text"], d).chars().count() <= 1024,
                    "{id} {d}"
                );
            }
            text(&rule["help"]["text"], "help.text");
            let level = rule["defaultConfiguration"]["level"].as_str().unwrap();
            assert!(
                ["note", "warning", "error"].contains(&level),
                "{id}: {level}"
            );
            let tags = rule["properties"]["tags"].as_array().unwrap();
            assert!(
                tags.len() <= 20 && tags.contains(&"security".into()),
                "{id}"
            );
            let score: f64 = rule["properties"]["security-severity"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((0.0..=10.0).contains(&score), "{id}: {score}");
        }
        for (res, f) in results.iter().zip(&r.findings) {
            // result: ruleId naming a listed rule (ruleIndex agreeing), message.text, a
            // level, 1 to 10 locations, partialFingerprints.
            let rule_id = text(&res["ruleId"], "ruleId");
            assert_eq!(rule_id, &*f.rule.id);
            let index = res["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], rule_id, "ruleIndex points at its rule");
            text(&res["message"]["text"], "message.text");
            let level = res["level"].as_str().unwrap();
            assert!(["none", "note", "warning", "error"].contains(&level));
            let locations = res["locations"].as_array().unwrap();
            assert!((1..=10).contains(&locations.len()));
            // location.physicalLocation: artifactLocation.uri and a whole region.
            let physical = &locations[0]["physicalLocation"];
            let uri = text(&physical["artifactLocation"]["uri"], "artifactLocation.uri");
            for key in ["startLine", "startColumn", "endLine", "endColumn"] {
                assert!(
                    physical["region"][key].as_u64().unwrap() >= 1,
                    "region.{key}"
                );
            }
            // Relative, so its scheme never clashes with a `file:` source root (GitHub
            // rejects those uploads); resolved, the resource id under azure:///.
            assert!(!uri.contains(':'), "{uri} is relative");
            let base = text(&physical["artifactLocation"]["uriBaseId"], "uriBaseId");
            let resolved = format!("{}{uri}", text(&bases[base]["uri"], "base uri"));
            assert_eq!(
                resolved,
                format!(
                    "azure:///{}",
                    f.resource_id.trim_start_matches('/').to_ascii_lowercase()
                )
            );
            assert_eq!(
                locations[0]["logicalLocations"][0]["fullyQualifiedName"],
                &*f.resource_id
            );
            // GitHub keys alerts by primaryLocationLineHash: the finding fingerprint.
            assert_eq!(
                res["partialFingerprints"]["primaryLocationLineHash"],
                f.fingerprint.as_str()
            );
        }
        // One analysis category per subscription.
        assert_eq!(run["automationDetails"]["id"], format!("scanledger/{SUB}/"));
    }
}

/// `--format ocsf`: one OCSF 1.6.0 Detection Finding per line, valid against the vendored
/// schema subset (tests/fixtures/README-ocsf.md), consistent where JSON Schema cannot say.
#[test]
fn ocsf_reports_are_detection_findings_valid_against_the_ocsf_schema() {
    let r = demo_report();
    let schema = fixture("ocsf-1.6.0-detection-finding.schema.json");
    let validator = jsonschema::draft202012::new(&schema).expect("the OCSF subset compiles");
    let out = render(report::Format::Ocsf, &r);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), r.findings.len(), "one object per finding");
    for (line, f) in lines.iter().zip(&r.findings) {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&event)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{event:#}");
        assert_eq!(event["class_uid"], 2004);
        assert_eq!(
            event["type_uid"].as_i64().unwrap(),
            event["class_uid"].as_i64().unwrap() * 100 + event["activity_id"].as_i64().unwrap(),
            "type_uid = class_uid * 100 + activity_id"
        );
        let captions = [
            "Unknown",
            "Informational",
            "Low",
            "Medium",
            "High",
            "Critical",
        ];
        assert_eq!(
            event["severity"],
            captions[event["severity_id"].as_u64().unwrap() as usize]
        );
        assert_eq!(event["severity_id"].as_u64().unwrap() as usize, {
            let s = f.rule.severity.as_str();
            ["", "info", "low", "medium", "high", "critical"]
                .iter()
                .position(|x| *x == s)
                .unwrap()
        });
        assert_eq!(event["finding_info"]["uid"], f.fingerprint.as_str());
        assert_eq!(event["finding_info"]["analytic"]["uid"], &*f.rule.id);
        assert_eq!(event["resources"][0]["uid"], &*f.resource_id);
        assert_eq!(event["cloud"]["account"]["uid"], SUB);
        assert_eq!(event["metadata"]["version"], report::OCSF_VERSION);
    }
    // The checker itself: a finding without its uid, or of another class, fails.
    let mut broken: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    broken["finding_info"]
        .as_object_mut()
        .unwrap()
        .remove("uid");
    assert!(!validator.is_valid(&broken));
    let mut other: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    other["class_uid"] = 2003.into();
    assert!(!validator.is_valid(&other));
    let mut invented: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    invented["scanledger_extra"] = true.into();
    assert!(
        !validator.is_valid(&invented),
        "attributes outside the class are refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_applies_the_mutes_in_effect_muted_findings_are_stored_but_not_scored() {
    use scanledger::domain::governance::{GovernanceEvent, MuteAdded, MuteRemoved, MuteSelector};
    let env = env().await;
    let job = demo_job(&repo().join("rules"), Duration::ZERO);
    let before = run_one_scan(&env, job.clone()).await;
    let plain = status_of(&env.ledger, before).await.summary.unwrap();
    assert_eq!(plain.muted, 0);

    // Mute AZ-NET-001 everywhere, and one other finding by fingerprint.
    let net: Vec<String> = sqlx::query_scalar(
        "SELECT fingerprint FROM findings WHERE scan_id = $1 AND rule_id = 'AZ-NET-001'",
    )
    .bind(before.0)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let other: String = sqlx::query_scalar(
        "SELECT fingerprint FROM findings WHERE scan_id = $1 AND rule_id <> 'AZ-NET-001'
          ORDER BY fingerprint LIMIT 1",
    )
    .bind(before.0)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let by_rule = uuid::Uuid::new_v4();
    for (id, selector) in [
        (
            by_rule,
            MuteSelector::Rule {
                rule_id: "AZ-NET-001".into(),
                resource_pattern: "/subscriptions/*".into(),
            },
        ),
        (
            uuid::Uuid::new_v4(),
            MuteSelector::Fingerprint {
                fingerprint: other.clone(),
            },
        ),
    ] {
        env.ledger
            .append_governance(
                id,
                0,
                "scan-test",
                GovernanceEvent::MuteAdded(MuteAdded {
                    selector,
                    reason: "accepted risk".into(),
                    expires_at: None,
                }),
            )
            .await
            .unwrap();
    }
    let muted_scan = run_one_scan(&env, job.clone()).await;
    let muted = status_of(&env.ledger, muted_scan).await.summary.unwrap();
    assert_eq!(muted.findings, plain.findings, "muted findings are stored");
    assert_eq!(muted.muted as usize, net.len() + 1);
    assert!(muted.score.unwrap() > plain.score.unwrap(), "{muted:?}");
    assert_eq!(
        muted.rules["AZ-NET-001"].muted, plain.rules["AZ-NET-001"].failed,
        "every AZ-NET-001 failure is muted"
    );

    // Unmuted again, the next scan scores as the first did.
    env.ledger
        .append_governance(
            by_rule,
            1,
            "scan-test",
            GovernanceEvent::MuteRemoved(MuteRemoved { reason: None }),
        )
        .await
        .unwrap();
    let after = run_one_scan(&env, job).await;
    let after = status_of(&env.ledger, after).await.summary.unwrap();
    assert_eq!(after.muted, 1);
    assert!(after.score.unwrap() < muted.score.unwrap());
    assert_ledger_invariants(&env.pool).await;
}

/// A worker runs several scans at once on one job: they share its evaluation threads
/// (each with its own engine) and slots, and a rule-filtered scan gets threads of its own
/// for its catalogue, ended with it. Run together, each scan reports exactly what it
/// reports alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scans_on_one_job_each_report_what_they_report_alone() {
    use scanledger::domain::{ScanId, SubscriptionId};
    use scanledger::worker::{ProgressReporter, ScanJob, ScanReport, ScanTarget};
    let job = demo_job(&repo().join("rules"), Duration::ZERO);
    let run = |rules: &[&str]| {
        let target = ScanTarget {
            scan_id: ScanId::new(),
            attempt: 1,
            subscription_id: SubscriptionId::parse(scanledger::cli::DEMO_SUBSCRIPTION).unwrap(),
            rules: rules.iter().map(|r| r.to_string()).collect(),
            mutes: Default::default(),
        };
        job.run(target, ProgressReporter::new().0)
    };
    let same = |a: &ScanReport, b: &ScanReport| {
        assert_eq!(a.findings, b.findings);
        assert_eq!(a.summary, b.summary);
    };
    let all = run(&[]).await.unwrap();
    let network = run(&["network"]).await.unwrap();
    assert!(!network.findings.is_empty());
    assert!(network.findings.len() < all.findings.len());
    let together = futures_util::future::join_all([
        run(&[]),
        run(&["network"]),
        run(&[]),
        run(&["network"]),
        run(&[]),
    ])
    .await;
    for (i, report) in together.into_iter().enumerate() {
        let report = report.unwrap();
        same(&report, if i % 2 == 0 { &all } else { &network });
    }
}
