//! Scans: request (with idempotency keys), read (ETag, long-poll), list and page,
//! cancel, and each scan's own history.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::{metric, problem, random_sub};
use scanledger::domain::{Event, FailureCode};
use scanledger::worker::WorkerEvent;
use serde_json::{json, Value};

#[tokio::test]
async fn trigger_returns_202_with_location_and_records_who_asked() {
    let app = spawn_app().await;
    for path in ["/api/scans", "/api/scans/trigger"] {
        let resp = app
            .post(path, &json!({"subscription_id": SUB}).to_string())
            .await;
        assert_eq!(resp.status(), 202);
        assert!(resp.headers().contains_key("x-request-id"));
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            (body["status"].as_str(), body["message"].as_str()),
            (Some("pending"), Some("Scan queued"))
        );
        let id = body["scan_id"].as_str().unwrap();
        assert_eq!(location, format!("/api/scans/{id}"));
        let scan = app.json(&location).await;
        assert_eq!(scan["status"], "pending");
        assert_eq!(scan["subscription_id"], SUB);
        assert_eq!(
            (scan["attempt"].as_i64(), scan["max_attempts"].as_i64()),
            (Some(0), Some(3))
        );
        assert_eq!(scan["requested_by"], "ci-pipeline");
        let requested_at = scan["requested_at"].as_str().unwrap();
        assert!(requested_at.ends_with('Z'), "RFC 3339 UTC: {requested_at}");
        chrono::DateTime::parse_from_rfc3339(requested_at).unwrap();
    }
    let payload: String = sqlx::query_scalar(
        "SELECT payload::text FROM scan_events WHERE kind = 'Requested' LIMIT 1",
    )
    .fetch_one(&app.env.pool)
    .await
    .unwrap();
    assert!(
        payload.contains("\"requested_by\": \"ci-pipeline\""),
        "{payload}"
    );
    assert!(
        !payload.contains(&app.operator),
        "the token itself never reaches the ledger"
    );
}

#[tokio::test]
async fn bad_bodies_are_400_problems_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"subscription_id": "not-a-uuid"}).to_string(),
            Some("subscription_id"),
        ),
        (
            json!({"subscription_id": SUB, "colour": "red"}).to_string(),
            Some("colour"),
        ),
        (json!({}).to_string(), Some("subscription_id")),
        (
            json!({"subscription_id": SUB, "priority": "high"}).to_string(),
            Some("priority"),
        ),
        (
            json!({"subscription_id": SUB, "rules": [""]}).to_string(),
            Some("rules"),
        ),
        ("{not json".to_string(), None),
    ];
    for (body, field) in cases {
        let p = problem(app.post("/api/scans", &body).await, 400).await;
        assert_eq!(p["code"], "bad_request", "{body}");
        if let Some(field) = field {
            assert_eq!(p["field"], field, "{body}: {p}");
        }
    }
    let big = json!({"subscription_id": SUB, "rules": vec!["x".repeat(100); 1000]}).to_string();
    problem(app.post("/api/scans", &big).await, 413).await;
    let resp = app
        .http
        .post(app.url("/api/scans"))
        .bearer_auth(&app.operator)
        .header("content-type", "text/plain")
        .body(json!({"subscription_id": SUB}).to_string())
        .send()
        .await
        .unwrap();
    problem(resp, 415).await;
    // Query strings are strict too.
    let p = problem(app.get("/api/scans?colour=red").await, 400).await;
    assert_eq!(p["field"], "colour");
    let p = problem(app.get("/api/scans?limit=0").await, 400).await;
    assert_eq!(p["field"], "limit");
    let p = problem(app.get("/api/scans?status=sleeping").await, 400).await;
    assert_eq!(p["field"], "status");
    assert_eq!(
        count(&app.env.pool, "SELECT count(*) FROM scan_events").await,
        0,
        "nothing appended"
    );
}

#[tokio::test]
async fn bad_ids_are_400_and_unknown_ids_404() {
    let app = spawn_app().await;
    for path in ["/api/scans/12345", "/api/scans/12345/events"] {
        assert_eq!(problem(app.get(path).await, 400).await["field"], "id");
    }
    problem(app.post("/api/scans/12345/cancel", "").await, 400).await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/scans/{unknown}"),
        format!("/api/scans/{unknown}/events"),
    ] {
        assert_eq!(
            problem(app.get(&path).await, 404).await["code"],
            "not_found"
        );
    }
    problem(
        app.post(&format!("/api/scans/{unknown}/cancel"), "").await,
        404,
    )
    .await;
    problem(app.get("/api/nothing-here").await, 404).await;
}

#[tokio::test]
async fn idempotency_keys_return_the_same_scan_and_refuse_a_different_body() {
    let app = spawn_app().await;
    let send = |key: &'static str, body: Value| {
        let req = app
            .http
            .post(app.url("/api/scans"))
            .bearer_auth(&app.operator)
            .header("idempotency-key", key)
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let first = send("nightly-2026-11-28", json!({"subscription_id": SUB})).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = send(
        "nightly-2026-11-28",
        json!({"subscription_id": SUB.to_uppercase()}),
    )
    .await;
    assert_eq!(
        again.status(),
        200,
        "same key, same request (normalized) → the original"
    );
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let p = problem(
        send(
            "nightly-2026-11-28",
            json!({"subscription_id": SUB, "priority": 5}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["code"], "unprocessable");

    // Concurrent requests with one key create one scan.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let req = app
            .http
            .post(app.url("/api/scans"))
            .bearer_auth(&app.operator)
            .header("idempotency-key", "race")
            .json(&json!({"subscription_id": SUB}));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().json::<Value>().await.unwrap()
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap()["scan_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(
        count(
            &app.env.pool,
            "SELECT count(*) FROM scan_events WHERE kind = 'Requested'"
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_304_and_long_poll_woken_by_the_change() {
    let app = spawn_app().await;
    let id = app.trigger(SUB).await;
    let path = format!("/api/scans/{id}");
    let resp = app.get(&path).await;
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, "\"1\"");
    assert!(
        resp.headers().contains_key("retry-after"),
        "live scans carry a Retry-After hint"
    );
    let cached = app
        .http
        .get(app.url(&path))
        .bearer_auth(&app.reader)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    // Unchanged until the timeout → 304 after about `wait`.
    let t = Instant::now();
    let r = app
        .http
        .get(app.url(&format!("{path}?wait=1")))
        .bearer_auth(&app.reader)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(t.elapsed() >= Duration::from_secs(1));

    // A change wakes the poll: it answers with the new state, long before its 30 s wait.
    let poll = {
        let req = app
            .http
            .get(app.url(&format!("{path}?wait=30")))
            .bearer_auth(&app.reader)
            .header("if-none-match", &etag);
        tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            (
                resp.status(),
                Instant::now(),
                resp.json::<Value>().await.unwrap(),
            )
        })
    };
    wait_until(
        "the long-poll is registered as a waiter",
        Duration::from_secs(10),
        || async {
            app.state.changes.waiters() >= 1
                && count(&app.env.pool, "SELECT count(*) FROM change_waiters").await >= 1
        },
    )
    .await;
    let cancelled = app
        .post(
            &format!("{path}/cancel"),
            &json!({"reason": "test"}).to_string(),
        )
        .await;
    let changed_at = Instant::now();
    assert_eq!(cancelled.status(), 200);
    let (status, answered_at, body) = poll.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["status"], "cancelled");
    let lag = answered_at.saturating_duration_since(changed_at);
    println!("long-poll answered {lag:?} after the change");
    assert!(
        lag < Duration::from_secs(5),
        "woken by the change, not by its 30 s timeout ({lag:?})"
    );
    problem(app.get(&format!("{path}?wait=61")).await, 400).await;
    wait_until(
        "waiter registrations are removed",
        Duration::from_secs(10),
        || async { count(&app.env.pool, "SELECT count(*) FROM change_waiters").await == 0 },
    )
    .await;
}

/// A writer looks for waiters inside its transaction and commits a moment later. A
/// long-poll that registers in between is not announced to, and its first read does not
/// see the change: it must still answer with the change, long before its deadline.
///
/// Every round forces that interleaving: a test-only trigger, deferred to commit (so it
/// runs after the writer looked for waiters and found none), holds the `Cancelled` until
/// all the round's polls have registered; the polls start only once the writer is held.
/// A poll that missed the change would find it only at its 20 s deadline: `late`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_racing_writers_never_miss_a_change() {
    const ROUNDS: usize = 25;
    const POLLS: usize = 8;
    let app = spawn_app().await;
    let mut owner = app.env.db.owner.owner_connection().await.unwrap();
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION test_hold() RETURNS trigger LANGUAGE plpgsql AS $$
         DECLARE give_up timestamptz := clock_timestamp() + interval '10 s';
         BEGIN
             PERFORM pg_sleep(0.01);
             -- Each statement reads a fresh snapshot: the polls' registrations show up.
             WHILE (SELECT count(*) FROM change_waiters WHERE scan_id = NEW.scan_id) < {POLLS}
                   AND clock_timestamp() < give_up LOOP
                 PERFORM pg_sleep(0.005);
             END LOOP;
             PERFORM pg_sleep(0.02); -- the last poll's first read
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER test_hold AFTER INSERT ON scan_events
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.kind = 'Cancelled')
           EXECUTE FUNCTION test_hold();"
    ))
    .execute(&mut owner)
    .await
    .unwrap();
    for round in 0..ROUNDS {
        let ledger = app.env.ledger.clone();
        let id = request_scans(&ledger, 1, 3).await[0];
        let writer = tokio::spawn(async move {
            ledger
                .append(scanledger::ledger::NewEvent {
                    scan_id: id,
                    expected_version: 1,
                    attempt: 0,
                    worker_id: None,
                    event: Event::Cancelled(scanledger::domain::Cancelled {
                        origin: None,
                        cancelled_by: Some("race".into()),
                        reason: None,
                    }),
                })
                .await
                .unwrap()
        });
        wait_until(
            "the writer is held at its commit",
            Duration::from_secs(10),
            || async {
                count(
                    &app.env.pool,
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE datname = current_database() AND wait_event = 'PgSleep'",
                )
                .await
                    > 0
            },
        )
        .await;
        let polls: Vec<_> = (0..POLLS)
            .map(|_| {
                let req = app
                    .http
                    .get(app.url(&format!("/api/scans/{id}?wait=20")))
                    .bearer_auth(&app.reader)
                    .header("if-none-match", "\"1\"");
                tokio::spawn(async move {
                    let resp = req.send().await.unwrap();
                    (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
                })
            })
            .collect();
        writer.await.unwrap();
        for p in polls {
            let (status, body) = p.await.unwrap();
            assert_eq!(status, 200, "round {round}: {body}");
            assert_eq!(body["status"], "cancelled", "round {round}");
        }
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    let late = metric(&text, "scanledger_long_polls_total{outcome=\"late\"}");
    let changed = metric(&text, "scanledger_long_polls_total{outcome=\"changed\"}");
    assert_eq!(late, 0.0, "long-polls that missed the change");
    assert_eq!(changed, (ROUNDS * POLLS) as f64);
    assert_eq!(metric(&text, "scanledger_long_polls_waiting"), 0.0);
}

#[tokio::test]
async fn cancel_appends_cancelled_and_refuses_finished_scans() {
    let app = spawn_app().await;
    let id = app.trigger(SUB).await;
    let resp = app
        .post(
            &format!("/api/scans/{id}/cancel"),
            &json!({"reason": "wrong tenant"}).to_string(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "cancelled");
    assert!(body["finished_at"].is_string());
    let stream = app.env.ledger.stream(id).await.unwrap();
    let Event::Cancelled(c) = &stream.last().unwrap().event else {
        panic!("not cancelled")
    };
    assert_eq!(c.cancelled_by.as_deref(), Some("ci-pipeline"));
    assert_eq!(c.reason.as_deref(), Some("wrong tenant"));
    let p = problem(app.post(&format!("/api/scans/{id}/cancel"), "").await, 409).await;
    assert_eq!(p["code"], "conflict");
    assert_projection_matches_ledger(&app.env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reflects_each_lifecycle_step_and_history_shows_it() {
    let app = spawn_app().await;
    let id = app.trigger(SUB).await;
    let path = format!("/api/scans/{id}");
    let job = ScriptedJob::new(Behaviour::Succeed);
    job.script(
        id,
        [
            Behaviour::Fail(FailureCode::SourceUnavailable),
            Behaviour::Slow(Duration::from_millis(600)),
        ],
    );
    let mut cfg = fast_config("api-worker");
    cfg.retry.base = Duration::from_millis(400);
    cfg.retry.cap = Duration::from_millis(400);
    let mut w = spawn_worker(&app.env.ledger, Arc::new(job), cfg);

    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Finished { attempt: 1, .. })
    })
    .await;
    let s = app.json(&path).await;
    assert_eq!(
        (s["status"].as_str(), s["attempt"].as_i64()),
        (Some("pending"), Some(1))
    );
    assert_eq!(s["error"]["code"], "source_unavailable");
    assert_eq!(
        s["error"]["message"],
        "The inventory source could not be reached."
    );
    assert!(s["next_attempt_at"].is_string());
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Heartbeat { attempt: 2, .. })
    })
    .await;
    let s = app.json(&path).await;
    assert_eq!(
        (s["status"].as_str(), s["attempt"].as_i64()),
        (Some("running"), Some(2))
    );
    assert_eq!(s["worker_id"], "api-worker");
    assert!(s["heartbeat_at"].is_string() && s["lease_expires_at"].is_string());
    assert_eq!(s["progress"]["resources_seen"], 1);
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Finished { attempt: 2, .. })
    })
    .await;
    w.stop().await;
    let s = app.json(&path).await;
    assert_eq!(s["status"], "completed");
    assert!(
        s["finished_at"].is_string()
            && s["completed_at"].is_string()
            && s["started_at"].is_string()
    );
    assert!(s["lease_expires_at"].is_null());
    assert!(!s.as_object().unwrap().contains_key("retry-after"));

    let h = app.json(&format!("{path}/events")).await;
    let events = h["events"].as_array().unwrap();
    assert_eq!(h["count"].as_u64(), Some(events.len() as u64));
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect();
    assert_eq!(
        versions,
        (1..=events.len() as i64).collect::<Vec<_>>(),
        "version order, no gaps"
    );
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[..3], ["Requested", "Claimed", "Failed"]);
    assert_eq!(kinds.last(), Some(&"Completed"));
    assert!(events.iter().all(
        |e| e["payload"]["v"] == scanledger::domain::PAYLOAD_VERSION && e["position"].is_i64()
    ));
    assert_projection_matches_ledger(&app.env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_walked_during_inserts_return_each_existing_scan_once() {
    let app = spawn_app().await;
    let mut existing = HashSet::new();
    for _ in 0..120 {
        existing.insert(app.trigger(&random_sub()).await.to_string());
    }
    // Another client keeps inserting while we page.
    let inserter = {
        let ledger = app.env.ledger.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                request_scans(&ledger, 3, 3).await;
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/scans?limit=25&cursor={c}"),
            None => "/api/scans?limit=25".to_string(),
        };
        let page = app.json(&path).await;
        assert_eq!(
            page["count"].as_u64().unwrap() as usize,
            page["scans"].as_array().unwrap().len()
        );
        seen.extend(
            page["scans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["scan_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    inserter.await.unwrap();
    let seen_existing: Vec<&String> = seen.iter().filter(|s| existing.contains(*s)).collect();
    assert_eq!(
        seen_existing.len(),
        120,
        "each pre-existing scan exactly once"
    );
    assert_eq!(seen_existing.iter().collect::<HashSet<_>>().len(), 120);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        seen.len(),
        "no scan twice"
    );

    // Filters.
    let sub = random_sub();
    let one = app.trigger(&sub).await;
    let page = app.json(&format!("/api/scans?subscription_id={sub}")).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["scans"][0]["scan_id"], one.to_string());
    app.post(&format!("/api/scans/{one}/cancel"), "").await;
    let page = app.json("/api/scans?status=cancelled").await;
    assert_eq!(page["count"], 1);
    let cutoff = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let page = app
        .json(&format!(
            "/api/scans?requested_after={}",
            cutoff.replace('+', "%2B")
        ))
        .await;
    assert_eq!(page["count"], 0);
    let page = app
        .json(&format!(
            "/api/scans?requested_before={}&limit=500",
            cutoff.replace('+', "%2B")
        ))
        .await;
    let all = count(&app.env.pool, "SELECT count(*) FROM scan_status").await;
    assert_eq!(
        page["count"].as_i64(),
        Some(all),
        "everything was requested before the cutoff"
    );
}

#[tokio::test]
async fn openshield_clients_keep_working() {
    let app = spawn_app().await;
    // OpenShield's trigger route and response shape.
    let resp = app
        .post(
            "/api/scans/trigger",
            &json!({"subscription_id": SUB}).to_string(),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    for field in ["scan_id", "status", "message"] {
        assert!(body.get(field).is_some(), "trigger response lacks {field}");
    }
    assert_eq!(body["status"], "pending");
    // OpenShield's list shape and field names.
    let list = app.json("/api/scans").await;
    assert_eq!(list["count"], 1);
    let scan = &list["scans"][0];
    for field in [
        "scan_id",
        "subscription_id",
        "started_at",
        "completed_at",
        "total_findings",
        "status",
    ] {
        assert!(scan.get(field).is_some(), "list item lacks {field}: {scan}");
    }
    assert!(
        ["pending", "running", "completed", "failed"].contains(&scan["status"].as_str().unwrap())
    );
    let one = app
        .json(&format!("/api/scans/{}", body["scan_id"].as_str().unwrap()))
        .await;
    assert_eq!(one["status"], "pending");
}
