//! `/api/mutes` and `/api/schedules`: governance facts appended to `governance_events`.
//! Every change is a new event naming who made it; nothing is edited or deleted (a
//! `DELETE` appends the removal).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::Principal;
use super::error::Problem;
use super::{parse_json, parse_query, ApiError, AppState};
use crate::domain::governance::{
    Cadence, GovernanceEvent, Mute, MuteAdded, MuteList, MuteRemoved, MuteSelector, Schedule,
    ScheduleRemoved, ScheduleSet,
};
use crate::ledger::governance::GovernanceError;

impl From<GovernanceError> for ApiError {
    fn from(e: GovernanceError) -> Self {
        match e {
            GovernanceError::Conflict { .. } => {
                ApiError::Conflict("changed by another request; read it again")
            }
            GovernanceError::Rejected { .. } => ApiError::Conflict("already removed"),
            other => ApiError::internal(other),
        }
    }
}

/// The mutes in effect now (database clock), to mark findings with.
pub(super) async fn active_now(state: &AppState) -> Result<Arc<MuteList>, ApiError> {
    let (g, now) = state.ledger.governance().await?;
    let mutes: Vec<Mute> = g.mutes.into_values().collect();
    Ok(Arc::new(MuteList::active(&mutes, now)))
}

/// Starts a governance stream with `event` and answers `201 Created`: `Location`
/// `{collection}/{id}`, and as body what the fold of that one event holds (`pick` takes
/// it out of the fold).
async fn create<T: Serialize>(
    state: &AppState,
    principal: &Principal,
    collection: &str,
    event: GovernanceEvent,
    pick: impl FnOnce(&mut crate::domain::governance::Governance, Uuid) -> Option<T>,
) -> Result<Response, ApiError> {
    let id = Uuid::new_v4();
    let e = state
        .ledger
        .append_governance(id, 0, &principal.name, event)
        .await?;
    tracing::info!(id = %id, kind = e.event.kind().as_str(), by = %principal.name, "governance stream started");
    let mut g = crate::domain::governance::Governance::default();
    g.apply(&e);
    let created = pick(&mut g, id).expect("the fold of a stream's first event holds it");
    let location = HeaderValue::from_str(&format!("{collection}/{id}")).expect("ascii");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    )
        .into_response())
}

fn uuid_path(id: &str) -> Result<Uuid, ApiError> {
    super::parse_uuid(id, "id", "id")
}

// ------------------------------------------------------------------------------ mutes

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMute {
    /// Mute one finding (its `fingerprint`)…
    #[schema(min_length = 1, max_length = 200)]
    fingerprint: Option<String>,
    /// …or a rule on every resource whose id matches `resource_pattern`.
    #[schema(min_length = 1, max_length = 100)]
    rule_id: Option<String>,
    /// `*` matches any run of characters; case-insensitive.
    #[schema(min_length = 1, max_length = 1000)]
    resource_pattern: Option<String>,
    /// Why (kept forever with the mute).
    #[schema(min_length = 1, max_length = 2000)]
    reason: String,
    /// When the mute stops applying (RFC 3339; in the future, or 422).
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    expires_at: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MuteListView {
    pub count: usize,
    pub mutes: Vec<Mute>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteListParams {
    /// Also list removed and expired mutes (the audit trail).
    all: Option<bool>,
}

/// Free text (a reason, a fingerprint, a rule id, a resource pattern): 1 to `max`
/// characters, not only whitespace, no control character
/// ([`super::openapi::TEXT_PATTERN`]).
fn bounded(field: &'static str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.trim().is_empty() || s.chars().count() > max {
        return Err(ApiError::bad_request(
            Some(field),
            format!("1 to {max} characters, not blank"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(ApiError::bad_request(Some(field), "no control characters"));
    }
    Ok(())
}

/// Mute a finding, or a rule on matching resources.
#[utoipa::path(post, path = "/api/mutes", tag = "governance", request_body = CreateMute,
    responses((status = 201, description = "Muted; `Location` names the mute", body = Mute, headers(("Location" = String))),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "The token's role does not allow this", body = Problem, content_type = "application/problem+json"),
              (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn create_mute(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateMute = parse_json(&headers, &body)?;
    bounded("reason", &req.reason, 2000)?;
    let expires_at = req
        .expires_at
        .as_deref()
        .map(|t| super::parse_date_time(t, "expires_at"))
        .transpose()?;
    let selector = match (req.fingerprint, req.rule_id, req.resource_pattern) {
        (Some(fingerprint), None, None) => {
            bounded("fingerprint", &fingerprint, 200)?;
            MuteSelector::Fingerprint { fingerprint }
        }
        (None, Some(rule_id), Some(resource_pattern)) => {
            bounded("rule_id", &rule_id, 100)?;
            bounded("resource_pattern", &resource_pattern, 1000)?;
            MuteSelector::Rule {
                rule_id,
                resource_pattern,
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                None,
                "give either fingerprint, or rule_id with resource_pattern",
            ))
        }
    };
    if let Some(t) = expires_at {
        if t <= Utc::now() {
            return Err(ApiError::Unprocessable("expires_at must be in the future"));
        }
    }
    let added = GovernanceEvent::MuteAdded(MuteAdded {
        selector,
        reason: req.reason,
        expires_at,
    });
    create(&state, &principal, "/api/mutes", added, |g, id| {
        g.mutes.remove(&id)
    })
    .await
}

/// The mutes in effect (with `all=true`: every mute ever made, removed and expired ones
/// included).
#[utoipa::path(get, path = "/api/mutes", tag = "governance",
    params(("all" = Option<bool>, Query, description = "Include removed and expired mutes")),
    responses((status = 200, description = "Mutes, oldest first", body = MuteListView),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn list_mutes(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<MuteListView>, ApiError> {
    let p: MuteListParams = parse_query(q.as_deref())?;
    let (g, now) = state.ledger.governance().await?;
    let mut mutes: Vec<Mute> = g
        .mutes
        .into_values()
        .filter(|m| p.all.unwrap_or(false) || m.active_at(now))
        .collect();
    mutes.sort_by_key(|m| m.created_at);
    Ok(Json(MuteListView {
        count: mutes.len(),
        mutes,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveParams {
    reason: Option<String>,
}

/// Unmute: appends the removal (the mute and its history stay readable).
#[utoipa::path(delete, path = "/api/mutes/{id}", tag = "governance",
    params(("id" = String, Path, format = Uuid, description = "Mute id"),
           ("reason" = Option<String>, Query, description = "Why it is removed")),
    responses((status = 200, description = "Removed", body = Mute),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "The token's role does not allow this", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such mute", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Already removed", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn remove_mute(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Mute>, ApiError> {
    let id = uuid_path(&id)?;
    let p: RemoveParams = parse_query(q.as_deref())?;
    if let Some(r) = &p.reason {
        bounded("reason", r, 2000)?;
    }
    let (g, _) = state.ledger.governance().await?;
    let mut mute = g.mutes.get(&id).cloned().ok_or(ApiError::NotFound)?;
    if mute.removed_at.is_some() {
        return Err(ApiError::Conflict("already removed"));
    }
    let e = state
        .ledger
        .append_governance(
            id,
            mute.version,
            &principal.name,
            GovernanceEvent::MuteRemoved(MuteRemoved { reason: p.reason }),
        )
        .await?;
    tracing::info!(mute_id = %id, by = %principal.name, "mute removed");
    mute.removed_at = Some(e.recorded_at);
    mute.removed_by = Some(e.actor);
    Ok(Json(mute))
}

// -------------------------------------------------------------------------- schedules

/// `every`'s shape ([`super::openapi::EVERY_PATTERN`]): 2 to 32 characters, a digit first,
/// then letters, digits and spaces (`15m`, `1h 30m`, `90 seconds`).
fn every_shape(s: &str) -> bool {
    (2..=32).contains(&s.len())
        && s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
}

/// `cron`'s shape ([`super::openapi::CRON_PATTERN`]): five fields of `0-9 * , / -`
/// separated by spaces, 9 to 100 characters.
fn cron_shape(s: &str) -> bool {
    let field = |f: &str| {
        !f.is_empty()
            && f.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b',' | b'/' | b'-'))
    };
    (9..=100).contains(&s.len())
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && s.split(' ').filter(|f| !f.is_empty()).count() == 5
        && s.split(' ').filter(|f| !f.is_empty()).all(field)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    #[schema(format = Uuid)]
    subscription_id: String,
    /// Interval, at least one minute (`90s`, `15m`, `1h`, `1d`)…
    #[schema(min_length = 2, max_length = 32)]
    every: Option<String>,
    /// …or a five-field cron expression in UTC (`0 2 * * 1-5`).
    #[schema(min_length = 9, max_length = 100)]
    cron: Option<String>,
    /// Rule ids or categories; empty: all.
    #[serde(default)]
    rules: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleListView {
    pub count: usize,
    pub schedules: Vec<Schedule>,
}

/// Scan a subscription on a schedule. One scheduler at a time across the fleet requests
/// due scans; each slot is requested at most once.
#[utoipa::path(post, path = "/api/schedules", tag = "governance", request_body = CreateSchedule,
    responses((status = 201, description = "Scheduled; `Location` names it", body = Schedule, headers(("Location" = String))),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "The token's role does not allow this", body = Problem, content_type = "application/problem+json"),
              (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn create_schedule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateSchedule = parse_json(&headers, &body)?;
    let subscription_id = super::parse_subscription_in(&req.subscription_id, "subscription_id")?;
    // The shape of each (the document's pattern) is a 400; a value of that shape the
    // scheduler cannot use (under a minute, a cron field out of range) a 422.
    let cadence = match (req.every, req.cron) {
        (Some(every), None) => {
            if !every_shape(&every) {
                return Err(ApiError::bad_request(
                    Some("every"),
                    "a duration such as 15m, 1h or 1d",
                ));
            }
            let d = humantime::parse_duration(&every).map_err(|_| {
                ApiError::Unprocessable("every is not a duration (such as 15m, 1h or 1d)")
            })?;
            Cadence::Every {
                every_s: d.as_secs(),
            }
        }
        (None, Some(cron)) => {
            if !cron_shape(&cron) {
                return Err(ApiError::bad_request(
                    Some("cron"),
                    "five fields of 0-9 * , / - separated by spaces",
                ));
            }
            Cadence::Cron { cron }
        }
        _ => return Err(ApiError::bad_request(None, "give either every or cron")),
    };
    if let Err(e) = cadence.validate() {
        tracing::info!(error = %e, "schedule refused");
        return Err(ApiError::Unprocessable(match cadence {
            Cadence::Every { .. } => "every must be at least one minute",
            Cadence::Cron { .. } => "cron has a value out of range or a bad step",
        }));
    }
    if req.rules.len() > 200 || !req.rules.iter().all(|r| super::valid_rule_filter(r)) {
        return Err(ApiError::bad_request(
            Some("rules"),
            "at most 200 rule ids or categories, each 1 to 128 of A-Z a-z 0-9 . _ -, \
             starting with a letter or digit",
        ));
    }
    let set = GovernanceEvent::ScheduleSet(ScheduleSet {
        subscription_id,
        cadence,
        rules: req.rules,
    });
    create(&state, &principal, "/api/schedules", set, |g, id| {
        g.schedules.remove(&id)
    })
    .await
}

/// The schedules in effect (with `all=true`, removed ones too).
#[utoipa::path(get, path = "/api/schedules", tag = "governance",
    params(("all" = Option<bool>, Query, description = "Include removed schedules")),
    responses((status = 200, description = "Schedules, oldest first", body = ScheduleListView),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn list_schedules(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<ScheduleListView>, ApiError> {
    let p: MuteListParams = parse_query(q.as_deref())?;
    let (g, _) = state.ledger.governance().await?;
    let mut schedules: Vec<Schedule> = g
        .schedules
        .into_values()
        .filter(|s| p.all.unwrap_or(false) || s.removed_at.is_none())
        .collect();
    schedules.sort_by_key(|s| s.created_at);
    Ok(Json(ScheduleListView {
        count: schedules.len(),
        schedules,
    }))
}

/// Stop a schedule: appends its removal.
#[utoipa::path(delete, path = "/api/schedules/{id}", tag = "governance",
    params(("id" = String, Path, format = Uuid, description = "Schedule id")),
    responses((status = 204, description = "Removed"),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "The token's role does not allow this", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Already removed", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn remove_schedule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = uuid_path(&id)?;
    let (g, _) = state.ledger.governance().await?;
    let schedule = g.schedules.get(&id).ok_or(ApiError::NotFound)?;
    if schedule.removed_at.is_some() {
        return Err(ApiError::Conflict("already removed"));
    }
    state
        .ledger
        .append_governance(
            id,
            schedule.version,
            &principal.name,
            GovernanceEvent::ScheduleRemoved(ScheduleRemoved {}),
        )
        .await?;
    tracing::info!(schedule_id = %id, by = %principal.name, "schedule removed");
    Ok(StatusCode::NO_CONTENT)
}
