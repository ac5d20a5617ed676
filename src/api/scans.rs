//! `/api/scans`: trigger, poll (ETag, long-poll), list (keyset pages), cancel.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::auth::Principal;
use super::error::Problem;
use super::metrics::LongPollOutcome;
use super::{
    changes, page_limit, parse_json, parse_query, parse_subscription, path_id, ApiError, AppState,
};
use crate::domain::{Cancelled, Event, Progress, PublicError, Requested, ScanId, ScanSummary};
use crate::ledger::{AppendError, Idempotent, NewEvent, NewScan};
use crate::projection::scan_status::{self, ScanState, ScanStatus};

/// Longest `?wait=` a poll may ask for.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// The Azure subscription to scan (a UUID). Without it, `management_group_id` or
    /// `tenant: true` requests an estate: one scan per subscription listed.
    #[schema(format = Uuid)]
    pub subscription_id: Option<String>,
    /// Scan every subscription under this management group (needs `--estates`).
    #[schema(min_length = 1, max_length = 90)]
    pub management_group_id: Option<String>,
    /// Scan every subscription of the tenant (needs `--estates`).
    pub tenant: Option<bool>,
    /// Rule ids or categories; empty means all.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Higher is claimed first.
    #[serde(default)]
    #[schema(value_type = Option<i16>)]
    pub priority: Option<serde_json::Number>,
}

impl TriggerRequest {
    /// `priority` as an i16: JSON Schema counts `5.0` as the integer 5, so it is one.
    fn priority(&self) -> Result<i16, ApiError> {
        let Some(n) = &self.priority else {
            return Ok(0);
        };
        n.as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .and_then(|p| i16::try_from(p).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    Some("priority"),
                    "priority is an integer from -32768 to 32767",
                )
            })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerResponse {
    pub scan_id: ScanId,
    pub status: ScanState,
    pub message: &'static str,
}

fn check_rules(rules: &[String]) -> Result<(), ApiError> {
    if rules.len() > 500 || !rules.iter().all(|r| super::valid_rule_filter(r)) {
        return Err(ApiError::bad_request(
            Some("rules"),
            "at most 500 rule ids or categories, each 1 to 128 of A-Z a-z 0-9 . _ -, \
             starting with a letter or digit",
        ));
    }
    Ok(())
}

/// What `POST /api/scans` answers: one scan, or an estate's scans.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Documents the two shapes; handlers build each directly.
pub enum Accepted {
    Scan(TriggerResponse),
    Estate(super::estates::EstateAccepted),
}

/// Request a scan. Answers at once; a worker runs it.
#[utoipa::path(post, path = "/api/scans", tag = "scans", request_body = TriggerRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the same scan (200); same key, other body: 422")),
    responses(
        (status = 202, description = "Queued: one scan, or an estate's scans (`Location`: the scan, or `/api/estates/{id}`)", body = Accepted, headers(("Location" = String))),
        (status = 200, description = "Replayed idempotent request", body = TriggerResponse),
        (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The token's role does not allow this", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Idempotency-Key reused with another body, or an estate without a subscription to scan", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Estate requests are off (`--estates`), or the estate's subscriptions could not be listed", body = Problem, content_type = "application/problem+json"),
    ), security(("bearer" = [])))]
pub(super) async fn trigger(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: TriggerRequest = parse_json(&headers, &body)?;
    let priority = req.priority()?;
    let Some(subscription) = req.subscription_id.as_deref() else {
        let scope = super::estates::scope_of(req.management_group_id.as_deref(), req.tenant)?;
        check_rules(&req.rules)?;
        if headers.contains_key("idempotency-key") {
            return Err(ApiError::Unprocessable(
                "Idempotency-Key is not supported for estate requests",
            ));
        }
        return super::estates::request(&state, scope, req.rules, priority, &principal.name).await;
    };
    if req.management_group_id.is_some() || req.tenant.is_some() {
        return Err(ApiError::bad_request(
            Some("subscription_id"),
            "give subscription_id, or management_group_id / tenant, not both",
        ));
    }
    let subscription_id = super::parse_subscription_in(subscription, "subscription_id")?;
    check_rules(&req.rules)?;
    let key = headers
        .get("idempotency-key")
        .map(|v| {
            let k = v.as_bytes();
            ((1..=255).contains(&k.len()) && k.iter().all(|b| (0x21..=0x7e).contains(b)))
                .then(|| String::from_utf8_lossy(k).into_owned())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        Some("Idempotency-Key"),
                        "1 to 255 visible ASCII characters, no spaces",
                    )
                })
        })
        .transpose()?;
    let key = key.as_deref();
    let scan_id = ScanId::new();
    let request = Requested {
        origin: None,
        subscription_id,
        rules: req.rules.clone(),
        priority,
        max_attempts: state.config.max_attempts,
        requested_by: Some(principal.name.clone()),
        estate: None,
    };
    let scan = NewScan { scan_id, request };
    let accepted = |scan_id: ScanId, status: StatusCode| {
        let body = TriggerResponse {
            scan_id,
            status: ScanState::Pending,
            message: "Scan queued",
        };
        (
            status,
            [(header::LOCATION, format!("/api/scans/{scan_id}"))],
            Json(body),
        )
            .into_response()
    };
    let Some(key) = key else {
        state
            .ledger
            .request(vec![scan])
            .await
            .map_err(|e: AppendError| ApiError::internal(e))?;
        tracing::info!(%scan_id, "scan requested");
        return Ok(accepted(scan_id, StatusCode::ACCEPTED));
    };
    // The same key with the same (normalized) body is the same request.
    let normalized = serde_json::to_vec(&serde_json::json!({
        "subscription_id": scan.request.subscription_id.as_str(),
        "rules": req.rules,
        "priority": priority,
    }))
    .map_err(ApiError::internal)?;
    let hash = Sha256::digest(&normalized);
    match state
        .ledger
        .request_idempotent(&principal.name, key, &hash, scan)
        .await
        .map_err(ApiError::internal)?
    {
        Idempotent::Created(_) => {
            tracing::info!(%scan_id, "scan requested");
            Ok(accepted(scan_id, StatusCode::ACCEPTED))
        }
        Idempotent::Replayed(original) => Ok(accepted(original, StatusCode::OK)),
        Idempotent::Mismatch => Err(ApiError::Unprocessable(
            "this Idempotency-Key was used with a different request body",
        )),
    }
}

/// The status a polling client reads. The `started_at`, `completed_at` and
/// `total_findings` fields keep OpenShield clients working.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScanView {
    pub scan_id: ScanId,
    pub subscription_id: String,
    pub status: ScanState,
    pub attempt: i32,
    pub max_attempts: i32,
    pub priority: i16,
    pub rules: Vec<String>,
    pub worker_id: Option<String>,
    pub requested_by: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub progress: Option<Progress>,
    pub error: Option<PublicError>,
    pub summary: Option<ScanSummary>,
    /// Stream version: changes whenever the scan does (also the ETag).
    pub version: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub total_findings: Option<u64>,
}

impl From<ScanStatus> for ScanView {
    fn from(s: ScanStatus) -> Self {
        Self {
            started_at: s.claimed_at,
            completed_at: s.finished_at,
            total_findings: s.summary.as_ref().map(|s| s.findings),
            next_attempt_at: (s.status == ScanState::Pending)
                .then_some(s.next_eligible_at)
                .flatten(),
            scan_id: s.scan_id,
            subscription_id: s.subscription_id,
            status: s.status,
            attempt: s.attempt,
            max_attempts: s.max_attempts,
            priority: s.priority,
            rules: s.rules,
            worker_id: s.worker_id,
            requested_by: s.requested_by,
            requested_at: s.requested_at,
            claimed_at: s.claimed_at,
            heartbeat_at: s.heartbeat_at,
            finished_at: s.finished_at,
            lease_expires_at: s.lease_expires_at,
            progress: s.progress,
            error: s.error,
            summary: s.summary,
            version: s.version,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetParams {
    /// Seconds to wait for a change (long-poll), at most 60.
    wait: Option<u64>,
}

fn etag(version: i32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

/// The version an `If-None-Match` names, if it names one.
fn if_none_match(headers: &HeaderMap) -> Option<i32> {
    let v = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// A scan's status. `ETag` is its stream version; `?wait=N` long-polls for a change.
#[utoipa::path(get, path = "/api/scans/{id}", tag = "scans",
    params(("id" = String, Path, description = "Scan id (UUID)"),
           ("wait" = Option<u64>, Query, description = "Seconds (at most 60) to wait for a change"),
           ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier response")),
    responses(
        (status = 200, description = "The scan", body = ScanView, headers(("ETag" = String), ("Retry-After" = Option<u64>))),
        (status = 304, description = "Unchanged since the ETag given"),
        (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such scan", body = Problem, content_type = "application/problem+json"),
    ), security(("bearer" = [])))]
pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let params: GetParams = parse_query(query.as_deref())?;
    let wait = Duration::from_secs(params.wait.unwrap_or(0));
    if wait > MAX_POLL_WAIT {
        return Err(ApiError::bad_request(
            Some("wait"),
            "wait is at most 60 seconds",
        ));
    }
    let known = if_none_match(&headers);
    let row = if wait.is_zero() {
        scan_status::get(state.ledger.pool(), id)
            .await?
            .ok_or(ApiError::NotFound)?
    } else {
        long_poll(&state, id, known, wait).await?
    };
    let mut resp = if known == Some(row.version) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let retry_after = (!row.status.is_terminal()).then(|| retry_after(&row));
        let mut resp = Json(ScanView::from(row.clone())).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    };
    resp.headers_mut().insert(header::ETAG, etag(row.version));
    Ok(resp)
}

/// Wait until the scan differs from `known` (default: its state now), is finished, or
/// `wait` has passed; then its state. Holds no connection and no lock while waiting.
///
/// Subscribe first (no notification between the read and the wait is lost), register
/// (so that writers announce this scan's changes), then read. A writer that looked for
/// waiters before the registration committed, but commits after the read, neither
/// announces nor shows in the read: once the horizon passes the registration's fence it
/// has ended, and one more read sees its change (`ledger::notify::register_waiter`).
async fn long_poll(
    state: &AppState,
    id: ScanId,
    known: Option<i32>,
    wait: Duration,
) -> Result<ScanStatus, ApiError> {
    let pool = state.ledger.pool();
    let guard = state.metrics.http.long_poll();
    let mut changes = state.changes.subscribe();
    let watch = state
        .changes
        .watch(pool, Some(id), wait + Duration::from_secs(5))
        .await?;
    let mut row = scan_status::get(pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let seen = known.unwrap_or(row.version);
    let deadline = tokio::time::Instant::now() + wait;
    let settle = state.changes.settled(&watch);
    tokio::pin!(settle);
    let mut settled = false;
    loop {
        if row.version != seen || row.status.is_terminal() {
            guard.finish(LongPollOutcome::Changed);
            return Ok(row);
        }
        let timed_out = tokio::select! {
            _ = changes::changed(&mut changes, id) => false,
            _ = &mut settle, if !settled => {
                settled = true;
                false
            }
            _ = tokio::time::sleep_until(deadline) => true,
        };
        row = scan_status::get(pool, id)
            .await?
            .ok_or(ApiError::NotFound)?;
        if timed_out {
            // What the timeout finds is answered too (claims and heartbeats wake no one).
            guard.finish(if row.version == seen {
                LongPollOutcome::Unchanged
            } else {
                LongPollOutcome::Late
            });
            return Ok(row);
        }
    }
}

/// Seconds a client should wait before polling a live scan again.
fn retry_after(row: &ScanStatus) -> u64 {
    match (row.status, row.next_eligible_at) {
        (ScanState::Pending, Some(at)) => (at - Utc::now()).num_seconds().clamp(1, 60) as u64,
        _ => 2,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<ScanState>,
    subscription_id: Option<String>,
    requested_after: Option<String>,
    requested_before: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of scans, newest first. `next_cursor` is absent on the last page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScanPage {
    pub count: usize,
    pub scans: Vec<ScanView>,
    pub next_cursor: Option<String>,
}

/// Keyset cursor: the last row's (requested_at, scan_id), opaque to clients.
fn encode_cursor(row: &ScanStatus) -> String {
    time_id_cursor(row.requested_at, row.scan_id.0)
}

/// A keyset cursor over (time, scan id): `<micros>_<32 lowercase hex>`. The console's
/// roll-ups page the same way.
pub(super) fn time_id_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id.simple())
}

/// `<micros>_<32 lowercase hex>`, exactly as [`encode_cursor`] writes it
/// ([`super::openapi::SCAN_CURSOR_PATTERN`]).
pub(super) fn decode_cursor(s: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = s.split_once('_')?;
    let digits = (1..=16).contains(&micros.len()) && micros.bytes().all(|b| b.is_ascii_digit());
    if !digits || !super::lower_hex(id, 32) {
        return None;
    }
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::try_parse(id).ok()?,
    ))
}

/// An RFC 3339 time in `field` ([`super::openapi::DATE_TIME_PATTERN`]).
fn parse_time(s: Option<&str>, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    s.map(|s| super::parse_date_time(s, field)).transpose()
}

/// Scans, newest first, in keyset pages.
#[utoipa::path(get, path = "/api/scans", tag = "scans",
    params(("status" = Option<ScanState>, Query, description = "Only scans in this status"),
           ("subscription_id" = Option<String>, Query, description = "Only this subscription"),
           ("requested_after" = Option<String>, Query, description = "RFC 3339; inclusive"),
           ("requested_before" = Option<String>, Query, description = "RFC 3339; exclusive"),
           ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page", body = ScanPage), (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ScanPage>, ApiError> {
    let p: ListParams = parse_query(query.as_deref())?;
    let limit = page_limit(p.limit, 50, 500)?;
    let requested_after = parse_time(p.requested_after.as_deref(), "requested_after")?;
    let requested_before = parse_time(p.requested_before.as_deref(), "requested_before")?;
    let subscription = parse_subscription(p.subscription_id.as_deref())?;
    let cursor = p
        .cursor
        .as_deref()
        .map(|c| {
            decode_cursor(c).ok_or_else(|| {
                ApiError::bad_request(Some("cursor"), "not a cursor this API issued")
            })
        })
        .transpose()?;
    let rows = scan_status::list(
        state.ledger.pool(),
        &scan_status::ListFilter {
            status: p.status,
            subscription_id: subscription.map(|s| s.to_string()),
            requested_after,
            requested_before,
            before: cursor,
        },
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<ScanStatus> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more.then(|| rows.last().map(encode_cursor)).flatten();
    let scans: Vec<ScanView> = rows.into_iter().map(ScanView::from).collect();
    Ok(Json(ScanPage {
        count: scans.len(),
        scans,
        next_cursor,
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// Cancel a scan; a running worker stops at its next heartbeat.
#[utoipa::path(post, path = "/api/scans/{id}/cancel", tag = "scans", request_body(content = Option<CancelRequest>),
    params(("id" = String, Path, description = "Scan id (UUID)")),
    responses(
        (status = 200, description = "Cancelled", body = ScanView),
        (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The token's role does not allow this", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such scan", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The scan has already finished", body = Problem, content_type = "application/problem+json"),
    ), security(("bearer" = [])))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ScanView>, ApiError> {
    let id = path_id(&id)?;
    // No body, or `null`, is no reason given.
    let req: CancelRequest = if body.is_empty() {
        CancelRequest::default()
    } else {
        parse_json::<Option<CancelRequest>>(&headers, &body)?.unwrap_or_default()
    };
    if req.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::bad_request(
            Some("reason"),
            "reason is at most 500 characters",
        ));
    }
    // A heartbeat may land between our read and our append: re-read and try again.
    for _ in 0..20 {
        let row = scan_status::get(state.ledger.pool(), id)
            .await?
            .ok_or(ApiError::NotFound)?;
        if row.status.is_terminal() {
            return Err(ApiError::Conflict("the scan has already finished"));
        }
        let event = NewEvent {
            scan_id: id,
            expected_version: row.version,
            attempt: 0,
            worker_id: None,
            event: Event::Cancelled(Cancelled {
                origin: None,
                cancelled_by: Some(principal.name.clone()),
                reason: req.reason.clone(),
            }),
        };
        match state.ledger.append(event).await {
            Ok(_) => {
                tracing::info!(scan_id = %id, by = %principal.name, "scan cancelled");
                let row = scan_status::get(state.ledger.pool(), id)
                    .await?
                    .ok_or(ApiError::NotFound)?;
                return Ok(Json(row.into()));
            }
            Err(AppendError::Conflict { .. }) => continue,
            Err(AppendError::Rejected { .. }) => continue,
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    Err(ApiError::Unavailable(
        "scan kept changing while cancelling".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        let s = format!("{}_{}", at.timestamp_micros(), id.simple());
        assert_eq!(decode_cursor(&s), Some((at, id)));
        assert_eq!(decode_cursor("abc"), None);
        assert_eq!(decode_cursor("1_notauuid"), None);
    }

    #[test]
    fn if_none_match_reads_strong_and_weak_etags() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"7\""));
        assert_eq!(if_none_match(&h), Some(7));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("W/\"8\""));
        assert_eq!(if_none_match(&h), Some(8));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert_eq!(if_none_match(&h), None);
    }
}
