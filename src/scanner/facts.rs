//! Facts computed once per resource, in Rust, before policy: what several rules of a type
//! would otherwise each derive from the raw ARM document through chains of Rego helper
//! calls (the bytecode VM's call machinery is most of a scan's CPU). The rules read them
//! as `r.facts.<family>` beside the raw document; each family here is checked against
//! the Rego helpers it replaced (`tests/facts.rs`, on generated documents).
//!
//! A fact is a pure function of the one document: no other resource, no clock. A
//! document's own `facts` key (ARM sends none) is dropped, so rules only ever read facts
//! computed here.

use serde_json::{json, Map, Value};

/// The key the facts are stored under, in the document the rules see.
pub const KEY: &str = "facts";

/// Add the facts of `kind` (an ARM type, any case) to `resource`.
pub fn attach(kind: &str, resource: &mut Value) {
    let facts = facts_of(kind, resource);
    if let Some(doc) = resource.as_object_mut() {
        match facts {
            Some(facts) => doc.insert(KEY.to_owned(), facts),
            None => doc.remove(KEY),
        };
    }
}

/// The facts of one document, `None` for types without any.
pub fn facts_of(kind: &str, resource: &Value) -> Option<Value> {
    if kind.eq_ignore_ascii_case("Microsoft.Storage/storageAccounts") {
        let mut facts = Map::new();
        facts.insert("storage".to_owned(), storage::account(resource));
        return Some(Value::Object(facts));
    }
    None
}

/// `lower(x)` for a string, "" for anything else (the catalogue's `lc`).
fn lc(x: Option<&Value>) -> String {
    match x {
        Some(Value::String(s)) => s.to_lowercase(),
        _ => String::new(),
    }
}

/// `object.get(doc, path, null)`: the value at `path`, `None` when a step is missing or
/// not an object.
fn at<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, key| v.as_object()?.get(*key))
}

/// The catalogue's `lib.is_true`: `true`, or a string reading "true" in any case.
fn is_true(x: Option<&Value>) -> bool {
    match x {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.to_lowercase() == "true",
        _ => false,
    }
}

/// Storage accounts: the kind and SKU, and the services the account offers.
pub mod storage {
    use super::*;

    /// `facts.storage` of a storage account.
    ///
    /// - `kind`: lower-case `kind`; `storagev2` (ARM's default kind) when absent, empty or
    ///   not a string, so an odd document is checked rather than skipped.
    /// - `sku`: lower-case `sku.name`, "" when absent.
    /// - `premium`: a `Premium_*` SKU; `premium_page_blob`: a general-purpose (v1 or v2)
    ///   account on one (no queues, tables, lifecycle policies, versioning).
    /// - `blob`: the Blob service is offered (every kind but FileStorage);
    ///   `block_blob`: the account holds block blobs (general-purpose v2, BlobStorage,
    ///   BlockBlobStorage; not premium page-blob); `queue_table`: Queue and Table services
    ///   (standard general-purpose v1/v2); `files`: Azure Files (general-purpose v1/v2,
    ///   FileStorage).
    /// - `hns`: hierarchical namespace; `nfs_v3`: NFS 3.0 (both `lib.is_true`).
    pub fn account(r: &Value) -> Value {
        let kind = match lc(r.get("kind")) {
            k if k.is_empty() => "storagev2".to_owned(),
            k => k,
        };
        let sku = lc(at(r, &["sku", "name"]));
        let premium = sku.starts_with("premium_");
        let general = matches!(kind.as_str(), "storagev2" | "storage");
        let premium_page_blob = general && premium;
        let blob = matches!(
            kind.as_str(),
            "storagev2" | "storage" | "blobstorage" | "blockblobstorage"
        );
        let block_blob = matches!(
            kind.as_str(),
            "storagev2" | "blobstorage" | "blockblobstorage"
        ) && !premium_page_blob;
        json!({
            "kind": kind,
            "sku": sku,
            "premium": premium,
            "premium_page_blob": premium_page_blob,
            "blob": blob,
            "block_blob": block_blob,
            "queue_table": general && !premium,
            "files": matches!(kind.as_str(), "storagev2" | "storage" | "filestorage"),
            "hns": is_true(at(r, &["properties", "isHnsEnabled"])),
            "nfs_v3": is_true(at(r, &["properties", "isNfsV3Enabled"])),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_account_without_kind_is_general_purpose_v2() {
        let f = storage::account(&json!({"sku": {"name": "Standard_LRS"}}));
        assert_eq!(f["kind"], "storagev2");
        assert_eq!(
            (
                f["blob"].as_bool(),
                f["block_blob"].as_bool(),
                f["queue_table"].as_bool()
            ),
            (Some(true), Some(true), Some(true))
        );
    }

    #[test]
    fn a_premium_general_purpose_account_holds_page_blobs_only() {
        let f = storage::account(&json!({"kind": "StorageV2", "sku": {"name": "Premium_LRS"}}));
        assert_eq!(f["premium_page_blob"], true);
        assert_eq!(f["block_blob"], false);
        assert_eq!(f["queue_table"], false);
        assert_eq!(f["blob"], true);
    }

    #[test]
    fn file_storage_offers_files_and_no_blobs() {
        let f = storage::account(&json!({"kind": "FileStorage", "sku": {"name": "Premium_ZRS"}}));
        assert_eq!(
            (f["files"].as_bool(), f["blob"].as_bool()),
            (Some(true), Some(false))
        );
    }

    #[test]
    fn flags_read_booleans_and_their_string_forms() {
        let f = storage::account(
            &json!({"properties": {"isHnsEnabled": "TRUE", "isNfsV3Enabled": null}}),
        );
        assert_eq!(
            (f["hns"].as_bool(), f["nfs_v3"].as_bool()),
            (Some(true), Some(false))
        );
    }

    #[test]
    fn a_documents_own_facts_never_reach_the_rules() {
        let mut doc = json!({"kind": "Storage", "facts": "forged"});
        attach("microsoft.storage/storageaccounts", &mut doc);
        assert_eq!(doc["facts"]["storage"]["kind"], "storage");
        let mut vm = json!({"facts": "forged"});
        attach("Microsoft.Compute/virtualMachines", &mut vm);
        assert_eq!(vm.get("facts"), None);
    }
}
