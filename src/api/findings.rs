//! Findings: per scan, and the latest completed scan of each subscription (the
//! OpenShield `GET /api/findings` shape).

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use super::error::Problem;
use super::{page_limit, parse_query, parse_subscription, ApiError, AppState};
use crate::ledger::{ScanId, Severity};
use crate::projection::finding_history::{FindingHistory, FindingState};
use crate::projection::scan_status::{self, ScanState};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingParams {
    severity: Option<Severity>,
    category: Option<String>,
    rule_id: Option<String>,
    scan_id: Option<Uuid>,
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
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FindingPage {
    pub count: usize,
    pub findings: Vec<FindingView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// A `findings` row as clients see it.
fn view(r: &sqlx::postgres::PgRow) -> Result<FindingView, sqlx::Error> {
    let severity: String = r.try_get("severity")?;
    Ok(FindingView {
        id: r.try_get("finding_id")?,
        scan_id: ScanId(r.try_get("scan_id")?),
        fingerprint: r.try_get("fingerprint")?,
        rule_id: r.try_get("rule_id")?,
        rule_name: r.try_get("rule_name")?,
        severity: serde_json::from_value(severity.into())
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        category: r.try_get("category")?,
        resource_id: r.try_get("resource_id")?,
        resource_name: r.try_get("resource_name")?,
        resource_type: r.try_get("resource_type")?,
        description: r.try_get("description")?,
        remediation: r.try_get("remediation")?,
        frameworks: r.try_get("frameworks")?,
        metadata: r.try_get("details")?,
        detected_at: r.try_get("detected_at")?,
    })
}

async fn query(
    state: &AppState,
    p: &FindingParams,
    scan: Option<ScanId>,
) -> Result<FindingPage, ApiError> {
    let limit = page_limit(p.limit, 100, 1000)?;
    let subscription = parse_subscription(p.subscription_id.as_deref())?;
    // Without a scan: the latest completed scan of each subscription.
    let rows = sqlx::query(
        "WITH scans AS (
            SELECT $1::uuid AS scan_id WHERE $1 IS NOT NULL
            UNION ALL
            SELECT * FROM (SELECT DISTINCT ON (subscription_id) scan_id FROM scan_status
                            WHERE status = 'completed' AND $1 IS NULL
                              AND ($2::text IS NULL OR subscription_id = $2)
                            ORDER BY subscription_id, finished_at DESC) latest
         )
         SELECT f.* FROM findings f JOIN scans USING (scan_id)
          WHERE ($3::text IS NULL OR f.severity = $3)
            AND ($4::text IS NULL OR f.category = $4)
            AND ($5::text IS NULL OR f.rule_id = $5)
            AND ($6::bigint IS NULL OR f.finding_id > $6)
          ORDER BY f.finding_id
          LIMIT $7",
    )
    .bind(scan.map(|s| s.0))
    .bind(subscription.map(|s| s.to_string()))
    .bind(p.severity.map(|s| s.as_str()))
    .bind(&p.category)
    .bind(&p.rule_id)
    .bind(p.cursor)
    .bind(limit + 1)
    .fetch_all(state.ledger.pool())
    .await?;
    let more = rows.len() as i64 > limit;
    let findings = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| view(&r))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
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
    let id = Uuid::try_parse(&id)
        .map(ScanId)
        .map_err(|_| ApiError::bad_request(Some("id"), "scan id must be a UUID"))?;
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
    let scan = p.scan_id.map(ScanId);
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
    let sub = crate::ledger::SubscriptionId::parse(&id)
        .map_err(|e| ApiError::bad_request(Some("id"), e.to_string()))?;
    let p: HistoryParams = parse_query(q.as_deref())?;
    let limit = page_limit(p.limit, 100, 1000)?;
    let values: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT to_jsonb(h) FROM finding_history h
          WHERE subscription_id = $1
            AND ($2::text IS NULL OR state = $2)
            AND ($3::text IS NULL OR severity = $3)
            AND ($4::text IS NULL OR rule_id = $4)
            AND ($5::text IS NULL OR fingerprint > $5)
          ORDER BY fingerprint LIMIT $6",
    )
    .bind(sub.as_str())
    .bind(p.state.map(|s| {
        if s == FindingState::Open {
            "open"
        } else {
            "resolved"
        }
    }))
    .bind(p.severity.map(|s| s.as_str()))
    .bind(&p.rule_id)
    .bind(&p.cursor)
    .bind(limit + 1)
    .fetch_all(state.ledger.pool())
    .await?;
    let more = values.len() as i64 > limit;
    let history: Vec<FindingHistory> = values
        .into_iter()
        .take(limit as usize)
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
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
    base: Option<Uuid>,
}

/// What changed between two completed scans of one subscription.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScanDiff {
    pub scan_id: ScanId,
    /// The scan compared against; absent when this is the subscription's first.
    pub base_scan_id: Option<ScanId>,
    /// In this scan, not in the base.
    pub new: Vec<FindingView>,
    /// In the base, not in this scan.
    pub resolved: Vec<FindingView>,
    /// In both (this scan's rows).
    pub unchanged: Vec<FindingView>,
}

/// New, resolved and unchanged findings against `base` (default: the previous completed
/// scan of the same subscription).
#[utoipa::path(get, path = "/api/scans/{id}/diff", tag = "findings",
    params(("id" = String, Path, description = "Scan id (UUID)"),
           ("base" = Option<String>, Query, description = "Scan to compare against")),
    responses((status = 200, description = "The difference", body = ScanDiff),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such scan", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "A scan is not completed", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn diff(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ScanDiff>, ApiError> {
    let id = Uuid::try_parse(&id)
        .map(ScanId)
        .map_err(|_| ApiError::bad_request(Some("id"), "scan id must be a UUID"))?;
    let p: DiffParams = parse_query(q.as_deref())?;
    let pool = state.ledger.pool();
    let scan = scan_status::get(pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if scan.status != ScanState::Completed {
        return Err(ApiError::Conflict("the scan has not completed"));
    }
    let base = match p.base {
        Some(b) => {
            let base = scan_status::get(pool, ScanId(b))
                .await?
                .ok_or(ApiError::NotFound)?;
            if base.subscription_id != scan.subscription_id {
                return Err(ApiError::bad_request(
                    Some("base"),
                    "the base scan is of another subscription",
                ));
            }
            if base.status != ScanState::Completed {
                return Err(ApiError::Conflict("the base scan has not completed"));
            }
            Some(base.scan_id)
        }
        None => sqlx::query_scalar::<_, Uuid>(
            "SELECT scan_id FROM scan_status
              WHERE subscription_id = $1 AND status = 'completed' AND scan_id <> $2
                AND (finished_at, scan_id) < ($3, $2)
              ORDER BY finished_at DESC, scan_id DESC LIMIT 1",
        )
        .bind(&scan.subscription_id)
        .bind(id.0)
        .bind(scan.finished_at)
        .fetch_optional(pool)
        .await?
        .map(ScanId),
    };
    let rows = sqlx::query(
        "SELECT f.*, CASE
                  WHEN f.scan_id = $1 AND NOT EXISTS (SELECT 1 FROM findings b WHERE b.scan_id = $2 AND b.fingerprint = f.fingerprint) THEN 'new'
                  WHEN f.scan_id = $1 THEN 'unchanged'
                  ELSE 'resolved' END AS change
           FROM findings f
          WHERE f.scan_id = $1
             OR (f.scan_id = $2 AND NOT EXISTS (SELECT 1 FROM findings n WHERE n.scan_id = $1 AND n.fingerprint = f.fingerprint))
          ORDER BY f.finding_id",
    )
    .bind(id.0)
    .bind(base.map(|b| b.0))
    .fetch_all(pool)
    .await?;
    let mut out = ScanDiff {
        scan_id: id,
        base_scan_id: base,
        new: vec![],
        resolved: vec![],
        unchanged: vec![],
    };
    for r in rows {
        let change: String = r.try_get("change")?;
        let v = view(&r)?;
        match change.as_str() {
            "new" => out.new.push(v),
            "unchanged" => out.unchanged.push(v),
            _ => out.resolved.push(v),
        }
    }
    Ok(Json(out))
}
