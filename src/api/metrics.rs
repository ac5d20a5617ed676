//! `/metrics`, `/healthz` and `/readyz`: on the API's port (with its auth), and on the
//! listener every long-running process can open with `--metrics-listen` (no token: bind
//! it where only the scraper and the supervisor reach).
//!
//! The process's own metrics live in [`crate::metrics::Metrics`]; the figures about the
//! queue are read here, at scrape time, by one query of `scan_status`
//! ([`scan_status::queue_counts`]) plus the feed horizon.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sqlx::PgPool;

use crate::ledger::Ledger;
use crate::metrics::DatabaseFigures;
pub use crate::metrics::{method_label, LongPollOutcome, Metrics};
use crate::projection::scan_status;
use crate::shutdown::Shutdown;

use super::error::ApiError;
use super::Health;

/// Longest a scrape or a readiness check waits for the database.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(3);

/// The figures read from the database for one scrape; `None` when it did not answer
/// in time (the rest of the metrics are served all the same).
pub async fn database_figures(pool: &PgPool) -> Option<DatabaseFigures> {
    let read = async {
        let queue = scan_status::queue_counts(pool).await?;
        let feed = Ledger::new(pool.clone()).feed_lag().await?;
        Ok::<_, sqlx::Error>(DatabaseFigures {
            scans_by_status: queue.by_status,
            queue_depth: queue.claimable,
            oldest_pending_seconds: queue.oldest_claimable_seconds.unwrap_or(0.0),
            feed_horizon_age_seconds: feed.unwrap_or(0.0),
        })
    };
    match tokio::time::timeout(DATABASE_TIMEOUT, read).await {
        Ok(Ok(figures)) => Some(figures),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: the database figures could not be read");
            None
        }
        Err(_) => {
            tracing::warn!("metrics: the database figures took too long; left out");
            None
        }
    }
}

/// The whole `/metrics` answer.
pub async fn metrics_response(metrics: &Metrics, pool: &PgPool) -> Response {
    let db = database_figures(pool).await;
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        metrics.render(db.as_ref()),
    )
        .into_response()
}

/// Readiness: the database answers (within [`DATABASE_TIMEOUT`]).
pub async fn ready(pool: &PgPool) -> Result<Json<Health>, ApiError> {
    match tokio::time::timeout(DATABASE_TIMEOUT, crate::pg::ping(pool)).await {
        Ok(Ok(())) => Ok(Json(Health {
            status: "ready".into(),
        })),
        Ok(Err(e)) => Err(ApiError::Unavailable(e.to_string())),
        Err(_) => Err(ApiError::Unavailable(
            "the database did not answer in time".into(),
        )),
    }
}

#[derive(Clone)]
struct OpsState {
    metrics: Arc<Metrics>,
    pool: PgPool,
}

/// The `--metrics-listen` router: `/metrics`, `/healthz`, `/readyz`, no token.
pub fn ops_router(metrics: Arc<Metrics>, pool: PgPool) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<OpsState>| async move {
                metrics_response(&s.metrics, &s.pool).await
            }),
        )
        .route(
            "/healthz",
            get(|| async {
                Json(Health {
                    status: "ok".into(),
                })
            }),
        )
        .route(
            "/readyz",
            get(|State(s): State<OpsState>| async move { ready(&s.pool).await }),
        )
        .fallback(|| async { ApiError::NotFound })
        .with_state(OpsState { metrics, pool })
}

/// Serve [`ops_router`] on `listener` until `shutdown` fires. Logs the bound address
/// (`metrics listening addr=…`), which is how a caller of `--metrics-listen …:0` learns
/// the port.
pub async fn serve_ops(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    pool: PgPool,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics listening");
    axum::serve(listener, ops_router(metrics, pool))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}
