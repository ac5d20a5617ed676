//! The `findings` table: what each completed attempt found. Append-only like the
//! events, and written only in the transaction that appends that attempt's `Completed`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::NewEvent;
use crate::domain::{Event, Finding, ScanId, Severity};

/// Rows per findings INSERT: bounded statements however large the tenant.
const FINDINGS_CHUNK: usize = 5_000;

/// Write the findings of the `Completed` events in this batch, before the events: each
/// `Completed` commits to its attempt's findings, and the database checks at commit that
/// every finding was followed by its `Completed`.
pub(super) async fn insert(tx: &mut PgConnection, batch: &[NewEvent]) -> Result<(), sqlx::Error> {
    /// One row as `jsonb_to_recordset` reads it, borrowing the finding: findings are
    /// serialized a bounded chunk at a time, never all at once.
    #[derive(serde::Serialize)]
    struct Row<'a> {
        scan_id: uuid::Uuid,
        attempt: i32,
        #[serde(flatten)]
        finding: &'a Finding,
    }
    // Rows of every Completed in the batch (references only), a bounded statement at a time.
    let rows: Vec<Row<'_>> = batch
        .iter()
        .filter_map(|e| match &e.event {
            Event::Completed(c) => Some((e, c)),
            _ => None,
        })
        .flat_map(|(e, c)| {
            c.findings.iter().map(move |f| Row {
                scan_id: e.scan_id.0,
                attempt: e.attempt,
                finding: f,
            })
        })
        .collect();
    for chunk in rows.chunks(FINDINGS_CHUNK) {
        // Detected when its scan completed (now(): the transaction's time, which is also
        // the Completed's recorded_at), unless it says otherwise (imports).
        sqlx::query(
            "INSERT INTO findings (scan_id, attempt, fingerprint, rule_id, rule_name, severity, category,
                                   resource_id, resource_name, resource_type, description, remediation,
                                   frameworks, details, detected_at)
             SELECT scan_id, attempt, fingerprint, rule_id, rule_name, severity, category,
                    resource_id, resource_name, resource_type, description, remediation,
                    coalesce(frameworks, '{}'), coalesce(details, '{}'), coalesce(detected_at, now())
               FROM jsonb_to_recordset($1) AS f(scan_id uuid, attempt int, fingerprint text, rule_id text,
                    rule_name text, severity text, category text, resource_id text, resource_name text,
                    resource_type text, description text, remediation text, frameworks jsonb, details jsonb,
                    detected_at timestamptz)",
        )
        .bind(sqlx::types::Json(chunk))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// A stored finding row, as readers see it.
#[derive(Clone, Debug)]
pub struct StoredFinding {
    pub finding_id: i64,
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
    pub frameworks: serde_json::Value,
    pub details: serde_json::Value,
    pub detected_at: DateTime<Utc>,
}

fn stored(r: &sqlx::postgres::PgRow) -> Result<StoredFinding, sqlx::Error> {
    let severity: String = r.try_get("severity")?;
    Ok(StoredFinding {
        finding_id: r.try_get("finding_id")?,
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
        details: r.try_get("details")?,
        detected_at: r.try_get("detected_at")?,
    })
}

/// Filters for [`page`]; `after` is the keyset position (`finding_id`).
#[derive(Debug, Default)]
pub struct FindingFilter<'a> {
    pub severity: Option<Severity>,
    pub category: Option<&'a str>,
    pub rule_id: Option<&'a str>,
    pub after: Option<i64>,
}

/// Findings of `scans` in id order, at most `limit`.
pub async fn page(
    pool: &PgPool,
    scans: &[ScanId],
    f: &FindingFilter<'_>,
    limit: i64,
) -> Result<Vec<StoredFinding>, sqlx::Error> {
    let ids: Vec<Uuid> = scans.iter().map(|s| s.0).collect();
    let rows = sqlx::query(
        "SELECT f.* FROM findings f
          WHERE f.scan_id = ANY($1)
            AND ($2::text IS NULL OR f.severity = $2)
            AND ($3::text IS NULL OR f.category = $3)
            AND ($4::text IS NULL OR f.rule_id = $4)
            AND ($5::bigint IS NULL OR f.finding_id > $5)
          ORDER BY f.finding_id
          LIMIT $6",
    )
    .bind(&ids)
    .bind(f.severity.map(|s| s.as_str()))
    .bind(f.category)
    .bind(f.rule_id)
    .bind(f.after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(stored).collect()
}

/// How a finding of a scan compares with a base scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// In the scan, not in the base.
    New,
    /// In both (the scan's row).
    Unchanged,
    /// In the base, not in the scan (the base's row).
    Resolved,
}

/// Every finding of `scan` and every finding of `base` that `scan` no longer reports,
/// each with how it changed, in id order.
pub async fn diff(
    pool: &PgPool,
    scan: ScanId,
    base: Option<ScanId>,
) -> Result<Vec<(Change, StoredFinding)>, sqlx::Error> {
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
    .bind(scan.0)
    .bind(base.map(|b| b.0))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let change: String = r.try_get("change")?;
            let change = match change.as_str() {
                "new" => Change::New,
                "unchanged" => Change::Unchanged,
                _ => Change::Resolved,
            };
            Ok((change, stored(r)?))
        })
        .collect()
}
