//! The worker runtime against a real PostgreSQL: claim races, leases and fencing,
//! retries, panics and shutdown. After each scenario, `scan_status` must equal the
//! fold of the ledger.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use scanledger::domain::{Event, EventKind, FailureCode, WorkerId};
use scanledger::ledger::Ledger;
use scanledger::projection::ScanState;
use scanledger::worker::WorkerEvent;

fn kinds(events: &[scanledger::domain::RecordedEvent]) -> Vec<(EventKind, i32)> {
    events.iter().map(|e| (e.event.kind(), e.attempt)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_workers_race_for_two_thousand_scans_and_each_attempt_has_one_owner() {
    let env = env().await;
    let ids = request_scans(&env.ledger, 2000, 3).await;
    let job = Arc::new(ScriptedJob::new(Behaviour::Succeed));
    let mut workers = Vec::new();
    for i in 0..16 {
        // Each worker has its own pool: separate connections racing for the same rows.
        let pool = env.db.database.pool(3).await.unwrap();
        let mut cfg = fast_config(&format!("w{i}"));
        cfg.lease = Duration::from_secs(30);
        cfg.heartbeat = Duration::from_secs(5);
        workers.push(spawn_worker(&Ledger::new(pool), job.clone(), cfg));
    }
    wait_until(
        "all 2000 scans completed",
        Duration::from_secs(120),
        || async { count_status(&env.pool, "completed").await == 2000 },
    )
    .await;
    for w in workers {
        w.stop().await;
    }
    assert_eq!(
        count(
            &env.pool,
            "SELECT count(*) FROM scan_events WHERE kind = 'Claimed'"
        )
        .await,
        2000,
        "each scan claimed exactly once"
    );
    assert_eq!(
        count(
            &env.pool,
            "SELECT count(*) FROM scan_events WHERE kind = 'Completed'"
        )
        .await,
        2000
    );
    let claimers = count(
        &env.pool,
        "SELECT count(DISTINCT worker_id) FROM scan_events WHERE kind = 'Claimed'",
    )
    .await;
    assert!(
        claimers > 1,
        "the work was shared ({claimers} workers claimed)"
    );
    assert_eq!(ids.len(), 2000);
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_wakes_on_notify_without_waiting_for_its_poll() {
    let env = env().await;
    let mut cfg = fast_config("listener");
    cfg.poll = Duration::from_secs(3600);
    let mut w = spawn_worker(
        &env.ledger,
        Arc::new(ScriptedJob::new(Behaviour::Succeed)),
        cfg,
    );
    // Once listening and idle, only a NOTIFY can wake it within the hour-long poll.
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Listening)
    })
    .await;
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Idle)
    })
    .await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    wait_event(
        &mut w.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Finished { scan_id, completed: true, .. } if *scan_id == id),
    )
    .await;
    w.stop().await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_carry_progress_and_extend_the_lease() {
    let env = env().await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let job = Arc::new(ScriptedJob::new(Behaviour::Slow(Duration::from_millis(
        2500,
    ))));
    let mut cfg = fast_config("hb");
    cfg.lease = Duration::from_millis(600);
    let mut w = spawn_worker(&env.ledger, job, cfg);
    wait_event(&mut w.events, Duration::from_secs(20), |e| {
        matches!(e, WorkerEvent::Finished { .. })
    })
    .await;
    w.stop().await;
    let stream = env.ledger.stream(id).await.unwrap();
    let beats: Vec<_> = stream
        .iter()
        .filter_map(|e| match &e.event {
            Event::Heartbeat(h) => Some(h.clone()),
            _ => None,
        })
        .collect();
    // 2.5 s of work, heartbeats every 100 ms, lease 600 ms: it survived only by heartbeats.
    assert!(beats.len() >= 5, "{} heartbeats", beats.len());
    assert!(beats
        .iter()
        .all(|b| b.progress.resources_seen == 1 && b.lease_ms == 600));
    let row = status_of(&env.ledger, id).await;
    assert_eq!((row.status, row.attempt), (ScanState::Completed, 1));
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_is_timed_out_fenced_and_its_late_completion_rejected() {
    let env = env().await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let job = ScriptedJob::new(Behaviour::Succeed);
    job.script(
        id,
        [
            Behaviour::Freeze(Duration::from_millis(3000)),
            Behaviour::Succeed,
        ],
    );
    let job = Arc::new(job);

    // Worker A runs on its own single-threaded runtime: the freeze stalls its heartbeats.
    let (a_events_tx, a_events_rx) = std::sync::mpsc::channel();
    let db = env.db.database.clone();
    let a_job = job.clone();
    let a = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let ledger = Ledger::new(db.pool(4).await.unwrap());
            let mut cfg = fast_config("stalled");
            cfg.lease = Duration::from_millis(500);
            let mut w = spawn_worker(&ledger, a_job, cfg);
            let lost = wait_event(&mut w.events, Duration::from_secs(30), |e| {
                matches!(e, WorkerEvent::Lost { .. })
            })
            .await;
            a_events_tx.send(lost).unwrap();
            w.stop().await;
        });
    });
    wait_until(
        "worker A owns attempt 1",
        Duration::from_secs(10),
        || async { status_of(&env.ledger, id).await.worker_id.as_deref() == Some("stalled") },
    )
    .await;

    let mut b = spawn_worker(&env.ledger, job, fast_config("rescuer"));
    wait_event(&mut b.events, Duration::from_secs(20), |e| {
        matches!(e, WorkerEvent::Finished { scan_id, attempt: 2, completed: true } if *scan_id == id)
    })
    .await;
    let lost = tokio::task::spawn_blocking(move || {
        a_events_rx.recv_timeout(Duration::from_secs(30)).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        lost,
        WorkerEvent::Lost {
            scan_id: id,
            attempt: 1
        }
    );
    a.join().unwrap();
    b.stop().await;

    let stream = env.ledger.stream(id).await.unwrap();
    let k = kinds(&stream);
    assert_eq!(k.first(), Some(&(EventKind::Requested, 0)));
    assert!(k.contains(&(EventKind::TimedOut, 1)), "{k:?}");
    assert!(k.contains(&(EventKind::Claimed, 2)), "{k:?}");
    assert_eq!(k.last(), Some(&(EventKind::Completed, 2)));
    assert!(
        !k.contains(&(EventKind::Completed, 1)),
        "late completion must be rejected: {k:?}"
    );
    let timed_out = stream
        .iter()
        .find(|e| e.event.kind() == EventKind::TimedOut)
        .unwrap();
    assert_eq!(timed_out.worker_id, Some(WorkerId::new("rescuer")));
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_back_off_until_max_attempts_and_fatal_ones_end_at_once() {
    let env = env().await;
    let ids = request_scans(&env.ledger, 3, 3).await;
    let (recovers, exhausts, fatal) = (ids[0], ids[1], ids[2]);
    let job = ScriptedJob::new(Behaviour::Succeed);
    let flaky = Behaviour::Fail(FailureCode::SourceUnavailable);
    job.script(recovers, [flaky.clone(), flaky.clone(), Behaviour::Succeed]);
    job.script(exhausts, [flaky.clone(), flaky.clone(), flaky.clone()]);
    job.script(fatal, [Behaviour::Fail(FailureCode::CredentialsRejected)]);
    let mut cfg = fast_config("retrier");
    cfg.retry.base = std::time::Duration::from_millis(200);
    cfg.retry.cap = std::time::Duration::from_millis(400);
    let w = spawn_worker(&env.ledger, Arc::new(job), cfg);
    wait_until(
        "all three scans terminal",
        Duration::from_secs(30),
        || async {
            count(
                &env.pool,
                "SELECT count(*) FROM scan_status WHERE status IN ('completed','failed')",
            )
            .await
                == 3
        },
    )
    .await;
    w.stop().await;

    let r = status_of(&env.ledger, recovers).await;
    assert_eq!((r.status, r.attempt), (ScanState::Completed, 3));
    let e = status_of(&env.ledger, exhausts).await;
    assert_eq!((e.status, e.attempt), (ScanState::Failed, 3));
    assert_eq!(
        e.error.as_ref().unwrap().code,
        FailureCode::SourceUnavailable
    );
    let f = status_of(&env.ledger, fatal).await;
    assert_eq!((f.status, f.attempt), (ScanState::Failed, 1));
    assert_eq!(
        f.error.as_ref().unwrap().message,
        FailureCode::CredentialsRejected.public_message()
    );

    // Each retry waited at least the back-off its Failed event recorded.
    for id in [recovers, exhausts] {
        let stream = env.ledger.stream(id).await.unwrap();
        let mut last_failure = None;
        for e in &stream {
            match &e.event {
                Event::Failed(f) => {
                    assert!(f.retryable);
                    if e.attempt < 3 {
                        let ms = f.retry_in_ms.expect("retry planned");
                        assert!(
                            (100..=400).contains(&ms),
                            "{ms} ms outside [base/2 .. cap] for attempt {}",
                            e.attempt
                        );
                    } else {
                        assert_eq!(f.retry_in_ms, None, "no retry after the last attempt");
                    }
                    last_failure = Some((e.recorded_at, f.retry_in_ms.unwrap_or(0)));
                }
                Event::Claimed(_) if e.attempt > 1 => {
                    let (at, ms) = last_failure.expect("a failure before a retry");
                    assert!(
                        e.recorded_at >= at + chrono::Duration::milliseconds(ms as i64),
                        "retried before its back-off"
                    );
                }
                _ => {}
            }
        }
    }
    let fatal_stream = env.ledger.stream(fatal).await.unwrap();
    assert_eq!(
        kinds(&fatal_stream),
        vec![
            (EventKind::Requested, 0),
            (EventKind::Claimed, 1),
            (EventKind::Failed, 1)
        ]
    );
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_scan_fails_with_a_sanitized_error_and_the_worker_lives_on() {
    let env = env().await;
    let ids = request_scans(&env.ledger, 1, 3).await;
    let job = ScriptedJob::new(Behaviour::Succeed);
    job.script(ids[0], [Behaviour::Panic]);
    let mut w = spawn_worker(&env.ledger, Arc::new(job), fast_config("panicky"));
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(
            e,
            WorkerEvent::Finished {
                completed: false,
                ..
            }
        )
    })
    .await;
    let row = status_of(&env.ledger, ids[0]).await;
    assert_eq!(row.status, ScanState::Failed);
    let err = row.error.unwrap();
    assert_eq!(err.code, FailureCode::Internal);
    assert_eq!(err.message, FailureCode::Internal.public_message());
    assert!(err.correlation_id.is_some());
    let raw: String =
        sqlx::query_scalar("SELECT payload::text FROM scan_events WHERE kind = 'Failed'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(
        !raw.contains("scripted panic"),
        "panic text leaked into the ledger: {raw}"
    );

    // The same worker goes on to run the next scan.
    let next = request_scans(&env.ledger, 1, 3).await[0];
    wait_event(
        &mut w.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Finished { scan_id, completed: true, .. } if *scan_id == next),
    )
    .await;
    w.stop().await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_scans_finish_within_the_grace_period() {
    let env = env().await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let job = Arc::new(ScriptedJob::new(Behaviour::Slow(Duration::from_millis(
        800,
    ))));
    let mut w = spawn_worker(&env.ledger, job, fast_config("graceful"));
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Claimed { .. })
    })
    .await;
    w.trigger.trigger();
    // Requested once the claim loop has stopped (a claim in flight when shutdown began
    // may still land), while the running scan is still within its grace period: it must
    // not be claimed by this worker.
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Draining)
    })
    .await;
    let late = request_scans(&env.ledger, 1, 3).await[0];
    w.handle.await.unwrap();
    assert_eq!(
        status_of(&env.ledger, id).await.status,
        ScanState::Completed
    );
    assert_eq!(
        status_of(&env.ledger, late).await.status,
        ScanState::Pending
    );
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hands_back_scans_that_outlive_the_grace_period_for_an_immediate_retry() {
    let env = env().await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let job = ScriptedJob::new(Behaviour::Succeed);
    job.script(id, [Behaviour::Hang, Behaviour::Succeed]);
    let job = Arc::new(job);
    let mut cfg = fast_config("leaving");
    cfg.grace = Duration::from_millis(300);
    cfg.lease = Duration::from_secs(60);
    let mut w = spawn_worker(&env.ledger, job.clone(), cfg);
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Claimed { .. })
    })
    .await;
    w.stop().await;

    let row = status_of(&env.ledger, id).await;
    assert_eq!((row.status, row.attempt), (ScanState::Pending, 1));
    assert_eq!(
        row.error.as_ref().unwrap().code,
        FailureCode::WorkerShutdown
    );
    let stream = env.ledger.stream(id).await.unwrap();
    let Event::Failed(f) = &stream.last().unwrap().event else {
        panic!("last event is not Failed")
    };
    assert!(f.retryable);
    assert_eq!(
        f.retry_in_ms,
        Some(0),
        "handed back for an immediate retry, not after the 60 s lease"
    );

    // Another worker picks it up at once.
    let mut next = spawn_worker(&env.ledger, job, fast_config("successor"));
    wait_event(&mut next.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Finished { scan_id, attempt: 2, completed: true } if *scan_id == id)
    })
    .await;
    next.stop().await;
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test]
async fn a_cancelled_scan_stops_its_worker_at_the_next_heartbeat() {
    let env = env().await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let mut w = spawn_worker(
        &env.ledger,
        Arc::new(ScriptedJob::new(Behaviour::Hang)),
        fast_config("cancelled"),
    );
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Heartbeat { .. })
    })
    .await;
    let version = status_of(&env.ledger, id).await.version;
    let cancel = scanledger::ledger::NewEvent {
        scan_id: id,
        expected_version: version,
        attempt: 0,
        worker_id: None,
        event: Event::Cancelled(scanledger::domain::Cancelled {
            origin: None,
            cancelled_by: Some("test".into()),
            reason: None,
        }),
    };
    // A heartbeat may land between the read and the append: re-read and retry, as a client would.
    let mut cancel = cancel;
    loop {
        match env.ledger.append(cancel.clone()).await {
            Ok(_) => break,
            Err(scanledger::ledger::AppendError::Conflict { .. }) => {
                cancel.expected_version = status_of(&env.ledger, id).await.version;
            }
            Err(e) => panic!("{e}"),
        }
    }
    wait_event(
        &mut w.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Lost { scan_id, .. } if *scan_id == id),
    )
    .await;
    w.stop().await;
    assert_eq!(
        status_of(&env.ledger, id).await.status,
        ScanState::Cancelled
    );
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_subscription_runs_one_scan_at_a_time_by_default() {
    let env = env().await;
    // Two scans of one subscription, one of another; two workers with room for all.
    let ids = request_scans(&env.ledger, 2, 3).await;
    let other = scanledger::ledger::NewScan {
        scan_id: scanledger::domain::ScanId::new(),
        request: scanledger::domain::Requested {
            origin: None,
            subscription_id: scanledger::domain::SubscriptionId::parse(
                &uuid::Uuid::new_v4().to_string(),
            )
            .unwrap(),
            ..requested(3)
        },
    };
    env.ledger.request(vec![other.clone()]).await.unwrap();
    let job = Arc::new(ScriptedJob::new(Behaviour::Slow(Duration::from_millis(
        500,
    ))));
    let mut workers = Vec::new();
    for name in ["a", "b"] {
        let mut cfg = fast_config(name);
        cfg.one_per_subscription = true;
        workers.push(spawn_worker(&env.ledger, job.clone(), cfg));
    }
    wait_until(
        "all three scans completed",
        Duration::from_secs(30),
        || async { count_status(&env.pool, "completed").await == 3 },
    )
    .await;
    for w in workers {
        w.stop().await;
    }
    // The two scans of one subscription never overlapped: one was claimed after the other ended.
    let first = env.ledger.stream(ids[0]).await.unwrap();
    let second = env.ledger.stream(ids[1]).await.unwrap();
    let span =
        |s: &[scanledger::domain::RecordedEvent]| (s[1].recorded_at, s.last().unwrap().recorded_at);
    let (a, b) = (span(&first), span(&second));
    assert!(a.1 <= b.0 || b.1 <= a.0, "runs overlapped: {a:?} {b:?}");
    // The other subscription's scan ran alongside, not queued behind them.
    let o = env.ledger.stream(other.scan_id).await.unwrap();
    let o_span = span(&o);
    assert!(
        o_span.0 < a.1.max(b.1),
        "the other subscription was not held back"
    );
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test]
async fn the_database_keeps_one_scan_per_subscription_whatever_a_worker_is_told() {
    let env = env().await;
    // The deployment's choice, stored once: one running scan per subscription.
    let owner = env.db.owner.pool(1).await.unwrap();
    sqlx::query("UPDATE ledger_settings SET parallel_per_subscription = false")
        .execute(&owner)
        .await
        .unwrap();
    let ids = request_scans(&env.ledger, 4, 3).await;
    let job = Arc::new(ScriptedJob::new(Behaviour::Slow(Duration::from_millis(
        300,
    ))));
    // One worker told to run scans of a subscription in parallel, one told not to.
    let mut workers = Vec::new();
    for (name, one) in [("parallel", false), ("exclusive", true)] {
        let mut cfg = fast_config(name);
        cfg.one_per_subscription = one;
        workers.push(spawn_worker(&env.ledger, job.clone(), cfg));
    }
    wait_until(
        "all four scans completed",
        Duration::from_secs(30),
        || async { count_status(&env.pool, "completed").await == 4 },
    )
    .await;
    for w in workers {
        w.stop().await;
    }
    // No two runs overlapped, whichever worker ran them.
    let mut spans = Vec::new();
    for id in &ids {
        let s = env.ledger.stream(*id).await.unwrap();
        spans.push((s[1].recorded_at, s.last().unwrap().recorded_at));
    }
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "runs overlapped: {w:?}");
    }
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test]
async fn a_finding_the_ledger_cannot_store_fails_only_its_scan() {
    let env = env().await;
    let ids = request_scans(&env.ledger, 2, 3).await;
    let job = ScriptedJob::new(Behaviour::Succeed);
    let mut bad = finding(
        "AZ-NET-001",
        "nsg",
        scanledger::domain::Severity::High,
        "network",
    );
    // PostgreSQL text cannot hold NUL (SQLSTATE 22P05).
    bad.resource_name = "nsg\u{0}bad".into();
    job.script(ids[0], [Behaviour::Find(vec![bad])]);
    job.script(
        ids[1],
        [Behaviour::Find(vec![finding(
            "AZ-STG-001",
            "ok",
            scanledger::domain::Severity::Low,
            "storage",
        )])],
    );
    let w = spawn_worker(&env.ledger, Arc::new(job), fast_config("nul"));
    wait_until("both scans finished", Duration::from_secs(30), || async {
        count_status(&env.pool, "completed").await + count_status(&env.pool, "failed").await == 2
    })
    .await;
    w.stop().await;
    let failed = status_of(&env.ledger, ids[0]).await;
    assert_eq!(failed.status, scanledger::projection::ScanState::Failed);
    let error = failed.error.expect("a public error");
    assert_eq!(
        error.code,
        scanledger::domain::FailureCode::UnstorableResult
    );
    assert!(!error.message.contains("nsg"), "{}", error.message);
    assert_eq!(
        failed.attempt, 1,
        "not retried: the same data fails the same way"
    );
    let ok = status_of(&env.ledger, ids[1]).await;
    assert_eq!(ok.status, scanledger::projection::ScanState::Completed);
    assert_eq!(ok.total_findings, Some(1));
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

/// Drain `events` until `pred` matches; returns everything seen, the match last.
async fn events_until(
    events: &mut tokio::sync::broadcast::Receiver<WorkerEvent>,
    timeout: Duration,
    pred: impl Fn(&WorkerEvent) -> bool,
) -> Vec<WorkerEvent> {
    let mut seen = Vec::new();
    tokio::time::timeout(timeout, async {
        loop {
            match events.recv().await {
                Ok(e) => {
                    let done = pred(&e);
                    seen.push(e);
                    if done {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("worker events closed: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; events so far: {seen:?}"));
    seen
}

/// Append `event` for `worker`'s attempt 1 of `id`, as that worker would: the test plays
/// the part of an append whose commit the worker never heard of.
async fn append_as(env: &TestEnv, id: scanledger::domain::ScanId, worker: &str, event: Event) {
    let version = status_of(&env.ledger, id).await.version;
    env.ledger
        .append(scanledger::ledger::NewEvent {
            scan_id: id,
            expected_version: version,
            attempt: 1,
            worker_id: Some(WorkerId::new(worker)),
            event,
        })
        .await
        .expect("appended as the worker");
}

/// A worker whose attempt 1 of a new scan waits at a gate; heartbeats far apart, so
/// none lands while the test appends in the worker's name.
async fn gated_worker(
    env: &TestEnv,
    name: &str,
) -> (
    scanledger::domain::ScanId,
    Arc<tokio::sync::Semaphore>,
    RunningWorker,
) {
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let job = ScriptedJob::new(Behaviour::Succeed);
    job.script(id, [Behaviour::Gate(gate.clone(), vec![])]);
    let mut cfg = fast_config(name);
    cfg.heartbeat = Duration::from_secs(20);
    cfg.lease = Duration::from_secs(60);
    let mut w = spawn_worker(&env.ledger, Arc::new(job), cfg);
    wait_event(
        &mut w.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Claimed { scan_id, .. } if *scan_id == id),
    )
    .await;
    (id, gate, w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_stored_although_its_acknowledgement_was_lost_counts_as_recorded() {
    let env = env().await;
    let (id, gate, mut w) = gated_worker(&env, "acked").await;
    // The worker's Completed is in the ledger, but the worker never heard back.
    append_as(
        &env,
        id,
        "acked",
        Event::Completed(scanledger::domain::Completed {
            origin: None,
            summary: Default::default(),
            findings: Default::default(),
        }),
    )
    .await;
    gate.add_permits(1);
    // Its own retry conflicts; the stream shows the outcome is its own: recorded, not lost.
    let seen = events_until(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Finished { .. } | WorkerEvent::Lost { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&WorkerEvent::Finished {
            scan_id: id,
            attempt: 1,
            completed: true
        })
    );
    w.stop().await;
    let stream = env.ledger.stream(id).await.unwrap();
    assert_eq!(
        kinds(&stream),
        vec![
            (EventKind::Requested, 0),
            (EventKind::Claimed, 1),
            (EventKind::Completed, 1)
        ]
    );
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_stored_although_its_acknowledgement_was_lost_does_not_cost_the_outcome() {
    let env = env().await;
    let (id, gate, mut w) = gated_worker(&env, "beaten").await;
    append_as(
        &env,
        id,
        "beaten",
        Event::Heartbeat(scanledger::domain::Heartbeat {
            lease_ms: 60_000,
            progress: Default::default(),
        }),
    )
    .await;
    gate.add_permits(1);
    // The outcome conflicts with the heartbeat; the heartbeat is the worker's own, so the
    // outcome is recorded after it.
    let seen = events_until(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Finished { .. } | WorkerEvent::Lost { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&WorkerEvent::Finished {
            scan_id: id,
            attempt: 1,
            completed: true
        })
    );
    w.stop().await;
    let stream = env.ledger.stream(id).await.unwrap();
    assert_eq!(
        kinds(&stream),
        vec![
            (EventKind::Requested, 0),
            (EventKind::Claimed, 1),
            (EventKind::Heartbeat, 1),
            (EventKind::Completed, 1)
        ]
    );
    assert_eq!(
        stream.last().unwrap().worker_id,
        Some(WorkerId::new("beaten"))
    );
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_from_the_database_stops_its_scan_before_the_lease_runs_out() {
    let env = env().await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let job = ScriptedJob::new(Behaviour::Succeed);
    job.script(id, [Behaviour::Hang, Behaviour::Succeed]);
    let job = Arc::new(job);
    let proxy = DbProxy::start();
    let cut_off = Ledger::new(proxy.database(&env.db.database).pool(4).await.unwrap());
    let mut cfg = fast_config("cut-off");
    cfg.lease = Duration::from_secs(2);
    cfg.heartbeat = Duration::from_millis(200);
    let mut a = spawn_worker(&cut_off, job.clone(), cfg);
    wait_event(
        &mut a.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Heartbeat { scan_id, .. } if *scan_id == id),
    )
    .await;

    proxy.cut();
    let seen = events_until(&mut a.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Fenced { .. } | WorkerEvent::Lost { .. })
    })
    .await;
    // The job has stopped when Fenced is sent; the ledger's lease must still hold then,
    // or another worker could have been running the scan already.
    let fenced_at = chrono::Utc::now();
    assert!(seen.contains(&WorkerEvent::Disconnected), "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&WorkerEvent::Fenced {
            scan_id: id,
            attempt: 1
        })
    );
    let row = status_of(&env.ledger, id).await;
    assert_eq!((row.status, row.attempt), (ScanState::Running, 1));
    let expires = row.lease_expires_at.expect("a running attempt has a lease");
    assert!(
        fenced_at < expires,
        "stopped at {fenced_at}, after the lease ran out at {expires}"
    );

    // A worker that reaches the database times the attempt out and runs the scan again.
    let mut b = spawn_worker(&env.ledger, job, fast_config("rescuer"));
    wait_event(&mut b.events, Duration::from_secs(20), |e| {
        matches!(e, WorkerEvent::Finished { scan_id, attempt: 2, completed: true } if *scan_id == id)
    })
    .await;
    proxy.restore();
    wait_event(&mut a.events, Duration::from_secs(20), |e| {
        matches!(e, WorkerEvent::Reconnected)
    })
    .await;
    a.stop().await;
    b.stop().await;
    let stream = env.ledger.stream(id).await.unwrap();
    let k = kinds(&stream);
    assert!(k.contains(&(EventKind::TimedOut, 1)), "{k:?}");
    assert_eq!(k.last(), Some(&(EventKind::Completed, 2)));
    // The fenced worker wrote nothing after it stopped.
    assert!(
        stream
            .iter()
            .filter(|e| e.worker_id == Some(WorkerId::new("cut-off")))
            .all(|e| e.recorded_at < fenced_at),
        "{k:?}"
    );
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_for_longer_than_the_lease_records_its_finished_scan_when_back() {
    let env = env().await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let job = ScriptedJob::new(Behaviour::Succeed);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    job.script(id, [Behaviour::Gate(gate.clone(), vec![])]);
    let proxy = DbProxy::start();
    let cut_off = Ledger::new(proxy.database(&env.db.database).pool(4).await.unwrap());
    // Lease 1 s; its own reaper (the only one) is cut off too.
    let mut w = spawn_worker(&cut_off, Arc::new(job), fast_config("held"));
    wait_event(
        &mut w.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Heartbeat { scan_id, .. } if *scan_id == id),
    )
    .await;
    proxy.cut();
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Disconnected)
    })
    .await;
    // The scan finishes while the database is out of reach.
    gate.add_permits(1);
    // The scenario: cut off for three leases, so the lease has run out in the ledger.
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    let seen = events_until(&mut w.events, Duration::from_secs(20), |e| {
        matches!(
            e,
            WorkerEvent::Finished { .. } | WorkerEvent::Lost { .. } | WorkerEvent::Fenced { .. }
        )
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&WorkerEvent::Finished {
            scan_id: id,
            attempt: 1,
            completed: true
        }),
        "{seen:?}"
    );
    w.stop().await;
    let stream = env.ledger.stream(id).await.unwrap();
    let k = kinds(&stream);
    assert_eq!(k.last(), Some(&(EventKind::Completed, 1)), "{k:?}");
    assert!(
        !k.iter().any(|(kind, _)| *kind == EventKind::TimedOut),
        "{k:?}"
    );
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_never_queue_behind_an_outcome_waiting_in_its_transaction() {
    let env = env().await;
    let ids = request_scans(&env.ledger, 2, 3).await;
    let (done, running) = (ids[0], ids[1]);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let job = ScriptedJob::new(Behaviour::Succeed);
    let found = finding(
        "AZ-STG-001",
        "held",
        scanledger::domain::Severity::Low,
        "storage",
    );
    job.script(done, [Behaviour::Gate(gate.clone(), vec![found])]);
    job.script(running, [Behaviour::Hang]);
    let mut w = spawn_worker(&env.ledger, Arc::new(job), fast_config("lanes"));
    wait_event(
        &mut w.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Heartbeat { scan_id, .. } if *scan_id == running),
    )
    .await;
    wait_until("both scans claimed", Duration::from_secs(10), || async {
        count_status(&env.pool, "running").await == 2
    })
    .await;

    // Hold the findings table: the finished scan's Completed (whose findings go in its
    // transaction) waits inside its transaction for as long as the test likes.
    let owner = env.db.owner.pool(2).await.unwrap();
    let mut lock = owner.begin().await.unwrap();
    sqlx::query("LOCK TABLE findings IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    gate.add_permits(1);
    wait_until(
        "the Completed waits for its lock",
        Duration::from_secs(10),
        || async {
            count(
                &owner,
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await
                > 0
        },
    )
    .await;
    // Meanwhile the running scan's heartbeats keep landing (one transaction each).
    // (Counted in the ledger, not by events: heartbeat events from before `before` may
    // still be queued on the receiver.)
    let before = status_of(&env.ledger, running).await.version;
    wait_until(
        "three heartbeats land while the Completed waits",
        Duration::from_secs(10),
        || async { status_of(&env.ledger, running).await.version >= before + 3 },
    )
    .await;
    assert_eq!(
        status_of(&env.ledger, done).await.status,
        ScanState::Running
    );

    lock.rollback().await.unwrap();
    wait_event(
        &mut w.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Finished { scan_id, completed: true, .. } if *scan_id == done),
    )
    .await;
    w.stop().await;
    assert_eq!(
        status_of(&env.ledger, done).await.status,
        ScanState::Completed
    );
    assert_ledger_invariants(&env.pool).await;
    assert_projection_matches_ledger(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_while_holding_an_outcome_gives_up_after_the_grace_period() {
    let env = env().await;
    let id = request_scans(&env.ledger, 1, 3).await[0];
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let job = ScriptedJob::new(Behaviour::Succeed);
    job.script(id, [Behaviour::Gate(gate.clone(), vec![])]);
    let proxy = DbProxy::start();
    let cut_off = Ledger::new(proxy.database(&env.db.database).pool(4).await.unwrap());
    let mut cfg = fast_config("leaving");
    cfg.grace = Duration::from_millis(300);
    cfg.lease = Duration::from_secs(60);
    let mut w = spawn_worker(&cut_off, Arc::new(job), cfg);
    wait_event(
        &mut w.events,
        Duration::from_secs(10),
        |e| matches!(e, WorkerEvent::Heartbeat { scan_id, .. } if *scan_id == id),
    )
    .await;
    proxy.cut();
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Disconnected)
    })
    .await;
    gate.add_permits(1);
    // Held, and never recorded: the worker still exits (grace, then a bounded last try).
    w.trigger.trigger();
    tokio::time::timeout(Duration::from_secs(60), w.handle)
        .await
        .expect("the worker exits although its outcome cannot be recorded")
        .unwrap();
    proxy.restore();
    let row = status_of(&env.ledger, id).await;
    assert_eq!((row.status, row.attempt), (ScanState::Running, 1));
    assert!(!kinds(&env.ledger.stream(id).await.unwrap()).contains(&(EventKind::Completed, 1)));
}
