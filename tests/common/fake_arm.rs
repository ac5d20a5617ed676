//! A fake ARM + Resource Graph + Entra token server: an axum router served over TLS
//! with the test-only certificate in tests/fixtures/tls, trusted through the Azure
//! source's CA file setting. Each test scripts the answers and inspects the requests the
//! server recorded (with their arrival times). Starting one also captures the logs of
//! the binary, so tests can check that no token or secret was ever logged.

use std::collections::BTreeMap;
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
use scanledger::scanner::azure::{AzureSettings, CredentialKind, Secret};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT: &str = "4e1c7a52-client-id";
pub const SECRET: &str = "SeCrEt~never-shown-0123456789";
/// The access token the fake's token endpoint hands out.
pub const TOKEN: &str = "eyJ0eXAiOiJKV1Qi.fake-access-token.signature";
pub const GRAPH_PATH: &str = "/providers/Microsoft.ResourceGraph/resources";

/// One request as the fake server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The fake server's own `https://127.0.0.1:port`, for building `nextLink`s.
    pub base: String,
    pub method: Method,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub authorization: Option<String>,
    pub body: String,
    pub at: Instant,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn is_token(&self) -> bool {
        self.path.ends_with("/oauth2/v2.0/token")
    }
    pub fn is_graph(&self) -> bool {
        self.path == GRAPH_PATH
    }
    pub fn skip_token(&self) -> Option<String> {
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
pub const DELAY_HEADER: &str = "x-fake-delay-ms";

pub struct Fake {
    /// `https://127.0.0.1:port`: the ARM endpoint and the authority host.
    pub base: String,
    inner: Arc<Inner>,
}

impl Fake {
    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }
    pub fn graph_calls(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_graph).collect()
    }
    /// The most ARM calls (token calls aside) answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }
    /// Azure source settings that reach this server with a client secret, trusting its
    /// test-only certificate.
    pub fn settings(&self) -> AzureSettings {
        AzureSettings {
            arm_endpoint: self.base.clone(),
            authority_host: self.base.clone(),
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
}

/// What Entra answers to a valid client secret.
pub fn token_ok() -> Response {
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

/// The test-only certificate and key the fake serves.
pub fn tls_dir() -> PathBuf {
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

/// Start a fake ARM + Resource Graph + token server that answers with `script`.
pub async fn fake(script: impl Fn(&Seen) -> Option<Response> + Send + Sync + 'static) -> Fake {
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

// ---------------------------------------------------------------- logs

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

pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .init();
    });
}

/// Everything logged so far, by every test of the binary.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}
