//! The global event feed (`/api/events`) and its server-sent event stream.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::problem;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_global_feed_never_skips_or_repeats_with_eight_concurrent_writers() {
    let app = spawn_app().await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (ledger, stop) = (app.env.ledger.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Varying batch sizes make transactions of different lengths commit out of order.
                request_scans(&ledger, 1 + n % 7, 3).await;
                n += 1;
            }
        }));
    }
    let mut seen: Vec<(i64, i64)> = Vec::new();
    let mut after = String::from("0");
    let started = Instant::now();
    let mut done_writing = false;
    loop {
        let page = app
            .json(&format!("/api/events?after={after}&limit=200"))
            .await;
        for e in page["events"].as_array().unwrap() {
            let (tx, seq) = e["cursor"].as_str().unwrap().split_once('.').unwrap();
            seen.push((tx.parse().unwrap(), seq.parse().unwrap()));
        }
        after = page["next"].as_str().unwrap().to_string();
        if !done_writing && started.elapsed() > Duration::from_secs(4) {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for w in writers.drain(..) {
                w.await.unwrap();
            }
            done_writing = true;
        } else if done_writing && page["count"] == 0 {
            // An empty page may only mean the horizon is held back by a transaction in
            // flight elsewhere in the cluster (other tests): stop once every event came.
            let total = count(&app.env.pool, "SELECT count(*) FROM scan_events").await;
            if seen.len() as i64 >= total {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the feed served {} of {total} events",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let total = count(&app.env.pool, "SELECT count(*) FROM scan_events").await;
    assert!(total > 500, "writers wrote {total} events");
    assert_eq!(seen.len() as i64, total, "every event exactly once");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "strictly in feed position order"
    );
    let seqs: HashSet<i64> = seen.iter().map(|p| p.1).collect();
    assert_eq!(seqs.len() as i64, total);
    problem(app.get("/api/events?after=garbage").await, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_from_last_event_id() {
    let app = spawn_app().await;
    request_scans(&app.env.ledger, 5, 3).await;
    let read = |last: Option<String>, n: usize| {
        let mut req = app
            .http
            .get(app.url("/api/events/stream"))
            .bearer_auth(&app.reader);
        if let Some(id) = last {
            req = req.header("last-event-id", id);
        }
        async move { SseReader::new(req.send().await.unwrap()).ids(n).await }
    };
    let first = read(None, 3).await;
    assert_eq!(first.len(), 3);
    let rest = read(Some(first[2].clone()), 2).await;
    let all: Vec<String> = first.iter().chain(rest.iter()).cloned().collect();
    assert_eq!(
        all.iter().collect::<HashSet<_>>().len(),
        5,
        "no event repeated after resuming"
    );
    let feed = app.json("/api/events?limit=5").await;
    let expected: Vec<String> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all, expected, "the stream serves the feed, in feed order");
}

#[tokio::test]
async fn an_event_this_build_cannot_decode_is_served_as_stored_and_the_feed_goes_on() {
    let app = spawn_app().await;
    let ledger = &app.env.ledger;
    let scan = request_scans(ledger, 1, 3).await[0];
    let w = scanledger::domain::WorkerId::new("newer-build");
    let claim = ledger
        .claim(&w, 1, Duration::from_secs(30), false)
        .await
        .unwrap()
        .pop()
        .unwrap();
    // A newer build's heartbeat: a schema version and a field this build does not know.
    sqlx::query(
        "INSERT INTO scan_events (scan_id, version, kind, attempt, worker_id, payload)
         VALUES ($1, $2, 'Heartbeat', $3, 'newer-build', '{\"v\": 99, \"lease_ms\": 30000, \"energy\": 7}')",
    )
    .bind(scan.0)
    .bind(claim.version + 1)
    .bind(claim.attempt)
    .execute(&app.env.pool)
    .await
    .unwrap();
    let later = request_scans(ledger, 1, 3).await[0];
    let started = Instant::now();
    let (mut after, mut seen) = (String::from("0"), Vec::new());
    while !seen
        .iter()
        .any(|e: &serde_json::Value| e["scan_id"] == later.to_string())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "feed stopped: {seen:#?}"
        );
        let page = app
            .json(&format!("/api/events?after={after}&limit=2"))
            .await;
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            // The horizon waits for transactions in flight elsewhere in the cluster.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen.extend(events.iter().cloned());
        after = page["next"].as_str().unwrap().to_string();
    }
    let newer = seen
        .iter()
        .find(|e| e["payload"]["v"] == 99)
        .expect("the undecodable event is served");
    assert_eq!(newer["kind"], "Heartbeat");
    assert_eq!(newer["payload"]["energy"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_capped_per_token_and_end_when_their_client_goes() {
    use scanledger::api::streams;
    let app = spawn_app().await;
    let open = |token: String| {
        let (http, url) = (app.http.clone(), app.url("/api/events/stream"));
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let mut held = Vec::new();
    for _ in 0..streams::PER_TOKEN {
        let r = open(app.reader.clone()).await;
        assert_eq!(r.status(), 200);
        held.push(r);
    }
    let refused = open(app.reader.clone()).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["retry-after"].to_str().unwrap(),
        streams::RETRY_AFTER_SECS.to_string()
    );
    problem(refused, 429).await;
    // Another token still gets one.
    let other = open(app.operator.clone()).await;
    assert_eq!(other.status(), 200);
    // The reader's clients vanish: their streams end, their places come back.
    drop(held);
    wait_until(
        "the vanished clients' streams ended",
        Duration::from_secs(10),
        || async { app.state.streams.open() == 1 },
    )
    .await;
    assert_eq!(open(app.reader.clone()).await.status(), 200);
    drop(other);
}

/// A transaction left open anywhere holds the feed back: `/metrics` shows how long the
/// first held-back event has waited, the runbook's query names the session, and the
/// feed moves on (the gauge back at 0) once it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_feed_shows_in_the_horizon_metric_and_the_runbook_names_the_culprit() {
    let app = spawn_app().await;
    let gauge = || async {
        let text = app.get("/metrics").await.text().await.unwrap();
        crate::metric(&text, "scanledger_feed_horizon_age_seconds")
    };
    // An idle-in-transaction session holding a transaction id (any login, any database).
    let mut culprit = app.env.db.owner.owner_connection().await.unwrap();
    sqlx::query("BEGIN").execute(&mut culprit).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut culprit)
        .await
        .unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut culprit)
        .await
        .unwrap();
    let held = request_scans(&app.env.ledger, 1, 3).await[0];
    // Committed, yet not served: it is newer than the open transaction.
    let page = app.json("/api/events?limit=1000").await;
    assert!(
        !page["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["scan_id"] == held.to_string()),
        "served past an open transaction"
    );
    assert!(gauge().await > 0.0, "the held-back event shows");
    // The runbook's query (docs/operations.md), as a superuser sees it.
    let rows: Vec<(i32, String)> = sqlx::query_as(
        "SELECT pid, state FROM pg_stat_activity
          WHERE backend_xid IS NOT NULL
          ORDER BY age(backend_xid) DESC
          LIMIT 5",
    )
    .fetch_all(&mut app.env.db.owner.owner_connection().await.unwrap())
    .await
    .unwrap();
    assert!(
        rows.contains(&(pid, "idle in transaction".to_string())),
        "{rows:?}"
    );
    sqlx::query("COMMIT").execute(&mut culprit).await.unwrap();
    wait_until(
        "the feed serves the held-back event",
        Duration::from_secs(10),
        || async {
            let page = app.json("/api/events?limit=1000").await;
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["scan_id"] == held.to_string())
        },
    )
    .await;
    wait_until("nothing is held back", Duration::from_secs(10), || async {
        gauge().await == 0.0
    })
    .await;
}
