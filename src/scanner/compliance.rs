//! Compliance per framework: each control a framework names in the rules' metadata
//! (`frameworks`), with the rules mapped to it and their outcome on one completed scan.
//!
//! Pure: the inputs are the catalogue's mappings, the scan's per-rule tallies (its
//! `Completed` summary) and, per rule, the resources with findings and those whose every
//! finding is muted by a mute in effect now ([`rule_findings`]). Mutes change only that
//! last input.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use super::rules::{Catalogue, FRAMEWORKS};
use crate::domain::{RuleTally, Severity};

/// A framework's display name.
pub fn framework_title(key: &str) -> &str {
    match key {
        "cis_azure" => "CIS Microsoft Azure Foundations Benchmark v2.1.0",
        "cis_v3" => "CIS Microsoft Azure Foundations Benchmark v3.0.0",
        "nist_csf" => "NIST Cybersecurity Framework",
        "iso27001" => "ISO/IEC 27001:2022 Annex A",
        other => other,
    }
}

/// The frameworks a rule may map to, as the catalogue checks them.
pub fn frameworks() -> &'static [&'static str] {
    &FRAMEWORKS
}

/// One rule's place in the frameworks.
#[derive(Clone, Debug)]
pub struct RuleControls {
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    /// Framework → control ids.
    pub frameworks: BTreeMap<String, Vec<String>>,
    /// Evaluated once on the whole subscription (an existence check), not per resource:
    /// its check is the subscription, however many resources or regions its findings name.
    pub per_subscription: bool,
}

/// The catalogue's framework mappings, rule by rule.
#[derive(Clone, Debug, Default)]
pub struct Controls {
    rules: Vec<RuleControls>,
}

impl Controls {
    pub fn of(catalogue: &Catalogue) -> Self {
        Self {
            rules: catalogue
                .rules()
                .iter()
                .map(|r| RuleControls {
                    rule_id: r.meta.id.clone(),
                    title: r.meta.title.clone(),
                    severity: r.meta.severity,
                    frameworks: r.meta.frameworks.clone(),
                    per_subscription: r.meta.scope == super::rules::Scope::Subscription,
                })
                .collect(),
        }
    }

    pub fn from_rules(rules: Vec<RuleControls>) -> Self {
        Self { rules }
    }

    /// The embedded catalogue's mappings, loaded once per process.
    pub fn embedded() -> Arc<Self> {
        static EMBEDDED: OnceLock<Arc<Controls>> = OnceLock::new();
        EMBEDDED
            .get_or_init(|| {
                Arc::new(
                    Catalogue::embedded()
                        .map(|c| Self::of(&c))
                        .expect("the embedded catalogue loads (checked by its tests)"),
                )
            })
            .clone()
    }

    pub fn rules(&self) -> &[RuleControls] {
        &self.rules
    }
}

/// What a scan's findings say of one rule: resources with findings, and those of them
/// whose every finding is muted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleFindings {
    pub failing: u64,
    pub muted: u64,
}

/// Per rule, from a scan's findings as (fingerprint, rule id, resource id) and whether a
/// mute covers each: a resource is muted for a rule when every finding of the rule on it
/// is. Resource ids compare case-insensitively (ARM's, and the fingerprint's).
pub fn rule_findings<'a>(
    findings: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    muted: impl Fn(&str, &str, &str) -> bool,
) -> HashMap<String, RuleFindings> {
    let mut resources: HashMap<(&str, String), bool> = HashMap::new();
    for (fingerprint, rule, resource) in findings {
        let all_muted = resources
            .entry((rule, resource.to_ascii_lowercase()))
            .or_insert(true);
        *all_muted = *all_muted && muted(fingerprint, rule, resource);
    }
    let mut out: HashMap<String, RuleFindings> = HashMap::new();
    for ((rule, _), all_muted) in resources {
        let r = out.entry(rule.to_string()).or_default();
        r.failing += 1;
        r.muted += u64::from(all_muted);
    }
    out
}

/// A check's outcome over resources: each resource a rule was given counts once, in
/// exactly one of these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    /// Evaluated, no finding.
    pub pass: u64,
    /// At least one finding that is not muted.
    pub fail: u64,
    /// The rule could not decide (a property it needs was absent), or it raised an error.
    pub indeterminate: u64,
    /// Findings, every one of them muted.
    pub muted: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.pass += o.pass;
        self.fail += o.fail;
        self.indeterminate += o.indeterminate;
        self.muted += o.muted;
    }

    /// The control's state: any failure fails it; then any undecided resource; then
    /// muted findings; `not_evaluated` when no resource was checked.
    pub fn state(&self) -> ControlState {
        if self.fail > 0 {
            ControlState::Fail
        } else if self.indeterminate > 0 {
            ControlState::Indeterminate
        } else if self.muted > 0 {
            ControlState::Muted
        } else if self.pass > 0 {
            ControlState::Pass
        } else {
            ControlState::NotEvaluated
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControlState {
    Pass,
    Fail,
    Indeterminate,
    Muted,
    /// No resource the control's rules read was in the scan (or the scan ran other rules).
    NotEvaluated,
}

impl ControlState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Indeterminate => "indeterminate",
            Self::Muted => "muted",
            Self::NotEvaluated => "not_evaluated",
        }
    }
}

/// One rule under a control.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RuleOutcome {
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub state: ControlState,
    /// Resources of its types the scan gave it.
    pub evaluated: u64,
    #[serde(flatten)]
    pub counts: Counts,
}

/// One control of a framework.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Control {
    /// The framework's id for it, e.g. `3.1` or `PR.DS-2`.
    pub control_id: String,
    pub state: ControlState,
    /// Sums over its rules (a resource checked by two of its rules counts twice).
    #[serde(flatten)]
    pub counts: Counts,
    pub rules: Vec<RuleOutcome>,
}

/// One framework on one scan.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Framework {
    /// Its key in the rules' metadata: `cis_azure`, `nist_csf`, `iso27001`.
    pub framework: String,
    pub title: String,
    /// Controls by state.
    pub controls_by_state: BTreeMap<String, u64>,
    /// Sums over its controls.
    #[serde(flatten)]
    pub counts: Counts,
    /// In the framework's order (numbered parts compared as numbers).
    pub controls: Vec<Control>,
}

/// One rule's outcome on the scan, from its tally and its findings.
fn rule_counts(
    tally: Option<&RuleTally>,
    found: RuleFindings,
    per_subscription: bool,
) -> (u64, Counts) {
    let t = tally.copied().unwrap_or_default();
    let (failing, muted) = if per_subscription {
        // One check, the subscription: failing if it has findings, muted if all are.
        let failing = t.failed.max(u64::from(found.failing > 0)).min(1);
        let muted = u64::from(failing == 1 && found.failing > 0 && found.muted == found.failing);
        (failing, muted)
    } else {
        // The tally's `failed` is the findings' resource count for a scan this service
        // ran; an imported scan has findings and no tallies.
        let failing = t.failed.max(found.failing);
        (failing, found.muted.min(failing))
    };
    let counts = Counts {
        pass: t
            .evaluated
            .saturating_sub(failing + t.indeterminate + t.errored),
        fail: failing - muted,
        indeterminate: t.indeterminate + t.errored,
        muted,
    };
    (t.evaluated.max(failing), counts)
}

/// `framework` on a scan with these per-rule `tallies` and `findings`.
pub fn framework(
    controls: &Controls,
    framework: &str,
    tallies: &BTreeMap<String, RuleTally>,
    findings: &HashMap<String, RuleFindings>,
) -> Framework {
    let mut by_control: BTreeMap<&str, Vec<RuleOutcome>> = BTreeMap::new();
    for rule in &controls.rules {
        let Some(ids) = rule.frameworks.get(framework) else {
            continue;
        };
        let found = findings.get(&rule.rule_id).copied().unwrap_or_default();
        let (evaluated, counts) =
            rule_counts(tallies.get(&rule.rule_id), found, rule.per_subscription);
        for id in ids {
            by_control
                .entry(id.as_str())
                .or_default()
                .push(RuleOutcome {
                    rule_id: rule.rule_id.clone(),
                    title: rule.title.clone(),
                    severity: rule.severity,
                    state: counts.state(),
                    evaluated,
                    counts,
                });
        }
    }
    let mut out = Framework {
        framework: framework.to_string(),
        title: framework_title(framework).to_string(),
        controls_by_state: BTreeMap::new(),
        counts: Counts::default(),
        controls: Vec::with_capacity(by_control.len()),
    };
    for (id, mut rules) in by_control {
        rules.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        let mut counts = Counts::default();
        for r in &rules {
            counts.add(&r.counts);
        }
        out.counts.add(&counts);
        *out.controls_by_state
            .entry(counts.state().as_str().to_string())
            .or_default() += 1;
        out.controls.push(Control {
            control_id: id.to_string(),
            state: counts.state(),
            counts,
            rules,
        });
    }
    out.controls
        .sort_by(|a, b| natural_cmp(&a.control_id, &b.control_id));
    out
}

/// Control ids in reading order: `2.1.5` before `2.1.11`, `A.8.7` before `A.8.16`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let parts = |s: &str| -> Vec<(u64, String)> {
        s.split(['.', '-'])
            .map(|p| match p.parse::<u64>() {
                Ok(n) => (n, String::new()),
                Err(_) => (u64::MAX, p.to_string()),
            })
            .collect()
    };
    parts(a).cmp(&parts(b)).then_with(|| a.cmp(b))
}

/// A framework as CSV: one row per (control, rule), formula-like cells quoted as text.
pub fn csv(f: &Framework, scan_id: &str, subscription_id: &str) -> String {
    let mut out = String::from(
        "framework,control_id,control_state,rule_id,rule_title,severity,rule_state,evaluated,pass,fail,indeterminate,muted,scan_id,subscription_id\n",
    );
    for c in &f.controls {
        for r in &c.rules {
            let cells = [
                f.framework.as_str(),
                &c.control_id,
                c.state.as_str(),
                &r.rule_id,
                &r.title,
                r.severity.as_str(),
                r.state.as_str(),
                &r.evaluated.to_string(),
                &r.counts.pass.to_string(),
                &r.counts.fail.to_string(),
                &r.counts.indeterminate.to_string(),
                &r.counts.muted.to_string(),
                scan_id,
                subscription_id,
            ];
            let row: Vec<String> = cells.iter().map(|c| super::report::csv_field(c)).collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, cis: &[&str], nist: &[&str]) -> RuleControls {
        let mut frameworks = BTreeMap::new();
        frameworks.insert(
            "cis_azure".to_string(),
            cis.iter().map(|s| s.to_string()).collect(),
        );
        frameworks.insert(
            "nist_csf".to_string(),
            nist.iter().map(|s| s.to_string()).collect(),
        );
        RuleControls {
            rule_id: id.into(),
            title: format!("title of {id}"),
            severity: Severity::High,
            frameworks,
            per_subscription: false,
        }
    }

    fn tally(evaluated: u64, failed: u64, indeterminate: u64, errored: u64) -> RuleTally {
        RuleTally {
            evaluated,
            failed,
            indeterminate,
            errored,
            muted: 0,
        }
    }

    #[test]
    fn counts_each_resource_once_and_muted_findings_move_out_of_fail() {
        let controls = Controls::from_rules(vec![
            rule("A", &["2.1.11"], &["PR.DS-1"]),
            rule("B", &["2.1.5", "2.1.11"], &[]),
            rule("C", &["9.1"], &[]),
        ]);
        let tallies = BTreeMap::from([
            ("A".to_string(), tally(10, 3, 1, 1)),
            ("B".to_string(), tally(4, 0, 0, 0)),
        ]);
        let none = HashMap::new();
        let f = framework(&controls, "cis_azure", &tallies, &none);
        let ids: Vec<&str> = f.controls.iter().map(|c| c.control_id.as_str()).collect();
        assert_eq!(ids, ["2.1.5", "2.1.11", "9.1"], "numbered parts as numbers");
        let c = &f.controls[1];
        assert_eq!(c.rules.len(), 2);
        assert_eq!(
            c.counts,
            Counts {
                pass: 5 + 4,
                fail: 3,
                indeterminate: 2,
                muted: 0
            }
        );
        assert_eq!(c.state, ControlState::Fail);
        assert_eq!(f.controls[0].state, ControlState::Pass);
        assert_eq!(f.controls[2].state, ControlState::NotEvaluated);
        assert_eq!(f.controls_by_state["fail"], 1);
        assert_eq!(f.controls_by_state["not_evaluated"], 1);

        // The same scan once two of A's three failing resources are muted.
        let muted = HashMap::from([(
            "A".to_string(),
            RuleFindings {
                failing: 3,
                muted: 2,
            },
        )]);
        let f = framework(&controls, "cis_azure", &tallies, &muted);
        let a = &f.controls[1].rules[0];
        assert_eq!((a.counts.fail, a.counts.muted, a.counts.pass), (1, 2, 5));
        let all_muted = HashMap::from([(
            "A".to_string(),
            RuleFindings {
                failing: 3,
                muted: 3,
            },
        )]);
        let f = framework(&controls, "cis_azure", &tallies, &all_muted);
        assert_eq!(f.controls[1].rules[0].state, ControlState::Indeterminate);
        let nist = framework(&controls, "nist_csf", &tallies, &none);
        assert_eq!(nist.controls.len(), 1, "B and C map to no NIST control");
    }

    #[test]
    fn a_resource_is_muted_for_a_rule_when_all_its_findings_of_the_rule_are() {
        let findings = [
            ("f1", "A", "/r/ONE"),
            ("f2", "A", "/r/one"), // the same resource, another sub-item
            ("f3", "A", "/r/two"),
            ("f4", "B", "/r/one"),
        ];
        let none = rule_findings(findings, |_, _, _| false);
        assert_eq!(
            none["A"],
            RuleFindings {
                failing: 2,
                muted: 0
            }
        );
        assert_eq!(
            none["B"],
            RuleFindings {
                failing: 1,
                muted: 0
            }
        );
        // One of /r/one's two findings of A is muted: the resource still fails A.
        let one = rule_findings(findings, |fp, _, _| fp == "f1");
        assert_eq!(
            one["A"],
            RuleFindings {
                failing: 2,
                muted: 0
            }
        );
        let both = rule_findings(findings, |fp, _, _| fp == "f1" || fp == "f2");
        assert_eq!(
            both["A"],
            RuleFindings {
                failing: 2,
                muted: 1
            }
        );
        let rule_b = rule_findings(findings, |_, rule, _| rule == "B");
        assert_eq!(
            rule_b["B"],
            RuleFindings {
                failing: 1,
                muted: 1
            }
        );
        assert_eq!(rule_b["A"].muted, 0);
    }

    #[test]
    fn a_subscription_rule_counts_the_subscription_once() {
        let mut r = rule("S", &["5.1.2"], &[]);
        r.per_subscription = true;
        let controls = Controls::from_rules(vec![r]);
        let tallies = BTreeMap::from([("S".to_string(), tally(1, 1, 0, 0))]);
        // Its findings name three regions.
        let found = |muted| HashMap::from([("S".to_string(), RuleFindings { failing: 3, muted })]);
        let f = framework(&controls, "cis_azure", &tallies, &found(0));
        let r = &f.controls[0].rules[0];
        assert_eq!((r.evaluated, r.counts.fail, r.counts.pass), (1, 1, 0));
        let f = framework(&controls, "cis_azure", &tallies, &found(2));
        assert_eq!(
            f.controls[0].rules[0].counts.fail, 1,
            "one region still fails"
        );
        let f = framework(&controls, "cis_azure", &tallies, &found(3));
        let r = &f.controls[0].rules[0];
        assert_eq!((r.counts.fail, r.counts.muted), (0, 1));
        let passing = BTreeMap::from([("S".to_string(), tally(1, 0, 0, 0))]);
        let f = framework(&controls, "cis_azure", &passing, &HashMap::new());
        assert_eq!(f.controls[0].rules[0].counts.pass, 1);
    }

    #[test]
    fn imported_scans_count_findings_without_tallies() {
        let controls = Controls::from_rules(vec![rule("A", &["1.1"], &[])]);
        let found = HashMap::from([(
            "A".to_string(),
            RuleFindings {
                failing: 2,
                muted: 0,
            },
        )]);
        let f = framework(&controls, "cis_azure", &BTreeMap::new(), &found);
        let r = &f.controls[0].rules[0];
        assert_eq!((r.evaluated, r.counts.fail, r.counts.pass), (2, 2, 0));
        assert_eq!(r.state, ControlState::Fail);
    }

    #[test]
    fn csv_quotes_formula_like_cells() {
        let mut r = rule("A", &["1.1"], &[]);
        r.title = "=HYPERLINK(\"x\")".into();
        let controls = Controls::from_rules(vec![r]);
        let f = framework(&controls, "cis_azure", &BTreeMap::new(), &HashMap::new());
        let text = csv(&f, "s", "sub");
        let row = text.lines().nth(1).unwrap();
        assert!(!row.contains(",=HYPERLINK"), "{row}");
        assert!(row.starts_with("cis_azure,1.1,not_evaluated,A,"));
    }

    #[test]
    fn the_embedded_catalogue_maps_every_framework() {
        let controls = Controls::embedded();
        for fw in frameworks() {
            let f = framework(&controls, fw, &BTreeMap::new(), &HashMap::new());
            assert!(!f.controls.is_empty(), "{fw} has controls");
        }
    }
}
