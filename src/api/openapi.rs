//! The OpenAPI 3.1 contract, generated from the handlers' annotations and the response
//! types themselves, so it cannot drift from what the code serves.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::Problem;
use super::{audit, estates, events, findings, governance, reports, scans, tokens, Health};
use crate::api::auth::{Role, TokenInfo};
use crate::domain::{FailureCode, Phase, Progress, PublicError, ScanId, ScanSummary, Severity};
use crate::projection::ScanState;

#[derive(OpenApi)]
#[openapi(
    info(title = "scanledger", description = "Asynchronous cloud security posture scans, every step an immutable fact."),
    paths(
        scans::trigger, scans::get, scans::list, scans::cancel,
        events::scan_events, events::feed, events::stream,
        findings::for_scan, findings::latest, findings::history, findings::diff, reports::report,
        tokens::create, tokens::list, tokens::revoke,
        audit::proof, audit::public_key, estates::get,
        governance::create_mute, governance::list_mutes, governance::remove_mute,
        governance::create_schedule, governance::list_schedules, governance::remove_schedule,
        super::healthz, super::readyz, super::metrics_text, super::openapi_json,
    ),
    components(schemas(
        scans::TriggerRequest, scans::TriggerResponse, scans::Accepted, estates::EstateAccepted, estates::EstateView, scans::ScanView, scans::ScanPage, scans::CancelRequest,
        events::EventView, events::StreamView, events::FeedPage,
        findings::FindingView, findings::FindingPage, findings::HistoryPage, findings::ScanDiff,
        crate::projection::finding_history::FindingHistory, crate::projection::finding_history::FindingState,
        audit::PublicKey, reports::ReportFormat,
        tokens::CreateToken, tokens::CreatedToken, tokens::TokenList, TokenInfo, Role,
        governance::CreateMute, governance::MuteListView, crate::domain::governance::Mute,
        governance::CreateSchedule, governance::ScheduleListView, crate::domain::governance::Schedule,
        ScanId, ScanState, Progress, Phase, PublicError, FailureCode, ScanSummary, Severity, Problem, Health,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as served at `/api/openapi.json`.
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes")
}
