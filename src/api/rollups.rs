//! The console's roll-ups: subscriptions with their latest scan and score, a
//! subscription's posture over time and its compliance per framework, and the operations
//! figures. Each reads an index of `scan_status` (see [`crate::projection::rollups`]).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::Problem;
use super::{page_limit, parse_query, ApiError, AppState};
use crate::domain::{ScanId, SubscriptionId};
use crate::ledger::findings;
use crate::projection::rollups::{self, Operations, PosturePoint, SubscriptionSummary};
use crate::scanner::compliance::{self, Controls, RuleFindings};

/// A subscription id from the path (hyphenated), or a 400 naming `id`.
fn path_subscription(id: &str) -> Result<SubscriptionId, ApiError> {
    super::parse_subscription_in(id, "id")
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of subscriptions in id order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionPage {
    pub count: usize,
    pub subscriptions: Vec<SubscriptionSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[schema(format = Uuid)]
    pub next_cursor: Option<String>,
}

/// Subscriptions the ledger has scans of, in id order, each with its latest scan and its
/// latest completed scan's score and findings.
#[utoipa::path(get, path = "/api/subscriptions", tag = "console",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "1 to 500, default 100"),
           ("cursor" = Option<uuid::Uuid>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of subscriptions", body = SubscriptionPage),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Refused: without authentication, only loopback host names are served", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn subscriptions(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<SubscriptionPage>, ApiError> {
    let p: SubscriptionParams = parse_query(q.as_deref())?;
    let limit = page_limit(p.limit, 100, 500)?;
    let after = p
        .cursor
        .as_deref()
        .map(|c| super::parse_subscription_in(c, "cursor"))
        .transpose()?;
    let rows = rollups::subscriptions(
        state.ledger.pool(),
        after.as_ref().map(SubscriptionId::as_str),
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let subscriptions: Vec<SubscriptionSummary> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more
        .then(|| subscriptions.last().map(|s| s.subscription_id.clone()))
        .flatten();
    Ok(Json(SubscriptionPage {
        count: subscriptions.len(),
        subscriptions,
        next_cursor,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostureParams {
    since: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A subscription's completed scans, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PosturePage {
    #[schema(value_type = uuid::Uuid)]
    pub subscription_id: String,
    pub count: usize,
    pub points: Vec<PosturePoint>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[schema(pattern = "^[0-9]{1,16}_[0-9a-f]{32}$")]
    pub next_cursor: Option<String>,
}

/// Keyset cursor: the last point's (finished_at, scan_id), opaque to clients.
fn encode_posture_cursor(p: &PosturePoint) -> String {
    super::scans::time_id_cursor(p.finished_at, p.scan_id.0)
}

/// A subscription's posture over time: score and findings of each completed scan,
/// newest first.
#[utoipa::path(get, path = "/api/subscriptions/{id}/posture", tag = "console",
    params(("id" = uuid::Uuid, Path, description = "Subscription id"),
           ("since" = Option<DateTime<Utc>>, Query, description = "Only scans completed at or after this time (RFC 3339)"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,16}_[0-9a-f]{32}$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of posture points", body = PosturePage),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Refused: without authentication, only loopback host names are served", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "The ledger has no scan of this subscription", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn posture(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<PosturePage>, ApiError> {
    let sub = path_subscription(&id)?;
    let p: PostureParams = parse_query(q.as_deref())?;
    let limit = page_limit(p.limit, 100, 1000)?;
    let since = p
        .since
        .as_deref()
        .map(|s| super::parse_date_time(s, "since"))
        .transpose()?;
    let before = p
        .cursor
        .as_deref()
        .map(|c| {
            super::scans::decode_cursor(c).ok_or_else(|| {
                ApiError::bad_request(Some("cursor"), "not a cursor this API issued")
            })
        })
        .transpose()?;
    let pool = state.ledger.pool();
    if !rollups::subscription_known(pool, sub.as_str()).await? {
        return Err(ApiError::NotFound);
    }
    let rows = rollups::posture(pool, sub.as_str(), since, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let points: Vec<PosturePoint> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more
        .then(|| points.last().map(encode_posture_cursor))
        .flatten();
    Ok(Json(PosturePage {
        subscription_id: sub.to_string(),
        count: points.len(),
        points,
        next_cursor,
    }))
}

/// A framework key of the rules' metadata (`cis_azure`, `cis_v3`, `nist_csf`, `iso27001`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameworkKey(pub String);

impl<'de> Deserialize<'de> for FrameworkKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if compliance::frameworks().contains(&s.as_str()) {
            Ok(Self(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "unknown framework {s:?}: expected one of {}",
                compliance::frameworks().join(", ")
            )))
        }
    }
}

impl utoipa::PartialSchema for FrameworkKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(compliance::frameworks().iter().copied()))
            .description(Some(
                "A framework the rules map to: CIS Microsoft Azure Foundations v2.1.0 \
                 (`cis_azure`) and v3.0.0 (`cis_v3`), NIST CSF (`nist_csf`), ISO/IEC \
                 27001:2022 (`iso27001`)",
            ))
            .into()
    }
}

impl utoipa::ToSchema for FrameworkKey {}

/// `json` (default) or `csv`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ComplianceFormat {
    #[default]
    Json,
    /// One row per (control, rule); formula-like cells quoted as text.
    Csv,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ComplianceParams {
    framework: Option<FrameworkKey>,
    format: Option<ComplianceFormat>,
}

/// Compliance of a subscription's latest completed scan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ComplianceReport {
    #[schema(value_type = uuid::Uuid)]
    pub subscription_id: String,
    /// The scan the counts are of: the subscription's latest completed scan.
    pub scan_id: ScanId,
    pub completed_at: DateTime<Utc>,
    /// The frameworks asked for (all when `framework` is absent).
    pub frameworks: Vec<compliance::Framework>,
}

/// Compliance per framework for a subscription's latest completed scan: each control with
/// its rules and their pass / fail / indeterminate / muted resource counts.
#[utoipa::path(get, path = "/api/subscriptions/{id}/compliance", tag = "console",
    params(("id" = uuid::Uuid, Path, description = "Subscription id"),
           ("framework" = Option<FrameworkKey>, Query, description = "One framework (default: every framework)"),
           ("format" = Option<ComplianceFormat>, Query, description = "json (default) or csv")),
    responses((status = 200, description = "The report: JSON, or CSV (a header row, then a row per control and rule) with a `Content-Disposition` file name",
                content((ComplianceReport = "application/json"), (String = "text/csv"))),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Refused: without authentication, only loopback host names are served", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "The ledger has no scan of this subscription", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "No scan of this subscription has completed yet", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn compliance(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let sub = path_subscription(&id)?;
    let p: ComplianceParams = parse_query(q.as_deref())?;
    let pool = state.ledger.pool();
    let Some(scan) = rollups::latest_completed_scan(pool, sub.as_str()).await? else {
        return Err(if rollups::subscription_known(pool, sub.as_str()).await? {
            ApiError::Conflict("no scan of this subscription has completed yet")
        } else {
            ApiError::NotFound
        });
    };
    // Muted as the findings routes mark them: by the mutes in effect now. Without any, the
    // database counts each rule's failing resources; with some, each finding is matched.
    let mutes = super::governance::active_now(&state).await?;
    let found: HashMap<String, RuleFindings> = if mutes.is_empty() {
        findings::failing_by_rule(pool, scan.scan_id)
            .await?
            .into_iter()
            .map(|(rule, failing)| {
                let found = RuleFindings {
                    failing: failing.max(0) as u64,
                    muted: 0,
                };
                (rule, found)
            })
            .collect()
    } else {
        let keys = findings::keys(pool, scan.scan_id).await?;
        compliance::rule_findings(
            keys.iter()
                .map(|(f, r, res)| (f.as_str(), r.as_str(), res.as_str())),
            |f, r, res| mutes.mute_for_parts(f, r, res).is_some(),
        )
    };
    let controls = state
        .config
        .controls
        .clone()
        .unwrap_or_else(Controls::embedded);
    let tallies = scan.summary.map(|s| s.rules).unwrap_or_default();
    let keys: Vec<&str> = match &p.framework {
        Some(k) => vec![k.0.as_str()],
        None => compliance::frameworks().to_vec(),
    };
    let frameworks: Vec<compliance::Framework> = keys
        .into_iter()
        .map(|k| compliance::framework(&controls, k, &tallies, &found))
        .collect();
    let completed_at = scan.finished_at.unwrap_or(scan.requested_at);
    if p.format == Some(ComplianceFormat::Csv) {
        let mut body = String::new();
        for (i, f) in frameworks.iter().enumerate() {
            let text = compliance::csv(f, &scan.scan_id.to_string(), sub.as_str());
            // One header row for the whole file.
            body.push_str(if i == 0 {
                &text
            } else {
                text.split_once('\n').map_or("", |(_, rows)| rows)
            });
        }
        let name = p.framework.as_ref().map_or("all", |k| k.0.as_str());
        let disposition = format!("attachment; filename=\"compliance-{sub}-{name}.csv\"");
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&disposition).expect("an ASCII header"),
                ),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(ComplianceReport {
        subscription_id: sub.to_string(),
        scan_id: scan.scan_id,
        completed_at,
        frameworks,
    })
    .into_response())
}

/// Default and bounds of `/api/operations?window=` (seconds).
const WINDOW_DEFAULT: u64 = 15 * 60;
const WINDOW_MAX: u64 = 7 * 24 * 3600;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationsParams {
    window: Option<u64>,
    limit: Option<i64>,
}

/// What an operator checks first: scans by state, the queue's depth and oldest wait,
/// running attempts with their leases, workers seen lately, failures by code.
#[utoipa::path(get, path = "/api/operations", tag = "console",
    params(("window" = Option<u64>, Query, minimum = 1, maximum = 604800, description = "Seconds back that `workers` and `failures` cover, 1 to 604800, default 900"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Most running attempts and workers listed, 1 to 500, default 100")),
    responses((status = 200, description = "The figures", body = Operations),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Refused: without authentication, only loopback host names are served", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn operations(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<Operations>, ApiError> {
    let p: OperationsParams = parse_query(q.as_deref())?;
    let window = p.window.unwrap_or(WINDOW_DEFAULT);
    if !(1..=WINDOW_MAX).contains(&window) {
        return Err(ApiError::bad_request(
            Some("window"),
            format!("window is 1 to {WINDOW_MAX} seconds"),
        ));
    }
    let limit = page_limit(p.limit, 100, 500)?;
    Ok(Json(
        rollups::operations(state.ledger.pool(), Duration::from_secs(window), limit).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posture_cursors_round_trip_and_reject_garbage() {
        let p = PosturePoint {
            scan_id: ScanId(uuid::Uuid::new_v4()),
            finished_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
            score: None,
            findings: 0,
            resources_seen: None,
            findings_by_severity: Default::default(),
        };
        let c = encode_posture_cursor(&p);
        assert_eq!(
            crate::api::scans::decode_cursor(&c),
            Some((p.finished_at, p.scan_id.0))
        );
        assert_eq!(crate::api::scans::decode_cursor("x_y"), None);
        assert_eq!(crate::api::scans::decode_cursor("12"), None);
    }

    #[test]
    fn framework_keys_are_the_catalogue_s() {
        let ok: FrameworkKey = serde_json::from_value("nist_csf".into()).unwrap();
        assert_eq!(ok.0, "nist_csf");
        assert!(serde_json::from_value::<FrameworkKey>("pci".into()).is_err());
    }
}
