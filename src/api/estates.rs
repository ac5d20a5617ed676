//! Estates: one request, one scan per subscription of a tenant or management group, all
//! under one estate id; `GET /api/estates/{id}` adds them up.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use uuid::Uuid;

use super::error::Problem;
use super::{ApiError, AppState};
use crate::domain::{EstateRef, Requested, ScanId, ScanSummary, SubscriptionId};
use crate::ledger::NewScan;
use crate::scanner::azure::estate::{valid_management_group, EstateScope};
use crate::scanner::azure::AzureSource;
use crate::worker::ScanError;

/// Lists the subscriptions of an estate (the Azure source; a fake one in tests).
pub trait SubscriptionLister: Send + Sync {
    fn subscriptions<'a>(
        &'a self,
        scope: &'a EstateScope,
    ) -> BoxFuture<'a, Result<Vec<SubscriptionId>, ScanError>>;
}

impl SubscriptionLister for AzureSource {
    fn subscriptions<'a>(
        &'a self,
        scope: &'a EstateScope,
    ) -> BoxFuture<'a, Result<Vec<SubscriptionId>, ScanError>> {
        Box::pin(AzureSource::subscriptions(self, scope))
    }
}

/// The API's lister, if estates are on (`--estates`).
#[derive(Clone)]
pub struct Estates(pub Arc<dyn SubscriptionLister>);

impl std::fmt::Debug for Estates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Estates")
    }
}

/// What an estate request answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EstateAccepted {
    #[schema(value_type = String, format = Uuid)]
    pub estate_id: Uuid,
    /// `tenant` or `managementGroups/<id>`.
    pub scope: String,
    /// One scan per subscription, in subscription order.
    pub scan_ids: Vec<ScanId>,
}

/// The scope of a `POST /api/scans` body without a `subscription_id`.
pub(super) fn scope_of(
    management_group_id: Option<&str>,
    tenant: Option<bool>,
) -> Result<EstateScope, ApiError> {
    match (management_group_id, tenant) {
        (Some(mg), None | Some(false)) => {
            if !valid_management_group(mg) {
                return Err(ApiError::bad_request(
                    Some("management_group_id"),
                    "1 to 90 letters, digits, - _ ( ) . (not ending in a period)",
                ));
            }
            Ok(EstateScope::ManagementGroup(mg.to_string()))
        }
        (None, Some(true)) => Ok(EstateScope::Tenant),
        (Some(_), Some(true)) => Err(ApiError::bad_request(
            None,
            "give management_group_id or tenant, not both",
        )),
        _ => Err(ApiError::bad_request(
            Some("subscription_id"),
            "give subscription_id, management_group_id, or tenant: true",
        )),
    }
}

/// List the estate's subscriptions and request one scan for each, in one transaction.
pub(super) async fn request(
    state: &AppState,
    scope: EstateScope,
    rules: Vec<String>,
    priority: i16,
    requested_by: &str,
) -> Result<Response, ApiError> {
    let Some(Estates(lister)) = &state.config.estates else {
        return Err(ApiError::Unavailable(
            "estate requests need an API started with --estates".into(),
        ));
    };
    let subscriptions = lister.subscriptions(&scope).await.map_err(|e| {
        tracing::warn!(%scope, code = ?e.code, detail = %e.detail, "listing the estate's subscriptions failed");
        ApiError::Unavailable("the subscriptions of the estate could not be listed".into())
    })?;
    if subscriptions.is_empty() {
        return Err(ApiError::Unprocessable(
            "the estate holds no subscription that can be scanned",
        ));
    }
    let estate = EstateRef {
        id: Uuid::new_v4(),
        scope: scope.to_string(),
    };
    let scans: Vec<NewScan> = subscriptions
        .into_iter()
        .map(|subscription_id| NewScan {
            scan_id: ScanId::new(),
            request: Requested {
                subscription_id,
                rules: rules.clone(),
                priority,
                max_attempts: state.config.max_attempts,
                requested_by: Some(requested_by.to_string()),
                origin: None,
                estate: Some(estate.clone()),
            },
        })
        .collect();
    let scan_ids: Vec<ScanId> = scans.iter().map(|s| s.scan_id).collect();
    state
        .ledger
        .request(scans)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(estate_id = %estate.id, scope = %estate.scope, scans = scan_ids.len(), "estate requested");
    let location =
        HeaderValue::from_str(&format!("/api/estates/{}", estate.id)).expect("ascii header");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(EstateAccepted {
            estate_id: estate.id,
            scope: estate.scope,
            scan_ids,
        }),
    )
        .into_response())
}

/// An estate run, added up.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EstateView {
    #[schema(value_type = String, format = Uuid)]
    pub estate_id: Uuid,
    pub scope: String,
    pub requested_at: DateTime<Utc>,
    pub scans: u64,
    /// Scans by status (`pending`, `running`, `completed`, `failed`, `cancelled`).
    pub by_status: BTreeMap<String, u64>,
    /// Findings of the completed scans, by severity.
    pub findings_by_severity: BTreeMap<String, u64>,
    /// Findings of the completed scans that were muted when they ran.
    pub muted: u64,
    /// Mean score of the completed scans; absent until one completes.
    pub mean_score: Option<f64>,
}

/// Counts by status and findings by severity across an estate's scans.
#[utoipa::path(get, path = "/api/estates/{id}", tag = "scans",
    params(("id" = String, Path, format = Uuid, description = "Estate id")),
    responses((status = 200, description = "The estate, added up", body = EstateView),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such estate", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EstateView>, ApiError> {
    let id = super::parse_uuid(&id, "id", "estate id")?;
    // The Requested events of the estate (an index on the estate id), with their status.
    let rows: Vec<(String, String, Option<serde_json::Value>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT r.payload -> 'estate' ->> 'scope', s.status, s.summary, r.recorded_at
           FROM scan_events r JOIN scan_status s ON s.scan_id = r.scan_id
          WHERE r.kind = 'Requested' AND r.payload -> 'estate' ->> 'id' = $1",
    )
    .bind(id.to_string())
    .fetch_all(state.ledger.pool())
    .await?;
    let Some((scope, _, _, requested_at)) = rows.first().cloned() else {
        return Err(ApiError::NotFound);
    };
    let mut view = EstateView {
        estate_id: id,
        scope,
        requested_at,
        scans: rows.len() as u64,
        by_status: BTreeMap::new(),
        findings_by_severity: BTreeMap::new(),
        muted: 0,
        mean_score: None,
    };
    let mut scores = vec![];
    for (_, status, summary, _) in rows {
        *view.by_status.entry(status).or_default() += 1;
        let Some(summary) = summary.and_then(|s| serde_json::from_value::<ScanSummary>(s).ok())
        else {
            continue;
        };
        for (severity, n) in summary.findings_by_severity {
            *view.findings_by_severity.entry(severity).or_default() += n;
        }
        view.muted += summary.muted;
        scores.extend(summary.score);
    }
    if !scores.is_empty() {
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        view.mean_score = Some((mean * 10.0).round() / 10.0);
    }
    Ok(Json(view))
}
