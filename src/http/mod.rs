//! The HTTP port: the dashboard (server-rendered pages over the projections and the log, kept
//! up to date through server-sent events) and a health endpoint for load balancers. Reads
//! through `Queries` and `EventStore`; no SQL here.
//!
//! Pages (each takes `?as_of=` a position, a day or an RFC 3339 time):
//! `/` overview, `/channels`, `/summits`, `/commitments`, `/events` (filtered, paged),
//! `/occurrences/{id or stream}`, `/actors/{actor}`, `/relations`, `/relations/{a}/{b}`; the
//! log's browser: `/streams`, `/streams/{id}`, `/streams/{id}/{version}`, `/log/{position}`
//! (an event with its Merkle inclusion proof); `/live` is the event stream, `/assets/…` the stylesheet and script. For transparency-log tools: `/checkpoint`
//! and `/tile/…` (C2SP tlog-checkpoint and tlog-tiles, see `tlog`).

mod assets;
mod error;
mod live;
mod metrics_page;
mod pages;
mod readable;
mod tlog;

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub use error::HttpError;

use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::commitments::CommitmentView;
use crate::projections::models::summits::SummitView;
use crate::projections::read::query::Queries;
use crate::store::EventStore;
use crate::subscriptions::Subscriptions;

/// What the pages read from, and how long they wait.
#[derive(Clone)]
pub struct Dashboard {
    pub store: EventStore,
    pub queries: Queries,
    /// The longest a page waits for the projections to reach its `min_position`.
    pub max_wait: Duration,
    /// Feeds the live streams (which end when the server shuts down).
    pub subscriptions: Subscriptions,
    /// The live streams count against their client's open streams, as gRPC streams do.
    pub streams: crate::stream_limit::StreamLimiter,
    /// Whether the database answers, as the gRPC health service reports it too.
    pub health: crate::health::DatabaseHealth,
    /// Checkpoints and tiles, and the verifier key the overview shows.
    pub auditor: crate::audit::Auditor,
}

pub fn router(dashboard: Dashboard) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics_page::metrics))
        .route("/", get(pages::overview))
        .route("/channels", get(pages::list::<ChannelView>))
        .route("/summits", get(pages::list::<SummitView>))
        .route("/commitments", get(pages::list::<CommitmentView>))
        .route("/events", get(pages::events))
        .route("/occurrences/{key}", get(pages::occurrence))
        .route("/actors/{actor}", get(pages::actor))
        .route("/relations", get(pages::relations))
        .route("/relations/{a}/{b}", get(pages::relation))
        .route("/search", get(pages::search))
        .route("/network", get(pages::network))
        .route("/network/{state}", get(pages::state_network))
        .route("/lifecycle", get(pages::lifecycle))
        .route("/streams", get(pages::streams))
        .route("/streams/{stream}", get(pages::stream))
        .route("/streams/{stream}/{version}", get(pages::stream_event))
        .route("/log/{position}", get(pages::log_event))
        .route("/live", get(live::live))
        .route("/checkpoint", get(tlog::checkpoint))
        .route("/tile/{*path}", get(tlog::tile))
        .route("/assets/dashboard.css", get(assets::css))
        .route("/assets/dashboard.js", get(assets::js))
        .fallback(pages::not_found)
        .with_state(dashboard)
}

/// The policy every response carries: only this server's own stylesheet and script (no
/// inline script; inline style attributes only, for the computed column count), no framing
/// by other sites, no MIME sniffing, no referrer leaving the dashboard.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the security headers to every HTTP response (pages, sign-in, assets, `/live`).
pub async fn security_headers(mut response: Response) -> Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Where every HTTP request enters (the router's outermost layer): its server span for trace
/// export, named `METHOD /route` (the route's pattern, not the path with its values), with the
/// caller's W3C trace context (`traceparent`/`tracestate` headers) as its parent and the
/// status code. It ends when the response's head is ready (a `/live` stream goes on after).
/// Without trace export the span is disabled and nothing else is done.
pub async fn request_span(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let span = tracing::info_span!(
        target: crate::telemetry::TARGET,
        "http",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %request.method(),
        http.route = tracing::field::Empty,
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    if span.is_disabled() {
        return next.run(request).await;
    }
    let _ = span.set_parent(crate::telemetry::remote_parent(request.headers()));
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_owned());
    match &route {
        Some(route) => {
            span.record("http.route", route.as_str());
            span.record("otel.name", format!("{} {route}", request.method()));
        }
        None => {
            span.record("otel.name", request.method().as_str());
        }
    }
    let response = next.run(request).instrument(span.clone()).await;
    span.record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );
    if response.status().is_server_error() {
        span.record("otel.status_code", "error");
    }
    response
}

/// 200 with the log head when the database answers, 503 otherwise: the same state the gRPC
/// health service reports (a failed read here also moves it).
async fn health(State(dashboard): State<Dashboard>) -> Response {
    let not_serving = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not serving", "error": "database unavailable" })),
        )
            .into_response()
    };
    if !dashboard.health.is_reachable() {
        return not_serving();
    }
    match dashboard.store.head().await {
        Ok(head) => Json(json!({ "status": "serving", "head": head })).into_response(),
        Err(error) => {
            dashboard.health.set_unreachable(&error.to_string());
            not_serving()
        }
    }
}
