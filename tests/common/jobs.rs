//! Scripted scan jobs and the workers that run them: script what each attempt of a scan
//! does, request the scan, and wait until its attempt finished.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use scanledger::domain::{FailureCode, ScanId, ScanSummary, WorkerId};
use scanledger::ledger::{Ledger, NewScan};
use scanledger::worker::{
    ProgressReporter, RetryPolicy, ScanError, ScanJob, ScanReport, ScanTarget, ShutdownTrigger,
    Worker, WorkerConfig, WorkerEvent,
};
use tokio::sync::broadcast;

use super::{requested, SUB};

/// What a scripted job does on one attempt.
#[derive(Clone, Debug)]
pub enum Behaviour {
    Succeed,
    /// Succeeds with these findings.
    Find(Vec<scanledger::domain::Finding>),
    Fail(FailureCode),
    /// Never finishes (until aborted).
    Hang,
    Panic,
    /// Finishes after the given time.
    Slow(Duration),
    /// Blocks its thread (and so a current-thread runtime, heartbeats included) for
    /// the given time, then succeeds: a stalled process.
    Freeze(Duration),
    /// Succeeds with these findings once the test adds a permit to the gate.
    Gate(
        Arc<tokio::sync::Semaphore>,
        Vec<scanledger::domain::Finding>,
    ),
}

/// A job whose behaviour per scan is scripted attempt by attempt; unscripted scans use
/// the default behaviour.
#[derive(Clone)]
pub struct ScriptedJob {
    default: Behaviour,
    script: Arc<Mutex<HashMap<ScanId, VecDeque<Behaviour>>>>,
}

impl ScriptedJob {
    pub fn new(default: Behaviour) -> Self {
        Self {
            default,
            script: Arc::default(),
        }
    }

    pub fn script(&self, id: ScanId, steps: impl IntoIterator<Item = Behaviour>) {
        self.script
            .lock()
            .unwrap()
            .insert(id, steps.into_iter().collect());
    }
}

impl ScanJob for ScriptedJob {
    fn run(
        &self,
        target: ScanTarget,
        progress: ProgressReporter,
    ) -> BoxFuture<'static, Result<ScanReport, ScanError>> {
        let step = self
            .script
            .lock()
            .unwrap()
            .get_mut(&target.scan_id)
            .and_then(|q| q.pop_front())
            .unwrap_or_else(|| self.default.clone());
        Box::pin(async move {
            progress.resources_seen(1);
            match step {
                Behaviour::Succeed => Ok(ScanReport {
                    summary: ScanSummary {
                        resources_seen: 1,
                        ..Default::default()
                    },
                    findings: vec![],
                }),
                Behaviour::Find(findings) => Ok(ScanReport {
                    // Consistent with its findings, as a real scan's summary is.
                    summary: ScanSummary {
                        resources_seen: 1,
                        findings: findings.len() as u64,
                        findings_by_severity: findings.iter().fold(
                            Default::default(),
                            |mut m: std::collections::BTreeMap<String, u64>, f| {
                                *m.entry(f.rule.severity.as_str().to_string()).or_default() += 1;
                                m
                            },
                        ),
                        ..Default::default()
                    },
                    findings,
                }),
                Behaviour::Fail(code) => Err(ScanError::new(
                    code,
                    "scripted failure with secret-ish detail",
                )),
                Behaviour::Hang => std::future::pending().await,
                Behaviour::Panic => panic!("scripted panic"),
                Behaviour::Slow(d) => {
                    tokio::time::sleep(d).await;
                    Ok(ScanReport::default())
                }
                Behaviour::Freeze(d) => {
                    std::thread::sleep(d);
                    Ok(ScanReport::default())
                }
                Behaviour::Gate(gate, findings) => {
                    gate.acquire().await.expect("gate open").forget();
                    Ok(ScanReport {
                        summary: ScanSummary {
                            findings: findings.len() as u64,
                            ..Default::default()
                        },
                        findings,
                    })
                }
            }
        })
    }
}

/// Short timings so lifecycle tests run in seconds.
pub fn fast_config(id: &str) -> WorkerConfig {
    WorkerConfig {
        id: WorkerId::new(id),
        concurrency: 8,
        heartbeat: Duration::from_millis(100),
        lease: Duration::from_millis(1000),
        poll: Duration::from_millis(200),
        reaper_interval: Duration::from_millis(100),
        grace: Duration::from_secs(5),
        claim_batch: 16,
        retry: RetryPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
        },
        // Most tests request many scans of one subscription; exclusivity has its own test.
        one_per_subscription: false,
        // Schedules have their own tests, which tick the scheduler themselves.
        schedule_tick: None,
    }
}

pub struct RunningWorker {
    pub trigger: ShutdownTrigger,
    pub events: broadcast::Receiver<WorkerEvent>,
    pub handle: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    /// Trigger shutdown and wait for `run` to return.
    pub async fn stop(self) {
        self.trigger.trigger();
        self.handle.await.expect("worker task");
    }
}

pub fn spawn_worker(ledger: &Ledger, job: Arc<dyn ScanJob>, cfg: WorkerConfig) -> RunningWorker {
    let worker = Worker::new(ledger.clone(), job, cfg).expect("valid config");
    let events = worker.subscribe();
    let (trigger, shutdown) = scanledger::worker::Shutdown::new();
    let handle = tokio::spawn(worker.run(shutdown));
    RunningWorker {
        trigger,
        events,
        handle,
    }
}

/// Wait for a worker event matching `pred`.
pub async fn wait_event(
    events: &mut broadcast::Receiver<WorkerEvent>,
    timeout: Duration,
    pred: impl Fn(&WorkerEvent) -> bool,
) -> WorkerEvent {
    tokio::time::timeout(timeout, async {
        loop {
            match events.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("worker events closed: {e}"),
            }
        }
    })
    .await
    .expect("timed out waiting for a worker event")
}

/// Wait until `worker` reports the end of an attempt of scan `id`.
pub async fn wait_finished(
    worker: &mut RunningWorker,
    id: ScanId,
    timeout: Duration,
) -> WorkerEvent {
    wait_event(
        &mut worker.events,
        timeout,
        |e| matches!(e, WorkerEvent::Finished { scan_id, .. } if *scan_id == id),
    )
    .await
}

/// Script `steps` for scan `id` (already requested), start a worker named `name` on
/// `job`, wait until it finished the scan's attempt, and stop it: no worker runs once
/// this returns.
pub async fn run_scripted(
    ledger: &Ledger,
    job: &Arc<ScriptedJob>,
    id: ScanId,
    steps: impl IntoIterator<Item = Behaviour>,
    name: &str,
) {
    job.script(id, steps);
    let mut w = spawn_worker(ledger, job.clone(), fast_config(name));
    wait_finished(&mut w, id, Duration::from_secs(10)).await;
    w.stop().await;
}

/// Script `steps` for a new scan of [`SUB`], request it, and wait until `worker` (which
/// runs `job`) finished its attempt. Scripted before it is requested: the worker may
/// claim it at once.
pub async fn request_scripted(
    ledger: &Ledger,
    job: &ScriptedJob,
    worker: &mut RunningWorker,
    steps: impl IntoIterator<Item = Behaviour>,
) -> ScanId {
    let id = ScanId::new();
    job.script(id, steps);
    ledger
        .request(vec![NewScan {
            scan_id: id,
            request: requested(3),
        }])
        .await
        .unwrap();
    wait_finished(worker, id, Duration::from_secs(10)).await;
    id
}

pub fn finding(
    rule_id: &str,
    resource: &str,
    severity: scanledger::domain::Severity,
    category: &str,
) -> scanledger::domain::Finding {
    let resource_id = format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{resource}");
    scanledger::domain::Finding {
        fingerprint: scanledger::domain::Finding::fingerprint(rule_id, &resource_id, ""),
        rule: std::sync::Arc::new(scanledger::domain::FindingRule {
            id: rule_id.into(),
            name: format!("Rule {rule_id}").into(),
            severity,
            category: category.into(),
            description: "what is wrong".into(),
            remediation: "how to fix it".into(),
            frameworks: serde_json::json!({"cis_azure": ["3.1"]}).into(),
        }),
        resource_name: resource.into(),
        resource_id: resource_id.into(),
        resource_type: "Microsoft.Storage/storageAccounts".into(),
        details: serde_json::json!({"property": "supportsHttpsTrafficOnly", "value": false}).into(),
        detected_at: None,
    }
}
