//! ARM calls Resource Graph cannot answer: subscription-scope lists (`nextLink`
//! paging) and the related documents rules declare (child and extension resources).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;
use futures_util::stream::{self, BoxStream, StreamExt};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::Value;

use super::http::{Api, Call, Failure, ScanCalls};
use crate::scanner::Resource;
use crate::worker::ScanError;

/// Subscription-scope types that are not in the Resource Graph `Resources` table:
/// (type, path under the subscription, api-version).
/// The api-versions match the schema extract (tests/fixtures/arm-schema/).
pub const SUBSCRIPTION_LISTS: [(&str, &str, &str); 8] = [
    (
        "Microsoft.Security/pricings",
        "providers/Microsoft.Security/pricings",
        "2024-01-01",
    ),
    (
        "Microsoft.Security/securityContacts",
        "providers/Microsoft.Security/securityContacts",
        "2020-01-01-preview",
    ),
    (
        "Microsoft.Security/settings",
        "providers/Microsoft.Security/settings",
        "2022-05-01",
    ),
    (
        "Microsoft.Security/autoProvisioningSettings",
        "providers/Microsoft.Security/autoProvisioningSettings",
        "2017-08-01-preview",
    ),
    (
        "Microsoft.Insights/diagnosticSettings",
        "providers/Microsoft.Insights/diagnosticSettings",
        "2021-05-01-preview",
    ),
    (
        "Microsoft.Authorization/roleDefinitions",
        "providers/Microsoft.Authorization/roleDefinitions",
        "2022-04-01",
    ),
    (
        "Microsoft.Authorization/roleAssignments",
        "providers/Microsoft.Authorization/roleAssignments",
        "2022-04-01",
    ),
    (
        "Microsoft.Authorization/policyAssignments",
        "providers/Microsoft.Authorization/policyAssignments",
        "2022-06-01",
    ),
];

/// Child types listed under each resource of their parent type through ARM,
/// `GET {parent id}/{last segment}?api-version=...` (all pages): (type, api-version).
/// The parent type is the type without its last segment; it is listed too (through
/// Resource Graph, or this table), and emitted only if a rule reads it.
pub const CHILD_LISTS: [(&str, &str); 8] = [
    ("Microsoft.Network/networkWatchers/flowLogs", "2024-03-01"),
    ("Microsoft.KeyVault/vaults/keys", "2023-07-01"),
    ("Microsoft.KeyVault/vaults/secrets", "2023-07-01"),
    (
        "Microsoft.Sql/servers/databases/transparentDataEncryption",
        "2021-11-01",
    ),
    ("Microsoft.Sql/servers/encryptionProtector", "2021-11-01"),
    (
        "Microsoft.Storage/storageAccounts/fileServices",
        "2023-05-01",
    ),
    (
        "Microsoft.Storage/storageAccounts/blobServices",
        "2023-05-01",
    ),
    ("Microsoft.Web/sites/slots", "2023-12-01"),
];

/// The child-list entry of a type: (parent type, path segment, api-version).
pub fn child_list(resource_type: &str) -> Option<(String, &'static str, &'static str)> {
    CHILD_LISTS
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(resource_type))
        .and_then(|(t, version)| {
            let (parent, segment) = t.rsplit_once('/')?;
            Some((parent.to_owned(), segment, *version))
        })
}

/// Every page of a child list under `parent_id`: the items of `value` (a document
/// without `value` is one item; 404 is none).
pub async fn list_children(
    scan: &ScanCalls,
    parent_id: &str,
    segment: &str,
    version: &str,
) -> Result<Vec<Value>, Failure> {
    match related_one(scan, parent_id, segment, version).await? {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => Ok(items),
        one => Ok(vec![one]),
    }
}

/// The list entry for a type, if it is listed through ARM rather than Resource Graph.
pub fn subscription_list(resource_type: &str) -> Option<(&'static str, &'static str)> {
    SUBSCRIPTION_LISTS
        .iter()
        .find(|(t, _, _)| t.eq_ignore_ascii_case(resource_type))
        .map(|(_, path, version)| (*path, *version))
}

#[derive(Deserialize)]
struct ListPage {
    #[serde(default)]
    value: Vec<Value>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

enum State {
    Next(Url),
    Done,
}

/// Stream an ARM list, one page at a time, following `nextLink` verbatim.
pub fn list(scan: Arc<ScanCalls>, first: Url) -> BoxStream<'static, Result<Resource, ScanError>> {
    stream::unfold(State::Next(first), move |state| {
        let scan = scan.clone();
        async move {
            let State::Next(url) = state else {
                return None;
            };
            let what = format!("ARM list {}", url.path());
            match page(&scan, &url).await {
                Ok((items, next)) => Some((Ok(items), next.map_or(State::Done, State::Next))),
                Err(f) => Some((Err(f.into_scan_error(&what)), State::Done)),
            }
        }
    })
    .flat_map(|page| match page {
        Ok(items) => stream::iter(items.into_iter().map(Ok)).left_stream(),
        Err(e) => stream::once(async move { Err(e) }).right_stream(),
    })
    .boxed()
}

/// One list page and the validated next link.
async fn page(scan: &ScanCalls, url: &Url) -> Result<(Vec<Value>, Option<Url>), Failure> {
    let call = Call {
        method: Method::GET,
        url: url.clone(),
        body: None,
        api: Api::Arm,
    };
    let page: ListPage = scan.json(&call).await?;
    let next = match page.next_link.filter(|l| !l.is_empty()) {
        Some(link) => {
            let next = scan.http.next_link(&link)?;
            // The same link again would loop for ever.
            if &next == url {
                return Err(Failure::Invalid("nextLink points to the same page".into()));
            }
            Some(next)
        }
        None => None,
    };
    Ok((page.value, next))
}

/// A related document: the object, all pages of a list's `value`, or null on 404.
async fn related_one(
    scan: &ScanCalls,
    id: &str,
    path: &str,
    version: &str,
) -> Result<Value, Failure> {
    let url = scan
        .http
        .url(&format!("{}/{}", id.trim_end_matches('/'), path), version);
    let call = Call {
        method: Method::GET,
        url: url.clone(),
        body: None,
        api: Api::Arm,
    };
    let first: Value = match scan.json(&call).await {
        Ok(v) => v,
        Err(Failure::Refused(a)) if a.status == 404 => return Ok(Value::Null),
        Err(f) => return Err(f),
    };
    let is_list = first.get("value").is_some_and(Value::is_array);
    if !is_list {
        return Ok(first);
    }
    let mut first = first;
    let mut items = match first["value"].take() {
        Value::Array(items) => items,
        _ => unreachable!("checked above"),
    };
    let mut next = match first.get("nextLink").and_then(Value::as_str) {
        Some(link) if !link.is_empty() => Some(scan.http.next_link(link)?),
        _ => None,
    };
    let mut current = url;
    while let Some(url) = next {
        if url == current {
            return Err(Failure::Invalid("nextLink points to the same page".into()));
        }
        let (more, following) = page(scan, &url).await?;
        items.extend(more);
        current = url;
        next = following;
    }
    Ok(Value::Array(items))
}

/// Attach `related[path]` for each path the rules declared for this resource's type.
/// A fetch that fails (after retries, or with 401/403) leaves its key absent so the
/// rule reports indeterminate; only failures that end the scan are returned.
pub async fn attach_related(
    scan: Arc<ScanCalls>,
    mut resource: Resource,
    paths: Option<Arc<BTreeMap<String, String>>>,
) -> Result<Resource, ScanError> {
    let Some(paths) = paths.filter(|p| !p.is_empty()) else {
        return Ok(resource);
    };
    let Some(id) = resource
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        // The scan reports a resource without an id; nothing to fetch for it.
        return Ok(resource);
    };
    let fetched = join_all(paths.iter().map(|(path, version)| {
        let scan = &scan;
        let id = &id;
        async move { (path, related_one(scan, id, path, version).await) }
    }))
    .await;
    let mut related = serde_json::Map::new();
    for (path, result) in fetched {
        match result {
            Ok(doc) => {
                related.insert(path.clone(), doc);
            }
            Err(f) if f.is_fatal() => {
                return Err(f.into_scan_error(&format!("related {path} of {id}")));
            }
            Err(f) => {
                tracing::warn!(
                    subscription = %scan.subscription,
                    resource_id = %id,
                    related = %path,
                    status = f.status(),
                    error = %f.into_scan_error("related document").detail,
                    "related document not fetched; rules needing it report indeterminate"
                );
            }
        }
    }
    if let Some(obj) = resource.as_object_mut() {
        match obj.get_mut("related").and_then(Value::as_object_mut) {
            Some(existing) => existing.extend(related),
            None => {
                obj.insert("related".into(), Value::Object(related));
            }
        }
    }
    Ok(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_lists_match_case_insensitively() {
        assert_eq!(
            subscription_list("microsoft.security/PRICINGS"),
            Some(("providers/Microsoft.Security/pricings", "2024-01-01"))
        );
        assert!(subscription_list("Microsoft.Storage/storageAccounts").is_none());
    }
}
