//! The facts the scanner computes in Rust (`scanner::facts`) against the Rego they
//! replaced: the helper definitions the catalogue used before, kept here as the oracle,
//! evaluated by regorus' interpreter on generated documents, including the odd ones ARM
//! can send (nulls, wrong types, mixed case). A mismatch prints the document.

use regorus::{Engine, Value as RegoValue};
use scanledger::scanner::facts;
use serde_json::{json, Value};

/// The storage helpers of rules/lib/storage.rego and rules/lib/azure.rego before
/// `facts.storage` replaced them, verbatim but for the package.
const STORAGE_ORACLE: &str = r#"
package oracle.storage

import rego.v1

lc(x) := lower(x) if {
	is_string(x)
} else := ""

is_true(x) if x == true

is_true(x) if {
	is_string(x)
	lower(x) == "true"
}

prop(r, path, fallback) := object.get(r, array.concat(["properties"], path), fallback)

kind(r) := k if {
	k := lc(object.get(r, "kind", ""))
	k != ""
} else := "storagev2"

sku_name(r) := lc(object.get(r, ["sku", "name"], ""))

premium(r) if startswith(sku_name(r), "premium_")

premium_page_blob(r) if {
	kind(r) in {"storagev2", "storage"}
	premium(r)
}

hns(r) if is_true(prop(r, ["isHnsEnabled"], false))

nfs_v3(r) if is_true(prop(r, ["isNfsV3Enabled"], false))

offers_blob(r) := true if kind(r) in {"storagev2", "storage", "blobstorage", "blockblobstorage"}

offers_blob(r) := false if not kind(r) in {"storagev2", "storage", "blobstorage", "blockblobstorage"}

holds_block_blobs(r) := true if {
	kind(r) in {"storagev2", "blobstorage", "blockblobstorage"}
	not premium_page_blob(r)
}

holds_block_blobs(r) := false if not kind(r) in {"storagev2", "blobstorage", "blockblobstorage"}

holds_block_blobs(r) := false if premium_page_blob(r)

offers_queue_table(r) := true if {
	kind(r) in {"storagev2", "storage"}
	not premium(r)
}

offers_queue_table(r) := false if not kind(r) in {"storagev2", "storage"}

offers_queue_table(r) := false if premium(r)

offers_files(r) if kind(r) in {"storagev2", "storage", "filestorage"}

b_premium := true if premium(input) else := false

b_premium_page_blob := true if premium_page_blob(input) else := false

b_files := true if offers_files(input) else := false

b_hns := true if hns(input) else := false

b_nfs_v3 := true if nfs_v3(input) else := false

facts := {
	"kind": kind(input),
	"sku": sku_name(input),
	"premium": b_premium,
	"premium_page_blob": b_premium_page_blob,
	"blob": offers_blob(input),
	"block_blob": holds_block_blobs(input),
	"queue_table": offers_queue_table(input),
	"files": b_files,
	"hns": b_hns,
	"nfs_v3": b_nfs_v3,
}
"#;

/// One of `choices`, or the key left out (`None`).
fn pick(rng: &mut fastrand::Rng, choices: &[Value]) -> Option<Value> {
    let i = rng.usize(..=choices.len());
    choices.get(i).cloned()
}

fn put(doc: &mut serde_json::Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        doc.insert(key.to_owned(), v);
    }
}

fn flag_values() -> Vec<Value> {
    vec![
        json!(true),
        json!(false),
        json!("True"),
        json!("FALSE"),
        json!("yes"),
        json!(null),
        json!(1),
    ]
}

fn storage_account(rng: &mut fastrand::Rng) -> Value {
    let mut doc = serde_json::Map::new();
    put(
        &mut doc,
        "kind",
        pick(
            rng,
            &[
                json!("StorageV2"),
                json!("storagev2"),
                json!("Storage"),
                json!("STORAGE"),
                json!("BlobStorage"),
                json!("BlockBlobStorage"),
                json!("FileStorage"),
                json!("filestorage"),
                json!(""),
                json!(null),
                json!(2),
                json!("Other"),
            ],
        ),
    );
    let sku_name = pick(
        rng,
        &[
            json!("Premium_LRS"),
            json!("premium_zrs"),
            json!("PREMIUM_LRS"),
            json!("Standard_GRS"),
            json!("Standard_LRS"),
            json!("Premium"),
            json!(""),
            json!(null),
            json!(3),
        ],
    );
    let mut sku = serde_json::Map::new();
    put(&mut sku, "name", sku_name);
    put(
        &mut doc,
        "sku",
        pick(
            rng,
            &[
                Value::Object(sku.clone()),
                Value::Object(sku),
                json!(null),
                json!("Standard_LRS"),
            ],
        ),
    );
    let mut props = serde_json::Map::new();
    put(&mut props, "isHnsEnabled", pick(rng, &flag_values()));
    put(&mut props, "isNfsV3Enabled", pick(rng, &flag_values()));
    put(
        &mut doc,
        "properties",
        pick(
            rng,
            &[
                Value::Object(props.clone()),
                Value::Object(props),
                json!(null),
                json!([]),
            ],
        ),
    );
    Value::Object(doc)
}

/// Every generated storage account: the Rust facts equal what the old helpers computed.
#[test]
fn storage_account_facts_agree_with_the_rego_helpers_they_replaced() {
    let mut engine = Engine::new();
    engine
        .add_policy("oracle/storage.rego".into(), STORAGE_ORACLE.into())
        .unwrap();
    let seed = 0x5eed_0001;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut kinds = std::collections::BTreeSet::new();
    for n in 0..3000 {
        let doc = storage_account(&mut rng);
        engine.set_input(RegoValue::from(doc.clone()));
        let want = engine
            .eval_rule("data.oracle.storage.facts".into())
            .unwrap_or_else(|e| panic!("the oracle fails on {doc}: {e}"));
        let got = facts::facts_of("Microsoft.Storage/storageAccounts", &doc).unwrap();
        assert_eq!(
            RegoValue::from(got["storage"].clone()),
            want,
            "document {n} (seed {seed:#x}): {doc}"
        );
        kinds.insert(got["storage"]["kind"].as_str().unwrap().to_owned());
    }
    // The generator reaches every kind the rules distinguish.
    for k in [
        "storagev2",
        "storage",
        "blobstorage",
        "blockblobstorage",
        "filestorage",
        "other",
    ] {
        assert!(kinds.contains(k), "{k} never generated");
    }
}
