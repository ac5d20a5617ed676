//! Attacks on the ledger by the login the service runs as (issue #10): raw SQL through
//! `TestDatabase.database` (a runtime login, member of `scanledger_app`, that owns
//! nothing), and the processes' refusal to start as the owner or against a schema
//! they were not built for. Each shows the database (or the binary) refuses, or
//! overwrites what the attacker chose.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use scanledger::testing::{TestCluster, RUNTIME_LOGIN};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_scanledger");

fn requested_payload(max_attempts: i32) -> serde_json::Value {
    serde_json::json!({"v": 1, "subscription_id": SUB, "priority": 0, "max_attempts": max_attempts})
}

fn claim_payload() -> serde_json::Value {
    serde_json::json!({"v": 1, "lease_ms": 60000})
}

/// The writer's columns only: what the runtime login may insert.
async fn insert(
    conn: impl sqlx::PgExecutor<'_>,
    scan: Uuid,
    version: i32,
    kind: &str,
    attempt: i32,
    worker: Option<&str>,
    payload: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scan_events (scan_id, version, kind, attempt, worker_id, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(scan)
    .bind(version)
    .bind(kind)
    .bind(attempt)
    .bind(worker)
    .bind(payload)
    .execute(conn)
    .await
    .map(|_| ())
}

async fn requested_scan(pool: &PgPool, max_attempts: i32) -> Uuid {
    let scan = Uuid::new_v4();
    insert(
        pool,
        scan,
        1,
        "Requested",
        0,
        None,
        requested_payload(max_attempts),
    )
    .await
    .expect("a valid Requested");
    scan
}

/// The SQLSTATE and constraint of a refusal; panics when it was accepted.
fn refused<T: std::fmt::Debug>(r: Result<T, sqlx::Error>, what: &str) -> (String, String) {
    match r {
        Err(sqlx::Error::Database(e)) => (
            e.code().unwrap_or_default().to_string(),
            e.constraint().unwrap_or_default().to_string(),
        ),
        Err(e) => panic!("{what}: unexpected error {e}"),
        Ok(v) => panic!("{what}: the database accepted it ({v:?})"),
    }
}

async fn runtime_connection(env: &TestEnv) -> PgConnection {
    env.db
        .database
        .owner_connection()
        .await
        .expect("a runtime connection")
}

async fn owner_connection(env: &TestEnv) -> PgConnection {
    env.db
        .owner
        .owner_connection()
        .await
        .expect("an owner connection")
}

#[tokio::test]
async fn the_runtime_login_cannot_choose_recorded_at() {
    let env = env().await;
    let scan = requested_scan(&env.pool, 2).await;
    let r = sqlx::query(
        "INSERT INTO scan_events (scan_id, version, kind, attempt, worker_id, payload, recorded_at)
         VALUES ($1, 2, 'Claimed', 1, 'w1', $2, '2999-01-01')",
    )
    .bind(scan)
    .bind(claim_payload())
    .execute(&env.pool)
    .await;
    assert_eq!(refused(r, "Claimed in 2999").0, "42501");

    // Without the column, the database's clock: now() of the inserting transaction.
    let mut conn = runtime_connection(&env).await;
    let mut tx = conn.begin().await.unwrap();
    let is_now: bool = sqlx::query_scalar(
        "INSERT INTO scan_events (scan_id, version, kind, attempt, worker_id, payload)
         VALUES ($1, 2, 'Claimed', 1, 'w1', $2) RETURNING recorded_at = now()",
    )
    .bind(scan)
    .bind(claim_payload())
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(is_now, "recorded_at is the database's now()");
}

#[tokio::test]
async fn the_runtime_login_cannot_choose_seq_or_tx_id() {
    let env = env().await;
    let r = sqlx::query(
        "INSERT INTO scan_events (seq, scan_id, version, kind, attempt, payload)
         OVERRIDING SYSTEM VALUE VALUES (-7, $1, 1, 'Requested', 0, $2)",
    )
    .bind(Uuid::new_v4())
    .bind(requested_payload(2))
    .execute(&env.pool)
    .await;
    assert_eq!(refused(r, "seq = -7").0, "42501");

    let r = sqlx::query(
        "INSERT INTO scan_events (scan_id, version, kind, attempt, payload, tx_id)
         VALUES ($1, 1, 'Requested', 0, $2, '1'::xid8)",
    )
    .bind(Uuid::new_v4())
    .bind(requested_payload(2))
    .execute(&env.pool)
    .await;
    assert_eq!(refused(r, "forged tx_id").0, "42501");
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM scan_events").await,
        0
    );
}

#[tokio::test]
async fn the_owner_may_name_recorded_at_and_tx_id_but_the_trigger_overwrites_them() {
    let env = env().await;
    let mut owner = owner_connection(&env).await;
    let mut tx = owner.begin().await.unwrap();
    let (recorded_now, tx_now): (bool, bool) = sqlx::query_as(
        "INSERT INTO scan_events (scan_id, version, kind, attempt, payload, recorded_at, tx_id)
         VALUES ($1, 1, 'Requested', 0, $2, '2999-01-01', '1'::xid8)
         RETURNING recorded_at = now(), tx_id = pg_current_xact_id()",
    )
    .bind(Uuid::new_v4())
    .bind(requested_payload(2))
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(recorded_now, "recorded_at overwritten with now()");
    assert!(tx_now, "tx_id overwritten with pg_current_xact_id()");
}

#[tokio::test]
async fn no_temporary_table_can_stand_in_for_the_ledger() {
    let env = env().await;
    // The runtime login has no TEMP on the database.
    let mut conn = runtime_connection(&env).await;
    let r = sqlx::raw_sql("CREATE TEMP TABLE scan_events (x integer)")
        .execute(&mut conn)
        .await;
    assert_eq!(
        refused(r, "CREATE TEMP TABLE as the runtime login").0,
        "42501"
    );

    // A real scan with one attempt, completed.
    let scan = requested_scan(&env.pool, 1).await;
    insert(
        &env.pool,
        scan,
        2,
        "Claimed",
        1,
        Some("w1"),
        claim_payload(),
    )
    .await
    .unwrap();
    let completed = serde_json::json!({"v": 1, "summary": {"resources_seen": 0}});
    insert(&env.pool, scan, 3, "Completed", 1, Some("w1"), completed)
        .await
        .unwrap();

    // The owner (superuser: TEMP regardless) plants a shadow table in which attempt 7 is
    // live at version 41, then appends to the real table from that session.
    let mut owner = owner_connection(&env).await;
    sqlx::raw_sql("CREATE TEMP TABLE scan_events AS SELECT * FROM public.scan_events WHERE false")
        .execute(&mut owner)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO pg_temp.scan_events (seq, scan_id, version, kind, attempt, worker_id, payload,
                                          recorded_at, tx_id, hash)
         VALUES (1, $1, 41, 'Heartbeat', 7, 'w1', '{\"v\": 1, \"lease_ms\": 600000}', now(),
                 pg_current_xact_id(), sha256('x'))",
    )
    .bind(scan)
    .execute(&mut owner)
    .await
    .unwrap();
    let r = sqlx::query(
        "INSERT INTO public.scan_events (scan_id, version, kind, attempt, worker_id, payload)
         VALUES ($1, 42, 'Heartbeat', 7, 'w1', '{\"v\": 1, \"lease_ms\": 60000}')",
    )
    .bind(scan)
    .execute(&mut owner)
    .await;
    let (code, constraint) = refused(r, "Heartbeat for attempt 7 after Completed");
    assert!(code.starts_with("23"), "refused by the trigger: {code}");
    assert!(
        [
            "scan_events_stream_version",
            "scan_events_terminal",
            "scan_events_fencing"
        ]
        .contains(&constraint.as_str()),
        "{constraint}"
    );
    assert_eq!(
        count(
            &env.pool,
            &format!("SELECT count(*) FROM scan_events WHERE scan_id = '{scan}'")
        )
        .await,
        3
    );
}

#[tokio::test]
async fn the_runtime_login_cannot_become_the_owner() {
    let env = env().await;
    requested_scan(&env.pool, 2).await;
    let mut conn = runtime_connection(&env).await;
    sqlx::raw_sql("RESET ROLE")
        .execute(&mut conn)
        .await
        .unwrap();
    let (login, superuser): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(login, RUNTIME_LOGIN);
    assert!(!superuser);
    let owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'scan_events'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let r = sqlx::raw_sql(&format!("SET ROLE \"{owner}\""))
        .execute(&mut conn)
        .await;
    assert_eq!(refused(r, "SET ROLE to the owner").0, "42501");
    for sql in [
        "UPDATE scan_events SET payload = '{\"v\": 1}'",
        "DELETE FROM scan_events",
        "ALTER TABLE scan_events DISABLE TRIGGER USER",
    ] {
        let r = sqlx::raw_sql(sql).execute(&mut conn).await;
        assert_eq!(refused(r, sql).0, "42501", "{sql}");
    }
}

#[tokio::test]
async fn one_running_scan_per_subscription_unless_the_ledger_allows_parallel_scans() {
    let env = env().await;
    // The deployment default (test databases allow parallel scans; this one does not).
    let owner = env.db.owner.pool(1).await.unwrap();
    sqlx::query("UPDATE ledger_settings SET parallel_per_subscription = false")
        .execute(&owner)
        .await
        .unwrap();
    let first = requested_scan(&env.pool, 2).await;
    let second = requested_scan(&env.pool, 2).await;
    insert(
        &env.pool,
        first,
        2,
        "Claimed",
        1,
        Some("w1"),
        claim_payload(),
    )
    .await
    .unwrap();
    let r = insert(
        &env.pool,
        second,
        2,
        "Claimed",
        1,
        Some("w2"),
        claim_payload(),
    )
    .await;
    let (_, constraint) = refused(r, "a second running scan of the subscription");
    assert_eq!(constraint, "scan_events_one_running_per_subscription");

    // The runtime login cannot change the setting; the owner can, once for the ledger.
    let r = sqlx::query("UPDATE ledger_settings SET parallel_per_subscription = true")
        .execute(&env.pool)
        .await;
    assert_eq!(refused(r, "runtime login changes the setting").0, "42501");
    sqlx::query("UPDATE ledger_settings SET parallel_per_subscription = true")
        .execute(&owner)
        .await
        .unwrap();
    insert(
        &env.pool,
        second,
        2,
        "Claimed",
        1,
        Some("w2"),
        claim_payload(),
    )
    .await
    .expect("parallel scans allowed by the ledger's setting");
}

/// Run `scanledger` with `args` and `DATABASE_URL`; killed if it has not exited within
/// `timeout` (a process that should have refused to start).
fn run(args: &[&str], database_url: &str, timeout: Duration) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("SCANLEDGER_OWNER_URL")
        .env_remove("SCANLEDGER_ALLOW_OWNER_LOGIN")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scanledger");
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "scanledger {args:?} still running after {timeout:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const WORKER: &[&str] = &["worker", "--source", "fixture:demo/tenant"];

#[tokio::test]
async fn processes_refuse_the_owners_login() {
    let env = env().await;
    for args in [
        WORKER,
        &["serve", "--no-auth", "--listen", "127.0.0.1:0"],
        &["tokens", "list"],
    ] {
        let out = run(args, &env.db.owner_url, Duration::from_secs(60));
        assert!(!out.status.success(), "{args:?} started as the owner");
        let err = stderr(&out);
        assert!(
            err.contains("--allow-owner-login")
                && err.contains("superuser")
                && err.contains("scanledger migrate --owner-url"),
            "{args:?}: {err}"
        );
    }
    // The same login, allowed explicitly (a throwaway database), starts.
    let out = run(
        &["tokens", "list", "--allow-owner-login"],
        &env.db.owner_url,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The runtime login starts against the migrated database without migrating.
    let out = run(&["tokens", "list"], &env.db.url, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// An empty database in the test cluster, and its owner's (superuser's) URL.
async fn empty_database() -> (String, String) {
    let cluster = TestCluster::shared(&test_root(), false);
    // The shared cluster's template (and so the runtime login) exists once a test
    // database was made.
    cluster.fresh_database().await.unwrap();
    let name = format!("empty_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect_with(&cluster.cluster().connect_options("postgres"))
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    (name.clone(), cluster.cluster().url(&name))
}

#[tokio::test]
async fn a_runtime_login_refuses_an_unmigrated_database_until_the_owner_migrates_it() {
    let (name, owner_url) = empty_database().await;
    let cluster = TestCluster::shared(&test_root(), false).cluster();
    let runtime_url = cluster.login_url(&name, RUNTIME_LOGIN).unwrap();
    for args in [WORKER, &["tokens", "list"]] {
        let out = run(args, &runtime_url, Duration::from_secs(60));
        assert!(!out.status.success(), "{args:?} started unmigrated");
        let err = stderr(&out);
        assert!(
            err.contains("scanledger migrate --owner-url") && err.contains("pending"),
            "{args:?}: {err}"
        );
    }
    // The runtime login cannot migrate it itself: `migrate` uses the owner's URL.
    let out = run(
        &["migrate", "--owner-url", &owner_url],
        &runtime_url,
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["tokens", "list"], &runtime_url, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn migrate_grants_the_runtime_privileges_to_another_app_role() {
    let (name, owner_url) = empty_database().await;
    let cluster = TestCluster::shared(&test_root(), false).cluster();
    let role = format!("ledger_rt_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let out = run(
        &["migrate", "--app-role", &role],
        &owner_url,
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let login = format!("{role}_svc");
    cluster.ensure_login(&login, Some(&role)).await.unwrap();
    let url = cluster.login_url(&name, &login).unwrap();
    // A member of the role starts with --app-role naming it ...
    let out = run(
        &["tokens", "list", "--app-role", &role],
        &url,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // ... and may write only the writer's columns, like scanledger_app.
    let mut conn = PgConnection::connect_with(&cluster.login_options(&name, &login).unwrap())
        .await
        .unwrap();
    let privs: (bool, bool, bool) = sqlx::query_as(
        "SELECT has_column_privilege('scan_events', 'payload', 'INSERT'),
                has_column_privilege('scan_events', 'recorded_at', 'INSERT'),
                has_table_privilege('scan_events', 'UPDATE')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(privs, (true, false, false));
    // A login outside the role is told how to fix it.
    let out = run(
        &["tokens", "list", "--app-role", &role],
        &cluster.login_url(&name, RUNTIME_LOGIN).unwrap(),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("GRANT {role} TO")),
        "{}",
        stderr(&out)
    );
}

// ------------------------------------------------------------------ governance ledger

async fn governance_insert(
    conn: &mut PgConnection,
    stream: Uuid,
    version: i32,
    kind: &str,
    payload: serde_json::Value,
) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
    sqlx::query(
        "INSERT INTO governance_events (stream_id, version, kind, actor, payload)
         VALUES ($1, $2, $3, 'attacker', $4)",
    )
    .bind(stream)
    .bind(version)
    .bind(kind)
    .bind(payload)
    .execute(&mut *conn)
    .await
}

#[tokio::test]
async fn the_runtime_login_can_only_append_well_formed_governance_facts() {
    let env = env().await;
    let mut conn = runtime_connection(&env).await;
    let mute = Uuid::new_v4();
    let good = serde_json::json!({"v": 1, "fingerprint": "ab", "reason": "accepted risk"});
    governance_insert(&mut conn, mute, 1, "MuteAdded", good.clone())
        .await
        .expect("a well-formed mute");

    // Nothing stored can be changed or removed.
    for sql in [
        "UPDATE governance_events SET payload = payload || '{\"reason\": \"nothing\"}'",
        "DELETE FROM governance_events",
        "TRUNCATE governance_events",
    ] {
        let (code, _) = refused(sqlx::query(sql).execute(&mut conn).await, sql);
        assert_eq!(code, "42501", "{sql}");
    }
    // The database's facts are its own: no seq, time, transaction or hash from a writer.
    for column in ["seq", "recorded_at", "tx_id", "hash", "prev_hash"] {
        let sql = format!(
            "INSERT INTO governance_events (stream_id, version, kind, actor, payload, {column})
             SELECT $1, 1, 'MuteAdded', 'x', $2, {column} FROM governance_events LIMIT 1"
        );
        let r = sqlx::query(&sql)
            .bind(Uuid::new_v4())
            .bind(&good)
            .execute(&mut conn)
            .await;
        // 42501: no privilege on the column; 428C9: seq is GENERATED ALWAYS as well.
        let code = refused(r, &sql).0;
        assert!(matches!(&*code, "42501" | "428C9"), "{column}: {code}");
    }
    // The lifecycle: a removal needs a mute; nothing follows a removal; no gaps; no
    // schedule event on a mute's stream.
    let r = governance_insert(
        &mut conn,
        Uuid::new_v4(),
        1,
        "MuteRemoved",
        serde_json::json!({"v": 1}),
    )
    .await;
    assert_eq!(
        refused(r, "orphan removal").1,
        "governance_events_lifecycle"
    );
    let r = governance_insert(
        &mut conn,
        mute,
        3,
        "MuteRemoved",
        serde_json::json!({"v": 1}),
    )
    .await;
    assert_eq!(refused(r, "gap").1, "governance_events_stream_version");
    let r = governance_insert(
        &mut conn,
        mute,
        2,
        "ScheduleRemoved",
        serde_json::json!({"v": 1}),
    )
    .await;
    assert_eq!(refused(r, "wrong kind").1, "governance_events_lifecycle");
    governance_insert(
        &mut conn,
        mute,
        2,
        "MuteRemoved",
        serde_json::json!({"v": 1}),
    )
    .await
    .expect("the removal");
    let r = governance_insert(
        &mut conn,
        mute,
        3,
        "MuteRemoved",
        serde_json::json!({"v": 1}),
    )
    .await;
    assert_eq!(refused(r, "after removal").1, "governance_events_terminal");
    // What an auditor needs is there whoever writes: a reason and a selector; a schedule
    // of at least a minute.
    for (kind, payload, constraint) in [
        (
            "MuteAdded",
            serde_json::json!({"v": 1, "fingerprint": "ab"}),
            "governance_events_mute",
        ),
        (
            "MuteAdded",
            serde_json::json!({"v": 1, "fingerprint": "ab", "reason": "  "}),
            "governance_events_mute",
        ),
        (
            "MuteAdded",
            serde_json::json!({"v": 1, "rule_id": "AZ-NET-001", "reason": "r"}),
            "governance_events_mute",
        ),
        (
            "ScheduleSet",
            serde_json::json!({"v": 1, "subscription_id": "s", "every_s": 30}),
            "governance_events_schedule",
        ),
        (
            "ScheduleSet",
            serde_json::json!({"v": 1, "every_s": 600}),
            "governance_events_schedule",
        ),
    ] {
        let r = governance_insert(&mut conn, Uuid::new_v4(), 1, kind, payload.clone()).await;
        assert_eq!(refused(r, &payload.to_string()).1, constraint, "{payload}");
    }
    // Hashes chain in seq order, computed by the database.
    let chain: Vec<(Option<Vec<u8>>, Vec<u8>)> =
        sqlx::query_as("SELECT prev_hash, hash FROM governance_events ORDER BY seq")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].0, None);
    assert_eq!(chain[1].0.as_deref(), Some(&chain[0].1[..]));
}
