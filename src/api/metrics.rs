//! `/metrics` in the Prometheus text format: HTTP counters and latency kept in
//! process; queue figures read from the database at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use sqlx::PgPool;

use crate::ledger::Ledger;
use crate::projection::scan_status;

/// Latency histogram bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    long_polls: LongPolls,
}

/// Long-polls (`GET /api/scans/{id}?wait=`): how many wait now, and how each ended.
#[derive(Default)]
struct LongPolls {
    waiting: AtomicUsize,
    changed: AtomicU64,
    unchanged: AtomicU64,
    late: AtomicU64,
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
pub struct LongPollGuard<'a>(&'a Metrics);

impl LongPollGuard<'_> {
    pub fn finish(self, outcome: LongPollOutcome) {
        let lp = &self.0.long_polls;
        match outcome {
            LongPollOutcome::Changed => &lp.changed,
            LongPollOutcome::Unchanged => &lp.unchanged,
            LongPollOutcome::Late => &lp.late,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for LongPollGuard<'_> {
    fn drop(&mut self) {
        self.0.long_polls.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Figures the process knows without asking the database, passed in by the caller.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessGauges {
    /// Event streams open now.
    pub streams_open: usize,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// The method as a metrics label: the standard ones by name, every extension method as
/// `other`, so a client cannot grow the label set.
pub fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut inner = self.inner.lock().expect("metrics lock");
        *inner
            .requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let h = inner.latency.entry(route.to_string()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// A long-poll starts waiting; it counts as waiting until the guard is dropped.
    pub fn long_poll(&self) -> LongPollGuard<'_> {
        self.long_polls.waiting.fetch_add(1, Ordering::Relaxed);
        LongPollGuard(self)
    }

    pub async fn render(
        &self,
        pool: &PgPool,
        gauges: ProcessGauges,
    ) -> Result<String, sqlx::Error> {
        let queue = scan_status::queue_counts(pool).await?;
        let ledger = Ledger::new(pool.clone());
        let feed_lag = ledger.feed_lag().await?;
        let (by_status, depth, oldest) = (
            queue.by_status,
            queue.claimable,
            queue.oldest_claimable_seconds,
        );
        let totals = ledger.lifetime_counts().await?;
        let (claims, expiries) = (totals.claims, totals.timeouts);

        let mut out = String::new();
        let inner = self.inner.lock().expect("metrics lock");
        out.push_str(
            "# HELP scanledger_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE scanledger_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "scanledger_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP scanledger_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE scanledger_http_request_duration_seconds histogram\n");
        for (route, h) in &inner.latency {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "scanledger_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(out, "scanledger_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(
                out,
                "scanledger_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "scanledger_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        drop(inner);
        out.push_str("# HELP scanledger_scans Scans by status (scan_status projection).\n");
        out.push_str("# TYPE scanledger_scans gauge\n");
        for status in ["pending", "running", "completed", "failed", "cancelled"] {
            let n = by_status
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "scanledger_scans{{status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP scanledger_queue_depth Pending scans eligible to be claimed now.\n");
        out.push_str("# TYPE scanledger_queue_depth gauge\n");
        let _ = writeln!(out, "scanledger_queue_depth {depth}");
        out.push_str(
            "# HELP scanledger_oldest_pending_seconds Age of the oldest eligible pending scan.\n",
        );
        out.push_str("# TYPE scanledger_oldest_pending_seconds gauge\n");
        let _ = writeln!(
            out,
            "scanledger_oldest_pending_seconds {}",
            oldest.unwrap_or(0.0).max(0.0)
        );
        out.push_str("# HELP scanledger_claims_total Claimed events in the ledger.\n");
        out.push_str("# TYPE scanledger_claims_total counter\n");
        let _ = writeln!(out, "scanledger_claims_total {claims}");
        out.push_str("# HELP scanledger_lease_expiries_total TimedOut events in the ledger.\n");
        out.push_str("# TYPE scanledger_lease_expiries_total counter\n");
        let _ = writeln!(out, "scanledger_lease_expiries_total {expiries}");
        out.push_str(
            "# HELP scanledger_feed_horizon_age_seconds How long the oldest committed event the feed cannot serve yet has waited (from its transaction's start): a transaction still open anywhere in the cluster holds the feed back.\n",
        );
        out.push_str("# TYPE scanledger_feed_horizon_age_seconds gauge\n");
        let _ = writeln!(
            out,
            "scanledger_feed_horizon_age_seconds {}",
            feed_lag.unwrap_or(0.0).max(0.0)
        );
        let lp = &self.long_polls;
        out.push_str(
            "# HELP scanledger_long_polls_waiting Long-polls of this process waiting now.\n",
        );
        out.push_str("# TYPE scanledger_long_polls_waiting gauge\n");
        let _ = writeln!(
            out,
            "scanledger_long_polls_waiting {}",
            lp.waiting.load(Ordering::Relaxed)
        );
        out.push_str("# HELP scanledger_long_polls_total Long-polls of this process by how they ended: changed (woken by a change), unchanged (deadline), late (deadline, and the scan had changed without waking it: a claim or a heartbeat).\n");
        out.push_str("# TYPE scanledger_long_polls_total counter\n");
        for (outcome, n) in [
            ("changed", &lp.changed),
            ("unchanged", &lp.unchanged),
            ("late", &lp.late),
        ] {
            let _ = writeln!(
                out,
                "scanledger_long_polls_total{{outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP scanledger_event_streams_open Event streams (Server-Sent Events) this process serves now.\n");
        out.push_str("# TYPE scanledger_event_streams_open gauge\n");
        let _ = writeln!(out, "scanledger_event_streams_open {}", gauges.streams_open);
        Ok(out)
    }
}
