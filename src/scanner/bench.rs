//! `rules bench`: what each rule costs, in µs per (rule, resource), so rule authors see
//! their slowest rules. Resources are read as a scan reads them, grouped by type into
//! chunks of [`CHUNK`], and each rule of the type is timed on each chunk alone, on one
//! thread (figures add up; a scan spreads them over the cores).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::{Doc, Evaluator, CHUNK};
use super::fixture::{self, ReadError, ResourceText};
use super::rules::Catalogue;
use super::{Listed, Resource};

/// One rule's cost over the resources it was given.
#[derive(Clone, Debug, Default)]
pub struct RuleCost {
    pub resources: u64,
    pub time: Duration,
    pub errored: u64,
}

impl RuleCost {
    pub fn micros_per_resource(&self) -> f64 {
        if self.resources == 0 {
            return 0.0;
        }
        self.time.as_secs_f64() * 1e6 / self.resources as f64
    }
}

/// What `rules bench` measured.
#[derive(Debug, Default)]
pub struct BenchReport {
    /// Rule index → cost.
    pub by_rule: BTreeMap<usize, RuleCost>,
    /// Lower-cased type → (resources, cost of its rules one by one, cost of its rules
    /// together as a scan evaluates them: one query per chunk).
    pub by_type: BTreeMap<String, (u64, Duration, Duration)>,
    /// Parsing documents' texts into Rego values, facts included.
    pub conversion: Duration,
    pub resources: u64,
}

/// Time every rule on the resources of `tenant` (a fixture file or folder; every
/// subscription in it).
pub fn run(catalogue: Arc<Catalogue>, tenant: &Path) -> Result<BenchReport, ReadError> {
    let by_type = catalogue.by_type();
    let mut evaluator = Evaluator::new(catalogue.clone());
    // Its own engine for the one-query runs, as a scan's: the VM learns per helper whether
    // remembering its calls pays (engine.rs), and rules run one at a time never repeat a
    // call, so sharing one engine would time the one-query runs with that memo turned off.
    let mut together = Evaluator::new(catalogue.clone());
    let mut report = BenchReport::default();
    let mut buffers: HashMap<String, Vec<Resource>> = HashMap::new();
    let mut flush = |kind: &str, docs: Vec<Resource>, report: &mut BenchReport| {
        // As a scan gets them from a fixture: texts, parsed on the evaluation thread.
        let texts: Vec<Listed> = docs
            .iter()
            .filter_map(|d| ResourceText::read(serde_json::to_vec(d).ok()?).ok())
            .map(Listed::Text)
            .collect();
        let t = Instant::now();
        let mut keys = super::engine::Keys::default();
        let docs: Vec<Doc> = texts
            .into_iter()
            .filter_map(|d| Doc::from_listed(d, &mut keys))
            .collect();
        report.conversion += t.elapsed();
        let entry = report.by_type.entry(kind.to_owned()).or_default();
        entry.0 += docs.len() as u64;
        for &rule in &by_type[kind] {
            let t = Instant::now();
            let outcome = evaluator.evaluate(&[rule], &docs);
            let spent = t.elapsed();
            let cost = report.by_rule.entry(rule).or_default();
            cost.resources += docs.len() as u64;
            cost.time += spent;
            cost.errored += outcome.errors.len() as u64;
            report.by_type.get_mut(kind).expect("entered above").1 += spent;
        }
        let t = Instant::now();
        together.evaluate(&by_type[kind], &docs);
        report.by_type.get_mut(kind).expect("entered above").2 += t.elapsed();
    };
    fixture::read_all(tenant, &mut |resource| {
        report.resources += 1;
        let Some(kind) = resource
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_ascii_lowercase)
        else {
            return;
        };
        if resource.get("id").and_then(|i| i.as_str()).is_none() || !by_type.contains_key(&kind) {
            return;
        }
        let buffer = buffers.entry(kind.clone()).or_default();
        buffer.push(resource);
        if buffer.len() >= CHUNK {
            let docs = std::mem::take(buffer);
            flush(&kind, docs, &mut report);
        }
    })?;
    for (kind, docs) in buffers {
        if !docs.is_empty() {
            flush(&kind, docs, &mut report);
        }
    }
    Ok(report)
}

/// The report as two tables: rules slowest first, then types.
pub fn render(catalogue: &Catalogue, report: &BenchReport) -> String {
    let mut out = String::new();
    let mut rules: Vec<(&usize, &RuleCost)> = report.by_rule.iter().collect();
    rules.sort_by_key(|r| std::cmp::Reverse(r.1.time));
    let total: Duration = rules.iter().map(|(_, c)| c.time).sum();
    out.push_str(&format!(
        "{:<11} {:>10} {:>12} {:>10} {:>7} {:>8}  type\n",
        "RULE", "RESOURCES", "µs/RESOURCE", "TOTAL ms", "SHARE", "ERRORED"
    ));
    for (rule, cost) in &rules {
        let r = &catalogue.rules()[**rule];
        out.push_str(&format!(
            "{:<11} {:>10} {:>12.1} {:>10.1} {:>6.1}% {:>8}  {}\n",
            r.meta.id,
            cost.resources,
            cost.micros_per_resource(),
            cost.time.as_secs_f64() * 1e3,
            100.0 * cost.time.as_secs_f64() / total.as_secs_f64().max(1e-9),
            cost.errored,
            r.meta.resource_types.join(", ")
        ));
    }
    out.push('\n');
    let mut types: Vec<(&String, &(u64, Duration, Duration))> = report.by_type.iter().collect();
    types.sort_by_key(|t| std::cmp::Reverse((t.1).2));
    let rules_of = catalogue.by_type();
    out.push_str(&format!(
        "{:<50} {:>10} {:>6} {:>12} {:>10} {:>14} {:>10}\n",
        "TYPE", "RESOURCES", "RULES", "µs/RESOURCE", "TOTAL ms", "ONE QUERY µs", "TOTAL ms"
    ));
    let mut together = Duration::ZERO;
    for (kind, (n, time, one)) in types {
        together += *one;
        out.push_str(&format!(
            "{:<50} {:>10} {:>6} {:>12.1} {:>10.1} {:>14.1} {:>10.1}\n",
            kind,
            n,
            rules_of.get(kind).map_or(0, Vec::len),
            time.as_secs_f64() * 1e6 / (*n).max(1) as f64,
            time.as_secs_f64() * 1e3,
            one.as_secs_f64() * 1e6 / (*n).max(1) as f64,
            one.as_secs_f64() * 1e3
        ));
    }
    out.push_str(&format!(
        "(ONE QUERY: all of a type's rules evaluated together per chunk, as a scan does: {:.1} ms in all)\n",
        together.as_secs_f64() * 1e3
    ));
    out.push_str(&format!(
        "\n{} resources read; rules {:.1} ms, parsing into Rego values (facts included) {:.1} ms (one thread, engine {:?})\n",
        report.resources,
        total.as_secs_f64() * 1e3,
        report.conversion.as_secs_f64() * 1e3,
        catalogue.evaluation
    ));
    out
}
