//! The rule catalogue and the engine: every rule against its fixtures, the catalogue's
//! shape, errors and indeterminate results, and the output formats.

use std::path::PathBuf;
use std::sync::Arc;

use scanledger::domain::SubscriptionId;
use scanledger::scanner::fixture::FixtureSource;
use scanledger::scanner::report::{self, Format};
use scanledger::scanner::rules::{Catalogue, CatalogueError};
use scanledger::scanner::{ruletest, scan};
use scanledger::worker::ProgressReporter;
use serde_json::{json, Value};

const SUB: &str = "00000000-0000-0000-0000-000000000001";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn catalogue() -> Arc<Catalogue> {
    Arc::new(Catalogue::load(&repo().join("rules")).expect("the rule catalogue loads"))
}

#[test]
fn every_rule_fires_on_its_bad_fixtures_and_stays_quiet_on_its_good_ones() {
    let checks = ruletest::run(catalogue());
    let failures: Vec<String> = checks
        .iter()
        .filter(|c| !c.problems.is_empty())
        .map(|c| {
            format!(
                "{} ({}): {}",
                c.rule_id,
                c.file.display(),
                c.problems.join("; ")
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "rules failing their fixtures:\n{}",
        failures.join("\n")
    );
    let cases: usize = checks.iter().map(|c| c.cases).sum();
    assert!(
        cases >= 2 * checks.len(),
        "each rule has at least a fire and a quiet case"
    );
}

#[test]
fn catalogue_covers_the_required_areas_with_at_least_210_rules() {
    let c = catalogue();
    assert!(c.rules().len() >= 210, "{} rules", c.rules().len());
    for category in [
        "storage",
        "network",
        "compute",
        "database",
        "keyvault",
        "aks",
        "acr",
        "appservice",
        "monitoring",
        "defender",
        "identity",
    ] {
        assert!(
            c.rules().iter().any(|r| r.meta.category == category),
            "no {category} rule"
        );
    }
    for r in c.rules() {
        assert!(
            r.meta.frameworks.values().any(|ids| !ids.is_empty()),
            "{} maps to no framework",
            r.meta.id
        );
    }
}

/// docs/rule-authoring.md, "Severity": one reasoning for every "reachable from all
/// networks" rule (medium: each request is still authenticated), and low for settings
/// whose weak value Azure retired platform-wide (TLS 1.0/1.1). Before issue #15, Cosmos DB's
/// "all networks" rule was high while the others were medium, and the storage and SQL TLS
/// rules were medium although Azure no longer accepts TLS 1.0/1.1 there.
#[test]
fn exposure_and_retired_tls_rules_follow_the_documented_severity_reasoning() {
    let c = catalogue();
    let severity = |id: &str| {
        c.rules()
            .iter()
            .find(|r| r.meta.id == id)
            .unwrap_or_else(|| panic!("{id} is in the catalogue"))
            .meta
            .severity
            .as_str()
    };
    for id in [
        "AZ-STG-005",
        "AZ-KV-004",
        "AZ-COS-001",
        "AZ-ACR-002",
        "AZ-SQL-005",
        "AZ-PG-002",
        "AZ-MY-004",
        "AZ-SRCH-001",
    ] {
        assert_eq!(severity(id), "medium", "{id}: reachable from all networks");
    }
    for id in ["AZ-STG-003", "AZ-SQL-006", "AZ-COS-004", "AZ-NET-023"] {
        assert_eq!(severity(id), "low", "{id}: TLS 1.0/1.1 retired by Azure");
    }
}

#[test]
fn docs_rules_md_is_generated_from_the_catalogue() {
    let expected = report::catalogue_markdown(&catalogue());
    let actual = std::fs::read_to_string(repo().join("docs/rules.md")).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/rules.md is stale: run `cargo run -- rules list --format markdown > docs/rules.md`"
    );
}

/// A catalogue of `lib/` plus the given rule files, in a fresh folder.
fn scratch_catalogue(name: &str, rules: &[(&str, String)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scanledger-rules-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    for entry in std::fs::read_dir(repo().join("rules/lib")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join("lib").join(p.file_name().unwrap())).unwrap();
    }
    for (path, text) in rules {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn rule(package: &str, id: &str, body: &str, extra_meta: &str) -> String {
    format!(
        r#"package scanledger.rules.{package}

import data.scanledger.lib
import rego.v1

metadata := {{
	"id": "{id}",
	"title": "Test rule {id}",
	"severity": "high",
	"category": "{category}",
	"resource_types": ["Microsoft.Test/widgets"],
	"frameworks": {{"nist_csf": ["PR.AC-5"]}},
	"description": "A rule for tests.",
	"remediation": {{"portal": "Fix it.", "cli": "az widget update --fixed"}},
	{extra_meta}
}}

{body}
"#,
        category = package.split('.').next().unwrap()
    )
}

fn widget(name: &str, properties: Value) -> Value {
    json!({
        "id": format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Test/widgets/{name}"),
        "name": name,
        "type": "Microsoft.Test/widgets",
        "properties": properties,
    })
}

async fn scan_docs(catalogue: Arc<Catalogue>, docs: &[Value]) -> scanledger::worker::ScanReport {
    let file = std::env::temp_dir().join(format!(
        "scanledger-widgets-{}-{}.json",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::write(&file, serde_json::to_vec(docs).unwrap()).unwrap();
    let source = FixtureSource::new(file.clone(), std::time::Duration::ZERO);
    let (progress, _rx) = ProgressReporter::new();
    let report = scan(
        &source,
        catalogue,
        &SubscriptionId::parse(SUB).unwrap(),
        &progress,
        2,
    )
    .await
    .expect("the scan completes");
    let _ = std::fs::remove_file(file);
    report
}

#[tokio::test]
async fn an_erroring_rule_is_reported_as_errored_and_the_scan_completes() {
    let dir = scratch_catalogue(
        "errors",
        &[
            (
                "storage/bad.rego",
                // to_number on a non-numeric string is an error in regorus.
                rule(
                    "storage.bad",
                    "AZ-STG-901",
                    "deny contains lib.finding(r, \"\", {}) if {\n\tsome r in input.resources\n\tto_number(r.properties.size) > 10\n}",
                    "",
                ),
            ),
            (
                "storage/good.rego",
                rule(
                    "storage.good",
                    "AZ-STG-902",
                    "deny contains lib.finding(r, \"\", {}) if {\n\tsome r in input.resources\n\tr.properties.open == true\n}",
                    "",
                ),
            ),
        ],
    );
    let catalogue = Arc::new(Catalogue::load(&dir).unwrap());
    let docs = [
        widget("a", json!({"size": "12", "open": true})),
        widget("b", json!({"size": "large", "open": false})),
        widget("c", json!({"size": "20", "open": false})),
    ];
    let report = scan_docs(catalogue, &docs).await;
    let bad = report.summary.rules["AZ-STG-901"];
    assert_eq!(bad.evaluated, 3);
    assert_eq!(bad.errored, 1, "only the resource it cannot handle errors");
    assert_eq!(bad.failed, 2, "the others are still evaluated: {bad:?}");
    let good = report.summary.rules["AZ-STG-902"];
    assert_eq!((good.evaluated, good.failed, good.errored), (3, 1, 0));
    assert_eq!(report.summary.findings, 3);
    assert_eq!(report.findings.len(), 3);
}

#[tokio::test]
async fn every_finding_error_and_undecided_names_its_own_resource_across_chunks_and_pieces() {
    // 300 resources of one type: more than a chunk, evaluated a piece of the chunk at a
    // time; a wrong offset anywhere would name a neighbour.
    let dir = scratch_catalogue(
        "pieces",
        &[
            (
                "storage/open.rego",
                rule(
                    "storage.open",
                    "AZ-STG-908",
                    "deny contains lib.finding(r, \"\", {\"n\": r.properties.n}) if {\n\tsome r in input.resources\n\tr.properties.open == true\n}\n\nindeterminate contains lib.undecided(r, \"no open flag\") if {\n\tsome r in input.resources\n\tnot \"open\" in object.keys(r.properties)\n}",
                    "",
                ),
            ),
            (
                "storage/size.rego",
                rule(
                    "storage.size",
                    "AZ-STG-909",
                    "deny contains lib.finding(r, \"\", {}) if {\n\tsome r in input.resources\n\tto_number(r.properties.size) > 10\n}",
                    "",
                ),
            ),
        ],
    );
    let catalogue = Arc::new(Catalogue::load(&dir).unwrap());
    let mut rng = fastrand::Rng::with_seed(21);
    let (mut open, mut big, mut bad, mut unknown) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
        0,
        0,
    );
    let docs: Vec<Value> = (0..300)
        .map(|n| {
            let name = format!("w{n:03}");
            let mut properties = json!({"n": n});
            match rng.u8(..4) {
                0 => unknown += 1,
                1 => {
                    properties["open"] = json!(true);
                    open.insert(name.clone());
                }
                _ => properties["open"] = json!(false),
            }
            match rng.u8(..5) {
                0 => {
                    properties["size"] = json!("large");
                    bad += 1;
                }
                k => {
                    let size = u32::from(k) * 5;
                    properties["size"] = json!(size.to_string());
                    if size > 10 {
                        big.insert(name.clone());
                    }
                }
            }
            widget(&name, properties)
        })
        .collect();
    let report = scan_docs(catalogue, &docs).await;
    let named = |rule: &str| -> std::collections::BTreeSet<String> {
        report
            .findings
            .iter()
            .filter(|f| &*f.rule.id == rule)
            .map(|f| {
                let name = f.resource_id.rsplit('/').next().unwrap().to_owned();
                // The details were read from the very resource the finding names.
                if rule == "AZ-STG-908" {
                    assert_eq!(
                        f.details.value()["n"],
                        json!(name[1..].parse::<u64>().unwrap()),
                        "{name}"
                    );
                }
                name
            })
            .collect()
    };
    assert_eq!(named("AZ-STG-908"), open);
    assert_eq!(named("AZ-STG-909"), big);
    let t = report.summary.rules["AZ-STG-908"];
    assert_eq!(
        (t.evaluated, t.failed, t.indeterminate, t.errored),
        (300, open.len() as u64, unknown, 0)
    );
    let t = report.summary.rules["AZ-STG-909"];
    assert_eq!(
        (t.evaluated, t.failed, t.errored),
        (300, big.len() as u64, bad)
    );
}

#[tokio::test]
async fn an_entry_naming_its_resource_by_a_rebuilt_id_finds_it_and_an_unknown_id_is_an_error() {
    // Entries usually carry `r.id` itself, which the scan finds by the string's address;
    // one built anew (here upper-cased, as ARM ids compare without case) must still name
    // its resource, and one naming no resource of the chunk is the rule's error.
    let dir = scratch_catalogue(
        "rebuilt-ids",
        &[
            (
                "storage/upper.rego",
                rule(
                    "storage.upper",
                    "AZ-STG-906",
                    "deny contains {\"id\": upper(r.id), \"sub_item\": \"\", \"details\": {}} if {\n\tsome r in input.resources\n\tr.properties.open == true\n}",
                    "",
                ),
            ),
            (
                "storage/stranger.rego",
                rule(
                    "storage.stranger",
                    "AZ-STG-907",
                    "deny contains {\"id\": concat(\"\", [r.id, \"-other\"]), \"sub_item\": \"\", \"details\": {}} if {\n\tsome r in input.resources\n\tr.properties.open == true\n}",
                    "",
                ),
            ),
        ],
    );
    let catalogue = Arc::new(Catalogue::load(&dir).unwrap());
    let docs = [
        widget("a", json!({"open": false})),
        widget("b", json!({"open": true})),
        widget("c", json!({"open": false})),
    ];
    let report = scan_docs(catalogue, &docs).await;
    let upper = report.summary.rules["AZ-STG-906"];
    assert_eq!((upper.evaluated, upper.failed, upper.errored), (3, 1, 0));
    let found: Vec<_> = report
        .findings
        .iter()
        .filter(|f| &*f.rule.id == "AZ-STG-906")
        .map(|f| &*f.resource_id)
        .collect();
    assert_eq!(found.len(), 1);
    assert!(found[0].ends_with("/widgets/b"), "{found:?}");
    let stranger = report.summary.rules["AZ-STG-907"];
    assert_eq!(
        (stranger.evaluated, stranger.failed, stranger.errored),
        (3, 0, 1),
        "only the resource whose entry names no resource errors"
    );
}

#[tokio::test]
async fn missing_related_documents_make_a_resource_indeterminate_not_passing() {
    let dir = scratch_catalogue(
        "indeterminate",
        &[(
            "storage/audit.rego",
            rule(
                "storage.audit",
                "AZ-STG-903",
                "deny contains lib.finding(r, \"\", {}) if {\n\tsome r in input.resources\n\tlib.has_related(r, \"auditing/default\")\n\tnot lib.related(r, \"auditing/default\").properties.enabled\n}\n\nindeterminate contains lib.undecided(r, \"auditing settings were not fetched\") if {\n\tsome r in input.resources\n\tlib.related_missing(r, \"auditing/default\")\n}",
                "\"related\": {\"auditing/default\": \"2021-11-01\"},",
            ),
        )],
    );
    let catalogue = Arc::new(Catalogue::load(&dir).unwrap());
    assert_eq!(
        catalogue.related()["microsoft.test/widgets"]["auditing/default"],
        "2021-11-01"
    );
    let mut on = widget("on", json!({}));
    on["related"] = json!({"auditing/default": {"properties": {"enabled": true}}});
    let mut off = widget("off", json!({}));
    off["related"] = json!({"auditing/default": {"properties": {"enabled": false}}});
    let unknown = widget("unknown", json!({}));
    let report = scan_docs(catalogue, &[on, off, unknown]).await;
    let t = report.summary.rules["AZ-STG-903"];
    assert_eq!(
        (t.evaluated, t.failed, t.indeterminate, t.errored),
        (3, 1, 1, 0)
    );
    assert_eq!(report.findings.len(), 1);
    assert!(report.findings[0].resource_id.ends_with("/off"));
}

#[test]
fn the_catalogue_refuses_duplicate_ids_and_incomplete_metadata() {
    let ok = "deny contains lib.finding(r, \"\", {}) if {\n\tsome r in input.resources\n\tr.properties.x\n}";
    let dir = scratch_catalogue(
        "duplicates",
        &[
            (
                "storage/one.rego",
                rule("storage.one", "AZ-STG-904", ok, ""),
            ),
            (
                "storage/two.rego",
                rule("storage.two", "AZ-STG-904", ok, ""),
            ),
        ],
    );
    let err = Catalogue::load(&dir).unwrap_err();
    assert!(
        matches!(&err, CatalogueError::Rule { message, .. } if message.contains("duplicate rule id AZ-STG-904")),
        "{err}"
    );

    let no_frameworks = rule("storage.one", "AZ-STG-905", ok, "")
        .replace("{\"nist_csf\": [\"PR.AC-5\"]}", "{\"nist_csf\": []}");
    let dir = scratch_catalogue("frameworks", &[("storage/one.rego", no_frameworks)]);
    let err = Catalogue::load(&dir).unwrap_err().to_string();
    assert!(err.contains("maps to no framework control"), "{err}");

    let wrong_category = rule("network.one", "AZ-NET-906", ok, "")
        .replace("\"category\": \"network\"", "\"category\": \"storage\"");
    let dir = scratch_catalogue("category", &[("network/one.rego", wrong_category)]);
    let err = Catalogue::load(&dir).unwrap_err().to_string();
    assert!(err.contains("differs from the package"), "{err}");

    let no_deny = rule("storage.one", "AZ-STG-907", "x := 1", "");
    let dir = scratch_catalogue("nodeny", &[("storage/one.rego", no_deny)]);
    let err = Catalogue::load(&dir).unwrap_err().to_string();
    assert!(err.contains("defines no `deny` rule"), "{err}");
}

#[tokio::test]
async fn selecting_rules_by_id_or_category_and_refusing_unknown_names() {
    let c = Catalogue::clone(&catalogue());
    let net = c.clone().select(&["network".into()]).unwrap();
    assert!(!net.rules().is_empty());
    assert!(net.rules().iter().all(|r| r.meta.category == "network"));
    let one = c.clone().select(&["az-net-001".into()]).unwrap();
    assert_eq!(one.rules().len(), 1);
    assert!(matches!(
        c.select(&["AZ-NOPE-000".into()]),
        Err(CatalogueError::UnknownFilter(_))
    ));
}

fn report_with(
    engine: scanledger::scanner::rules::RuleEngine,
    tenant: &str,
    subscription: &str,
) -> (Arc<Catalogue>, scanledger::worker::ScanReport) {
    let mut c = Catalogue::clone(&catalogue());
    c.evaluation = engine;
    let catalogue = Arc::new(c);
    let source = FixtureSource::new(repo().join(tenant), std::time::Duration::ZERO);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (progress, _rx) = ProgressReporter::new();
    let report = rt
        .block_on(scan(
            &source,
            catalogue.clone(),
            &SubscriptionId::parse(subscription).unwrap(),
            &progress,
            2,
        ))
        .expect("the tenant scans");
    (catalogue, report)
}

fn demo_report_with(
    engine: scanledger::scanner::rules::RuleEngine,
) -> (Arc<Catalogue>, scanledger::worker::ScanReport) {
    report_with(engine, "demo/tenant", scanledger::cli::DEMO_SUBSCRIPTION)
}

fn header_of(report: &scanledger::worker::ScanReport) -> report::Header {
    report::Header {
        subscription: scanledger::cli::DEMO_SUBSCRIPTION.into(),
        completed_at: chrono::Utc::now(),
        summary: report.summary.clone(),
        mutes: Default::default(),
    }
}

fn demo_report() -> (Arc<Catalogue>, scanledger::worker::ScanReport) {
    demo_report_with(scanledger::scanner::rules::RuleEngine::Interpreter)
}

#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let (_, report) = demo_report();
    assert!(!report.findings.is_empty());
    let sarif: Value = serde_json::from_str(&report::render(
        Format::Sarif,
        header_of(&report),
        &report.findings,
    ))
    .unwrap();
    let schema: Value = serde_json::from_slice(
        &std::fs::read(repo().join("tests/fixtures/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "SARIF schema violations: {errors:#?}");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), report.findings.len());
    for (r, f) in results.iter().zip(&report.findings) {
        assert_eq!(r["ruleId"], &*f.rule.id);
        assert_eq!(
            r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            &*f.resource_id
        );
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            sarif["runs"][0]["tool"]["driver"]["rules"][index]["id"],
            &*f.rule.id
        );
    }
}

#[test]
fn csv_and_json_outputs_hold_every_finding() {
    let (_, report) = demo_report();
    let csv = report::render(Format::Csv, header_of(&report), &report.findings);
    assert_eq!(csv.lines().count(), report.findings.len() + 1);
    assert!(csv.starts_with("severity,rule_id,"));
    let json: Value = serde_json::from_str(&report::render(
        Format::Json,
        header_of(&report),
        &report.findings,
    ))
    .unwrap();
    assert_eq!(
        json["findings"].as_array().unwrap().len(),
        report.findings.len()
    );
    assert_eq!(json["summary"]["findings"], report.findings.len() as u64);
    let table = report::render(Format::Table, header_of(&report), &report.findings);
    assert!(table.contains(&format!("{} findings", report.findings.len())));
}

#[test]
fn the_demo_tenant_summary_is_consistent_with_its_findings() {
    let (_, report) = demo_report();
    let s = &report.summary;
    assert_eq!(s.findings as usize, report.findings.len());
    let by_severity: u64 = s.findings_by_severity.values().sum();
    assert_eq!(by_severity, s.findings);
    let seen_by_type: u64 = s.resources_by_type.values().sum();
    assert_eq!(seen_by_type, s.resources_seen);
    for (id, t) in &s.rules {
        let n = report
            .findings
            .iter()
            .filter(|f| *f.rule.id == **id)
            .count() as u64;
        assert!(t.failed <= n, "{id}: {t:?} vs {n} findings");
        assert!(
            t.failed + t.indeterminate + t.errored <= t.evaluated,
            "{id}: {t:?}"
        );
        assert_eq!(t.errored, 0, "{id} errors on the demo tenant");
    }
    let fingerprints: std::collections::HashSet<_> =
        report.findings.iter().map(|f| &f.fingerprint).collect();
    assert_eq!(
        fingerprints.len(),
        report.findings.len(),
        "fingerprints are unique"
    );
    let score = s.score.unwrap();
    assert!((0.0..100.0).contains(&score), "{score}");
}

/// The default engine against the reference (regorus' interpreter): the same findings,
/// details and tallies, resource by resource.
fn assert_same_as_reference(tenant: &str, subscription: &str) {
    use scanledger::scanner::rules::RuleEngine;
    assert_ne!(RuleEngine::default(), RuleEngine::Interpreter);
    let (_, reference) = report_with(RuleEngine::Interpreter, tenant, subscription);
    let (_, default) = report_with(RuleEngine::default(), tenant, subscription);
    assert!(!reference.findings.is_empty());
    assert_eq!(default.findings.len(), reference.findings.len());
    for (d, r) in default.findings.iter().zip(&reference.findings) {
        assert_eq!(d, r);
    }
    assert_eq!(default.summary, reference.summary);
}

#[test]
fn the_default_engine_finds_exactly_what_the_reference_interpreter_finds_on_the_demo_tenant() {
    assert_same_as_reference("demo/tenant", scanledger::cli::DEMO_SUBSCRIPTION);
}

/// If the catalogue cannot be compiled to bytecode, scans fall back to the interpreter and
/// `rules test` checks the interpreter alone, silently. regorus' compiler gave each entry
/// point a register of a 255-register window and capped a program at 256 source files, so
/// past ~250 rules it stopped compiling (vendor/regorus/PATCH.diff lifts both). The
/// program as scans compile it (one query module and entry point per type added) must
/// also serialize and load back: each evaluation thread loads its own.
#[test]
fn the_catalogue_compiles_to_bytecode() {
    use scanledger::scanner::engine::Evaluator;
    assert!(
        Evaluator::bytecode(catalogue()).is_some(),
        "the rule catalogue no longer compiles to bytecode: see the warning logged when it is compiled"
    );
}

/// `scripts/synth-tenant.py 2000`: every type and mix of the 100k benchmark tenant.
#[test]
fn the_default_engine_finds_exactly_what_the_reference_interpreter_finds_on_a_synthetic_tenant() {
    assert_same_as_reference(
        "tests/fixtures/synth-tenant-2000.jsonl",
        "5b9c0a39-2f4e-4d7a-8c1b-3e6f9a2d7c41",
    );
}

/// An error inside a helper called under `not` is the case an error-absorbing engine
/// gets wrong: the helper is undefined, `not` makes the body true, and the resource
/// would read as a finding or a pass depending on the rule's polarity. Every engine
/// must report the resource as errored instead.
#[tokio::test]
async fn an_error_inside_a_helper_under_not_is_errored_in_every_engine() {
    use scanledger::scanner::rules::RuleEngine;
    let dir = scratch_catalogue(
        "helper-errors",
        &[(
            "storage/helper.rego",
            rule(
                "storage.helper",
                "AZ-STG-908",
                "small(r) if to_number(r.properties.size) < 10\n\ndeny contains lib.finding(r, \"\", {}) if {\n\tsome r in input.resources\n\tnot small(r)\n}",
                "",
            ),
        )],
    );
    let docs = [
        widget("a", json!({"size": "12"})),
        widget("b", json!({"size": "large"})),
        widget("c", json!({"size": "2"})),
    ];
    for engine in [
        RuleEngine::default(),
        RuleEngine::Bytecode,
        RuleEngine::Interpreter,
    ] {
        let mut c = Catalogue::load(&dir).unwrap();
        c.evaluation = engine;
        let report = scan_docs(Arc::new(c), &docs).await;
        let t = report.summary.rules["AZ-STG-908"];
        assert_eq!(
            (t.evaluated, t.failed, t.errored),
            (3, 1, 1),
            "{engine:?}: {t:?}"
        );
        assert_eq!(report.findings.len(), 1, "{engine:?}");
        assert!(report.findings[0].resource_id.ends_with("/a"), "{engine:?}");
    }
}

/// Two documents with one id in one chunk (a fixture can hold that; ARM never lists it):
/// per-chunk tables keyed by id, such as `lib.compute.models`, must not mix them
/// up. The scanner splits such chunks, so both engines agree.
#[tokio::test]
async fn duplicate_ids_in_a_chunk_give_the_reference_findings() {
    use scanledger::scanner::rules::RuleEngine;
    let nsg = |open: bool| {
        let rules = if open {
            json!([{"name": "ssh", "properties": {"direction": "Inbound", "access": "Allow", "protocol": "Tcp",
                "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*",
                "destinationPortRange": "22", "priority": 100}}])
        } else {
            json!([])
        };
        json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/dup"),
            "name": "dup",
            "type": "Microsoft.Network/networkSecurityGroups",
            "properties": {"securityRules": rules},
        })
    };
    let docs = [nsg(false), nsg(true), nsg(false)];
    let mut reports = Vec::new();
    for engine in [RuleEngine::Interpreter, RuleEngine::default()] {
        let mut c = Catalogue::clone(&catalogue());
        c.evaluation = engine;
        reports.push(scan_docs(Arc::new(c), &docs).await);
    }
    assert!(reports[0]
        .findings
        .iter()
        .any(|f| &*f.rule.id == "AZ-NET-001"));
    assert_eq!(reports[1].findings, reports[0].findings);
    assert_eq!(reports[1].summary, reports[0].summary);
}

/// A source over a fixture file that reports some types as not listed completely.
struct PartlyListed {
    inner: FixtureSource,
    unlisted: Vec<&'static str>,
}

impl scanledger::scanner::InventorySource for PartlyListed {
    fn list(
        &self,
        subscription: &SubscriptionId,
        needs: &scanledger::scanner::Needs,
    ) -> scanledger::scanner::Inventory {
        let inventory = self.inner.list(subscription, needs);
        for t in &self.unlisted {
            inventory.coverage.unlisted(t, "HTTP 403");
        }
        inventory
    }
}

/// Subscription rules: evaluated once on the projected inventory, with findings about
/// the subscription, a region or an indexed resource; identical in both engines;
/// indeterminate (never a pass) when the source could not list a type they read; an
/// entry naming something outside the view is an error, not a finding.
#[tokio::test]
async fn subscription_rules_see_the_inventory_and_are_indeterminate_when_a_type_was_not_listed() {
    use scanledger::scanner::rules::RuleEngine;
    let sub_rule = |package: &str, id: &str, body: &str| {
        rule(package, id, body, "\"scope\": \"subscription\",\n\t\"reads\": {\"Microsoft.Test/widgets\": [\"properties.open\"]},")
    };
    let dir = scratch_catalogue(
        "subscription",
        &[
            (
                "storage/none_open.rego",
                sub_rule(
                    "storage.none_open",
                    "AZ-STG-910",
                    // Fires on the subscription when no widget is open; per region of a
                    // closed widget; on each closed widget itself. Reads only `open`.
                    "widgets := data.scanledger.lib.inventory.resources(\"Microsoft.Test/widgets\")\n\nany_open if {\n\tsome w in widgets\n\tw.properties.open == true\n}\n\ndeny contains data.scanledger.lib.inventory.finding(\"\", {\"widgets\": count(widgets), \"secret_seen\": secret_seen}) if not any_open\n\ndeny contains data.scanledger.lib.inventory.region_finding(data.scanledger.lib.inventory.region(w.location), {}) if {\n\tsome w in widgets\n\tw.properties.open == false\n}\n\ndeny contains lib.finding(w, \"closed\", {}) if {\n\tsome w in widgets\n\tw.properties.open == false\n}\n\nsecret_seen := count([w | some w in widgets; object.get(w.properties, \"secret\", null) != null])",
                ),
            ),
            (
                "storage/outside.rego",
                sub_rule(
                    "storage.outside",
                    "AZ-STG-911",
                    "deny contains {\"id\": \"/subscriptions/00000000-0000-0000-0000-000000000002\", \"sub_item\": \"\", \"details\": {}} if true",
                ),
            ),
        ],
    );
    let mut closed = widget("closed", json!({"open": false, "secret": "s"}));
    closed["location"] = json!("West Europe");
    let other = json!({
        "id": "/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/rg/providers/Microsoft.Test/widgets/elsewhere",
        "name": "elsewhere", "type": "Microsoft.Test/widgets", "location": "eastus",
        "properties": {"open": true},
    });
    let file = std::env::temp_dir().join(format!(
        "scanledger-subscription-{}.json",
        std::process::id()
    ));
    std::fs::write(&file, serde_json::to_vec(&json!([closed, other])).unwrap()).unwrap();
    let mut reports = Vec::new();
    for (engine, unlisted) in [
        (RuleEngine::Interpreter, vec![]),
        (RuleEngine::Bytecode, vec![]),
        (RuleEngine::Bytecode, vec!["microsoft.test/WIDGETS"]),
    ] {
        let mut c = Catalogue::load(&dir).unwrap();
        c.evaluation = engine;
        let source = PartlyListed {
            inner: FixtureSource::new(file.clone(), std::time::Duration::ZERO),
            unlisted,
        };
        let (progress, _rx) = ProgressReporter::new();
        reports.push(
            scan(
                &source,
                Arc::new(c),
                &SubscriptionId::parse(SUB).unwrap(),
                &progress,
                2,
            )
            .await
            .expect("the scan completes"),
        );
    }
    let _ = std::fs::remove_file(file);
    let subscription = format!("/subscriptions/{SUB}");
    let found: Vec<(&str, &str, &str)> = reports[0]
        .findings
        .iter()
        .map(|f| (&*f.resource_id, &*f.resource_type, &*f.resource_name))
        .collect();
    let closed_id =
        format!("{subscription}/resourceGroups/rg/providers/Microsoft.Test/widgets/closed");
    let region = format!("{subscription}/locations/westeurope");
    let mut want = vec![
        (
            subscription.as_str(),
            "Microsoft.Resources/subscriptions",
            SUB,
        ),
        (
            region.as_str(),
            "Microsoft.Resources/subscriptions/locations",
            "westeurope",
        ),
        (closed_id.as_str(), "Microsoft.Test/widgets", "closed"),
    ];
    want.sort();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    assert_eq!(
        found_sorted, want,
        "the other subscription's open widget is not in the view"
    );
    let on_sub = reports[0]
        .findings
        .iter()
        .find(|f| *f.resource_id == *subscription)
        .unwrap();
    assert_eq!(
        on_sub.details.as_str(),
        r#"{"secret_seen":0,"widgets":1}"#,
        "only the declared `reads` reach the rule"
    );
    let t = reports[0].summary.rules["AZ-STG-910"];
    assert_eq!(
        (t.evaluated, t.failed, t.indeterminate, t.errored),
        (1, 1, 0, 0)
    );
    let t = reports[0].summary.rules["AZ-STG-911"];
    assert_eq!(
        (t.evaluated, t.failed, t.errored),
        (1, 0, 1),
        "an id outside the view is an error"
    );
    assert_eq!(
        reports[1].findings, reports[0].findings,
        "bytecode = interpreter"
    );
    assert_eq!(reports[1].summary, reports[0].summary);
    // Not listed: indeterminate, no finding, whatever the rule would have said.
    assert!(reports[2].findings.is_empty(), "{:?}", reports[2].findings);
    for id in ["AZ-STG-910", "AZ-STG-911"] {
        let t = reports[2].summary.rules[id];
        assert_eq!(
            (t.evaluated, t.failed, t.indeterminate, t.errored),
            (1, 0, 1, 0),
            "{id}"
        );
    }
}

/// What each rule found on the demo and the synthetic tenant, as recorded in
/// `tests/fixtures/golden-findings.txt`: the tallies and a digest of the findings (fingerprint and
/// details). The engine-equality tests compare two engines on the *same* rules, so a rule or
/// helper rewrite that changes meaning in both would pass them; this catches it. After a
/// change of meaning that is intended, regenerate the file with
/// `SCANLEDGER_BLESS=1 cargo test --test rules golden` and review its diff: each changed
/// line names a rule whose results changed.
#[test]
fn every_rule_finds_what_the_golden_record_says_on_the_demo_and_synthetic_tenants() {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let mut lines = String::new();
    for (label, tenant, subscription) in [
        ("demo", "demo/tenant", scanledger::cli::DEMO_SUBSCRIPTION),
        (
            "synth-2000",
            "tests/fixtures/synth-tenant-2000.jsonl",
            "5b9c0a39-2f4e-4d7a-8c1b-3e6f9a2d7c41",
        ),
    ] {
        let (_, report) = report_with(
            scanledger::scanner::rules::RuleEngine::default(),
            tenant,
            subscription,
        );
        let mut by_rule: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for f in &report.findings {
            by_rule.entry(&f.rule.id).or_default().push(format!(
                "{}\t{}",
                f.fingerprint,
                serde_json::to_string(&f.details).unwrap()
            ));
        }
        for (rule, t) in &report.summary.rules {
            let mut found = by_rule.remove(rule.as_str()).unwrap_or_default();
            found.sort_unstable();
            let mut h = Sha256::new();
            for f in &found {
                h.update(f.as_bytes());
                h.update(b"\n");
            }
            let digest: String = h.finalize()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            writeln!(
                lines,
                "{label} {rule} evaluated={} failed={} indeterminate={} errored={} findings={} {digest}",
                t.evaluated,
                t.failed,
                t.indeterminate,
                t.errored,
                found.len()
            )
            .unwrap();
        }
        assert!(
            by_rule.is_empty(),
            "findings of rules without a tally: {by_rule:?}"
        );
    }
    let path = repo().join("tests/fixtures/golden-findings.txt");
    if std::env::var_os("SCANLEDGER_BLESS").is_some() {
        std::fs::write(&path, &lines).unwrap();
    }
    let want = std::fs::read_to_string(&path).expect("tests/fixtures/golden-findings.txt");
    let changed: Vec<String> = lines
        .lines()
        .zip(want.lines())
        .filter(|(got, want)| got != want)
        .map(|(got, want)| format!("  recorded: {want}\n  now:      {got}"))
        .collect();
    assert!(
        changed.is_empty() && lines.lines().count() == want.lines().count(),
        "rules whose results differ from tests/fixtures/golden-findings.txt ({} lines now, {} recorded):\n{}",
        lines.lines().count(),
        want.lines().count(),
        changed.join("\n")
    );
}

/// A document cannot hand the rules its own facts: an inventory (or fixture) document
/// whose `facts` claim SSH is open to the internet, on an NSG with no rules, and a storage
/// account whose `facts` claim it is a FileStorage account (no blobs), are judged on what
/// they are, through a whole scan.
#[tokio::test]
async fn forged_facts_in_a_document_never_reach_the_rules() {
    let nsg = json!({
        "id": format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/closed"),
        "name": "closed",
        "type": "Microsoft.Network/networkSecurityGroups",
        "properties": {"securityRules": []},
        "facts": {"nsg": {"allows": [{
            "rule": "forged", "priority": 100, "protocol": "Tcp", "source": "*",
            "sources": ["*"], "open": [{"proto": "tcp", "lo": 22, "hi": 22, "range": "22"}],
        }]}},
    });
    let account = json!({
        "id": format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stforged"),
        "name": "stforged",
        "type": "Microsoft.Storage/storageAccounts",
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
        "properties": {"allowBlobPublicAccess": true},
        "related": {"blobServices/default": {"properties": {"isVersioningEnabled": false}}},
        "facts": {"storage": {"kind": "filestorage", "blob": false, "block_blob": false}},
    });
    let report = scan_docs(catalogue(), &[nsg, account]).await;
    let fired = |rule: &str| report.findings.iter().any(|f| &*f.rule.id == rule);
    assert!(!fired("AZ-NET-001"), "forged NSG facts opened SSH");
    // Blob versioning is judged (it applies to block-blob accounts): the forged kind
    // would have skipped it.
    assert!(
        fired("AZ-STG-013"),
        "forged storage facts hid a StorageV2 account's blobs"
    );
}
