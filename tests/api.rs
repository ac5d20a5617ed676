//! The HTTP API, served on a real socket against a real PostgreSQL, with real tokens.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use scanledger::api::{self, auth, ApiConfig, AppState, AuthMode, Role};
use scanledger::domain::{Event, FailureCode, ScanId};
use scanledger::worker::{Shutdown, WorkerEvent};
use serde_json::{json, Value};

struct App {
    base: String,
    http: reqwest::Client,
    env: TestEnv,
    state: AppState,
    reader: String,
    operator: String,
    admin: String,
    _stop: scanledger::worker::ShutdownTrigger,
}

async fn spawn_app_with(config: ApiConfig) -> App {
    let env = env().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, shutdown) = Shutdown::new();
    let state = AppState::new(env.ledger.clone(), AuthMode::Tokens, config);
    tokio::spawn(api::serve(listener, state.clone(), shutdown));
    let token = |name: &'static str, role| {
        let pool = env.pool.clone();
        async move { auth::create_token(&pool, name, role).await.unwrap() }
    };
    App {
        reader: token("dashboard", Role::Reader).await,
        operator: token("ci-pipeline", Role::Operator).await,
        admin: token("ops-admin", Role::Admin).await,
        base,
        http: {
            scanledger::install_crypto_provider();
            reqwest::Client::new()
        },
        state,
        env,
        _stop: stop,
    }
}

async fn spawn_app() -> App {
    spawn_app_with(ApiConfig::default()).await
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post_as(&self, token: &str, path: &str, body: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        self.post_as(&self.operator, path, body).await
    }

    async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(&self.reader, path).await
    }

    async fn json(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }

    async fn trigger(&self, subscription: &str) -> ScanId {
        let resp = self
            .post(
                "/api/scans",
                &json!({ "subscription_id": subscription }).to_string(),
            )
            .await;
        assert_eq!(resp.status(), 202);
        let body: Value = resp.json().await.unwrap();
        serde_json::from_value(body["scan_id"].clone()).unwrap()
    }
}

/// Checks the problem+json contract and that nothing internal leaks.
async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(
        body["correlation_id"], request_id,
        "the correlation id is the request id"
    );
    let text = body.to_string().to_lowercase();
    for leak in [
        "sqlx",
        "postgres",
        "panicked",
        "backtrace",
        "select ",
        "insert ",
        "slk_",
        "stack",
    ] {
        assert!(!text.contains(leak), "problem body leaks {leak:?}: {text}");
    }
    body
}

fn random_sub() -> String {
    uuid::Uuid::new_v4().to_string()
}

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
async fn tokens_are_required_and_roles_are_enforced() {
    let app = spawn_app().await;
    // No token, a malformed one, an unknown one.
    let resp = app.http.get(app.url("/api/scans")).send().await.unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    problem(resp, 401).await;
    problem(app.get_as("not-a-token", "/api/scans").await, 401).await;
    problem(app.get_as(&auth::generate_token(), "/api/scans").await, 401).await;
    // Health needs none.
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A reader cannot trigger or cancel; an operator cannot manage tokens.
    let body = json!({"subscription_id": SUB}).to_string();
    problem(app.post_as(&app.reader, "/api/scans", &body).await, 403).await;
    let id = app.trigger(SUB).await;
    problem(
        app.post_as(&app.reader, &format!("/api/scans/{id}/cancel"), "")
            .await,
        403,
    )
    .await;
    problem(app.get_as(&app.operator, "/api/tokens").await, 403).await;
    // Admins manage tokens; a revoked token stops working.
    let created = app
        .post_as(
            &app.admin,
            "/api/tokens",
            &json!({"name": "short-lived", "role": "reader"}).to_string(),
        )
        .await;
    assert_eq!(created.status(), 201);
    let token = created.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get_as(&token, "/api/scans").await.status(), 200);
    problem(
        app.post_as(
            &app.admin,
            "/api/tokens",
            &json!({"name": "short-lived", "role": "reader"}).to_string(),
        )
        .await,
        409,
    )
    .await;
    let p = problem(
        app.post_as(
            &app.admin,
            "/api/tokens",
            &json!({"name": "x", "role": "root"}).to_string(),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(p["field"], "role");
    let listed = app
        .get_as(&app.admin, "/api/tokens")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed["count"], 4);
    assert!(
        !listed.to_string().contains("slk_"),
        "token list never shows tokens"
    );
    let revoked = app
        .http
        .delete(app.url("/api/tokens/short-lived"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    problem(app.get_as(&token, "/api/scans").await, 401).await;
    let again = app
        .http
        .delete(app.url("/api/tokens/short-lived"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    problem(again, 404).await;
    let hashes: i64 = count(
        &app.env.pool,
        "SELECT count(*) FROM api_tokens WHERE length(token_hash) = 32",
    )
    .await;
    assert_eq!(hashes, 4, "only 32-byte hashes are stored");
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
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    app.env.pool.close().await;
    problem(app.http.get(app.url("/readyz")).send().await.unwrap(), 503).await;
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_global_feed_never_skips_or_repeats_with_eight_concurrent_writers() {
    let app = spawn_app().await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (ledger, stop) = (app.env.ledger.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Varying batch sizes make transactions of different lengths commit out of order.
                request_scans(&ledger, 1 + n % 7, 3).await;
                n += 1;
            }
        }));
    }
    let mut seen: Vec<(i64, i64)> = Vec::new();
    let mut after = String::from("0");
    let started = Instant::now();
    let mut done_writing = false;
    loop {
        let page = app
            .json(&format!("/api/events?after={after}&limit=200"))
            .await;
        for e in page["events"].as_array().unwrap() {
            let (tx, seq) = e["cursor"].as_str().unwrap().split_once('.').unwrap();
            seen.push((tx.parse().unwrap(), seq.parse().unwrap()));
        }
        after = page["next"].as_str().unwrap().to_string();
        if !done_writing && started.elapsed() > Duration::from_secs(4) {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for w in writers.drain(..) {
                w.await.unwrap();
            }
            done_writing = true;
        } else if done_writing && page["count"] == 0 {
            break;
        }
    }
    let total = count(&app.env.pool, "SELECT count(*) FROM scan_events").await;
    assert!(total > 500, "writers wrote {total} events");
    assert_eq!(seen.len() as i64, total, "every event exactly once");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "strictly in feed position order"
    );
    let seqs: HashSet<i64> = seen.iter().map(|p| p.1).collect();
    assert_eq!(seqs.len() as i64, total);
    problem(app.get("/api/events?after=garbage").await, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_from_last_event_id() {
    let app = spawn_app().await;
    request_scans(&app.env.ledger, 5, 3).await;
    let read = |last: Option<String>, n: usize| {
        let mut req = app
            .http
            .get(app.url("/api/events/stream"))
            .bearer_auth(&app.reader);
        if let Some(id) = last {
            req = req.header("last-event-id", id);
        }
        async move {
            let mut resp = req.send().await.unwrap();
            assert_eq!(resp.headers()["content-type"], "text/event-stream");
            let mut buf = String::new();
            let mut ids = Vec::new();
            while ids.len() < n {
                let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                buf.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    if let Some(id) = frame
                        .lines()
                        .find_map(|l| l.strip_prefix("id: ").or(l.strip_prefix("id:")))
                    {
                        ids.push(id.trim().to_string());
                    }
                }
            }
            ids
        }
    };
    let first = read(None, 3).await;
    assert_eq!(first.len(), 3);
    let rest = read(Some(first[2].clone()), 2).await;
    let all: Vec<String> = first.iter().chain(rest.iter()).cloned().collect();
    assert_eq!(
        all.iter().collect::<HashSet<_>>().len(),
        5,
        "no event repeated after resuming"
    );
    let feed = app.json("/api/events?limit=5").await;
    let expected: Vec<String> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all, expected, "the stream serves the feed, in feed order");
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

#[tokio::test]
async fn metrics_request_ids_and_cors() {
    let app = spawn_app_with(ApiConfig {
        cors_origins: vec!["https://dash.example".into()],
        ..ApiConfig::default()
    })
    .await;
    app.trigger(SUB).await;
    problem(app.get("/api/scans/nope").await, 400).await;
    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    for needle in [
        "scanledger_http_requests_total{method=\"POST\",route=\"/api/scans\",status=\"202\"} 1",
        "scanledger_http_requests_total{method=\"GET\",route=\"/api/scans/{id}\",status=\"400\"} 1",
        "scanledger_http_request_duration_seconds_bucket{route=\"/api/scans\",le=\"+Inf\"} 1",
        "scanledger_scans{status=\"pending\"} 1",
        "scanledger_queue_depth 1",
        "scanledger_oldest_pending_seconds",
        "scanledger_claims_total 0",
        "scanledger_lease_expiries_total 0",
    ] {
        assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
    }
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/scans"))
        .header("origin", "https://dash.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    let other = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    let plain = spawn_app().await;
    let r = plain
        .http
        .get(plain.url("/healthz"))
        .header("origin", "https://dash.example")
        .send()
        .await
        .unwrap();
    assert!(
        !r.headers().contains_key("access-control-allow-origin"),
        "CORS is off by default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_per_scan_and_latest_per_subscription_with_openshield_fields() {
    use scanledger::domain::Severity;
    let app = spawn_app().await;
    let old = app.trigger(SUB).await;
    let job = ScriptedJob::new(Behaviour::Succeed);
    job.script(
        old,
        [Behaviour::Find(vec![finding(
            "storage-https-only",
            "old",
            Severity::High,
            "storage",
        )])],
    );
    let job = Arc::new(job);
    let mut w = spawn_worker(&app.env.ledger, job.clone(), fast_config("finder"));
    wait_event(
        &mut w.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Finished { scan_id, .. } if *scan_id == old),
    )
    .await;
    // No worker runs while the next scan is requested and scripted.
    w.stop().await;
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
    job.script(new, [Behaviour::Find(many)]);
    let mut w = spawn_worker(&app.env.ledger, job.clone(), fast_config("finder-2"));
    wait_event(
        &mut w.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Finished { scan_id, .. } if *scan_id == new),
    )
    .await;
    w.stop().await;

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

#[tokio::test]
async fn requests_over_the_time_budget_get_a_504_problem() {
    // A zero budget: anything that waits on the database runs out of time.
    let app = spawn_app_with(ApiConfig {
        request_timeout: Duration::ZERO,
        ..ApiConfig::default()
    })
    .await;
    let p = problem(app.get("/api/scans").await, 504).await;
    assert_eq!(p["code"], "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_history_and_scan_diffs_for_auditors() {
    use scanledger::domain::{ScanId, Severity};
    use scanledger::ledger::NewScan;
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
        let id = ScanId::new();
        job.script(id, [Behaviour::Find(plan)]);
        app.env
            .ledger
            .request(vec![NewScan {
                scan_id: id,
                request: requested(3),
            }])
            .await
            .unwrap();
        wait_event(
            &mut w.events,
            Duration::from_secs(10),
            |e| matches!(e, WorkerEvent::Finished { scan_id, .. } if *scan_id == id),
        )
        .await;
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
        400,
    )
    .await;
    assert_eq!(p["field"], "base");
}
