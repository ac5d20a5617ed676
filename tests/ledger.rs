//! The ledger's invariants, enforced by the database: each test tries to break one.

mod common;

use std::time::Duration;

use common::*;
use scanledger::domain::{
    Cancelled, Completed, Event, Failed, FailureCode, Heartbeat, Progress, PublicError, ScanId,
    ScanSummary, TimedOut, WorkerId,
};
use scanledger::ledger::{AppendError, NewEvent, NewScan};
use scanledger::projection::ScanState;
use sqlx::PgPool;
use uuid::Uuid;

/// Raw insert as the given pool's role, bypassing the Rust ledger (an attacker's view).
async fn raw_insert(
    pool: &PgPool,
    scan: ScanId,
    version: i32,
    kind: &str,
    attempt: i32,
    worker: Option<&str>,
    payload: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO scan_events (scan_id, version, kind, attempt, worker_id, payload) VALUES ($1,$2,$3,$4,$5,$6)")
        .bind(scan.0)
        .bind(version)
        .bind(kind)
        .bind(attempt)
        .bind(worker)
        .bind(payload)
        .execute(pool)
        .await
        .map(|_| ())
}

/// A finding inserted directly, bypassing the ledger (fingerprint: 64 × `ch`).
async fn insert_raw_finding(pool: &PgPool, scan: ScanId, ch: char) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO findings (scan_id, attempt, fingerprint, rule_id, rule_name, severity, category, resource_id,
                               resource_name, resource_type, description, remediation)
         VALUES ($1, 1, repeat($2, 64), 'r', 'r', 'high', 'c', 'id', 'n', 't', 'd', 'm')",
    )
    .bind(scan.0)
    .bind(ch.to_string())
    .execute(pool)
    .await
    .map(|_| ())
}

fn requested_payload() -> serde_json::Value {
    serde_json::json!({"v": 1, "subscription_id": SUB, "priority": 0, "max_attempts": 2})
}

fn expect_refused(r: Result<(), sqlx::Error>, what: &str) -> String {
    match r {
        Err(sqlx::Error::Database(e)) => {
            let code = e.code().unwrap_or_default().to_string();
            assert!(
                code.starts_with("23") || code == "42501",
                "{what}: unexpected error {e}"
            );
            e.constraint().unwrap_or(&code).to_string()
        }
        Err(e) => panic!("{what}: unexpected error {e}"),
        Ok(()) => panic!("{what}: the database accepted it"),
    }
}

async fn one_requested_scan(env: &TestEnv) -> ScanId {
    request_scans(&env.ledger, 1, 2).await[0]
}

#[tokio::test]
async fn update_delete_and_truncate_fail_as_app_role_and_as_owner() {
    let env = env().await;
    one_requested_scan(&env).await;
    let owner = env.db.owner.pool(2).await.unwrap();
    for (who, pool) in [("app role", &env.pool), ("owner", &owner)] {
        for sql in [
            "UPDATE scan_events SET payload = '{\"v\":1}'",
            "DELETE FROM scan_events",
            "TRUNCATE scan_events",
        ] {
            let err = sqlx::query(sql)
                .execute(pool)
                .await
                .expect_err(&format!("{who}: {sql} succeeded"));
            let db = err.as_database_error().expect("database error");
            assert_eq!(db.code().as_deref(), Some("42501"), "{who}: {sql}: {db}");
        }
    }
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM scan_events").await,
        1
    );
    // The app role is refused by its grants, before any trigger runs. It may insert only
    // the columns a writer supplies; the database assigns the rest.
    let privs: (bool, bool, bool, bool, bool) = sqlx::query_as(
        "SELECT has_table_privilege('scanledger_app', 'scan_events', 'SELECT'),
                has_any_column_privilege('scanledger_app', 'scan_events', 'INSERT'),
                has_table_privilege('scanledger_app', 'scan_events', 'UPDATE'),
                has_table_privilege('scanledger_app', 'scan_events', 'DELETE'),
                has_table_privilege('scanledger_app', 'scan_events', 'TRUNCATE')",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(privs, (true, true, false, false, false));
    for (column, writable) in [
        ("scan_id", true),
        ("payload", true),
        ("seq", false),
        ("recorded_at", false),
        ("tx_id", false),
        ("hash", false),
        ("prev_hash", false),
    ] {
        let may: bool = sqlx::query_scalar(
            "SELECT has_column_privilege('scanledger_app', 'scan_events', $1, 'INSERT')",
        )
        .bind(column)
        .fetch_one(&owner)
        .await
        .unwrap();
        assert_eq!(may, writable, "INSERT on scan_events.{column}");
    }
}

#[tokio::test]
async fn a_scan_is_requested_once() {
    let env = env().await;
    let scan = one_requested_scan(&env).await;
    let c = expect_refused(
        raw_insert(
            &env.pool,
            scan,
            2,
            "Requested",
            0,
            None,
            requested_payload(),
        )
        .await,
        "second Requested",
    );
    assert_eq!(c, "scan_events_one_requested");
    let err = env
        .ledger
        .request(vec![NewScan {
            scan_id: scan,
            request: requested(2),
        }])
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn an_attempt_is_claimed_once_and_ends_once() {
    let env = env().await;
    let scan = one_requested_scan(&env).await;
    let claim = serde_json::json!({"v": 1, "lease_ms": 60000});
    raw_insert(&env.pool, scan, 2, "Claimed", 1, Some("w1"), claim.clone())
        .await
        .unwrap();
    // A second claim of attempt 1, at the next version, is refused.
    let c = expect_refused(
        raw_insert(&env.pool, scan, 3, "Claimed", 1, Some("w2"), claim.clone()).await,
        "second claim",
    );
    assert!(
        c == "scan_events_one_claim" || c == "scan_events_lifecycle",
        "{c}"
    );
    // Claiming attempt 2 while attempt 1 is live is refused too.
    expect_refused(
        raw_insert(&env.pool, scan, 3, "Claimed", 2, Some("w2"), claim.clone()).await,
        "claim while live",
    );
    let failed = serde_json::json!({"v": 1, "error": {"code": "throttled", "message": "x"}, "retryable": true, "retry_in_ms": 0});
    raw_insert(&env.pool, scan, 3, "Failed", 1, Some("w1"), failed.clone())
        .await
        .unwrap();
    let completed = serde_json::json!({"v": 1, "summary": {"resources_seen": 0}});
    let c = expect_refused(
        raw_insert(&env.pool, scan, 4, "Completed", 1, Some("w1"), completed).await,
        "second outcome",
    );
    assert!(
        c == "scan_events_one_outcome" || c == "scan_events_fencing",
        "{c}"
    );
}

#[tokio::test]
async fn the_unique_indexes_hold_even_without_the_trigger() {
    // The lifecycle trigger already refuses these; the indexes must refuse them alone.
    let env = env().await;
    let owner = env.db.owner.pool(1).await.unwrap();
    // Without the trigger nothing computes the hash (NOT NULL): a placeholder stands in.
    sqlx::raw_sql(
        "ALTER TABLE scan_events DISABLE TRIGGER scan_events_lifecycle;
         ALTER TABLE scan_events ALTER COLUMN hash SET DEFAULT decode(repeat('00', 32), 'hex')",
    )
    .execute(&owner)
    .await
    .unwrap();
    let scan = ScanId::new();
    raw_insert(&owner, scan, 1, "Requested", 0, None, requested_payload())
        .await
        .unwrap();
    assert_eq!(
        expect_refused(
            raw_insert(&owner, scan, 2, "Requested", 0, None, requested_payload()).await,
            "req"
        ),
        "scan_events_one_requested"
    );
    let claim = serde_json::json!({"v": 1, "lease_ms": 1000});
    raw_insert(&owner, scan, 2, "Claimed", 1, Some("a"), claim.clone())
        .await
        .unwrap();
    assert_eq!(
        expect_refused(
            raw_insert(&owner, scan, 3, "Claimed", 1, Some("b"), claim).await,
            "claim"
        ),
        "scan_events_one_claim"
    );
    let done = serde_json::json!({"v": 1, "summary": {"resources_seen": 0}});
    raw_insert(&owner, scan, 3, "Completed", 1, Some("a"), done.clone())
        .await
        .unwrap();
    assert_eq!(
        expect_refused(
            raw_insert(&owner, scan, 4, "TimedOut", 1, Some("r"), done.clone()).await,
            "outcome"
        ),
        "scan_events_one_outcome"
    );
    assert_eq!(
        expect_refused(
            raw_insert(&owner, scan, 3, "Heartbeat", 1, Some("a"), done).await,
            "version"
        ),
        "scan_events_stream_version"
    );
}

#[tokio::test]
async fn versions_have_no_gaps_and_start_with_requested() {
    let env = env().await;
    let scan = one_requested_scan(&env).await;
    let claim = serde_json::json!({"v": 1, "lease_ms": 60000});
    expect_refused(
        raw_insert(&env.pool, scan, 3, "Claimed", 1, Some("w"), claim.clone()).await,
        "gap",
    );
    expect_refused(
        raw_insert(&env.pool, ScanId::new(), 1, "Claimed", 1, Some("w"), claim).await,
        "stream without Requested",
    );
    expect_refused(
        raw_insert(
            &env.pool,
            ScanId::new(),
            2,
            "Requested",
            0,
            None,
            requested_payload(),
        )
        .await,
        "Requested at version 2",
    );
    expect_refused(
        raw_insert(
            &env.pool,
            ScanId::new(),
            1,
            "Requested",
            0,
            None,
            serde_json::json!({"max_attempts": 1}),
        )
        .await,
        "payload without schema version",
    );
}

#[tokio::test]
async fn only_the_owner_speaks_for_an_attempt_and_nothing_follows_a_terminal_state() {
    let env = env().await;
    let scan = one_requested_scan(&env).await;
    let claims = env
        .ledger
        .claim(&WorkerId::new("owner"), 1, Duration::from_secs(60), false)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    let beat = |worker: &str, version| NewEvent {
        scan_id: scan,
        expected_version: version,
        attempt: 1,
        worker_id: Some(WorkerId::new(worker)),
        event: Event::Heartbeat(Heartbeat {
            lease_ms: 60_000,
            progress: Progress::default(),
        }),
    };
    let err = env.ledger.append(beat("intruder", 2)).await.unwrap_err();
    assert!(
        matches!(&err, AppendError::Rejected { constraint, .. } if constraint == "scan_events_fencing"),
        "{err:?}"
    );
    // The lease has not run out: nobody may time it out yet.
    let timeout = NewEvent {
        scan_id: scan,
        expected_version: 2,
        attempt: 1,
        worker_id: Some(WorkerId::new("reaper")),
        event: Event::TimedOut(TimedOut {
            lease_holder: WorkerId::new("owner"),
            retry_in_ms: Some(0),
        }),
    };
    let err = env.ledger.append(timeout).await.unwrap_err();
    assert!(
        matches!(&err, AppendError::Rejected { constraint, .. } if constraint == "scan_events_lease"),
        "{err:?}"
    );
    env.ledger.append(beat("owner", 2)).await.unwrap();
    let done = NewEvent {
        scan_id: scan,
        expected_version: 3,
        attempt: 1,
        worker_id: Some(WorkerId::new("owner")),
        event: Event::Completed(Completed {
            origin: None,
            summary: ScanSummary::default(),
            findings: Default::default(),
        }),
    };
    env.ledger.append(done).await.unwrap();
    let cancel = NewEvent {
        scan_id: scan,
        expected_version: 4,
        attempt: 0,
        worker_id: None,
        event: Event::Cancelled(Cancelled {
            origin: None,
            cancelled_by: None,
            reason: None,
        }),
    };
    let err = env.ledger.append(cancel).await.unwrap_err();
    assert!(
        matches!(&err, AppendError::Rejected { constraint, .. } if constraint == "scan_events_terminal"),
        "{err:?}"
    );
    assert_eq!(
        status_of(&env.ledger, scan).await.status,
        ScanState::Completed
    );
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test]
async fn retries_stop_at_max_attempts_and_non_retryable_failures_cannot_retry() {
    let env = env().await;
    let scan = one_requested_scan(&env).await; // max_attempts = 2
    let w = WorkerId::new("w");
    let fail = |version, attempt, retryable, retry_in_ms| NewEvent {
        scan_id: scan,
        expected_version: version,
        attempt,
        worker_id: Some(w.clone()),
        event: Event::Failed(Failed {
            origin: None,
            error: PublicError::new(FailureCode::SourceUnavailable, Uuid::new_v4()),
            retryable,
            retry_in_ms,
        }),
    };
    env.ledger
        .claim(&w, 1, Duration::from_secs(60), false)
        .await
        .unwrap();
    let err = env
        .ledger
        .append(fail(2, 1, false, Some(0)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AppendError::Rejected { constraint, .. } if constraint == "scan_events_lifecycle"),
        "{err:?}"
    );
    env.ledger.append(fail(2, 1, true, Some(0))).await.unwrap();
    assert_eq!(
        env.ledger
            .claim(&w, 1, Duration::from_secs(60), false)
            .await
            .unwrap()
            .len(),
        1
    );
    // Attempt 2 is the last: a retry plan is refused, and so is a third claim.
    let err = env
        .ledger
        .append(fail(4, 2, true, Some(0)))
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Rejected { .. }), "{err:?}");
    env.ledger.append(fail(4, 2, true, None)).await.unwrap();
    let row = status_of(&env.ledger, scan).await;
    assert_eq!((row.status, row.attempt), (ScanState::Failed, 2));
    let third = serde_json::json!({"v": 1, "lease_ms": 60000});
    expect_refused(
        raw_insert(&env.pool, scan, 6, "Claimed", 3, Some("w"), third).await,
        "third attempt",
    );
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test]
async fn concurrent_appends_at_one_version_let_exactly_one_win() {
    let env = env().await;
    let scan = one_requested_scan(&env).await;
    let w = WorkerId::new("w");
    env.ledger
        .claim(&w, 1, Duration::from_secs(60), false)
        .await
        .unwrap();
    // 16 writers race to append at version 2 on separate connections.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let ledger = env.ledger.clone();
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            ledger
                .append(NewEvent {
                    scan_id: scan,
                    expected_version: 2,
                    attempt: 1,
                    worker_id: Some(w),
                    event: Event::Heartbeat(Heartbeat {
                        lease_ms: 60_000,
                        progress: Progress {
                            resources_seen: i,
                            ..Default::default()
                        },
                    }),
                })
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(e) => {
                assert_eq!(e.version, 3);
                won += 1;
            }
            Err(e) => assert!(e.is_lost(), "loser must get a typed conflict, got {e:?}"),
        }
    }
    assert_eq!(won, 1);
    // A stale writer gets a Conflict naming the current version, and can re-read.
    let stale = env
        .ledger
        .append(NewEvent {
            scan_id: scan,
            expected_version: 2,
            attempt: 1,
            worker_id: Some(w),
            event: Event::Heartbeat(Heartbeat {
                lease_ms: 1,
                progress: Progress::default(),
            }),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            stale,
            AppendError::Conflict {
                expected: 2,
                actual: Some(3),
                ..
            }
        ),
        "{stale:?}"
    );
    assert_eq!(env.ledger.stream(scan).await.unwrap().len(), 3);
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test]
async fn projection_follows_each_lifecycle_step_inline() {
    let env = env().await;
    let scan = one_requested_scan(&env).await;
    let row = status_of(&env.ledger, scan).await;
    assert_eq!(
        (row.status, row.attempt, row.version),
        (ScanState::Pending, 0, 1)
    );
    let w = WorkerId::new("w");
    let claim = env
        .ledger
        .claim(&w, 10, Duration::from_secs(30), false)
        .await
        .unwrap()
        .remove(0);
    let row = status_of(&env.ledger, scan).await;
    assert_eq!(
        (row.status, row.attempt, row.worker_id.as_deref()),
        (ScanState::Running, 1, Some("w"))
    );
    assert_eq!(row.lease_expires_at, Some(claim.lease_expires_at));
    let events = env.ledger.stream(scan).await.unwrap();
    assert_eq!(
        row.lease_expires_at.unwrap() - events[1].recorded_at,
        chrono::Duration::seconds(30)
    );
    env.ledger
        .append(NewEvent {
            scan_id: scan,
            expected_version: 2,
            attempt: 1,
            worker_id: Some(w.clone()),
            event: Event::Failed(Failed {
                origin: None,
                error: PublicError::new(FailureCode::Throttled, Uuid::new_v4()),
                retryable: true,
                retry_in_ms: Some(60_000),
            }),
        })
        .await
        .unwrap();
    let row = status_of(&env.ledger, scan).await;
    assert_eq!(row.status, ScanState::Pending);
    assert_eq!(row.error.as_ref().unwrap().code, FailureCode::Throttled);
    let failed_at = env.ledger.stream(scan).await.unwrap()[2].recorded_at;
    assert_eq!(
        row.next_eligible_at,
        Some(failed_at + chrono::Duration::seconds(60))
    );
    // Not eligible before its retry time.
    assert!(env
        .ledger
        .claim(&w, 10, Duration::from_secs(30), false)
        .await
        .unwrap()
        .is_empty());
    assert_projection_matches_ledger(&env).await;
    assert_ledger_invariants(&env.pool).await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_refuses_a_projection_it_cannot_trust() {
    use scanledger::ledger::schema::{self, SchemaError};
    let env = env().await;
    one_requested_scan(&env).await;
    schema::migrate(&env.db.owner)
        .await
        .expect("migrating twice is a no-op");
    let owner = env.db.owner.pool(1).await.unwrap();

    sqlx::query("UPDATE projections SET version = 99 WHERE name = 'scan_status'")
        .execute(&owner)
        .await
        .unwrap();
    let err = schema::migrate(&env.db.owner).await.unwrap_err();
    assert!(
        matches!(
            err,
            SchemaError::ProjectionVersion {
                found: 99,
                wanted: 3,
                ..
            }
        ),
        "{err}"
    );

    sqlx::raw_sql("DROP TABLE scan_status; DELETE FROM projections")
        .execute(&owner)
        .await
        .unwrap();
    let err = schema::migrate(&env.db.owner).await.unwrap_err();
    assert!(
        matches!(err, SchemaError::ProjectionMissing { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn findings_are_written_with_their_completion_and_never_edited() {
    use scanledger::domain::Severity;
    let env = env().await;
    let scan = one_requested_scan(&env).await;
    let w = WorkerId::new("w");
    env.ledger
        .claim(&w, 1, Duration::from_secs(60), false)
        .await
        .unwrap();
    // A finding for an attempt that has not completed is refused.
    let orphan = insert_raw_finding(&env.pool, scan, 'a').await;
    assert_eq!(
        expect_refused(orphan, "orphan finding"),
        "findings_with_completion"
    );

    let findings = vec![
        finding("storage-https-only", "st1", Severity::High, "storage"),
        finding("storage-public-blob", "st1", Severity::Critical, "storage"),
    ];
    env.ledger
        .append(NewEvent {
            scan_id: scan,
            expected_version: 2,
            attempt: 1,
            worker_id: Some(w),
            event: Event::Completed(Completed {
                origin: None,
                summary: ScanSummary {
                    findings: 2,
                    ..Default::default()
                },
                findings: findings.clone().into(),
            }),
        })
        .await
        .unwrap();
    assert_eq!(count(&env.pool, "SELECT count(*) FROM findings").await, 2);
    // Added later, in another transaction: refused.
    let late = insert_raw_finding(&env.pool, scan, 'b').await;
    assert_eq!(
        expect_refused(late, "late finding"),
        "findings_with_completion"
    );
    let owner = env.db.owner.pool(1).await.unwrap();
    for (who, pool) in [("app", &env.pool), ("owner", &owner)] {
        for sql in [
            "UPDATE findings SET severity = 'low'",
            "DELETE FROM findings",
            "TRUNCATE findings",
        ] {
            let err = sqlx::query(sql).execute(pool).await.expect_err(sql);
            assert_eq!(
                err.as_database_error().unwrap().code().as_deref(),
                Some("42501"),
                "{who}: {sql}"
            );
        }
    }
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT fingerprint FROM findings ORDER BY finding_id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        findings
            .iter()
            .map(|f| f.fingerprint.clone())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn pooled_connections_limit_statements_and_idle_transactions() {
    let env = env().await;
    let (statement, idle): (String, String) = sqlx::query_as(
        "SELECT current_setting('statement_timeout'),
                current_setting('idle_in_transaction_session_timeout')",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!((statement.as_str(), idle.as_str()), ("1min", "1min"));
}
