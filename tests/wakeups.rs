//! Wake-ups: an idle worker claims a new scan on its NOTIFY, never on the polling
//! fallback — even while the client that asked for it long-polls the scan's status.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use scanledger::worker::WorkerEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_wakes_an_idle_worker_without_the_polling_fallback() {
    let app = spawn_app().await;
    // The fallback poll is an hour away: a lost wake-up hangs its sample.
    let mut cfg = fast_config("waker");
    cfg.poll = Duration::from_secs(3600);
    let mut w = spawn_worker(
        &app.env.ledger,
        Arc::new(ScriptedJob::new(Behaviour::Succeed)),
        cfg,
    );
    wait_event(&mut w.events, Duration::from_secs(10), |e| {
        matches!(e, WorkerEvent::Listening)
    })
    .await;
    const SAMPLES: usize = 1_000;
    for _ in 0..SAMPLES {
        let id = app.trigger(SUB).await;
        // What a client does next: long-poll the status, racing the claim.
        let path = format!("/api/scans/{id}?wait=5");
        let poll = app.get(&path);
        let claimed = wait_event(
            &mut w.events,
            Duration::from_secs(10),
            |e| matches!(e, WorkerEvent::Claimed { scan_id, .. } if *scan_id == id),
        );
        let (resp, _) = tokio::join!(poll, claimed);
        assert_eq!(resp.status(), 200);
        // The next sample starts on an idle worker.
        wait_finished(&mut w, id, Duration::from_secs(10)).await;
    }
    w.stop().await;
    // The figure (database clock), for the record; the bound is the benchmark's.
    let mut waits: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM c.recorded_at - r.recorded_at)::float8 * 1000
           FROM scan_events r JOIN scan_events c ON c.scan_id = r.scan_id AND c.kind = 'Claimed'
          WHERE r.kind = 'Requested'",
    )
    .fetch_all(&app.env.pool)
    .await
    .unwrap();
    assert_eq!(waits.len(), SAMPLES);
    waits.sort_by(f64::total_cmp);
    eprintln!(
        "request → claim over {SAMPLES} samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        waits[SAMPLES / 2],
        waits[SAMPLES * 99 / 100],
        waits[SAMPLES - 1]
    );
}
