//! One HTTP client for every ARM and Resource Graph call: bearer token, bounded
//! concurrency, per-request timeout, retries with back-off that honour `Retry-After`
//! and the Resource Graph quota headers, a retry budget per scan, and the mapping of
//! answers to [`ScanError`] codes that never carries a token, a secret or a body.

use crate::metrics::AzureMetrics;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::auth::{self, TokenFailure, TokenProbe};
use crate::domain::{FailureCode, SubscriptionId};
use crate::worker::ScanError;

/// Longest single wait we accept. A longer `Retry-After` fails the attempt as
/// throttled instead: the worker retries the scan later, which holds no lease meanwhile.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Ceiling of one exponential back-off step (before jitter).
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Retry settings shared by every request of a source.
#[derive(Clone, Copy, Debug)]
pub struct RequestRetries {
    /// Retries after the first try of one request.
    pub max_retries: u32,
    /// First back-off step; doubles per retry up to [`BACKOFF_CAP`].
    pub backoff_base: Duration,
    /// Retries one scan may spend across all its requests.
    pub budget: u32,
}

/// Back-off before retry number `retry` (0-based): full jitter, uniform in
/// `[0, min(cap, base * 2^retry)]`, so concurrent scans do not retry in lock-step.
pub fn backoff(base: Duration, retry: u32) -> Duration {
    let ceiling = base
        .checked_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
        .unwrap_or(BACKOFF_CAP)
        .min(BACKOFF_CAP);
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(fastrand::u64(0..=ms))
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// `x-ms-user-quota-resets-after`: `hh:mm:ss` (seconds may carry a fraction).
pub fn parse_quota_reset(value: &str) -> Option<Duration> {
    let mut parts = value.trim().split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let h: u64 = h.parse().ok()?;
    let m: u64 = m.parse().ok()?;
    let s: f64 = s.parse().ok()?;
    if m >= 60 || !(0.0..60.0).contains(&s) {
        return None;
    }
    Some(Duration::from_secs(h * 3600 + m * 60) + Duration::from_secs_f64(s))
}

/// How long Resource Graph asks us to pause before the next query, if at all.
pub fn quota_pause(headers: &HeaderMap) -> Option<Duration> {
    let remaining = header(headers, "x-ms-user-quota-remaining")?;
    if remaining.trim().parse::<i64>().ok()? > 0 {
        return None;
    }
    parse_quota_reset(header(headers, "x-ms-user-quota-resets-after")?)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Retries left for one scan, shared by all its requests.
#[derive(Debug)]
pub struct Budget(AtomicU32);

impl Budget {
    pub fn new(retries: u32) -> Self {
        Self(AtomicU32::new(retries))
    }

    /// Take one retry; false when none are left.
    pub fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// What ARM said when it refused a request: only the parts safe for logs.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub status: u16,
    /// `error.code` from an ARM error body (sanitized), e.g. `AuthorizationFailed`.
    pub code: Option<String>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
}

impl Answer {
    fn new(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        Self {
            status: status.as_u16(),
            code: arm_error_code(body),
            request_id: header(headers, "x-ms-request-id").map(safe_token),
            correlation_id: header(headers, "x-ms-correlation-request-id").map(safe_token),
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, ", x-ms-request-id {id}")?;
        }
        if let Some(id) = &self.correlation_id {
            write!(f, ", x-ms-correlation-request-id {id}")?;
        }
        Ok(())
    }
}

/// Only `error.code` leaves the body: messages can quote principals and resource names.
fn arm_error_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: String,
    }
    let code = serde_json::from_slice::<Body>(body).ok()?.error.code;
    let ok = !code.is_empty()
        && code.len() <= 80
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    ok.then_some(code)
}

/// Header values go to logs: keep ids to a harmless alphabet and length.
fn safe_token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

/// The last retryable failure of a request that ran out of retries.
#[derive(Clone, Debug)]
pub enum Last {
    Status(Answer),
    Transport(String),
}

impl Last {
    fn throttled(&self) -> bool {
        matches!(self, Self::Status(a) if a.status == 429)
    }

    fn status(&self) -> Option<u16> {
        match self {
            Self::Status(a) => Some(a.status),
            Self::Transport(_) => None,
        }
    }
}

impl std::fmt::Display for Last {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(a) => a.fmt(f),
            Self::Transport(e) => f.write_str(e),
        }
    }
}

/// Why a request failed for good.
#[derive(Debug)]
pub enum Failure {
    /// A status we do not retry (401, 403, 404, other 4xx).
    Refused(Answer),
    /// The request's own retries ran out.
    RetriesExhausted { last: Last, tries: u32 },
    /// The scan's retry budget ran out.
    BudgetExhausted { last: Last },
    /// `Retry-After` asked for longer than we wait in one go.
    WaitTooLong { last: Last, wait: Duration },
    /// The token call was refused.
    Credentials(String),
    /// The answer could not be read, or pointed somewhere it must not.
    Invalid(String),
}

impl Failure {
    /// Does this end the whole scan, even when it happens on an optional child? A spent
    /// budget, a refused token and a long throttle would fail every later call too.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::BudgetExhausted { .. } | Self::Credentials(_) | Self::WaitTooLong { .. }
        )
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused(a) => Some(a.status),
            Self::RetriesExhausted { last, .. }
            | Self::BudgetExhausted { last }
            | Self::WaitTooLong { last, .. } => last.status(),
            Self::Credentials(_) | Self::Invalid(_) => None,
        }
    }

    /// The scan error for a failed listing call; `what` names the call for the logs.
    pub fn into_scan_error(self, what: &str) -> ScanError {
        let exhausted = |last: &Last| {
            if last.throttled() {
                FailureCode::Throttled
            } else {
                FailureCode::SourceUnavailable
            }
        };
        match self {
            Self::Refused(a) => {
                let code = match a.status {
                    401 | 403 => FailureCode::CredentialsRejected,
                    // No such subscription, or its resource provider is not registered.
                    404 | 409 => FailureCode::TargetNotFound,
                    // Another 4xx means we sent something ARM will never accept.
                    _ => FailureCode::Internal,
                };
                ScanError::new(code, format!("{what}: {a}"))
            }
            Self::RetriesExhausted { last, tries } => ScanError::new(
                exhausted(&last),
                format!("{what}: gave up after {tries} tries, last {last}"),
            ),
            Self::BudgetExhausted { last } => ScanError::new(
                exhausted(&last),
                format!("{what}: the scan's retry budget is spent, last {last}"),
            ),
            Self::WaitTooLong { last, wait } => ScanError::new(
                FailureCode::Throttled,
                format!(
                    "{what}: asked to wait {}s (more than {}s), last {last}",
                    wait.as_secs(),
                    MAX_RETRY_AFTER.as_secs()
                ),
            ),
            Self::Credentials(detail) => ScanError::new(
                FailureCode::CredentialsRejected,
                format!("{what}: {detail}"),
            ),
            Self::Invalid(detail) => {
                ScanError::new(FailureCode::InvalidInventory, format!("{what}: {detail}"))
            }
        }
    }
}

/// Which quota a request counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Arm,
    ResourceGraph,
}

impl Api {
    /// The `api` label of the Azure metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Arm => "arm",
            Self::ResourceGraph => "resource_graph",
        }
    }
}

/// One request, rebuilt for each try.
pub struct Call {
    pub method: Method,
    pub url: Url,
    pub body: Option<serde_json::Value>,
    pub api: Api,
}

/// The client: shared by every scan of one source.
pub struct Http {
    client: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    probe: TokenProbe,
    scope: String,
    arm: Url,
    permits: Arc<Semaphore>,
    policy: RequestRetries,
    /// Resource Graph quota is per principal, so the pause is shared by all scans.
    graph_gate: Mutex<Option<Instant>>,
    metrics: AzureMetrics,
}

/// What one scan carries through its requests.
pub struct ScanCalls {
    pub http: Arc<Http>,
    pub subscription: SubscriptionId,
    pub budget: Budget,
}

impl Http {
    pub fn new(
        client: reqwest::Client,
        credential: auth::Credential,
        arm: Url,
        concurrency: usize,
        policy: RequestRetries,
        metrics: AzureMetrics,
    ) -> Self {
        let scope = format!("{}/.default", arm.as_str().trim_end_matches('/'));
        Self {
            client,
            credential: credential.credential,
            probe: credential.probe,
            scope,
            arm,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            policy,
            graph_gate: Mutex::new(None),
            metrics,
        }
    }

    /// `{arm}{path}` with `api-version`; the path is percent-encoded where needed.
    pub fn url(&self, path: &str, api_version: &str) -> Url {
        let mut url = self.arm.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url.set_query(None);
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        url
    }

    /// Follow a `nextLink` only when it stays on the ARM endpoint: it receives our token.
    pub fn next_link(&self, link: &str) -> Result<Url, Failure> {
        let url = Url::parse(link).map_err(|_| Failure::Invalid("unreadable nextLink".into()))?;
        if url.origin() != self.arm.origin() {
            return Err(Failure::Invalid(format!(
                "nextLink points to {} instead of the ARM endpoint",
                url.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    async fn graph_wait(&self) {
        let until = *self.graph_gate.lock().expect("graph gate");
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    fn graph_pause(&self, headers: &HeaderMap, subscription: &SubscriptionId) {
        if let Some(pause) = quota_pause(headers) {
            let pause = pause.min(MAX_RETRY_AFTER);
            tracing::info!(
                %subscription,
                wait_ms = pause.as_millis() as u64,
                "Resource Graph quota used up; pausing queries until it resets"
            );
            let until = Instant::now() + pause;
            let mut gate = self.graph_gate.lock().expect("graph gate");
            *gate = Some(gate.map_or(until, |g| g.max(until)));
        }
    }
}

/// One try's outcome.
enum Try {
    Done(Vec<u8>),
    Retry { last: Last, after: Option<Duration> },
    Fail(Failure),
}

impl ScanCalls {
    pub fn new(http: Arc<Http>, subscription: SubscriptionId) -> Self {
        let budget = Budget::new(http.policy.budget);
        Self {
            http,
            subscription,
            budget,
        }
    }

    /// Send with retries and read the JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, call: &Call) -> Result<T, Failure> {
        let body = self.send(call).await?;
        serde_json::from_slice(&body).map_err(|e| {
            // Position and category only: serde's message can quote the data.
            Failure::Invalid(format!(
                "unreadable answer from {} ({:?} error at line {} column {})",
                call.url.path(),
                e.classify(),
                e.line(),
                e.column()
            ))
        })
    }

    async fn send(&self, call: &Call) -> Result<Vec<u8>, Failure> {
        let http = &self.http;
        let mut retry = 0u32;
        loop {
            let outcome = self.try_once(call).await;
            let (last, after) = match outcome {
                Try::Done(body) => return Ok(body),
                Try::Fail(f) => return Err(f),
                Try::Retry { last, after } => (last, after),
            };
            if retry >= http.policy.max_retries {
                return Err(Failure::RetriesExhausted {
                    last,
                    tries: retry + 1,
                });
            }
            if let Some(wait) = after.filter(|w| *w > MAX_RETRY_AFTER) {
                return Err(Failure::WaitTooLong { last, wait });
            }
            if !self.budget.take() {
                return Err(Failure::BudgetExhausted { last });
            }
            let wait = after.unwrap_or_else(|| backoff(http.policy.backoff_base, retry));
            http.metrics
                .retry_wait(call.api.label(), wait.as_secs_f64());
            retry += 1;
            tracing::warn!(
                subscription = %self.subscription,
                path = call.url.path(),
                status = last.status(),
                last = %last,
                attempt = retry,
                wait_ms = wait.as_millis() as u64,
                "azure request failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn try_once(&self, call: &Call) -> Try {
        let http = &self.http;
        if call.api == Api::ResourceGraph {
            http.graph_wait().await;
        }
        // Hold a permit for the call only, never while backing off.
        let _permit = http.permits.acquire().await.expect("open semaphore");
        let token = match http.credential.get_token(&[&http.scope], None).await {
            Ok(t) => t,
            Err(e) => {
                return match auth::classify(&e, &http.probe) {
                    TokenFailure::Rejected(detail) => Try::Fail(Failure::Credentials(detail)),
                    TokenFailure::Retryable { status, detail } => Try::Retry {
                        last: match status {
                            Some(status) => Last::Status(Answer {
                                status,
                                ..Answer::default()
                            }),
                            None => Last::Transport(detail),
                        },
                        after: None,
                    },
                }
            }
        };
        let mut req = http
            .client
            .request(call.method.clone(), call.url.clone())
            .bearer_auth(token.token.secret());
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                http.metrics.request(call.api.label(), None);
                return Try::Retry {
                    last: Last::Transport(transport_error(&e)),
                    after: None,
                };
            }
        };
        let status = resp.status();
        http.metrics
            .request(call.api.label(), Some(status.as_u16()));
        let headers = resp.headers().clone();
        if call.api == Api::ResourceGraph {
            http.graph_pause(&headers, &self.subscription);
        }
        let body = match resp.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                return Try::Retry {
                    last: Last::Transport(transport_error(&e)),
                    after: None,
                }
            }
        };
        if status.is_success() {
            return Try::Done(body);
        }
        let answer = Answer::new(status, &headers, &body);
        if matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504) {
            let after = header(&headers, "retry-after")
                .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
            return Try::Retry {
                last: Last::Status(answer),
                after,
            };
        }
        Try::Fail(Failure::Refused(answer))
    }
}

/// reqwest's message for a transport error, without the URL (it may carry a skip token).
fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "broken response body"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut cause = String::new();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({cause})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = chrono::Utc
            .with_ymd_and_hms(2015, 10, 21, 7, 28, 0)
            .unwrap();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 30 ", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        // A date in the past means "now", not a negative wait.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn quota_reset_hh_mm_ss() {
        assert_eq!(parse_quota_reset("00:00:03"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_quota_reset("01:02:03"),
            Some(Duration::from_secs(3723))
        );
        assert_eq!(
            parse_quota_reset("00:00:01.5"),
            Some(Duration::from_millis(1500))
        );
        for bad in [
            "",
            "3",
            "00:03",
            "00:60:00",
            "00:00:61",
            "a:b:c",
            "00:00:00:01",
        ] {
            assert_eq!(parse_quota_reset(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn quota_pause_only_when_used_up() {
        let mut h = HeaderMap::new();
        assert_eq!(quota_pause(&h), None);
        h.insert("x-ms-user-quota-resets-after", "00:00:02".parse().unwrap());
        h.insert("x-ms-user-quota-remaining", "3".parse().unwrap());
        assert_eq!(quota_pause(&h), None);
        h.insert("x-ms-user-quota-remaining", "0".parse().unwrap());
        assert_eq!(quota_pause(&h), Some(Duration::from_secs(2)));
        h.remove("x-ms-user-quota-resets-after");
        assert_eq!(quota_pause(&h), None);
    }

    #[test]
    fn backoff_stays_within_bounds() {
        let base = Duration::from_millis(100);
        for retry in 0..40 {
            let ceiling = (base * 2u32.pow(retry.min(20))).min(BACKOFF_CAP);
            for _ in 0..200 {
                let d = backoff(base, retry);
                assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
            }
        }
        // Full jitter: the spread reaches well below the ceiling.
        let samples: Vec<Duration> = (0..500).map(|_| backoff(base, 3)).collect();
        assert!(samples.iter().any(|d| *d < Duration::from_millis(400)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(400)));
        assert_eq!(backoff(Duration::ZERO, 5), Duration::ZERO);
    }

    #[test]
    fn budget_is_shared_and_runs_out() {
        let b = Budget::new(2);
        assert!(b.take());
        assert!(b.take());
        assert!(!b.take());
        assert!(!b.take());
    }

    #[test]
    fn only_the_error_code_leaves_the_body() {
        let body = br#"{"error":{"code":"AuthorizationFailed","message":"client 'abc' secret"}}"#;
        assert_eq!(arm_error_code(body).as_deref(), Some("AuthorizationFailed"));
        assert_eq!(arm_error_code(br#"{"error":{"code":"a b"}}"#), None);
        assert_eq!(arm_error_code(b"<html>"), None);
        let mut h = HeaderMap::new();
        h.insert("x-ms-request-id", "1234-abcd".parse().unwrap());
        let a = Answer::new(StatusCode::FORBIDDEN, &h, body);
        let shown = a.to_string();
        assert!(shown.contains("403") && shown.contains("AuthorizationFailed"));
        assert!(!shown.contains("secret") && !shown.contains("abc'"));
    }

    #[test]
    fn exhausted_maps_to_retryable_codes() {
        let throttled = Last::Status(Answer {
            status: 429,
            ..Answer::default()
        });
        let e = Failure::BudgetExhausted { last: throttled }.into_scan_error("q");
        assert_eq!(e.code, FailureCode::Throttled);
        let e = Failure::RetriesExhausted {
            last: Last::Transport("timed out".into()),
            tries: 3,
        }
        .into_scan_error("q");
        assert_eq!(e.code, FailureCode::SourceUnavailable);
        assert!(e.code.retryable());
        let e = Failure::Refused(Answer {
            status: 403,
            ..Answer::default()
        })
        .into_scan_error("q");
        assert_eq!(e.code, FailureCode::CredentialsRejected);
        assert!(!e.code.retryable());
    }
}
