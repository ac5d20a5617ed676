//! Rule evaluation at scale: scan a synthetic tenant (default 100,000 resources, made by
//! `scripts/synth-tenant.py`) with the whole catalogue, as `scanledger scan` does, and
//! print resources/s, rule evaluations/s, findings and peak RSS.
//!
//!     cargo bench --bench scan                       # 100,000 resources
//!     SYNTH_RESOURCES=20000 cargo bench --bench scan # another size
//!     RULE_ENGINE=interpreter cargo bench --bench scan  # the reference interpreter
//!
//! The tenant file is generated under target/synth/ on first use (needs python3).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use scanledger::domain::SubscriptionId;
use scanledger::scanner::fixture::FixtureSource;
use scanledger::scanner::rules::{Catalogue, RuleEngine};
use scanledger::worker::ProgressReporter;

// The allocator `scanledger` itself uses (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SYNTH_SUBSCRIPTION: &str = "5b9c0a39-2f4e-4d7a-8c1b-3e6f9a2d7c41";

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0 // kilobytes on Linux
}

fn main() {
    // As the binary does.
    scanledger::tune_allocator();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let count: usize = std::env::var("SYNTH_RESOURCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let threads = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(scanledger::scanner::evaluation_slots);
    let file = repo.join(format!("target/synth/tenant-{count}.jsonl"));
    if !file.exists() {
        let status = std::process::Command::new("python3")
            .arg(repo.join("scripts/synth-tenant.py"))
            .arg(count.to_string())
            .arg(&file)
            .status()
            .expect("python3 runs scripts/synth-tenant.py");
        assert!(status.success(), "generating the synthetic tenant failed");
    }
    let size_mb = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
    let started = Instant::now();
    let mut catalogue = Catalogue::load(&repo.join("rules")).expect("rules load");
    // The default is the bytecode VM (exact); RULE_ENGINE=interpreter for the reference.
    match std::env::var("RULE_ENGINE").as_deref() {
        Ok("interpreter") | Ok("reference") => catalogue.evaluation = RuleEngine::Interpreter,
        Ok("bytecode") => catalogue.evaluation = RuleEngine::Bytecode,
        _ => {}
    }
    // BENCH_RULES=AZ-NET-001,storage: a subset (e.g. one rule no resource has, to
    // measure reading and dispatch alone).
    if let Ok(filter) = std::env::var("BENCH_RULES") {
        let filter: Vec<String> = filter.split(',').map(str::to_owned).collect();
        catalogue = catalogue.select(&filter).expect("known rules");
    }
    let catalogue = Arc::new(catalogue);
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "synthetic tenant: {count} resources, {size_mb:.1} MB of JSON lines; {} rules (loaded and compiled in {load_ms:.0} ms); engine {:?}; {threads} evaluation threads",
        catalogue.rules().len(),
        catalogue.evaluation
    );
    println!("peak RSS before scanning: {:.0} MiB", peak_rss_mib());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let subscription = SubscriptionId::parse(SYNTH_SUBSCRIPTION).unwrap();
    for run in 1..=runs {
        let source = FixtureSource::new(file.clone(), std::time::Duration::ZERO);
        let (progress, _rx) = ProgressReporter::new();
        let t = Instant::now();
        let report = rt
            .block_on(scanledger::scanner::scan(
                &source,
                catalogue.clone(),
                &subscription,
                &progress,
                threads,
            ))
            .expect("scan");
        let secs = t.elapsed().as_secs_f64();
        let evaluations: u64 = report.summary.rules.values().map(|t| t.evaluated).sum();
        let errored: u64 = report.summary.rules.values().map(|t| t.errored).sum();
        println!(
            "run {run}: {:.2} s  {:>8.0} resources/s  {:>9.0} rule evaluations/s  ({evaluations} evaluations, {} findings, {errored} errored)  peak RSS {:.0} MiB",
            secs,
            report.summary.resources_seen as f64 / secs,
            evaluations as f64 / secs,
            report.summary.findings,
            peak_rss_mib()
        );
        drop(report);
    }
}
