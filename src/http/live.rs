//! `GET /live`: server-sent events that tell open pages where the log's head is, as
//! `data: {"position": N}`: once at connection, then whenever it moves. Pages then fetch
//! themselves again with `min_position=N`. The positions come from [`positions`], the one
//! place that knows their source.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::WatchStream;

use super::Dashboard;

/// The log positions to announce: the current one first, then each new one (positions that
/// come in quick succession may be skipped; the last is always announced). Ends when the
/// server shuts down.
///
/// Today: the head this server's writer has committed (appends through other servers on the
/// same database are not seen here).
pub fn positions(dashboard: &Dashboard) -> impl Stream<Item = u64> + Send + use<> {
    WatchStream::new(dashboard.store.committed_head())
        .take_until(dashboard.shutdown.clone().cancelled_owned())
}

pub async fn live(
    State(dashboard): State<Dashboard>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = positions(&dashboard).map(|position| {
        Ok(Event::default().data(serde_json::json!({ "position": position }).to_string()))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
