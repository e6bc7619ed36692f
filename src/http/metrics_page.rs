//! `GET /metrics`: the Prometheus text format (`crate::monitoring`), with the gauges of what
//! the database holds read at each scrape. A reader's page, like the dashboard's. When the
//! database does not answer, the counters are still served and `diplog_database_up` is 0.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Dashboard;
use crate::monitoring::{self, ProjectionGauges, Snapshot};

/// The content type of the Prometheus text format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(State(dashboard): State<Dashboard>) -> Response {
    let snapshot = match snapshot(&dashboard).await {
        Ok(snapshot) => Some(snapshot),
        Err(error) => {
            tracing::warn!(%error, "/metrics: could not read the database's state");
            None
        }
    };
    (
        [(header::CONTENT_TYPE, TEXT_FORMAT)],
        monitoring::render(snapshot.as_ref()),
    )
        .into_response()
}

async fn snapshot(dashboard: &Dashboard) -> anyhow::Result<Snapshot> {
    let pool = dashboard.store.pool();
    let head = dashboard.store.head().await?;
    let projections = dashboard
        .queries
        .store()
        .statuses()
        .await?
        .into_iter()
        .map(|status| ProjectionGauges {
            name: status.name,
            position: status.position,
            lag: status.lag,
            rebuilding: status.rebuilding,
        })
        .collect();
    let tree_size = crate::audit::tree::head(pool).await?.size();
    Ok(Snapshot {
        head,
        projections,
        tree_size,
        pool_size: pool.size(),
        pool_idle: pool.num_idle(),
        pool_max: pool.options().get_max_connections(),
    })
}
