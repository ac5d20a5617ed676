//! A process's metrics, in the Prometheus text format (0.0.4), kept by
//! `prometheus-client`.
//!
//! One [`Metrics`] per process (tests make one per app): the API's handles
//! ([`HttpMetrics`]), the worker's ([`WorkerMetrics`]) and the Azure source's
//! ([`AzureMetrics`]) are registered in it; each handle group is `Clone` and, made with
//! `Default`, records into nothing, so library code never needs a registry. Figures read
//! from the database at scrape time ([`DatabaseFigures`]) and the process figures from
//! `/proc/self` are added when [`Metrics::render`] encodes.
//!
//! Labels are bounded: routes are axum's route templates, methods the standard ones (or
//! `other`), statuses HTTP codes, severities and outcomes fixed sets, rule ids those of
//! the loaded catalogue. This module imports nothing of ours.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Request latency bounds (seconds): HTTP requests, claims.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// How long a scan waited to be claimed, from when it became eligible (seconds).
const WAIT_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
];
/// Scan attempts, from the job's start to its outcome (seconds).
const SCAN_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Events in one append transaction of a worker's lane.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

type Hist = Family<Vec<(&'static str, String)>, Histogram, fn() -> Histogram>;

/// A family of histograms with the bounds `new` gives each.
fn histograms(new: fn() -> Histogram) -> Hist {
    Family::new_with_constructor(new)
}

fn latency() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn wait() -> Histogram {
    Histogram::new(WAIT_BUCKETS)
}

fn scan() -> Histogram {
    Histogram::new(SCAN_BUCKETS)
}

fn batch() -> Histogram {
    Histogram::new(BATCH_BUCKETS)
}

/// The API's metrics.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<HttpLabels, Counter>,
    duration: Hist,
    long_polls_waiting: Gauge,
    long_polls: Family<[(&'static str, &'static str); 1], Counter>,
    event_streams_open: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let m = Self {
            requests: Family::default(),
            duration: histograms(latency),
            long_polls_waiting: Gauge::default(),
            long_polls: Family::default(),
            event_streams_open: Gauge::default(),
        };
        // Every outcome shows from the start, at 0.
        for outcome in ["changed", "unchanged", "late"] {
            let _ = m.long_polls.get_or_create(&[("outcome", outcome)]);
        }
        m
    }
}

impl HttpMetrics {
    /// One request served: `method` from [`method_label`], `route` the route template
    /// (or `unmatched`).
    pub fn request(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&HttpLabels {
                method,
                route: route.to_string(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&vec![("route", route.to_string())])
            .observe(seconds);
    }

    /// A long-poll starts waiting; it counts as waiting until the guard is dropped.
    pub fn long_poll(&self) -> LongPollGuard {
        self.long_polls_waiting.inc();
        LongPollGuard(self.clone())
    }

    /// Event streams this process serves now (set at each scrape).
    pub fn set_event_streams_open(&self, n: usize) {
        self.event_streams_open.set(n as i64);
    }
}

/// How a long-poll ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongPollOutcome {
    /// Woken by a change before its deadline.
    Changed,
    /// Its deadline passed and the scan had not changed.
    Unchanged,
    /// Its deadline passed and the scan had changed without waking it: claims and
    /// heartbeats are not announced; any other change found only here was missed.
    Late,
}

/// One long-poll counted as waiting until dropped.
pub struct LongPollGuard(HttpMetrics);

impl LongPollGuard {
    pub fn finish(self, outcome: LongPollOutcome) {
        let name = match outcome {
            LongPollOutcome::Changed => "changed",
            LongPollOutcome::Unchanged => "unchanged",
            LongPollOutcome::Late => "late",
        };
        self.0.long_polls.get_or_create(&[("outcome", name)]).inc();
    }
}

impl Drop for LongPollGuard {
    fn drop(&mut self) {
        self.0.long_polls_waiting.dec();
    }
}

/// The method as a metrics label: the standard ones by name, every extension method as
/// `other`, so a client cannot grow the label set.
pub fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// How an attempt ended, as the worker saw it (the `outcome` label of
/// `scanledger_scan_duration_seconds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// `Completed` recorded.
    Completed,
    /// `Failed` recorded (the scan's own failure, a panic, or handed back at shutdown).
    Failed,
    /// The ledger said the attempt was no longer this worker's (timed out, cancelled).
    Lost,
    /// Stopped by self-fencing: no heartbeat confirmed within the lease.
    Fenced,
    /// The outcome could not be recorded before the worker exited.
    Abandoned,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 5] = [
        Self::Completed,
        Self::Failed,
        Self::Lost,
        Self::Fenced,
        Self::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Lost => "lost",
            Self::Fenced => "fenced",
            Self::Abandoned => "abandoned",
        }
    }
}

/// A worker's metrics.
#[derive(Clone, Debug)]
pub struct WorkerMetrics {
    claims: Counter,
    claim_duration: Hist,
    claim_wait: Hist,
    scan_duration: Hist,
    findings: Family<[(&'static str, &'static str); 1], Counter>,
    rule_evaluations: Counter,
    rule_errors: Family<Vec<(&'static str, String)>, Counter>,
    append_batch: Hist,
    lease_expiries: Counter,
    running: Gauge,
    database_reachable: Gauge,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        let database_reachable = Gauge::default();
        database_reachable.set(1);
        Self {
            claims: Counter::default(),
            claim_duration: histograms(latency),
            claim_wait: histograms(wait),
            scan_duration: histograms(scan),
            findings: Family::default(),
            rule_evaluations: Counter::default(),
            rule_errors: Family::default(),
            append_batch: histograms(batch),
            lease_expiries: Counter::default(),
            running: Gauge::default(),
            database_reachable,
        }
    }
}

/// The lanes of [`WorkerMetrics::append_batch`].
pub const LANES: [&str; 2] = ["heartbeat", "outcome"];

impl WorkerMetrics {
    /// Show every series of a worker from the start (at 0), so that rates and ratios
    /// exist before the first scan: each outcome, lane and severity (`severities`).
    pub fn init(&self, severities: impl IntoIterator<Item = &'static str>) {
        let _ = self.claim_duration.get_or_create(&Vec::new());
        let _ = self.claim_wait.get_or_create(&Vec::new());
        for outcome in AttemptOutcome::ALL {
            let _ = self
                .scan_duration
                .get_or_create(&vec![("outcome", outcome.as_str().to_string())]);
        }
        for lane in LANES {
            let _ = self
                .append_batch
                .get_or_create(&vec![("lane", lane.to_string())]);
        }
        for severity in severities {
            let _ = self.findings.get_or_create(&[("severity", severity)]);
        }
    }

    /// Show `scanledger_rule_errors_total` of every rule of the catalogue from the start,
    /// at 0 (a rule's first error then shows in `increase()`).
    pub fn init_rules<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        for id in ids {
            let _ = self
                .rule_errors
                .get_or_create(&vec![("rule", id.to_string())]);
        }
    }

    /// One claim round trip that took `seconds` and claimed `claimed` scans.
    pub fn claim(&self, seconds: f64, claimed: usize) {
        self.claim_duration
            .get_or_create(&Vec::new())
            .observe(seconds);
        self.claims.inc_by(claimed as u64);
    }

    /// A claimed scan had been eligible for `seconds` (database clock).
    pub fn claim_waited(&self, seconds: f64) {
        self.claim_wait
            .get_or_create(&Vec::new())
            .observe(seconds.max(0.0));
    }

    /// An attempt started running on this worker.
    pub fn attempt_started(&self) {
        self.running.inc();
    }

    /// An attempt ended after `seconds`.
    pub fn attempt_ended(&self, outcome: AttemptOutcome, seconds: f64) {
        self.running.dec();
        self.scan_duration
            .get_or_create(&vec![("outcome", outcome.as_str().to_string())])
            .observe(seconds);
    }

    /// A recorded `Completed`: its findings by severity (`severity` one of a fixed set),
    /// resources given to rules, and (rule id, resources it errored on).
    pub fn completed<'a>(
        &self,
        findings: impl IntoIterator<Item = (&'static str, u64)>,
        evaluations: u64,
        errors: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        for (severity, n) in findings {
            self.findings
                .get_or_create(&[("severity", severity)])
                .inc_by(n);
        }
        self.rule_evaluations.inc_by(evaluations);
        for (rule, n) in errors.into_iter().filter(|(_, n)| *n > 0) {
            self.rule_errors
                .get_or_create(&vec![("rule", rule.to_string())])
                .inc_by(n);
        }
    }

    /// One append transaction of a lane (`heartbeat` or `outcome`) carrying `events`.
    pub fn append_batch(&self, lane: &'static str, events: usize) {
        self.append_batch
            .get_or_create(&vec![("lane", lane.to_string())])
            .observe(events as f64);
    }

    /// This worker's reaper timed out `n` attempts.
    pub fn lease_expiries(&self, n: usize) {
        self.lease_expiries.inc_by(n as u64);
    }

    /// Whether this worker's last database call reached the database.
    pub fn database_reachable(&self, reachable: bool) {
        self.database_reachable.set(i64::from(reachable));
    }
}

/// The Azure source's metrics.
#[derive(Clone, Debug, Default)]
pub struct AzureMetrics {
    requests: Family<Vec<(&'static str, String)>, Counter>,
    throttled: Family<[(&'static str, &'static str); 1], Counter>,
    retry_wait: Family<[(&'static str, &'static str); 1], Counter<f64, AtomicU64>>,
}

impl AzureMetrics {
    /// Show the series of both APIs from the start, at 0 (answers other than these
    /// codes add theirs when they first come).
    pub fn init(&self) {
        for api in ["arm", "resource_graph"] {
            let _ = self.throttled.get_or_create(&[("api", api)]);
            let _ = self.retry_wait.get_or_create(&[("api", api)]);
            for code in ["2xx", "4xx", "429", "5xx", "error"] {
                let _ = self
                    .requests
                    .get_or_create(&vec![("api", api.to_string()), ("code", code.to_string())]);
            }
        }
    }

    /// One HTTP request to `api` (`arm`, `resource_graph`) answered with `status`, or
    /// with no answer (`status` None: a transport error or timeout).
    pub fn request(&self, api: &'static str, status: Option<u16>) {
        let class = match status {
            None => "error".to_string(),
            Some(429) => "429".to_string(),
            Some(s) => format!("{}xx", s / 100),
        };
        self.requests
            .get_or_create(&vec![("api", api.to_string()), ("code", class)])
            .inc();
        if status == Some(429) {
            let _ = self.throttled.get_or_create(&[("api", api)]).inc();
        }
    }

    /// Waiting `seconds` before retrying a request to `api` (as `Retry-After` said, or
    /// the back-off without it).
    pub fn retry_wait(&self, api: &'static str, seconds: f64) {
        self.retry_wait
            .get_or_create(&[("api", api)])
            .inc_by(seconds);
    }
}

/// Figures read from the database at scrape time, by the process that scrapes.
#[derive(Clone, Debug, Default)]
pub struct DatabaseFigures {
    /// Scans per status (`scan_status`).
    pub scans_by_status: Vec<(String, i64)>,
    /// Pending scans eligible now.
    pub queue_depth: i64,
    /// Age of the oldest eligible pending scan (0 when none).
    pub oldest_pending_seconds: f64,
    /// See `scanledger_feed_horizon_age_seconds`.
    pub feed_horizon_age_seconds: f64,
}

/// The statuses `scanledger_scans` always shows, 0 when no scan has them.
pub const SCAN_STATUSES: [&str; 5] = ["pending", "running", "completed", "failed", "cancelled"];

/// A process's registry and the handles registered in it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    pub worker: WorkerMetrics,
    pub azure: AzureMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new("library")
    }
}

impl Metrics {
    /// Everything registered; `command` (`serve`, `api`, `worker`) goes into
    /// `scanledger_build_info`.
    pub fn new(command: &'static str) -> Self {
        let (http, worker, azure) = (
            HttpMetrics::default(),
            WorkerMetrics::default(),
            AzureMetrics::default(),
        );
        let mut r = Registry::default();
        r.register(
            "scanledger_build",
            "Always 1: the version of scanledger this process runs and its command",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("command", command),
            ]),
        );
        r.register(
            "scanledger_http_requests",
            "HTTP requests by method, route and status",
            http.requests.clone(),
        );
        r.register(
            "scanledger_http_request_duration_seconds",
            "HTTP request latency by route",
            http.duration.clone(),
        );
        r.register(
            "scanledger_long_polls_waiting",
            "Long-polls of this process waiting now",
            http.long_polls_waiting.clone(),
        );
        r.register(
            "scanledger_long_polls",
            "Long-polls of this process by how they ended: changed (woken by a change), unchanged (deadline), late (deadline, and the scan had changed without waking it: a claim or a heartbeat)",
            http.long_polls.clone(),
        );
        r.register(
            "scanledger_event_streams_open",
            "Event streams (Server-Sent Events) this process serves now",
            http.event_streams_open.clone(),
        );
        r.register(
            "scanledger_claims",
            "Scans this process's worker claimed",
            worker.claims.clone(),
        );
        r.register(
            "scanledger_claim_duration_seconds",
            "Round trip of one claim transaction (however many scans it claimed)",
            worker.claim_duration.clone(),
        );
        r.register(
            "scanledger_claim_wait_seconds",
            "Claim latency: how long each claimed scan had been eligible (requested, or its retry due) before this worker claimed it, by the database clock",
            worker.claim_wait.clone(),
        );
        r.register(
            "scanledger_scan_duration_seconds",
            "Scan attempts run by this worker, from the job's start to its outcome, by outcome: completed, failed, lost (timed out or cancelled meanwhile), fenced (stopped by self-fencing), abandoned (outcome not recorded before exit)",
            worker.scan_duration.clone(),
        );
        r.register(
            "scanledger_scans_running",
            "Scan attempts this worker runs now",
            worker.running.clone(),
        );
        r.register(
            "scanledger_findings",
            "Findings of the scans this worker completed (recorded Completed events), by severity",
            worker.findings.clone(),
        );
        r.register(
            "scanledger_rule_evaluations",
            "Rule evaluations (one rule on one resource) of the scans this worker completed",
            worker.rule_evaluations.clone(),
        );
        r.register(
            "scanledger_rule_errors",
            "Resources a rule raised an error on, in the scans this worker completed, by rule id",
            worker.rule_errors.clone(),
        );
        r.register(
            "scanledger_append_batch_size",
            "Events per append transaction of this worker's lanes (heartbeat, outcome)",
            worker.append_batch.clone(),
        );
        r.register(
            "scanledger_lease_expiries",
            "Attempts this process's reaper timed out because their lease ran out (any worker's)",
            worker.lease_expiries.clone(),
        );
        r.register(
            "scanledger_worker_database_reachable",
            "1 while this worker's last database call reached the database; 0 during an outage",
            worker.database_reachable.clone(),
        );
        r.register(
            "scanledger_azure_requests",
            "HTTP requests to Azure (ARM, Resource Graph) by api and code: 2xx, 3xx, 4xx, 429, 5xx, or error (no answer)",
            azure.requests.clone(),
        );
        r.register(
            "scanledger_azure_throttled",
            "Azure answers 429 (throttled), by api",
            azure.throttled.clone(),
        );
        r.register(
            "scanledger_azure_retry_wait_seconds",
            "Seconds spent waiting before retrying Azure requests (Retry-After when given, else the back-off), by api",
            azure.retry_wait.clone(),
        );
        r.register_collector(Box::new(ProcessCollector));
        Self {
            registry: r,
            http,
            worker,
            azure,
        }
    }

    /// The text of `/metrics`: everything registered, the process figures, and
    /// `database` when it was read (`scanledger_database_up` says whether it was).
    pub fn render(&self, database: Option<&DatabaseFigures>) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("encoding into a String");
        let mut r = Registry::default();
        r.register_collector(Box::new(DatabaseCollector(database.cloned())));
        prometheus_client::encoding::prometheus_text::encode(&mut out, &r)
            .expect("encoding into a String");
        out
    }
}

/// Where the queue gauges come from: one query of `scan_status`, the same on every
/// process, so HELP says to aggregate them with `max`, never `sum`.
const FROM_DATABASE: &str =
    "Read from the database at scrape time (one query of scan_status): the same figure on every process; aggregate with max, not sum.";

#[derive(Debug)]
struct DatabaseCollector(Option<DatabaseFigures>);

impl Collector for DatabaseCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(
            &mut encoder,
            "scanledger_database_up",
            "1 when this scrape could read the database figures below; 0 when the database did not answer (they are then left out).",
            i64::from(self.0.is_some()),
        )?;
        let Some(db) = &self.0 else {
            return Ok(());
        };
        let help = format!("Scans by status. {FROM_DATABASE}");
        let family = Family::<[(&str, &str); 1], Gauge>::default();
        for status in SCAN_STATUSES {
            let n = db
                .scans_by_status
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            family.get_or_create(&[("status", status)]).set(n);
        }
        let m = encoder.encode_descriptor("scanledger_scans", &help, None, family.metric_type())?;
        family.encode(m)?;
        gauge(
            &mut encoder,
            "scanledger_queue_depth",
            &format!("Pending scans eligible to be claimed now. {FROM_DATABASE}"),
            db.queue_depth,
        )?;
        gauge(
            &mut encoder,
            "scanledger_oldest_pending_seconds",
            &format!("Age of the oldest eligible pending scan (0 when none). {FROM_DATABASE}"),
            db.oldest_pending_seconds.max(0.0),
        )?;
        gauge(
            &mut encoder,
            "scanledger_feed_horizon_age_seconds",
            "How long the oldest committed event the feed cannot serve yet has waited (from its transaction's start): a transaction still open anywhere in the cluster holds the feed back. Read from the database at scrape time: the same on every process.",
            db.feed_horizon_age_seconds.max(0.0),
        )
    }
}

fn gauge<N: prometheus_client::encoding::EncodeGaugeValue + std::fmt::Debug>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    let m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

/// The standard process metrics (the names every Prometheus client uses), read from
/// `/proc/self` at each scrape. Linux only; elsewhere they are left out.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = ProcessFigures::read() else {
            return Ok(());
        };
        counter(
            &mut encoder,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        )?;
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            p.resident_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            p.virtual_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        )?;
        if let Some(n) = p.open_fds {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                n,
            )?;
        }
        if let Some(n) = p.max_fds {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                n,
            )?;
        }
        Ok(())
    }
}

/// What `/proc/self` says about this process.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessFigures {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub start_time_seconds: f64,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

impl ProcessFigures {
    /// Read now; `None` where `/proc` is not there.
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        // SAFETY: sysconf only reads a configuration value.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let mut p = Self::parse(&stat, &boot, ticks.max(1) as u64, page.max(1) as u64)?;
        p.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            p.max_fds = Some(lim.rlim_cur);
        }
        Some(p)
    }

    /// From the text of `/proc/self/stat` and `/proc/stat`, with the clock ticks per
    /// second and the page size.
    pub fn parse(stat: &str, boot: &str, ticks: u64, page: u64) -> Option<Self> {
        // The command name (field 2) is in parentheses and may hold spaces or ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is field 3 (state): field n is f[n - 3].
        let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
        let btime: u64 = boot
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let ticks_f = ticks as f64;
        Some(Self {
            cpu_seconds: (num(14)? + num(15)?) as f64 / ticks_f,
            start_time_seconds: btime as f64 + num(22)? as f64 / ticks_f,
            virtual_bytes: num(23)?,
            resident_bytes: num(24)? * page,
            open_fds: None,
            max_fds: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_are_read_by_position() {
        // A command name with a space and a parenthesis, as the kernel writes it.
        let stat = "4242 (scan ledger)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 12345 104857600 2560 18446744073709551615";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 10\n";
        let p = ProcessFigures::parse(stat, boot, 100, 4096).unwrap();
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.start_time_seconds, 1_700_000_123.45);
        assert_eq!(p.virtual_bytes, 104_857_600);
        assert_eq!(p.resident_bytes, 2560 * 4096);
    }

    #[test]
    fn renders_prometheus_text_with_every_family() {
        let m = Metrics::new("worker");
        m.http.request("GET", "/api/scans/{id}", 200, 0.003);
        m.worker.claim(0.002, 2);
        m.worker.attempt_started();
        m.worker.attempt_ended(AttemptOutcome::Completed, 1.5);
        m.worker.completed(
            [("high", 3), ("low", 1)],
            40,
            [("az-001", 2), ("az-002", 0)],
        );
        m.azure.request("arm", Some(429));
        m.azure.retry_wait("arm", 2.5);
        let db = DatabaseFigures {
            scans_by_status: vec![("pending".into(), 4)],
            queue_depth: 3,
            oldest_pending_seconds: 1.25,
            feed_horizon_age_seconds: 0.0,
        };
        let text = m.render(Some(&db));
        for needle in [
            "scanledger_build_info{version=\"",
            "command=\"worker\"} 1",
            "scanledger_http_requests_total{method=\"GET\",route=\"/api/scans/{id}\",status=\"200\"} 1",
            "scanledger_claims_total 2",
            "scanledger_scan_duration_seconds_count{outcome=\"completed\"} 1",
            "scanledger_scan_duration_seconds_bucket{outcome=\"completed\",le=\"2.5\"} 1",
            "scanledger_findings_total{severity=\"high\"} 3",
            "scanledger_rule_evaluations_total 40",
            "scanledger_rule_errors_total{rule=\"az-001\"} 2",
            "scanledger_azure_throttled_total{api=\"arm\"} 1",
            "scanledger_azure_retry_wait_seconds_total{api=\"arm\"} 2.5",
            "scanledger_scans{status=\"pending\"} 4",
            "scanledger_scans{status=\"failed\"} 0",
            "scanledger_queue_depth 3",
            "scanledger_oldest_pending_seconds 1.25",
            "scanledger_database_up 1",
            "# TYPE scanledger_queue_depth gauge",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
        assert!(
            !text.contains("az-002"),
            "a rule with no error adds no series"
        );
        let down = m.render(None);
        assert!(down.contains("scanledger_database_up 0"));
        assert!(!down.contains("scanledger_queue_depth"));
    }

    #[test]
    fn long_polls_count_while_waiting() {
        let m = Metrics::new("api");
        let g = m.http.long_poll();
        assert!(m.render(None).contains("scanledger_long_polls_waiting 1"));
        g.finish(LongPollOutcome::Late);
        let text = m.render(None);
        assert!(text.contains("scanledger_long_polls_waiting 0"));
        assert!(text.contains("scanledger_long_polls_total{outcome=\"late\"} 1"));
    }
}
