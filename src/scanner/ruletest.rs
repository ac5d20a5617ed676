//! `rules test`: every rule against the fixtures beside it. `<name>.rego` has
//! `<name>.fixtures.json` = `{"fire": [...], "quiet": [...], "indeterminate": [...]}`,
//! ARM documents on which the rule must fire, stay quiet, or report indeterminate.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::engine::{Doc, Evaluator};
use super::inventory::FixtureInventory;
use super::rules::{Catalogue, Rule, Scope};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixtures {
    fire: Vec<serde_json::Value>,
    quiet: Vec<serde_json::Value>,
    #[serde(default)]
    indeterminate: Vec<serde_json::Value>,
}

/// What one rule's fixtures showed.
#[derive(Debug)]
pub struct RuleCheck {
    pub rule_id: String,
    pub file: PathBuf,
    pub cases: usize,
    /// Empty when every case behaved.
    pub problems: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Fire,
    Quiet,
    Indeterminate,
}

/// Run every rule's fixtures.
pub fn run(catalogue: Arc<Catalogue>) -> Vec<RuleCheck> {
    let mut evaluator = Evaluator::interpreter(catalogue.clone());
    // regorus' bytecode compiler mis-compiles some constructs (docs/rule-authoring.md):
    // every case must give the interpreter's answer with `--rule-engine bytecode` too.
    let mut bytecode = Evaluator::bytecode(catalogue.clone());
    let mut checks = Vec::new();
    for (index, rule) in catalogue.rules().iter().enumerate() {
        let mut check = RuleCheck {
            rule_id: rule.meta.id.clone(),
            file: rule.file.clone(),
            cases: 0,
            problems: Vec::new(),
        };
        // Beside the rule, from where the rule came (embedded or its folder).
        let path = rule.file.with_extension("fixtures.json");
        let fixtures: Fixtures = match rule
            .fixtures
            .as_deref()
            .ok_or_else(|| "no such file".to_owned())
            .and_then(|t| serde_json::from_str(t).map_err(|e| e.to_string()))
        {
            Ok(f) => f,
            Err(e) => {
                check.problems.push(format!("{}: {e}", path.display()));
                checks.push(check);
                continue;
            }
        };
        if fixtures.fire.is_empty() || fixtures.quiet.is_empty() {
            check
                .problems
                .push("needs at least one `fire` and one `quiet` fixture".into());
        }
        // An existence check's third outcome is the one that keeps it honest.
        if rule.meta.scope == Scope::Subscription && fixtures.indeterminate.is_empty() {
            check.problems.push(
                "a subscription rule needs an `indeterminate` fixture (a type it reads not listed)"
                    .into(),
            );
        }
        // Labels count within their section: `quiet #2` is the third `quiet` document.
        let cases = fixtures
            .fire
            .into_iter()
            .enumerate()
            .map(|(n, d)| (Expect::Fire, n, d))
            .chain(
                fixtures
                    .quiet
                    .into_iter()
                    .enumerate()
                    .map(|(n, d)| (Expect::Quiet, n, d)),
            )
            .chain(
                fixtures
                    .indeterminate
                    .into_iter()
                    .enumerate()
                    .map(|(n, d)| (Expect::Indeterminate, n, d)),
            );
        for (expect, n, json) in cases {
            check.cases += 1;
            let label = format!("{expect:?} #{n}").to_lowercase();
            if rule.meta.scope == Scope::Subscription {
                if let Err(problem) =
                    subscription_case(&mut evaluator, bytecode.as_mut(), index, rule, expect, json)
                {
                    check.problems.push(format!("{label}: {problem}"));
                }
                continue;
            }
            let Some(doc) = Doc::from_json(json) else {
                check
                    .problems
                    .push(format!("{label}: not an ARM document (id and type)"));
                continue;
            };
            if !rule.types.contains(&doc.kind.to_ascii_lowercase()) {
                check.problems.push(format!(
                    "{label} ({}): type {} is not one the rule reads",
                    doc.id, doc.kind
                ));
                continue;
            }
            let out = evaluator.evaluate(&[index], std::slice::from_ref(&doc));
            if let Some(vm) = bytecode.as_mut() {
                let b = vm.evaluate(&[index], std::slice::from_ref(&doc));
                if b.hits != out.hits
                    || b.undecided != out.undecided
                    || b.errors.len() != out.errors.len()
                {
                    check.problems.push(format!(
                        "{label} ({}): the bytecode VM and the interpreter disagree (interpreter: {} findings, {} indeterminate, {} errors; VM: {}, {}, {})",
                        doc.id,
                        out.hits.len(),
                        out.undecided.len(),
                        out.errors.len(),
                        b.hits.len(),
                        b.undecided.len(),
                        b.errors.len()
                    ));
                    continue;
                }
            }
            let got = if let Some(e) = out.errors.first() {
                check
                    .problems
                    .push(format!("{label} ({}): error: {}", doc.id, e.message));
                continue;
            } else if !out.hits.is_empty() {
                Expect::Fire
            } else if !out.undecided.is_empty() {
                Expect::Indeterminate
            } else {
                Expect::Quiet
            };
            if got != expect {
                check.problems.push(format!(
                    "{label} ({}): expected {expect:?}, got {got:?}",
                    doc.id
                ));
            }
        }
        checks.push(check);
    }
    checks
}

/// One fixture case of a subscription rule: an inventory (see [`FixtureInventory`]).
fn subscription_case(
    evaluator: &mut Evaluator,
    bytecode: Option<&mut Evaluator>,
    index: usize,
    rule: &Rule,
    expect: Expect,
    json: serde_json::Value,
) -> Result<(), String> {
    let fixture: FixtureInventory =
        serde_json::from_value(json).map_err(|e| format!("not a subscription inventory ({e})"))?;
    let view = fixture.view(&rule.own_reads(), &rule.meta.resource_types)?;
    let out = evaluator.evaluate_subscription(&[index], &view);
    if let Some(vm) = bytecode {
        let b = vm.evaluate_subscription(&[index], &view);
        if b.hits != out.hits || b.undecided != out.undecided || b.errors.len() != out.errors.len()
        {
            return Err(format!(
                "the bytecode VM and the interpreter disagree (interpreter: {} findings, {} indeterminate, {} errors; VM: {}, {}, {})",
                out.hits.len(),
                out.undecided.len(),
                out.errors.len(),
                b.hits.len(),
                b.undecided.len(),
                b.errors.len()
            ));
        }
    }
    let got = if let Some(e) = out.errors.first() {
        return Err(format!("error: {}", e.message));
    } else if !out.hits.is_empty() {
        Expect::Fire
    } else if !out.undecided.is_empty() {
        Expect::Indeterminate
    } else {
        Expect::Quiet
    };
    if got != expect {
        return Err(format!(
            "expected {expect:?}, got {got:?} (subscription {})",
            fixture.subscription_id
        ));
    }
    Ok(())
}
