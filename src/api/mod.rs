//! The HTTP API (axum). Handlers append through the ledger and read projections; they
//! never touch `scan_events` directly.

mod audit;
pub mod auth;
mod changes;
pub mod console;
mod error;
pub mod estates;
mod events;
mod findings;
mod governance;
pub mod metrics;
pub mod openapi;
pub mod reference;
mod reports;
mod rollups;
mod scans;
pub mod streams;
pub mod token_cache;
mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tracing::Instrument;
use uuid::Uuid;

pub use auth::{AuthMode, Principal, Role};
pub use changes::Changes;
pub use error::{request_id, ApiError};
pub use events::{EventView, FeedPage, StreamView};
pub use findings::{FindingPage, FindingView, HistoryPage, ScanDiff};
pub use metrics::Metrics;
pub use scans::{ScanPage, ScanView, TriggerRequest, TriggerResponse};

use crate::ledger::Ledger;
use crate::shutdown::Shutdown;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// `max_attempts` written into each new scan's `Requested`.
    pub max_attempts: i32,
    /// Time a request may take (a long-poll gets its `wait` on top).
    pub request_timeout: Duration,
    /// Origins allowed by CORS; empty: CORS off.
    pub cors_origins: Vec<String>,
    /// The Ed25519 public key checkpoints are signed with, if they are.
    pub audit_public_key: Option<Vec<u8>>,
    /// Lists an estate's subscriptions; `None`: estate requests are refused (503).
    pub estates: Option<estates::Estates>,
    /// The rules' framework mappings compliance is reported against; `None`: the
    /// embedded catalogue's.
    pub controls: Option<Arc<crate::scanner::compliance::Controls>>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            cors_origins: Vec::new(),
            audit_public_key: None,
            estates: None,
            controls: None,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub ledger: Ledger,
    pub changes: Changes,
    pub metrics: Arc<Metrics>,
    pub streams: Arc<streams::StreamLimits>,
    /// Verified tokens (see [`token_cache`]).
    pub tokens: Arc<token_cache::TokenCache>,
    pub auth: AuthMode,
    pub config: ApiConfig,
}

impl AppState {
    /// Wire the state; starts the change and token listeners on the ledger's pool.
    pub fn new(ledger: Ledger, auth: AuthMode, config: ApiConfig) -> Self {
        Self {
            changes: Changes::start(ledger.pool().clone()),
            metrics: Arc::default(),
            streams: Arc::default(),
            tokens: token_cache::TokenCache::start(ledger.pool().clone()),
            ledger,
            auth,
            config,
        }
    }
}

/// A scan id from the path, or a 400 naming `id`.
fn path_id(id: &str) -> Result<crate::domain::ScanId, ApiError> {
    parse_uuid(id, "id", "scan id").map(crate::domain::ScanId)
}

/// The one UUID form the API takes, hyphenated (8-4-4-4-12 hex digits), as its OpenAPI
/// document's `pattern` says ([`openapi::UUID_PATTERN`]); a 400 naming `field` otherwise.
pub(crate) fn parse_uuid(s: &str, field: &str, what: &str) -> Result<Uuid, ApiError> {
    // At 36 characters `try_parse` reads only the hyphenated form (not the simple,
    // braced or URN ones).
    match (s.len(), Uuid::try_parse(s)) {
        (36, Ok(id)) => Ok(id),
        _ => Err(ApiError::bad_request(
            Some(field),
            format!("{what} must be a UUID (8-4-4-4-12 hex digits)"),
        )),
    }
}

/// A subscription id in `field`, as a UUID ([`parse_uuid`]).
pub(crate) fn parse_subscription_in(
    s: &str,
    field: &str,
) -> Result<crate::domain::SubscriptionId, ApiError> {
    let id = parse_uuid(s, field, "subscription_id")?;
    crate::domain::SubscriptionId::parse(&id.hyphenated().to_string())
        .map_err(|e| ApiError::bad_request(Some(field), e.to_string()))
}

/// A rule id or category as a filter (`rules` of a scan request, `rule_id` and
/// `category` of finding queries): 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or
/// digit ([`openapi::RULE_FILTER_PATTERN`]).
pub(crate) fn valid_rule_filter(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=128).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// `s` is exactly `len` lowercase hex digits.
pub(crate) fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An RFC 3339 time (`2026-01-31T12:00:00Z`, `…T12:00:00.5+02:00`), exactly the shape of
/// [`openapi::DATE_TIME_PATTERN`]; a 400 naming `field` otherwise.
pub(crate) fn parse_date_time(
    s: &str,
    field: &str,
) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && {
            let mut rest = &s[19..];
            if let Some(frac) = rest.strip_prefix('.') {
                let n = frac.bytes().take_while(u8::is_ascii_digit).count();
                rest = if n == 0 { "?" } else { &frac[n..] };
            }
            rest == "Z" || {
                let o = rest.as_bytes();
                o.len() == 6
                    && matches!(o[0], b'+' | b'-')
                    && o[1..3].iter().all(u8::is_ascii_digit)
                    && o[3] == b':'
                    && o[4..6].iter().all(u8::is_ascii_digit)
            }
        };
    shape
        .then(|| chrono::DateTime::parse_from_rfc3339(s).ok())
        .flatten()
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok_or_else(|| {
            ApiError::bad_request(
                Some(field),
                format!("{field} must be an RFC 3339 time like 2026-01-31T12:00:00Z"),
            )
        })
}

/// An optional rule id or category filter of a query, checked ([`valid_rule_filter`]).
pub(crate) fn rule_filter(s: Option<&str>, field: &str) -> Result<(), ApiError> {
    match s {
        Some(v) if !valid_rule_filter(v) => Err(ApiError::bad_request(
            Some(field),
            format!("{field} is 1 to 128 of A-Z a-z 0-9 . _ -, starting with a letter or digit"),
        )),
        _ => Ok(()),
    }
}

/// Who may call what: the one table of route permissions. `None`: no token needed.
pub fn required_role(method: &Method, route: &str) -> Option<Role> {
    match (method.as_str(), route) {
        (_, "/healthz" | "/readyz") => None,
        // The reference page and its assets hold nothing of the deployment; the page asks
        // for a token to read the document itself.
        (_, "/docs" | "/docs/app.js" | "/docs/style.css") => None,
        // The console's files: the page asks for a token itself, for the API.
        (_, "/ui" | "/ui/" | "/ui/{file}") => None,
        (_, r) if r.starts_with("/api/tokens") => Some(Role::Admin),
        ("POST" | "DELETE", _) => Some(Role::Operator),
        _ => Some(Role::Reader),
    }
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/api/scans", post(scans::trigger).get(scans::list))
        .route("/api/scans/trigger", post(scans::trigger))
        .route("/api/scans/{id}", get(scans::get))
        .route("/api/estates/{id}", get(estates::get))
        .route("/api/scans/{id}/cancel", post(scans::cancel))
        .route("/api/scans/{id}/events", get(events::scan_events))
        .route("/api/scans/{id}/findings", get(findings::for_scan))
        .route("/api/scans/{id}/report", get(reports::report))
        .route("/api/findings", get(findings::latest))
        .route("/api/scans/{id}/diff", get(findings::diff))
        .route("/api/scans/{id}/proof", get(audit::proof))
        .route("/api/audit/public-key", get(audit::public_key))
        .route(
            "/api/subscriptions/{id}/findings/history",
            get(findings::history),
        )
        .route("/api/subscriptions", get(rollups::subscriptions))
        .route("/api/subscriptions/{id}/posture", get(rollups::posture))
        .route(
            "/api/subscriptions/{id}/compliance",
            get(rollups::compliance),
        )
        .route("/api/operations", get(rollups::operations))
        .route("/api/events", get(events::feed))
        .route("/api/events/stream", get(events::stream))
        .route(
            "/api/mutes",
            post(governance::create_mute).get(governance::list_mutes),
        )
        .route("/api/mutes/{id}", delete(governance::remove_mute))
        .route(
            "/api/schedules",
            post(governance::create_schedule).get(governance::list_schedules),
        )
        .route("/api/schedules/{id}", delete(governance::remove_schedule))
        .route("/api/tokens", post(tokens::create).get(tokens::list))
        .route("/api/tokens/{name}", delete(tokens::revoke))
        .route("/metrics", get(metrics_text))
        .route("/api/openapi.json", get(openapi_json))
        .route("/ui", get(console::index))
        .route("/ui/", get(console::index))
        .route("/ui/{file}", get(console::file))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/docs", get(reference::index))
        .route("/docs/app.js", get(reference::app))
        .route("/docs/style.css", get(reference::style))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::map_response(limit_to_problem))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), observe));
    if !state.config.cors_origins.is_empty() {
        // `*`: any origin (tokens travel in a header, never in cookies, so no
        // credentials mode is involved); otherwise the listed origins exactly.
        let origins = if state.config.cors_origins.iter().any(|o| o.trim() == "*") {
            tower_http::cors::AllowOrigin::any()
        } else {
            let list: Vec<HeaderValue> = state
                .config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
                .collect();
            tower_http::cors::AllowOrigin::list(list)
        };
        router = router.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::IF_NONE_MATCH,
                ])
                .expose_headers([header::ETAG, header::LOCATION, header::RETRY_AFTER]),
        );
    }
    router.with_state(state)
}

/// Every request: an id (response header, log span, correlation id of errors), a
/// timeout, and its metrics.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = Uuid::new_v4();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    // Extension methods can be any token of any length: one bounded label for all of them.
    let method = metrics::method_label(req.method().as_str());
    let span = tracing::info_span!("request", request_id = %id, %method, %route, principal = tracing::field::Empty);
    // A long-poll may take its `wait` on top of the usual budget.
    let wait = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("wait=")))
        .and_then(|w| w.parse::<u64>().ok())
        .unwrap_or(0)
        .min(60);
    let budget = state.config.request_timeout + Duration::from_secs(wait);
    let started = Instant::now();
    let mut resp = error::REQUEST_ID
        .scope(id, async move {
            match tokio::time::timeout(budget, next.run(req)).await {
                Ok(resp) => resp,
                Err(_) => ApiError::Timeout.into_response(),
            }
        })
        .instrument(span.clone())
        .await;
    let status = resp.status();
    state.metrics.http.request(
        method,
        &route,
        status.as_u16(),
        started.elapsed().as_secs_f64(),
    );
    span.in_scope(|| tracing::debug!(status = status.as_u16(), "request served"));
    resp.headers_mut().insert(
        "x-request-id",
        HeaderValue::from_str(&id.to_string()).expect("uuid header"),
    );
    resp
}

/// axum answers an oversized body with a plain-text 413; clients always get problem+json.
async fn limit_to_problem(resp: Response) -> Response {
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes())
            != Some(b"application/problem+json")
    {
        return ApiError::TooLarge.into_response();
    }
    resp
}

/// Parse a JSON body strictly: unknown fields and wrong types are a 400 naming the field.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    // No Content-Type is refused too: a browser sends a body without one (or as
    // text/plain) cross-site without a CORS preflight.
    if json_type != Some(true) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(bad_input)
}

/// Parse a query string strictly, naming the offending parameter.
pub(crate) fn parse_query<T: serde::de::DeserializeOwned + Default>(
    query: Option<&str>,
) -> Result<T, ApiError> {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return Ok(T::default());
    };
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(bad_input)
}

/// A 400 naming the field: the path when serde got that far, else the one its message names.
fn bad_input<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let msg = e.inner().to_string();
    let field = (path != ".").then_some(path).or_else(|| field_of(&msg));
    ApiError::bad_request(field.as_deref(), msg)
}

/// A page size from `?limit=`, checked against `1..=max`.
pub(crate) fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(
            Some("limit"),
            format!("limit is 1 to {max}"),
        ))
    }
}

/// An optional `?subscription_id=`, canonicalized.
pub(crate) fn parse_subscription(
    s: Option<&str>,
) -> Result<Option<crate::domain::SubscriptionId>, ApiError> {
    s.map(|s| parse_subscription_in(s, "subscription_id"))
        .transpose()
}

/// serde names the offending field in backticks ("unknown field `x`", "missing field `y`").
fn field_of(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = start + msg[start..].find('`')?;
    Some(msg[start..end].to_string())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` (liveness) or `ready` (readiness).
    pub status: String,
}

/// Liveness: the process answers. No token needed.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database answers. No token needed.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, body = Health),
    (status = 503, description = "Database unreachable", body = error::Problem, content_type = "application/problem+json")))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    metrics::ready(state.ledger.pool()).await
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "health",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)), security(("bearer" = [])))]
async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi::document())
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")),
    security(("bearer" = [])))]
async fn metrics_text(State(state): State<AppState>) -> Response {
    state
        .metrics
        .http
        .set_event_streams_open(state.streams.open());
    metrics::metrics_response(&state.metrics, state.ledger.pool()).await
}

/// Serve until `shutdown` fires; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, auth = ?state.auth, "API listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_serde_complains_about() {
        assert_eq!(
            field_of("unknown field `colour`, expected one of ...").as_deref(),
            Some("colour")
        );
        assert_eq!(
            field_of("missing field `subscription_id`").as_deref(),
            Some("subscription_id")
        );
        assert_eq!(field_of("EOF while parsing"), None);
    }

    #[test]
    fn route_permissions() {
        assert_eq!(required_role(&Method::GET, "/healthz"), None);
        assert_eq!(
            required_role(&Method::GET, "/api/scans/{id}"),
            Some(Role::Reader)
        );
        assert_eq!(
            required_role(&Method::POST, "/api/scans"),
            Some(Role::Operator)
        );
        assert_eq!(
            required_role(&Method::POST, "/api/scans/{id}/cancel"),
            Some(Role::Operator)
        );
        assert_eq!(
            required_role(&Method::GET, "/api/tokens"),
            Some(Role::Admin)
        );
        assert_eq!(required_role(&Method::GET, "/metrics"), Some(Role::Reader));
        assert_eq!(required_role(&Method::GET, "/docs"), None);
        assert_eq!(required_role(&Method::GET, "/docs/app.js"), None);
        assert_eq!(required_role(&Method::GET, "/ui/{file}"), None);
        assert_eq!(
            required_role(&Method::GET, "/api/subscriptions/{id}/compliance"),
            Some(Role::Reader)
        );
    }
}
