//! The scan itself: an inventory source streams ARM resources, the rule engine
//! evaluates the posture rules on them in bounded chunks, and the findings and summary
//! become the attempt's `Completed` event.

pub mod azure;
pub mod bench;
pub mod compliance;
pub mod engine;
pub mod facts;
pub mod fixture;
pub mod inventory;
pub(crate) mod plan;
pub mod report;
pub mod rules;
pub mod ruletest;
pub mod threads;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, FuturesUnordered};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use fixture::ResourceText;

use crate::domain::governance::{Mute, MuteList};
use crate::domain::RuleTally;
use engine::{Doc, Evaluator, CHUNK};
use rules::Catalogue;

use crate::domain::{FailureCode, Finding, Phase, SubscriptionId};
use crate::worker::{ProgressReporter, ScanError, ScanJob, ScanReport, ScanTarget};

/// One ARM resource, exactly as the REST API returns it.
pub type Resource = serde_json::Value;

/// One listed resource: a parsed document (a source that attaches related documents to
/// it), or its JSON text, checked and routed by its `id` and `type` and parsed once, on
/// an evaluation thread, straight into the rules' values (a fixture file: parsing it
/// into a tree on the reading thread and converting that was a fifth of a scan's CPU).
#[derive(Clone, Debug)]
pub enum Listed {
    Parsed(Resource),
    Text(ResourceText),
}

impl Listed {
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Parsed(r) => r.get("id")?.as_str(),
            Self::Text(t) => Some(t.id()),
        }
    }

    pub fn kind(&self) -> Option<&str> {
        match self {
            Self::Parsed(r) => r.get("type")?.as_str(),
            Self::Text(t) => Some(t.kind()),
        }
    }

    /// The document as a tree (a text is parsed: for the few types an inventory view
    /// keeps).
    pub fn document(&self) -> std::borrow::Cow<'_, Resource> {
        match self {
            Self::Parsed(r) => std::borrow::Cow::Borrowed(r),
            Self::Text(t) => std::borrow::Cow::Owned(t.document()),
        }
    }

    pub fn into_document(self) -> Resource {
        match self {
            Self::Parsed(r) => r,
            Self::Text(t) => t.document(),
        }
    }
}

/// Where resources come from.
pub trait InventorySource: Send + Sync + 'static {
    /// List the resources of one subscription: a stream (memory stays flat as the
    /// tenant grows), and the types it could not list completely.
    fn list(&self, subscription: &SubscriptionId, needs: &Needs) -> Inventory;
}

/// One listing of a subscription.
pub struct Inventory {
    /// The resources, as they arrive. An error ends the scan.
    pub resources: BoxStream<'static, Result<Listed, ScanError>>,
    /// Filled by the source as it goes: types of `Needs::types` it could not list
    /// completely (read once the stream has ended). Subscription rules reading them are
    /// indeterminate.
    pub coverage: Arc<inventory::Coverage>,
}

impl Inventory {
    /// A listing that lists every type it was asked for, or fails the scan.
    pub fn complete(resources: BoxStream<'static, Result<Listed, ScanError>>) -> Self {
        Self {
            resources,
            coverage: Arc::default(),
        }
    }
}

/// A `--source` value.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    /// `fixture:PATH[?delay_ms=N]`: ARM JSON documents on disk; the optional delay per
    /// resource imitates a slow tenant (demos, crash tests).
    Fixture { path: PathBuf, delay: Duration },
    /// `azure`: the Azure Resource Manager source (settings in [`azure::AzureSettings`]).
    Azure,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceSpecError {
    #[error("unknown source {0:?}: expected fixture:PATH or azure")]
    Unknown(String),
    #[error("bad fixture option {0:?}: expected delay_ms=N")]
    BadOption(String),
    #[error(
        "the azure {kind} credential needs {var}{hint}; or pick another with --azure-credential"
    )]
    AzureMissingSetting {
        kind: &'static str,
        var: &'static str,
        /// Where else it may come from, e.g. " (or --azure-tenant-id)".
        hint: &'static str,
    },
    #[error("{flag} {value:?}: {reason}")]
    AzureEndpoint {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("--azure-ca-file {path:?}: {reason}")]
    AzureCaFile { path: PathBuf, reason: String },
    #[error("azure source setup: {0}")]
    AzureSetup(String),
}

impl FromStr for SourceSpec {
    type Err = SourceSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "azure" {
            return Ok(Self::Azure);
        }
        let Some(rest) = s.strip_prefix("fixture:") else {
            return Err(SourceSpecError::Unknown(s.into()));
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(SourceSpecError::Unknown(s.into()));
        }
        let mut delay = Duration::ZERO;
        for opt in query.split('&').filter(|o| !o.is_empty()) {
            let ms = opt
                .strip_prefix("delay_ms=")
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| SourceSpecError::BadOption(opt.into()))?;
            delay = Duration::from_millis(ms);
        }
        Ok(Self::Fixture {
            path: path.into(),
            delay,
        })
    }
}

impl SourceSpec {
    pub fn open(
        &self,
        azure_args: &azure::AzureSettings,
    ) -> Result<Arc<dyn InventorySource>, SourceSpecError> {
        match self {
            Self::Fixture { path, delay } => {
                Ok(Arc::new(fixture::FixtureSource::new(path.clone(), *delay)))
            }
            Self::Azure => azure::open(azure_args),
        }
    }
}

/// Rule evaluations at once by default: one per core and one more. A slot whose chunk
/// is done waits for the next to fill while the reading and merging threads share the
/// cores; the extra one keeps the cores busy then (100k tenant, 2 cores: 3.07-3.11 →
/// 2.90-2.94 s). It raised the peak by ~40 MB, mostly memory the allocator kept, which
/// `tune_allocator` returns (docs/performance.md). A fourth slot measured no faster.
pub fn evaluation_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) + 1
}

/// The production scan job: stream the inventory and evaluate the rule catalogue on it.
pub struct RuleScan {
    source: Arc<dyn InventorySource>,
    /// Rule evaluations at once across all of this worker's scans
    /// (`evaluation_slots`), so eight concurrent scans share the cores instead of each
    /// claiming them all.
    permits: Arc<Semaphore>,
    /// Evaluation threads for the whole catalogue (and the catalogue), kept between
    /// scans: each has its own engine, loaded once.
    engines: EnginePool,
}

/// Evaluation threads shared by scans of one catalogue.
pub type EnginePool = Arc<threads::Pool>;

impl RuleScan {
    pub fn new(source: Arc<dyn InventorySource>, catalogue: Arc<Catalogue>) -> Self {
        Self {
            source,
            engines: Arc::new(threads::Pool::new(catalogue, evaluation_slots())),
            permits: Arc::new(Semaphore::new(evaluation_slots())),
        }
    }
}

impl ScanJob for RuleScan {
    fn run(
        &self,
        target: ScanTarget,
        progress: ProgressReporter,
    ) -> BoxFuture<'static, Result<ScanReport, ScanError>> {
        let source = self.source.clone();
        let permits = self.permits.clone();
        // A rule filter makes another catalogue (other rule indexes): its own evaluators,
        // for this scan.
        let engines = if target.rules.is_empty() {
            Ok(self.engines.clone())
        } else {
            Catalogue::clone(self.engines.catalogue())
                .select(&target.rules)
                .map(|c| Arc::new(threads::Pool::new(Arc::new(c), evaluation_slots())))
                .map_err(|e| ScanError::new(FailureCode::UnknownRules, e.to_string()))
        };
        Box::pin(async move {
            let engines = engines?;
            let catalogue = engines.catalogue().clone();
            let mut report = scan_with(
                source.as_ref(),
                &target.subscription_id,
                &progress,
                permits,
                engines,
            )
            .await?;
            apply_mutes(&catalogue, &mut report, &target.mutes);
            Ok(report)
        })
    }
}

/// What the selected rules need from a source.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// ARM types to list, as the rules spell them.
    pub types: BTreeSet<String>,
    /// Lower-cased type → related path → api-version.
    pub related: BTreeMap<String, BTreeMap<String, String>>,
}

impl Needs {
    pub fn of(catalogue: &Catalogue) -> Self {
        Self {
            types: catalogue.resource_types(),
            related: catalogue.related(),
        }
    }
}

/// What one evaluated chunk adds to the scan.
#[derive(Default)]
struct ChunkResult {
    findings: Vec<Finding>,
    tallies: Vec<(usize, RuleTally)>,
    evaluations: u64,
}

impl ChunkResult {
    /// Add what the chunk's next piece adds.
    fn absorb(&mut self, other: ChunkResult) {
        self.findings.extend(other.findings);
        engine::add_tallies(&mut self.tallies, other.tallies);
        self.evaluations += other.evaluations;
    }
}

fn evaluate_chunk(evaluator: &mut Evaluator, rules: &[usize], docs: Vec<Doc>) -> ChunkResult {
    let outcome = evaluator.evaluate(rules, &docs);
    let catalogue = evaluator.catalogue();
    for e in &outcome.errors {
        let rule = &catalogue.rules()[e.rule];
        tracing::warn!(
            rule_id = %rule.meta.id,
            resource_id = e.doc.map(|d| &*docs[d].id).unwrap_or(""),
            error = %e.message,
            "rule errored"
        );
    }
    let findings = outcome
        .hits
        .into_iter()
        .map(|hit| {
            let rule = &catalogue.rules()[hit.rule];
            let shared = &rule.shared;
            let doc = &docs[hit.doc];
            Finding {
                fingerprint: Finding::fingerprint(&shared.id, &doc.id, &hit.sub_item),
                rule: shared.clone(),
                resource_id: doc.id.clone(),
                resource_name: doc.name.clone(),
                resource_type: doc.kind.clone(),
                details: hit.details,
                detected_at: None,
            }
        })
        .collect();
    ChunkResult {
        findings,
        tallies: outcome.tallies,
        evaluations: outcome.evaluations,
    }
}

/// The subscription rules' findings, as one more "chunk".
fn evaluate_subscription(
    evaluator: &mut Evaluator,
    rules: &[usize],
    view: &inventory::View,
) -> ChunkResult {
    let outcome = evaluator.evaluate_subscription(rules, view);
    let catalogue = evaluator.catalogue();
    for e in &outcome.errors {
        tracing::warn!(
            rule_id = %catalogue.rules()[e.rule].meta.id,
            resource_id = %view.subscription,
            error = %e.message,
            "rule errored"
        );
    }
    let findings = outcome
        .hits
        .into_iter()
        .map(|hit| {
            let rule = &catalogue.rules()[hit.rule];
            let shared = &rule.shared;
            Finding {
                fingerprint: Finding::fingerprint(&shared.id, &hit.resource_id, &hit.sub_item),
                rule: shared.clone(),
                resource_id: hit.resource_id.into(),
                resource_name: hit.resource_name.into(),
                resource_type: hit.resource_type.into(),
                details: hit.details,
                detected_at: None,
            }
        })
        .collect();
    ChunkResult {
        findings,
        evaluations: outcome.tallies.len() as u64,
        tallies: outcome.tallies,
    }
}

/// The `resource_type` of a finding about a subscription, and about one of its regions.
pub const SUBSCRIPTION_TYPE: &str = "Microsoft.Resources/subscriptions";
pub const SUBSCRIPTION_LOCATION_TYPE: &str = "Microsoft.Resources/subscriptions/locations";

/// Order findings for reports: severity (worst first), rule, resource, then fingerprint
/// and details, so which of two same-fingerprint findings stays is fixed.
///
/// In place (a stable sort borrows half the list again, at the scan's peak) and on every
/// core: findings are first grouped by (severity, rule) with one counting pass that swaps
/// them into place, then each group is sorted by resource on whichever thread is free.
/// One thread comparing rule ids and long resource ids was half a second of a 100k scan.
pub fn sort_findings(findings: &mut [Finding]) {
    use std::cmp::Reverse;
    // A rule's findings share its `Arc`: rules are told apart by that pointer and only
    // the distinct ones are compared (a (severity, rule id) key per finding, hashed
    // twice, was a tenth of a second here). Two pointers to equal rules (findings read
    // back from elsewhere) share a group all the same.
    let mut distinct: HashMap<*const crate::domain::FindingRule, usize> = HashMap::new();
    let mut rules: Vec<&crate::domain::FindingRule> = Vec::new();
    let mut last: Option<(*const crate::domain::FindingRule, usize)> = None;
    let mut of_finding: Vec<usize> = Vec::with_capacity(findings.len());
    for f in findings.iter() {
        let ptr = Arc::as_ptr(&f.rule);
        let d = match last {
            Some((p, d)) if p == ptr => d,
            _ => *distinct.entry(ptr).or_insert_with(|| {
                rules.push(&f.rule);
                rules.len() - 1
            }),
        };
        last = Some((ptr, d));
        of_finding.push(d);
    }
    let key = |d: usize| (Reverse(rules[d].severity), &*rules[d].id);
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_unstable_by(|&a, &b| key(a).cmp(&key(b)));
    let mut group_of_rule = vec![0usize; rules.len()];
    let mut groups = 0;
    for (i, &d) in order.iter().enumerate() {
        if i > 0 && key(order[i - 1]) != key(d) {
            groups += 1;
        }
        group_of_rule[d] = groups;
    }
    let groups = if rules.is_empty() { 0 } else { groups + 1 };
    drop(rules);
    let mut group: Vec<usize> = of_finding.into_iter().map(|d| group_of_rule[d]).collect();
    let mut ends = vec![0usize; groups];
    for &g in &group {
        ends[g] += 1;
    }
    let mut start = 0;
    for end in &mut ends {
        start += *end;
        *end = start;
    }
    // `next[g]`: the first position of group g not yet holding one of its findings.
    let mut next: Vec<usize> = std::iter::once(0).chain(ends.iter().copied()).collect();
    next.pop();
    let starts = next.clone();
    for g in 0..ends.len() {
        while next[g] < ends[g] {
            let h = group[next[g]];
            if h == g {
                next[g] += 1;
            } else {
                findings.swap(next[g], next[h]);
                group.swap(next[g], next[h]);
                next[h] += 1;
            }
        }
    }
    let by_resource = |a: &Finding, b: &Finding| {
        (&a.resource_id, &a.fingerprint, a.details.as_str()).cmp(&(
            &b.resource_id,
            &b.fingerprint,
            b.details.as_str(),
        ))
    };
    let mut rest = &mut *findings;
    let mut work = Vec::with_capacity(ends.len());
    for (s, e) in starts.iter().zip(&ends) {
        let (group, tail) = rest.split_at_mut(e - s);
        work.push(group);
        rest = tail;
    }
    // A small list (most scans) is sorted here; threads are for the large ones.
    let threads = match ends.last().copied().unwrap_or(0) {
        0..4096 => 1,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if threads == 1 {
        work.into_iter()
            .for_each(|g| g.sort_unstable_by(by_resource));
        return;
    }
    // Largest groups first, so no thread is left with a big one at the end.
    work.sort_unstable_by_key(|g| Reverse(g.len()));
    let work = Mutex::new(work.into_iter());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let Some(group) = work.lock().expect("sort queue").next() else {
                    break;
                };
                group.sort_unstable_by(by_resource);
            });
        }
    });
}

/// Run one scan: stream the source, evaluate chunks on `threads` engines, summarize.
/// Memory holds at most `threads` chunks in flight plus one filling buffer per type.
pub async fn scan(
    source: &dyn InventorySource,
    catalogue: Arc<Catalogue>,
    subscription: &SubscriptionId,
    progress: &ProgressReporter,
    threads: usize,
) -> Result<ScanReport, ScanError> {
    let permits = Arc::new(Semaphore::new(threads.max(1)));
    let engines = Arc::new(threads::Pool::new(catalogue.clone(), threads));
    scan_with(source, subscription, progress, permits, engines).await
}

/// `scan`, with evaluation slots and evaluation threads shared with other scans; the
/// rules are the threads' catalogue.
pub async fn scan_with(
    source: &dyn InventorySource,
    subscription: &SubscriptionId,
    progress: &ProgressReporter,
    permits: Arc<Semaphore>,
    engines: EnginePool,
) -> Result<ScanReport, ScanError> {
    let catalogue = engines.catalogue().clone();
    let by_type = catalogue.by_type();
    let needs = Needs::of(&catalogue);
    let Inventory {
        mut resources,
        coverage,
    } = source.list(subscription, &needs);
    // What subscription rules read: projected documents of their types, by type.
    let subscription_rules = catalogue.subscription_rules();
    let mut index = inventory::IndexBuilder::new(&catalogue.inventory_reads());
    let mut inflight = FuturesUnordered::new();
    // Raw JSON until a chunk is dispatched: the conversion to Rego values then runs on
    // the evaluation threads, in parallel, and only for types some rule reads.
    let mut buffers: HashMap<String, Vec<Listed>> = HashMap::new();
    let mut report = ScanReport::default();
    let mut tallies = vec![RuleTally::default(); catalogue.rules().len()];

    let mut merge = |done: Result<ChunkResult, threads::Lost>,
                     report: &mut ScanReport|
     -> Result<(), ScanError> {
        let done = done.map_err(|e| {
            ScanError::new(FailureCode::Internal, format!("rule evaluation task: {e}"))
        })?;
        for (rule, t) in done.tallies {
            tallies[rule].add(&t);
        }
        progress.rules_evaluated(done.evaluations);
        report.findings.extend(done.findings);
        Ok(())
    };

    let dispatch = |rules: Vec<usize>, docs: Vec<Listed>, permit: OwnedSemaphorePermit| {
        engines.run(move |evaluator| {
            // The chunk's documents (one type) share their object keys. A piece is
            // parsed right before its rules run, so its values are still in cache, and
            // let go right after.
            let mut keys = engine::Keys::default();
            let mut docs = docs.into_iter();
            let mut result = ChunkResult::default();
            loop {
                let piece: Vec<Doc> = docs
                    .by_ref()
                    .take(engine::PIECE)
                    .map(|r| {
                        Doc::from_listed(r, &mut keys).expect("id and type checked when listed")
                    })
                    .collect();
                if piece.is_empty() {
                    break;
                }
                result.absorb(evaluate_chunk(evaluator, &rules, piece));
            }
            // Here, not where the result is awaited: the slot frees as the work ends.
            drop(permit);
            result
        })
    };

    // Start the evaluation threads this scan will use while the source starts: the
    // first chunk is ready only after a few hundred resources of one type, and a thread
    // builds its engine first (it loads the program; a catalogue other than the
    // embedded one is compiled by the first, ~0.1 s). A warm pool (a worker's later
    // scans) skips this.
    engines.warm(permits.available_permits());
    progress.phase(Phase::Listing);
    // Full chunks waiting for an evaluation slot: reading goes on while a few wait (a
    // chunk of texts is a few hundred KB), so when a slot frees the next chunk is
    // usually ready, rather than still to be filled from a source that was stopped.
    const READY: usize = 4;
    let mut ready: VecDeque<(Vec<usize>, Vec<Listed>)> = VecDeque::new();
    loop {
        while !ready.is_empty() {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let (rules, docs) = ready.pop_front().expect("a chunk is ready");
            inflight.push(dispatch(rules, docs, permit));
        }
        let next = if ready.len() >= READY {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("open semaphore");
            let (rules, docs) = ready.pop_front().expect("a chunk is ready");
            inflight.push(dispatch(rules, docs, permit));
            continue;
        } else if ready.is_empty() {
            resources.next().await
        } else {
            tokio::select! {
                biased;
                permit = permits.clone().acquire_owned() => {
                    let (rules, docs) = ready.pop_front().expect("a chunk is ready");
                    inflight.push(dispatch(rules, docs, permit.expect("open semaphore")));
                    continue;
                }
                next = resources.next() => next,
            }
        };
        let Some(resource) = next else {
            break;
        };
        let resource = resource?;
        let kind = match (resource.id(), resource.kind()) {
            (Some(_), Some(kind)) => kind.to_ascii_lowercase(),
            _ => {
                return Err(ScanError::new(
                    FailureCode::InvalidInventory,
                    "a resource without a string id and type",
                ))
            }
        };
        report.summary.resources_seen += 1;
        progress.resources_seen(1);
        *report
            .summary
            .resources_by_type
            .entry(kind.clone())
            .or_default() += 1;
        if index.wants(&kind) {
            index.add(&kind, &resource.document());
        }
        let Some(rules) = by_type.get(&kind) else {
            continue;
        };
        let buffer = buffers.entry(kind).or_default();
        buffer.push(resource);
        if buffer.len() >= CHUNK {
            ready.push_back((rules.clone(), std::mem::take(buffer)));
        }
        while let Some(Some(done)) = inflight.next().now_or_never() {
            merge(done, &mut report)?;
        }
    }
    progress.phase(Phase::Evaluating);
    // The subscription rules first (their index is complete once listing ends), then the
    // rest of the chunks, largest first, so the last to finish is a small one.
    if !subscription_rules.is_empty() {
        for (kind, why) in coverage.failed() {
            tracing::warn!(subscription = %subscription, resource_type = %kind, reason = %why, "type not listed completely; subscription rules reading it report indeterminate");
        }
        let view = index.finish(subscription.as_str(), &coverage.listed(&needs.types));
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("open semaphore");
        let rules = subscription_rules.clone();
        inflight.push(engines.run(move |evaluator| {
            let result = evaluate_subscription(evaluator, &rules, &view);
            drop(permit);
            result
        }));
    }
    let mut rest: Vec<(Vec<usize>, Vec<Listed>)> = ready.into_iter().collect();
    rest.extend(
        buffers
            .drain()
            .filter(|(_, docs)| !docs.is_empty())
            .map(|(kind, docs)| (by_type[&kind].clone(), docs)),
    );
    rest.sort_by_key(|(_, docs)| std::cmp::Reverse(docs.len()));
    for (rules, docs) in rest {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("open semaphore");
        inflight.push(dispatch(rules, docs, permit));
    }
    while let Some(done) = inflight.next().await {
        merge(done, &mut report)?;
    }

    sort_findings(&mut report.findings);
    report
        .findings
        .dedup_by(|a, b| a.fingerprint == b.fingerprint);
    let summary = &mut report.summary;
    summary.findings = report.findings.len() as u64;
    for f in &report.findings {
        *summary
            .findings_by_severity
            .entry(f.rule.severity.as_str().to_owned())
            .or_default() += 1;
    }
    // Only rules that were given something: the ledger keeps every Completed forever,
    // and a tally of zeros says nothing a reader cannot infer (see the payload budget in
    // docs/architecture.md).
    summary.rules = catalogue
        .rules()
        .iter()
        .zip(tallies)
        .filter(|(_, t)| t.evaluated > 0)
        .map(|(r, t)| (r.meta.id.clone(), t))
        .collect();
    summary.score = Some(score(&catalogue, &summary.rules));
    Ok(report)
}

/// Mark what `mutes` cover: a (rule, resource) whose every finding is muted leaves the
/// score (neither pass nor fail); the findings stay in the report. Returns, per finding
/// (in report order), the mute that covers it.
pub fn apply_mutes<'m>(
    catalogue: &Catalogue,
    report: &mut ScanReport,
    mutes: &'m MuteList,
) -> Vec<Option<&'m Mute>> {
    let marks: Vec<Option<&Mute>> = report.findings.iter().map(|f| mutes.mute_for(f)).collect();
    let summary = &mut report.summary;
    summary.muted = marks.iter().filter(|m| m.is_some()).count() as u64;
    if summary.muted == 0 {
        return marks;
    }
    // (rule, resource) → whether every finding of it is muted.
    let mut all_muted: HashMap<(&str, &str), bool> = HashMap::new();
    for (f, m) in report.findings.iter().zip(&marks) {
        let e = all_muted
            .entry((&f.rule.id, &f.resource_id))
            .or_insert(true);
        *e &= m.is_some();
    }
    for t in summary.rules.values_mut() {
        t.muted = 0;
    }
    for ((rule, _), muted) in all_muted {
        if muted {
            if let Some(t) = summary.rules.get_mut(rule) {
                t.muted += 1;
            }
        }
    }
    summary.score = Some(score(catalogue, &summary.rules));
    marks
}

/// Severity-weighted share of (rule, resource) checks that passed, 0–100. Errored and
/// indeterminate checks count as neither pass nor fail: they are reported, not scored.
pub fn score(catalogue: &Catalogue, tallies: &BTreeMap<String, RuleTally>) -> f64 {
    let (mut total, mut failed) = (0.0, 0.0);
    for rule in catalogue.rules() {
        let Some(t) = tallies.get(&rule.meta.id) else {
            continue;
        };
        let w = rule.meta.severity.weight();
        total += w * t
            .evaluated
            .saturating_sub(t.errored + t.indeterminate + t.muted) as f64;
        failed += w * t.failed.saturating_sub(t.muted) as f64;
    }
    if total == 0.0 {
        return 100.0;
    }
    ((1.0 - failed / total) * 1000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_specs() {
        assert_eq!(
            "fixture:demo/tenant".parse::<SourceSpec>().unwrap(),
            SourceSpec::Fixture {
                path: "demo/tenant".into(),
                delay: Duration::ZERO
            }
        );
        assert_eq!(
            "fixture:/x?delay_ms=250".parse::<SourceSpec>().unwrap(),
            SourceSpec::Fixture {
                path: "/x".into(),
                delay: Duration::from_millis(250)
            }
        );
        assert_eq!("azure".parse::<SourceSpec>().unwrap(), SourceSpec::Azure);
        assert!("fixture:".parse::<SourceSpec>().is_err());
        assert!("fixture:/x?speed=1".parse::<SourceSpec>().is_err());
        assert!("s3://bucket".parse::<SourceSpec>().is_err());
    }

    /// The grouped, parallel sort gives exactly the order of one comparison sort over
    /// (severity worst first, rule, resource, fingerprint, details), ties and
    /// same-fingerprint duplicates included.
    #[test]
    fn findings_sort_in_report_order() {
        use crate::domain::{FindingRule, Severity};
        let mut rng = fastrand::Rng::with_seed(7);
        let rules: Vec<Arc<FindingRule>> = (0..40)
            .map(|i| {
                Arc::new(FindingRule {
                    id: format!("AZ-T-{:03}", rng.u32(..60)).into(),
                    name: "n".into(),
                    severity: Severity::ALL[i % Severity::ALL.len()],
                    category: "c".into(),
                    description: "d".into(),
                    remediation: "r".into(),
                    frameworks: Arc::new(serde_json::json!({})),
                })
            })
            .collect();
        let findings: Vec<Finding> = (0..20_000)
            .map(|_| {
                let rule = rules[rng.usize(..rules.len())].clone();
                let resource = format!(
                    "/subscriptions/s/resourceGroups/rg/providers/T/x/r{}",
                    rng.u32(..500)
                );
                let sub = rng.u8(..3).to_string();
                Finding {
                    fingerprint: Finding::fingerprint(&rule.id, &resource, &sub),
                    rule,
                    resource_id: resource.as_str().into(),
                    resource_name: "r".into(),
                    resource_type: "T/x".into(),
                    details: serde_json::json!({"n": rng.u8(..3)}).into(),
                    detected_at: None,
                }
            })
            .collect();
        // A small list (sorted on this thread) and a large one (on every core).
        for n in [1_000, findings.len()] {
            let mut mine = findings[..n].to_vec();
            let mut want = mine.clone();
            sort_reference(&mut want);
            sort_findings(&mut mine);
            assert!(mine == want, "{n} findings");
        }
    }

    fn sort_reference(want: &mut [Finding]) {
        want.sort_by(|a, b| {
            (
                b.rule.severity,
                &a.rule.id,
                &a.resource_id,
                &a.fingerprint,
                a.details.as_str(),
            )
                .cmp(&(
                    a.rule.severity,
                    &b.rule.id,
                    &b.resource_id,
                    &b.fingerprint,
                    b.details.as_str(),
                ))
        });
    }
}
