//! Commands that run on one machine for one person: a local scan, the rule catalogue,
//! and the demo.

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use super::flags::{AzureArgs, DbArgs, ServeArgs};
use super::serve::Db;
use super::UsageError;
use crate::domain::governance::MuteList;
use crate::domain::{Progress, ScanId, Severity, SubscriptionId};
use crate::scanner::report::{self, Format};
use crate::scanner::rules::{Catalogue, RuleEngine};
use crate::scanner::{ruletest, SourceSpec};
use crate::worker::ProgressReporter;

/// Where the rule catalogue lives.
#[derive(Clone, Debug, Args)]
pub struct RulesDir {
    /// A folder of Rego rules laid out like `rules/` (`lib/` helpers, fixtures beside
    /// each rule) that adds to the embedded catalogue: a rule of the same id, package or
    /// path replaces the embedded one.
    #[arg(long = "rules-dir", env = "SCANLEDGER_RULES_DIR")]
    pub rules_dir: Option<PathBuf>,
    /// How rules are evaluated: `bytecode` (regorus' VM, about 4x faster) or
    /// `interpreter` (alias `reference`). Both report an erroring rule as errored.
    #[arg(
        long = "rule-engine",
        env = "SCANLEDGER_RULE_ENGINE",
        value_enum,
        default_value = "bytecode"
    )]
    pub engine: RuleEngine,
}

impl RulesDir {
    pub fn load(&self) -> anyhow::Result<Catalogue> {
        // The error names the folder or file; its cause is printed once, by the caller.
        let mut catalogue = match &self.rules_dir {
            None => Catalogue::embedded(),
            Some(dir) => Catalogue::layered(dir),
        }
        .context("loading the rules")?;
        catalogue.evaluation = self.engine;
        Ok(catalogue)
    }
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Print the catalogue: id, severity, category, title, CIS ids (table); every framework
    /// with `--format json` or `markdown`.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
        #[command(flatten)]
        rules: RulesDir,
    },
    /// Run every rule against its fixtures; exit 1 if any misbehaves.
    Test {
        #[command(flatten)]
        rules: RulesDir,
        /// Print every rule, not only failures.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Time every rule on a tenant: µs per (rule, resource), by rule and by type.
    Bench {
        #[command(flatten)]
        rules: RulesDir,
        /// ARM documents to evaluate (a fixture file or folder; every subscription in it).
        #[arg(long, default_value = "demo/tenant")]
        tenant: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    /// The page kept in docs/rules.md.
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Inventory: fixture:PATH (a file or folder of ARM JSON) or azure.
    #[arg(long, env = "SCANLEDGER_SOURCE")]
    pub source: String,
    /// Subscription id to scan.
    #[arg(long)]
    pub subscription: String,
    /// Only these rule ids or categories (repeatable, or comma-separated).
    #[arg(long = "rules", value_delimiter = ',')]
    pub rules: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit with status 3 when a finding at or above this severity exists (1 stays for
    /// errors, 2 for usage errors).
    #[arg(long, value_enum)]
    pub fail_on: Option<SeverityArg>,
    /// With --fail-on, accept a scan that saw no resource of the subscription (by
    /// default an empty inventory fails the gate, exit 1: it checked nothing).
    #[arg(long)]
    pub allow_empty: bool,
    /// Write the report here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// A mute list: a JSON array of {"fingerprint": …} or {"rule_id": …,
    /// "resource_pattern": …} objects, each with a "reason" (and optionally
    /// "expires_at"). Muted findings are reported, marked, and count toward neither the
    /// score nor --fail-on.
    #[arg(long, value_name = "FILE")]
    pub mutes: Option<PathBuf>,
    /// Evaluation threads (default: one per core, and one more).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub catalogue: RulesDir,
    #[command(flatten)]
    pub azure: AzureArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Self {
        match s {
            SeverityArg::Info => Severity::Info,
            SeverityArg::Low => Severity::Low,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::High => Severity::High,
            SeverityArg::Critical => Severity::Critical,
        }
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address of the demo API (loopback only; authentication is off).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// A folder of ARM-shaped files to scan instead of the demo tenant built into the binary.
    #[arg(long)]
    pub tenant: Option<PathBuf>,
    /// Its subscription id.
    #[arg(long, default_value = DEMO_SUBSCRIPTION)]
    pub subscription: String,
    /// Pause per resource, so progress is visible.
    #[arg(long, default_value = "40ms", value_parser = super::flags::parse_duration)]
    pub delay: Duration,
    /// Stop once the scan has completed (for scripts and tests) instead of serving on.
    #[arg(long)]
    pub exit: bool,
    #[command(flatten)]
    pub rules: RulesDir,
}

/// The demo tenant's subscription (`demo/tenant`).
pub const DEMO_SUBSCRIPTION: &str = "6f1c1a9e-5d7b-4c2e-9a41-0d3e5f7a9b10";

/// The demo tenant (`demo/tenant`), built into the binary so that `demo` works from any
/// folder.
const DEMO_TENANT: &[(&str, &str)] = &[
    (
        "appservice.json",
        include_str!("../../demo/tenant/appservice.json"),
    ),
    (
        "compute.json",
        include_str!("../../demo/tenant/compute.json"),
    ),
    (
        "databases.json",
        include_str!("../../demo/tenant/databases.json"),
    ),
    (
        "defender.json",
        include_str!("../../demo/tenant/defender.json"),
    ),
    (
        "keyvault.json",
        include_str!("../../demo/tenant/keyvault.json"),
    ),
    (
        "monitoring.json",
        include_str!("../../demo/tenant/monitoring.json"),
    ),
    (
        "network.json",
        include_str!("../../demo/tenant/network.json"),
    ),
    (
        "storage.json",
        include_str!("../../demo/tenant/storage.json"),
    ),
    ("vm.json", include_str!("../../demo/tenant/vm.json")),
];

/// The built-in demo tenant, written to a private temporary folder (removed on drop):
/// the fixture source reads files.
struct EmbeddedTenant(PathBuf);

impl EmbeddedTenant {
    fn write() -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("scanledger-demo-tenant-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let tenant = Self(dir);
        for (name, body) in DEMO_TENANT {
            let path = tenant.0.join(name);
            std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(tenant)
    }
}

impl Drop for EmbeddedTenant {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn rules(cmd: &RulesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RulesCommand::List { format, rules } => {
            let catalogue = rules.load()?;
            let text = match format {
                ListFormat::Table => list_table(&catalogue),
                ListFormat::Markdown => report::catalogue_markdown(&catalogue),
                ListFormat::Json => {
                    // Each rule's metadata with where it came from beside it.
                    let metas = catalogue
                        .rules()
                        .iter()
                        .map(|r| {
                            let mut v = serde_json::to_value(&r.meta)?;
                            v["origin"] = r.origin.to_string().into();
                            Ok(v)
                        })
                        .collect::<Result<Vec<_>, serde_json::Error>>()?;
                    serde_json::to_string_pretty(&metas)? + "\n"
                }
            };
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Test { rules, verbose } => {
            let catalogue = Arc::new(rules.load()?);
            let checks = ruletest::run(catalogue);
            let (mut cases, mut bad) = (0, 0);
            for c in &checks {
                cases += c.cases;
                if !c.problems.is_empty() {
                    bad += 1;
                    println!("FAIL {} ({})", c.rule_id, c.file.display());
                    for p in &c.problems {
                        println!("     {p}");
                    }
                } else if *verbose {
                    println!("ok   {} ({} cases)", c.rule_id, c.cases);
                }
            }
            println!(
                "{} rules, {cases} fixture cases: {} passed, {bad} failed",
                checks.len(),
                checks.len() - bad
            );
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        RulesCommand::Bench { rules, tenant } => {
            let catalogue = Arc::new(rules.load()?);
            let report = crate::scanner::bench::run(catalogue.clone(), tenant)?;
            let text = crate::scanner::bench::render(&catalogue, &report);
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list_table(catalogue: &Catalogue) -> String {
    let mut out = String::new();
    for r in catalogue.rules() {
        let m = &r.meta;
        out.push_str(&format!(
            "{:<11} {:<8} {:<10} {}{}  [{}]\n",
            m.id,
            m.severity.as_str(),
            m.category,
            m.title,
            cis_ids(m),
            r.origin
        ));
    }
    out.push_str(&format!("{} rules\n", catalogue.rules().len()));
    out
}

/// The rule's CIS control ids, " (CIS v2.1.0 3.1; v3.0.0 4.1)", or "" when it maps to none.
fn cis_ids(m: &crate::scanner::rules::RuleMeta) -> String {
    let ids = |key: &str| {
        m.frameworks
            .get(key)
            .map(|ids| ids.join(", "))
            .unwrap_or_default()
    };
    let parts: Vec<String> = [("v2.1.0", ids("cis_azure")), ("v3.0.0", ids("cis_v3"))]
        .into_iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(version, ids)| format!("{version} {ids}"))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (CIS {})", parts.join("; "))
    }
}

/// Draws progress on stderr while a terminal is attached.
fn show_progress(mut rx: tokio::sync::watch::Receiver<Progress>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !std::io::stderr().is_terminal() {
            return;
        }
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            eprint!(
                "\r{:<10} {} resources, {} rule evaluations   ",
                format!("{:?}", p.phase).to_lowercase(),
                p.resources_seen,
                p.rules_evaluated
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprint!("\r{:60}\r", "");
    })
}

pub async fn scan(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let subscription = SubscriptionId::parse(&args.subscription)
        .map_err(|e| UsageError(format!("--subscription {:?}: {e}", args.subscription)))?;
    let spec: SourceSpec = args
        .source
        .parse()
        .map_err(|e| UsageError(format!("--source: {e}")))?;
    let catalogue = Arc::new(
        args.catalogue
            .load()?
            .select(&args.rules)
            .map_err(|e| UsageError(format!("--rules: {e}")))?,
    );
    let mutes = Arc::new(match &args.mutes {
        Some(path) => load_mutes(path)?,
        None => MuteList::default(),
    });
    let source = spec.open(&args.azure.settings())?;
    let threads = args
        .threads
        .unwrap_or_else(crate::scanner::evaluation_slots);
    let (progress, rx) = ProgressReporter::new();
    let drawer = show_progress(rx);
    let result = crate::scanner::scan(
        source.as_ref(),
        catalogue.clone(),
        &subscription,
        &progress,
        threads,
    )
    .await;
    drop(progress);
    let _ = drawer.await;
    let mut report =
        result.map_err(|e| anyhow::anyhow!("{}: {}", e.code.public_message(), e.detail))?;
    let muted: Vec<bool> = crate::scanner::apply_mutes(&catalogue, &mut report, &mutes)
        .iter()
        .map(Option::is_some)
        .collect();
    // The process ends with this command, and the system takes its memory back at once:
    // freeing 300,000 findings one by one was 0.1 s at the end of a 100k scan.
    let report = std::mem::ManuallyDrop::new(report);
    let header = report::Header {
        subscription: subscription.to_string(),
        completed_at: chrono::Utc::now(),
        summary: report.summary.clone(),
        mutes: mutes.clone(),
    };
    let finished = match &args.output {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            report::write(args.format, header, &report.findings, &mut file)
                .with_context(|| format!("writing {}", path.display()))?
        }
        None => report::write(
            args.format,
            header,
            &report.findings,
            &mut std::io::stdout().lock(),
        )?,
    };
    if finished.sarif_omitted > 0 {
        crate::telemetry::notice(&format!(
            "warning: the SARIF report leaves out {} findings (GitHub accepts at most {} per run); \
             --format json, csv or ocsf holds them all",
            finished.sarif_omitted,
            report::SARIF_MAX_RESULTS
        ));
    }
    if report.summary.resources_seen == 0 {
        crate::telemetry::notice(&format!(
            "warning: no resource was seen for subscription {subscription} in {}",
            args.source
        ));
        if args.fail_on.is_some() && !args.allow_empty {
            crate::telemetry::notice(
                "an empty inventory fails --fail-on (--allow-empty accepts it)",
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    if let Some(threshold) = args.fail_on {
        let threshold = Severity::from(threshold);
        let n = report
            .findings
            .iter()
            .zip(&muted)
            .filter(|(f, muted)| f.rule.severity >= threshold && !**muted)
            .count();
        if n > 0 {
            crate::telemetry::notice(&format!(
                "{n} findings at or above {} (--fail-on)",
                threshold.as_str()
            ));
            return Ok(ExitCode::from(super::EXIT_FINDINGS));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Print a scan's status line until it settles; returns its final status. Polls four
/// times a second: long-polls wake on status changes, not on heartbeats, and the demo
/// wants to show progress.
async fn follow(base: &str, scan_id: ScanId) -> anyhow::Result<serde_json::Value> {
    let http = reqwest::Client::new();
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    loop {
        let status: serde_json::Value = http
            .get(format!("{base}/api/scans/{scan_id}"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let state = status["status"].as_str().unwrap_or("?").to_owned();
        let progress = &status["progress"];
        let line = if status["summary"].is_object() {
            format!(
                "scan {scan_id}: {state:<9} {} resources",
                status["summary"]["resources_seen"]
            )
        } else {
            format!(
                "scan {scan_id}: {state:<9} {} resources, {} rule evaluations",
                progress["resources_seen"].as_u64().unwrap_or(0),
                progress["rules_evaluated"].as_u64().unwrap_or(0)
            )
        };
        if tty {
            eprint!("\r{line}   ");
        } else if line != last_line {
            eprintln!("{line}");
        }
        last_line = line;
        if matches!(state.as_str(), "completed" | "failed" | "cancelled") {
            if tty {
                eprintln!();
            }
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn demo(db: &Db, dbargs: &DbArgs, args: &DemoArgs) -> anyhow::Result<()> {
    let listener_addr: std::net::SocketAddr = args
        .listen
        .parse()
        .map_err(|e| UsageError(format!("--listen {:?}: {e}", args.listen)))?;
    if !listener_addr.ip().is_loopback() {
        return Err(UsageError(
            "the demo serves without authentication: --listen must be a loopback address".into(),
        )
        .into());
    }
    let embedded = match &args.tenant {
        Some(_) => None,
        None => Some(EmbeddedTenant::write()?),
    };
    let tenant = args
        .tenant
        .as_deref()
        .or(embedded.as_ref().map(|t| t.0.as_path()))
        .expect("a tenant, given or embedded");
    let serve = ServeArgs::demo(
        &args.listen,
        &format!(
            "fixture:{}?delay_ms={}",
            tenant.display(),
            args.delay.as_millis()
        ),
        &args.rules,
    )?;
    // Fail before serving if the rules or tenant are broken.
    serve.worker.job(&crate::metrics::Metrics::default())?;
    let base = format!("http://{}", args.listen);
    let subscription = args.subscription.clone();
    let exit_after = args.exit;
    let script = async move {
        let http = reqwest::Client::new();
        // The API is up once it answers.
        let mut ready = false;
        for _ in 0..100 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::ensure!(ready, "the demo API did not come up at {base}");
        let resp = http
            .post(format!("{base}/api/scans"))
            .json(&serde_json::json!({"subscription_id": subscription}))
            .send()
            .await?
            .error_for_status()?;
        let created: serde_json::Value = resp.json().await?;
        let scan_id: ScanId = serde_json::from_value(created["scan_id"].clone())
            .context("the API's answer has no scan_id")?;
        println!("requested scan {scan_id} of subscription {subscription} (202 Accepted)");
        let status = follow(&base, scan_id).await?;
        let findings: serde_json::Value = http
            .get(format!("{base}/api/scans/{scan_id}/findings?limit=500"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        print_demo_summary(&base, scan_id, &status, &findings);
        Ok::<_, anyhow::Error>(())
    };
    let components = super::serve::Components {
        command: "demo",
        api: Some(&serve.api),
        worker: Some(&serve.worker),
        azure: Some(&serve.worker.azure),
        ops: &super::OpsArgs::default(),
    };
    super::serve::serve_with(db, dbargs, components, script, exit_after).await
}

fn print_demo_summary(
    base: &str,
    scan_id: ScanId,
    status: &serde_json::Value,
    findings: &serde_json::Value,
) {
    println!();
    println!(
        "status: {}   findings: {}   score: {}",
        status["status"].as_str().unwrap_or("?"),
        status["total_findings"],
        status["summary"]["score"]
    );
    if let Some(items) = findings["findings"].as_array() {
        let mut by_rule: std::collections::BTreeMap<(String, String), (String, u64)> =
            Default::default();
        for f in items {
            let key = (
                f["severity"].as_str().unwrap_or("").to_owned(),
                f["rule_id"].as_str().unwrap_or("").to_owned(),
            );
            let e = by_rule
                .entry(key)
                .or_insert((f["rule_name"].as_str().unwrap_or("").to_owned(), 0));
            e.1 += 1;
        }
        let mut rows: Vec<_> = by_rule.into_iter().collect();
        rows.sort_by_key(|((sev, rule), _)| {
            let rank = ["critical", "high", "medium", "low", "info"]
                .iter()
                .position(|s| s == sev)
                .unwrap_or(9);
            (rank, rule.clone())
        });
        // The worst first; the findings route has the rest.
        const SHOWN: usize = 20;
        let more = rows.len().saturating_sub(SHOWN);
        for ((sev, rule), (title, n)) in rows.into_iter().take(SHOWN) {
            println!("  {sev:<8} {rule:<11} x{n:<3} {title}");
        }
        if more > 0 {
            println!("  … and {more} more rules with findings (see the findings command below)");
        }
    }
    println!();
    println!("Console (this scan; no token in the demo): {base}/ui/#/scan/{scan_id}");
    println!();
    println!("Try it (authentication is off in the demo):");
    println!("  curl -s {base}/api/scans/{scan_id}                  # status");
    println!("  curl -s '{base}/api/scans/{scan_id}?wait=30'        # long-poll: answers when the status changes");
    println!("  curl -s {base}/api/scans/{scan_id}/findings         # findings");
    println!("  curl -s {base}/api/scans/{scan_id}/events           # full history (auditors)");
    println!("  curl -s -X POST {base}/api/scans -H 'content-type: application/json' \\");
    println!(
        "       -d '{{\"subscription_id\": \"{}\"}}'   # another scan",
        status["subscription_id"]
            .as_str()
            .unwrap_or(DEMO_SUBSCRIPTION)
    );
    println!("  open {base}/api/openapi.json for the whole API");
}

/// One entry of a `--mutes` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteEntry {
    fingerprint: Option<String>,
    rule_id: Option<String>,
    resource_pattern: Option<String>,
    reason: String,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Read a `--mutes` file: the mutes in it that have not expired.
fn load_mutes(path: &std::path::Path) -> anyhow::Result<MuteList> {
    use crate::domain::governance::{Mute, MuteSelector};
    let text =
        std::fs::read(path).with_context(|| format!("reading the mute list {}", path.display()))?;
    let entries: Vec<MuteEntry> = serde_json::from_slice(&text).map_err(|e| {
        UsageError(format!(
            "--mutes {}: {e} (expected a JSON array of objects with a reason and either \
             a fingerprint or a rule_id and a resource_pattern)",
            path.display()
        ))
    })?;
    let now = chrono::Utc::now();
    let mut mutes = Vec::with_capacity(entries.len());
    for (i, e) in entries.into_iter().enumerate() {
        let selector = match (e.fingerprint, e.rule_id, e.resource_pattern) {
            (Some(fingerprint), None, None) if !fingerprint.is_empty() => {
                MuteSelector::Fingerprint { fingerprint }
            }
            (None, Some(rule_id), Some(resource_pattern))
                if !rule_id.is_empty() && !resource_pattern.is_empty() =>
            {
                MuteSelector::Rule {
                    rule_id,
                    resource_pattern,
                }
            }
            _ => {
                return Err(UsageError(format!(
                "--mutes {}: entry {i} needs a fingerprint, or a rule_id and a resource_pattern",
                path.display()
            ))
                .into())
            }
        };
        if e.reason.trim().is_empty() {
            return Err(UsageError(format!(
                "--mutes {}: entry {i} needs a reason",
                path.display()
            ))
            .into());
        }
        mutes.push(Mute {
            mute_id: uuid::Uuid::new_v4(),
            selector,
            reason: e.reason,
            created_by: format!("file:{}", path.display()),
            created_at: now,
            expires_at: e.expires_at,
            removed_at: None,
            removed_by: None,
            version: 1,
        });
    }
    Ok(MuteList::active(&mutes, now))
}
