//! One attempt: run the job in its own task (so a panic is contained), heartbeat while
//! it runs, and record its outcome at the stream version this attempt last wrote.

use std::sync::Arc;

use tokio::task::JoinError;
use tracing::Instrument;
use uuid::Uuid;

use super::{ProgressReporter, ScanError, ScanReport, ScanTarget, Shared, WorkerEvent};
use crate::domain::{Completed, Event, Failed, FailureCode, Heartbeat, PublicError};
use crate::ledger::{AppendError, Claim, NewEvent};

pub(super) async fn run(shared: Arc<Shared>, claim: Claim) {
    let span = tracing::info_span!("scan", scan_id = %claim.scan_id, attempt = claim.attempt);
    run_inner(shared, claim).instrument(span).await
}

async fn run_inner(shared: Arc<Shared>, claim: Claim) {
    let cfg = &shared.cfg;
    let (progress, progress_rx) = ProgressReporter::new();
    let target = ScanTarget {
        scan_id: claim.scan_id,
        attempt: claim.attempt,
        subscription_id: claim.subscription_id.clone(),
        rules: claim.rules.clone(),
    };
    tracing::info!("attempt started");
    let mut job = tokio::spawn(shared.job.run(target, progress).in_current_span());
    let mut version = claim.version;
    let mut hard_stop = shared.hard_stop.clone();
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + cfg.heartbeat, cfg.heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let outcome = loop {
        tokio::select! {
            res = &mut job => break outcome(&shared, &claim, res),
            _ = ticker.tick() => {
                let progress = progress_rx.borrow().clone();
                let beat = Event::Heartbeat(Heartbeat { lease_ms: cfg.lease.as_millis() as u64, progress });
                match shared.append(event(&shared, &claim, version, beat)).await {
                    Ok(e) => {
                        version = e.version;
                        shared.emit(WorkerEvent::Heartbeat { scan_id: claim.scan_id, attempt: claim.attempt });
                    }
                    Err(e) if e.is_lost() => {
                        // Timed out or cancelled meanwhile: someone else owns the scan now.
                        job.abort();
                        tracing::warn!(error = %e, "attempt lost its lease; abandoning it");
                        shared.emit(WorkerEvent::Lost { scan_id: claim.scan_id, attempt: claim.attempt });
                        return;
                    }
                    // The lease still has time; the next tick tries again.
                    Err(e) => tracing::warn!(error = %e, "heartbeat not recorded"),
                }
            }
            _ = stopped(&mut hard_stop) => {
                job.abort();
                break failed(&shared, &claim, FailureCode::WorkerShutdown, Uuid::new_v4());
            }
        }
    };

    let mut completed = matches!(outcome, Event::Completed(_));
    let mut outcome = event(&shared, &claim, version, outcome);
    // A database blip must not waste a finished scan: retry the outcome while the lease
    // would still hold. Retrying is safe: a duplicate is refused by the ledger.
    let deadline = tokio::time::Instant::now() + cfg.lease;
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        match shared.append(outcome.clone()).await {
            Ok(_) => {
                tracing::info!(completed, "attempt finished");
                shared.emit(WorkerEvent::Finished {
                    scan_id: claim.scan_id,
                    attempt: claim.attempt,
                    completed,
                });
            }
            // A value the ledger cannot store fails this scan alone, with its own code;
            // the same data would fail every retry.
            Err(e @ AppendError::Unstorable { .. }) if completed => {
                let correlation_id = Uuid::new_v4();
                tracing::error!(%correlation_id, error = %e, "the scan's results cannot be stored");
                let fail = failed(
                    &shared,
                    &claim,
                    FailureCode::UnstorableResult,
                    correlation_id,
                );
                outcome = event(&shared, &claim, version, fail);
                completed = false;
                continue;
            }
            Err(e) if e.is_lost() => {
                tracing::warn!(error = %e, "outcome rejected: the attempt was timed out or cancelled");
                shared.emit(WorkerEvent::Lost {
                    scan_id: claim.scan_id,
                    attempt: claim.attempt,
                });
            }
            Err(e) if tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(error = %e, retry_in = ?pause, "outcome not recorded yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(5));
                continue;
            }
            // The lease will run out and the reaper will hand the scan to another attempt.
            Err(e) => tracing::error!(error = %e, "outcome not recorded; the scan will be retried"),
        }
        return;
    }
}

/// Resolves when the grace period is over (the guard `wait_for` returns is not `Send`).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}

fn event(shared: &Shared, claim: &Claim, version: i32, event: Event) -> NewEvent {
    NewEvent {
        scan_id: claim.scan_id,
        expected_version: version,
        attempt: claim.attempt,
        worker_id: Some(shared.cfg.id.clone()),
        event,
    }
}

fn outcome(
    shared: &Shared,
    claim: &Claim,
    res: Result<Result<ScanReport, ScanError>, JoinError>,
) -> Event {
    let correlation_id = Uuid::new_v4();
    match res {
        Ok(Ok(report)) => Event::Completed(Completed {
            origin: None,
            summary: report.summary,
            findings: report.findings.into(),
        }),
        Ok(Err(e)) => {
            tracing::warn!(%correlation_id, code = ?e.code, detail = %e.detail, "scan failed");
            failed(shared, claim, e.code, correlation_id)
        }
        Err(e) => {
            let what = if e.is_panic() {
                let panic = e.into_panic();
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".into())
            } else {
                "scan task cancelled".into()
            };
            tracing::error!(%correlation_id, panic = %what, "scan panicked");
            failed(shared, claim, FailureCode::Internal, correlation_id)
        }
    }
}

fn failed(shared: &Shared, claim: &Claim, code: FailureCode, correlation_id: Uuid) -> Event {
    let retryable = code.retryable();
    // A scan handed back at shutdown is picked up at once, not after a back-off.
    let retry_in_ms = if code == FailureCode::WorkerShutdown {
        (retryable && claim.attempt < claim.max_attempts).then_some(0)
    } else {
        shared
            .cfg
            .retry
            .retry_in(claim.attempt, claim.max_attempts, retryable)
            .map(|d| d.as_millis() as u64)
    };
    Event::Failed(Failed {
        origin: None,
        error: PublicError::new(code, correlation_id),
        retryable,
        retry_in_ms,
    })
}
