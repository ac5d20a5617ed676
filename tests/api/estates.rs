//! Estates: one request lists a management group's (or the tenant's) subscriptions
//! through ARM — here the fake ARM server — and requests one scan per subscription under
//! one estate id; `GET /api/estates/{id}` adds them up.

use std::sync::Arc;

use crate::common::*;
use crate::problem;
use axum::response::IntoResponse;
use scanledger::api::estates::Estates;
use scanledger::api::ApiConfig;
use scanledger::domain::Severity;
use scanledger::scanner::azure::AzureSource;
use serde_json::{json, Value};

const SUBS: [&str; 3] = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
];

async fn arm() -> Fake {
    fake(|seen| {
        let base = &seen.base;
        match seen.path.as_str() {
            // Two pages of descendants: a child group, two subscriptions, then the third.
            "/providers/Microsoft.Management/managementGroups/mg-prod/descendants" => {
                assert_eq!(seen.query["api-version"], "2020-05-01");
                let page = if seen.query.contains_key("$skiptoken") {
                    json!({"value": [
                        {"type": "Microsoft.Management/managementGroups/subscriptions", "name": SUBS[2]},
                        {"type": "Microsoft.Management/managementGroups/subscriptions", "name": SUBS[0]},
                    ]})
                } else {
                    json!({"value": [
                        {"type": "Microsoft.Management/managementGroups", "name": "mg-child"},
                        {"type": "Microsoft.Management/managementGroups/subscriptions", "name": SUBS[0]},
                        {"type": "Microsoft.Management/managementGroups/subscriptions", "name": SUBS[1]},
                    ], "nextLink": format!("{base}/providers/Microsoft.Management/managementGroups/mg-prod/descendants?api-version=2020-05-01&$skiptoken=2")})
                };
                Some(axum::Json(page).into_response())
            }
            "/providers/Microsoft.Management/managementGroups/mg-empty/descendants" => {
                Some(axum::Json(json!({"value": []})).into_response())
            }
            "/subscriptions" => Some(
                axum::Json(json!({"value": [
                    {"subscriptionId": SUBS[1], "state": "Enabled"},
                    {"subscriptionId": SUBS[2], "state": "Disabled"},
                ]}))
                .into_response(),
            ),
            _ => None,
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_estate_request_scans_every_subscription_of_a_management_group_once() {
    let fake = arm().await;
    let source = AzureSource::new(&fake.settings()).unwrap();
    let app = spawn_app_with(ApiConfig {
        estates: Some(Estates(Arc::new(source))),
        ..ApiConfig::default()
    })
    .await;

    let resp = app
        .post(
            "/api/scans",
            &json!({"management_group_id": "mg-prod", "rules": ["network"]}).to_string(),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let accepted: Value = resp.json().await.unwrap();
    let estate = accepted["estate_id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/estates/{estate}"));
    assert_eq!(accepted["scope"], "managementGroups/mg-prod");
    let scans = accepted["scan_ids"].as_array().unwrap();
    assert_eq!(
        scans.len(),
        3,
        "three subscriptions, the duplicate and the child group left out"
    );

    // Each scan is a normal scan of its subscription, carrying the estate.
    let mut subs = vec![];
    for id in scans {
        let scan = app
            .json(&format!("/api/scans/{}", id.as_str().unwrap()))
            .await;
        assert_eq!(scan["status"], "pending");
        assert_eq!(scan["rules"], json!(["network"]));
        subs.push(scan["subscription_id"].as_str().unwrap().to_string());
    }
    assert_eq!(subs, SUBS);

    // Complete one with findings: the estate adds it up.
    let first: scanledger::domain::ScanId = serde_json::from_value(scans[0].clone()).unwrap();
    let job = Arc::new(ScriptedJob::new(Behaviour::Succeed));
    run_scripted(
        &app.env.ledger,
        &job,
        first,
        [Behaviour::Find(vec![
            finding("AZ-NET-001", "nsg1", Severity::Critical, "network"),
            finding("AZ-NET-003", "nsg1", Severity::High, "network"),
        ])],
        "estate-worker",
    )
    .await;
    let view = app.json(&location).await;
    assert_eq!(view["scans"], 3);
    assert_eq!(view["scope"], "managementGroups/mg-prod");
    // The worker may have run the other two (without findings) before it stopped.
    let by_status = view["by_status"].as_object().unwrap();
    assert_eq!(
        by_status.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        3
    );
    assert!(by_status["completed"].as_u64().unwrap() >= 1, "{view}");
    assert_eq!(view["findings_by_severity"]["critical"], 1);
    assert_eq!(view["findings_by_severity"]["high"], 1);

    // The tenant: only subscriptions that can be scanned.
    let resp = app
        .post("/api/scans", &json!({"tenant": true}).to_string())
        .await;
    assert_eq!(resp.status(), 202);
    let tenant: Value = resp.json().await.unwrap();
    assert_eq!(tenant["scan_ids"].as_array().unwrap().len(), 1);
    assert_eq!(tenant["scope"], "tenant");

    // Refusals: nothing to scan, a malformed group, a mixed body, an unknown estate.
    problem(
        app.post(
            "/api/scans",
            &json!({"management_group_id": "mg-empty"}).to_string(),
        )
        .await,
        422,
    )
    .await;
    let p = problem(
        app.post(
            "/api/scans",
            &json!({"management_group_id": "bad/group"}).to_string(),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(p["field"], "management_group_id");
    problem(
        app.post(
            "/api/scans",
            &json!({"subscription_id": SUB, "tenant": true}).to_string(),
        )
        .await,
        400,
    )
    .await;
    problem(app.post("/api/scans", &json!({}).to_string()).await, 400).await;
    problem(
        app.get(&format!("/api/estates/{}", uuid::Uuid::new_v4()))
            .await,
        404,
    )
    .await;
    problem(app.get("/api/estates/nope").await, 400).await;
    // The token never reached a log line.
    assert!(!logs().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estates_are_refused_when_the_api_was_not_started_with_estates() {
    let app = spawn_app().await;
    problem(
        app.post("/api/scans", &json!({"tenant": true}).to_string())
            .await,
        503,
    )
    .await;
}
