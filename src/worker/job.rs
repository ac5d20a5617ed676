//! The work a claimed attempt does, behind a trait so the runtime can be tested with
//! jobs that succeed, fail, hang or panic on demand.

use futures_util::future::BoxFuture;
use tokio::sync::watch;

use crate::domain::{FailureCode, Finding, Phase, Progress, ScanId, ScanSummary, SubscriptionId};

/// What to scan.
#[derive(Clone, Debug)]
pub struct ScanTarget {
    pub scan_id: ScanId,
    pub attempt: i32,
    pub subscription_id: SubscriptionId,
    pub rules: Vec<String>,
    /// Mutes in effect when the attempt started: muted findings are kept and marked,
    /// but count toward neither the score nor `--fail-on`.
    pub mutes: std::sync::Arc<crate::domain::governance::MuteList>,
}

/// A failed attempt: a public code, and details that only ever reach the logs.
/// `Display` shows the code and its public message only, so formatting the error
/// anywhere cannot leak the detail (request ids, upstream error codes).
#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {}", code.public_message())]
pub struct ScanError {
    pub code: FailureCode,
    /// Raw error text for operators (may hold request ids); never shown to clients.
    pub detail: String,
}

impl ScanError {
    pub fn new(code: FailureCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

/// What a successful attempt produced.
#[derive(Clone, Debug, Default)]
pub struct ScanReport {
    pub summary: ScanSummary,
    pub findings: Vec<Finding>,
}

/// A scan implementation.
pub trait ScanJob: Send + Sync + 'static {
    fn run(
        &self,
        target: ScanTarget,
        progress: ProgressReporter,
    ) -> BoxFuture<'static, Result<ScanReport, ScanError>>;
}

/// Progress a job reports; the runtime sends the latest value with each heartbeat.
#[derive(Clone, Debug)]
pub struct ProgressReporter {
    tx: std::sync::Arc<watch::Sender<Progress>>,
}

impl ProgressReporter {
    pub fn new() -> (Self, watch::Receiver<Progress>) {
        let (tx, rx) = watch::channel(Progress::default());
        (Self { tx: tx.into() }, rx)
    }

    pub fn phase(&self, phase: Phase) {
        self.tx.send_modify(|p| p.phase = phase);
    }

    pub fn resources_seen(&self, n: u64) {
        self.tx.send_modify(|p| p.resources_seen += n);
    }

    pub fn rules_evaluated(&self, n: u64) {
        self.tx.send_modify(|p| p.rules_evaluated += n);
    }
}
