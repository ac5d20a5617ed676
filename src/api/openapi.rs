//! The OpenAPI 3.1 contract, generated from the handlers' annotations and the response
//! types themselves, so it cannot drift from what the code serves.

use serde_json::{json, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::Problem;
use super::{
    audit, estates, events, findings, governance, reports, rollups, scans, tokens, Health,
};
use crate::api::auth::{Role, TokenInfo};
use crate::domain::{
    EventKind, FailureCode, Phase, Progress, PublicError, ScanId, ScanSummary, Severity,
};
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
        rollups::subscriptions, rollups::posture, rollups::compliance, rollups::operations,
        super::healthz, super::readyz, super::metrics_text, super::openapi_json,
    ),
    components(schemas(
        scans::TriggerRequest, scans::TriggerResponse, scans::Accepted, estates::EstateAccepted, estates::EstateView, scans::ScanView, scans::ScanPage, scans::CancelRequest,
        events::EventView, events::StreamView, events::FeedPage,
        findings::FindingView, findings::FindingPage, findings::HistoryPage, findings::ScanDiff,
        crate::projection::finding_history::FindingHistory, crate::projection::finding_history::FindingState,
        audit::PublicKey, reports::ReportFormat,
        rollups::SubscriptionPage, rollups::PosturePage, rollups::ComplianceReport, rollups::FrameworkKey, rollups::ComplianceFormat,
        crate::projection::rollups::SubscriptionSummary, crate::projection::rollups::LatestScan, crate::projection::rollups::PosturePoint,
        crate::projection::rollups::Operations, crate::projection::rollups::StatusCounts, crate::projection::rollups::QueueFigures,
        crate::projection::rollups::RunningScan, crate::projection::rollups::WorkerSeen, crate::projection::rollups::FailureCount,
        crate::scanner::compliance::Framework, crate::scanner::compliance::Control, crate::scanner::compliance::RuleOutcome,
        crate::scanner::compliance::Counts, crate::scanner::compliance::ControlState,
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
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    constrain(&mut doc);
    doc
}

/// A scan or subscription id: the hyphenated form only (see [`super::parse_uuid`]).
pub const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// A rule id or category used as a filter (see [`super::valid_rule_filter`]).
pub const RULE_FILTER_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$";
/// `next_cursor` of `GET /api/scans`: requested-at microseconds and the scan id.
pub const SCAN_CURSOR_PATTERN: &str = "^[0-9]{1,16}_[0-9a-f]{32}$";
/// `next_cursor` of a diff: the base (`-`: none) and the last fingerprint.
pub const DIFF_CURSOR_PATTERN: &str = "^(-|[0-9a-f]{32})_[0-9a-f]{64}$";
/// `next_cursor` of finding history: the last fingerprint.
pub const HISTORY_CURSOR_PATTERN: &str = "^[0-9a-f]{64}$";
/// A feed position `<tx>.<seq>`; empty or `0` is the start.
pub const FEED_CURSOR_PATTERN: &str = "^([0-9]{1,18}\\.[0-9]{1,18}|0)?$";
/// RFC 3339 with an upper-case `T` and `Z` (see [`super::parse_date_time`]).
pub const DATE_TIME_PATTERN: &str =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$";
/// A token's name.
pub const TOKEN_NAME_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";
/// An `Idempotency-Key`: visible ASCII, no spaces.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,255}$";
/// Free text (reasons, fingerprints, resource patterns): no control character, and at
/// least one that is not whitespace (see `governance::bounded`).
pub const TEXT_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$";
/// A management group id.
pub const MANAGEMENT_GROUP_PATTERN: &str = "^[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]$";
/// A schedule's `every`: a digit, then letters, digits and spaces (humantime's syntax).
pub const EVERY_PATTERN: &str = "^[0-9][0-9A-Za-z ]{1,31}$";
/// A schedule's `cron`: five fields of `0-9 * , / -`.
pub const CRON_PATTERN: &str = "^[0-9*,/-]+( +[0-9*,/-]+){4}$";
/// Every `code` of a problem body.
pub const PROBLEM_CODES: [&str; 12] = [
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "unprocessable",
    "too_many_requests",
    "timeout",
    "unavailable",
    "internal",
];

fn uuid_schema() -> Value {
    json!({"type": "string", "format": "uuid", "pattern": UUID_PATTERN})
}

fn string_with(pattern: &str) -> Value {
    json!({"type": "string", "pattern": pattern})
}

fn nullable(mut schema: Value) -> Value {
    schema["type"] = json!([schema["type"].clone(), "null"]);
    schema
}

/// Free text of 1 to `max` characters ([`TEXT_PATTERN`]).
fn text(max: u32, null: bool) -> Value {
    let mut s =
        json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": TEXT_PATTERN});
    if null {
        s = nullable(s);
    }
    s
}

/// What the generated document cannot say from the Rust types alone, stated once: the
/// exact shape of every parameter and body field the server checks (formats, patterns,
/// ranges, enums), the SSE stream's events, and every status each route can answer.
/// `tests/contract.rs` runs a property-based fuzzer (schemathesis) with every check
/// against a running server to keep the two in step.
fn constrain(doc: &mut Value) {
    let feed_cursor = string_with(FEED_CURSOR_PATTERN);
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        for (method, op) in item.as_object_mut().expect("a path item").iter_mut() {
            let params = op.get_mut("parameters").and_then(Value::as_array_mut);
            for param in params.into_iter().flatten() {
                let name = param["name"].as_str().unwrap_or_default().to_string();
                let schema = match (param["in"].as_str().unwrap_or_default(), name.as_str()) {
                    ("path", "id") => uuid_schema(),
                    ("path", "name") => string_with(TOKEN_NAME_PATTERN),
                    ("query", "subscription_id" | "scan_id" | "base") => uuid_schema(),
                    ("query", "category" | "rule_id") => string_with(RULE_FILTER_PATTERN),
                    ("query", "limit") => {
                        // The handler's own bound when its annotation states one.
                        let max = param["schema"]["maximum"]
                            .as_i64()
                            .unwrap_or(if path == "/api/scans" { 500 } else { 1000 });
                        json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": max})
                    }
                    ("query", "wait") => {
                        json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": 60})
                    }
                    ("query", "cursor") => match path.as_str() {
                        "/api/scans" => string_with(SCAN_CURSOR_PATTERN),
                        "/api/scans/{id}/diff" => string_with(DIFF_CURSOR_PATTERN),
                        "/api/subscriptions/{id}/findings/history" => {
                            string_with(HISTORY_CURSOR_PATTERN)
                        }
                        "/api/subscriptions" => uuid_schema(),
                        "/api/subscriptions/{id}/posture" => string_with(SCAN_CURSOR_PATTERN),
                        _ => continue,
                    },
                    ("query", "after") | ("header", "Last-Event-ID") => feed_cursor.clone(),
                    ("query", "reason") => text(2000, false),
                    ("query", "requested_after" | "requested_before" | "since") => json!({
                        "type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN
                    }),
                    ("header", "Idempotency-Key") => string_with(IDEMPOTENCY_KEY_PATTERN),
                    ("header", _) => json!({"type": "string"}),
                    _ => continue,
                };
                param["schema"] = schema;
            }
            respond(path, method, op);
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    let trigger = &mut schemas["TriggerRequest"]["properties"];
    trigger["subscription_id"] = nullable(uuid_schema());
    trigger["management_group_id"] = json!({
        "description": "Scan every subscription under this management group (needs `--estates`).",
        "type": ["string", "null"], "pattern": MANAGEMENT_GROUP_PATTERN
    });
    trigger["rules"] = json!({
        "description": "Rule ids or categories; empty means all.",
        "type": "array", "maxItems": 500,
        "items": string_with(RULE_FILTER_PATTERN)
    });
    trigger["priority"] = json!({
        "description": "Higher is claimed first (default 0).",
        "type": ["integer", "null"], "minimum": i16::MIN, "maximum": i16::MAX
    });
    // One of: a subscription, a management group, or the tenant.
    schemas["TriggerRequest"]["oneOf"] = json!([
        {"required": ["subscription_id"], "properties": {
            "subscription_id": {"type": "string"},
            "management_group_id": {"type": "null"}, "tenant": {"type": "null"}}},
        {"required": ["management_group_id"], "properties": {
            "management_group_id": {"type": "string"},
            "subscription_id": {"type": "null"}, "tenant": {"enum": [false, null]}}},
        {"required": ["tenant"], "properties": {
            "tenant": {"const": true},
            "subscription_id": {"type": "null"}, "management_group_id": {"type": "null"}}}
    ]);
    let mute = &mut schemas["CreateMute"];
    mute["properties"]["fingerprint"] = text(200, true);
    mute["properties"]["rule_id"] = text(100, true);
    mute["properties"]["resource_pattern"] = text(1000, true);
    mute["properties"]["reason"] = text(2000, false);
    mute["properties"]["expires_at"] = json!({
        "description": "When the mute stops applying (RFC 3339); a time not in the future is refused with 422.",
        "type": ["string", "null"], "format": "date-time", "pattern": DATE_TIME_PATTERN
    });
    mute["oneOf"] = json!([
        {"required": ["fingerprint"], "properties": {
            "fingerprint": {"type": "string"},
            "rule_id": {"type": "null"}, "resource_pattern": {"type": "null"}}},
        {"required": ["rule_id", "resource_pattern"], "properties": {
            "rule_id": {"type": "string"}, "resource_pattern": {"type": "string"},
            "fingerprint": {"type": "null"}}}
    ]);
    let schedule = &mut schemas["CreateSchedule"];
    schedule["properties"]["subscription_id"] = uuid_schema();
    schedule["properties"]["every"] = json!({
        "description": "Interval, at least one minute (`90s`, `15m`, `1h`, `1d`); under a minute, or not a duration: 422.",
        "type": ["string", "null"], "pattern": EVERY_PATTERN
    });
    schedule["properties"]["cron"] = json!({
        "description": "A five-field cron expression in UTC (`0 2 * * 1-5`); a value out of range: 422.",
        "type": ["string", "null"], "pattern": CRON_PATTERN, "maxLength": 100
    });
    schedule["properties"]["rules"] = json!({
        "description": "Rule ids or categories; empty: all.",
        "type": "array", "maxItems": 200, "items": string_with(RULE_FILTER_PATTERN)
    });
    schedule["oneOf"] = json!([
        {"required": ["every"], "properties": {"every": {"type": "string"}, "cron": {"type": "null"}}},
        {"required": ["cron"], "properties": {"cron": {"type": "string"}, "every": {"type": "null"}}}
    ]);
    schemas["CancelRequest"]["properties"]["reason"] =
        json!({"type": ["string", "null"], "maxLength": 500});
    let token = &mut schemas["CreateToken"]["properties"];
    token["name"] = string_with(TOKEN_NAME_PATTERN);
    token["role"] = json!({"$ref": "#/components/schemas/Role"});
    schemas["TokenInfo"]["properties"]["role"] = json!({"$ref": "#/components/schemas/Role"});
    for (schema, field) in [
        ("ScanView", "subscription_id"),
        ("HistoryPage", "subscription_id"),
        ("FindingHistory", "subscription_id"),
        ("SubscriptionSummary", "subscription_id"),
        ("PosturePage", "subscription_id"),
        ("ComplianceReport", "subscription_id"),
        ("RunningScan", "subscription_id"),
    ] {
        schemas[schema]["properties"][field] = uuid_schema();
    }
    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    schemas["EventView"]["properties"]["kind"] = json!({"type": "string", "enum": kinds});
    schemas["EventView"]["properties"]["cursor"] = feed_cursor.clone();
    schemas["FeedPage"]["properties"]["next"] = feed_cursor;
    schemas["SubscriptionPage"]["properties"]["next_cursor"] = nullable(uuid_schema());
    for (schema, pattern) in [
        ("ScanPage", SCAN_CURSOR_PATTERN),
        ("PosturePage", SCAN_CURSOR_PATTERN),
        ("ScanDiff", DIFF_CURSOR_PATTERN),
        ("HistoryPage", HISTORY_CURSOR_PATTERN),
    ] {
        schemas[schema]["properties"]["next_cursor"] =
            json!({"type": ["string", "null"], "pattern": pattern});
    }
    schemas["Problem"]["properties"]["code"] = json!({"type": "string", "enum": PROBLEM_CODES});
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

/// Every status `method path` can answer, beside those its annotation lists.
fn respond(path: &str, method: &str, op: &mut Value) {
    let secured = op.get("security").is_some();
    let has_body = op.get("requestBody").is_some();
    let has_params = op["parameters"].as_array().is_some_and(|p| !p.is_empty());
    let with_path_id = path.contains('{');
    let reads_database = !matches!(
        path,
        "/healthz" | "/metrics" | "/api/openapi.json" | "/api/audit/public-key"
    );
    let responses = op["responses"].as_object_mut().expect("responses");
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status)
            .or_insert_with(|| problem(description));
    };
    if has_params || has_body {
        add("400", "Invalid input; `field` names it");
    }
    if secured {
        add(
            "401",
            "Missing or invalid bearer token (`WWW-Authenticate: Bearer`)",
        );
        add(
            "403",
            "The token's role does not allow this (or, without authentication, a Host that is not a loopback name)",
        );
    }
    if with_path_id {
        add("404", "No such resource");
    }
    if has_body {
        add("413", "Body over 64 KiB");
        add("415", "Content-Type is not application/json");
    }
    if reads_database {
        add(
            "500",
            "Internal error; the correlation id names the log lines",
        );
        add("503", "The database cannot be reached; retry");
    }
    add(
        "504",
        "The request took longer than the server's time budget",
    );
    if method == "post" && matches!(path, "/api/mutes" | "/api/schedules") {
        add(
            "422",
            "A value of the right shape the server cannot use: an expiry not in the future, an interval under a minute, a cron field out of range",
        );
    }
    if method == "get" && path == "/api/events/stream" {
        let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        responses["200"]["content"] = json!({"text/event-stream": {"schema": {
            "description": "One Server-Sent Event per ledger event: `event` is its kind, `id` its feed cursor (send it back as `Last-Event-ID` to resume), `data` the EventView as JSON.",
            "type": "object",
            "required": ["event", "id", "data"],
            "properties": {
                "event": {"type": "string", "enum": kinds},
                "id": string_with(FEED_CURSOR_PATTERN),
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": "#/components/schemas/EventView"}
                },
                "retry": {"type": "integer", "minimum": 0}
            }
        }}});
    }
}
