//! The HTTP port: a health endpoint for load balancers and humans (the dashboard comes later).
//! Reads through the store; no SQL here.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::store::EventStore;

pub fn router(store: EventStore) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .with_state(store)
}

/// 200 with the log head when the database answers, 503 otherwise.
async fn health(State(store): State<EventStore>) -> Response {
    match store.head().await {
        Ok(head) => Json(json!({ "status": "serving", "head": head })).into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "health check: database not answering");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not serving", "error": "database unavailable" })),
            )
                .into_response()
        }
    }
}
