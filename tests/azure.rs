//! The Azure source against a fake ARM + Resource Graph + Entra token server that each
//! test starts: an axum router served over TLS with the test-only certificate in
//! tests/fixtures/tls, trusted through `--azure-ca-file`. Each test scripts the answers
//! and inspects the requests the server recorded (with their arrival times).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;

use scanledger::domain::{FailureCode, SubscriptionId};
use scanledger::scanner::azure::{AzureSettings, AzureSource, CredentialKind, Secret};
use scanledger::scanner::{InventorySource, Needs, Resource};
use scanledger::worker::ScanError;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "4e1c7a52-client-id";
const SECRET: &str = "SeCrEt~never-shown-0123456789";
const TOKEN: &str = "eyJ0eXAiOiJKV1Qi.fake-access-token.signature";
const SUB: &str = "6f1c1a9e-5d7b-4c2e-9a41-0d3e5f7a9b10";
const STORAGE: &str = "Microsoft.Storage/storageAccounts";
const PRICINGS: &str = "Microsoft.Security/pricings";
const GRAPH_PATH: &str = "/providers/Microsoft.ResourceGraph/resources";

// ---------------------------------------------------------------- the fake server

/// One request as the fake server saw it.
#[derive(Clone, Debug)]
struct Seen {
    /// The fake server's own `https://127.0.0.1:port`, for building `nextLink`s.
    base: String,
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    authorization: Option<String>,
    body: String,
    at: Instant,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn is_token(&self) -> bool {
        self.path.ends_with("/oauth2/v2.0/token")
    }
    fn is_graph(&self) -> bool {
        self.path == GRAPH_PATH
    }
    fn skip_token(&self) -> Option<String> {
        self.json()["options"]["$skipToken"]
            .as_str()
            .map(str::to_owned)
    }
}

/// A test's script: `None` falls back to a valid token on the token path, 404 elsewhere.
type Script = dyn Fn(&Seen) -> Option<Response> + Send + Sync;

struct Inner {
    base: String,
    seen: Mutex<Vec<Seen>>,
    script: Box<Script>,
    /// ARM calls being answered now, and the most at once.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A script adds this header to make the fake answer slowly (simulated latency).
const DELAY_HEADER: &str = "x-fake-delay-ms";

struct Fake {
    base: String,
    inner: Arc<Inner>,
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }
    fn graph_calls(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_graph).collect()
    }
}

fn token_ok() -> Response {
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": TOKEN,
    }))
    .into_response()
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        base: inner.base.clone(),
        method,
        path: uri.path().to_owned(),
        query: uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    inner.seen.lock().unwrap().push(seen.clone());
    let counted = !seen.is_token();
    if counted {
        let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
    }
    let mut response = (inner.script)(&seen).unwrap_or_else(|| {
        if seen.is_token() {
            return token_ok();
        }
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": "NotFound", "message": "no such thing"}})),
        )
            .into_response()
    });
    if let Some(ms) = response.headers_mut().remove(DELAY_HEADER) {
        let ms: u64 = ms.to_str().unwrap().parse().unwrap();
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if counted {
        inner.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
    response
}

/// TLS connections, handshaken off the accept loop so one slow client blocks no other.
struct TlsListener {
    rx: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

fn tls_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

fn server_tls() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(tls_dir().join("cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(tls_dir().join("key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    Arc::new(config)
}

async fn fake(script: impl Fn(&Seen) -> Option<Response> + Send + Sync + 'static) -> Fake {
    init_logs();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let inner = Arc::new(Inner {
        base: format!("https://127.0.0.1:{}", addr.port()),
        seen: Mutex::new(Vec::new()),
        script: Box::new(script),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(server_tls());
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((stream, peer)) = tcp.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let _ = tx.send((tls, peer)).await;
                }
            });
        }
    });
    let app = Router::new().fallback(handle).with_state(inner.clone());
    tokio::spawn(async move {
        axum::serve(TlsListener { rx, addr }, app).await.unwrap();
    });
    Fake {
        base: inner.base.clone(),
        inner,
    }
}

// ---------------------------------------------------------------- helpers

/// Logs of every test go to one buffer (and to stderr with TEST_LOG=1), so tests can
/// check that no token or secret was ever logged, by us or by the libraries.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .init();
    });
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

fn args(fake: &Fake) -> AzureSettings {
    AzureSettings {
        arm_endpoint: fake.base.clone(),
        authority_host: fake.base.clone(),
        credential: CredentialKind::ClientSecret,
        tenant_id: Some(TENANT.into()),
        client_id: Some(CLIENT.into()),
        client_secret: Some(Secret::new(SECRET)),
        ca_file: Some(tls_dir().join("cert.pem")),
        // Small, so a client that ignored Retry-After would retry visibly early.
        backoff_base: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        ..AzureSettings::default()
    }
}

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
    let mut stream = source.resources(&sub(), needs);
    let mut out = Vec::new();
    while let Some(r) = stream.next().await {
        out.push(r?);
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
        ..args(&fake)
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

    let got = collect(&args(&fake), &needs(&[STORAGE], &[]))
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

    let got = collect(&args(&fake), &needs(&[STORAGE], &[]))
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

    let err = collect(&args(&fake), &needs(&[STORAGE], &[]))
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

    let got = collect(&args(&fake), &needs(&[STORAGE], &[]))
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
        ..args(f)
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
        ..args(f)
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
        ..args(f)
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

    let err = collect(&args(&fake), &needs(&[STORAGE], &[]))
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

    let err = collect(&args(&fake), &needs(&[STORAGE], &[]))
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
        ..args(&fake)
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
        ..args(&fake)
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
        ..args(&fake)
    };

    let got = collect(&args, &needs(&[STORAGE], &[(STORAGE, BLOB, "2023-01-01")]))
        .await
        .unwrap();

    assert_eq!(ids(&got), (0..8).map(storage_id).collect::<Vec<_>>());
    let max = fake.inner.max_in_flight.load(Ordering::SeqCst);
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

    let err = collect(&args(&fake), &needs(&[PRICINGS], &[]))
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
    let mut a = args(&fake);
    a.max_retries = 1;
    let source = AzureSource::new(&a).expect("source opens");
    let (progress, _rx) = scanledger::worker::ProgressReporter::new();
    let report = scanledger::scanner::scan(&source, Arc::new(catalogue), &sub(), &progress, 2)
        .await
        .expect("the scan completes despite one failed related document");
    let names: Vec<&str> = report
        .findings
        .iter()
        .map(|f| f.resource_name.as_str())
        .collect();
    assert_eq!(names, ["sql-silent"]);
    let t = report.summary.rules["AZ-SQL-001"];
    assert_eq!(
        (t.evaluated, t.failed, t.indeterminate, t.errored),
        (3, 1, 1, 0),
        "the server whose settings could not be fetched is indeterminate, not passing"
    );
    assert_eq!(report.summary.resources_seen, 3);
}
