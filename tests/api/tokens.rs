//! Tokens: every route but health needs one, roles are enforced, admins manage them.

use crate::common::*;
use crate::problem;
use scanledger::api::auth;
use serde_json::{json, Value};
use std::time::Duration;

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

/// Another API process over the same database (its own state, cache and listeners).
async fn second_api(
    app: &App,
) -> (
    String,
    scanledger::api::AppState,
    scanledger::shutdown::ShutdownTrigger,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, shutdown) = scanledger::shutdown::Shutdown::new();
    let state = scanledger::api::AppState::new(
        app.env.ledger.clone(),
        scanledger::api::AuthMode::Tokens,
        scanledger::api::ApiConfig::default(),
    );
    tokio::spawn(scanledger::api::serve(listener, state.clone(), shutdown));
    (base, state, stop)
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_every_api_process_within_a_second() {
    let app = spawn_app().await;
    let (second, second_state, _stop) = second_api(&app).await;
    let status = |base: String, token: String| {
        let http = app.http.clone();
        async move {
            http.get(format!("{base}/api/scans"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Both processes answer from their caches once their listeners are up.
    wait_until(
        "both caches serve the token",
        Duration::from_secs(10),
        || async {
            status(app.base.clone(), app.reader.clone()).await == 200
                && status(second.clone(), app.reader.clone()).await == 200
                && app.state.tokens.hits() > 0
                && second_state.tokens.hits() > 0
        },
    )
    .await;

    // Revoked behind the service's back, by the owner in SQL: the database announces it.
    let owner = app.env.db.owner.pool(1).await.unwrap();
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE name = 'dashboard'")
        .execute(&owner)
        .await
        .unwrap();
    wait_until(
        "both processes refuse it",
        Duration::from_secs(1),
        || async {
            status(app.base.clone(), app.reader.clone()).await == 401
                && status(second.clone(), app.reader.clone()).await == 401
        },
    )
    .await;

    // Revoked through the API of one process: the other refuses it too.
    assert_eq!(status(second.clone(), app.operator.clone()).await, 200);
    assert_eq!(status(second.clone(), app.operator.clone()).await, 200);
    let revoked = app
        .http
        .delete(app.url("/api/tokens/ci-pipeline"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    wait_until(
        "the other process refuses it",
        Duration::from_secs(1),
        || async { status(second.clone(), app.operator.clone()).await == 401 },
    )
    .await;
    // Other tokens keep working.
    assert_eq!(status(second.clone(), app.admin.clone()).await, 200);
}
