//! `finding_history`: per (subscription, fingerprint), when a misconfiguration was first
//! seen, last seen, resolved (the first completed scan that no longer reports it), and how
//! often it came back. Fed by `Completed` events, per subscription in the order the
//! attempts happened (not the order they reached the ledger).

use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// Not stored: set by readers from the mutes in effect now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<crate::domain::governance::MuteMark>,
}

/// What the fold reads of a finding (borrowed from a scan's findings or a stored row).
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    pub fingerprint: &'a str,
    pub rule_id: &'a str,
    pub rule_name: &'a str,
    pub severity: &'a str,
    pub category: &'a str,
    pub resource_id: &'a str,
    pub resource_name: &'a str,
    pub resource_type: &'a str,
}

impl<'a> From<&'a Finding> for Seen<'a> {
    fn from(f: &'a Finding) -> Self {
        Seen {
            fingerprint: &f.fingerprint,
            rule_id: &f.rule.id,
            rule_name: &f.rule.name,
            severity: f.rule.severity.as_str(),
            category: &f.rule.category,
            resource_id: &f.resource_id,
            resource_name: &f.resource_name,
            resource_type: &f.resource_type,
        }
    }
}

/// A stored finding as the fold reads it (the columns of `findings` it needs).
#[derive(Debug)]
struct SeenRow {
    scan_id: uuid::Uuid,
    fingerprint: String,
    rule_id: String,
    rule_name: String,
    severity: String,
    category: String,
    resource_id: String,
    resource_name: String,
    resource_type: String,
}

impl<'a> From<&'a SeenRow> for Seen<'a> {
    fn from(r: &'a SeenRow) -> Self {
        Seen {
            fingerprint: &r.fingerprint,
            rule_id: &r.rule_id,
            rule_name: &r.rule_name,
            severity: &r.severity,
            category: &r.category,
            resource_id: &r.resource_id,
            resource_name: &r.resource_name,
            resource_type: &r.resource_type,
        }
    }
}

/// One completed scan, as the fold sees it.
pub struct Completion<'a> {
    pub subscription_id: &'a str,
    pub scan_id: ScanId,
    /// When the attempt happened: its original time for imported history, else when its
    /// `Completed` was recorded. A subscription's completions fold in (at, seq) order.
    pub at: DateTime<Utc>,
    pub seq: i64,
    pub findings: Vec<Seen<'a>>,
}

impl Completion<'_> {
    fn order(&self) -> (DateTime<Utc>, i64) {
        (self.at, self.seq)
    }
}

/// The fold, in place: one subscription's rows (at least every open one, and any this
/// completion reports) + the next completion in time order → the rows after it. Returns
/// the fingerprints whose rows changed. Pure.
pub fn fold_into(rows: &mut HashMap<String, FindingHistory>, c: &Completion<'_>) -> Vec<String> {
    let mut changed: HashSet<String> = HashSet::with_capacity(c.findings.len());
    for f in &c.findings {
        match rows.get_mut(f.fingerprint) {
            None => {
                rows.insert(
                    f.fingerprint.to_string(),
                    FindingHistory {
                        subscription_id: c.subscription_id.to_string(),
                        fingerprint: f.fingerprint.to_string(),
                        rule_id: f.rule_id.to_string(),
                        rule_name: f.rule_name.to_string(),
                        severity: f.severity.to_string(),
                        category: f.category.to_string(),
                        resource_id: f.resource_id.to_string(),
                        resource_name: f.resource_name.to_string(),
                        resource_type: f.resource_type.to_string(),
                        state: FindingState::Open,
                        first_seen_scan: c.scan_id,
                        first_seen_at: c.at,
                        last_seen_scan: c.scan_id,
                        last_seen_at: c.at,
                        resolved_scan: None,
                        resolved_at: None,
                        reopened_count: 0,
                        last_seq: c.seq,
                        muted: None,
                    },
                );
            }
            Some(row) => {
                if row.state == FindingState::Resolved {
                    row.state = FindingState::Open;
                    row.reopened_count += 1;
                    row.resolved_scan = None;
                    row.resolved_at = None;
                }
                // The latest scan's view of the rule wins (a rule's severity may change).
                set(&mut row.rule_name, f.rule_name);
                set(&mut row.severity, f.severity);
                set(&mut row.category, f.category);
                set(&mut row.resource_name, f.resource_name);
                row.last_seen_scan = c.scan_id;
                row.last_seen_at = c.at;
                row.last_seq = c.seq;
            }
        }
        changed.insert(f.fingerprint.to_string());
    }
    for (fp, row) in rows.iter_mut() {
        if row.state == FindingState::Open && !changed.contains(fp) {
            row.state = FindingState::Resolved;
            row.resolved_scan = Some(c.scan_id);
            row.resolved_at = Some(c.at);
            row.last_seq = c.seq;
            changed.insert(fp.clone());
        }
    }
    changed.into_iter().collect()
}

fn set(field: &mut String, value: &str) {
    if field != value {
        *field = value.to_string();
    }
}

pub const TABLE: &str = "finding_history";

/// The list of completions a finding-history table has folded (`finding_history_scans`
/// for the live table, `<shadow>_scans` for a shadow).
pub fn log_table(table: &str) -> String {
    format!("{table}_scans")
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Completions whose findings are read per round trip when a subscription is refolded.
const REFOLD_PAGE: i64 = 500;
/// Rows written per statement.
const WRITE_CHUNK: usize = 5_000;

/// Apply completions to `table` (the live table, a shadow or a scratch copy). Each
/// subscription's completions apply one transaction at a time (an advisory lock). A
/// subscription whose completions are all newer than the newest it has folded takes the
/// fast path: read the rows they can touch, fold, write what changed. One that receives
/// an older completion (imported history, or two concurrent scans of one subscription
/// committing out of order) is refolded from its whole list in time order, so the result
/// never depends on arrival order: a rebuild and the inline fold agree.
pub(crate) async fn apply(
    tx: &mut PgConnection,
    table: &str,
    completions: &[Completion<'_>],
) -> Result<(), sqlx::Error> {
    if completions.is_empty() {
        return Ok(());
    }
    let log = log_table(table);
    let mut by_sub: BTreeMap<&str, Vec<&Completion<'_>>> = BTreeMap::new();
    for c in completions {
        by_sub.entry(c.subscription_id).or_default().push(c);
    }
    let subs: Vec<&str> = by_sub.keys().copied().collect();
    // One round trip. A rebuild swaps the live table under an EXCLUSIVE lock: every
    // completion waits for the swap here, even one that would change no row (the shadow
    // must not miss it). Then the subscriptions, in a fixed order so two batches cannot
    // deadlock. Subscription ids are UUIDs (checked on request); quoted all the same.
    let keys: Vec<String> = subs
        .iter()
        .map(|s| quote_literal(&format!("scanledger:history:{table}:{s}")))
        .collect();
    let lock = format!(
        "LOCK TABLE {table} IN ROW EXCLUSIVE MODE;
         SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(ARRAY[{}]::text[]) k ORDER BY k",
        keys.join(", ")
    );
    // Through `Executor` (a boxed future): `raw_sql(..).execute` is not `Send` enough for
    // the tasks that run appends.
    sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&lock)).await?;
    // One round trip: each subscription's newest folded completion (as of before this
    // batch: a data-modifying CTE's rows are invisible to the rest of its statement), and
    // this batch's completions added to the list.
    let added_subs: Vec<&str> = completions.iter().map(|c| c.subscription_id).collect();
    let added_at: Vec<DateTime<Utc>> = completions.iter().map(|c| c.at).collect();
    let added_seq: Vec<i64> = completions.iter().map(|c| c.seq).collect();
    let added_scan: Vec<uuid::Uuid> = completions.iter().map(|c| c.scan_id.0).collect();
    let heads: HashMap<String, (DateTime<Utc>, i64)> =
        sqlx::query_as::<_, (String, DateTime<Utc>, i64)>(&format!(
            // One index probe per subscription (the newest entry), not a scan of its whole
            // list: the list grows with every completion the subscription ever had.
            "WITH added AS (
                INSERT INTO {log} (subscription_id, at, seq, scan_id)
                SELECT * FROM unnest($2::text[], $3::timestamptz[], $4::int8[], $5::uuid[]))
             SELECT s.sub, h.at, h.seq FROM unnest($1::text[]) s(sub)
             CROSS JOIN LATERAL (
                SELECT at, seq FROM {log} WHERE subscription_id = s.sub
                 ORDER BY at DESC, seq DESC LIMIT 1) h"
        ))
        .bind(&subs)
        .bind(&added_subs)
        .bind(&added_at)
        .bind(&added_seq)
        .bind(&added_scan)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(s, at, seq)| (s, (at, seq)))
        .collect();

    let mut in_order: Vec<&Completion<'_>> = Vec::with_capacity(completions.len());
    let mut refold_subs: Vec<&str> = Vec::new();
    for (sub, mut cs) in by_sub {
        cs.sort_by_key(|c| c.order());
        match heads.get(sub) {
            Some(head) if cs[0].order() < *head => refold_subs.push(sub),
            _ => in_order.extend(cs),
        }
    }
    fold_newer(tx, table, &in_order).await?;
    for sub in refold_subs {
        tracing::debug!(
            subscription_id = sub,
            table,
            "older completion: refolding the subscription"
        );
        refold(tx, table, sub).await?;
    }
    Ok(())
}

/// The fast path: completions (grouped by subscription, each group in time order) that
/// are all newer than anything their subscription has folded.
async fn fold_newer(
    tx: &mut PgConnection,
    table: &str,
    completions: &[&Completion<'_>],
) -> Result<(), sqlx::Error> {
    if completions.is_empty() {
        return Ok(());
    }
    let mut subs: Vec<&str> = completions.iter().map(|c| c.subscription_id).collect();
    subs.dedup();
    let fps: Vec<&str> = completions
        .iter()
        .flat_map(|c| c.findings.iter().map(|f| f.fingerprint))
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
    let mut changed: HashSet<(String, String)> = HashSet::new();
    for c in completions {
        let rows = table_rows.entry(c.subscription_id.to_string()).or_default();
        for fp in fold_into(rows, c) {
            changed.insert((c.subscription_id.to_string(), fp));
        }
        // Resolved rows this fold did not touch are only needed if a later completion
        // reports them again, and then they are in `rows` already.
    }
    let rows: Vec<&FindingHistory> = changed
        .iter()
        .filter_map(|(s, fp)| table_rows.get(s).and_then(|rows| rows.get(fp)))
        .collect();
    write(tx, table, &rows).await
}

/// Refold one subscription from the completions its table has folded, in time order.
/// Every fingerprint the table holds for it came from one of them, so writing every
/// row the refold produces overwrites all of them: nothing needs deleting.
pub(crate) async fn refold(
    tx: &mut PgConnection,
    table: &str,
    subscription_id: &str,
) -> Result<(), sqlx::Error> {
    let log = log_table(table);
    let mut rows: HashMap<String, FindingHistory> = HashMap::new();
    let mut after: Option<(DateTime<Utc>, i64)> = None;
    loop {
        let page: Vec<(DateTime<Utc>, i64, uuid::Uuid)> = sqlx::query_as(&format!(
            "SELECT at, seq, scan_id FROM {log}
              WHERE subscription_id = $1 AND ($2::timestamptz IS NULL OR (at, seq) > ($2, $3))
              ORDER BY at, seq LIMIT $4"
        ))
        .bind(subscription_id)
        .bind(after.map(|a| a.0))
        .bind(after.map_or(0, |a| a.1))
        .bind(REFOLD_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(&(at, seq, _)) = page.last() else {
            break;
        };
        after = Some((at, seq));
        let ids: Vec<uuid::Uuid> = page.iter().map(|p| p.2).collect();
        let found = seen_of(tx, &ids).await?;
        let mut by_scan = group_by_scan(&found);
        for (at, seq, scan_id) in page {
            let c = Completion {
                subscription_id,
                scan_id: ScanId(scan_id),
                at,
                seq,
                findings: by_scan.remove(&scan_id).unwrap_or_default(),
            };
            fold_into(&mut rows, &c);
        }
    }
    let rows: Vec<&FindingHistory> = rows.values().collect();
    write(tx, table, &rows).await
}

/// The findings of `scans`, as the fold reads them.
async fn seen_of(
    conn: &mut PgConnection,
    scans: &[uuid::Uuid],
) -> Result<Vec<SeenRow>, sqlx::Error> {
    type Columns = (
        uuid::Uuid,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
    );
    let rows: Vec<Columns> = sqlx::query_as(
        "SELECT scan_id, fingerprint, rule_id, rule_name, severity, category, resource_id,
                resource_name, resource_type
           FROM findings WHERE scan_id = ANY($1) ORDER BY finding_id",
    )
    .bind(scans)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SeenRow {
            scan_id: r.0,
            fingerprint: r.1,
            rule_id: r.2,
            rule_name: r.3,
            severity: r.4,
            category: r.5,
            resource_id: r.6,
            resource_name: r.7,
            resource_type: r.8,
        })
        .collect())
}

/// Stored findings grouped by their scan, as the fold reads them.
fn group_by_scan(found: &[SeenRow]) -> HashMap<uuid::Uuid, Vec<Seen<'_>>> {
    let mut by_scan: HashMap<uuid::Uuid, Vec<Seen<'_>>> = HashMap::new();
    for r in found {
        by_scan.entry(r.scan_id).or_default().push(r.into());
    }
    by_scan
}

/// Load the findings of completions read from the ledger (rebuilds), then apply them.
pub(crate) async fn apply_stored(
    tx: &mut PgConnection,
    table: &str,
    completions: &[(&str, ScanId, DateTime<Utc>, i64)],
) -> Result<(), sqlx::Error> {
    let ids: Vec<uuid::Uuid> = completions.iter().map(|c| c.1 .0).collect();
    let found = seen_of(tx, &ids).await?;
    let mut by_scan = group_by_scan(&found);
    let completions: Vec<Completion<'_>> = completions
        .iter()
        .map(|&(subscription_id, scan_id, at, seq)| Completion {
            subscription_id,
            scan_id,
            at,
            seq,
            findings: by_scan.remove(&scan_id.0).unwrap_or_default(),
        })
        .collect();
    apply(tx, table, &completions).await
}

async fn write(
    tx: &mut PgConnection,
    table: &str,
    rows: &[&FindingHistory],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(WRITE_CHUNK) {
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
            rule: std::sync::Arc::new(crate::domain::FindingRule {
                id: format!("rule-{fp}").into(),
                name: "r".into(),
                severity: Severity::High,
                category: "c".into(),
                description: "d".into(),
                remediation: "m".into(),
                frameworks: serde_json::json!({}).into(),
            }),
            resource_id: format!("/res/{fp}").into(),
            resource_name: fp.into(),
            resource_type: "t".into(),
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
                findings: findings.iter().map(Seen::from).collect(),
            };
            fold_into(&mut table, &c);
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
