//! The subscription view: what subscription-scope rules read instead of single
//! documents. While a scan streams resources, every resource of a type some
//! subscription rule reads is projected to the paths those rules declared (`reads`)
//! and kept in an index by type; when listing ends, the index, the types the source
//! listed completely, and the subscription id become one input, evaluated once per
//! subscription rule. See docs/rule-authoring.md ("Subscription rules").
//!
//! ```json
//! {"subscription": {"id": "/subscriptions/<id>", "subscription_id": "<id>"},
//!  "inventory": {"listed": ["microsoft.network/networkwatchers", ...],
//!                "types": {"microsoft.network/networkwatchers": [
//!                   {"id": ..., "name": ..., "type": ..., "location": ..., "properties": {...}}]}}}
//! ```
//!
//! A type is *listed* when the source enumerated all of its resources in the
//! subscription; one it could not (a refused or failed list call) is reported to the
//! [`Coverage`] and left out of `listed`, and every subscription rule that reads it is
//! *indeterminate* — an existence check can never pass on a list that was not read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::Resource;

/// One step of a `reads` path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// An object member.
    Key(String),
    /// Every element of an array (`[]`).
    Each,
}

/// Parse `properties.securityRules[].properties.access`.
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    if path.trim().is_empty() {
        return Err("an empty property path".into());
    }
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        let valid_key = !key.is_empty()
            && key.bytes().all(|b| {
                b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'$' || b == b'@'
            });
        if !valid_key {
            return Err(format!("{path:?}: {part:?} is not a property name"));
        }
        steps.push(Step::Key(key.to_owned()));
        while !rest.is_empty() {
            let Some(after) = rest.strip_prefix("[]") else {
                return Err(format!("{path:?}: only `[]` may follow a name"));
            };
            steps.push(Step::Each);
            rest = after;
        }
    }
    Ok(steps)
}

/// The members every projected resource keeps.
pub const ENVELOPE: [&str; 4] = ["id", "name", "type", "location"];

fn empty_like(v: &Value) -> Value {
    match v {
        Value::Object(_) => Value::Object(Map::new()),
        Value::Array(_) => Value::Array(Vec::new()),
        other => other.clone(),
    }
}

/// Copy what `path` reaches in `src` into `dst`, creating the members leading to it.
fn copy(src: &Value, path: &[Step], dst: &mut Value) {
    match path.split_first() {
        None => *dst = src.clone(),
        Some((Step::Key(k), rest)) => {
            let Some(v) = src.as_object().and_then(|o| o.get(k)) else {
                return;
            };
            if !dst.is_object() {
                *dst = Value::Object(Map::new());
            }
            let slot = dst
                .as_object_mut()
                .expect("made an object above")
                .entry(k.clone())
                .or_insert(Value::Null);
            if rest.is_empty() {
                *slot = v.clone();
                return;
            }
            if slot.is_null() {
                *slot = empty_like(v);
            }
            copy(v, rest, slot);
        }
        Some((Step::Each, rest)) => {
            let Some(items) = src.as_array() else {
                return;
            };
            let fits = dst.as_array().is_some_and(|a| a.len() == items.len());
            if !fits {
                *dst = Value::Array(items.iter().map(empty_like).collect());
            }
            let out = dst.as_array_mut().expect("made an array above");
            for (item, slot) in items.iter().zip(out.iter_mut()) {
                if rest.is_empty() {
                    *slot = item.clone();
                } else {
                    copy(item, rest, slot);
                }
            }
        }
    }
}

/// A resource as the inventory index keeps it: the envelope and the declared paths.
pub fn project(resource: &Resource, paths: &[Vec<Step>]) -> Value {
    let mut out = Map::new();
    if let Some(obj) = resource.as_object() {
        for k in ENVELOPE {
            if let Some(v) = obj.get(k) {
                out.insert(k.to_owned(), v.clone());
            }
        }
    }
    let mut out = Value::Object(out);
    for path in paths {
        copy(resource, path, &mut out);
    }
    out
}

/// Which types a source could not list completely, with why (for the logs and the
/// indeterminate reason). Shared between the source's stream and the scan.
#[derive(Debug, Default)]
pub struct Coverage {
    failed: Mutex<BTreeMap<String, String>>,
}

impl Coverage {
    /// `kind` could not be listed completely; the first reason is kept.
    pub fn unlisted(&self, kind: &str, reason: impl Into<String>) {
        self.failed
            .lock()
            .expect("coverage")
            .entry(kind.to_ascii_lowercase())
            .or_insert_with(|| reason.into());
    }

    /// Lower-cased types that could not be listed, and why.
    pub fn failed(&self) -> BTreeMap<String, String> {
        self.failed.lock().expect("coverage").clone()
    }

    /// Of `requested` (any case), the lower-cased types listed completely. Only
    /// meaningful once the source's stream has ended without an error.
    pub fn listed(&self, requested: &BTreeSet<String>) -> BTreeSet<String> {
        let failed = self.failed.lock().expect("coverage");
        requested
            .iter()
            .map(|t| t.to_ascii_lowercase())
            .filter(|t| !failed.contains_key(t))
            .collect()
    }
}

/// The inventory index of one scan, filled while resources stream.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    /// Lower-cased type → parsed `reads` paths.
    reads: BTreeMap<String, Vec<Vec<Step>>>,
    types: BTreeMap<String, Vec<Value>>,
}

impl IndexBuilder {
    /// For the subscription rules' types and paths (`Catalogue::inventory_reads`).
    pub fn new(reads: &BTreeMap<String, BTreeSet<String>>) -> Self {
        Self {
            reads: reads
                .iter()
                .map(|(t, paths)| {
                    let parsed = paths.iter().filter_map(|p| parse_path(p).ok()).collect();
                    (t.to_ascii_lowercase(), parsed)
                })
                .collect(),
            types: BTreeMap::new(),
        }
    }

    /// Does any subscription rule read resources of this (lower-cased) type?
    pub fn wants(&self, kind: &str) -> bool {
        self.reads.contains_key(kind)
    }

    /// Keep a resource of a wanted (lower-cased) type.
    pub fn add(&mut self, kind: &str, resource: &Resource) {
        if let Some(paths) = self.reads.get(kind) {
            let doc = project(resource, paths);
            self.types.entry(kind.to_owned()).or_default().push(doc);
        }
    }

    /// The rules' input, once listing has ended: `listed` are the lower-cased types
    /// listed completely (a listed type with no resource is an empty array; a type not
    /// listed is absent from `types`).
    pub fn finish(mut self, subscription_id: &str, listed: &BTreeSet<String>) -> View {
        let mut types = Map::new();
        for kind in self.reads.keys() {
            if listed.contains(kind) {
                let docs = self.types.remove(kind).unwrap_or_default();
                types.insert(kind.clone(), Value::Array(docs));
            }
        }
        let listed_in_view: BTreeSet<String> = self
            .reads
            .keys()
            .filter(|k| listed.contains(*k))
            .cloned()
            .collect();
        view(subscription_id, listed_in_view, types)
    }
}

/// What subscription rules are evaluated on.
#[derive(Clone, Debug)]
pub struct View {
    /// `/subscriptions/<id>`.
    pub subscription: String,
    /// Lower-cased types listed completely.
    pub listed: BTreeSet<String>,
    /// The rules' `input` (converted to Rego values on the evaluation thread).
    pub input: serde_json::Value,
    /// Lower-cased id → (name, type) of every resource in the view: what a finding
    /// about one of them is named by.
    pub resources: std::collections::HashMap<String, (String, String)>,
}

fn view(subscription_id: &str, listed: BTreeSet<String>, types: Map<String, Value>) -> View {
    let subscription = format!("/subscriptions/{subscription_id}");
    let mut resources = std::collections::HashMap::new();
    for docs in types.values() {
        for doc in docs.as_array().into_iter().flatten() {
            let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
            if let (Some(id), Some(kind)) = (text("id"), text("type")) {
                let name = text("name")
                    .unwrap_or_else(|| id.rsplit('/').next().unwrap_or_default().to_owned());
                resources.insert(id.to_ascii_lowercase(), (name, kind));
            }
        }
    }
    // Built here, consuming the projections: the index is never held twice.
    let input = serde_json::json!({
        "subscription": {"id": subscription, "subscription_id": subscription_id},
        "inventory": {"listed": listed, "types": types},
    });
    View {
        subscription,
        listed,
        input,
        resources,
    }
}

/// A subscription rule's fixture case: the inventory a source would have produced.
///
/// ```json
/// {"subscription_id": "…", "listed": ["Microsoft.Network/networkWatchers"],
///  "resources": [ARM documents]}
/// ```
/// `listed` defaults to every type of the rule; `resources` are whole ARM documents,
/// projected through the rule's `reads` as a scan would.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureInventory {
    pub subscription_id: String,
    #[serde(default)]
    pub listed: Option<Vec<String>>,
    #[serde(default)]
    pub resources: Vec<Value>,
}

impl FixtureInventory {
    /// The view this fixture stands for, for a rule reading `reads` (lower-cased type
    /// → paths) whose types are `types`.
    pub fn view(
        &self,
        reads: &BTreeMap<String, BTreeSet<String>>,
        types: &[String],
    ) -> Result<View, String> {
        let mut index = IndexBuilder::new(reads);
        for r in &self.resources {
            let kind = r
                .get("type")
                .and_then(Value::as_str)
                .ok_or("a resource without a string `type`")?
                .to_ascii_lowercase();
            if !index.wants(&kind) {
                return Err(format!("type {kind} is not one the rule reads"));
            }
            let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
            let prefix = format!("/subscriptions/{}/", self.subscription_id);
            if !id
                .to_ascii_lowercase()
                .starts_with(&prefix.to_ascii_lowercase())
            {
                return Err(format!(
                    "{id:?} is not in subscription {}",
                    self.subscription_id
                ));
            }
            index.add(&kind, r);
        }
        let listed: BTreeSet<String> = match &self.listed {
            Some(l) => l.iter().map(|t| t.to_ascii_lowercase()).collect(),
            None => types.iter().map(|t| t.to_ascii_lowercase()).collect(),
        };
        Ok(index.finish(&self.subscription_id, &listed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(p: &[&str]) -> Vec<Vec<Step>> {
        p.iter().map(|p| parse_path(p).unwrap()).collect()
    }

    #[test]
    fn parses_paths_and_refuses_malformed_ones() {
        assert_eq!(
            parse_path("properties.rules[].name").unwrap(),
            vec![
                Step::Key("properties".into()),
                Step::Key("rules".into()),
                Step::Each,
                Step::Key("name".into())
            ]
        );
        for bad in ["", "a..b", "a[0]", "[]", "a.b c", "a[]x"] {
            assert!(parse_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn projection_keeps_the_envelope_and_the_declared_paths_only() {
        let doc = json!({
            "id": "/subscriptions/s/x", "name": "x", "type": "T/t", "location": "westeurope",
            "tags": {"a": "b"},
            "properties": {
                "enabled": true,
                "secret": "nope",
                "condition": {"allOf": [
                    {"field": "category", "equals": "Administrative", "other": 1},
                    {"field": "operationName", "equals": "X/write"}
                ]},
                "scopes": ["/subscriptions/s"]
            }
        });
        let got = project(
            &doc,
            &paths(&[
                "properties.enabled",
                "properties.condition.allOf[].field",
                "properties.condition.allOf[].equals",
                "properties.missing.deeper",
            ]),
        );
        assert_eq!(
            got,
            json!({
                "id": "/subscriptions/s/x", "name": "x", "type": "T/t", "location": "westeurope",
                "properties": {
                    "enabled": true,
                    "condition": {"allOf": [
                        {"field": "category", "equals": "Administrative"},
                        {"field": "operationName", "equals": "X/write"}
                    ]}
                }
            })
        );
        // A whole subtree and a path inside it agree.
        let got = project(
            &doc,
            &paths(&["properties.condition", "properties.condition.allOf[].field"]),
        );
        assert_eq!(
            got["properties"]["condition"],
            doc["properties"]["condition"]
        );
    }

    #[test]
    fn unlisted_types_are_left_out_of_the_view() {
        let reads = BTreeMap::from([
            ("a/b".to_owned(), BTreeSet::new()),
            ("c/d".to_owned(), BTreeSet::new()),
        ]);
        let mut index = IndexBuilder::new(&reads);
        index.add(
            "a/b",
            &json!({"id": "/subscriptions/s/1", "type": "A/b", "extra": 1}),
        );
        let coverage = Coverage::default();
        coverage.unlisted("C/D", "HTTP 403");
        let requested = BTreeSet::from(["A/b".to_owned(), "C/d".to_owned()]);
        let listed = coverage.listed(&requested);
        let v = index.finish("s", &listed);
        assert_eq!(v.subscription, "/subscriptions/s");
        let input = &v.input;
        assert_eq!(input["inventory"]["listed"], json!(["a/b"]));
        assert_eq!(
            input["inventory"]["types"],
            json!({"a/b": [{"id": "/subscriptions/s/1", "type": "A/b"}]})
        );
        assert_eq!(coverage.failed()["c/d"], "HTTP 403");
    }
}
