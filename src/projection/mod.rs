//! Read models folded from the ledger. Each projection is a pure fold plus the SQL of
//! its own table; it imports nothing of the ledger. The ledger calls in through one
//! narrow interface, [`apply_inline`], in the transaction that appends the events, and
//! drives rebuilds and verifies through [`table`]. Nothing outside this module writes
//! projection tables.

pub mod finding_history;
pub mod rollups;
pub mod scan_status;
pub mod table;

use std::collections::HashMap;

use sqlx::PgConnection;

use crate::domain::{Event, RecordedEvent, ScanId};
pub use scan_status::{fold, FoldError, ScanState, ScanStatus};
use table::{Projection, TableDef};

/// The projections this build folds into, at their versions. A projection's name is
/// also its main table's name.
pub const PROJECTIONS: &[Projection] = &[
    Projection {
        name: scan_status::TABLE,
        version: 3,
        ddl: include_str!("../../projections/scan_status/v3.sql"),
        tables: &[TableDef {
            name: scan_status::TABLE,
            key: &["scan_id"],
        }],
    },
    Projection {
        name: finding_history::TABLE,
        version: 2,
        ddl: include_str!("../../projections/finding_history/v2.sql"),
        tables: &[
            TableDef {
                name: finding_history::TABLE,
                key: &["subscription_id", "fingerprint"],
            },
            TableDef {
                name: "finding_history_scans",
                key: &["subscription_id", "at", "seq"],
            },
        ],
    },
];

/// Fold events just appended (in `seq` order) into every inline projection, in the
/// appending transaction. `rows` holds the current `scan_status` rows of the scans
/// appended to (locked by the caller); the folded rows are returned.
pub async fn apply_inline(
    tx: &mut PgConnection,
    recorded: &[RecordedEvent],
    mut rows: HashMap<ScanId, ScanStatus>,
) -> Result<HashMap<ScanId, ScanStatus>, sqlx::Error> {
    for e in recorded {
        let row = fold(rows.remove(&e.scan_id), e)
            .map_err(|err| sqlx::Error::Protocol(format!("scan_status fold: {err}")))?;
        rows.insert(e.scan_id, row);
    }
    let touched: Vec<&ScanStatus> = {
        let mut ids: Vec<ScanId> = recorded.iter().map(|e| e.scan_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.iter().filter_map(|id| rows.get(id)).collect()
    };
    scan_status::upsert_into(tx, scan_status::TABLE, &touched).await?;

    // This batch's completions, in order, in one pass.
    let completions: Vec<finding_history::Completion<'_>> = recorded
        .iter()
        .filter_map(|e| {
            let Event::Completed(c) = &e.event else {
                return None;
            };
            let row = rows.get(&e.scan_id)?;
            Some(finding_history::Completion {
                subscription_id: &row.subscription_id,
                scan_id: e.scan_id,
                at: c.origin.as_ref().map_or(e.recorded_at, |o| o.occurred_at),
                seq: e.seq,
                findings: c.findings.iter().map(finding_history::Seen::from).collect(),
            })
        })
        .collect();
    finding_history::apply(tx, finding_history::TABLE, &completions).await?;
    Ok(rows)
}
