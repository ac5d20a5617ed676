//! The facts the scanner computes in Rust (`scanner::facts`) against the Rego they
//! replaced: the helper definitions the catalogue used before, kept here as the oracle,
//! evaluated by regorus' interpreter on generated documents, including the odd ones ARM
//! can send (nulls, wrong types, mixed case). A mismatch prints the document.

use regorus::{Engine, Value as RegoValue};
use scanledger::scanner::facts;
use serde_json::{json, Value};

/// The facts of `doc` computed on the Rego value its text parses into (how a fixture's
/// documents reach the rules) are those computed on its tree (the Azure source's).
fn same_on_both_routes(kind: &str, doc: &Value) {
    let text = serde_json::to_string(doc).unwrap();
    let rego = scanledger::scanner::engine::Keys::default()
        .parse(&text)
        .unwrap();
    assert_eq!(
        facts::facts_of(kind, &rego),
        facts::facts_of(kind, doc),
        "{doc}"
    );
}

/// regorus' interpreter with these files of the repository loaded (the catalogue's lib
/// files and the oracles under tests/fixtures/facts-oracle/).
fn oracle(files: &[&str]) -> Engine {
    let mut engine = Engine::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in files {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        engine.add_policy((*file).into(), text).unwrap();
    }
    engine
}

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
    let mut engine = oracle(&["tests/fixtures/facts-oracle/storage.rego"]);
    let seed = 0x5eed_0001;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut kinds = std::collections::BTreeSet::new();
    for n in 0..3000 {
        let doc = storage_account(&mut rng);
        same_on_both_routes("Microsoft.Storage/storageAccounts", &doc);
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

/// One NSG security rule: mostly internet Allows and Denies (what exposure and shadowing
/// are about) with every field varied, the rest anything.
fn nsg_rule(rng: &mut fastrand::Rng) -> Value {
    if rng.u8(..40) == 0 {
        return json!("not a rule");
    }
    let internet = [
        json!("*"),
        json!("Internet"),
        json!(" internet "),
        json!("0.0.0.0/0"),
        json!("Any"),
        json!("10.0.0.0/8"),
        json!("VirtualNetwork"),
        json!(""),
        json!(null),
    ];
    let ports = [
        json!("*"),
        json!(" * "),
        json!("22"),
        json!(" 22 "),
        json!("20-30"),
        json!("3389"),
        json!("1433-1434"),
        json!("0-65535"),
        json!("30-20"),
        json!("80 - 443"),
        json!("53"),
        json!("1000-2000"),
        json!("abc"),
        json!(""),
        json!(null),
        json!(53),
    ];
    let destinations = [
        json!("*"),
        json!("Any"),
        json!("0.0.0.0/0"),
        json!("10.0.0.4"),
        json!("10.0.0.5"),
        json!("VirtualNetwork"),
        json!(null),
    ];
    let asgs = [
        json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/web"}),
        json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/WEB"}),
        json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/db"}),
        json!({"id": 3}),
        json!(null),
    ];
    let source_ports = [
        json!("*"),
        json!(" * "),
        json!("1024-65535"),
        json!("80"),
        json!(null),
    ];
    let list = |rng: &mut fastrand::Rng, of: &[Value]| -> Option<Value> {
        match rng.u8(..4) {
            0 => None,
            1 => Some(json!(null)),
            _ => Some(Value::Array(
                (0..rng.usize(..=3)).filter_map(|_| pick(rng, of)).collect(),
            )),
        }
    };
    // Usually one of the first `likely` choices, sometimes anything (or nothing).
    let mostly = |rng: &mut fastrand::Rng, of: &[Value], likely: usize| -> Option<Value> {
        if rng.u8(..4) > 0 {
            Some(of[rng.usize(..likely)].clone())
        } else {
            pick(rng, of)
        }
    };
    let mut props = serde_json::Map::new();
    let role = rng.u8(..10);
    if role < 8 {
        props.insert("direction".into(), json!("Inbound"));
        let access = if role < 4 { "Allow" } else { "Deny" };
        props.insert("access".into(), json!(access));
    } else {
        let direction = [json!("inbound"), json!("Outbound"), json!(null)];
        put(&mut props, "direction", pick(rng, &direction));
        let access = [json!("allow"), json!("DENY"), json!(3)];
        put(&mut props, "access", pick(rng, &access));
    }
    let protocol = [
        json!("*"),
        json!("Tcp"),
        json!("TCP"),
        json!("Udp"),
        json!("udp"),
        json!("Icmp"),
        json!(null),
    ];
    put(&mut props, "protocol", pick(rng, &protocol));
    let priority = [
        json!(100),
        json!(200),
        json!(300),
        json!(150),
        json!("100"),
        json!(null),
    ];
    put(&mut props, "priority", mostly(rng, &priority, 4));
    put(&mut props, "sourceAddressPrefix", mostly(rng, &internet, 5));
    put(&mut props, "sourceAddressPrefixes", list(rng, &internet));
    put(&mut props, "sourcePortRange", mostly(rng, &source_ports, 1));
    if rng.u8(..4) == 0 {
        put(&mut props, "sourcePortRanges", list(rng, &source_ports));
    }
    put(
        &mut props,
        "destinationAddressPrefix",
        mostly(rng, &destinations, 4),
    );
    put(
        &mut props,
        "destinationAddressPrefixes",
        list(rng, &destinations),
    );
    if rng.u8(..3) == 0 {
        put(
            &mut props,
            "destinationApplicationSecurityGroups",
            list(rng, &asgs),
        );
    }
    put(&mut props, "destinationPortRange", pick(rng, &ports));
    put(&mut props, "destinationPortRanges", list(rng, &ports));
    let mut rule = serde_json::Map::new();
    let names = [json!("a"), json!("b"), json!("c"), json!("d"), json!("e")];
    put(&mut rule, "name", mostly(rng, &names, 5));
    let properties = match rng.u8(..30) {
        0 => json!(null),
        _ => Value::Object(props),
    };
    rule.insert("properties".into(), properties);
    Value::Object(rule)
}

/// Every generated NSG: the exposure helpers reading `facts.nsg` (the catalogue's
/// `lib.exposing_rules`, `lib.network.exposures`, `wide_rules`, `udp_rules`) return what
/// the helpers they replaced return, at every port the document mentions and its
/// neighbours.
#[test]
fn nsg_exposure_facts_agree_with_the_rego_helpers_they_replaced() {
    let mut engine = oracle(&[
        "rules/lib/azure.rego",
        "rules/lib/network.rego",
        "tests/fixtures/facts-oracle/nsg-lib.rego",
        "tests/fixtures/facts-oracle/nsg-network.rego",
        "tests/fixtures/facts-oracle/nsg-check.rego",
    ]);
    // Every bound the generator writes, and its neighbours.
    let ports: Vec<i64> = [
        0, 20, 22, 30, 53, 80, 443, 1000, 1433, 1434, 2000, 3389, 65535,
    ]
    .iter()
    .flat_map(|p| [p - 1, *p, p + 1])
    .filter(|p| *p >= 0)
    .collect();
    let seed = 0x5eed_0002;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut found = std::collections::BTreeMap::<String, u64>::new();
    for n in 0..200 {
        let rules: Vec<Value> = (0..rng.usize(..=6)).map(|_| nsg_rule(&mut rng)).collect();
        let mut doc = json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n",
            "name": "n",
            "type": "Microsoft.Network/networkSecurityGroups",
            "properties": {"securityRules": rules},
        });
        let raw = doc.clone();
        same_on_both_routes("Microsoft.Network/networkSecurityGroups", &raw);
        facts::attach("Microsoft.Network/networkSecurityGroups", &mut doc);
        engine.set_input(RegoValue::from(json!({"resources": [doc], "ports": ports})));
        let result = engine
            .eval_rule("data.oracle.check.result".into())
            .unwrap_or_else(|e| panic!("document {n}: {raw}: {e}"));
        let result = serde_json::to_value(&result).unwrap();
        for (helper, diffs) in result["differences"].as_object().unwrap() {
            assert!(
                diffs.as_array().unwrap().is_empty(),
                "document {n} (seed {seed:#x}): {helper} differs: {diffs}\n{raw}\nfacts: {}",
                doc["facts"]
            );
        }
        for (helper, count) in result["found"].as_object().unwrap() {
            *found.entry(helper.clone()).or_default() += count.as_u64().unwrap();
        }
    }
    // The generator reaches every case: exposures, wide rules, UDP, and shadowing Denies.
    for helper in ["exposures", "wide", "udp", "shadowed"] {
        assert!(
            found.get(helper).copied().unwrap_or(0) >= 50,
            "{helper}: only {found:?}"
        );
    }
}

fn machine(rng: &mut fastrand::Rng) -> (&'static str, Value) {
    let vmss = rng.bool();
    let os_types = [
        json!("Windows"),
        json!("linux"),
        json!("LINUX"),
        json!("Other"),
        json!(null),
        json!(3),
    ];
    let patch_modes = [
        json!("AutomaticByPlatform"),
        json!("Manual"),
        json!("ImageDefault"),
        json!("AutomaticByOS"),
        json!(""),
        json!(null),
    ];
    let flags = [json!(true), json!(false), json!("False"), json!(null)];
    let os_config = |rng: &mut fastrand::Rng| -> Option<Value> {
        match rng.u8(..5) {
            0 => None,
            1 => Some(json!(null)),
            2 => Some(json!("text")),
            _ => {
                let mut c = serde_json::Map::new();
                let mut patch = serde_json::Map::new();
                put(&mut patch, "patchMode", pick(rng, &patch_modes));
                put(
                    &mut c,
                    "patchSettings",
                    pick(rng, &[Value::Object(patch), json!(null)]),
                );
                put(&mut c, "enableAutomaticUpdates", pick(rng, &flags));
                put(&mut c, "disablePasswordAuthentication", pick(rng, &flags));
                Some(Value::Object(c))
            }
        }
    };
    let mut model = serde_json::Map::new();
    let mut os_profile = serde_json::Map::new();
    put(&mut os_profile, "windowsConfiguration", os_config(rng));
    put(&mut os_profile, "linuxConfiguration", os_config(rng));
    if rng.bool() {
        os_profile.insert("computerName".into(), json!("vm"));
    }
    put(
        &mut model,
        "osProfile",
        pick(rng, &[Value::Object(os_profile), json!({}), json!(null)]),
    );
    let os_type = pick(rng, &os_types);
    put(
        &mut model,
        "storageProfile",
        pick(
            rng,
            &[
                json!({"osDisk": {"osType": os_type}}),
                json!({"osDisk": null}),
            ],
        ),
    );
    let security_types = [
        json!("TrustedLaunch"),
        json!("confidentialVM"),
        json!("Standard"),
        json!(""),
        json!(null),
    ];
    let security_type = pick(rng, &security_types);
    put(
        &mut model,
        "securityProfile",
        pick(
            rng,
            &[
                json!({"securityType": security_type}),
                json!({"uefiSettings": {"secureBootEnabled": true}}),
                json!(null),
            ],
        ),
    );
    let model = Value::Object(model);
    let properties = if vmss {
        pick(
            rng,
            &[
                json!({"virtualMachineProfile": model}),
                json!({"virtualMachineProfile": null}),
            ],
        )
    } else {
        pick(rng, &[model])
    };
    let mut doc = serde_json::Map::new();
    doc.insert(
        "id".into(),
        json!("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/x/m"),
    );
    let kind = if vmss {
        "Microsoft.Compute/virtualMachineScaleSets"
    } else {
        "Microsoft.Compute/virtualMachines"
    };
    doc.insert("type".into(), json!(kind));
    put(&mut doc, "properties", properties);
    let tags = [
        json!({"aks-managed-poolName": "p"}),
        json!({"AKS-Managed-createOperationID": "x", "env": "dev"}),
        json!({"env": "dev", "aks-managed": "no"}),
        json!(null),
        json!([]),
    ];
    put(&mut doc, "tags", pick(rng, &tags));
    (kind, Value::Object(doc))
}

/// Every generated VM and scale set: `facts.compute` equals what the compute helpers it
/// replaced computed.
#[test]
fn compute_facts_agree_with_the_rego_helpers_they_replaced() {
    let mut engine = oracle(&[
        "rules/lib/azure.rego",
        "tests/fixtures/facts-oracle/compute.rego",
    ]);
    let seed = 0x5eed_0003;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..2000 {
        let (kind, mut doc) = machine(&mut rng);
        let raw = doc.clone();
        same_on_both_routes(kind, &raw);
        facts::attach(kind, &mut doc);
        engine.set_input(RegoValue::from(json!({ "resources": [raw] })));
        let want = engine
            .eval_rule("data.oracle.compute.facts".into())
            .unwrap_or_else(|e| panic!("the oracle fails on {raw}: {e}"));
        let mut got = doc["facts"]["compute"].clone();
        got.as_object_mut().unwrap().remove("vmss");
        assert_eq!(
            RegoValue::from(got.clone()),
            want,
            "document {n} (seed {seed:#x}): {raw}"
        );
        seen.insert(format!(
            "{}/{}",
            got["os_type"], got["effective_patch_mode"]
        ));
        if got["aks_managed"] == true {
            seen.insert("aks".into());
        }
        if got["trusted_or_confidential"] == true {
            seen.insert("trusted".into());
        }
    }
    for case in [
        "\"windows\"/\"manual\"",
        "\"windows\"/\"automaticbyos\"",
        "\"windows\"/\"automaticbyplatform\"",
        "\"linux\"/\"imagedefault\"",
        "\"\"/\"\"",
        "aks",
        "trusted",
    ] {
        assert!(seen.contains(case), "{case} never generated: {seen:?}");
    }
}

fn site(rng: &mut fastrand::Rng) -> Value {
    let fx = [
        json!("PHP|8.2"),
        json!("php|7.4 "),
        json!("PYTHON|3.12"),
        json!("python|3.8"),
        json!("JAVA|17-java17"),
        json!("TOMCAT|10.1-java11"),
        json!("JBOSSEAP|7-java8"),
        json!("java|8"),
        json!("JAVA|11"),
        json!("DOTNETCORE|8.0"),
        json!("NODE|20-lts"),
        json!("-java17"),
        json!("php"),
        json!(""),
        json!(null),
        json!(3),
    ];
    let windows = [
        json!("8.1"),
        json!(" 3.4 "),
        json!("1.8"),
        json!(""),
        json!(null),
        json!("Off"),
    ];
    let mut config = serde_json::Map::new();
    put(&mut config, "linuxFxVersion", pick(rng, &fx));
    put(&mut config, "phpVersion", pick(rng, &windows));
    put(&mut config, "pythonVersion", pick(rng, &windows));
    put(&mut config, "javaVersion", pick(rng, &windows));
    put(
        &mut config,
        "ftpsState",
        pick(rng, &[json!("AllAllowed"), json!("FtpsOnly")]),
    );
    let web = pick(
        rng,
        &[
            json!({"properties": Value::Object(config.clone())}),
            json!({"properties": Value::Object(config)}),
            json!({"properties": null}),
            json!({"name": "web"}),
            json!(null),
            json!([]),
        ],
    );
    let mut related = serde_json::Map::new();
    put(&mut related, "config/web", web);
    let mut doc = serde_json::Map::new();
    doc.insert(
        "id".into(),
        json!("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app"),
    );
    doc.insert("type".into(), json!("Microsoft.Web/sites"));
    doc.insert("properties".into(), json!({}));
    put(
        &mut doc,
        "related",
        pick(
            rng,
            &[Value::Object(related.clone()), Value::Object(related)],
        ),
    );
    Value::Object(doc)
}

/// Every generated site: whether its configuration was fetched, the configuration, and the
/// runtime versions read through `facts.site` equal what the helpers they replaced read.
#[test]
fn site_facts_agree_with_the_rego_helpers_they_replaced() {
    let mut engine = oracle(&[
        "rules/lib/azure.rego",
        "rules/lib/appservice.rego",
        "tests/fixtures/facts-oracle/appservice.rego",
    ]);
    let seed = 0x5eed_0004;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut runs = std::collections::BTreeMap::<String, u32>::new();
    for n in 0..1500 {
        let mut doc = site(&mut rng);
        let raw = doc.clone();
        same_on_both_routes("Microsoft.Web/sites", &raw);
        facts::attach("Microsoft.Web/sites", &mut doc);
        engine.set_input(RegoValue::from(json!({ "resources": [doc] })));
        let differences = engine
            .eval_rule("data.oracle.appservice.differences".into())
            .unwrap_or_else(|e| panic!("the oracle fails on {raw}: {e}"));
        assert_eq!(
            differences,
            RegoValue::new_set(),
            "document {n} (seed {seed:#x}): {raw}\nfacts: {}",
            doc["facts"]
        );
        let found = engine
            .eval_rule("data.oracle.appservice.runs".into())
            .unwrap();
        for stack in found.as_set().unwrap() {
            *runs
                .entry(stack.as_string().unwrap().to_string())
                .or_default() += 1;
        }
    }
    for stack in ["php", "python", "java"] {
        assert!(
            runs.get(stack).copied().unwrap_or(0) >= 50,
            "{stack}: {runs:?}"
        );
    }
}
