//! History for auditors: one scan's stream, the global feed, and the feed as
//! Server-Sent Events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Extension;
use axum::Json;
use chrono::{DateTime, Utc};
use futures_util::stream::Stream;
use serde::{Deserialize, Serialize};

use super::auth::Principal;
use super::error::Problem;
use super::{page_limit, parse_query, streams, ApiError, AppState};
use crate::domain::{RecordedEvent, ScanId};
use crate::ledger::{FeedCursor, StoredEvent};

/// One event as auditors read it: the stored payload, unchanged.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// Global position (`seq`).
    pub position: i64,
    /// Feed cursor just after this event.
    pub cursor: String,
    pub scan_id: ScanId,
    pub version: i32,
    #[schema(value_type = String)]
    pub kind: String,
    pub attempt: i32,
    pub worker_id: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

impl From<&StoredEvent> for EventView {
    fn from(e: &StoredEvent) -> Self {
        Self {
            position: e.seq,
            cursor: e.cursor().to_string(),
            scan_id: e.scan_id,
            version: e.version,
            kind: e.kind.clone(),
            attempt: e.attempt,
            worker_id: e.worker_id.clone(),
            payload: e.payload.clone(),
            recorded_at: e.recorded_at,
        }
    }
}

impl From<&RecordedEvent> for EventView {
    fn from(e: &RecordedEvent) -> Self {
        Self {
            position: e.seq,
            cursor: FeedCursor::after(e).to_string(),
            scan_id: e.scan_id,
            version: e.version,
            kind: e.event.kind().as_str().to_string(),
            attempt: e.attempt,
            worker_id: e.worker_id.as_ref().map(|w| w.to_string()),
            payload: e.event.payload(),
            recorded_at: e.recorded_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StreamView {
    pub scan_id: ScanId,
    pub count: usize,
    pub events: Vec<EventView>,
}

/// A scan's whole event stream, in version order.
#[utoipa::path(get, path = "/api/scans/{id}/events", tag = "history",
    params(("id" = String, Path, description = "Scan id (UUID)")),
    responses((status = 200, description = "The stream", body = StreamView), (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such scan", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn scan_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StreamView>, ApiError> {
    let id = super::path_id(&id)?;
    let events = state.ledger.stream(id).await.map_err(ApiError::internal)?;
    if events.is_empty() {
        return Err(ApiError::NotFound);
    }
    let events: Vec<EventView> = events.iter().map(EventView::from).collect();
    Ok(Json(StreamView {
        scan_id: id,
        count: events.len(),
        events,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedParams {
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedPage {
    pub count: usize,
    pub events: Vec<EventView>,
    /// Pass as `after` to continue; equals the request's `after` when nothing new was ready.
    pub next: String,
}

/// A feed cursor in `field`: absent, empty or `0` (the start), or `<tx>.<seq>` of at most
/// 18 digits each ([`super::openapi::FEED_CURSOR_PATTERN`]).
fn parse_cursor(s: Option<&str>, field: &str) -> Result<FeedCursor, ApiError> {
    let digits = |d: &str| (1..=18).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit());
    match s {
        None | Some("") | Some("0") => Ok(FeedCursor::default()),
        Some(c)
            if c.split_once('.')
                .is_some_and(|(tx, seq)| digits(tx) && digits(seq)) =>
        {
            c.parse().map_err(|_| bad_cursor(field))
        }
        Some(_) => Err(bad_cursor(field)),
    }
}

fn bad_cursor(field: &str) -> ApiError {
    ApiError::bad_request(
        Some(field),
        "not a cursor this API issued (use an event's `cursor`)",
    )
}

/// The global feed: events after a cursor, never skipping one that commits late.
#[utoipa::path(get, path = "/api/events", tag = "history",
    params(("after" = Option<String>, Query, description = "An event's `cursor` or a page's `next`; omit to start"),
           ("limit" = Option<i64>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, description = "A page of the feed", body = FeedPage), (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn feed(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<FeedPage>, ApiError> {
    let p: FeedParams = parse_query(q.as_deref())?;
    let after = parse_cursor(p.after.as_deref(), "after")?;
    let limit = page_limit(p.limit, 100, 1000)?;
    let events = state.ledger.feed(after, limit).await?;
    let next = events
        .last()
        .map(StoredEvent::cursor)
        .unwrap_or(after)
        .to_string();
    let events: Vec<EventView> = events.iter().map(EventView::from).collect();
    Ok(Json(FeedPage {
        count: events.len(),
        events,
        next,
    }))
}

/// How long a stream's waiter registration lives unless renewed.
const WATCH_TTL: Duration = Duration::from_secs(60);

/// How often an idle stream re-checks the feed: transactions that end without notifying
/// (heartbeats) still move the safe horizon.
const STREAM_POLL: Duration = Duration::from_millis(500);

/// The global feed as Server-Sent Events (`id` = cursor; resume with `Last-Event-ID`).
#[utoipa::path(get, path = "/api/events/stream", tag = "history",
    params(("after" = Option<String>, Query, description = "Start after this cursor"),
           ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    responses((status = 200, description = "Each `data:` is an EventView", content_type = "text/event-stream", body = String),
              (status = 400, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "Too many open streams (per token or per process); see Retry-After", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn stream(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let p: FeedParams = parse_query(q.as_deref())?;
    // Held by the stream's task: its place is freed when the task ends.
    let permit = state
        .streams
        .acquire(&principal.name)
        .ok_or(ApiError::TooMany {
            retry_after_secs: streams::RETRY_AFTER_SECS,
        })?;
    // Both are checked; a reconnecting client's Last-Event-ID wins over `after`.
    let after = parse_cursor(p.after.as_deref(), "after")?;
    let mut cursor = match headers.get("last-event-id") {
        Some(v) => parse_cursor(Some(v.to_str().unwrap_or("?")), "Last-Event-ID")?,
        None => after,
    };
    let mut changes = state.changes.subscribe();
    // Any change wakes the stream; the registration is kept alive while it runs.
    let watch = state
        .changes
        .watch(state.ledger.pool(), None, WATCH_TTL)
        .await?;
    let ledger = state.ledger.clone();
    let stream = async_stream(move |tx| async move {
        let _permit = permit;
        let mut renewed = tokio::time::Instant::now();
        // A client that went away ends the task at once, not at its next event.
        while !tx.is_closed() {
            if renewed.elapsed() > WATCH_TTL / 2 {
                let _ = watch.extend(WATCH_TTL).await;
                renewed = tokio::time::Instant::now();
            }
            let batch = match ledger.feed(cursor, 500).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream read failed; retrying");
                    Vec::new()
                }
            };
            for e in &batch {
                cursor = e.cursor();
                let view = EventView::from(e);
                let event = SseEvent::default()
                    .id(cursor.to_string())
                    .event(&view.kind)
                    .json_data(&view)
                    .expect("event views serialize");
                if tx.send(Ok(event)).await.is_err() {
                    return; // client gone
                }
            }
            if batch.len() < 500 {
                tokio::select! {
                    _ = changes.recv() => {}
                    _ = tokio::time::sleep(STREAM_POLL) => {}
                    _ = tx.closed() => return,
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A stream fed by a task through a bounded channel (ends when the client goes away).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<SseEvent, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
