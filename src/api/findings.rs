//! Findings: per scan, and the latest completed scan of each subscription (the
//! OpenShield `GET /api/findings` shape).

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::Problem;
use super::{page_limit, parse_query, parse_subscription, ApiError, AppState};
use crate::domain::governance::{MuteList, MuteMark};
use crate::domain::{ScanId, Severity};
use crate::ledger::findings::{self, Change, FindingFilter, StoredFinding};
use crate::projection::finding_history::{self, FindingHistory, FindingState, HistoryFilter};
use crate::projection::scan_status::{self, ScanState};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingParams {
    severity: Option<Severity>,
    category: Option<String>,
    rule_id: Option<String>,
    scan_id: Option<String>,
    subscription_id: Option<String>,
    limit: Option<i64>,
    cursor: Option<i64>,
}

/// A finding, with OpenShield's field names (`id`, `metadata`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FindingView {
    pub id: i64,
    pub scan_id: ScanId,
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_name: String,
    pub severity: Severity,
    pub category: String,
    pub resource_id: String,
    pub resource_name: String,
    pub resource_type: String,
    pub description: String,
    pub remediation: String,
    #[schema(value_type = Object)]
    pub frameworks: serde_json::Value,
    /// What matched (OpenShield called it `metadata`).
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub detected_at: DateTime<Utc>,
    /// Set when a mute in effect now covers the finding: it is shown, but counts toward
    /// neither the score, `--fail-on` nor compliance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted: Option<MuteMark>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FindingPage {
    pub count: usize,
    pub findings: Vec<FindingView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// A stored finding as clients see it.
fn view(f: StoredFinding, mutes: &MuteList) -> FindingView {
    let muted = mutes
        .mute_for_parts(&f.fingerprint, &f.rule_id, &f.resource_id)
        .map(MuteMark::from);
    FindingView {
        muted,
        id: f.finding_id,
        scan_id: f.scan_id,
        fingerprint: f.fingerprint,
        rule_id: f.rule_id,
        rule_name: f.rule_name,
        severity: f.severity,
        category: f.category,
        resource_id: f.resource_id,
        resource_name: f.resource_name,
        resource_type: f.resource_type,
        description: f.description,
        remediation: f.remediation,
        frameworks: f.frameworks,
        metadata: f.details,
        detected_at: f.detected_at,
    }
}

async fn query(
    state: &AppState,
    p: &FindingParams,
    scan: Option<ScanId>,
) -> Result<FindingPage, ApiError> {
    let limit = page_limit(p.limit, 100, 1000)?;
    let subscription = parse_subscription(p.subscription_id.as_deref())?;
    super::rule_filter(p.category.as_deref(), "category")?;
    super::rule_filter(p.rule_id.as_deref(), "rule_id")?;
    let pool = state.ledger.pool();
    // Without a scan: the latest completed scan of each subscription.
    let scans = match scan {
        Some(id) => vec![id],
        None => {
            let sub = subscription.as_ref().map(|s| s.to_string());
            scan_status::latest_completed(pool, sub.as_deref()).await?
        }
    };
    let filter = FindingFilter {
        severity: p.severity,
        category: p.category.as_deref(),
        rule_id: p.rule_id.as_deref(),
        after: p.cursor,
    };
    let rows = findings::page(pool, &scans, &filter, limit + 1).await?;
    let mutes = super::governance::active_now(state).await?;
    let more = rows.len() as i64 > limit;
    let findings = rows
        .into_iter()
        .take(limit as usize)
        .map(|f| view(f, &mutes))
        .collect::<Vec<_>>();
    let next_cursor = if more {
        findings.last().map(|f| f.id)
    } else {
        None
    };
    Ok(FindingPage {
        count: findings.len(),
        findings,
        next_cursor,
    })
}

/// A scan's findings, filtered and paged.
#[utoipa::path(get, path = "/api/scans/{id}/findings", tag = "findings",
    params(("id" = String, Path, description = "Scan id (UUID)"),
           ("severity" = Option<Severity>, Query), ("category" = Option<String>, Query), ("rule_id" = Option<String>, Query),
           ("limit" = Option<i64>, Query, description = "1 to 1000, default 100"),
           ("cursor" = Option<i64>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of findings", body = FindingPage), (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such scan", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn for_scan(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<FindingPage>, ApiError> {
    let id = super::path_id(&id)?;
    let p: FindingParams = parse_query(q.as_deref())?;
    if p.scan_id.is_some() || p.subscription_id.is_some() {
        return Err(ApiError::bad_request(
            Some("scan_id"),
            "the scan is named by the path",
        ));
    }
    scan_status::get(state.ledger.pool(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(query(&state, &p, Some(id)).await?))
}

/// Findings of the latest completed scan of each subscription (or of `scan_id`).
#[utoipa::path(get, path = "/api/findings", tag = "findings",
    params(("severity" = Option<Severity>, Query), ("category" = Option<String>, Query), ("rule_id" = Option<String>, Query),
           ("scan_id" = Option<String>, Query), ("subscription_id" = Option<String>, Query),
           ("limit" = Option<i64>, Query, description = "1 to 1000, default 100"),
           ("cursor" = Option<i64>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of findings", body = FindingPage), (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn latest(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<FindingPage>, ApiError> {
    let p: FindingParams = parse_query(q.as_deref())?;
    let scan = p
        .scan_id
        .as_deref()
        .map(|s| super::parse_uuid(s, "scan_id", "scan_id").map(ScanId))
        .transpose()?;
    Ok(Json(query(&state, &p, scan).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    state: Option<FindingState>,
    severity: Option<Severity>,
    rule_id: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    pub subscription_id: String,
    pub count: usize,
    pub history: Vec<FindingHistory>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Since when each finding of a subscription exists, and when it was fixed.
#[utoipa::path(get, path = "/api/subscriptions/{id}/findings/history", tag = "findings",
    params(("id" = String, Path, description = "Subscription id (UUID)"),
           ("state" = Option<FindingState>, Query), ("severity" = Option<Severity>, Query), ("rule_id" = Option<String>, Query),
           ("limit" = Option<i64>, Query, description = "1 to 1000, default 100"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of finding history", body = HistoryPage),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<HistoryPage>, ApiError> {
    let sub = super::parse_subscription_in(&id, "id")?;
    let p: HistoryParams = parse_query(q.as_deref())?;
    let limit = page_limit(p.limit, 100, 1000)?;
    super::rule_filter(p.rule_id.as_deref(), "rule_id")?;
    if p.cursor
        .as_deref()
        .is_some_and(|c| !super::lower_hex(c, 64))
    {
        return Err(ApiError::bad_request(
            Some("cursor"),
            "not a cursor this API issued",
        ));
    }
    let filter = HistoryFilter {
        state: p.state,
        severity: p.severity.map(|s| s.as_str()),
        rule_id: p.rule_id.as_deref(),
        after: p.cursor.as_deref(),
    };
    let values =
        finding_history::page(state.ledger.pool(), sub.as_str(), &filter, limit + 1).await?;
    let more = values.len() as i64 > limit;
    let mutes = super::governance::active_now(&state).await?;
    let history: Vec<FindingHistory> = values
        .into_iter()
        .take(limit as usize)
        .map(|mut h| {
            h.muted = mutes
                .mute_for_parts(&h.fingerprint, &h.rule_id, &h.resource_id)
                .map(MuteMark::from);
            h
        })
        .collect();
    let next_cursor = if more {
        history.last().map(|h| h.fingerprint.clone())
    } else {
        None
    };
    Ok(Json(HistoryPage {
        subscription_id: sub.to_string(),
        count: history.len(),
        history,
        next_cursor,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffParams {
    base: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// One page of what changed between two completed scans of one subscription, in
/// fingerprint order across the three lists.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScanDiff {
    pub scan_id: ScanId,
    /// The scan compared against; absent when this is the subscription's first.
    pub base_scan_id: Option<ScanId>,
    /// Findings on this page (all three lists).
    pub count: usize,
    /// In this scan, not in the base.
    pub new: Vec<FindingView>,
    /// In the base, not in this scan.
    pub resolved: Vec<FindingView>,
    /// In both (this scan's rows).
    pub unchanged: Vec<FindingView>,
    /// Pass as `cursor` for the next page (it names the base too); absent on the last page.
    pub next_cursor: Option<String>,
}

/// A diff cursor: the base it pages against (`-`: none) and the last fingerprint served,
/// so that a page never mixes two bases.
fn encode_diff_cursor(base: Option<ScanId>, fingerprint: &str) -> String {
    let base = base.map_or_else(|| "-".to_string(), |b| b.0.simple().to_string());
    format!("{base}_{fingerprint}")
}

fn decode_diff_cursor(s: &str) -> Option<(Option<ScanId>, String)> {
    let (base, fp) = s.split_once('_')?;
    let base = match base {
        "-" => None,
        b if super::lower_hex(b, 32) => Some(ScanId(Uuid::try_parse(b).ok()?)),
        _ => return None,
    };
    super::lower_hex(fp, 64).then(|| (base, fp.to_string()))
}

/// New, resolved and unchanged findings against `base` (default: the previous completed
/// scan of the same subscription), a page at a time.
#[utoipa::path(get, path = "/api/scans/{id}/diff", tag = "findings",
    params(("id" = String, Path, description = "Scan id (UUID)"),
           ("base" = Option<String>, Query, description = "Scan to compare against (default: the previous completed scan of the subscription)"),
           ("limit" = Option<i64>, Query, description = "Findings per page (all three lists together), 1 to 1000, default 100"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page; it carries the base")),
    responses((status = 200, description = "A page of the difference; `Link: <…>; rel=\"next\"` when more follow", body = ScanDiff, headers(("Link" = Option<String>))),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such scan", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "A scan is not completed", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "`base` is a scan of another subscription, or the cursor was issued for another base", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn diff(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = super::path_id(&id)?;
    let p: DiffParams = parse_query(q.as_deref())?;
    let limit = page_limit(p.limit, 100, 1000)?;
    let base_param = p
        .base
        .as_deref()
        .map(|b| super::parse_uuid(b, "base", "base").map(ScanId))
        .transpose()?;
    let cursor = p
        .cursor
        .as_deref()
        .map(|c| {
            decode_diff_cursor(c).ok_or_else(|| {
                ApiError::bad_request(Some("cursor"), "not a cursor this API issued")
            })
        })
        .transpose()?;
    let pool = state.ledger.pool();
    let scan = scan_status::get(pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if scan.status != ScanState::Completed {
        return Err(ApiError::Conflict("the scan has not completed"));
    }
    let asked = match (base_param, &cursor) {
        (Some(b), Some((c, _))) if Some(b) != *c => {
            return Err(ApiError::Unprocessable(
                "the cursor was issued for another base",
            ))
        }
        (Some(b), _) => Some(Some(b)),
        (None, Some((c, _))) => Some(*c),
        (None, None) => None,
    };
    let base = match asked {
        Some(Some(b)) => {
            let base = scan_status::get(pool, b).await?.ok_or(ApiError::NotFound)?;
            if base.subscription_id != scan.subscription_id {
                return Err(ApiError::Unprocessable(
                    "the base scan is of another subscription",
                ));
            }
            if base.status != ScanState::Completed {
                return Err(ApiError::Conflict("the base scan has not completed"));
            }
            Some(base.scan_id)
        }
        Some(None) => None,
        None => scan_status::previous_completed(pool, &scan).await?,
    };
    let after = cursor.as_ref().map(|(_, fp)| fp.as_str());
    let (rows, more) = findings::diff_page(pool, id, base, after, limit as usize).await?;
    let mutes = super::governance::active_now(&state).await?;
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|(_, f)| encode_diff_cursor(base, &f.fingerprint))
        })
        .flatten();
    let mut out = ScanDiff {
        scan_id: id,
        base_scan_id: base,
        count: rows.len(),
        new: vec![],
        resolved: vec![],
        unchanged: vec![],
        next_cursor,
    };
    for (change, f) in rows {
        match change {
            Change::New => out.new.push(view(f, &mutes)),
            Change::Unchanged => out.unchanged.push(view(f, &mutes)),
            Change::Resolved => out.resolved.push(view(f, &mutes)),
        }
    }
    let link = out
        .next_cursor
        .as_ref()
        .map(|c| format!("</api/scans/{id}/diff?limit={limit}&cursor={c}>; rel=\"next\""));
    let mut resp = Json(out).into_response();
    if let Some(link) = link {
        resp.headers_mut().insert(
            header::LINK,
            HeaderValue::from_str(&link).expect("ids and hex digits are a valid header"),
        );
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_cursors_round_trip_and_reject_garbage() {
        let fp = "0123456789abcdef".repeat(4);
        let base = ScanId(Uuid::new_v4());
        let c = encode_diff_cursor(Some(base), &fp);
        assert_eq!(decode_diff_cursor(&c), Some((Some(base), fp.clone())));
        let c = encode_diff_cursor(None, &fp);
        assert_eq!(decode_diff_cursor(&c), Some((None, fp.clone())));
        assert_eq!(decode_diff_cursor(&format!("-_{}", &fp[1..])), None);
        assert_eq!(
            decode_diff_cursor(&format!("-_{}", fp.to_uppercase())),
            None
        );
        assert_eq!(decode_diff_cursor("x_y"), None);
        assert_eq!(decode_diff_cursor("nope"), None);
    }
}
