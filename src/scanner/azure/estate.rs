//! The subscriptions of an estate: every subscription of the tenant the credential can
//! read, or those under a management group (its descendants, at any depth).

use std::sync::Arc;

use futures_util::TryStreamExt;

use super::http::ScanCalls;
use super::{arm, AzureSource};
use crate::domain::SubscriptionId;
use crate::worker::ScanError;

/// What an estate covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EstateScope {
    Tenant,
    ManagementGroup(String),
}

impl std::fmt::Display for EstateScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tenant => f.write_str("tenant"),
            Self::ManagementGroup(id) => write!(f, "managementGroups/{id}"),
        }
    }
}

/// Subscription list: `GET /subscriptions` (Subscriptions - List, 2022-12-01).
const SUBSCRIPTIONS_API: &str = "2022-12-01";
/// Management Groups - Get Descendants (2020-05-01).
const DESCENDANTS_API: &str = "2020-05-01";
const SUBSCRIPTION_TYPE: &str = "Microsoft.Management/managementGroups/subscriptions";

/// A management group id as ARM names them: 1-90 letters, digits, `-`, `_`, `(`, `)`,
/// `.`, not ending in a period.
pub fn valid_management_group(id: &str) -> bool {
    (1..=90).contains(&id.len())
        && !id.ends_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_().".contains(&b))
}

impl AzureSource {
    /// The subscriptions in `scope` that can be scanned (state Enabled, Warned or
    /// PastDue: a Disabled or Deleted subscription has nothing to read), sorted, once each.
    pub async fn subscriptions(
        &self,
        scope: &EstateScope,
    ) -> Result<Vec<SubscriptionId>, ScanError> {
        // The retry budget and log field of one listing: no subscription is scanned yet.
        let nil = SubscriptionId::parse("00000000-0000-0000-0000-000000000000").expect("a UUID");
        let calls = Arc::new(ScanCalls::new(self.http.clone(), nil));
        let url = match scope {
            EstateScope::Tenant => self.http.url("/subscriptions", SUBSCRIPTIONS_API),
            EstateScope::ManagementGroup(id) => self.http.url(
                &format!("/providers/Microsoft.Management/managementGroups/{id}/descendants"),
                DESCENDANTS_API,
            ),
        };
        let items: Vec<serde_json::Value> = arm::list(calls, url).try_collect().await?;
        let mut subs: Vec<SubscriptionId> = items
            .iter()
            .filter_map(|item| match scope {
                EstateScope::Tenant => {
                    let state = item["state"].as_str().unwrap_or("Enabled");
                    matches!(state, "Enabled" | "Warned" | "PastDue")
                        .then(|| item["subscriptionId"].as_str())
                        .flatten()
                }
                EstateScope::ManagementGroup(_) => item["type"]
                    .as_str()
                    .filter(|t| t.eq_ignore_ascii_case(SUBSCRIPTION_TYPE))
                    .and(item["name"].as_str()),
            })
            .filter_map(|id| SubscriptionId::parse(id).ok())
            .collect();
        subs.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        subs.dedup();
        Ok(subs)
    }
}
