//! The mutes a starting attempt applies: the governance fold, re-read only when the
//! governance ledger has grown (one index probe per attempt otherwise).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::domain::governance::{Governance, MuteList};
use crate::ledger::Ledger;

#[derive(Default)]
pub(super) struct MuteCache {
    /// (newest governance seq folded, the fold).
    state: Mutex<(i64, Arc<Governance>)>,
}

impl MuteCache {
    /// The mutes active now (database clock). If the database cannot be read, the last
    /// list read is used: a mute list a few seconds old is better than no scan.
    pub(super) async fn active(&self, ledger: &Ledger) -> Arc<MuteList> {
        let mut state = self.state.lock().await;
        let head: Result<(i64, DateTime<Utc>), sqlx::Error> =
            sqlx::query_as("SELECT coalesce(max(seq), 0), now() FROM governance_events")
                .fetch_one(ledger.pool())
                .await;
        let now = match head {
            Ok((seq, now)) => {
                if seq != state.0 {
                    match ledger.governance_events().await {
                        Ok(events) => *state = (seq, Arc::new(Governance::fold(&events))),
                        Err(e) => tracing::warn!(error = %e, "mutes: using the last list read"),
                    }
                }
                now
            }
            Err(e) => {
                tracing::warn!(error = %e, "mutes: using the last list read");
                Utc::now()
            }
        };
        let mutes: Vec<_> = state.1.mutes.values().cloned().collect();
        Arc::new(MuteList::active(&mutes, now))
    }
}
