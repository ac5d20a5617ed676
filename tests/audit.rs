//! Tamper evidence, attacked: a superuser with triggers off edits the ledger, and
//! `audit verify` (online and from a bundle) names the broken place. Also: the database's
//! hashes and the Rust verifier agree on every kind of event, and proofs verify.

mod common;

use std::time::Duration;

use common::*;
use scanledger::domain::integrity::{self, Broken, BundleLine};
use scanledger::domain::{
    Cancelled, Completed, Event, Failed, FailureCode, Heartbeat, Phase, Progress, PublicError,
    ScanId, ScanSummary, Severity, WorkerId,
};
use scanledger::ledger::audit::{self, Scope, Signer};
use scanledger::ledger::NewEvent;
use uuid::Uuid;

/// A small history with every kind a live ledger holds: a completed scan with findings
/// (odd characters included), a scan failed then retried to completion, a cancelled one.
struct History {
    completed: ScanId,
    retried: ScanId,
    cancelled: ScanId,
}

async fn history(env: &TestEnv) -> History {
    let ids = request_scans(&env.ledger, 3, 3).await;
    let w = WorkerId::new("w-audit");
    let claims = env
        .ledger
        .claim(&w, 2, Duration::from_secs(30), false)
        .await
        .unwrap();
    assert_eq!(claims.len(), 2);
    let (a, b) = (&claims[0], &claims[1]);
    let hb = env
        .ledger
        .append(NewEvent {
            scan_id: a.scan_id,
            expected_version: a.version,
            attempt: a.attempt,
            worker_id: Some(w.clone()),
            event: Event::Heartbeat(Heartbeat {
                lease_ms: 30_000,
                progress: Progress {
                    phase: Phase::Evaluating,
                    resources_seen: 3,
                    rules_evaluated: 2,
                },
            }),
        })
        .await
        .unwrap();
    let mut findings = vec![
        finding("AZ-STG-001", "alpha", Severity::High, "storage"),
        finding("AZ-STG-002", "beta", Severity::Low, "storage"),
        finding("AZ-NET-001", "gamma", Severity::Critical, "network"),
    ];
    std::sync::Arc::make_mut(&mut findings[0].rule).description =
        "quotes \" and\nnewlines, é and 😀".into();
    findings[1].details = serde_json::json!({"b": [1, 2.5, null], "a": "\u{0001}"}).into();
    env.ledger
        .append(NewEvent {
            scan_id: a.scan_id,
            expected_version: hb.version,
            attempt: a.attempt,
            worker_id: Some(w.clone()),
            event: Event::Completed(Completed {
                summary: ScanSummary {
                    resources_seen: 3,
                    findings: 3,
                    score: Some(81.25),
                    ..Default::default()
                },
                findings: findings.into(),
                origin: None,
            }),
        })
        .await
        .unwrap();
    let failed = env
        .ledger
        .append(NewEvent {
            scan_id: b.scan_id,
            expected_version: b.version,
            attempt: b.attempt,
            worker_id: Some(w.clone()),
            event: Event::Failed(Failed {
                error: PublicError::new(FailureCode::SourceUnavailable, Uuid::new_v4()),
                retryable: true,
                retry_in_ms: Some(0),
                origin: None,
            }),
        })
        .await
        .unwrap();
    let again = env
        .ledger
        .claim(&w, 5, Duration::from_secs(30), false)
        .await
        .unwrap();
    let b2 = again.iter().find(|c| c.scan_id == b.scan_id).unwrap();
    assert_eq!(b2.version, failed.version + 1);
    env.ledger
        .append(NewEvent {
            scan_id: b.scan_id,
            expected_version: b2.version,
            attempt: b2.attempt,
            worker_id: Some(w.clone()),
            event: Event::Completed(Completed {
                summary: ScanSummary::default(),
                findings: Default::default(),
                origin: None,
            }),
        })
        .await
        .unwrap();
    let third = ids
        .iter()
        .copied()
        .find(|id| *id != a.scan_id && *id != b.scan_id)
        .unwrap();
    // The third was claimed by the second round: cancel it while it runs.
    let c = again.iter().find(|c| c.scan_id == third).unwrap();
    env.ledger
        .append(NewEvent {
            scan_id: third,
            expected_version: c.version,
            attempt: 0,
            worker_id: None,
            event: Event::Cancelled(Cancelled {
                cancelled_by: Some("auditor".into()),
                reason: Some("test".into()),
                origin: None,
            }),
        })
        .await
        .unwrap();
    History {
        completed: a.scan_id,
        retried: b.scan_id,
        cancelled: third,
    }
}

/// Checkpoint until every event is covered: a checkpoint covers only transactions older
/// than every one still running in the cluster (other tests' included), like the feed.
async fn checkpoint_everything(env: &TestEnv, signer: Option<&Signer>) {
    wait_until(
        "every event checkpointed",
        Duration::from_secs(30),
        || async {
            env.ledger.checkpoint(signer).await.unwrap();
            let covered: i64 =
                sqlx::query_scalar("SELECT coalesce(max(total_events), 0) FROM ledger_checkpoints")
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            covered == count(&env.pool, "SELECT count(*) FROM scan_events").await
        },
    )
    .await;
}

fn signer() -> Signer {
    Signer::from_seed(&[7; 32])
}

async fn verify_online(env: &TestEnv, keys: &[Vec<u8>]) -> Vec<Broken> {
    let mut conn = env.db.owner.owner_connection().await.unwrap();
    let (_, broken) = audit::verify(&mut conn, keys, |_| {}).await.unwrap();
    broken
}

/// Run SQL as a superuser with every trigger off (`session_replication_role = replica`).
async fn tamper(env: &TestEnv, sql: &str) {
    let mut conn = env.db.owner.owner_connection().await.unwrap();
    sqlx::raw_sql(&format!("SET session_replication_role = replica; {sql}"))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn database_hashes_and_the_verifier_agree_on_every_kind_of_event() {
    let env = env().await;
    let h = history(&env).await;
    checkpoint_everything(&env, Some(&signer())).await;
    let mut conn = env.db.owner.owner_connection().await.unwrap();
    let (summary, broken) = audit::verify(&mut conn, &[signer().public_key()], |_| {})
        .await
        .unwrap();
    assert!(broken.is_empty(), "{broken:#?}");
    assert_eq!(summary.scans, 3);
    assert_eq!(summary.findings, 3);
    assert_eq!(summary.signed_checkpoints, summary.checkpoints);
    assert_eq!(summary.events_after_last_checkpoint, 0);
    // Later checkpoints chain to the earlier ones and cover only what came after.
    assert!(env.ledger.checkpoint(None).await.unwrap().is_none());
    let more = request_scans(&env.ledger, 2, 1).await;
    checkpoint_everything(&env, None).await;
    assert!(verify_online(&env, &[signer().public_key()])
        .await
        .is_empty());
    // Streams are whole in bundles too, with a proof per event.
    for id in [h.completed, h.retried, h.cancelled, more[0]] {
        let lines = audit::bundle(
            env.ledger.pool(),
            &Scope::Scan(id),
            Some(signer().public_key()),
        )
        .await
        .unwrap();
        let text = bundle_text(&lines);
        let (summary, broken) = integrity::verify_bundle(&text, &[signer().public_key()]).unwrap();
        assert!(broken.is_empty(), "{id}: {broken:#?}");
        assert_eq!(
            summary.proofs, summary.events,
            "{id}: every event has a proof"
        );
    }
}

#[tokio::test]
async fn a_signature_from_an_untrusted_key_is_reported() {
    let env = env().await;
    history(&env).await;
    checkpoint_everything(&env, Some(&signer())).await;
    let other = Signer::from_seed(&[9; 32]).public_key();
    let broken = verify_online(&env, &[other]).await;
    assert!(
        matches!(broken.first(), Some(Broken::Signature { .. })),
        "{broken:#?}"
    );
}

#[tokio::test]
async fn one_changed_payload_byte_is_named() {
    let env = env().await;
    let h = history(&env).await;
    checkpoint_everything(&env, None).await;
    tamper(
        &env,
        &format!(
            "UPDATE scan_events SET payload = jsonb_set(payload, '{{priority}}', '1')
              WHERE scan_id = '{}' AND version = 1",
            h.completed
        ),
    )
    .await;
    let broken = verify_online(&env, &[]).await;
    assert!(
        broken.iter().any(|b| matches!(b,
            Broken::EventHash { scan_id, version: 1, expected, found }
                if *scan_id == h.completed.to_string() && expected != found)),
        "{broken:#?}"
    );
}

#[tokio::test]
async fn one_deleted_event_is_named() {
    let env = env().await;
    let h = history(&env).await;
    checkpoint_everything(&env, None).await;
    tamper(
        &env,
        &format!(
            "DELETE FROM scan_events WHERE scan_id = '{}' AND version = 2",
            h.completed
        ),
    )
    .await;
    let broken = verify_online(&env, &[]).await;
    assert!(
        broken.contains(&Broken::VersionGap {
            scan_id: h.completed.to_string(),
            after: 1,
            found: 3
        }),
        "{broken:#?}"
    );
    assert!(
        broken
            .iter()
            .any(|b| matches!(b, Broken::CheckpointRoot { .. })),
        "{broken:#?}"
    );
}

#[tokio::test]
async fn a_whole_deleted_scan_is_caught_by_the_checkpoint() {
    let env = env().await;
    let h = history(&env).await;
    checkpoint_everything(&env, None).await;
    tamper(
        &env,
        &format!("DELETE FROM scan_events WHERE scan_id = '{}'", h.cancelled),
    )
    .await;
    let broken = verify_online(&env, &[]).await;
    // Every remaining stream is intact: only the checkpoints can tell (one, or two when
    // other tests' transactions held the horizon and the scan's events straddle them).
    assert!(!broken.is_empty());
    assert!(
        broken.iter().all(
            |b| matches!(b, Broken::CheckpointRoot { events, declared, .. } if events < declared)
        ),
        "{broken:#?}"
    );
}

#[tokio::test]
async fn two_swapped_versions_are_named() {
    let env = env().await;
    let h = history(&env).await;
    tamper(
        &env,
        &format!(
            "UPDATE scan_events SET version = version + 100 WHERE scan_id = '{id}' AND version IN (2, 3);
             UPDATE scan_events SET version = 3 WHERE scan_id = '{id}' AND version = 102;
             UPDATE scan_events SET version = 2 WHERE scan_id = '{id}' AND version = 103;",
            id = h.completed
        ),
    )
    .await;
    let broken = verify_online(&env, &[]).await;
    assert!(
        broken.iter().any(|b| matches!(b,
            Broken::EventHash { scan_id, version: 2 | 3, .. } if *scan_id == h.completed.to_string())),
        "{broken:#?}"
    );
}

#[tokio::test]
async fn one_altered_finding_is_named() {
    let env = env().await;
    let h = history(&env).await;
    tamper(
        &env,
        &format!(
            "UPDATE findings SET severity = 'low' WHERE scan_id = '{}' AND rule_id = 'AZ-NET-001'",
            h.completed
        ),
    )
    .await;
    let broken = verify_online(&env, &[]).await;
    assert!(
        matches!(broken.as_slice(), [Broken::FindingsDigest { scan_id, attempt: 1, .. }] if *scan_id == h.completed.to_string()),
        "{broken:#?}"
    );
    // A dropped finding too.
    tamper(
        &env,
        &format!(
            "DELETE FROM findings WHERE scan_id = '{}' AND rule_id = 'AZ-STG-001'",
            h.completed
        ),
    )
    .await;
    assert!(!verify_online(&env, &[]).await.is_empty());
}

#[tokio::test]
async fn an_edited_checkpoint_is_named() {
    let env = env().await;
    history(&env).await;
    checkpoint_everything(&env, Some(&signer())).await;
    request_scans(&env.ledger, 1, 1).await;
    checkpoint_everything(&env, Some(&signer())).await;
    tamper(
        &env,
        "UPDATE ledger_checkpoints SET events = events - 1, total_events = total_events - 1
          WHERE checkpoint_id = (SELECT min(checkpoint_id) FROM ledger_checkpoints)",
    )
    .await;
    let broken = verify_online(&env, &[signer().public_key()]).await;
    assert!(
        broken
            .iter()
            .any(|b| matches!(b, Broken::CheckpointRoot { .. })),
        "{broken:#?}"
    );
    assert!(
        broken.iter().any(|b| matches!(b, Broken::Signature { .. })),
        "{broken:#?}"
    );
    assert!(
        broken
            .iter()
            .any(|b| matches!(b, Broken::CheckpointChain { .. })),
        "{broken:#?}"
    );
}

fn bundle_text(lines: &[BundleLine]) -> String {
    let mut out = Vec::new();
    audit::write_bundle(&mut out, lines).unwrap();
    String::from_utf8(out).unwrap()
}

/// Edit the bundle's JSON lines: `f` changes one parsed line (returns false to drop it).
fn edit(text: &str, mut f: impl FnMut(&mut serde_json::Value) -> bool) -> String {
    text.lines()
        .filter_map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            f(&mut v).then(|| v.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn edited_bundles_are_refused_offline() {
    let env = env().await;
    let h = history(&env).await;
    checkpoint_everything(&env, Some(&signer())).await;
    let lines = audit::bundle(
        env.ledger.pool(),
        &Scope::Scan(h.completed),
        Some(signer().public_key()),
    )
    .await
    .unwrap();
    let text = bundle_text(&lines);
    let trusted = [signer().public_key()];
    let (_, ok) = integrity::verify_bundle(&text, &trusted).unwrap();
    assert!(ok.is_empty(), "{ok:#?}");

    let check = |edited: String, what: &str, pred: &dyn Fn(&Broken) -> bool| {
        let (_, broken) = integrity::verify_bundle(&edited, &trusted).unwrap();
        assert!(broken.iter().any(pred), "{what}: {broken:#?}");
    };
    // One payload byte.
    check(
        edit(&text, |v| {
            if v["type"] == "event" && v["version"] == 1 {
                let p = v["payload"]
                    .as_str()
                    .unwrap()
                    .replace("\"priority\": 0", "\"priority\": 1");
                v["payload"] = p.into();
            }
            true
        }),
        "payload",
        &|b| matches!(b, Broken::EventHash { version: 1, .. }),
    );
    // One event dropped.
    check(
        edit(&text, |v| !(v["type"] == "event" && v["version"] == 2)),
        "dropped event",
        &|b| {
            matches!(
                b,
                Broken::VersionGap {
                    after: 1,
                    found: 3,
                    ..
                }
            )
        },
    );
    // One finding altered.
    let mut first = true;
    check(
        edit(&text, |v| {
            if v["type"] == "finding" && first {
                first = false;
                v["severity"] = "info".into();
            }
            true
        }),
        "finding",
        &|b| matches!(b, Broken::FindingsDigest { attempt: 1, .. }),
    );
    // The checkpoint's root replaced (its signature no longer holds; no proof verifies).
    check(
        edit(&text, |v| {
            if v["type"] == "checkpoint" {
                v["root"] = "00".repeat(32).into();
            }
            true
        }),
        "checkpoint",
        &|b| matches!(b, Broken::Signature { .. }),
    );
    // A proof element flipped.
    check(
        edit(&text, |v| {
            if v["type"] == "proof" && v["path"].as_array().is_some_and(|p| !p.is_empty()) {
                v["path"][0] = "11".repeat(32).into();
            }
            true
        }),
        "proof",
        &|b| matches!(b, Broken::Inclusion { .. }),
    );
    // Proofs dropped: nothing breaks, but nothing is anchored any more, and it says so.
    let (summary, broken) =
        integrity::verify_bundle(&edit(&text, |v| v["type"] != "proof"), &trusted).unwrap();
    assert!(broken.is_empty(), "{broken:#?}");
    assert_eq!(summary.events_after_last_checkpoint, summary.events);
    let (summary, _) = integrity::verify_bundle(&text, &trusted).unwrap();
    assert_eq!(summary.events_after_last_checkpoint, 0);
    // A bundle re-signed with another key is not trusted.
    let (_, broken) =
        integrity::verify_bundle(&text, &[Signer::from_seed(&[1; 32]).public_key()]).unwrap();
    assert!(broken.iter().any(|b| matches!(b, Broken::Signature { .. })));
}

#[tokio::test]
async fn the_cli_verifies_a_bundle_and_exits_1_naming_the_broken_place() {
    let env = env().await;
    let h = history(&env).await;
    checkpoint_everything(&env, None).await;
    let lines = audit::bundle(env.ledger.pool(), &Scope::Scan(h.retried), None)
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("scanledger-audit-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.jsonl");
    std::fs::write(&good, bundle_text(&lines)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanledger"))
        .args(["audit", "verify", "--bundle"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        edit(&bundle_text(&lines), |v| {
            if v["type"] == "event" && v["version"] == 3 {
                v["worker_id"] = "someone-else".into();
            }
            true
        }),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanledger"))
        .args(["audit", "verify", "--bundle"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("scan {} version 3", h.retried)),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

async fn three_mutes(env: &TestEnv) -> Vec<Uuid> {
    use scanledger::domain::governance::{GovernanceEvent, MuteAdded, MuteSelector};
    let mut ids = vec![];
    for i in 0..3 {
        let id = Uuid::new_v4();
        env.ledger
            .append_governance(
                id,
                0,
                "auditor-test",
                GovernanceEvent::MuteAdded(MuteAdded {
                    selector: MuteSelector::Fingerprint {
                        fingerprint: format!("fp{i}"),
                    },
                    reason: format!("reason {i}"),
                    expires_at: None,
                }),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn governance_facts_verify_and_their_database_hashes_match_the_verifier() {
    let env = env().await;
    three_mutes(&env).await;
    let mut conn = env.db.owner.owner_connection().await.unwrap();
    let (summary, broken) = audit::verify(&mut conn, &[], |_| {}).await.unwrap();
    assert_eq!(broken, vec![]);
    assert_eq!(summary.governance_events, 3);
    assert!(summary.governance_head.is_some());
}

#[tokio::test]
async fn an_edited_mute_reason_is_named() {
    let env = env().await;
    three_mutes(&env).await;
    tamper(
        &env,
        "UPDATE governance_events SET payload = jsonb_set(payload, '{reason}', '\"nothing to see\"')
          WHERE seq = (SELECT min(seq) + 1 FROM governance_events)",
    )
    .await;
    let broken = verify_online(&env, &[]).await;
    assert!(
        matches!(broken.as_slice(), [Broken::GovernanceHash { .. }]),
        "{broken:?}"
    );
}

#[tokio::test]
async fn a_deleted_unmute_or_mute_is_named() {
    let env = env().await;
    three_mutes(&env).await;
    tamper(
        &env,
        "DELETE FROM governance_events WHERE seq = (SELECT min(seq) + 1 FROM governance_events)",
    )
    .await;
    let broken = verify_online(&env, &[]).await;
    assert!(
        matches!(broken.as_slice(), [Broken::GovernanceChain { .. }]),
        "{broken:?}"
    );
}
