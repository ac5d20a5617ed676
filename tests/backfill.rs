//! Backfill from an OpenShield database: history lands terminal with its original times,
//! nothing is queued silently, and a second run appends nothing.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use scanledger::pg::quote_ident;
use scanledger::testing::TestCluster;
use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_scanledger");

/// The OpenShield schema as the older service created it.
const LEGACY_SCHEMA: &str = include_str!("fixtures/openshield-schema.sql");

struct Legacy {
    url: String,
    ids: Vec<(uuid::Uuid, Option<&'static str>)>,
}

/// A legacy database with one scan per status (and a NULL one), completed ones with findings.
async fn legacy_db() -> Legacy {
    let cluster = TestCluster::shared(&test_root(), false).cluster();
    let name = format!("openshield_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect_with(&cluster.connect_options("postgres"))
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut db = sqlx::PgConnection::connect_with(&cluster.connect_options(&name))
        .await
        .unwrap();
    sqlx::raw_sql(LEGACY_SCHEMA).execute(&mut db).await.unwrap();
    let statuses = [
        Some("completed"),
        Some("completed"),
        Some("failed"),
        Some("pending"),
        Some("running"),
        None,
    ];
    let mut ids = Vec::new();
    for (i, status) in statuses.iter().enumerate() {
        let id = uuid::Uuid::new_v4();
        ids.push((id, *status));
        sqlx::query(
            "INSERT INTO scans (scan_id, subscription_id, started_at, claimed_at, completed_at, total_findings, score,
                                status, attempt_count, error_message)
             VALUES ($1, $2, timestamptz '2024-03-01 10:00:00+00' + make_interval(days => $3),
                     timestamptz '2024-03-01 10:00:05+00' + make_interval(days => $3),
                     CASE WHEN $4 IN ('completed', 'failed') THEN timestamptz '2024-03-01 10:07:00+00' + make_interval(days => $3) END,
                     $5, 70, $4, 1, CASE WHEN $4 = 'failed' THEN 'HTTPError 401 token=eyJsecret request-id=abc' END)",
        )
        .bind(id)
        .bind(SUB)
        .bind(i as i32)
        .bind(*status)
        .bind(if i == 0 { 3 } else { 0 })
        .execute(&mut db)
        .await
        .unwrap();
    }
    for (rule, severity) in [
        ("storage-https", "High"),
        ("nsg-ssh", "CRITICAL"),
        ("kv-purge", "Medium"),
    ] {
        sqlx::query(
            "INSERT INTO findings (scan_id, rule_id, rule_name, severity, category, resource_id, resource_name,
                                   resource_type, description, remediation, frameworks, metadata, cvss_score, detected_at)
             VALUES ($1, $2, $2 || ' rule', $3, 'security', '/subscriptions/' || $4 || '/rg/res-' || $2, 'res-' || $2,
                     'Microsoft.Test/things', 'desc', 'fix', '[\"CIS 1.1\"]', '{\"port\": 22}', 7.5,
                     timestamptz '2024-03-01 10:06:00+00')",
        )
        .bind(ids[0].0)
        .bind(rule)
        .bind(severity)
        .bind(SUB)
        .execute(&mut db)
        .await
        .unwrap();
    }
    Legacy {
        url: cluster.url(&name),
        ids,
    }
}

fn backfill(env: &TestEnv, legacy: &Legacy, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["backfill", "openshield", "--from", &legacy.url])
        .args(extra)
        .env("DATABASE_URL", &env.db.url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lands_terminal_with_its_times_and_a_rerun_adds_nothing() {
    let env = env().await;
    let legacy = legacy_db().await;
    // A worker runs the whole time: it must find nothing to claim.
    let w = spawn_worker(
        &env.ledger,
        Arc::new(ScriptedJob::new(Behaviour::Succeed)),
        fast_config("bystander"),
    );

    // Unfinished rows are never queued silently.
    let refused = backfill(&env, &legacy, &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--non-terminal") && stderr.contains("3 OpenShield scans"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&legacy.ids[3].0.to_string()),
        "the unfinished scans are listed: {stderr}"
    );
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM scan_events").await,
        0
    );

    let dry = backfill(&env, &legacy, &["--non-terminal", "cancel", "--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(String::from_utf8_lossy(&dry.stdout).contains("Requested → Claimed → Completed"));
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM scan_events").await,
        0,
        "a dry run appends nothing"
    );

    let done = backfill(&env, &legacy, &["--non-terminal", "cancel"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(
        (
            report["completed"].as_u64(),
            report["failed"].as_u64(),
            report["cancelled"].as_u64()
        ),
        (Some(2), Some(1), Some(3))
    );
    assert_eq!(report["findings"], 3);
    let events = count(&env.pool, "SELECT count(*) FROM scan_events").await;
    assert_eq!(events, 3 * 3 + 3 * 2);

    // Nothing imported is pending or claimed by a worker.
    assert_eq!(
        count(
            &env.pool,
            "SELECT count(*) FROM scan_status WHERE status IN ('pending', 'running')"
        )
        .await,
        0
    );
    w.stop().await;
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM scan_events WHERE kind = 'Claimed' AND worker_id <> 'backfill:openshield'").await,
        0
    );

    // Original times, statuses and findings.
    for (i, (id, status)) in legacy.ids.iter().enumerate() {
        let row = status_of(&env.ledger, scanledger::domain::ScanId(*id)).await;
        let day = chrono::Duration::days(i as i64);
        let started: chrono::DateTime<chrono::Utc> = "2024-03-01T10:00:00Z".parse().unwrap();
        assert_eq!(row.requested_at, started + day, "scan {i}");
        let expected = match status {
            Some("completed") => "completed",
            Some("failed") => "failed",
            _ => "cancelled",
        };
        assert_eq!(
            serde_json::to_value(row.status).unwrap(),
            expected,
            "scan {i}"
        );
        if matches!(status, Some("completed" | "failed")) {
            let finished: chrono::DateTime<chrono::Utc> = "2024-03-01T10:07:00Z".parse().unwrap();
            assert_eq!(row.finished_at, Some(finished + day));
            assert_eq!(
                row.claimed_at,
                Some(started + day + chrono::Duration::seconds(5))
            );
        }
    }
    let failed = status_of(&env.ledger, scanledger::domain::ScanId(legacy.ids[2].0)).await;
    let err = failed.error.unwrap();
    assert_eq!(err.code, scanledger::domain::FailureCode::ImportedFailure);
    let all_payloads: String =
        sqlx::query_scalar("SELECT string_agg(payload::text, ' ') FROM scan_events")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(
        !all_payloads.contains("eyJsecret"),
        "legacy error text stays out of the ledger"
    );
    assert!(all_payloads.contains("\"backfilled_from\": \"openshield\""));
    let (n, detected, sev): (i64, Option<chrono::DateTime<chrono::Utc>>, Option<String>) = sqlx::query_as(
        "SELECT count(*), min(detected_at), min(severity) FILTER (WHERE rule_id = 'nsg-ssh') FROM findings WHERE scan_id = $1",
    )
    .bind(legacy.ids[0].0)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(detected, Some("2024-03-01T10:06:00Z".parse().unwrap()));
    assert_eq!(sev.as_deref(), Some("critical"));
    let summary = status_of(&env.ledger, scanledger::domain::ScanId(legacy.ids[0].0))
        .await
        .summary
        .unwrap();
    assert_eq!(
        summary.findings, 3,
        "the summary agrees with the stored findings"
    );

    // A second run appends nothing.
    let again = backfill(&env, &legacy, &["--non-terminal", "cancel"]);
    assert!(again.status.success());
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (
            report["already_imported"].as_u64(),
            report["events_appended"].as_u64()
        ),
        (Some(6), Some(0))
    );
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM scan_events").await,
        events
    );
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
    // Imported history chains like live history: every hash and findings digest holds.
    let mut owner = env.db.owner.owner_connection().await.unwrap();
    let (summary, broken) = scanledger::ledger::audit::verify(&mut owner, &[], |_| {})
        .await
        .unwrap();
    assert!(broken.is_empty(), "{broken:#?}");
    assert!(summary.findings > 0 && summary.scans > 0, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_rows_are_run_by_workers_and_skipped_rows_are_not_imported() {
    let env = env().await;
    let legacy = legacy_db().await;
    let skip = backfill(&env, &legacy, &["--non-terminal", "skip"]);
    assert!(skip.status.success());
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM scan_status").await,
        3,
        "only the finished scans"
    );
    let requeue = backfill(&env, &legacy, &["--non-terminal", "requeue"]);
    assert!(
        requeue.status.success(),
        "{}",
        String::from_utf8_lossy(&requeue.stderr)
    );
    assert_eq!(count_status(&env.pool, "pending").await, 3);
    let w = spawn_worker(
        &env.ledger,
        Arc::new(ScriptedJob::new(Behaviour::Succeed)),
        fast_config("runner"),
    );
    wait_until(
        "the requeued scans ran",
        Duration::from_secs(20),
        || async { count_status(&env.pool, "completed").await == 5 },
    )
    .await;
    w.stop().await;
    assert_projection_matches_ledger(&env).await;
}

/// A finding as the legacy fixture names it (`res-<rule>` in the subscription), seen live.
fn legacy_shaped(rule: &str) -> scanledger::domain::Finding {
    let mut f = finding(rule, "x", scanledger::domain::Severity::High, "security");
    f.resource_id = format!("/subscriptions/{SUB}/rg/res-{rule}").into();
    f.resource_name = format!("res-{rule}").into();
    f.fingerprint = scanledger::domain::Finding::fingerprint(rule, &f.resource_id, "");
    f
}

type HistoryRow = (
    String,
    String,
    uuid::Uuid,
    chrono::DateTime<chrono::Utc>,
    uuid::Uuid,
    Option<uuid::Uuid>,
    Option<chrono::DateTime<chrono::Utc>>,
    i32,
);

async fn history(pool: &sqlx::PgPool) -> Vec<HistoryRow> {
    sqlx::query_as(
        "SELECT rule_id, state, first_seen_scan, first_seen_at, last_seen_scan, resolved_scan, resolved_at,
                reopened_count
           FROM finding_history ORDER BY rule_id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_history_imported_after_live_scans_never_resolves_what_they_report() {
    let env = env().await;
    let legacy = legacy_db().await;
    // Today, a live scan of the subscription reports one finding the 2024 history also
    // had (and a 2024 scan then fixed) and one of its own.
    let job = Arc::new(ScriptedJob::new(Behaviour::Succeed));
    let mut w = spawn_worker(&env.ledger, job.clone(), fast_config("live"));
    let live = request_scripted(
        &env.ledger,
        &job,
        &mut w,
        [Behaviour::Find(vec![
            legacy_shaped("storage-https"),
            legacy_shaped("live-only"),
        ])],
    )
    .await;
    w.stop().await;
    let before = history(&env.pool).await;
    let live_at = before[0].3;
    assert!(before.iter().all(|r| r.1 == "open" && r.3 == live_at));

    // Then the 2024 history arrives: scan 0 (1 March) reported storage-https, nsg-ssh and
    // kv-purge; scan 1 (2 March) reported nothing.
    let out = backfill(&env, &legacy, &["--non-terminal", "cancel"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (old, fixed) = (legacy.ids[0].0, legacy.ids[1].0);
    let march = |day: u32| {
        chrono::DateTime::parse_from_rfc3339(&format!("2024-03-0{day}T10:07:00Z"))
            .unwrap()
            .to_utc()
    };
    let rows = history(&env.pool).await;
    let by_rule = |rule: &str| rows.iter().find(|r| r.0 == rule).unwrap().clone();
    // What the live scan reports stays open, with its live times.
    assert_eq!(
        by_rule("live-only"),
        (
            "live-only".into(),
            "open".into(),
            live.0,
            live_at,
            live.0,
            None,
            None,
            0
        )
    );
    // Seen in 2024, fixed in 2024, back today: open, first seen in 2024, reopened once.
    assert_eq!(
        by_rule("storage-https"),
        (
            "storage-https".into(),
            "open".into(),
            old,
            march(1),
            live.0,
            None,
            None,
            1
        )
    );
    // Only in 2024: resolved by the 2 March scan, at its time.
    for rule in ["nsg-ssh", "kv-purge"] {
        let r = by_rule(rule);
        assert_eq!(
            (r.1.as_str(), r.2, r.5, r.6),
            ("resolved", old, Some(fixed), Some(march(2))),
            "{rule}"
        );
    }

    // A replay of the ledger gives the same answer as the inline fold, and a rebuild
    // changes nothing.
    let mut owner = env.db.owner.owner_connection().await.unwrap();
    let report =
        scanledger::ledger::replay::verify(&mut owner, "finding_history", &mut |_, _, _| {})
            .await
            .unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    scanledger::ledger::replay::rebuild(&env.db.owner, "finding_history", &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(history(&env.pool).await, rows);
}
