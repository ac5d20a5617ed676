//! One attempt: run the job in its own task (so a panic is contained), heartbeat while
//! it runs, stop it when its lease must have run out (self-fencing), and record its
//! outcome at the stream version this attempt last wrote, however long the database is
//! away, for as long as the ledger would still take it.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use super::appender::{self, Reply};
use super::{ProgressReporter, ScanError, ScanReport, ScanTarget, Shared, WorkerEvent};
use crate::domain::{Completed, Event, Failed, FailureCode, Heartbeat, PublicError};
use crate::ledger::{AppendError, AttemptFate, Claim, NewEvent};
use crate::metrics::AttemptOutcome;

/// First pause between two tries of an outcome; it doubles up to [`OUTCOME_RETRY_MAX`].
const OUTCOME_RETRY_FIRST: Duration = Duration::from_millis(50);
/// Longest pause between two tries of an outcome: a held outcome lands within about a
/// second of the database coming back.
const OUTCOME_RETRY_MAX: Duration = Duration::from_secs(1);
/// Once the grace period is over (shutdown), how much longer an outcome may be tried
/// before the worker gives up on it and exits: the attempt is then timed out by a reaper
/// and the scan runs again.
pub(super) const SHUTDOWN_OUTCOME_WINDOW: Duration = Duration::from_secs(5);

type JobResult = Result<Result<ScanReport, ScanError>, JoinError>;

/// Run the attempt `claim`; `claim_sent` is when the claim was sent to the database,
/// which grants the lease from its own (later) commit time.
pub(super) async fn run(shared: Arc<Shared>, claim: Claim, claim_sent: Instant) {
    let span = tracing::info_span!("scan", scan_id = %claim.scan_id, attempt = claim.attempt);
    let metrics = shared.metrics.clone();
    metrics.attempt_started();
    let started = Instant::now();
    let outcome = run_inner(shared, claim, claim_sent).instrument(span).await;
    metrics.attempt_ended(outcome, started.elapsed().as_secs_f64());
}

async fn run_inner(shared: Arc<Shared>, claim: Claim, claim_sent: Instant) -> AttemptOutcome {
    let cfg = &shared.cfg;
    let (progress, progress_rx) = ProgressReporter::new();
    let target = ScanTarget {
        scan_id: claim.scan_id,
        attempt: claim.attempt,
        subscription_id: claim.subscription_id.clone(),
        rules: claim.rules.clone(),
        mutes: shared.mutes.active(&shared.ledger).await,
    };
    tracing::info!(started_at = %wall_clock(), "scan job started");
    let mut job = tokio::spawn(shared.job.run(target, progress).in_current_span());
    let mut version = claim.version;
    let mut hard_stop = shared.hard_stop.clone();
    let mut ticker = tokio::time::interval_at(Instant::now() + cfg.heartbeat, cfg.heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When the newest append that the ledger confirmed (the claim, then each heartbeat)
    // was *sent*. The database starts the lease at its commit, which is later, so
    // `lease_base + lease` is never after the lease's real end (leases are judged by the
    // database clock; both clocks run at the same rate).
    let mut lease_base = claim_sent;
    let fence_after = cfg.lease - cfg.fence_margin();
    // One heartbeat at a time: (when it was sent, its result).
    let mut in_flight: Option<(Instant, Reply)> = None;

    let outcome = loop {
        let fence_at = lease_base + fence_after;
        tokio::select! {
            // A finished job beats the fence: it no longer runs, and its outcome is
            // retried for as long as the ledger would take it.
            biased;
            res = &mut job => {
                job_stopped("finished");
                break outcome(&shared, &claim, res);
            }
            _ = stopped(&mut hard_stop) => {
                if let Some(res) = abort(&mut job).await {
                    job_stopped("finished");
                    break outcome(&shared, &claim, res);
                }
                job_stopped("shutdown");
                break failed(&shared, &claim, FailureCode::WorkerShutdown, Uuid::new_v4());
            }
            (sent, res) = heartbeat_reply(&mut in_flight) => {
                in_flight = None;
                match res {
                    Ok(e) => {
                        version = e.version;
                        lease_base = lease_base.max(sent);
                        shared.emit(WorkerEvent::Heartbeat { scan_id: claim.scan_id, attempt: claim.attempt });
                    }
                    Err(e) if e.is_lost() => {
                        // Timed out or cancelled meanwhile, or an earlier heartbeat of ours
                        // was stored although its acknowledgement was lost: ask the ledger,
                        // but never past the fence.
                        let fate = shared.ledger.attempt_fate(claim.scan_id, claim.attempt, &cfg.id, version);
                        match tokio::time::timeout_at(fence_at, fate).await {
                            Ok(Ok(AttemptFate::Held { version: v })) => {
                                tracing::info!(version = v, "an earlier heartbeat was recorded although its acknowledgement was lost");
                                version = v;
                            }
                            Ok(Ok(fate)) => {
                                let _ = abort(&mut job).await;
                                job_stopped("lost");
                                tracing::warn!(error = %e, ?fate, "attempt lost its lease; abandoning it");
                                shared.emit(WorkerEvent::Lost { scan_id: claim.scan_id, attempt: claim.attempt });
                                return AttemptOutcome::Lost;
                            }
                            Ok(Err(read)) => {
                                shared.health.result("heartbeat", &Err::<(), _>(read));
                                tracing::warn!(error = %e, "heartbeat refused and the ledger could not be read; the next tick tries again");
                            }
                            // The fence branch takes over.
                            Err(_) => {}
                        }
                    }
                    // The lease may still have time; the next tick tries again. An
                    // outage is logged once, by the health tracker.
                    Err(e) if e.is_unreachable() => tracing::debug!(error = %e, "heartbeat not recorded"),
                    Err(e) => tracing::warn!(error = %e, "heartbeat not recorded"),
                }
            }
            _ = tokio::time::sleep_until(fence_at) => {
                // No heartbeat confirmed for (almost) a lease: the lease may have run out by
                // the database clock and another worker may claim the scan. Stop running it
                // and write nothing: the reaper times the attempt out.
                if let Some(res) = abort(&mut job).await {
                    job_stopped("finished");
                    break outcome(&shared, &claim, res);
                }
                job_stopped("fenced");
                tracing::error!(
                    lease = ?cfg.lease,
                    since_confirmed = ?lease_base.elapsed(),
                    "no heartbeat confirmed within the lease: scan aborted (self-fenced); it will be timed out and run again"
                );
                shared.emit(WorkerEvent::Fenced { scan_id: claim.scan_id, attempt: claim.attempt });
                return AttemptOutcome::Fenced;
            }
            _ = ticker.tick(), if in_flight.is_none() => {
                let progress = progress_rx.borrow().clone();
                let beat = Event::Heartbeat(Heartbeat { lease_ms: cfg.lease.as_millis() as u64, progress });
                let sent = Instant::now();
                in_flight = Some((sent, shared.heartbeats.submit(event(&shared, &claim, version, beat)).await));
            }
        }
    };

    // The outcome follows the heartbeat in flight, if any: its version comes first.
    if let Some((_, rx)) = in_flight.take() {
        if let Ok(Ok(e)) = tokio::time::timeout(cfg.heartbeat, appender::reply(rx)).await {
            version = e.version;
        }
    }
    record_outcome(&shared, &claim, version, outcome).await
}

/// Record the outcome; retrying is safe, since the ledger refuses a second outcome of an
/// attempt and a stale version. Retries go on, with capped back-off, until the outcome is
/// recorded or the ledger says the attempt is no longer this worker's (a `TimedOut` or a
/// `Cancelled` was recorded) — or, at shutdown, [`SHUTDOWN_OUTCOME_WINDOW`] after the
/// grace period.
async fn record_outcome(
    shared: &Shared,
    claim: &Claim,
    version: i32,
    outcome: Event,
) -> AttemptOutcome {
    let mut completed = matches!(outcome, Event::Completed(_));
    let mut outcome = event(shared, claim, version, outcome);
    let mut hard_stop = shared.hard_stop.clone();
    let mut deadline: Option<Instant> = None;
    let mut pause = OUTCOME_RETRY_FIRST;
    let held_since = Instant::now();
    let mut held = false;
    let finished = |completed: bool, event: &Event| {
        if let (true, Event::Completed(c)) = (completed, event) {
            count_completed(shared, &c.summary);
        }
        shared.emit(WorkerEvent::Finished {
            scan_id: claim.scan_id,
            attempt: claim.attempt,
            completed,
        });
        if completed {
            AttemptOutcome::Completed
        } else {
            AttemptOutcome::Failed
        }
    };
    loop {
        if deadline.is_none() && *hard_stop.borrow() {
            deadline = Some(Instant::now() + SHUTDOWN_OUTCOME_WINDOW);
        }
        let Some(result) = until(deadline, shared.outcomes.append(outcome.clone())).await else {
            return gave_up(completed);
        };
        match result {
            Ok(_) => {
                if held {
                    tracing::warn!(completed, held_for = ?held_since.elapsed(), "held outcome recorded: attempt finished");
                } else {
                    tracing::info!(completed, "attempt finished");
                }
                return finished(completed, &outcome.event);
            }
            // A value the ledger cannot store fails this scan alone, with its own code;
            // the same data would fail every retry.
            Err(e @ AppendError::Unstorable { .. }) if completed => {
                let correlation_id = Uuid::new_v4();
                tracing::error!(%correlation_id, error = %e, "the scan's results cannot be stored");
                let fail = failed(shared, claim, FailureCode::UnstorableResult, correlation_id);
                outcome.event = fail;
                completed = false;
                continue;
            }
            Err(e) if e.is_lost() => {
                // Someone else wrote to the scan, or an earlier append of ours (this
                // outcome, or a heartbeat) was stored although its acknowledgement was lost.
                let fate = shared.ledger.attempt_fate(
                    claim.scan_id,
                    claim.attempt,
                    &shared.cfg.id,
                    outcome.expected_version,
                );
                let Some(fate) = until(deadline, fate).await else {
                    return gave_up(completed);
                };
                match fate {
                    Ok(AttemptFate::Recorded { version, completed }) => {
                        tracing::warn!(version, completed, "outcome was already recorded (its acknowledgement was lost): attempt finished");
                        return finished(completed, &outcome.event);
                    }
                    Ok(AttemptFate::Held { version }) if version != outcome.expected_version => {
                        tracing::info!(version, "an earlier heartbeat was recorded although its acknowledgement was lost; recording the outcome after it");
                        outcome.expected_version = version;
                        continue;
                    }
                    Ok(AttemptFate::Held { .. }) => {
                        // Nothing changed, yet the ledger refused: it refuses this event
                        // itself, and would refuse every retry.
                        tracing::error!(error = %e, "the ledger refused the outcome; the scan will be timed out and run again");
                    }
                    Ok(fate) => {
                        tracing::warn!(error = %e, ?fate, "outcome rejected: the attempt was timed out or cancelled");
                    }
                    Err(read) => {
                        shared.health.result("outcome", &Err::<(), _>(read));
                        if !pause_or_stop(shared, &mut pause, &mut hard_stop, deadline).await {
                            return gave_up(completed);
                        }
                        continue;
                    }
                }
                shared.emit(WorkerEvent::Lost {
                    scan_id: claim.scan_id,
                    attempt: claim.attempt,
                });
                return AttemptOutcome::Lost;
            }
            Err(e) => {
                if !held {
                    held = true;
                    tracing::warn!(error = %e, completed, "outcome not recorded: holding it and retrying until the database takes it");
                } else {
                    tracing::debug!(error = %e, "outcome still not recorded");
                }
                if !pause_or_stop(shared, &mut pause, &mut hard_stop, deadline).await {
                    return gave_up(completed);
                }
            }
        }
    }
}

fn gave_up(completed: bool) -> AttemptOutcome {
    tracing::error!(
        completed,
        "outcome not recorded before shutdown; the attempt will be timed out and the scan run again"
    );
    AttemptOutcome::Abandoned
}

/// A recorded `Completed`: its findings by severity and its rules' evaluations and
/// errors. Severities outside the fixed set are not counted (bounded labels).
fn count_completed(shared: &Shared, summary: &crate::domain::ScanSummary) {
    let findings = crate::domain::Severity::ALL.into_iter().filter_map(|s| {
        let name = s.as_str();
        summary.findings_by_severity.get(name).map(|n| (name, *n))
    });
    let evaluated = summary.rules.values().map(|t| t.evaluated).sum();
    let errors = summary.rules.iter().map(|(id, t)| (id.as_str(), t.errored));
    shared.metrics.completed(findings, evaluated, errors);
}

/// Sleep `pause` (then double it, capped), or until the database is found back or the
/// hard stop fires; false once the shutdown deadline has passed.
async fn pause_or_stop(
    shared: &Shared,
    pause: &mut Duration,
    hard_stop: &mut tokio::sync::watch::Receiver<bool>,
    deadline: Option<Instant>,
) -> bool {
    let wake = Instant::now() + *pause;
    let wake = deadline.map_or(wake, |d| wake.min(d));
    let down = !shared.health.reachable();
    tokio::select! {
        _ = tokio::time::sleep_until(wake) => {}
        // Held outcomes go first when the database is back (see `reaper.rs`).
        _ = shared.health.wait_reachable(), if down => {}
        _ = stopped(hard_stop), if deadline.is_none() => {}
    }
    *pause = (*pause * 2).min(OUTCOME_RETRY_MAX);
    deadline.is_none_or(|d| Instant::now() < d)
}

/// `fut`, unless `deadline` passes first.
async fn until<F: std::future::Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// The reply of the heartbeat in flight (never resolves when there is none).
async fn heartbeat_reply(
    in_flight: &mut Option<(Instant, Reply)>,
) -> (Instant, Result<crate::domain::RecordedEvent, AppendError>) {
    match in_flight {
        Some((sent, rx)) => {
            let res = rx
                .await
                .unwrap_or_else(|_| Err(AppendError::from(sqlx::Error::PoolClosed)));
            (*sent, res)
        }
        None => std::future::pending().await,
    }
}

/// Abort the job and wait until it has stopped; its result if it had finished first.
async fn abort(job: &mut JoinHandle<Result<ScanReport, ScanError>>) -> Option<JobResult> {
    job.abort();
    match job.await {
        Err(e) if e.is_cancelled() => None,
        res => Some(res),
    }
}

/// The job of this attempt no longer runs: logged with the wall-clock time, so that an
/// operator (or a test) can check that no two attempts of a scan ever ran at once.
fn job_stopped(reason: &'static str) {
    tracing::info!(reason, stopped_at = %wall_clock(), "scan job stopped");
}

fn wall_clock() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
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

fn outcome(shared: &Shared, claim: &Claim, res: JobResult) -> Event {
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
