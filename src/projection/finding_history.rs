//! `finding_history`: per (subscription, fingerprint), when a misconfiguration was first
//! seen, last seen, resolved (the first completed scan that no longer reports it), and how
//! often it came back. Fed by `Completed` events in order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::domain::{Finding, ScanId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    Open,
    Resolved,
}

/// A row of `finding_history` (field names are column names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FindingHistory {
    pub subscription_id: String,
    pub fingerprint: String,
    pub rule_id: String,
    pub rule_name: String,
    #[schema(value_type = crate::domain::Severity)]
    pub severity: String,
    pub category: String,
    pub resource_id: String,
    pub resource_name: String,
    pub resource_type: String,
    pub state: FindingState,
    pub first_seen_scan: ScanId,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_scan: ScanId,
    pub last_seen_at: DateTime<Utc>,
    pub resolved_scan: Option<ScanId>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub reopened_count: i32,
    pub last_seq: i64,
}

/// One completed scan, as the fold sees it.
pub struct Completion<'a> {
    pub subscription_id: &'a str,
    pub scan_id: ScanId,
    /// When the scan completed (its original time, for imported history).
    pub at: DateTime<Utc>,
    pub seq: i64,
    pub findings: &'a [Finding],
}

/// The fold: the subscription's known rows (every open one, and any resolved one this
/// scan reports again) + a completed scan → the rows that change. Pure.
pub fn fold(known: &HashMap<String, FindingHistory>, c: &Completion<'_>) -> Vec<FindingHistory> {
    let mut changed: HashMap<String, FindingHistory> = HashMap::new();
    for f in c.findings {
        let row = match known.get(&f.fingerprint) {
            None => FindingHistory {
                subscription_id: c.subscription_id.to_string(),
                fingerprint: f.fingerprint.clone(),
                rule_id: f.rule_id.to_string(),
                rule_name: f.rule_name.to_string(),
                severity: f.severity.as_str().to_string(),
                category: f.category.to_string(),
                resource_id: f.resource_id.clone(),
                resource_name: f.resource_name.clone(),
                resource_type: f.resource_type.clone(),
                state: FindingState::Open,
                first_seen_scan: c.scan_id,
                first_seen_at: c.at,
                last_seen_scan: c.scan_id,
                last_seen_at: c.at,
                resolved_scan: None,
                resolved_at: None,
                reopened_count: 0,
                last_seq: c.seq,
            },
            Some(prev) => {
                let mut row = prev.clone();
                if row.state == FindingState::Resolved {
                    row.state = FindingState::Open;
                    row.reopened_count += 1;
                    row.resolved_scan = None;
                    row.resolved_at = None;
                }
                // The latest scan's view of the rule wins (a rule's severity may change).
                row.rule_name = f.rule_name.to_string();
                row.severity = f.severity.as_str().to_string();
                row.category = f.category.to_string();
                row.resource_name = f.resource_name.clone();
                row.last_seen_scan = c.scan_id;
                row.last_seen_at = c.at;
                row.last_seq = c.seq;
                row
            }
        };
        changed.insert(row.fingerprint.clone(), row);
    }
    for (fp, prev) in known {
        if prev.state == FindingState::Open && !changed.contains_key(fp) {
            let mut row = prev.clone();
            row.state = FindingState::Resolved;
            row.resolved_scan = Some(c.scan_id);
            row.resolved_at = Some(c.at);
            row.last_seq = c.seq;
            changed.insert(fp.clone(), row);
        }
    }
    let mut out: Vec<FindingHistory> = changed.into_values().collect();
    out.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    out
}

pub const TABLE: &str = "finding_history";

/// Apply completions (in order) to `table`: lock their subscriptions (completions of one
/// subscription apply one at a time, across transactions), read the rows they can touch
/// in one query, fold in memory, write the changed rows in one statement.
pub(crate) async fn apply(
    tx: &mut PgConnection,
    table: &str,
    completions: &[Completion<'_>],
) -> Result<(), sqlx::Error> {
    if completions.is_empty() {
        return Ok(());
    }
    let mut subs: Vec<&str> = completions.iter().map(|c| c.subscription_id).collect();
    subs.sort_unstable();
    subs.dedup();
    // In a fixed order, so two batches cannot deadlock.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('scanledger:history:' || s, 0))
           FROM unnest($1::text[]) s ORDER BY s",
    )
    .bind(&subs)
    .execute(&mut *tx)
    .await?;
    let fps: Vec<&str> = completions
        .iter()
        .flat_map(|c| c.findings.iter().map(|f| f.fingerprint.as_str()))
        .collect();
    // Two index scans (open rows; reported fingerprints) rather than one OR that scans all.
    let values: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
        "SELECT to_jsonb(h) FROM {table} h WHERE subscription_id = ANY($1) AND state = 'open'
         UNION ALL
         SELECT to_jsonb(h) FROM {table} h
          WHERE subscription_id = ANY($1) AND fingerprint = ANY($2) AND state <> 'open'"
    ))
    .bind(&subs)
    .bind(&fps)
    .fetch_all(&mut *tx)
    .await?;
    // subscription → fingerprint → row, as the table would be after each fold.
    let mut table_rows: HashMap<String, HashMap<String, FindingHistory>> = HashMap::new();
    for v in values {
        let r: FindingHistory =
            serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        table_rows
            .entry(r.subscription_id.clone())
            .or_default()
            .insert(r.fingerprint.clone(), r);
    }
    let mut changed: HashMap<(String, String), FindingHistory> = HashMap::new();
    for c in completions {
        let rows = table_rows.entry(c.subscription_id.to_string()).or_default();
        let reported: std::collections::HashSet<&str> =
            c.findings.iter().map(|f| f.fingerprint.as_str()).collect();
        let known: HashMap<String, FindingHistory> = rows
            .iter()
            .filter(|(fp, r)| r.state == FindingState::Open || reported.contains(fp.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for row in fold(&known, c) {
            changed.insert(
                (row.subscription_id.clone(), row.fingerprint.clone()),
                row.clone(),
            );
            rows.insert(row.fingerprint.clone(), row);
        }
    }
    let rows: Vec<FindingHistory> = changed.into_values().collect();
    for chunk in rows.chunks(5_000) {
        let json = serde_json::to_value(chunk).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(&format!(
            "INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, $1)
             ON CONFLICT (subscription_id, fingerprint) DO UPDATE SET
                rule_id = EXCLUDED.rule_id, rule_name = EXCLUDED.rule_name, severity = EXCLUDED.severity,
                category = EXCLUDED.category, resource_id = EXCLUDED.resource_id,
                resource_name = EXCLUDED.resource_name, resource_type = EXCLUDED.resource_type,
                state = EXCLUDED.state, first_seen_scan = EXCLUDED.first_seen_scan,
                first_seen_at = EXCLUDED.first_seen_at, last_seen_scan = EXCLUDED.last_seen_scan,
                last_seen_at = EXCLUDED.last_seen_at, resolved_scan = EXCLUDED.resolved_scan,
                resolved_at = EXCLUDED.resolved_at, reopened_count = EXCLUDED.reopened_count,
                last_seq = EXCLUDED.last_seq"
        ))
        .bind(json)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Filters for [`page`]; `after` is the keyset position (fingerprint).
#[derive(Debug, Default)]
pub struct HistoryFilter<'a> {
    pub state: Option<FindingState>,
    pub severity: Option<&'a str>,
    pub rule_id: Option<&'a str>,
    pub after: Option<&'a str>,
}

/// One subscription's history rows in fingerprint order, at most `limit`.
pub async fn page(
    pool: &sqlx::PgPool,
    subscription_id: &str,
    f: &HistoryFilter<'_>,
    limit: i64,
) -> Result<Vec<FindingHistory>, sqlx::Error> {
    let values: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
        "SELECT to_jsonb(h) FROM {TABLE} h
          WHERE subscription_id = $1
            AND ($2::text IS NULL OR state = $2)
            AND ($3::text IS NULL OR severity = $3)
            AND ($4::text IS NULL OR rule_id = $4)
            AND ($5::text IS NULL OR fingerprint > $5)
          ORDER BY fingerprint LIMIT $6"
    ))
    .bind(subscription_id)
    .bind(f.state.map(|s| match s {
        FindingState::Open => "open",
        FindingState::Resolved => "resolved",
    }))
    .bind(f.severity)
    .bind(f.rule_id)
    .bind(f.after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    values
        .into_iter()
        .map(|v| serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Severity;

    fn f(fp: &str) -> Finding {
        Finding {
            fingerprint: fp.into(),
            rule_id: format!("rule-{fp}").into(),
            rule_name: "r".into(),
            severity: Severity::High,
            category: "c".into(),
            resource_id: format!("/res/{fp}"),
            resource_name: fp.into(),
            resource_type: "t".into(),
            description: "d".into(),
            remediation: "m".into(),
            frameworks: serde_json::json!({}).into(),
            details: serde_json::json!({}).into(),
            detected_at: None,
        }
    }

    /// Replays scans through the fold like the table would hold them.
    fn run(scans: &[&[&str]]) -> (HashMap<String, FindingHistory>, Vec<ScanId>) {
        let mut table: HashMap<String, FindingHistory> = HashMap::new();
        let mut ids = Vec::new();
        for (i, fps) in scans.iter().enumerate() {
            let findings: Vec<Finding> = fps.iter().map(|x| f(x)).collect();
            let id = ScanId::new();
            ids.push(id);
            let c = Completion {
                subscription_id: "s",
                scan_id: id,
                at: DateTime::from_timestamp(1_000 * (i as i64 + 1), 0).unwrap(),
                seq: i as i64 + 1,
                findings: &findings,
            };
            let known: HashMap<String, FindingHistory> = table
                .iter()
                .filter(|(fp, r)| r.state == FindingState::Open || fps.contains(&fp.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for row in fold(&known, &c) {
                table.insert(row.fingerprint.clone(), row);
            }
        }
        (table, ids)
    }

    #[test]
    fn first_seen_resolved_and_reopened() {
        // a: always; b: appears, disappears, reappears; c: fixed in scan 2 for good.
        let (t, ids) = run(&[&["a", "c"], &["a", "b"], &["a"], &["a", "b"]]);
        let a = &t["a"];
        assert_eq!(
            (
                a.state,
                a.first_seen_scan,
                a.last_seen_scan,
                a.reopened_count
            ),
            (FindingState::Open, ids[0], ids[3], 0)
        );
        let b = &t["b"];
        assert_eq!(
            (b.state, b.first_seen_scan, b.reopened_count),
            (FindingState::Open, ids[1], 1)
        );
        assert_eq!(b.resolved_scan, None);
        let c = &t["c"];
        assert_eq!(
            (c.state, c.resolved_scan, c.last_seen_scan),
            (FindingState::Resolved, Some(ids[1]), ids[0])
        );
        assert_eq!(
            c.resolved_at,
            Some(DateTime::from_timestamp(2_000, 0).unwrap())
        );
    }
}
