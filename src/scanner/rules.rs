//! The rule catalogue: Rego files under `rules/`, each with its metadata as data, loaded
//! and compiled once into one `regorus` engine that evaluators clone.
//!
//! A rule is a Rego package `scanledger.rules.<category>.<name>` that defines
//! - `metadata` (an object; see [`RuleMeta`]),
//! - `deny`, a set of `[id, sub_item, details]` entries (`lib.finding`; objects with
//!   those keys are read too), one per offending (resource, sub-item) among
//!   `input.resources`,
//! - optionally `indeterminate`, a set of `[id, reason]` entries (`lib.undecided`, or
//!   `{"id", "reason"}` objects) for resources the rule cannot decide (data a call
//!   failed to fetch).
//!
//! `rules/lib/` holds shared helpers (package `scanledger.lib`). See docs/rule-authoring.md.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan;
use crate::domain::Severity;

/// Framework keys a rule may map to: `cis_azure` is the CIS Microsoft Azure Foundations
/// Benchmark v2.1.0, `cis_v3` the same benchmark's v3.0.0 (which renumbers every section),
/// `nist_csf` NIST CSF 1.1, `iso27001` ISO/IEC 27001:2022 Annex A.
pub const FRAMEWORKS: [&str; 4] = ["cis_azure", "cis_v3", "nist_csf", "iso27001"];

/// Categories of the catalogue (the first part of a rule's package after `rules`).
pub const CATEGORIES: [&str; 11] = [
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
];

/// A rule's metadata, as its `metadata` object spells it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleMeta {
    /// Stable id, e.g. `AZ-STG-001`: findings and history are keyed by it.
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub category: String,
    /// ARM types the rule reads, e.g. `Microsoft.Storage/storageAccounts`.
    pub resource_types: Vec<String>,
    /// Framework → control ids; keys among [`FRAMEWORKS`].
    pub frameworks: BTreeMap<String, Vec<String>>,
    pub description: String,
    pub remediation: Remediation,
    /// Child or extension documents the rule reads under `related`, by path relative
    /// to the resource id → the ARM `api-version` to fetch it with.
    #[serde(default)]
    pub related: BTreeMap<String, String>,
    /// What the rule is evaluated on: each resource of its types (the default), or the
    /// whole subscription's inventory index (`input.inventory`, see [`Scope`]).
    #[serde(default)]
    pub scope: Scope,
    /// Property paths the rule reads, by type (`properties.flowLogs`,
    /// `properties.securityRules[].properties.access`; `[]` is every element of an
    /// array). Checked against ARM's published schema (tests/schema.rs). For a
    /// subscription rule it is also what the inventory index keeps of each resource
    /// besides `id`, `name`, `type` and `location`: a path not named here is absent.
    #[serde(default)]
    pub reads: BTreeMap<String, Vec<String>>,
}

/// What a rule is evaluated on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `input.resources`: a batch of documents of the rule's types; findings name them.
    #[default]
    Resource,
    /// `input.inventory`: every resource of the rule's types in the subscription
    /// (projected to `reads`), and which types the source listed completely; findings
    /// name the subscription (`/subscriptions/<id>`) or one of its regions
    /// (`/subscriptions/<id>/locations/<region>`). Evaluated once per scan, after
    /// listing; indeterminate when the source could not list one of its types.
    Subscription,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    /// Steps in the Azure portal.
    pub portal: String,
    /// An `az` CLI command.
    pub cli: String,
}

impl Remediation {
    /// The single text stored with a finding.
    pub fn text(&self) -> String {
        format!("{}\nCLI: {}", self.portal, self.cli)
    }
}

/// A rule's metadata as every finding of it carries it, allocated once per rule.
fn finding_rule(meta: &RuleMeta) -> std::sync::Arc<crate::domain::FindingRule> {
    std::sync::Arc::new(crate::domain::FindingRule {
        id: meta.id.as_str().into(),
        name: meta.title.as_str().into(),
        severity: meta.severity,
        category: meta.category.as_str().into(),
        description: meta.description.as_str().into(),
        remediation: meta.remediation.text().into(),
        frameworks: std::sync::Arc::new(serde_json::to_value(&meta.frameworks).unwrap_or_default()),
    })
}

/// Where a rule's file came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The catalogue built into the binary (`rules/` at build time).
    Embedded,
    /// A file of a rules folder (`--rules-dir`): its path.
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Embedded => f.write_str("embedded"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

// `rules/` as (path relative to it, text), generated by build.rs.
include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));

/// The embedded catalogue's program, compiled by the build script (empty if it could not
/// be), and the entry points it was compiled for, one per line (`plan::entry_points`).
static EMBEDDED_PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/embedded_program.bin"));
static EMBEDDED_ENTRIES: &str = include_str!(concat!(env!("OUT_DIR"), "/embedded_program.entries"));
/// Each embedded rule file's package and metadata as the build script read them
/// (`rel`, package, metadata JSON; tab-separated, a line per file; empty if not read).
static EMBEDDED_METADATA: &str = include_str!(concat!(env!("OUT_DIR"), "/embedded_metadata.tsv"));

/// `EMBEDDED_METADATA` by file, if the build script read every rule file.
fn embedded_metadata() -> Option<HashMap<&'static str, (&'static str, &'static str)>> {
    EMBEDDED_METADATA
        .lines()
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            Some((fields.next()?, (fields.next()?, fields.next()?)))
        })
        .collect::<Option<HashMap<_, _>>>()
        .filter(|known| !known.is_empty())
}

/// One file of a catalogue: a `.rego` module or a rule's `.fixtures.json`.
#[derive(Clone, Debug)]
struct SourceFile {
    /// Relative to the catalogue root, `/`-separated.
    rel: String,
    text: std::sync::Arc<str>,
    origin: Origin,
}

fn embedded_files() -> Vec<SourceFile> {
    EMBEDDED_RULES
        .iter()
        .map(|(rel, text)| SourceFile {
            rel: (*rel).to_owned(),
            text: (*text).into(),
            origin: Origin::Embedded,
        })
        .collect()
}

/// The first `package` line of a module (rule files are matched on it for overrides).
fn package_line(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .map(str::trim)
}

/// One loaded rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub meta: RuleMeta,
    pub shared: std::sync::Arc<crate::domain::FindingRule>,
    /// The file it came from, relative to the catalogue root.
    pub file: PathBuf,
    /// Embedded in the binary, or the file of a rules folder.
    pub origin: Origin,
    /// Its `<name>.fixtures.json` beside it (from the same origin), for `rules test`.
    pub fixtures: Option<std::sync::Arc<str>>,
    /// `data.scanledger.rules.<category>.<name>`.
    pub package: String,
    pub(crate) deny_path: String,
    pub(crate) indeterminate_path: Option<String>,
    /// Lower-cased `resource_types`.
    pub(crate) types: Vec<String>,
}

impl Rule {
    /// This rule's own `reads`: lower-cased type → paths, for every type it reads.
    pub fn own_reads(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.types
            .iter()
            .map(|t| {
                let paths = self
                    .meta
                    .reads
                    .iter()
                    .filter(|(kind, _)| kind.eq_ignore_ascii_case(t))
                    .flat_map(|(_, p)| p.iter().cloned())
                    .collect();
                (t.clone(), paths)
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    // The io error is the source: printed once by whoever prints the chain.
    #[error("cannot read rules at {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Rule { file: PathBuf, message: String },
    #[error("no rules found in {0}")]
    Empty(String),
    #[error("rule filter {0:?} matches no rule id or category")]
    UnknownFilter(String),
}

/// How scans evaluate the rules. Both are exact: a rule that raises an error on a
/// resource is reported `errored` for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RuleEngine {
    /// regorus' bytecode VM with strict rule errors (our patch, vendor/regorus): about
    /// four times faster than the interpreter. `rules test` and the findings-equality
    /// tests check it against the interpreter.
    #[default]
    Bytecode,
    /// regorus' interpreter: the reference the bytecode VM is checked against.
    #[value(alias = "reference")]
    Interpreter,
}

/// Every rule under a folder, parsed into an interpreter engine and compiled to one
/// bytecode program with an entry point per rule's `deny` and `indeterminate`.
///
/// The catalogue itself holds no Rego value: regorus is built without atomic reference
/// counts (`arc`), so its values, engines and programs cannot leave the thread that made
/// them. Each evaluator (`engine::Evaluator`, one per evaluation thread) builds its own
/// from what is here: the sources, and the program compiled once and kept serialized.
#[derive(Clone)]
pub struct Catalogue {
    pub root: PathBuf,
    rules: Vec<Rule>,
    /// What scans use; `rules test` checks the two agree on every fixture.
    pub evaluation: RuleEngine,
    /// Every `.rego` file (path, text), to parse engines and the program from.
    sources: std::sync::Arc<Vec<(String, String)>>,
    /// The bytecode of the rules and their type queries, compiled when first asked for
    /// (shared by this catalogue's clones, reset by `select`).
    compiled: std::sync::Arc<std::sync::OnceLock<Compiled>>,
}

/// What evaluators are built from.
pub(crate) struct Compiled {
    /// The program, serialized (`Program::serialize_binary`); `None` when the catalogue
    /// does not compile (evaluation then falls back to the interpreter).
    pub(crate) program: Option<std::borrow::Cow<'static, [u8]>>,
    /// Lower-cased type → one query for all of the type's rules.
    /// Shared by every evaluator.
    pub(crate) queries: std::sync::Arc<HashMap<String, TypeQuery>>,
}

/// One query that evaluates every rule of a resource type on a chunk: an array of each
/// rule's `deny` set and, where declared, its `indeterminate` set. Complete rules a
/// type's rules share (e.g. `lib.compute.models`) are then evaluated once per
/// chunk instead of once per rule, and the engine is entered once instead of ~10 times.
#[derive(Clone, Debug)]
pub(crate) struct TypeQuery {
    /// `data.scanledger.bytype.t<n>.results`.
    pub(crate) path: String,
    /// What each element of `results` is: (rule index, is it `indeterminate`).
    pub(crate) parts: Vec<(usize, bool)>,
    /// The rules it covers, in catalogue order (as `by_type` lists them).
    pub(crate) rules: Vec<usize>,
}

/// What the plan (`super::plan`, shared with the build script) reads of `rules`.
fn planned(rules: &[Rule]) -> Vec<plan::PlanRule<'_>> {
    rules
        .iter()
        .map(|r| plan::PlanRule {
            deny_path: &r.deny_path,
            indeterminate_path: r.indeterminate_path.as_deref(),
            types: &r.types,
            per_resource: r.meta.scope == Scope::Resource,
        })
        .collect()
}

/// What `rules` compile into besides the sources, from one pass of the plan.
struct Plan {
    /// (name, Rego text) of the type queries' modules.
    modules: Vec<(String, String)>,
    /// Lower-cased type → its query.
    queries: HashMap<String, TypeQuery>,
    /// The program's entry points (`plan::entry_points`).
    entries: Vec<String>,
}

fn plan_of(rules: &[Rule]) -> Plan {
    let planned = planned(rules);
    let planned_queries = plan::type_queries(&planned);
    let entries = plan::entry_points(&planned, &planned_queries);
    let mut modules = Vec::new();
    let mut queries = HashMap::new();
    for q in planned_queries {
        modules.push(q.module);
        queries.insert(
            q.kind,
            TypeQuery {
                path: q.path,
                parts: q.parts,
                rules: q.rules,
            },
        );
    }
    Plan {
        modules,
        queries,
        entries,
    }
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("root", &self.root)
            .field("rules", &self.rules.len())
            .finish()
    }
}

/// Every `.rego` and `.fixtures.json` file under `root`, read.
fn folder_files(root: &Path) -> Result<Vec<SourceFile>, CatalogueError> {
    let mut paths = Vec::new();
    rule_files(root, &mut paths)?;
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| CatalogueError::Io {
                path: path.clone(),
                source,
            })?;
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            Ok(SourceFile {
                rel,
                text: text.into(),
                origin: Origin::File(path),
            })
        })
        .collect()
}

fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CatalogueError> {
    let io = |source| CatalogueError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if path.is_dir() {
            rule_files(&path, out)?;
        } else if name
            .as_deref()
            .is_some_and(|n| n.ends_with(".rego") || n.ends_with(".fixtures.json"))
        {
            out.push(path);
        }
    }
    Ok(())
}

impl Catalogue {
    /// Load and compile every `.rego` file under `root` alone (no embedded rule); `lib/`
    /// holds helpers.
    pub fn load(root: &Path) -> Result<Self, CatalogueError> {
        Self::from_files(folder_files(root)?, root.display().to_string())
    }

    /// The catalogue built into the binary.
    pub fn embedded() -> Result<Self, CatalogueError> {
        // Packages and metadata as the build script read them, so loading parses no Rego
        // (the program is compiled already too: `Catalogue::compiled`).
        Self::from_files_with(
            embedded_files(),
            "the embedded catalogue".into(),
            embedded_metadata().as_ref(),
        )
    }

    /// The embedded catalogue with a folder's files over it: a file at the same
    /// relative path, or a rule of the same package or id, replaces the embedded one;
    /// others are added.
    pub fn layered(dir: &Path) -> Result<Self, CatalogueError> {
        let extra = folder_files(dir)?;
        let packages: BTreeSet<&str> = extra
            .iter()
            .filter(|f| f.rel.ends_with(".rego"))
            .filter_map(|f| package_line(&f.text))
            .collect();
        let paths: BTreeSet<&str> = extra.iter().map(|f| f.rel.as_str()).collect();
        // An embedded rule replaced by package goes with its fixtures.
        let mut dropped_stems = BTreeSet::new();
        let mut files: Vec<SourceFile> = Vec::new();
        for f in embedded_files() {
            let replaced = paths.contains(f.rel.as_str())
                || (f.rel.ends_with(".rego")
                    && package_line(&f.text).is_some_and(|p| packages.contains(p)));
            if replaced {
                if let Some(stem) = f.rel.strip_suffix(".rego") {
                    dropped_stems.insert(stem.to_owned());
                }
            } else {
                files.push(f);
            }
        }
        files.retain(|f| {
            f.rel
                .strip_suffix(".fixtures.json")
                .is_none_or(|stem| !dropped_stems.contains(stem) || paths.contains(f.rel.as_str()))
        });
        files.extend(extra.iter().cloned());
        Self::from_files(
            files,
            format!("the embedded catalogue and {}", dir.display()),
        )
    }

    fn from_files(all: Vec<SourceFile>, described: String) -> Result<Self, CatalogueError> {
        Self::from_files_with(all, described, None)
    }

    /// `from_files`; `known` gives the package and metadata (JSON) of every rule file by
    /// relative path, read when the binary was built (only for the embedded files: a
    /// file it does not name is an error), so no Rego is parsed.
    fn from_files_with(
        all: Vec<SourceFile>,
        described: String,
        known: Option<&HashMap<&str, (&str, &str)>>,
    ) -> Result<Self, CatalogueError> {
        let root = PathBuf::from(&described);
        let fixtures: HashMap<String, (Origin, std::sync::Arc<str>)> = all
            .iter()
            .filter_map(|f| {
                let stem = f.rel.strip_suffix(".fixtures.json")?;
                Some((stem.to_owned(), (f.origin.clone(), f.text.clone())))
            })
            .collect();
        let files: Vec<&SourceFile> = all.iter().filter(|f| f.rel.ends_with(".rego")).collect();
        let mut engine = regorus::Engine::new();
        // Builtin errors (e.g. `to_number("x")`) become evaluation errors we report as
        // `errored`, never silent undefined values that would read as a pass.
        engine.set_strict_builtin_errors(true);
        let mut pending = Vec::new();
        let mut sources = Vec::new();
        for file in &files {
            let rel = PathBuf::from(&file.rel);
            let source = file.text.to_string();
            // Errors name the file as the user knows it: its path, or its embedded path.
            let shown = match &file.origin {
                Origin::Embedded => rel.clone(),
                Origin::File(path) => path.clone(),
            };
            sources.push((file.rel.clone(), source.clone()));
            let package = match known {
                Some(_) if rel.starts_with("lib") => continue,
                Some(known) => match known.get(file.rel.as_str()) {
                    Some((package, _)) => (*package).to_owned(),
                    None => {
                        return Err(CatalogueError::Rule {
                            file: shown.clone(),
                            message: "not read when the binary was built".into(),
                        })
                    }
                },
                None => engine
                    .add_policy(file.rel.clone(), source.clone())
                    .map_err(|e| CatalogueError::Rule {
                        file: shown.clone(),
                        message: format!("{e:#}"),
                    })?,
            };
            if rel.starts_with("lib") {
                continue;
            }
            pending.push((rel, shown, file.origin.clone(), package, source, &file.rel));
        }
        let mut rules: Vec<Rule> = Vec::new();
        for (rel, shown, origin, package, source, key) in pending {
            let bad = |message: String| CatalogueError::Rule {
                file: shown.clone(),
                message,
            };
            let Some(tail) = package.strip_prefix("data.scanledger.rules.") else {
                return Err(bad(format!(
                    "package {package} is not under data.scanledger.rules"
                )));
            };
            let meta_json: serde_json::Value = match known.and_then(|k| k.get(key.as_str())) {
                Some((_, json)) => {
                    serde_json::from_str(json).map_err(|e| bad(format!("metadata: {e}")))?
                }
                None => {
                    let meta_value = engine
                        .eval_rule(format!("{package}.metadata"))
                        .map_err(|e| bad(format!("metadata: {e:#}")))?;
                    serde_json::to_value(&meta_value).map_err(|e| bad(format!("metadata: {e}")))?
                }
            };
            let meta: RuleMeta = serde_path_to_error::deserialize(meta_json)
                .map_err(|e| bad(format!("metadata: {e}")))?;
            validate(&meta, tail).map_err(bad)?;
            if !plan::declares(&source, "deny") {
                return Err(bad("defines no `deny` rule".into()));
            }
            let indeterminate_path = plan::declares(&source, "indeterminate")
                .then(|| format!("{package}.indeterminate"));
            let stem = rel.with_extension("").to_string_lossy().replace('\\', "/");
            // A fixtures file counts only from the rule's own origin.
            let fixtures = fixtures
                .get(&stem)
                .filter(|(o, _)| {
                    matches!((o, &origin), (Origin::Embedded, Origin::Embedded))
                        || matches!((o, &origin), (Origin::File(_), Origin::File(_)))
                })
                .map(|(_, text)| text.clone());
            rules.push(Rule {
                origin,
                fixtures,
                shared: finding_rule(&meta),
                types: meta
                    .resource_types
                    .iter()
                    .map(|t| t.to_ascii_lowercase())
                    .collect(),
                deny_path: format!("{package}.deny"),
                indeterminate_path,
                package,
                file: rel,
                meta,
            });
        }
        if rules.is_empty() {
            return Err(CatalogueError::Empty(described));
        }
        // A folder's rule overrides the embedded rule of the same id (its module stays
        // parsed but is never evaluated); two rules of one origin sharing an id is an error.
        let overridden: BTreeSet<String> = rules
            .iter()
            .filter(|r| r.origin != Origin::Embedded)
            .map(|r| r.meta.id.clone())
            .collect();
        rules.retain(|r| r.origin != Origin::Embedded || !overridden.contains(&r.meta.id));
        let mut seen = BTreeSet::new();
        for r in &rules {
            if !seen.insert(r.meta.id.clone()) {
                return Err(CatalogueError::Rule {
                    file: match &r.origin {
                        Origin::Embedded => r.file.clone(),
                        Origin::File(path) => path.clone(),
                    },
                    message: format!("duplicate rule id {}", r.meta.id),
                });
            }
        }
        rules.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
        // The engine that read the metadata is dropped here (see the type's comment).
        drop(engine);
        Ok(Self {
            root,
            rules,
            evaluation: RuleEngine::default(),
            sources: std::sync::Arc::new(sources),
            compiled: Default::default(),
        })
    }

    /// The program and type queries, compiled on first use. Serializing keeps the
    /// compiled program free of Rego values, so it can be shared; an evaluator
    /// deserializes its own copy (~ms) instead of parsing and compiling (~0.1 s).
    pub(crate) fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            if let Some(embedded) = self.embedded_program() {
                return embedded;
            }
            self.compile_now()
        })
    }

    /// The program the build script compiled, if this catalogue is the embedded one
    /// exactly: the same sources (no folder over it) and the same plan (no selection).
    fn embedded_program(&self) -> Option<Compiled> {
        let embedded_sources = EMBEDDED_RULES
            .iter()
            .filter(|(rel, _)| rel.ends_with(".rego"));
        let same_sources = self
            .sources
            .iter()
            .map(|(rel, text)| (rel.as_str(), text.as_str()))
            .eq(embedded_sources.map(|(rel, text)| (*rel, *text)));
        if EMBEDDED_PROGRAM.is_empty() || !same_sources {
            return None;
        }
        let plan = plan_of(&self.rules);
        (plan.entries.join("\n") == EMBEDDED_ENTRIES).then(|| Compiled {
            program: Some(std::borrow::Cow::Borrowed(EMBEDDED_PROGRAM)),
            queries: std::sync::Arc::new(plan.queries),
        })
    }

    /// Compile the program now (any catalogue; the embedded one is compiled when the
    /// binary is built).
    pub(crate) fn compile_now(&self) -> Compiled {
        let plan = plan_of(&self.rules);
        let mut engine = self.parse_with(plan.modules);
        let program = compile(&mut engine, &plan.entries).and_then(|program| {
            program
                .serialize_binary()
                .map(std::borrow::Cow::Owned)
                .map_err(|e| tracing::warn!(error = %e, "the compiled rules could not be serialized; evaluating them with the (slower) interpreter"))
                .ok()
        });
        Compiled {
            program,
            queries: std::sync::Arc::new(plan.queries),
        }
    }

    /// Every source and the type queries of the selected rules, parsed.
    pub(crate) fn parse_with_type_queries(&self) -> (regorus::Engine, HashMap<String, TypeQuery>) {
        let plan = plan_of(&self.rules);
        (self.parse_with(plan.modules), plan.queries)
    }

    /// Every source and `modules`, parsed.
    fn parse_with(&self, modules: Vec<(String, String)>) -> regorus::Engine {
        let mut engine = self.parse();
        for (path, text) in modules {
            engine
                .add_policy(path, text)
                .expect("generated type queries parse");
        }
        engine
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every source parsed into a fresh interpreter engine.
    pub(crate) fn parse(&self) -> regorus::Engine {
        let mut engine = regorus::Engine::new();
        // Builtin errors (e.g. `to_number("x")`) become evaluation errors we report as
        // `errored`, never silent undefined values that would read as a pass.
        engine.set_strict_builtin_errors(true);
        for (path, text) in self.sources.iter() {
            engine
                .add_policy(path.clone(), text.clone())
                .expect("the sources parsed when the catalogue was loaded");
        }
        engine
    }

    /// Keep only rules whose id or category is named (case-insensitive); empty keeps all.
    pub fn select(mut self, filter: &[String]) -> Result<Self, CatalogueError> {
        if filter.is_empty() {
            return Ok(self);
        }
        for f in filter {
            if !self.rules.iter().any(|r| matches(r, f)) {
                return Err(CatalogueError::UnknownFilter(f.clone()));
            }
        }
        self.rules.retain(|r| filter.iter().any(|f| matches(r, f)));
        // They index the rules: compiled again for the selection.
        self.compiled = Default::default();
        Ok(self)
    }

    /// Lower-cased resource type → indexes of the per-resource rules that read it.
    pub(crate) fn by_type(&self) -> HashMap<String, Vec<usize>> {
        let mut map: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in self.rules.iter().enumerate() {
            if r.meta.scope != Scope::Resource {
                continue;
            }
            for t in &r.types {
                map.entry(t.clone()).or_default().push(i);
            }
        }
        map
    }

    /// Indexes of the subscription-scope rules, in catalogue order.
    pub fn subscription_rules(&self) -> Vec<usize> {
        (0..self.rules.len())
            .filter(|&i| self.rules[i].meta.scope == Scope::Subscription)
            .collect()
    }

    /// What the inventory index keeps: lower-cased type → the property paths the
    /// subscription rules reading it declared (union; empty: `id`, `name`, `type` and
    /// `location` only). Types no subscription rule reads are not in it.
    pub fn inventory_reads(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in &self.rules {
            if r.meta.scope != Scope::Subscription {
                continue;
            }
            for t in &r.types {
                let paths = map.entry(t.clone()).or_default();
                for (kind, read) in &r.meta.reads {
                    if kind.eq_ignore_ascii_case(t) {
                        paths.extend(read.iter().cloned());
                    }
                }
            }
        }
        map
    }

    /// Lower-cased type → related path → api-version, over the selected rules.
    pub fn related(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut map: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for r in &self.rules {
            for t in &r.types {
                for (path, version) in &r.meta.related {
                    map.entry(t.clone())
                        .or_default()
                        .insert(path.clone(), version.clone());
                }
            }
        }
        map
    }

    /// The ARM types any selected rule reads (as the rules spell them).
    pub fn resource_types(&self) -> BTreeSet<String> {
        self.rules
            .iter()
            .flat_map(|r| r.meta.resource_types.iter().cloned())
            .collect()
    }
}

fn compile(
    engine: &mut regorus::Engine,
    entry_points: &[String],
) -> Option<std::sync::Arc<regorus::rvm::program::Program>> {
    let entry_points: Vec<&str> = entry_points.iter().map(String::as_str).collect();
    let first: regorus::Rc<str> = entry_points.first()?.to_string().into();
    let result = engine
        .compile_with_entrypoint(&first)
        .and_then(|policy| compile_program(&policy, &entry_points));
    match result {
        Ok(compiled) => Some(compiled),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "the rules could not be compiled to bytecode; evaluating them with the (slower) interpreter");
            None
        }
    }
}

/// The bytecode of `policy`, with one-line helpers inlined; without inlining if that
/// does not compile (an inlined call takes registers in its caller's window, 255 per
/// body, so a body with very many calls can overflow where calls did not).
fn compile_program(
    policy: &regorus::CompiledPolicy,
    entry_points: &[&str],
) -> anyhow::Result<std::sync::Arc<regorus::rvm::program::Program>> {
    use regorus::languages::rego::compiler::Compiler;
    Compiler::compile_from_policy_inlining(policy, entry_points).or_else(|e| {
        tracing::debug!(error = %format!("{e:#}"), "compiling without inlining");
        Compiler::compile_from_policy(policy, entry_points).map_err(|e| e.into_anyhow())
    })
}

fn matches(rule: &Rule, filter: &str) -> bool {
    rule.meta.id.eq_ignore_ascii_case(filter) || rule.meta.category.eq_ignore_ascii_case(filter)
}

fn validate(meta: &RuleMeta, package_tail: &str) -> Result<(), String> {
    let id_ok = {
        let parts: Vec<&str> = meta.id.split('-').collect();
        parts.len() == 3
            && parts[0] == "AZ"
            && !parts[1].is_empty()
            && parts[1].bytes().all(|b| b.is_ascii_uppercase())
            && parts[2].len() == 3
            && parts[2].bytes().all(|b| b.is_ascii_digit())
    };
    if !id_ok {
        return Err(format!("id {:?} is not of the form AZ-XXX-000", meta.id));
    }
    if !CATEGORIES.contains(&meta.category.as_str()) {
        return Err(format!(
            "category {:?} is not one of {CATEGORIES:?}",
            meta.category
        ));
    }
    let category_of_package = package_tail.split('.').next().unwrap_or_default();
    if category_of_package != meta.category {
        return Err(format!(
            "category {:?} differs from the package's {category_of_package:?}",
            meta.category
        ));
    }
    for (field, value) in [
        ("title", &meta.title),
        ("description", &meta.description),
        ("remediation.portal", &meta.remediation.portal),
        ("remediation.cli", &meta.remediation.cli),
    ] {
        if value.trim().is_empty() {
            return Err(format!("{field} is empty"));
        }
    }
    if !meta.remediation.cli.trim_start().starts_with("az ") {
        return Err("remediation.cli must be an `az` command".into());
    }
    if meta.resource_types.is_empty()
        || meta
            .resource_types
            .iter()
            .any(|t| t.split('/').count() < 2 || t.contains(' '))
    {
        return Err("resource_types must list ARM types like Namespace/type".into());
    }
    if let Some(k) = meta
        .frameworks
        .keys()
        .find(|k| !FRAMEWORKS.contains(&k.as_str()))
    {
        return Err(format!("framework {k:?} is not one of {FRAMEWORKS:?}"));
    }
    if meta.frameworks.values().all(|ids| ids.is_empty()) {
        return Err("maps to no framework control".into());
    }
    for (kind, paths) in &meta.reads {
        if !meta
            .resource_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(kind))
        {
            return Err(format!(
                "reads names {kind:?}, which is not in resource_types"
            ));
        }
        for path in paths {
            if let Err(e) = super::inventory::parse_path(path) {
                return Err(format!("reads {kind:?}: {e}"));
            }
        }
    }
    if meta.scope == Scope::Subscription && !meta.related.is_empty() {
        return Err(
            "a subscription rule cannot declare related documents: list the child type in resource_types instead"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // 45 calls in one body: four registers each as calls, seven each inlined (the window
    // holds 255). The catalogue's compile falls back to calls and the answer is the same.
    #[test]
    fn a_body_too_large_to_inline_is_compiled_with_calls() {
        let calls: String = (0..45)
            .map(|i| format!("    v{i} := val(input.r, \"k{i}\")\n"))
            .collect();
        let sum: Vec<String> = (0..45).map(|i| format!("v{i}")).collect();
        let policy = format!(
            "package t\nimport rego.v1\n\nval(r, k) := object.get(r, [\"p\", k], 0)\n\n\
             total := x if {{\n{calls}    x := sum([{}])\n}}\n",
            sum.join(", ")
        );
        let mut engine = regorus::Engine::new();
        engine.add_policy("t.rego".into(), policy).unwrap();
        let compiled = engine
            .compile_with_entrypoint(&"data.t.total".into())
            .unwrap();
        use regorus::languages::rego::compiler::Compiler;
        assert!(
            Compiler::compile_from_policy_inlining(&compiled, &["data.t.total"]).is_err(),
            "inlined, the body should overflow its registers"
        );
        let program = compile_program(&compiled, &["data.t.total"]).unwrap();
        let mut vm = regorus::rvm::vm::RegoVM::new();
        vm.load_program(program);
        vm.set_strict_builtin_errors(true);
        vm.set_strict_rule_errors(true);
        let input: serde_json::Value = serde_json::json!({"r": {"p": {"k3": 5, "k44": 2}}});
        vm.set_input(input.into());
        let total = vm.execute_entry_point_by_name("data.t.total").unwrap();
        assert_eq!(total, regorus::Value::from(7u64));
    }

    /// The embedded catalogue, loaded from the packages and metadata the build script
    /// read, is the catalogue its files give when parsed and evaluated here.
    #[test]
    fn the_embedded_catalogue_read_when_building_is_the_one_its_files_give() {
        let known = embedded_metadata().expect("the build script read the metadata");
        let built = Catalogue::embedded().unwrap();
        let parsed =
            Catalogue::from_files(embedded_files(), "the embedded catalogue".into()).unwrap();
        assert_eq!(known.len(), built.rules.len());
        assert_eq!(format!("{:?}", built.rules), format!("{:?}", parsed.rules));
        assert_eq!(built.sources, parsed.sources);
        assert_eq!(built.root, parsed.root);
    }

    /// The embedded catalogue runs the program the build script compiled, and that
    /// program is the one the scanner compiles from the same rules; a catalogue that is
    /// not exactly the embedded one is compiled when loaded.
    #[test]
    fn the_serialized_program_is_the_compiled_one() {
        let catalogue = Catalogue::embedded().unwrap();
        let compiled = catalogue.compiled();
        assert!(
            matches!(compiled.program, Some(std::borrow::Cow::Borrowed(_))),
            "the embedded catalogue was compiled again"
        );
        let selected = Catalogue::embedded()
            .unwrap()
            .select(&["network".into()])
            .unwrap();
        assert!(matches!(
            selected.compiled().program,
            Some(std::borrow::Cow::Owned(_))
        ));
        let plan = plan_of(&catalogue.rules);
        let queries = plan.queries;
        let mut engine = catalogue.parse_with(plan.modules);
        let program = compile(&mut engine, &plan.entries).unwrap();
        let regorus::rvm::program::DeserializationResult::Complete(copy) =
            regorus::rvm::program::Program::deserialize_binary(
                compiled.program.as_deref().unwrap(),
            )
            .unwrap()
        else {
            panic!("the serialized program needs recompiling");
        };
        assert!(!copy.literals.is_empty());
        assert_eq!(copy.literals, program.literals);
        assert_eq!(copy.rule_tree, program.rule_tree);
        assert_eq!(
            format!("{:?}", copy.instructions),
            format!("{:?}", program.instructions)
        );
        assert_eq!(copy.entry_points, program.entry_points);
        assert_eq!(compiled.queries.len(), queries.len());
        assert!(compiled
            .queries
            .contains_key("microsoft.storage/storageaccounts"));
    }

    #[test]
    fn a_rules_dir_adds_rules_and_replaces_embedded_ones_by_path() {
        let embedded = Catalogue::embedded().unwrap();
        assert!(embedded
            .rules()
            .iter()
            .all(|r| r.origin == Origin::Embedded));
        assert!(embedded.rules().iter().all(|r| r.fixtures.is_some()));
        let dir = std::env::temp_dir().join(format!("scanledger-layered-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let (_, https) = EMBEDDED_RULES
            .iter()
            .find(|(rel, _)| *rel == "storage/https_only.rego")
            .unwrap();
        // Same path: replaces the embedded rule, and its embedded fixtures go with it.
        std::fs::write(dir.join("storage/https_only.rego"), https).unwrap();
        // A new id in a new package: added.
        let added = https
            .replace("AZ-STG-002", "AZ-STG-900")
            .replace("storage.https_only", "storage.extra");
        std::fs::write(dir.join("storage/extra.rego"), added).unwrap();
        let layered = Catalogue::layered(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(layered.rules().len(), embedded.rules().len() + 1);
        let by_id = |id: &str| layered.rules().iter().find(|r| r.meta.id == id).unwrap();
        let replaced = by_id("AZ-STG-002");
        assert_eq!(
            replaced.origin,
            Origin::File(dir.join("storage/https_only.rego"))
        );
        assert!(
            replaced.fixtures.is_none(),
            "fixtures come from the rule's own origin"
        );
        assert!(matches!(by_id("AZ-STG-900").origin, Origin::File(_)));
        assert_eq!(by_id("AZ-STG-001").origin, Origin::Embedded);
    }

    #[test]
    fn finds_rule_heads() {
        assert!(plan::declares("deny contains x if {\n}", "deny"));
        assert!(plan::declares(
            "x := 1\nindeterminate contains y if { }",
            "indeterminate"
        ));
        assert!(!plan::declares("# deny contains", "deny"));
        assert!(!plan::declares("denylist := 1", "deny"));
    }
}
