//! The HTTP API, served on a real socket against a real PostgreSQL, with real tokens.
//! One test binary (so one PostgreSQL cluster), one module per resource:
//!
//! - `scans`: request, read, list, long-poll, cancel, per-scan history;
//! - `tokens`: authentication, roles, token management;
//! - `findings`: findings per scan and per subscription, finding history, scan diffs;
//! - `events`: the global feed and its event stream;
//! - `health`: health, readiness, metrics, request ids, CORS, the request time budget;
//! - `reports`: scan reports (SARIF, CSV, OCSF, JSON), equal to the CLI's, streamed;
//! - `console`: the console's roll-ups (subscriptions, posture, compliance, operations)
//!   and its files under `/ui`.

#[path = "../common/mod.rs"]
mod common;

mod console;
mod estates;
mod events;
mod findings;
mod governance;
mod health;
mod reports;
mod scans;
mod tokens;

use serde_json::Value;

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

/// The value of an unlabelled (or fully labelled) sample in a `/metrics` text.
fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {sample} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

fn random_sub() -> String {
    uuid::Uuid::new_v4().to_string()
}
