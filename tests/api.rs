//! The HTTP API, served on a real socket against a real PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use scanledger::api::{self, AppState};
use scanledger::worker::{Shutdown, WorkerEvent};
use serde_json::{json, Value};

struct App {
    base: String,
    http: reqwest::Client,
    env: TestEnv,
    _stop: scanledger::worker::ShutdownTrigger,
}

async fn spawn_app() -> App {
    let env = env().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, shutdown) = Shutdown::new();
    let state = AppState {
        ledger: env.ledger.clone(),
        max_attempts: 3,
    };
    tokio::spawn(api::serve(listener, state, shutdown));
    App {
        base,
        http: reqwest::Client::new(),
        env,
        _stop: stop,
    }
}

impl App {
    async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["correlation_id"]
        .as_str()
        .is_some_and(|c| uuid::Uuid::parse_str(c).is_ok()));
    let text = body.to_string().to_lowercase();
    for leak in [
        "sqlx",
        "postgres",
        "panicked",
        "backtrace",
        "select ",
        "insert ",
    ] {
        assert!(!text.contains(leak), "problem body leaks {leak:?}: {text}");
    }
    body
}

#[tokio::test]
async fn trigger_returns_202_with_location_and_a_pending_scan() {
    let app = spawn_app().await;
    for path in ["/api/scans", "/api/scans/trigger"] {
        let resp = app
            .post(path, &json!({"subscription_id": SUB}).to_string())
            .await;
        assert_eq!(resp.status(), 202);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "pending");
        let id = body["scan_id"].as_str().unwrap();
        assert_eq!(location, format!("/api/scans/{id}"));
        let scan: Value = app.get(&location).await.json().await.unwrap();
        assert_eq!(scan["status"], "pending");
        assert_eq!(scan["subscription_id"], SUB);
        assert_eq!(scan["attempt"], 0);
        assert_eq!(scan["max_attempts"], 3);
        let requested_at = scan["requested_at"].as_str().unwrap();
        assert!(requested_at.ends_with('Z'), "RFC 3339 UTC: {requested_at}");
        chrono::DateTime::parse_from_rfc3339(requested_at).unwrap();
    }
    assert_eq!(count_status(&app.env.pool, "pending").await, 2);
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
            None,
        ),
        ("{not json".to_string(), None),
        (
            json!({"subscription_id": SUB, "rules": [""]}).to_string(),
            Some("rules"),
        ),
    ];
    for (body, field) in cases {
        let p = problem(app.post("/api/scans", &body).await, 400).await;
        assert_eq!(p["code"], "bad_request", "{body}");
        if let Some(field) = field {
            assert_eq!(p["field"], field, "{body}: {p}");
        }
    }
    // Too large, and not JSON.
    let big = json!({"subscription_id": SUB, "rules": vec!["x".repeat(100); 1000]}).to_string();
    problem(app.post("/api/scans", &big).await, 413).await;
    let resp = app
        .http
        .post(format!("{}/api/scans", app.base))
        .header("content-type", "text/plain")
        .body(json!({"subscription_id": SUB}).to_string())
        .send()
        .await
        .unwrap();
    problem(resp, 415).await;
    assert_eq!(
        count(&app.env.pool, "SELECT count(*) FROM scan_events").await,
        0,
        "nothing appended"
    );
}

#[tokio::test]
async fn bad_ids_are_400_and_unknown_ids_404() {
    let app = spawn_app().await;
    let p = problem(app.get("/api/scans/12345").await, 400).await;
    assert_eq!(p["field"], "id");
    let p = problem(
        app.get(&format!("/api/scans/{}", uuid::Uuid::new_v4()))
            .await,
        404,
    )
    .await;
    assert_eq!(p["code"], "not_found");
    problem(app.get("/api/nothing-here").await, 404).await;
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    // With the database gone, readiness fails (liveness does not).
    app.env.pool.close().await;
    problem(app.get("/readyz").await, 503).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reflects_each_lifecycle_step() {
    let app = spawn_app().await;
    let body: Value = app
        .post("/api/scans", &json!({"subscription_id": SUB}).to_string())
        .await
        .json()
        .await
        .unwrap();
    let id: scanledger::ledger::ScanId = serde_json::from_value(body["scan_id"].clone()).unwrap();
    let path = format!("/api/scans/{id}");
    let job = ScriptedJob::new(Behaviour::Succeed);
    job.script(
        id,
        [
            Behaviour::Fail(scanledger::ledger::FailureCode::SourceUnavailable),
            Behaviour::Slow(Duration::from_millis(600)),
        ],
    );
    let mut cfg = fast_config("api-worker");
    cfg.retry.base = Duration::from_millis(400);
    cfg.retry.cap = Duration::from_millis(400);
    let mut w = spawn_worker(&app.env.ledger, Arc::new(job), cfg);

    // Attempt 1 fails retryably: pending again, with the public error and the retry time.
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Finished { attempt: 1, .. })
    })
    .await;
    let s: Value = app.get(&path).await.json().await.unwrap();
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
    // Attempt 2 runs, heart-beating.
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Heartbeat { attempt: 2, .. })
    })
    .await;
    let s: Value = app.get(&path).await.json().await.unwrap();
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
    let s: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(s["status"], "completed");
    assert!(s["finished_at"].is_string());
    assert!(s["lease_expires_at"].is_null());
    w.stop().await;
    assert_projection_matches_ledger(&app.env.ledger).await;
}
