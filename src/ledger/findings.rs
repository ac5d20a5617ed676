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

/// Per rule of a scan: the resources it has findings on (ARM ids compare
/// case-insensitively, as fingerprints do).
pub async fn failing_by_rule(
    pool: &PgPool,
    scan: ScanId,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT rule_id, count(DISTINCT lower(resource_id)) FROM findings
          WHERE scan_id = $1 GROUP BY rule_id",
    )
    .bind(scan.0)
    .fetch_all(pool)
    .await
}

/// Each finding of a scan as (fingerprint, rule id, resource id): what a mute matches.
pub async fn keys(
    pool: &PgPool,
    scan: ScanId,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT fingerprint, rule_id, resource_id FROM findings WHERE scan_id = $1")
        .bind(scan.0)
        .fetch_all(pool)
        .await
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

/// One page of the difference between `scan` and `base`, in fingerprint order after
/// `after`: each finding of `scan` (new, or unchanged when `base` has its fingerprint) and
/// each finding of `base` that `scan` no longer reports (resolved), at most `limit`, and
/// whether more follow.
///
/// Reads the next `limit + 1` findings of each scan from the `(scan_id, fingerprint)`
/// index and merges them here: a page costs its own rows, never all findings of both
/// scans (a join in the database would read both whole to sort its merged key).
pub async fn diff_page(
    pool: &PgPool,
    scan: ScanId,
    base: Option<ScanId>,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<(Change, StoredFinding)>, bool), sqlx::Error> {
    // `coalesce(…, '')`: the index range starts at the cursor (an `IS NULL OR` would read
    // it from its beginning).
    let rows = sqlx::query(
        "(SELECT f.*, true AS of_scan FROM findings f
           WHERE scan_id = $1 AND fingerprint > coalesce($3, '') ORDER BY fingerprint LIMIT $4)
         UNION ALL
         (SELECT f.*, false FROM findings f
           WHERE scan_id = $2 AND fingerprint > coalesce($3, '') ORDER BY fingerprint LIMIT $4)",
    )
    .bind(scan.0)
    .bind(base.map(|b| b.0))
    .bind(after)
    .bind(limit as i64 + 1)
    .fetch_all(pool)
    .await?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for r in &rows {
        let of_scan: bool = r.try_get("of_scan")?;
        if of_scan { &mut ours } else { &mut theirs }.push(stored(r)?);
    }
    Ok(merge_diff(ours, theirs, limit))
}

/// Merge two fingerprint-ordered runs (each at most `limit + 1` long, so neither runs out
/// before `limit` are emitted unless it ended) into at most `limit` changes, and whether
/// any remain. Fingerprints are lowercase hex of one length (a check constraint), which
/// every collation orders as bytes, so the comparison here agrees with the index.
fn merge_diff(
    ours: Vec<StoredFinding>,
    theirs: Vec<StoredFinding>,
    limit: usize,
) -> (Vec<(Change, StoredFinding)>, bool) {
    let mut out = Vec::with_capacity(limit.min(ours.len() + theirs.len()));
    let mut ours = ours.into_iter().peekable();
    let mut theirs = theirs.into_iter().peekable();
    while out.len() < limit {
        let next = match (ours.peek(), theirs.peek()) {
            (None, None) => break,
            (Some(_), None) => (Change::New, ours.next()),
            (None, Some(_)) => (Change::Resolved, theirs.next()),
            (Some(o), Some(t)) => match o.fingerprint.cmp(&t.fingerprint) {
                std::cmp::Ordering::Less => (Change::New, ours.next()),
                std::cmp::Ordering::Greater => (Change::Resolved, theirs.next()),
                std::cmp::Ordering::Equal => {
                    theirs.next();
                    (Change::Unchanged, ours.next())
                }
            },
        };
        out.push((next.0, next.1.expect("peeked")));
    }
    let more = ours.peek().is_some() || theirs.peek().is_some();
    (out, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fp: &str) -> StoredFinding {
        StoredFinding {
            finding_id: 0,
            scan_id: ScanId(Uuid::nil()),
            fingerprint: fp.into(),
            rule_id: String::new(),
            rule_name: String::new(),
            severity: Severity::Low,
            category: String::new(),
            resource_id: String::new(),
            resource_name: String::new(),
            resource_type: String::new(),
            description: String::new(),
            remediation: String::new(),
            frameworks: serde_json::Value::Null,
            details: serde_json::Value::Null,
            detected_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn run(ours: &[&str], theirs: &[&str], limit: usize) -> (Vec<(Change, String)>, bool) {
        let (page, more) = merge_diff(
            ours.iter().map(|x| f(x)).collect(),
            theirs.iter().map(|x| f(x)).collect(),
            limit,
        );
        (
            page.into_iter().map(|(c, s)| (c, s.fingerprint)).collect(),
            more,
        )
    }

    #[test]
    fn merges_in_fingerprint_order_and_stops_at_the_limit() {
        use Change::*;
        let (page, more) = run(&["b", "c", "e"], &["a", "c", "d"], 10);
        let got: Vec<_> = page.iter().map(|(c, s)| (*c, s.as_str())).collect();
        assert_eq!(
            got,
            [
                (Resolved, "a"),
                (New, "b"),
                (Unchanged, "c"),
                (Resolved, "d"),
                (New, "e")
            ]
        );
        assert!(!more);
        // The caller reads limit + 1 of each: a full page says more follow.
        let (page, more) = run(&["b", "c", "e"], &["a", "c", "d"], 2);
        assert_eq!(page.len(), 2);
        assert!(more);
        let (page, more) = run(&[], &[], 5);
        assert!(page.is_empty() && !more);
    }
}
