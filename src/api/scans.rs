//! `/api/scans`: trigger a scan, read its status.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::ledger::{
    AppendError, NewScan, Progress, PublicError, Requested, ScanId, ScanSummary, SubscriptionId,
};
use crate::projection::scan_status::{self, ScanState, ScanStatus};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerRequest {
    subscription_id: String,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    priority: Option<i16>,
}

#[derive(Debug, Serialize)]
struct TriggerResponse {
    scan_id: ScanId,
    status: ScanState,
    message: &'static str,
}

/// Parse a JSON body strictly: unknown fields and wrong types are a 400 naming the field.
fn parse_json<T: serde::de::DeserializeOwned>(
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
    if json_type == Some(false) {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        let field = field_of(&msg);
        ApiError::bad_request(field.as_deref(), msg)
    })
}

/// serde names the offending field in backticks ("unknown field `x`", "missing field `y`").
fn field_of(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = start + msg[start..].find('`')?;
    Some(msg[start..end].to_string())
}

pub(super) async fn trigger(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: TriggerRequest = parse_json(&headers, &body)?;
    let subscription_id = SubscriptionId::parse(&req.subscription_id)
        .map_err(|e| ApiError::bad_request(Some("subscription_id"), e.to_string()))?;
    if req
        .rules
        .iter()
        .any(|r| r.trim().is_empty() || r.len() > 128)
    {
        return Err(ApiError::bad_request(
            Some("rules"),
            "rule filters must be 1 to 128 characters",
        ));
    }
    let scan_id = ScanId::new();
    let request = Requested {
        subscription_id,
        rules: req.rules,
        priority: req.priority.unwrap_or(0),
        max_attempts: state.max_attempts,
        requested_by: None,
    };
    let span = tracing::info_span!("scan", %scan_id);
    let _guard = span.enter();
    state
        .ledger
        .request(vec![NewScan { scan_id, request }])
        .await
        .map_err(|e: AppendError| ApiError::internal(e))?;
    tracing::info!("scan requested");
    let location = format!("/api/scans/{scan_id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(TriggerResponse {
            scan_id,
            status: ScanState::Pending,
            message: "Scan queued",
        }),
    )
        .into_response())
}

/// The status a polling client reads.
#[derive(Debug, Serialize)]
pub struct ScanView {
    pub scan_id: ScanId,
    pub subscription_id: String,
    pub status: ScanState,
    pub attempt: i32,
    pub max_attempts: i32,
    pub priority: i16,
    pub rules: Vec<String>,
    pub worker_id: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub progress: Option<Progress>,
    pub error: Option<PublicError>,
    pub summary: Option<ScanSummary>,
    /// Stream version: changes whenever the scan does.
    pub version: i32,
}

impl From<ScanStatus> for ScanView {
    fn from(s: ScanStatus) -> Self {
        Self {
            scan_id: s.scan_id,
            subscription_id: s.subscription_id,
            status: s.status,
            attempt: s.attempt,
            max_attempts: s.max_attempts,
            priority: s.priority,
            rules: s.rules,
            worker_id: s.worker_id,
            requested_at: s.requested_at,
            claimed_at: s.claimed_at,
            heartbeat_at: s.heartbeat_at,
            finished_at: s.finished_at,
            lease_expires_at: s.lease_expires_at,
            next_attempt_at: (s.status == ScanState::Pending)
                .then_some(s.next_eligible_at)
                .flatten(),
            progress: s.progress,
            error: s.error,
            summary: s.summary,
            version: s.version,
        }
    }
}

pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScanView>, ApiError> {
    let id = Uuid::try_parse(&id)
        .map_err(|_| ApiError::bad_request(Some("id"), "scan id must be a UUID"))?;
    let row = scan_status::get(state.ledger.pool(), ScanId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(row.into()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_field_serde_complains_about() {
        assert_eq!(
            super::field_of("unknown field `colour`, expected one of ...").as_deref(),
            Some("colour")
        );
        assert_eq!(
            super::field_of("missing field `subscription_id`").as_deref(),
            Some("subscription_id")
        );
        assert_eq!(super::field_of("EOF while parsing"), None);
    }
}
