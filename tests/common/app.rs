//! The HTTP API served on a real socket against a fresh database, with one real token
//! per role.

use scanledger::api::{self, auth, ApiConfig, AppState, AuthMode, Role};
use scanledger::domain::ScanId;
use scanledger::shutdown::{Shutdown, ShutdownTrigger};
use serde_json::{json, Value};

use super::{env, TestEnv};

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub env: TestEnv,
    pub state: AppState,
    /// Tokens of the `dashboard` (reader), `ci-pipeline` (operator) and `ops-admin`
    /// (admin) clients.
    pub reader: String,
    pub operator: String,
    pub admin: String,
    _stop: ShutdownTrigger,
}

pub async fn spawn_app_with(config: ApiConfig) -> App {
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

pub async fn spawn_app() -> App {
    spawn_app_with(ApiConfig::default()).await
}

impl App {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_as(&self, token: &str, path: &str, body: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// POST as the operator.
    pub async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        self.post_as(&self.operator, path, body).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// GET as the reader.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(&self.reader, path).await
    }

    /// GET as the reader, expecting 200 and a JSON body.
    pub async fn json(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }

    /// Request a scan of `subscription` through the API, as the operator.
    pub async fn trigger(&self, subscription: &str) -> ScanId {
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
