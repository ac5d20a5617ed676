//! The Azure source against the fake ARM + Resource Graph + Entra token server of
//! tests/common/fake_arm.rs, which each test starts: served over TLS with the test-only
//! certificate in tests/fixtures/tls, trusted through `--azure-ca-file`. Each test
//! scripts the answers and inspects the requests the server recorded (with their
//! arrival times).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{json, Value};

use common::*;
use scanledger::domain::{FailureCode, SubscriptionId};
use scanledger::scanner::azure::{AzureSettings, AzureSource, CredentialKind, Secret};
use scanledger::scanner::{InventorySource, Needs, Resource};
use scanledger::worker::ScanError;

const STORAGE: &str = "Microsoft.Storage/storageAccounts";
const PRICINGS: &str = "Microsoft.Security/pricings";

// ---------------------------------------------------------------- helpers

fn needs(types: &[&str], related: &[(&str, &str, &str)]) -> Needs {
    let mut n = Needs {
        types: types.iter().map(|t| t.to_string()).collect(),
        related: BTreeMap::new(),
    };
    for (t, path, version) in related {
        n.related
            .entry(t.to_ascii_lowercase())
            .or_default()
            .insert(path.to_string(), version.to_string());
    }
    n
}

fn sub() -> SubscriptionId {
    SubscriptionId::parse(SUB).unwrap()
}

async fn collect(args: &AzureSettings, needs: &Needs) -> Result<Vec<Resource>, ScanError> {
    let source = AzureSource::new(args).expect("source opens");
    let mut stream = source.list(&sub(), needs).resources;
    let mut out = Vec::new();
    while let Some(r) = stream.next().await {
        out.push(r?.into_document());
    }
    Ok(out)
}

fn storage_id(i: usize) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa{i:02}")
}

fn storage(i: usize) -> Value {
    json!({
        "id": storage_id(i),
        "name": format!("sa{i:02}"),
        "type": "microsoft.storage/storageaccounts",
        "location": "westeurope",
        "properties": {"supportsHttpsTrafficOnly": true},
    })
}

fn graph_page(items: Vec<Value>, skip: Option<&str>) -> Response {
    let mut body = json!({
        "totalRecords": 5,
        "count": items.len(),
        "data": items,
        "resultTruncated": "false",
    });
    if let Some(s) = skip {
        body["$skipToken"] = json!(s);
    }
    axum::Json(body).into_response()
}

fn ids(resources: &[Resource]) -> Vec<String> {
    resources
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

/// Five storage accounts over three Resource Graph pages of two.
fn graph_three_pages(seen: &Seen) -> Option<Response> {
    if !seen.is_graph() {
        return None;
    }
    Some(match seen.skip_token().as_deref() {
        None => graph_page(vec![storage(0), storage(1)], Some("page-2")),
        Some("page-2") => graph_page(vec![storage(2), storage(3)], Some("page-3")),
        Some("page-3") => graph_page(vec![storage(4)], None),
        Some(other) => panic!("unexpected skip token {other}"),
    })
}

fn pricings_path() -> String {
    format!("/subscriptions/{SUB}/providers/Microsoft.Security/pricings")
}

/// Three pricing plans over three ARM pages linked by `nextLink`.
fn pricings_three_pages(seen: &Seen) -> Option<Response> {
    if seen.path != pricings_path() {
        return None;
    }
    let page = seen.query.get("$skiptoken").map(String::as_str);
    let plan = |name: &str| {
        json!({
            "id": format!("/subscriptions/{SUB}/providers/Microsoft.Security/pricings/{name}"),
            "name": name,
            "type": "Microsoft.Security/pricings",
            "properties": {"pricingTier": "Standard"},
        })
    };
    let next = |n: &str| {
        format!(
            "{}{}?api-version=2024-01-01&$skiptoken={n}",
            seen.base,
            pricings_path()
        )
    };
    Some(
        axum::Json(match page {
            None => json!({"value": [plan("VirtualMachines")], "nextLink": next("2")}),
            Some("2") => json!({"value": [plan("SqlServers")], "nextLink": next("3")}),
            Some("3") => json!({"value": [plan("StorageAccounts")]}),
            Some(other) => panic!("unexpected page {other}"),
        })
        .into_response(),
    )
}

// ---------------------------------------------------------------- (a) paging

#[tokio::test]
async fn pages_through_resource_graph_and_arm_lists_in_order() {
    let fake = fake(move |s| graph_three_pages(s).or_else(|| pricings_three_pages(s))).await;
    let args = AzureSettings {
        page_size: 2,
        ..fake.settings()
    };

    let got = collect(&args, &needs(&[STORAGE, PRICINGS], &[]))
        .await
        .unwrap();

    let mut want: Vec<String> = (0..5).map(storage_id).collect();
    for plan in ["VirtualMachines", "SqlServers", "StorageAccounts"] {
        want.push(format!(
            "/subscriptions/{SUB}/providers/Microsoft.Security/pricings/{plan}"
        ));
    }
    assert_eq!(ids(&got), want, "every resource once, in listing order");
    assert_eq!(ids(&got).into_iter().collect::<BTreeSet<_>>().len(), 8);

    let graph = fake.graph_calls();
    assert_eq!(graph.len(), 3, "three Resource Graph pages");
    let tokens: Vec<Option<String>> = graph.iter().map(Seen::skip_token).collect();
    assert_eq!(tokens, [None, Some("page-2".into()), Some("page-3".into())]);
    for call in &graph {
        assert_eq!(call.json()["options"]["$top"], json!(2));
    }
    let pricing_pages = fake
        .seen()
        .iter()
        .filter(|s| s.path == pricings_path())
        .count();
    assert_eq!(pricing_pages, 3, "three ARM pages through nextLink");
}

// ---------------------------------------------------------------- (b) Retry-After

#[tokio::test]
async fn honours_retry_after_on_429() {
    let calls = AtomicUsize::new(0);
    let fake = fake(move |s| {
        if !s.is_graph() {
            return None;
        }
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    axum::Json(json!({"error": {"code": "RateLimiting", "message": "slow down"}})),
                )
                    .into_response(),
            );
        }
        Some(graph_page(vec![storage(0)], None))
    })
    .await;

    let got = collect(&fake.settings(), &needs(&[STORAGE], &[]))
        .await
        .unwrap();

    assert_eq!(ids(&got), [storage_id(0)]);
    let graph = fake.graph_calls();
    assert_eq!(graph.len(), 2);
    let gap = graph[1].at - graph[0].at;
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    assert!(gap < Duration::from_secs(3), "waited far too long: {gap:?}");
}

#[tokio::test]
async fn pauses_resource_graph_when_its_quota_is_used_up() {
    let fake = fake(|s| {
        if !s.is_graph() {
            return None;
        }
        Some(match s.skip_token().as_deref() {
            None => {
                let mut r = graph_page(vec![storage(0)], Some("page-2"));
                let h = r.headers_mut();
                h.insert("x-ms-user-quota-remaining", "0".parse().unwrap());
                h.insert("x-ms-user-quota-resets-after", "00:00:01".parse().unwrap());
                r
            }
            _ => graph_page(vec![storage(1)], None),
        })
    })
    .await;

    let got = collect(&fake.settings(), &needs(&[STORAGE], &[]))
        .await
        .unwrap();

    assert_eq!(ids(&got), [storage_id(0), storage_id(1)]);
    let graph = fake.graph_calls();
    let gap = graph[1].at - graph[0].at;
    assert!(gap >= Duration::from_secs(1), "next query after {gap:?}");
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_fails_as_throttled_at_once() {
    let fake = fake(|s| {
        s.is_graph()
            .then(|| (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "600")]).into_response())
    })
    .await;

    let err = collect(&fake.settings(), &needs(&[STORAGE], &[]))
        .await
        .expect_err("throttled");

    assert_eq!(err.code, FailureCode::Throttled);
    assert!(err.code.retryable());
    assert_eq!(
        fake.graph_calls().len(),
        1,
        "no ten-minute wait inside the scan"
    );
}

// ---------------------------------------------------------------- (c) 503 then success

#[tokio::test]
async fn retries_a_503_and_succeeds() {
    let calls = AtomicUsize::new(0);
    let fake = fake(move |s| {
        if !s.is_graph() {
            return None;
        }
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
        Some(graph_page(vec![storage(0), storage(1)], None))
    })
    .await;

    let got = collect(&fake.settings(), &needs(&[STORAGE], &[]))
        .await
        .unwrap();

    assert_eq!(ids(&got), [storage_id(0), storage_id(1)]);
    assert_eq!(fake.graph_calls().len(), 2, "one failure, one retry");
}

// ---------------------------------------------------------------- (d) exhausted budget

async fn always(code: u16, args_of: impl Fn(&Fake) -> AzureSettings) -> (ScanError, usize) {
    let fake = fake(move |s| s.is_graph().then(|| status(code).into_response())).await;
    let err = collect(&args_of(&fake), &needs(&[STORAGE], &[]))
        .await
        .expect_err("the scan fails");
    (err, fake.graph_calls().len())
}

#[tokio::test]
async fn spent_retry_budget_fails_retryably_as_unavailable() {
    let (err, calls) = always(503, |f| AzureSettings {
        retry_budget: 3,
        max_retries: 6,
        ..f.settings()
    })
    .await;
    assert_eq!(err.code, FailureCode::SourceUnavailable);
    assert!(err.code.retryable());
    assert!(err.detail.contains("budget"), "{}", err.detail);
    assert_eq!(
        calls, 4,
        "the first try and the three retries of the budget"
    );
}

#[tokio::test]
async fn spent_retry_budget_on_429_fails_retryably_as_throttled() {
    let (err, calls) = always(429, |f| AzureSettings {
        retry_budget: 2,
        ..f.settings()
    })
    .await;
    assert_eq!(err.code, FailureCode::Throttled);
    assert!(err.code.retryable());
    assert_eq!(calls, 3);
}

#[tokio::test]
async fn spent_request_retries_fail_retryably() {
    let (err, calls) = always(502, |f| AzureSettings {
        max_retries: 2,
        retry_budget: 100,
        ..f.settings()
    })
    .await;
    assert_eq!(err.code, FailureCode::SourceUnavailable);
    assert!(err.code.retryable());
    assert_eq!(calls, 3, "the first try and two retries");
}

// ---------------------------------------------------------------- (e) rejected credentials

const REQUEST_ID: &str = "3c1a4f0e-request-id-from-fake";
const BODY_MARKER: &str = "body-text-that-must-not-leak";

fn assert_sanitized(err: &ScanError, what: &str) {
    assert_eq!(
        err.code,
        FailureCode::CredentialsRejected,
        "{what}: {err:?}"
    );
    assert!(!err.code.retryable());
    let public = err.code.public_message();
    let display = err.to_string();
    for text in [public, display.as_str()] {
        for secret in [
            TOKEN,
            SECRET,
            REQUEST_ID,
            BODY_MARKER,
            "AuthorizationFailed",
            "invalid_client",
        ] {
            assert!(!text.contains(secret), "{what}: {text:?} shows {secret:?}");
        }
    }
    assert!(display.contains(public), "{display}");
    // The detail (logs only) may name status and request id, never secrets or prose.
    for secret in [TOKEN, SECRET, BODY_MARKER] {
        assert!(
            !err.detail.contains(secret),
            "{what}: detail shows {secret:?}"
        );
    }
    let logs = logs();
    assert!(!logs.contains(TOKEN), "{what}: a log line shows the token");
    assert!(
        !logs.contains(SECRET),
        "{what}: a log line shows the secret"
    );
}

async fn token_refused(description: String) -> ScanError {
    let fake = fake(move |s| {
        s.is_token().then(|| {
            let body = json!({
                "error": "invalid_client",
                "error_description": description,
                "error_codes": [7000215],
                "trace_id": "abc",
            });
            (
                StatusCode::UNAUTHORIZED,
                [("x-ms-request-id", REQUEST_ID)],
                axum::Json(body),
            )
                .into_response()
        })
    })
    .await;

    let err = collect(&fake.settings(), &needs(&[STORAGE], &[]))
        .await
        .expect_err("rejected");

    let seen = fake.seen();
    assert_eq!(
        seen.iter().filter(|s| s.is_token()).count(),
        1,
        "a refused secret is not retried"
    );
    assert!(
        seen.iter().all(Seen::is_token),
        "no ARM call without a token"
    );
    err
}

#[tokio::test]
async fn token_401_is_rejected_credentials_without_leaks() {
    // As Entra answers: the description holds \r\n escapes (which azure_identity 1.0
    // cannot parse, so the status comes from the transport).
    let err = token_refused(format!(
        "AADSTS7000215: Invalid client secret provided. {BODY_MARKER}\r\nTrace ID: abc\r\nCorrelation ID: def"
    ))
    .await;
    assert_sanitized(&err, "token 401");
    assert!(err.detail.contains("HTTP 401"), "{}", err.detail);
}

#[tokio::test]
async fn token_401_with_a_parsed_body_is_rejected_credentials_without_leaks() {
    let err = token_refused(format!(
        "AADSTS7000215: Invalid client secret provided. {BODY_MARKER}"
    ))
    .await;
    assert_sanitized(&err, "token 401 parsed");
    assert!(err.detail.contains("HTTP 401"), "{}", err.detail);
    assert!(err.detail.contains("7000215"), "{}", err.detail);
}

#[tokio::test]
async fn resource_graph_403_is_rejected_credentials_without_leaks() {
    let fake = fake(|s| {
        s.is_graph().then(|| {
            let body = json!({"error": {
                "code": "AuthorizationFailed",
                "message": format!("The client '{CLIENT}' does not have authorization. {BODY_MARKER}"),
            }});
            (
                StatusCode::FORBIDDEN,
                [
                    ("x-ms-request-id", REQUEST_ID),
                    ("x-ms-correlation-request-id", REQUEST_ID),
                ],
                axum::Json(body),
            )
                .into_response()
        })
    })
    .await;

    let err = collect(&fake.settings(), &needs(&[STORAGE], &[]))
        .await
        .expect_err("rejected");

    assert_sanitized(&err, "graph 403");
    assert!(err.detail.contains("403"), "{}", err.detail);
    assert!(err.detail.contains("AuthorizationFailed"), "{}", err.detail);
    assert_eq!(fake.graph_calls().len(), 1, "a 403 is not retried");
}

// ---------------------------------------------------------------- (f) related documents

const BLOB: &str = "blobServices/default";
const DIAG: &str = "providers/Microsoft.Insights/diagnosticSettings";
const POLICY: &str = "managementPolicies/default";
const AUDIT: &str = "auditingSettings/default";
const CONFIG: &str = "configurations/require_secure_transport";

/// Each storage account's children: an object, a two-page list, 404, 500, 403.
fn storage_children(s: &Seen) -> Option<Response> {
    let (_, child) = s
        .path
        .split_once("/sa00/")
        .or_else(|| s.path.split_once("/sa01/"))?;
    let json = |v: Value| axum::Json(v).into_response();
    Some(match child {
        BLOB => json(json!({
            "id": s.path,
            "properties": {"deleteRetentionPolicy": {"enabled": true}},
        })),
        DIAG => match s.query.get("page").map(String::as_str) {
            None => json(json!({
                "value": [{"name": "d1"}],
                "nextLink": format!("{}{}?api-version=2021-05-01-preview&page=2", s.base, s.path),
            })),
            Some("2") => json(json!({"value": [{"name": "d2"}, {"name": "d3"}]})),
            Some(p) => panic!("page {p}"),
        },
        POLICY => status(404).into_response(),
        AUDIT => status(500).into_response(),
        CONFIG => status(403).into_response(),
        other => panic!("unexpected child {other}"),
    })
}

#[tokio::test]
async fn attaches_related_documents() {
    let fake = fake(move |s| {
        if s.is_graph() {
            return Some(graph_page(vec![storage(0), storage(1)], None));
        }
        storage_children(s)
    })
    .await;
    let args = AzureSettings {
        max_retries: 2,
        ..fake.settings()
    };
    let related = [
        (STORAGE, BLOB, "2023-01-01"),
        (STORAGE, DIAG, "2021-05-01-preview"),
        (STORAGE, POLICY, "2023-01-01"),
        (STORAGE, AUDIT, "2021-11-01"),
        (STORAGE, CONFIG, "2022-12-01"),
    ];

    let got = collect(&args, &needs(&[STORAGE], &related)).await.unwrap();

    assert_eq!(ids(&got), [storage_id(0), storage_id(1)], "order kept");
    for r in &got {
        let rel = r["related"].as_object().expect("related attached");
        assert_eq!(
            rel[BLOB]["properties"]["deleteRetentionPolicy"]["enabled"],
            json!(true),
            "a GET's object is stored"
        );
        assert_eq!(
            rel[DIAG],
            json!([{"name": "d1"}, {"name": "d2"}, {"name": "d3"}]),
            "a list's pages are concatenated"
        );
        assert_eq!(rel[POLICY], Value::Null, "404 means none exists");
        assert!(
            !rel.contains_key(AUDIT),
            "500 after retries leaves the key absent"
        );
        assert!(
            !rel.contains_key(CONFIG),
            "403 on a child leaves the key absent"
        );
        assert_eq!(r["properties"]["supportsHttpsTrafficOnly"], json!(true));
    }
    let audit_tries = fake
        .seen()
        .iter()
        .filter(|s| s.path == format!("{}/{AUDIT}", storage_id(0)))
        .count();
    assert_eq!(audit_tries, 3, "the first try and two retries");
    assert!(
        logs().contains(&storage_id(0)),
        "the skipped child is logged"
    );
}

// ---------------------------------------------------------------- (g) what ARM saw

#[tokio::test]
async fn sends_the_bearer_token_and_api_versions() {
    let fake = fake(move |s| {
        if s.path.ends_with(&format!("/sa00/{BLOB}")) {
            return Some(axum::Json(json!({"properties": {}})).into_response());
        }
        graph_three_pages(s).or_else(|| pricings_three_pages(s))
    })
    .await;
    let args = AzureSettings {
        page_size: 2,
        ..fake.settings()
    };

    collect(
        &args,
        &needs(&[STORAGE, PRICINGS], &[(STORAGE, BLOB, "2023-01-01")]),
    )
    .await
    .unwrap();

    let seen = fake.seen();
    let token_calls: Vec<&Seen> = seen.iter().filter(|s| s.is_token()).collect();
    assert_eq!(token_calls.len(), 1, "the token is cached");
    assert_eq!(token_calls[0].path, format!("/{TENANT}/oauth2/v2.0/token"));
    let form: BTreeMap<String, String> = form_urlencoded::parse(token_calls[0].body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], CLIENT);
    assert_eq!(form["scope"], format!("{}/.default", fake.base));

    let arm: Vec<&Seen> = seen.iter().filter(|s| !s.is_token()).collect();
    assert!(arm.len() >= 3 + 3 + 5);
    for s in &arm {
        assert_eq!(
            s.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{}",
            s.path
        );
        let method = if s.is_graph() {
            Method::POST
        } else {
            Method::GET
        };
        assert_eq!(s.method, method, "{}", s.path);
        let want = if s.is_graph() {
            "2022-10-01"
        } else if s.path == pricings_path() {
            "2024-01-01"
        } else {
            "2023-01-01"
        };
        assert_eq!(
            s.query.get("api-version").map(String::as_str),
            Some(want),
            "{}",
            s.path
        );
    }
    let first = fake.graph_calls()[0].json();
    assert_eq!(first["subscriptions"], json!([SUB]));
    assert_eq!(first["options"]["resultFormat"], json!("objectArray"));
    let query = first["query"].as_str().unwrap();
    assert!(
        query.contains("'microsoft.storage/storageaccounts'"),
        "{query}"
    );
    assert!(
        !query.contains("pricings"),
        "pricings come from ARM: {query}"
    );
    assert!(query.ends_with("order by id asc"), "{query}");
    // This test's calls are done, so their log lines are in (trace level, all crates).
    let logs = logs();
    assert!(!logs.contains(TOKEN), "a log line shows the token");
    assert!(!logs.contains(SECRET), "a log line shows the secret");
}

// ---------------------------------------------------------------- concurrency

#[tokio::test]
async fn bounds_concurrent_arm_calls() {
    let fake = fake(|s| {
        if s.is_graph() {
            return Some(graph_page((0..8).map(storage).collect(), None));
        }
        s.path.ends_with(BLOB).then(|| {
            let mut r = axum::Json(json!({"properties": {}})).into_response();
            r.headers_mut().insert(DELAY_HEADER, "100".parse().unwrap());
            r
        })
    })
    .await;
    let args = AzureSettings {
        concurrency: 3,
        ..fake.settings()
    };

    let got = collect(&args, &needs(&[STORAGE], &[(STORAGE, BLOB, "2023-01-01")]))
        .await
        .unwrap();

    assert_eq!(ids(&got), (0..8).map(storage_id).collect::<Vec<_>>());
    let max = fake.max_in_flight();
    assert!(
        max <= 3,
        "{max} ARM calls at once with --azure-concurrency 3"
    );
    assert!(
        max >= 2,
        "related documents are fetched concurrently (max {max})"
    );
}

// ---------------------------------------------------------------- guards

#[tokio::test]
async fn refuses_a_next_link_to_another_host() {
    let fake = fake(|s| {
        (s.path == pricings_path()).then(|| {
            axum::Json(json!({
                "value": [],
                "nextLink": "https://attacker.example/steal?api-version=1",
            }))
            .into_response()
        })
    })
    .await;

    let err = collect(&fake.settings(), &needs(&[PRICINGS], &[]))
        .await
        .expect_err("refused");

    assert_eq!(err.code, FailureCode::InvalidInventory);
    assert!(err.detail.contains("attacker.example"), "{}", err.detail);
}

#[tokio::test]
async fn open_names_the_missing_variable() {
    let mut a = AzureSettings {
        credential: CredentialKind::ClientSecret,
        tenant_id: None,
        client_id: Some(CLIENT.into()),
        client_secret: Some(Secret::new(SECRET)),
        ..AzureSettings::default()
    };
    let e = AzureSource::new(&a).err().expect("no tenant");
    assert!(e.to_string().contains("AZURE_TENANT_ID"), "{e}");
    a.tenant_id = Some(TENANT.into());
    a.arm_endpoint = "http://management.azure.com".into();
    let e = AzureSource::new(&a).err().expect("plain http");
    assert!(e.to_string().contains("--azure-arm-endpoint"), "{e}");
    assert!(!format!("{a:?}").contains(SECRET), "Debug shows the secret");
}

/// The whole scan on top of the Azure source: Resource Graph lists SQL servers, the
/// source fetches the auditing settings the rule declares, and the rule engine decides.
#[tokio::test]
async fn a_rule_scan_through_the_azure_source_finds_indeterminate_and_passing_servers() {
    use scanledger::scanner::rules::Catalogue;
    let server = |name: &str| {
        json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Sql/servers/{name}"),
            "name": name,
            "type": "microsoft.sql/servers",
            "location": "westeurope",
            "properties": {"publicNetworkAccess": "Disabled", "minimalTlsVersion": "1.2"},
        })
    };
    let fake = fake(move |s| {
        if s.is_graph() {
            return Some(graph_page(
                vec![
                    server("sql-audited"),
                    server("sql-silent"),
                    server("sql-flaky"),
                ],
                None,
            ));
        }
        let json = |v: Value| axum::Json(v).into_response();
        if s.path.ends_with("/sql-audited/auditingSettings/default") {
            return Some(json(
                json!({"properties": {"state": "Enabled", "retentionDays": 90}}),
            ));
        }
        if s.path.ends_with("/sql-silent/auditingSettings/default") {
            return Some(json(json!({"properties": {"state": "Disabled"}})));
        }
        if s.path.ends_with("/sql-flaky/auditingSettings/default") {
            return Some(status(500).into_response());
        }
        None
    })
    .await;
    let catalogue = Catalogue::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .unwrap()
        .select(&["AZ-SQL-001".into()])
        .unwrap();
    let mut a = fake.settings();
    a.max_retries = 1;
    let source = AzureSource::new(&a).expect("source opens");
    let (progress, _rx) = scanledger::worker::ProgressReporter::new();
    let report = scanledger::scanner::scan(&source, Arc::new(catalogue), &sub(), &progress, 2)
        .await
        .expect("the scan completes despite one failed related document");
    let names: Vec<&str> = report.findings.iter().map(|f| &*f.resource_name).collect();
    assert_eq!(names, ["sql-silent"]);
    let t = report.summary.rules["AZ-SQL-001"];
    assert_eq!(
        (t.evaluated, t.failed, t.indeterminate, t.errored),
        (3, 1, 1, 0),
        "the server whose settings could not be fetched is indeterminate, not passing"
    );
    assert_eq!(report.summary.resources_seen, 3);
}

// ---------------------------------------------------------------- child types

const WATCHERS: &str = "Microsoft.Network/networkWatchers";
const FLOW_LOGS: &str = "Microsoft.Network/networkWatchers/flowLogs";

fn watcher_id(region: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_{region}")
}

fn watcher(region: &str) -> Value {
    json!({
        "id": watcher_id(region),
        "name": format!("NetworkWatcher_{region}"),
        "type": "microsoft.network/networkwatchers",
        "location": region,
        "properties": {"provisioningState": "Succeeded"},
    })
}

fn vnet_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/{name}"
    )
}

fn vnet(name: &str) -> Value {
    json!({
        "id": vnet_id(name),
        "name": name,
        "type": "microsoft.network/virtualnetworks",
        "location": "westeurope",
        "properties": {"subnets": [{"id": format!("{}/subnets/app", vnet_id(name)), "name": "app", "properties": {}}]},
    })
}

fn flow_log(region: &str, name: &str, target: &str) -> Value {
    json!({
        "id": format!("{}/flowLogs/{name}", watcher_id(region)),
        "name": name,
        "type": "Microsoft.Network/networkWatchers/flowLogs",
        "location": region,
        "properties": {"targetResourceId": target, "enabled": true},
    })
}

/// Watchers in two regions; the flow logs of westeurope over two pages; eastus's list
/// answers `east` (a status, or the logs).
fn flow_log_server(east: u16, vnets: Vec<Value>) -> impl Fn(&Seen) -> Option<Response> {
    move |s: &Seen| {
        if s.is_graph() {
            let query = s.json()["query"].as_str().unwrap_or_default().to_owned();
            let mut items = Vec::new();
            if query.contains("networkwatchers") {
                items.extend([watcher("westeurope"), watcher("eastus")]);
            }
            if query.contains("virtualnetworks") {
                items.extend(vnets.clone());
            }
            return Some(graph_page(items, None));
        }
        let json = |v: Value| axum::Json(v).into_response();
        if s.path == format!("{}/flowLogs", watcher_id("westeurope")) {
            return Some(match s.query.get("page").map(String::as_str) {
                None => json(json!({
                    "value": [flow_log("westeurope", "fl-a", &vnet_id("vnet-a"))],
                    "nextLink": format!("{}{}?api-version=2024-03-01&page=2", s.base, s.path),
                })),
                Some(_) => json(
                    json!({"value": [flow_log("westeurope", "fl-b", &format!("{}/subnets/app", vnet_id("vnet-b")))]}),
                ),
            });
        }
        if s.path == format!("{}/flowLogs", watcher_id("eastus")) {
            return Some(if east == 200 {
                json(json!({"value": []}))
            } else {
                status(east).into_response()
            });
        }
        None
    }
}

#[tokio::test]
async fn lists_child_types_under_their_parents_and_emits_only_what_rules_read() {
    let fake = fake(flow_log_server(200, vec![])).await;
    let source = AzureSource::new(&fake.settings()).expect("source opens");
    let needs = needs(&[FLOW_LOGS], &[]);
    let inventory = source.list(&sub(), &needs);
    let got: Vec<Resource> = inventory
        .resources
        .map(|r| r.unwrap().into_document())
        .collect()
        .await;

    assert_eq!(
        ids(&got),
        [
            format!("{}/flowLogs/fl-a", watcher_id("westeurope")),
            format!("{}/flowLogs/fl-b", watcher_id("westeurope")),
        ],
        "the flow logs of every watcher, all pages; the watchers themselves are not emitted"
    );
    assert!(inventory.coverage.failed().is_empty());
    let query = fake.graph_calls()[0].json()["query"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        query.contains("'microsoft.network/networkwatchers'"),
        "{query}"
    );
    assert!(!query.contains("flowlogs"), "{query}");
    for s in fake.seen().iter().filter(|s| s.path.ends_with("/flowLogs")) {
        assert_eq!(s.method, Method::GET);
        assert_eq!(
            s.query.get("api-version").map(String::as_str),
            Some("2024-03-01")
        );
    }
}

#[tokio::test]
async fn a_child_list_that_fails_marks_its_type_not_listed_and_the_scan_goes_on() {
    let fake = fake(flow_log_server(403, vec![])).await;
    let source = AzureSource::new(&fake.settings()).expect("source opens");
    let needs = needs(&[FLOW_LOGS, WATCHERS], &[]);
    let inventory = source.list(&sub(), &needs);
    let got: Vec<Resource> = inventory
        .resources
        .map(|r| r.unwrap().into_document())
        .collect()
        .await;
    // Both watchers (a rule reads them) and westeurope's flow logs.
    assert_eq!(got.len(), 4, "{:?}", ids(&got));
    let failed = inventory.coverage.failed();
    assert_eq!(
        failed.keys().collect::<Vec<_>>(),
        ["microsoft.network/networkwatchers/flowlogs"]
    );
    assert!(failed.values().next().unwrap().contains("403"));
    let listed = inventory.coverage.listed(&needs.types);
    assert_eq!(
        listed.into_iter().collect::<Vec<_>>(),
        ["microsoft.network/networkwatchers"]
    );
}

/// AZ-NET-018 through the Azure source: flow-log resources decide, and a flow-log list
/// that could not be read makes the rule indeterminate, never a pass.
#[tokio::test]
async fn vnet_flow_logs_are_decided_by_flow_log_resources_and_unlisted_ones_are_indeterminate() {
    use scanledger::scanner::rules::Catalogue;
    let catalogue = Arc::new(
        Catalogue::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules"))
            .unwrap()
            .select(&["AZ-NET-018".into()])
            .unwrap(),
    );
    let vnets = vec![vnet("vnet-a"), vnet("vnet-b"), vnet("vnet-c")];
    for (east, want) in [(200, Some(vec!["vnet-c"])), (403, None)] {
        let fake = fake(flow_log_server(east, vnets.clone())).await;
        let source = AzureSource::new(&fake.settings()).expect("source opens");
        let (progress, _rx) = scanledger::worker::ProgressReporter::new();
        let report = scanledger::scanner::scan(&source, catalogue.clone(), &sub(), &progress, 2)
            .await
            .expect("the scan completes");
        let names: Vec<&str> = report.findings.iter().map(|f| &*f.resource_name).collect();
        let t = report.summary.rules["AZ-NET-018"];
        match want {
            Some(want) => {
                assert_eq!(
                    names, want,
                    "vnet-a: its own flow log; vnet-b: its subnet's"
                );
                assert_eq!(
                    &*report.findings[0].resource_type,
                    "microsoft.network/virtualnetworks"
                );
                assert_eq!((t.evaluated, t.failed, t.indeterminate), (1, 1, 0));
            }
            None => {
                assert!(names.is_empty(), "{names:?}");
                assert_eq!((t.evaluated, t.failed, t.indeterminate), (1, 0, 1));
            }
        }
        assert_eq!(report.summary.resources_seen, 3 + 2, "VNets and flow logs");
    }
}
