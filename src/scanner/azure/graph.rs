//! Bulk listing through Azure Resource Graph, one page at a time, `$skipToken` paging.

use std::sync::Arc;

use futures_util::stream::{self, BoxStream, StreamExt};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::http::{Api, Call, Failure, ScanCalls};
use crate::scanner::Resource;
use crate::worker::ScanError;

pub const API_VERSION: &str = "2022-10-01";
const PATH: &str = "/providers/Microsoft.ResourceGraph/resources";

/// A KQL string literal only ever holds an ARM type; anything else is dropped, so
/// a rule's metadata can never change the query's shape.
fn is_arm_type(t: &str) -> bool {
    !t.is_empty()
        && t.contains('/')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/' || b == b'-' || b == b'_')
}

/// The query for these types; `order by id` keeps paging stable.
pub fn query(types: &[String]) -> String {
    let list = types
        .iter()
        .filter(|t| {
            let ok = is_arm_type(t);
            if !ok {
                tracing::warn!(resource_type = %t, "not an ARM type; left out of the Resource Graph query");
            }
            ok
        })
        .map(|t| format!("'{}'", t.to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join(",");
    format!("Resources | where type in~ ({list}) | order by id asc")
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<Resource>,
    #[serde(rename = "$skipToken")]
    skip_token: Option<String>,
}

enum State {
    Next(Option<String>),
    Done,
}

/// Every resource of `types` in the scan's subscription, streamed page by page.
pub fn resources(
    scan: Arc<ScanCalls>,
    types: Vec<String>,
    page_size: u32,
) -> BoxStream<'static, Result<Resource, ScanError>> {
    let query = query(&types);
    let url = scan.http.url(PATH, API_VERSION);
    stream::unfold(State::Next(None), move |state| {
        let (scan, query, url) = (scan.clone(), query.clone(), url.clone());
        async move {
            let State::Next(token) = state else {
                return None;
            };
            let mut options = json!({"$top": page_size, "resultFormat": "objectArray"});
            if let Some(t) = &token {
                options["$skipToken"] = json!(t);
            }
            let call = Call {
                method: Method::POST,
                url,
                body: Some(json!({
                    "subscriptions": [scan.subscription.as_str()],
                    "query": query,
                    "options": options,
                })),
                api: Api::ResourceGraph,
            };
            let what = format!("Resource Graph query for {}", scan.subscription);
            let page = match scan.json::<Page>(&call).await {
                Ok(p) => p,
                Err(f) => return Some((Err(f.into_scan_error(&what)), State::Done)),
            };
            let next = match page.skip_token.filter(|t| !t.is_empty()) {
                // The same token twice would loop for ever.
                Some(t) if Some(&t) == token.as_ref() => {
                    let f = Failure::Invalid("Resource Graph repeated its $skipToken".into());
                    return Some((Err(f.into_scan_error(&what)), State::Done));
                }
                Some(t) => State::Next(Some(t)),
                None => State::Done,
            };
            Some((Ok(page.data), next))
        }
    })
    .flat_map(|page| match page {
        Ok(items) => stream::iter(items.into_iter().map(Ok)).left_stream(),
        Err(e) => stream::once(async move { Err(e) }).right_stream(),
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_lists_types_and_orders_by_id() {
        let q = query(&[
            "Microsoft.Storage/storageAccounts".into(),
            "Microsoft.Network/networkSecurityGroups".into(),
            "x') | project secret | where ('a".into(),
        ]);
        assert_eq!(
            q,
            "Resources | where type in~ ('microsoft.storage/storageaccounts',\
             'microsoft.network/networksecuritygroups') | order by id asc"
        );
    }
}
