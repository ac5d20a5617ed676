//! `GET /api/scans/{id}/report`: a completed scan's findings as SARIF, CSV, OCSF or JSON.
//! The CLI's report code writes it ([`report::Writer`]), fed a page of stored findings at
//! a time, and each page goes to the client as it is written: a scan with hundreds of
//! thousands of findings is never held whole in memory.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;

use super::error::Problem;
use super::{parse_query, ApiError, AppState};
use crate::domain::{Finding, FindingRule, ScanId};
use crate::ledger::findings::{self, FindingFilter, StoredFinding};
use crate::projection::scan_status::{self, ScanState};
use crate::scanner::report::{self, Format};

/// Findings read from the database per page (and written per body chunk).
const PAGE: i64 = 1000;

/// A report format the API serves (the CLI's table is for terminals only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// `{"summary": …, "findings": […]}`, as `scanledger scan --format json` writes it.
    #[default]
    Json,
    /// SARIF 2.1.0, accepted by GitHub code scanning.
    Sarif,
    /// One row per finding; cells a spreadsheet would run as formulas are quoted as text.
    Csv,
    /// OCSF 1.x Detection Findings (class 2004), one JSON object per line.
    Ocsf,
}

impl From<ReportFormat> for Format {
    fn from(f: ReportFormat) -> Self {
        match f {
            ReportFormat::Json => Format::Json,
            ReportFormat::Sarif => Format::Sarif,
            ReportFormat::Csv => Format::Csv,
            ReportFormat::Ocsf => Format::Ocsf,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    format: Option<ReportFormat>,
}

/// A completed scan's report, streamed; the same bytes `scanledger scan` writes for the
/// same findings (OCSF event times aside: the scan's completion here, the local run's there).
#[utoipa::path(get, path = "/api/scans/{id}/report", tag = "findings",
    params(("id" = uuid::Uuid, Path, description = "Scan id"),
           ("format" = Option<ReportFormat>, Query, description = "json (default), sarif, csv or ocsf")),
    responses(
        (status = 200, description = "The report, streamed, with a `Content-Disposition` file name: JSON \
            `{\"summary\": ScanSummary, \"findings\": [...]}`, a SARIF 2.1.0 log with one run, CSV (a header row, \
            then a row per finding) or OCSF Detection Findings (one per line)", content(
            (Object = "application/json"),
            (Object = "application/sarif+json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"))),
        (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such scan", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The scan has not completed", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn report(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = super::path_id(&id)?;
    let p: ReportParams = parse_query(q.as_deref())?;
    let format = Format::from(p.format.unwrap_or_default());
    let pool = state.ledger.pool().clone();
    let scan = scan_status::get(&pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let (ScanState::Completed, Some(completed_at)) = (scan.status, scan.finished_at) else {
        return Err(ApiError::Conflict("the scan has not completed"));
    };
    let header = report::Header {
        subscription: scan.subscription_id,
        completed_at,
        summary: scan.summary.unwrap_or_default(),
        mutes: super::governance::active_now(&state).await?,
    };
    let writer = report::Writer::start(format, header, Vec::new()).expect("writing to memory");
    let pages = Pages {
        pool,
        scan: id,
        completed_at,
        after: None,
        writer,
    };
    let body = Body::from_stream(futures_util::stream::try_unfold(Some(pages), next_page));
    let disposition = format!("attachment; filename=\"scan-{id}.{}\"", format.extension());
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).expect("an ASCII header"),
            ),
        ],
        body,
    )
        .into_response())
}

/// Where a streamed report is.
struct Pages {
    pool: PgPool,
    scan: ScanId,
    completed_at: DateTime<Utc>,
    /// The last finding written (keyset position).
    after: Option<i64>,
    writer: report::Writer<Vec<u8>>,
}

/// Write the next page of findings; the bytes written so far are the next body chunk.
/// An error here ends the body early (the client sees a cut transfer, not a complete
/// report); the cause goes to the log.
async fn next_page(state: Option<Pages>) -> std::io::Result<Option<(Bytes, Option<Pages>)>> {
    let Some(mut p) = state else {
        return Ok(None);
    };
    let filter = FindingFilter {
        after: p.after,
        ..Default::default()
    };
    let rows = findings::page(&p.pool, &[p.scan], &filter, PAGE)
        .await
        .map_err(|e| {
            tracing::error!(scan_id = %p.scan, error = %e, "reading findings for a report");
            std::io::Error::other(e)
        })?;
    let last = rows.len() < PAGE as usize;
    p.after = rows.last().map(|r| r.finding_id).or(p.after);
    for row in rows {
        p.writer.push(&finding(row, p.completed_at))?;
    }
    if last {
        let (bytes, _) = p.writer.finish()?;
        return Ok(Some((Bytes::from(bytes), None)));
    }
    let chunk = std::mem::take(p.writer.sink());
    Ok(Some((Bytes::from(chunk), Some(p))))
}

/// A stored finding as the scan reported it. Its detection time is stored for every
/// finding; a scan's own findings were detected when it completed, which a local scan
/// leaves unsaid, so only an earlier (imported) time is kept.
fn finding(f: StoredFinding, completed_at: DateTime<Utc>) -> Finding {
    Finding {
        fingerprint: f.fingerprint,
        rule: Arc::new(FindingRule {
            id: f.rule_id.into(),
            name: f.rule_name.into(),
            severity: f.severity,
            category: f.category.into(),
            description: f.description.into(),
            remediation: f.remediation.into(),
            frameworks: Arc::new(f.frameworks),
        }),
        resource_id: f.resource_id.into(),
        resource_name: f.resource_name.into(),
        resource_type: f.resource_type.into(),
        details: f.details.into(),
        detected_at: (f.detected_at != completed_at).then_some(f.detected_at),
    }
}
