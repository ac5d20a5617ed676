//! Service-wide behaviour: health and readiness, metrics, request ids, CORS, and the
//! time budget of every request.

use std::time::Duration;

use crate::common::*;
use crate::problem;
use scanledger::api::ApiConfig;
use serde_json::Value;

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
